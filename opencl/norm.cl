/* norm.cl: RMSNorm forward/backward (runtime/ops/ops.c; oracle uf_ref_rmsnorm_*).
 * y = x * rstd * wt, wt = plus_one ? 1 + w : w, rstd = 1 / sqrt(mean(x^2) + eps).
 * Two variants, selected by uf_ops_cpu_path (ops.h: CPU devices the CPU one, others the GPU one):
 *   GPU: uf_rmsnorm_forward, uf_rmsnorm_backward_dx: one work-group per row, local size L (power
 *        of two, about 8 elements per work-item, at most 256), consecutive work-items read
 *        consecutive floats, fixed-order tree sums in local memory (uf_wg_sum); loops step over
 *        the row in blocks of L (uniform trip count, UF_VEC_SYNC, common.cl). dw: work-item d of
 *        uf_rmsnorm_backward_dw_part sums column d over a chunk of rows (coalesced across d),
 *        uf_rmsnorm_backward_dw_sum adds the chunks in order (no atomics).
 *   CPU: the *_rows kernels (end of file): one work-item per row (per 16 columns for dw) with
 *        explicit 16-wide vectors; dw_sum is shared. */

__kernel void uf_rmsnorm_forward(__global const float *x, ulong xo, __global const float *w,
                                 ulong wo, float eps, int plus_one, __global float *y, ulong yo,
                                 __global float *rstd, ulong ro, int D, __local float *s) {
    size_t n = get_group_id(0), l = get_local_id(0), L = get_local_size(0);
    __global const float *xr = x + xo + n * D;
    __global float *yr = y + yo + n * D;
    float acc = 0.0f;
    for (size_t b = 0; b < (size_t)D; b += L) {
        if (b + l < (size_t)D) acc += xr[b + l] * xr[b + l];
        UF_VEC_SYNC();
    }
    float r = rsqrt(uf_wg_sum(acc, s) / D + eps);
    for (size_t b = 0; b < (size_t)D; b += L) {
        size_t d = b + l;
        if (d < (size_t)D) yr[d] = xr[d] * r * (plus_one ? 1.0f + w[wo + d] : w[wo + d]);
        UF_VEC_SYNC();
    }
    if (l == 0) rstd[ro + n] = r;
}

/* dx += r wt dy - x r^3 / D * sum(dy wt x) */
__kernel void uf_rmsnorm_backward_dx(__global const float *x, ulong xo, __global const float *w,
                                     ulong wo, __global const float *rstd, ulong ro,
                                     __global const float *dy, ulong dyo, int plus_one,
                                     __global float *dx, ulong dxo, int D, __local float *s) {
    size_t n = get_group_id(0), l = get_local_id(0), L = get_local_size(0);
    __global const float *xr = x + xo + n * D, *dyr = dy + dyo + n * D;
    __global float *dxr = dx + dxo + n * D;
    float acc = 0.0f;
    for (size_t b = 0; b < (size_t)D; b += L) {
        size_t d = b + l;
        if (d < (size_t)D) acc += dyr[d] * (plus_one ? 1.0f + w[wo + d] : w[wo + d]) * xr[d];
        UF_VEC_SYNC();
    }
    float dot = uf_wg_sum(acc, s);
    float r = rstd[ro + n], c = r * r * r * dot / D;
    for (size_t b = 0; b < (size_t)D; b += L) {
        size_t d = b + l;
        if (d < (size_t)D) dxr[d] += r * (plus_one ? 1.0f + w[wo + d] : w[wo + d]) * dyr[d] - c * xr[d];
        UF_VEC_SYNC();
    }
}

/* global (D rounded up to the local size, C), local (Ld, 1): part[c, d] = sum over the rows n of
 * chunk c (R rows) of dy[n, d] x[n, d] rstd[n] */
__kernel void uf_rmsnorm_backward_dw_part(__global const float *x, ulong xo,
                                          __global const float *rstd, ulong ro,
                                          __global const float *dy, ulong dyo,
                                          __global float *part, int N, int D, int R) {
    size_t d = get_global_id(0), c = get_global_id(1);
    int n0 = (int)c * R, n1 = min(N, n0 + R);
    float acc = 0.0f;
    for (int n = n0; n < n1; n++) {
        size_t i = (size_t)n * D + d;
        if (d < (size_t)D) acc += dy[dyo + i] * x[xo + i] * rstd[ro + n];
        UF_VEC_SYNC();
    }
    if (d < (size_t)D) part[c * D + d] = acc;
}

/* global (D rounded up), local (Ld): dw[d] += sum over chunks c in order of part[c, d] */
__kernel void uf_rmsnorm_backward_dw_sum(__global const float *part, int C, __global float *dw,
                                         ulong dwo, int D) {
    size_t d = get_global_id(0);
    float acc = 0.0f;
    for (int c = 0; c < C; c++) {
        if (d < (size_t)D) acc += part[(size_t)c * D + d];
        UF_VEC_SYNC();
    }
    if (d < (size_t)D) dw[dwo + d] += acc;
}

/* ---- CPUs: one work-item per row (global N, local 1) with explicit 16-wide vectors ----------- */
__kernel void uf_rmsnorm_forward_rows(__global const float *x, ulong xo, __global const float *w,
                                      ulong wo, float eps, int plus_one, __global float *y, ulong yo,
                                      __global float *rstd, ulong ro, int D, int N) {
    size_t n = get_global_id(0), D16 = (size_t)D / 16 * 16, d;
    if (n >= (size_t)N) return;
    __global const float *xr = x + xo + n * D, *wr = w + wo;
    __global float *yr = y + yo + n * D;
    float16 a16 = (float16)0.0f;
    for (d = 0; d < D16; d += 16) {
        float16 v = vload16(0, xr + d);
        a16 += v * v;
    }
    float acc = uf_hsum16(a16);
    for (d = D16; d < (size_t)D; d++) acc += xr[d] * xr[d];
    float r = rsqrt(acc / D + eps), one = plus_one ? 1.0f : 0.0f;
    for (d = 0; d < D16; d += 16)
        vstore16(vload16(0, xr + d) * r * (one + vload16(0, wr + d)), 0, yr + d);
    for (d = D16; d < (size_t)D; d++) yr[d] = xr[d] * r * (one + wr[d]);
    rstd[ro + n] = r;
}

__kernel void uf_rmsnorm_backward_dx_rows(__global const float *x, ulong xo,
                                          __global const float *w, ulong wo,
                                          __global const float *rstd, ulong ro,
                                          __global const float *dy, ulong dyo, int plus_one,
                                          __global float *dx, ulong dxo, int D, int N) {
    size_t n = get_global_id(0), D16 = (size_t)D / 16 * 16, d;
    if (n >= (size_t)N) return;
    __global const float *xr = x + xo + n * D, *dyr = dy + dyo + n * D, *wr = w + wo;
    __global float *dxr = dx + dxo + n * D;
    float one = plus_one ? 1.0f : 0.0f;
    float16 a16 = (float16)0.0f;
    for (d = 0; d < D16; d += 16)
        a16 += vload16(0, dyr + d) * (one + vload16(0, wr + d)) * vload16(0, xr + d);
    float dot = uf_hsum16(a16);
    for (d = D16; d < (size_t)D; d++) dot += dyr[d] * (one + wr[d]) * xr[d];
    float r = rstd[ro + n], c = r * r * r * dot / D;
    for (d = 0; d < D16; d += 16)
        vstore16(vload16(0, dxr + d) + r * (one + vload16(0, wr + d)) * vload16(0, dyr + d) -
                     c * vload16(0, xr + d), 0, dxr + d);
    for (d = D16; d < (size_t)D; d++) dxr[d] += r * (one + wr[d]) * dyr[d] - c * xr[d];
}

/* global (ceil(D/16), C): work-item (j, c) owns columns 16j..16j+15 of chunk c (R rows) */
__kernel void uf_rmsnorm_backward_dw_part_rows(__global const float *x, ulong xo,
                                               __global const float *rstd, ulong ro,
                                               __global const float *dy, ulong dyo,
                                               __global float *part, int N, int D, int R) {
    size_t d0 = get_global_id(0) * 16, c = get_global_id(1);
    int n0 = (int)c * R, n1 = min(N, n0 + R);
    if (d0 + 16 <= (size_t)D) {
        float16 a16 = (float16)0.0f;
        for (int n = n0; n < n1; n++) {
            size_t i = (size_t)n * D + d0;
            a16 += vload16(0, dy + dyo + i) * vload16(0, x + xo + i) * rstd[ro + n];
        }
        vstore16(a16, 0, part + c * D + d0);
    } else {
        for (size_t d = d0; d < (size_t)D; d++) {
            float acc = 0.0f;
            for (int n = n0; n < n1; n++) {
                size_t i = (size_t)n * D + d;
                acc += dy[dyo + i] * x[xo + i] * rstd[ro + n];
            }
            part[c * D + d] = acc;
        }
    }
}
