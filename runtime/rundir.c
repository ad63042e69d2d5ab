/* rundir.c: see rundir.h. */
#include "rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

/* Deletes "<name>.tmp.<pid>" files (uf_file_write_atomic's temp files) in dir. */
static void remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || t[5] < '0' || t[5] > '9' || strspn(t + 5, "0123456789") != strlen(t + 5)) continue;
        char *f = uf_sprintf("%s/%s", dir, e->d_name);
        if (unlink(f) == 0) uf_log(2, "removed a stale temporary file %s", f);
        free(f);
    }
    if (d) closedir(d);
}

int uf_rundir_open(struct uf_rundir *r, const char *out, const char *name) {
    memset(r, 0, sizeof *r);
    r->path = uf_sprintf("%s/%s", out, name);
    char *ck = uf_sprintf("%s/ckpt", r->path);
    int rc = uf_mkdir_p(ck);
    if (rc == 0) { /* the caller holds the run's lock: a temp file is what a killed writer left */
        remove_stale_tmp(r->path);
        remove_stale_tmp(ck);
    }
    free(ck);
    if (rc) return -1;
    char *m = uf_rundir_file(r, "metrics.jsonl"), *l = uf_rundir_file(r, "log.txt");
    r->metrics = fopen(m, "a");
    r->log = fopen(l, "a");
    free(m);
    free(l);
    if (!r->metrics || !r->log) return uf_fail("cannot write in %s: %s", r->path, strerror(errno));
    return 0;
}

void uf_rundir_close(struct uf_rundir *r) {
    if (r->metrics) fclose(r->metrics);
    if (r->log) fclose(r->log);
    free(r->path);
    memset(r, 0, sizeof *r);
}

char *uf_rundir_file(const struct uf_rundir *r, const char *rel) { return uf_sprintf("%s/%s", r->path, rel); }

int uf_rundir_write(const struct uf_rundir *r, const char *rel, const char *text) {
    char *p = uf_rundir_file(r, rel);
    int rc = uf_file_write_atomic(p, text, strlen(text));
    free(p);
    return rc;
}

int uf_rundir_done(const char *out, const char *name) {
    char *p = uf_sprintf("%s/%s/results.json", out, name);
    int e = uf_file_exists(p);
    free(p);
    return e;
}

void uf_rundir_metric(struct uf_rundir *r, const char *json_object) {
    fprintf(r->metrics, "%s\n", json_object);
    fflush(r->metrics);
}

int uf_rundir_truncate_metrics(struct uf_rundir *r, long step) {
    char *p = uf_rundir_file(r, "metrics.jsonl");
    size_t n;
    char *text = uf_file_read(p, &n);
    if (!text) {
        free(p);
        return 0;
    }
    char *out = uf_malloc(n + 1);
    size_t o = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        const char *s = strstr(line, "\"step\":");
        long st = s && s < line + len ? strtol(s + 7, NULL, 10) : 0;
        if (nl && st <= step) { /* keep complete lines up to the checkpoint */
            memcpy(out + o, line, len);
            o += len;
        }
        line += len;
    }
    fclose(r->metrics);
    int rc = uf_file_write_atomic(p, out, o);
    r->metrics = fopen(p, "a");
    free(out);
    free(text);
    free(p);
    return rc;
}

void uf_rundir_log(struct uf_rundir *r, const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (r->log) {
        fprintf(r->log, "%s %s\n", ts, buf);
        fflush(r->log);
    }
    uf_log(1, "%s", buf);
}

char *uf_rundir_ckpt_path(const struct uf_rundir *r, long step) {
    return uf_sprintf("%s/ckpt/step-%06ld.ckpt", r->path, step);
}

char *uf_rundir_latest_ckpt(const struct uf_rundir *r) {
    char *p = uf_sprintf("%s/ckpt/latest", r->path);
    char *name = uf_file_read(p, NULL);
    free(p);
    if (!name) return NULL;
    name[strcspn(name, "\n")] = 0;
    char *full = uf_sprintf("%s/ckpt/%s", r->path, name);
    free(name);
    if (!uf_file_exists(full)) {
        free(full);
        return NULL;
    }
    return full;
}

static int cmp_desc(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int uf_rundir_ckpt_list(const struct uf_rundir *r, char ***paths) {
    *paths = NULL;
    int n = 0;
    char *latest = uf_rundir_latest_ckpt(r);
    char *dir = uf_sprintf("%s/ckpt", r->path);
    DIR *d = opendir(dir);
    long *steps = NULL;
    int ns = 0, cap = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long s;
        char tail;
        if (sscanf(e->d_name, "step-%ld.ckp%c", &s, &tail) != 2 || tail != 't' ||
            strcmp(e->d_name + strlen(e->d_name) - 5, ".ckpt") != 0)
            continue;
        if (ns == cap) steps = uf_realloc(steps, (size_t)(cap = cap ? cap * 2 : 16) * sizeof *steps);
        steps[ns++] = s;
    }
    if (d) closedir(d);
    if (ns > 1) qsort(steps, (size_t)ns, sizeof *steps, cmp_desc);
    *paths = uf_calloc((size_t)ns + 2, sizeof **paths);
    if (latest) (*paths)[n++] = latest;
    for (int i = 0; i < ns; i++) {
        char *f = uf_rundir_ckpt_path(r, steps[i]);
        if (latest && strcmp(f, latest) == 0) {
            free(f);
            continue;
        }
        (*paths)[n++] = f;
    }
    free(steps);
    free(dir);
    return n;
}

int uf_rundir_set_latest(const struct uf_rundir *r, long step, int keep) {
    char name[64];
    snprintf(name, sizeof name, "step-%06ld.ckpt\n", step);
    char *p = uf_sprintf("%s/ckpt/latest", r->path);
    int rc = uf_file_write_atomic(p, name, strlen(name));
    free(p);
    if (rc || keep <= 0) return rc;
    /* delete all but the newest `keep` step-*.ckpt */
    char *dir = uf_sprintf("%s/ckpt", r->path);
    DIR *d = opendir(dir);
    long steps[4096];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 4096) {
        long s;
        if (sscanf(e->d_name, "step-%ld.ckpt", &s) == 1 && strstr(e->d_name, ".tmp") == NULL)
            steps[n++] = s;
    }
    if (d) closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= keep && steps[i] != step) {
            char *f = uf_sprintf("%s/step-%06ld.ckpt", dir, steps[i]);
            unlink(f);
            free(f);
        }
    }
    free(dir);
    return 0;
}

/* ---- folder locks ---------------------------------------------------------------------- */
static void lock_read_holder(int fd, char *holder, size_t n) {
    if (!holder || n == 0) return;
    ssize_t k = pread(fd, holder, n - 1, 0);
    holder[k > 0 ? k : 0] = 0;
    holder[strcspn(holder, "\n")] = 0;
    if (!holder[0]) snprintf(holder, n, "another process");
}

static int lock_fail(const char *path, int err) {
    return uf_fail("cannot lock %s: %s; the output folder's file system must support POSIX (fcntl) "
                   "locks (local disks, NFSv4, NFSv3 with lockd - not mounted with -o nolock)",
                   path, strerror(err));
}

int uf_lock_nfs_local(const char *mountinfo, const char *abs_path, char *mnt, size_t n) {
    size_t best = 0;
    int local = 0;
    for (const char *line = mountinfo; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        char *l = uf_strndup(line, len);
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
         * (spaces inside paths are escaped as \040) */
        char mp[1024] = "";
        const char *sep = strstr(l, " - ");
        if (sep && sscanf(l, "%*s %*s %*s %*s %1023s", mp) == 1) {
            size_t ml = strlen(mp);
            int under = strcmp(mp, "/") == 0 ||
                        (strncmp(abs_path, mp, ml) == 0 && (abs_path[ml] == '/' || abs_path[ml] == 0));
            if (under && ml >= best) {
                char fstype[32] = "", source[512] = "", opts[1024] = "";
                sscanf(sep + 3, "%31s %511s %1023s", fstype, source, opts);
                best = ml;
                local = strncmp(fstype, "nfs", 3) == 0 &&
                        (strstr(opts, "local_lock=all") || strstr(opts, "local_lock=posix"));
                if (mnt && n) snprintf(mnt, n, "%s", mp);
            }
        }
        free(l);
        line = nl ? nl + 1 : NULL;
    }
    return local;
}

int uf_lock_take(const char *dir, int wait, int *fd_out, char *holder, size_t n) {
    {
        char abs[PATH_MAX], mnt[1024] = "";
        char *mi = realpath(dir, abs) ? uf_file_read("/proc/self/mountinfo", NULL) : NULL;
        int local = mi && uf_lock_nfs_local(mi, abs, mnt, sizeof mnt);
        free(mi);
        if (local)
            return uf_fail("cannot lock %s/.lock: %s is an NFS mount with local locks (-o nolock or "
                           "local_lock=all|posix): a lock there does not keep other machines out; remount "
                           "it with locking, or use an output folder on another file system", dir, mnt);
    }
    char *path = uf_sprintf("%s/.lock", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = uf_fail("cannot open the lock file %s: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        if (errno != EAGAIN && errno != EACCES) {
            int rc = lock_fail(path, errno);
            close(fd);
            free(path);
            return rc;
        }
        lock_read_holder(fd, holder, n);
        if (!wait) {
            close(fd);
            free(path);
            return 1;
        }
        int r;
        while ((r = fcntl(fd, F_SETLKW, &fl)) != 0 && errno == EINTR) {}
        if (r != 0) {
            int rc = lock_fail(path, errno);
            close(fd);
            free(path);
            return rc;
        }
    }
    char host[256] = "?", text[512], ts[32];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int len = snprintf(text, sizeof text, "host %s pid %ld since %s\n", host, (long)getpid(), ts);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len)
        uf_log(2, "%s: cannot write the holder's name (%s)", path, strerror(errno));
    free(path);
    *fd_out = fd;
    return 0;
}

void uf_lock_release(int fd) {
    if (fd >= 0) close(fd); /* closing drops the process's record locks on the file */
}

int uf_lock_held(const char *dir, char *holder, size_t n) {
    char *path = uf_sprintf("%s/.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return 0;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int rc = fcntl(fd, F_GETLK, &fl) != 0 ? -1 : fl.l_type != F_UNLCK;
    if (rc == 1) lock_read_holder(fd, holder, n);
    close(fd);
    return rc;
}

/* ---- progress ---------------------------------------------------------------------------- */
void uf_format_duration(double s, char *buf, size_t n) {
    if (s < 0 || s != s) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

void uf_progress_init(struct uf_progress *p, const char *label, long total) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->t0 = uf_time_now();
    p->tty = isatty(2) && uf_verbosity >= 1;
}

void uf_progress_update(struct uf_progress *p, long step, double loss, double tokens_per_s) {
    if (uf_verbosity < 1) return;
    double now = uf_time_now(), el = now - p->t0;
    int last = step >= p->total;
    if (p->tty) {
        if (!last && now - p->last_print < 0.2) return;
    } else {
        long tenth = p->total / 10 > 0 ? p->total / 10 : 1;
        int due = now - p->last_print >= 10.0 || step / tenth != p->last_step_printed / tenth;
        if (!due && !last) return;
    }
    p->last_print = now;
    p->last_step_printed = step;
    char eta[32], elapsed[32];
    uf_format_duration(step > 0 ? el / (double)step * (double)(p->total - step) : 0, eta, sizeof eta);
    uf_format_duration(el, elapsed, sizeof elapsed);
    fprintf(stderr, "%s%s step %ld/%ld | loss %.4f | %.0f tok/s | %s elapsed | ETA %s%s",
            p->tty ? "\r\033[K" : "", p->label, step, p->total, loss, tokens_per_s, elapsed, eta,
            p->tty ? "" : "\n");
    fflush(stderr);
}

void uf_progress_done(struct uf_progress *p) {
    if (p->tty && uf_verbosity >= 1) fputc('\n', stderr);
}
