/* norm.cl: RMSNorm forward/backward (runtime/ops.c; oracle uf_ref_rmsnorm_*).
 * y = x * rstd * wt, wt = plus_one ? 1 + w : w, rstd = 1 / sqrt(mean(x^2) + eps).
 * Row kernels: one work-group per row, local size L (power of two), fixed-order tree sums. */

__kernel void uf_rmsnorm_forward(__global const float *x, ulong xo, __global const float *w,
                                 ulong wo, float eps, int plus_one, __global float *y, ulong yo,
                                 __global float *rstd, ulong ro, int D, __local float *s) {
    size_t n = get_group_id(0), l = get_local_id(0), L = get_local_size(0);
    __global const float *xr = x + xo + n * D;
    __global float *yr = y + yo + n * D;
    float acc = 0.0f;
    for (size_t d = l; d < (size_t)D; d += L) acc += xr[d] * xr[d];
    float r = rsqrt(uf_wg_sum(acc, s) / D + eps);
    for (size_t d = l; d < (size_t)D; d += L) {
        float wt = plus_one ? 1.0f + w[wo + d] : w[wo + d];
        yr[d] = xr[d] * r * wt;
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
    for (size_t d = l; d < (size_t)D; d += L) {
        float wt = plus_one ? 1.0f + w[wo + d] : w[wo + d];
        acc += dyr[d] * wt * xr[d];
    }
    float dot = uf_wg_sum(acc, s);
    float r = rstd[ro + n], c = r * r * r * dot / D;
    for (size_t d = l; d < (size_t)D; d += L) {
        float wt = plus_one ? 1.0f + w[wo + d] : w[wo + d];
        dxr[d] += r * wt * dyr[d] - c * xr[d];
    }
}

/* global (D, C): part[c, d] = sum over rows n in chunk c (R rows) of dy[n, d] x[n, d] rstd[n] */
__kernel void uf_rmsnorm_backward_dw_part(__global const float *x, ulong xo,
                                          __global const float *rstd, ulong ro,
                                          __global const float *dy, ulong dyo,
                                          __global float *part, int N, int D, int R) {
    size_t d = get_global_id(0), c = get_global_id(1);
    if (d >= (size_t)D) return;
    int n0 = (int)c * R, n1 = min(N, n0 + R);
    float acc = 0.0f;
    for (int n = n0; n < n1; n++) {
        size_t i = (size_t)n * D + d;
        acc += dy[dyo + i] * x[xo + i] * rstd[ro + n];
    }
    part[c * D + d] = acc;
}

/* global (D): dw[d] += sum over chunks c in order of part[c, d] */
__kernel void uf_rmsnorm_backward_dw_sum(__global const float *part, int C, __global float *dw,
                                         ulong dwo, int D) {
    size_t d = get_global_id(0);
    if (d >= (size_t)D) return;
    float acc = 0.0f;
    for (int c = 0; c < C; c++) acc += part[(size_t)c * D + d];
    dw[dwo + d] += acc;
}
