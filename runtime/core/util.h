/* util.h: errors, logging, host memory, files, hashing, RNG and timing for all of unforget.
 *
 * Error convention (used by every module):
 *   - a recoverable error is reported with `return uf_fail("file.jsonl:12: expected ...")`, which
 *     stores the message (thread-local) and returns -1; the caller may add context with
 *     uf_fail_prefix(); the top level prints uf_error() and exits non-zero.
 *   - unrecoverable errors (OpenCL failures, host out of memory) call uf_fatal(), which prints the
 *     message and exits with the given code; never abort() or crash.
 * Not here: anything device-specific (device.h) or model-specific. */
#ifndef UF_UTIL_H
#define UF_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define UF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define UF_NORETURN __attribute__((noreturn))
#else
#define UF_PRINTF(a, b)
#define UF_NORETURN
#endif

#define UF_MIN(a, b) ((a) < (b) ? (a) : (b))
#define UF_MAX(a, b) ((a) > (b) ? (a) : (b))
#define UF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ---------------------------------------------------------------------------- */
int uf_fail(const char *fmt, ...) UF_PRINTF(1, 2);        /* sets the error, returns -1 */
int uf_fail_prefix(const char *fmt, ...) UF_PRINTF(1, 2); /* "prefix: <old error>", returns -1 */
const char *uf_error(void);                               /* last error message ("" if none) */
void uf_fatal(int exit_code, const char *fmt, ...) UF_PRINTF(2, 3) UF_NORETURN;

/* ---- logging: level 0 = quiet, 1 = normal (default), 2 = verbose ------------------------ */
extern int uf_verbosity;
void uf_log(int level, const char *fmt, ...) UF_PRINTF(2, 3); /* to stderr when level <= verbosity */

/* ---- host memory: these never return NULL (they uf_fatal with the size on failure) ------ */
void *uf_malloc(size_t n);
void *uf_calloc(size_t count, size_t size);
void *uf_realloc(void *p, size_t n);
char *uf_strdup(const char *s);
char *uf_strndup(const char *s, size_t n);
char *uf_sprintf(const char *fmt, ...) UF_PRINTF(1, 2); /* malloc'd formatted string */

/* ---- files ----------------------------------------------------------------------------- */
/* Reads a whole file, NUL-terminated (size excludes the NUL). NULL + uf_fail on error. */
char *uf_file_read(const char *path, size_t *size);
/* Writes atomically: temp file in the same folder, fsync, rename, fsync of the folder. */
int uf_file_write_atomic(const char *path, const void *data, size_t size);
int uf_file_exists(const char *path);
int uf_mkdir_p(const char *path); /* like mkdir -p; 0 or uf_fail */
/* $XDG_CACHE_HOME/unforget/<sub> (or ~/.cache/unforget/<sub>), created; UNFORGET_CACHE_DIR overrides. */
char *uf_cache_dir(const char *sub);
/* Cache entries carry a header (magic "UFCACHE1", payload size, uf_checksum64) and are written
 * atomically. uf_cache_read returns the payload (malloc'd, NUL-terminated, *size bytes), or NULL
 * when the entry is missing or damaged (short, no header, size or checksum mismatch): a damaged
 * entry is deleted with a one-line notice naming `what`, so the caller rebuilds it. */
int uf_cache_write(const char *path, const void *data, size_t size);
void *uf_cache_read(const char *path, size_t *size, const char *what);
/* Deletes an entry whose content the caller found unusable, with the same notice. */
void uf_cache_discard(const char *path, const char *what, const char *why);
uint64_t uf_checksum64(const void *data, size_t n); /* fast 64-bit checksum (not FNV) */

/* ---- hashing (FNV-1a 64; content hashes for caches) ------------------------------------- */
uint64_t uf_hash64(const void *data, size_t n, uint64_t h); /* start with h = UF_HASH_SEED */
#define UF_HASH_SEED 0xcbf29ce484222325ull
uint64_t uf_hash_str(const char *s, uint64_t h);

/* ---- deterministic RNG (xoshiro256**, seeded through splitmix64) ------------------------ */
struct uf_rng { uint64_t s[4]; };
void uf_rng_init(struct uf_rng *r, uint64_t seed);
uint64_t uf_rng_u64(struct uf_rng *r);
uint64_t uf_rng_below(struct uf_rng *r, uint64_t n); /* uniform in [0, n), n > 0, unbiased */
double uf_rng_uniform(struct uf_rng *r);             /* [0, 1) with 53 random bits */
double uf_rng_normal(struct uf_rng *r);              /* standard normal (Box-Muller) */
void uf_rng_shuffle(struct uf_rng *r, int *a, size_t n); /* Fisher-Yates */

/* ---- time -------------------------------------------------------------------------------- */
double uf_time_now(void); /* monotonic seconds */

#endif
