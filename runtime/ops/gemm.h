/* gemm.h: the one matrix multiply everything uses. Row-major:
 *   C (m, n) = alpha * op(A) op(B) + beta * C,   op(A) (m, k), op(B) (k, n)
 * A is (m, k) when !ta (lda >= k) and (k, m) when ta (lda >= m); likewise B is (k, n) / (n, k).
 * Offsets and leading dimensions are in elements. The batched form repeats it `batch` times with
 * element strides between consecutive A, B and C matrices.
 * Backends: CLBlast, or the project's own kernels (opencl/gemm.cl: packed, register-blocked, for
 * CPU-like devices). The choice is made per device and per layout (ta, tb) by measurement on first
 * use (about 1 s on a 2-core CPU: one 256x1024x512 product per layout and backend, warm-up
 * excluded), cached on disk next to the kernel cache
 * (uf_cache_dir("kernels"), keyed by device, driver and the gemm.cl source hash) so later
 * processes do not measure again. Under GPU limits (core/device.h) CLBlast is taken without
 * measuring (the own kernels are the CPU-shaped variant; on the CPU underneath they would win).
 * $UNFORGET_GEMM=clblast|own|auto overrides the measurement and GPU limits;
 * uf_gemm_set_backend() overrides all. `-v` logs the choice and the measured GFLOP/s.
 * The own backend is deterministic: reruns are bit-identical. k = 0 (C = beta C) always runs on
 * the own kernels (CLBlast rejects it). */
#ifndef UF_GEMM_H
#define UF_GEMM_H

#include <stdbool.h>

#include "core/tensor.h"

void uf_gemm(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
             cl_mem A, size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta,
             cl_mem C, size_t c_off, size_t ldc);

/* The same with B stored as bf16 (ushort, the high half of an f32; b_off and ldb in bf16
 * elements): frozen base weights. Everything accumulates in f32. Where the own kernels are
 * selected for this layout (CPUs), B is widened exactly while packed (or read, for small m):
 * bit-identical to the own backend's uf_gemm on the f32 values of the same bf16 numbers. Where
 * CLBlast is selected (GPUs; CLBlast has no bf16), B is widened into an f32 buffer of at most
 * the scratch limit (64 MiB) in row chunks, one CLBlast call per chunk. */
void uf_gemm_bf16(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                  cl_mem A, size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb,
                  float beta, cl_mem C, size_t c_off, size_t ldc);

void uf_gemm_batched(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k,
                     float alpha, cl_mem A, size_t a_off, size_t lda, size_t a_stride, cl_mem B,
                     size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem C, size_t c_off,
                     size_t ldc, size_t c_stride, size_t batch);

enum uf_gemm_backend { UF_GEMM_AUTO = 0, UF_GEMM_OWN, UF_GEMM_CLBLAST };

/* The own kernels' blocking (model/perfmodel.c counts their launches and traffic from these):
 * C tiles of UF_GEMM_MR x UF_GEMM_NR per work-item; y = x W^T with at most UF_GEMM_SMALL_M rows
 * reads W in place (uf_gemm_nt_small); packed panels use at most UF_GEMM_SCRATCH_DEFAULT bytes
 * unless uf_gemm_set_scratch_limit says otherwise. */
#define UF_GEMM_MR 8
#define UF_GEMM_NR 32
#define UF_GEMM_SMALL_M 128
#define UF_GEMM_SCRATCH_DEFAULT ((size_t)64 << 20)

/* Forces a backend for every later call on this device (UF_GEMM_AUTO: back to env/measurement). */
void uf_gemm_set_backend(struct uf_device *d, enum uf_gemm_backend b);
/* The backend a call with this layout uses now (measures on first use under AUTO). */
enum uf_gemm_backend uf_gemm_backend_for(struct uf_device *d, bool ta, bool tb);
/* "own", "clblast", or e.g. "mixed (nn own, nt own, tn own, tt clblast)"; measures if needed. */
const char *uf_gemm_backend_name(struct uf_device *d);
/* Cap on the own backend's packing buffer and on uf_gemm_bf16's widening buffer, in bytes
 * (default 64 MiB each; 0 = default). Larger problems run in column/row chunks with identical
 * results (own backend). For tests and tuning. */
void uf_gemm_set_scratch_limit(struct uf_device *d, size_t bytes);
/* FLOPs (2 m n k per product, times batch) of every uf_gemm / uf_gemm_bf16 / uf_gemm_batched
 * call on this device since it was initialised, whatever the backend: what the performance
 * model (model/perfmodel.h) predicts for the GEMM family is checked against it. */
double uf_gemm_flops_issued(struct uf_device *d);
/* Frees this module's per-device state (packing buffer); uf_device_free calls it through
 * d->gemm_free, set when the state is created. */
void uf_gemm_release(struct uf_device *d);

/* Plain-C reference with double accumulation (the oracle for tests); same argument meaning. */
void uf_gemm_ref(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);

#endif
