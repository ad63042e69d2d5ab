/* util.c: see util.h. */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---------------------------------------------------------------------------- */
static _Thread_local char uf_err_buf[4096];

int uf_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(uf_err_buf, sizeof uf_err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int uf_fail_prefix(const char *fmt, ...) {
    char prefix[1024], old[sizeof uf_err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, uf_err_buf, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof uf_err_buf - 3) n = sizeof uf_err_buf - 3;
    memcpy(uf_err_buf, prefix, n);
    memcpy(uf_err_buf + n, ": ", 2);
    size_t m = strnlen(old, sizeof uf_err_buf - n - 3);
    memcpy(uf_err_buf + n + 2, old, m);
    uf_err_buf[n + 2 + m] = 0;
    return -1;
}

const char *uf_error(void) { return uf_err_buf; }

void uf_fatal(int exit_code, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "unforget: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(exit_code);
}

/* ---- logging --------------------------------------------------------------------------- */
int uf_verbosity = 1;

void uf_log(int level, const char *fmt, ...) {
    if (level > uf_verbosity) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- memory ---------------------------------------------------------------------------- */
void *uf_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) uf_fatal(1, "out of host memory allocating %zu bytes", n);
    return p;
}

void *uf_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) uf_fatal(1, "out of host memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *uf_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) uf_fatal(1, "out of host memory reallocating %zu bytes", n);
    return q;
}

char *uf_strndup(const char *s, size_t n) {
    char *d = uf_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *uf_strdup(const char *s) { return uf_strndup(s, strlen(s)); }

char *uf_sprintf(const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = uf_malloc((size_t)(n < 0 ? 0 : n) + 1);
    vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

/* ---- files ----------------------------------------------------------------------------- */
char *uf_file_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        uf_fail("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = uf_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = uf_realloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        uf_fail("error reading %s", path);
        return NULL;
    }
    buf[n] = 0;
    if (size) *size = n;
    return buf;
}

int uf_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int uf_mkdir_p(const char *path) {
    char *p = uf_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return uf_fail("cannot create folder %s: %s", path, strerror(e));
        }
        *s = '/';
    }
    int rc = mkdir(p, 0755);
    int e = errno;
    free(p);
    if (rc != 0 && e != EEXIST) return uf_fail("cannot create folder %s: %s", path, strerror(e));
    return 0;
}

/* Writes [data, size) to fd; 0 or -1 with errno. */
static int write_all(int fd, const void *data, size_t size) {
    const char *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        left -= (size_t)w;
    }
    return 0;
}

/* Atomic write of head (may be empty) followed by data. */
static int write_atomic2(const char *path, const void *head, size_t head_size, const void *data,
                         size_t size) {
    char *tmp = uf_sprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        uf_fail("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    if (write_all(fd, head, head_size) != 0 || write_all(fd, data, size) != 0) {
        uf_fail("cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        uf_fail("cannot flush %s: %s", tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        uf_fail("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    char *dir = uf_strdup(path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return 0;
}

int uf_file_write_atomic(const char *path, const void *data, size_t size) {
    return write_atomic2(path, NULL, 0, data, size);
}

/* ---- cache entries ----------------------------------------------------------------------- */
#define UF_CACHE_MAGIC "UFCACHE1"
struct cache_header {
    char magic[8];
    uint64_t size;     /* payload bytes */
    uint64_t checksum; /* uf_checksum64 of the payload */
};

uint64_t uf_checksum64(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = UF_HASH_SEED ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 32;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return h * 0xbf58476d1ce4e5b9ull;
}

int uf_cache_write(const char *path, const void *data, size_t size) {
    struct cache_header h;
    memcpy(h.magic, UF_CACHE_MAGIC, 8);
    h.size = size;
    h.checksum = uf_checksum64(data, size);
    return write_atomic2(path, &h, sizeof h, data, size);
}

void uf_cache_discard(const char *path, const char *what, const char *why) {
    uf_log(1, "notice: %s cache entry %s is damaged (%s); discarded, rebuilding it", what, path, why);
    unlink(path);
}

void *uf_cache_read(const char *path, size_t *size, const char *what) {
    if (size) *size = 0;
    if (!path || !uf_file_exists(path)) return NULL;
    size_t n = 0;
    char *text = uf_file_read(path, &n);
    if (!text) { /* unreadable (a folder, permissions): treat as damaged */
        uf_cache_discard(path, what, uf_error());
        return NULL;
    }
    struct cache_header h;
    const char *why = NULL;
    if (n < sizeof h) why = "shorter than its header";
    else {
        memcpy(&h, text, sizeof h);
        if (memcmp(h.magic, UF_CACHE_MAGIC, 8) != 0) why = "no cache header";
        else if (h.size != n - sizeof h) why = "size differs from its header (truncated?)";
        else if (h.checksum != uf_checksum64(text + sizeof h, n - sizeof h)) why = "checksum mismatch";
    }
    if (why) {
        free(text);
        uf_cache_discard(path, what, why);
        return NULL;
    }
    size_t payload = n - sizeof h;
    memmove(text, text + sizeof h, payload);
    text[payload] = 0;
    if (size) *size = payload;
    return text;
}

char *uf_cache_dir(const char *sub) {
    const char *over = getenv("UNFORGET_CACHE_DIR");
    char *dir;
    if (over && *over) dir = uf_sprintf("%s/%s", over, sub);
    else {
        const char *xdg = getenv("XDG_CACHE_HOME");
        const char *home = getenv("HOME");
        if (xdg && *xdg) dir = uf_sprintf("%s/unforget/%s", xdg, sub);
        else dir = uf_sprintf("%s/.cache/unforget/%s", home && *home ? home : "/tmp", sub);
    }
    if (uf_mkdir_p(dir) != 0) {
        static int warned;
        if (!warned++)
            uf_log(1, "notice: caching is off, the cache folder cannot be created: %s", uf_error());
        free(dir);
        return NULL;
    }
    return dir;
}

/* ---- hashing --------------------------------------------------------------------------- */
uint64_t uf_hash64(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t uf_hash_str(const char *s, uint64_t h) { return uf_hash64(s, strlen(s) + 1, h); }

/* ---- rng ------------------------------------------------------------------------------- */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void uf_rng_init(struct uf_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t uf_rng_u64(struct uf_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t uf_rng_below(struct uf_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = uf_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double uf_rng_uniform(struct uf_rng *r) { return (double)(uf_rng_u64(r) >> 11) * 0x1.0p-53; }

double uf_rng_normal(struct uf_rng *r) {
    double u1 = uf_rng_uniform(r), u2 = uf_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void uf_rng_shuffle(struct uf_rng *r, int *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)uf_rng_below(r, i);
        int t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- time ------------------------------------------------------------------------------ */
double uf_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
