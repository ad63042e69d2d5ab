/* gemm.c: GEMM over CLBlast, plus the plain-C reference (see gemm.h). */
#include "gemm.h"

#include <clblast_c.h>

#include "util.h"

static const char *clblast_status_name(CLBlastStatusCode s) {
    switch (s) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
    case CLBlastInvalidBatchCount: return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalThreadsDim: return "CLBlastInvalidLocalThreadsDim";
    case CLBlastInvalidLocalThreadsTotal: return "CLBlastInvalidLocalThreadsTotal";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return uf_cl_error_name((cl_int)s);
    }
}

static void check(struct uf_device *d, CLBlastStatusCode s, const char *what, size_t m, size_t n,
                  size_t k) {
    if (s == CLBlastSuccess) return;
    uf_fatal(1, "CLBlast error %s (%d) in %s (m=%zu n=%zu k=%zu) on %s\n  hint: %s",
             clblast_status_name(s), (int)s, what, m, n, k, d->name,
             uf_cl_error_hint(s > -1000 ? (cl_int)s : 0));
}

void uf_gemm(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
             cl_mem A, size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta,
             cl_mem C, size_t c_off, size_t ldc) {
    if (m == 0 || n == 0) return;
    cl_event ev = NULL;
    CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                                       tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha,
                                       A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc,
                                       &d->queue, d->prof ? &ev : NULL);
    check(d, s, "CLBlastSgemm", m, n, k);
    if (ev) uf_device_profile_add(d, ev, "clblast_sgemm");
}

void uf_gemm_batched(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k,
                     float alpha, cl_mem A, size_t a_off, size_t lda, size_t a_stride, cl_mem B,
                     size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem C, size_t c_off,
                     size_t ldc, size_t c_stride, size_t batch) {
    if (m == 0 || n == 0 || batch == 0) return;
    cl_event ev = NULL;
    CLBlastStatusCode s = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, ta ? CLBlastTransposeYes : CLBlastTransposeNo,
        tb ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, A, a_off, lda, a_stride, B,
        b_off, ldb, b_stride, beta, C, c_off, ldc, c_stride, batch, &d->queue, d->prof ? &ev : NULL);
    check(d, s, "CLBlastSgemmStridedBatched", m, n, k);
    if (ev) uf_device_profile_add(d, ev, "clblast_sgemm_batched");
}

const char *uf_gemm_backend_name(struct uf_device *d) {
    (void)d;
    return "clblast";
}

void uf_gemm_ref(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t p = 0; p < k; p++) {
                double a = ta ? A[p * lda + i] : A[i * lda + p];
                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                acc += a * b;
            }
            double c = beta == 0.0f ? 0.0 : (double)beta * C[i * ldc + j];
            C[i * ldc + j] = (float)((double)alpha * acc + c);
        }
}
