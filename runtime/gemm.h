/* gemm.h: the one matrix multiply everything uses. Row-major:
 *   C (m, n) = alpha * op(A) op(B) + beta * C,   op(A) (m, k), op(B) (k, n)
 * A is (m, k) when !ta (lda >= k) and (k, m) when ta (lda >= m); likewise B is (k, n) / (n, k).
 * Offsets and leading dimensions are in elements. The batched form repeats it `batch` times with
 * element strides between consecutive A, B and C matrices.
 * Backend: CLBlast (uf_gemm_backend_name() tells which is active); the choice is per device. */
#ifndef UF_GEMM_H
#define UF_GEMM_H

#include <stdbool.h>

#include "tensor.h"

void uf_gemm(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
             cl_mem A, size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta,
             cl_mem C, size_t c_off, size_t ldc);

void uf_gemm_batched(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k,
                     float alpha, cl_mem A, size_t a_off, size_t lda, size_t a_stride, cl_mem B,
                     size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem C, size_t c_off,
                     size_t ldc, size_t c_stride, size_t batch);

const char *uf_gemm_backend_name(struct uf_device *d);

/* Plain-C reference with double accumulation (the oracle for tests); same argument meaning. */
void uf_gemm_ref(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
