/* selftest.c: see selftest.h. */
#include "selftest.h"

#include <math.h>
#include <stdlib.h>

#include "gemm.h"
#include "tensor.h"
#include "util.h"

double uf_max_rel_err(const float *a, const float *b, size_t n) {
    double scale = 1e-6, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (isnan(e)) return INFINITY;
        err = fmax(err, e);
    }
    return err / scale;
}

static void fill_random(struct uf_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * uf_rng_uniform(r) - 1);
}

static double case_gemm(struct uf_device *d) {
    static const size_t shapes[][3] = {{1, 1, 1}, {17, 33, 65}, {64, 48, 32}, {5, 130, 7}};
    struct uf_rng r;
    uf_rng_init(&r, 7);
    double worst = 0;
    for (size_t s = 0; s < UF_ARRAY_LEN(shapes); s++)
        for (int t = 0; t < 4; t++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            bool ta = t & 1, tb = t & 2;
            float *A = uf_malloc(m * k * 4), *B = uf_malloc(k * n * 4), *C = uf_malloc(m * n * 4),
                  *R = uf_malloc(m * n * 4);
            fill_random(&r, A, m * k);
            fill_random(&r, B, k * n);
            fill_random(&r, C, m * n);
            for (size_t i = 0; i < m * n; i++) R[i] = C[i];
            struct uf_tensor tA, tB, tC;
            uf_tensor_init(&tA, d, "A", UF_F32, 1, (int64_t[]){(int64_t)(m * k)});
            uf_tensor_init(&tB, d, "B", UF_F32, 1, (int64_t[]){(int64_t)(k * n)});
            uf_tensor_init(&tC, d, "C", UF_F32, 1, (int64_t[]){(int64_t)(m * n)});
            uf_tensor_upload(&tA, A);
            uf_tensor_upload(&tB, B);
            uf_tensor_upload(&tC, C);
            size_t lda = ta ? m : k, ldb = tb ? k : n;
            uf_gemm(d, ta, tb, m, n, k, 0.5f, tA.buf, 0, lda, tB.buf, 0, ldb, 0.25f, tC.buf, 0, n);
            uf_gemm_ref(ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 0.25f, R, n);
            uf_tensor_download(&tC, C);
            worst = fmax(worst, uf_max_rel_err(C, R, m * n));
            uf_tensor_free(&tA);
            uf_tensor_free(&tB);
            uf_tensor_free(&tC);
            free(A), free(B), free(C), free(R);
        }
    return worst;
}

static double case_tensor(struct uf_device *d) {
    enum { N = 1000 };
    float x[N], y[N], out[N], ref[N];
    struct uf_rng r;
    uf_rng_init(&r, 3);
    fill_random(&r, x, N);
    fill_random(&r, y, N);
    struct uf_tensor tx, ty;
    uf_tensor_init(&tx, d, "x", UF_F32, 1, (int64_t[]){N});
    uf_tensor_init(&ty, d, "y", UF_F32, 1, (int64_t[]){N});
    uf_tensor_upload(&tx, x);
    uf_tensor_upload(&ty, y);
    uf_tensor_axpby(&ty, 2.0f, &tx, -0.5f);
    uf_tensor_download(&ty, out);
    for (int i = 0; i < N; i++) ref[i] = 2.0f * x[i] - 0.5f * y[i];
    double err = uf_max_rel_err(out, ref, N);
    uf_tensor_fill(&tx, 3.5f);
    uf_tensor_copy(&ty, &tx);
    uf_tensor_download(&ty, out);
    for (int i = 0; i < N; i++) ref[i] = 3.5f;
    err = fmax(err, uf_max_rel_err(out, ref, N));
    uf_tensor_free(&tx);
    uf_tensor_free(&ty);
    return err;
}

static const struct {
    const char *name;
    double (*fn)(struct uf_device *);
    double bound;
} cases[] = {
    {"gemm (all transposes, odd shapes)", case_gemm, 1e-5},
    {"tensor fill/copy/axpby", case_tensor, 1e-6},
};

int uf_selftest_run(struct uf_device *d, FILE *out) {
    int failures = 0;
    for (size_t i = 0; i < UF_ARRAY_LEN(cases); i++) {
        double t0 = uf_time_now();
        double err = cases[i].fn(d);
        int ok = err <= cases[i].bound;
        failures += !ok;
        fprintf(out, "%-4s %-40s max rel err %.2e (bound %.0e)  %.2fs\n", ok ? "ok" : "FAIL",
                cases[i].name, err, cases[i].bound, uf_time_now() - t0);
    }
    return failures;
}
