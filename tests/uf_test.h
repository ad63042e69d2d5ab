/* uf_test.h: a tiny test harness. Each test file defines test functions, registers them in main
 * with UF_RUN(fn), and returns uf_test_summary(). CHECK failures print file:line and the values.
 * A test that must skip (e.g. ../shared absent, torch absent) calls UF_SKIP("why") which makes
 * the whole executable exit 77 if nothing else ran (ctest SKIP_RETURN_CODE is not set for C
 * tests, so prefer skipping single cases and still running the rest). */
#ifndef UF_TEST_H
#define UF_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int uf_test_passed, uf_test_failed, uf_test_skipped, uf_test_cur_failed;

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            uf_test_cur_failed = 1;                                                           \
        }                                                                                     \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                  \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            uf_test_cur_failed = 1;                                                           \
        }                                                                                     \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                    \
    CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))
#define CHECK_STR(a, b)                                                                       \
    CHECK_MSG(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))
#define CHECK_NEAR(a, b, tol)                                                                 \
    CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), \
              (double)(b), (double)(tol))

#define UF_SKIP(...)                                                                          \
    do {                                                                                      \
        fprintf(stderr, "  SKIP: ");                                                          \
        fprintf(stderr, __VA_ARGS__);                                                         \
        fputc('\n', stderr);                                                                  \
        uf_test_cur_failed = -1;                                                              \
        return;                                                                               \
    } while (0)

#define UF_RUN(fn)                                                                            \
    do {                                                                                      \
        uf_test_cur_failed = 0;                                                               \
        fprintf(stderr, "[ RUN  ] %s\n", #fn);                                                \
        fn();                                                                                 \
        if (uf_test_cur_failed > 0) { uf_test_failed++; fprintf(stderr, "[ FAIL ] %s\n", #fn); } \
        else if (uf_test_cur_failed < 0) { uf_test_skipped++; fprintf(stderr, "[ SKIP ] %s\n", #fn); } \
        else { uf_test_passed++; fprintf(stderr, "[  OK  ] %s\n", #fn); }                     \
    } while (0)

static inline int uf_test_summary(void) {
    printf("%d passed, %d failed, %d skipped\n", uf_test_passed, uf_test_failed, uf_test_skipped);
    return uf_test_failed ? 1 : 0;
}

/* Path of the shared datasets folder (../shared/datasets next to the checkout), or NULL. */
static inline const char *uf_test_shared_datasets(void) {
    static char path[4096];
    const char *src = getenv("UF_SOURCE_DIR");
    if (!src) return NULL;
    snprintf(path, sizeof path, "%s/../shared/datasets", src);
    FILE *f;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/README.md", path);
    if (!(f = fopen(probe, "r"))) return NULL;
    fclose(f);
    return path;
}

#endif
