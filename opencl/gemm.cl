/* gemm.cl: the project's own SGEMM, written for CPU-like OpenCL devices (PoCL on AVX-512/AVX2).
 * runtime/ops/gemm.c drives it; it is chosen per device and layout by measurement against CLBlast.
 *
 * Contract (row-major, as runtime/ops/gemm.h): C (m, n) = alpha op(A) op(B) + beta C, batched with
 * element strides (batch = the last NDRange dimension). The host runs, per chunk of columns:
 *   1. uf_gemm_pack32: op(B) (k, n) -> panels P[batch][jb][p][32] (zero past n): every layout of
 *      B becomes one contiguous, unit-stride stream per 32 columns (no TLB/cache-set conflicts for
 *      power-of-two leading dimensions, no column edges in the inner loop).
 *   2. uf_gemm_pack8, only when ta: op(A) rows -> panels P[batch][ib][p][8] (zero past m).
 *      A that is not transposed is read in place (8 row streams), which measured as fast as packed.
 *   3. uf_gemm_block: one work-item per 8x32 block of C: 16 float16 accumulators, per p one
 *      32-float row of the B panel (two vload16) and 8 broadcast A values, 16 fma.
 * except y = x W^T with few rows (m <= SMALL_M in gemm.c): uf_gemm_nt_small reads W in place.
 * bf16 B (frozen base weights stored as bf16, runtime/ops/gemm.h uf_gemm_bf16): uf_gemm_pack32_bf16 and
 * uf_gemm_nt_small_bf16 read B as ushort and widen it exactly (bf16 = high half of an f32), so
 * the block kernel and every accumulation stay f32; no cl_khr_fp16 needed. The widened panels are
 * the same bits as packing the f32 values of those bf16 numbers: results match the f32 path on
 * bf16-rounded weights bit for bit.
 * Launch with work-group size 1: the explicit float16 vectors are the SIMD (zmm) registers; PoCL
 * would otherwise vectorise across work-items. On GPUs this is correct but slow (CLBlast wins
 * the selection there).
 * Deterministic: each C element of uf_gemm_block is one fma chain over p = 0 .. k-1 in order,
 * whatever the chunking (with PoCL 3.1 this matched CLBlast's result bit for bit on every shape
 * tried); uf_gemm_nt_small sums 16 strided partial chains in a fixed tree. Reruns are
 * bit-identical.
 * Not here: K-blocking (measured unnecessary once B is packed: 8x32 blocks reach 85-90% of the
 * per-core fma peak for k up to 8192), local-memory tiling (GPU-style 16x16 tiles: 9 GFLOP/s
 * on PoCL). */

#define UF_GEMM_MR 8
#define UF_GEMM_NR 32

/* X(p, j), p in [0, K), j in [0, n): element X[off + (trans ? j*ld + p : p*ld + j)].
 * P[p_off + (jb*K + p)*W + c] = X(p, jb*W + c), or 0 where jb*W + c >= n. One work-item per W
 * columns x 64 values of p (fewer are slower: per-work-item overhead); batch b reads at
 * X + b*x_bstride and writes at P + b*p_bstride. */
#define UF_GEMM_PACK(W, SUF, T, LD8, LD16, LD1)                                                 \
    __kernel void uf_gemm_pack##W##SUF(int K, int n, __global const T *X, ulong off, ulong ld,  \
                                  ulong x_bstride, int trans, __global float *P, ulong p_off,  \
                                  ulong p_bstride) {                                           \
        int jb = get_global_id(0), j0 = jb * W, p_end = min(K, (int)get_global_id(1) * 64 + 64); \
        X += off + get_global_id(2) * x_bstride;                                               \
        P += p_off + get_global_id(2) * p_bstride + (size_t)jb * K * W;                        \
        for (int p0 = get_global_id(1) * 64; p0 < p_end; p0 += 16) {                           \
            __global float *out = P + (size_t)p0 * W;                                          \
            if (j0 + W <= n && p0 + 16 <= K) {                                                 \
                if (!trans) {                                                                  \
                    for (int p = 0; p < 16; p++)                                               \
                        for (int c = 0; c < W; c += 8)                                         \
                            vstore8(LD8(X + (size_t)(p0 + p) * ld + j0 + c), 0,                \
                                    out + p * W + c);                                          \
                } else {                                                                       \
                    for (int c = 0; c < W; c++) {                                              \
                        float16 v = LD16(X + (size_t)(j0 + c) * ld + p0);                      \
                        out[0 * W + c] = v.s0, out[1 * W + c] = v.s1, out[2 * W + c] = v.s2;   \
                        out[3 * W + c] = v.s3, out[4 * W + c] = v.s4, out[5 * W + c] = v.s5;   \
                        out[6 * W + c] = v.s6, out[7 * W + c] = v.s7, out[8 * W + c] = v.s8;   \
                        out[9 * W + c] = v.s9, out[10 * W + c] = v.sa;                         \
                        out[11 * W + c] = v.sb, out[12 * W + c] = v.sc;                        \
                        out[13 * W + c] = v.sd, out[14 * W + c] = v.se;                        \
                        out[15 * W + c] = v.sf;                                                \
                    }                                                                          \
                }                                                                              \
            } else {                                                                           \
                int np = min(16, K - p0);                                                      \
                for (int p = 0; p < np; p++)                                                   \
                    for (int c = 0; c < W; c++) {                                              \
                        int j = j0 + c;                                                        \
                        size_t at = trans ? (size_t)j * ld + p0 + p : (size_t)(p0 + p) * ld + j; \
                        out[p * W + c] = j < n ? LD1(X[at]) : 0.0f;                            \
                    }                                                                          \
            }                                                                                  \
        }                                                                                      \
    }

#define UF_LD8_F32(p) vload8(0, p)
#define UF_LD16_F32(p) vload16(0, p)
#define UF_LD1_F32(v) (v)
/* bf16 (the high half of an f32) widened exactly: the frozen-base variants read ushort */
#define UF_LD8_BF16(p) as_float8(convert_uint8(vload8(0, p)) << 16)
#define UF_LD16_BF16(p) as_float16(convert_uint16(vload16(0, p)) << 16)
#define UF_LD1_BF16(v) as_float((uint)(v) << 16)
UF_GEMM_PACK(8, , float, UF_LD8_F32, UF_LD16_F32, UF_LD1_F32)
UF_GEMM_PACK(32, , float, UF_LD8_F32, UF_LD16_F32, UF_LD1_F32)
UF_GEMM_PACK(32, _bf16, ushort, UF_LD8_BF16, UF_LD16_BF16, UF_LD1_BF16)

/* One 8x32 block of C per work-item. Blocks are visited in groups of `group` row-blocks: within a
 * group, consecutive work-items walk down the rows (sharing one B panel), then move right; the
 * group's A rows stay in cache while B panels stream once per group.
 * A element (i, p) of block ib, row r = i - 8*ib: A[a_off + ib*a_bs + r*a_rs + p*a_ps]
 *   (in place, not transposed: a_bs = 8*lda, a_rs = lda, a_ps = 1; packed: 8*k, 1, 8).
 * Bp: packed panels of this chunk (uf_gemm_pack32), batch b at Bp + b*bp_bstride.
 * NDRange: (number of blocks, batch), work-group (1, 1). */
__kernel void uf_gemm_block(int m, int n, int k, int group, float alpha, float beta,
                            __global const float *A, ulong a_off, ulong a_bs, ulong a_rs,
                            ulong a_ps, ulong a_bstride, __global const float *Bp,
                            ulong bp_bstride, __global float *C, ulong c_off, ulong ldc,
                            ulong c_bstride) {
    int nbi = (m + UF_GEMM_MR - 1) / UF_GEMM_MR, nbj = (n + UF_GEMM_NR - 1) / UF_GEMM_NR;
    int id = get_global_id(0), per_group = group * nbj;
    int first = id / per_group * group, gsize = min(nbi - first, group), in = id % per_group;
    int ib = first + in % gsize, jb = in / gsize;
    int i0 = ib * UF_GEMM_MR, j0 = jb * UF_GEMM_NR;
    size_t b = get_global_id(1);
    __global const float *a = A + a_off + b * a_bstride + ib * a_bs;
    __global const float *bp = Bp + b * bp_bstride + (size_t)jb * k * UF_GEMM_NR;
    C += c_off + b * c_bstride;
    int rows = min(UF_GEMM_MR, m - i0);
    /* rows past m read row m-1 (in bounds; their results are not stored) */
    __global const float *ar[UF_GEMM_MR];
#pragma unroll
    for (int r = 0; r < UF_GEMM_MR; r++) ar[r] = a + min(r, rows - 1) * a_rs;
    float16 acc[UF_GEMM_MR][2];
#pragma unroll
    for (int r = 0; r < UF_GEMM_MR; r++) acc[r][0] = acc[r][1] = 0.0f;
    /* hot loop: 2 loads + 8 broadcasts + 16 fma per p */
    size_t pa = 0;
    for (int p = 0; p < k; p++) {
        float16 b0 = vload16(0, bp), b1 = vload16(1, bp);
#pragma unroll
        for (int r = 0; r < UF_GEMM_MR; r++) {
            float16 av = (float16)(ar[r][pa]);
            acc[r][0] = fma(av, b0, acc[r][0]);
            acc[r][1] = fma(av, b1, acc[r][1]);
        }
        bp += UF_GEMM_NR;
        pa += a_ps;
    }
    if (rows == UF_GEMM_MR && j0 + UF_GEMM_NR <= n) {
#pragma unroll
        for (int r = 0; r < UF_GEMM_MR; r++) {
            __global float *c = C + (size_t)(i0 + r) * ldc + j0;
            float16 c0 = alpha * acc[r][0], c1 = alpha * acc[r][1];
            if (beta != 0.0f) {
                c0 = fma((float16)beta, vload16(0, c), c0);
                c1 = fma((float16)beta, vload16(1, c), c1);
            }
            vstore16(c0, 0, c);
            vstore16(c1, 1, c);
        }
    } else {
        int cols = min(UF_GEMM_NR, n - j0);
        for (int r = 0; r < rows; r++) {
            float tmp[UF_GEMM_NR];
            vstore16(alpha * acc[r][0], 0, tmp);
            vstore16(alpha * acc[r][1], 1, tmp);
            __global float *c = C + (size_t)(i0 + r) * ldc + j0;
            for (int j = 0; j < cols; j++) c[j] = beta != 0.0f ? fma(beta, c[j], tmp[j]) : tmp[j];
        }
    }
}

/* Few rows of A, B transposed (C = A B^T, B (n, k) rows contiguous in k, A (m, k) not
 * transposed): B is read in place. With a handful of rows (generation), packing B would triple
 * the memory traffic of what is a memory-bound product. One work-item per 4 columns of C and
 * every row (in groups of 4); float16 partial sums over p, reduced in a fixed order at the end.
 * NDRange: (ceil(n / 4), batch), work-group (1, 1). */
#define UF_GEMM_NT_SMALL(SUF, T, LD16, LD1)                                                         \
__kernel void uf_gemm_nt_small##SUF(int m, int n, int k, float alpha, float beta,                   \
                               __global const float *A, ulong a_off, ulong lda, ulong a_bstride,    \
                               __global const T *B, ulong b_off, ulong ldb, ulong b_bstride,        \
                               __global float *C, ulong c_off, ulong ldc, ulong c_bstride) {        \
    int j0 = get_global_id(0) * 4;                                                                  \
    size_t b = get_global_id(1);                                                                    \
    A += a_off + b * a_bstride;                                                                     \
    B += b_off + b * b_bstride;                                                                     \
    C += c_off + b * c_bstride;                                                                     \
    __global const T *br[4];                                                                        \
_Pragma("unroll")                                                                                   \
    for (int c = 0; c < 4; c++) br[c] = B + (size_t)min(j0 + c, n - 1) * ldb;                       \
    for (int i0 = 0; i0 < m; i0 += 4) {                                                             \
        __global const float *ar[4];                                                                \
_Pragma("unroll")                                                                                   \
        for (int r = 0; r < 4; r++) ar[r] = A + (size_t)min(i0 + r, m - 1) * lda;                   \
        float16 acc[4][4];                                                                          \
        float tail[4][4];                                                                           \
_Pragma("unroll")                                                                                   \
        for (int r = 0; r < 4; r++)                                                                 \
_Pragma("unroll")                                                                                   \
            for (int c = 0; c < 4; c++) acc[r][c] = 0.0f, tail[r][c] = 0.0f;                        \
        int p = 0;                                                                                  \
        for (; p + 16 <= k; p += 16) {                                                              \
            float16 bv[4];                                                                          \
_Pragma("unroll")                                                                                   \
            for (int c = 0; c < 4; c++) bv[c] = LD16(br[c] + p);                                    \
_Pragma("unroll")                                                                                   \
            for (int r = 0; r < 4; r++) {                                                           \
                float16 av = vload16(0, ar[r] + p);                                                 \
_Pragma("unroll")                                                                                   \
                for (int c = 0; c < 4; c++) acc[r][c] = fma(av, bv[c], acc[r][c]);                  \
            }                                                                                       \
        }                                                                                           \
        for (; p < k; p++)                                                                          \
_Pragma("unroll")                                                                                   \
            for (int r = 0; r < 4; r++)                                                             \
_Pragma("unroll")                                                                                   \
                for (int c = 0; c < 4; c++) tail[r][c] = fma(ar[r][p], LD1(br[c][p]), tail[r][c]);  \
        for (int r = 0; r < min(4, m - i0); r++)                                                    \
            for (int c = 0; c < min(4, n - j0); c++) {                                              \
                float16 x = acc[r][c];                                                              \
                float8 y = x.lo + x.hi;                                                             \
                float4 z = y.lo + y.hi;                                                             \
                float2 w = z.lo + z.hi;                                                             \
                float v = alpha * (w.x + w.y + tail[r][c]);                                         \
                __global float *cp = C + (size_t)(i0 + r) * ldc + j0 + c;                           \
                *cp = beta != 0.0f ? fma(beta, *cp, v) : v;                                         \
            }                                                                                       \
    }                                                                                               \
}
UF_GEMM_NT_SMALL(, float, UF_LD16_F32, UF_LD1_F32)
UF_GEMM_NT_SMALL(_bf16, ushort, UF_LD16_BF16, UF_LD1_BF16)
