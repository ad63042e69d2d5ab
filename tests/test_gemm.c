/* test_gemm.c: uf_gemm / uf_gemm_batched against the plain-C reference over odd shapes, every
 * transpose combination, offsets, leading dimensions larger than the matrix, and alpha/beta. */
#include "gemm.h"
#include "selftest.h"
#include "uf_test.h"
#include "util.h"

static struct uf_device dev;

static void fill(struct uf_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * uf_rng_uniform(r) - 1);
}

/* One GEMM with padding: leading dims = natural + pad, buffers start at offset `off`. */
static double one(size_t m, size_t n, size_t k, bool ta, bool tb, size_t pad, size_t off,
                  float alpha, float beta, size_t batch) {
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
    free(A), free(B), free(C), free(R);
    return err;
}

static void test_gemm_shapes(void) {
    static const size_t shapes[][3] = {{1, 1, 1}, {17, 33, 65}, {2, 1, 3}, {64, 64, 64},
                                       {3, 129, 31}, {100, 7, 1}};
    for (size_t s = 0; s < UF_ARRAY_LEN(shapes); s++)
        for (int t = 0; t < 4; t++) {
            double e = one(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, (t >> 1) & 1, 0, 0,
                           1.0f, 0.0f, 1);
            CHECK_MSG(e < 1e-5, "m=%zu n=%zu k=%zu ta=%d tb=%d err %.3g", shapes[s][0],
                      shapes[s][1], shapes[s][2], t & 1, (t >> 1) & 1, e);
        }
}

static void test_gemm_offsets_ld_alpha_beta(void) {
    for (int t = 0; t < 4; t++) {
        double e = one(17, 33, 65, t & 1, (t >> 1) & 1, 3, 11, -0.5f, 0.75f, 1);
        CHECK_MSG(e < 1e-5, "ta=%d tb=%d err %.3g", t & 1, (t >> 1) & 1, e);
    }
}

static void test_gemm_strided_batched(void) {
    for (int t = 0; t < 4; t++) {
        double e = one(17, 33, 65, t & 1, (t >> 1) & 1, 1, 5, 1.5f, 1.0f, 3);
        CHECK_MSG(e < 1e-5, "batched ta=%d tb=%d err %.3g", t & 1, (t >> 1) & 1, e);
        e = one(1, 1, 1, t & 1, (t >> 1) & 1, 0, 0, 1.0f, 0.0f, 4);
        CHECK_MSG(e < 1e-5, "batched 1x1x1 err %.3g", e);
    }
}

int main(void) {
    uf_device_init(&dev, NULL);
    fprintf(stderr, "device: %s, gemm backend: %s\n", dev.name, uf_gemm_backend_name(&dev));
    UF_RUN(test_gemm_shapes);
    UF_RUN(test_gemm_offsets_ld_alpha_beta);
    UF_RUN(test_gemm_strided_batched);
    uf_device_free(&dev);
    return uf_test_summary();
}
