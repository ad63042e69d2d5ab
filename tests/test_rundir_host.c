/* test_rundir_host.c: run directories: metrics lines, truncation after a resume, checkpoint
 * rotation and the `latest` pointer, done-marker, durations. */
#include <stdlib.h>
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
    char *cmd = uf_sprintf("rm -rf %s", out);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    free(cmd);
    return uf_test_summary();
}
