/* test_rundir_host.c: run directories: metrics lines, truncation after a resume, checkpoint
 * rotation and the `latest` pointer, done-marker, durations. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rundir.h"
#include "uf_test.h"
#include "core/util.h"

static char out[] = "/tmp/uf_rundir_XXXXXX";

static void test_metrics_and_truncate(void) {
    struct uf_rundir r;
    CHECK(uf_rundir_open(&r, out, "run1") == 0);
    char line[128];
    for (int s = 1; s <= 10; s++) {
        snprintf(line, sizeof line, "{\"step\":%d,\"loss\":%g}", s, 1.0 / s);
        uf_rundir_metric(&r, line);
    }
    CHECK(uf_rundir_truncate_metrics(&r, 6) == 0);
    uf_rundir_metric(&r, "{\"step\":7,\"loss\":0.5}");
    char *p = uf_rundir_file(&r, "metrics.jsonl");
    size_t n;
    char *text = uf_file_read(p, &n);
    int lines = 0;
    for (char *c = text; *c; c++) lines += *c == '\n';
    CHECK_EQ_INT(lines, 7);
    CHECK(strstr(text, "\"step\":8") == NULL);
    CHECK(strstr(text, "{\"step\":7,\"loss\":0.5}\n") != NULL);
    free(text);
    free(p);
    CHECK(!uf_rundir_done(out, "run1"));
    CHECK(uf_rundir_write(&r, "results.json", "{}") == 0);
    CHECK(uf_rundir_done(out, "run1"));
    uf_rundir_close(&r);
}

static void test_ckpt_rotation(void) {
    struct uf_rundir r;
    CHECK(uf_rundir_open(&r, out, "run2") == 0);
    CHECK(uf_rundir_latest_ckpt(&r) == NULL);
    for (long s = 10; s <= 50; s += 10) {
        char *p = uf_rundir_ckpt_path(&r, s);
        CHECK(uf_file_write_atomic(p, "x", 1) == 0);
        free(p);
        CHECK(uf_rundir_set_latest(&r, s, 2) == 0);
    }
    char *latest = uf_rundir_latest_ckpt(&r);
    CHECK(latest && strstr(latest, "step-000050.ckpt"));
    free(latest);
    char *old = uf_rundir_ckpt_path(&r, 30), *kept = uf_rundir_ckpt_path(&r, 40);
    CHECK(!uf_file_exists(old));
    CHECK(uf_file_exists(kept));
    free(old);
    free(kept);
    uf_rundir_close(&r);
}

/* folder locks: a second open file of the lock conflicts like another process would (POSIX
 * locks are per process, so the conflict is checked from a child); NFS local-lock detection */
static void test_locks(void) {
    char *dir = uf_sprintf("%s/locked", out);
    CHECK(uf_mkdir_p(dir) == 0);
    int fd = -1;
    char holder[256] = "";
    CHECK(uf_lock_take(dir, 0, &fd, holder, sizeof holder) == 0);
    CHECK(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) { /* another process: held, not takeable without waiting, holder text visible */
        char h[256] = "", h2[256] = "";
        int fd2 = -1;
        int held = uf_lock_held(dir, h, sizeof h);
        int take = uf_lock_take(dir, 0, &fd2, h2, sizeof h2);
        _exit(held == 1 && take == 1 && strstr(h, " pid ") && strcmp(h, h2) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    uf_lock_release(fd);
    pid = fork();
    if (pid == 0) { /* released: free and takeable */
        int fd2 = -1;
        _exit(uf_lock_held(dir, NULL, 0) == 0 && uf_lock_take(dir, 0, &fd2, NULL, 0) == 0 ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* a lock file that cannot be opened is an error with the path */
    char *bad = uf_sprintf("%s/badlock", out), *badlock = uf_sprintf("%s/badlock/.lock", out);
    CHECK(uf_mkdir_p(badlock) == 0);
    CHECK(uf_lock_take(bad, 1, &fd, NULL, 0) == -1);
    CHECK(strstr(uf_error(), "cannot open the lock file") != NULL);
    free(bad);
    free(badlock);
    free(dir);

    const char *mi =
        "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "30 22 0:40 / /shared rw,relatime shared:5 - nfs4 srv:/export rw,vers=4.2,hard,local_lock=none,addr=10.0.0.1\n"
        "31 22 0:41 / /scratch rw,relatime - nfs srv:/scratch rw,vers=3,nolock,local_lock=all,addr=10.0.0.1\n"
        "32 31 0:42 / /scratch/sub rw - tmpfs tmpfs rw\n"
        "33 22 0:43 / /scratchy rw - nfs4 srv:/y rw,local_lock=posix\n";
    char mnt[256];
    CHECK(uf_lock_nfs_local(mi, "/home/me/runs", mnt, sizeof mnt) == 0);
    CHECK(strcmp(mnt, "/") == 0);
    CHECK(uf_lock_nfs_local(mi, "/shared/runs", mnt, sizeof mnt) == 0);
    CHECK(uf_lock_nfs_local(mi, "/scratch/runs/a", mnt, sizeof mnt) == 1);
    CHECK(strcmp(mnt, "/scratch") == 0);
    CHECK(uf_lock_nfs_local(mi, "/scratch", mnt, sizeof mnt) == 1);
    CHECK(uf_lock_nfs_local(mi, "/scratch/sub/x", mnt, sizeof mnt) == 0); /* a mount below it */
    CHECK(uf_lock_nfs_local(mi, "/scratchy/x", mnt, sizeof mnt) == 1);
    CHECK(strcmp(mnt, "/scratchy") == 0);
}

static void test_duration(void) {
    char b[32];
    uf_format_duration(5, b, sizeof b);
    CHECK_STR(b, "5s");
    uf_format_duration(192, b, sizeof b);
    CHECK_STR(b, "3m12s");
    uf_format_duration(3725, b, sizeof b);
    CHECK_STR(b, "1h02m");
}

int main(void) {
    if (!mkdtemp(out)) return 1;
    UF_RUN(test_metrics_and_truncate);
    UF_RUN(test_ckpt_rotation);
    UF_RUN(test_duration);
    UF_RUN(test_locks);
    char *cmd = uf_sprintf("rm -rf %s", out);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(cmd);
    return uf_test_summary();
}
