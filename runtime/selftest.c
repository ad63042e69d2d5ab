/* selftest.c: see selftest.h. */
#include "selftest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "ops.h"
#include "ref/ref_ops.h"
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

/* Attention forward + backward (GQA, window, padding) vs uf_ref_attention_* (float). */
static double case_attention(struct uf_device *d) {
    enum { B = 2, T = 11, H = 4, KV = 2, HD = 12, WINDOW = 6, NQ = B * T * H * HD, NK = B * T * KV * HD };
    const int32_t lengths[B] = {11, 6};
    static float q[NQ], k[NK], v[NK], dout[NQ], o[NQ], lse[B * H * T], dq[NQ], dk[NK], dv[NK];
    static float ro[NQ], rlse[B * H * T], rdq[NQ], rdk[NK], rdv[NK];
    struct uf_rng r;
    uf_rng_init(&r, 11);
    fill_random(&r, q, NQ), fill_random(&r, k, NK), fill_random(&r, v, NK);
    fill_random(&r, dout, NQ);
    struct uf_tensor tq, tk, tv, tl, to, tlse, tdo, tdq, tdk, tdv;
    uf_tensor_init(&tq, d, "q", UF_F32, 1, (int64_t[]){NQ});
    uf_tensor_init(&tk, d, "k", UF_F32, 1, (int64_t[]){NK});
    uf_tensor_init(&tv, d, "v", UF_F32, 1, (int64_t[]){NK});
    uf_tensor_init(&tl, d, "lengths", UF_I32, 1, (int64_t[]){B});
    uf_tensor_init(&to, d, "o", UF_F32, 1, (int64_t[]){NQ});
    uf_tensor_init(&tlse, d, "lse", UF_F32, 1, (int64_t[]){B * H * T});
    uf_tensor_init(&tdo, d, "dout", UF_F32, 1, (int64_t[]){NQ});
    uf_tensor_init(&tdq, d, "dq", UF_F32, 1, (int64_t[]){NQ});
    uf_tensor_init(&tdk, d, "dk", UF_F32, 1, (int64_t[]){NK});
    uf_tensor_init(&tdv, d, "dv", UF_F32, 1, (int64_t[]){NK});
    uf_tensor_upload(&tq, q), uf_tensor_upload(&tk, k), uf_tensor_upload(&tv, v);
    uf_tensor_upload(&tl, lengths), uf_tensor_upload(&tdo, dout);
    uf_tensor_fill(&tdq, 0.0f), uf_tensor_fill(&tdk, 0.0f), uf_tensor_fill(&tdv, 0.0f);
    uf_op_attention_forward(d, &tq, &tk, &tv, &tl, B, T, H, KV, HD, WINDOW, &to, &tlse);
    uf_op_attention_backward(d, &tq, &tk, &tv, &tl, B, T, H, KV, HD, WINDOW, &to, &tlse, &tdo, &tdq,
                             &tdk, &tdv);
    uf_tensor_download(&to, o), uf_tensor_download(&tlse, lse);
    uf_tensor_download(&tdq, dq), uf_tensor_download(&tdk, dk), uf_tensor_download(&tdv, dv);
    uf_ref_attention_forward(ro, rlse, q, k, v, lengths, B, T, H, KV, HD, WINDOW);
    memset(rdq, 0, sizeof rdq), memset(rdk, 0, sizeof rdk), memset(rdv, 0, sizeof rdv);
    uf_ref_attention_backward(rdq, rdk, rdv, dout, q, k, v, lengths, B, T, H, KV, HD, WINDOW);
    double err = uf_max_rel_err(o, ro, NQ);
    err = fmax(err, uf_max_rel_err(lse, rlse, B * H * T));
    err = fmax(err, uf_max_rel_err(dq, rdq, NQ));
    err = fmax(err, uf_max_rel_err(dk, rdk, NK));
    err = fmax(err, uf_max_rel_err(dv, rdv, NK));
    struct uf_tensor *ts[] = {&tq, &tk, &tv, &tl, &to, &tlse, &tdo, &tdq, &tdk, &tdv};
    for (size_t i = 0; i < UF_ARRAY_LEN(ts); i++) uf_tensor_free(ts[i]);
    return err;
}

static const struct {
    const char *name;
    double (*fn)(struct uf_device *);
    double bound;
} cases[] = {
    {"gemm (all transposes, odd shapes)", case_gemm, 1e-5},
    {"tensor fill/copy/axpby", case_tensor, 1e-6},
    {"attention fwd+bwd (GQA, window, padding)", case_attention, 1e-5},
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
