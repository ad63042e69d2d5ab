/* test_gemm.c: uf_gemm / uf_gemm_batched against the plain-C reference over odd shapes, every
 * transpose combination, offsets, leading dimensions larger than the matrix, and alpha/beta;
 * every case under both backends (own kernels and CLBlast, forced), plus the own backend's
 * determinism (bit-identical reruns, and chunked == unchunked) and the automatic selection. */
#include <stdlib.h>

#include "ops/gemm.h"
#include "ops/selftest.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;
static const char *backend = "?"; /* for messages */

static void fill(struct uf_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * uf_rng_uniform(r) - 1);
}

/* One GEMM with padding: leading dims = natural + pad, buffers start at offset `off`. */
static double one_out(size_t m, size_t n, size_t k, bool ta, bool tb, size_t pad, size_t off,
                      float alpha, float beta, size_t batch, float **out, size_t *out_n) {
    struct uf_rng r;
    uf_rng_init(&r, m * 1000003 + n * 1009 + k + ta * 7 + tb * 13 + batch);
    size_t arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    size_t lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
    size_t sa = arows * lda + 3, sb = brows * ldb + 5, sc = m * ldc + 1; /* batch strides */
    size_t na = off + sa * batch, nb = off + sb * batch, nc = off + sc * batch;
    float *A = uf_malloc(na * 4), *B = uf_malloc(nb * 4), *C = uf_malloc(nc * 4), *R = uf_malloc(nc * 4);
    fill(&r, A, na), fill(&r, B, nb), fill(&r, C, nc);
    memcpy(R, C, nc * 4);
    struct uf_tensor tA, tB, tC;
    uf_tensor_init(&tA, &dev, "A", UF_F32, 1, (int64_t[]){(int64_t)na});
    uf_tensor_init(&tB, &dev, "B", UF_F32, 1, (int64_t[]){(int64_t)nb});
    uf_tensor_init(&tC, &dev, "C", UF_F32, 1, (int64_t[]){(int64_t)nc});
    uf_tensor_upload(&tA, A), uf_tensor_upload(&tB, B), uf_tensor_upload(&tC, C);
    if (batch == 1)
        uf_gemm(&dev, ta, tb, m, n, k, alpha, tA.buf, off, lda, tB.buf, off, ldb, beta, tC.buf, off, ldc);
    else
        uf_gemm_batched(&dev, ta, tb, m, n, k, alpha, tA.buf, off, lda, sa, tB.buf, off, ldb, sb,
                        beta, tC.buf, off, ldc, sc, batch);
    for (size_t b = 0; b < batch; b++)
        uf_gemm_ref(ta, tb, m, n, k, alpha, A + off + b * sa, lda, B + off + b * sb, ldb, beta,
                    R + off + b * sc, ldc);
    uf_tensor_download(&tC, C);
    double err = uf_max_rel_err(C, R, nc); /* also checks nothing outside C's rows changed */
    uf_tensor_free(&tA), uf_tensor_free(&tB), uf_tensor_free(&tC);
    if (out) *out = C, *out_n = nc;
    else free(C);
    free(A), free(B), free(R);
    return err;
}

static double one(size_t m, size_t n, size_t k, bool ta, bool tb, size_t pad, size_t off,
                  float alpha, float beta, size_t batch) {
    return one_out(m, n, k, ta, tb, pad, off, alpha, beta, batch, NULL, NULL);
}

static void test_gemm_shapes(void) {
    static const size_t shapes[][3] = {{1, 1, 1},   {17, 33, 65},   {2, 1, 3},   {64, 64, 64},
                                       {3, 129, 31}, {100, 7, 1},    {40, 96, 300}, {129, 65, 257},
                                       {9, 31, 0},   {200, 45, 70}};
    for (size_t s = 0; s < UF_ARRAY_LEN(shapes); s++)
        for (int t = 0; t < 4; t++) {
            double e = one(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, (t >> 1) & 1, 0, 0,
                           1.0f, 0.0f, 1);
            CHECK_MSG(e < 1e-5, "%s: m=%zu n=%zu k=%zu ta=%d tb=%d err %.3g", backend, shapes[s][0],
                      shapes[s][1], shapes[s][2], t & 1, (t >> 1) & 1, e);
        }
}

static void test_gemm_offsets_ld_alpha_beta(void) {
    for (int t = 0; t < 4; t++) {
        double e = one(17, 33, 65, t & 1, (t >> 1) & 1, 3, 11, -0.5f, 0.75f, 1);
        CHECK_MSG(e < 1e-5, "%s: ta=%d tb=%d err %.3g", backend, t & 1, (t >> 1) & 1, e);
        e = one(17, 33, 65, t & 1, (t >> 1) & 1, 3, 11, 2.0f, 0.0f, 1); /* beta 0: C not read */
        CHECK_MSG(e < 1e-5, "%s: beta=0 ta=%d tb=%d err %.3g", backend, t & 1, (t >> 1) & 1, e);
    }
}

static void test_gemm_strided_batched(void) {
    for (int t = 0; t < 4; t++) {
        double e = one(17, 33, 65, t & 1, (t >> 1) & 1, 1, 5, 1.5f, 1.0f, 3);
        CHECK_MSG(e < 1e-5, "%s: batched ta=%d tb=%d err %.3g", backend, t & 1, (t >> 1) & 1, e);
        e = one(1, 1, 1, t & 1, (t >> 1) & 1, 0, 0, 1.0f, 0.0f, 4);
        CHECK_MSG(e < 1e-5, "%s: batched 1x1x1 err %.3g", backend, e);
        e = one(40, 70, 33, t & 1, (t >> 1) & 1, 2, 7, 1.0f, 0.5f, 5);
        CHECK_MSG(e < 1e-5, "%s: batched 40x70x33 ta=%d tb=%d err %.3g", backend, t & 1,
                  (t >> 1) & 1, e);
    }
}

/* Own backend: a rerun is bit-identical, and so is a run split into many column/row/batch chunks
 * by a tiny packing buffer (which also checks the chunked path against the reference).
 * m = 200 takes the packed path for every layout, m = 70 the in-place one for nt (SMALL_M). */
static void test_gemm_own_deterministic(void) {
    for (int t = 0; t < 8; t++) {
        size_t m = t < 4 ? 200 : 70;
        bool ta = t & 1, tb = t & 2;
        float *c1, *c2, *c3;
        if (t >= 4 && (ta || !tb)) continue;
        size_t n1, n2, n3;
        uf_gemm_set_scratch_limit(&dev, 0);
        double e1 = one_out(m, 100, 90, ta, tb, 1, 3, 1.0f, 0.5f, 3, &c1, &n1);
        double e2 = one_out(m, 100, 90, ta, tb, 1, 3, 1.0f, 0.5f, 3, &c2, &n2);
        uf_gemm_set_scratch_limit(&dev, 32 * 90 * 4 * 2); /* 1 panel of B (+ 8 rows of A) */
        double e3 = one_out(m, 100, 90, ta, tb, 1, 3, 1.0f, 0.5f, 3, &c3, &n3);
        uf_gemm_set_scratch_limit(&dev, 0);
        CHECK_MSG(e1 < 1e-5 && e3 < 1e-5, "m=%zu ta=%d tb=%d err %.3g, chunked %.3g", m, ta, tb,
                  e1, e3);
        CHECK(e1 == e2);
        CHECK_MSG(memcmp(c1, c2, n1 * 4) == 0, "m=%zu ta=%d tb=%d: rerun differs", m, ta, tb);
        CHECK_MSG(memcmp(c1, c3, n1 * 4) == 0, "m=%zu ta=%d tb=%d: chunked run differs", m, ta, tb);
        free(c1), free(c2), free(c3);
    }
}

/* Automatic selection: measures (or reads the cache), names a backend for every layout, and the
 * result is correct whichever it picked. */
static void test_gemm_auto(void) {
    uf_gemm_set_backend(&dev, UF_GEMM_AUTO);
    double t = uf_time_now();
    const char *name = uf_gemm_backend_name(&dev);
    fprintf(stderr, "  auto: %s (%.2f s)\n", name, uf_time_now() - t);
    CHECK(name && *name);
    for (int l = 0; l < 4; l++) {
        enum uf_gemm_backend b = uf_gemm_backend_for(&dev, l & 1, l & 2);
        CHECK(b == UF_GEMM_OWN || b == UF_GEMM_CLBLAST);
        double e = one(17, 33, 65, l & 1, l & 2, 3, 11, -0.5f, 0.75f, 1);
        CHECK_MSG(e < 1e-5, "auto ta=%d tb=%d err %.3g", l & 1, (l >> 1) & 1, e);
    }
}

int main(void) {
    uf_device_init(&dev, NULL);
    fprintf(stderr, "device: %s\n", dev.name);
    static const struct { enum uf_gemm_backend b; const char *name; } backends[] = {
        {UF_GEMM_OWN, "own"}, {UF_GEMM_CLBLAST, "clblast"}};
    for (size_t i = 0; i < UF_ARRAY_LEN(backends); i++) {
        uf_gemm_set_backend(&dev, backends[i].b);
        backend = backends[i].name;
        CHECK_STR(uf_gemm_backend_name(&dev), backend);
        fprintf(stderr, "backend: %s\n", backend);
        UF_RUN(test_gemm_shapes);
        UF_RUN(test_gemm_offsets_ld_alpha_beta);
        UF_RUN(test_gemm_strided_batched);
    }
    uf_gemm_set_backend(&dev, UF_GEMM_OWN);
    UF_RUN(test_gemm_own_deterministic);
    if (getenv("UNFORGET_GEMM")) fprintf(stderr, "  note: UNFORGET_GEMM is set; auto follows it\n");
    UF_RUN(test_gemm_auto);
    uf_device_free(&dev);
    return uf_test_summary();
}
