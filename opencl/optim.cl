/* optim.cl: deterministic reductions (sum, sum of squares) and AdamW (runtime/ops/ops.c).
 * Two variants, selected by uf_ops_cpu_path (ops.h: CPU devices the CPU one, others the GPU one):
 *   GPU: uf_reduce_partial: G work-groups of L items stride over x (item i of group g reads
 *        g*L + i, then + G*L, ...: coalesced), a fixed-order tree gives part[g]; uf_adamw: one
 *        work-item per element (coalesced; elementwise, so no reduction of its own: the gradient
 *        norm it reads comes from the two-level sum of squares).
 *   CPU: uf_reduce_partial_chunks (work-item g sums a contiguous chunk with 16-wide vectors) and
 *        uf_adamw_v16 (16 elements per work-item).
 * Both: uf_reduce_final, one work-group, reduces part[] in a fixed order. */

__kernel void uf_reduce_partial(__global const float *x, ulong xo, ulong n, int square,
                                __global float *part, __local float *s) {
    size_t l = get_local_id(0), L = get_local_size(0), stride = get_global_size(0);
    float acc = 0.0f;
    for (size_t b = get_group_id(0) * L; b < n; b += stride) { /* uniform within the group */
        if (b + l < n) {
            float v = x[xo + b + l];
            acc += square ? v * v : v;
        }
        UF_VEC_SYNC();
    }
    float r = uf_wg_sum(acc, s);
    if (l == 0) part[get_group_id(0)] = r;
}

/* CPUs: global G (local 1); work-item g sums the contiguous chunk [g*C, min(n, (g+1)*C)) (C a
 * multiple of 16) with 16-wide vectors into part[g]. */
__kernel void uf_reduce_partial_chunks(__global const float *x, ulong xo, ulong n, int square,
                                       __global float *part, ulong C) {
    size_t g = get_global_id(0), i0 = g * C, i1 = min((size_t)n, i0 + (size_t)C), i = i0;
    __global const float *p = x + xo;
    float16 a16 = (float16)0.0f;
    for (; i + 16 <= i1; i += 16) {
        float16 v = vload16(0, p + i);
        a16 += square ? v * v : v;
    }
    float acc = uf_hsum16(a16);
    for (; i < i1; i++) acc += square ? p[i] * p[i] : p[i];
    part[g] = acc;
}

/* one work-group: out[0] (= or +=) sum of part[0..np) */
__kernel void uf_reduce_final(__global const float *part, int np, __global float *out, ulong oo,
                              int accumulate, __local float *s) {
    size_t l = get_local_id(0), L = get_local_size(0);
    float acc = 0.0f;
    for (size_t i = l; i < (size_t)np; i += L) acc += part[i];
    float r = uf_wg_sum(acc, s);
    if (l == 0) out[oo] = accumulate ? out[oo] + r : r;
}

/* Gradient-norm clipping outside the optimizer (ops.h), with AdamW's factor:
 * clip = min(1, max_norm / (sqrt(gn) + 1e-6)); g *= clip. */
__kernel void uf_clip_scale(__global float *g, ulong go, __global const float *gn, ulong gno,
                            float max_norm, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float clip = fmin(1.0f, max_norm / (sqrt(gn[gno]) + 1e-6f));
    g[go + i] *= clip;
}

/* count[0] += 1 when AdamW's clip factor for gn is below 1 (the step is clipped); one work-item */
__kernel void uf_clip_count(__global const float *gn, ulong gno, float max_norm,
                            __global float *count, ulong co) {
    if (get_global_id(0) != 0) return;
    if (max_norm > 0.0f && max_norm / (sqrt(gn[gno]) + 1e-6f) < 1.0f) count[co] += 1.0f;
}

/* Non-finite guard (ops.h uf_op_nonfinite_guard), one work-item: a step is bad when gn[0] or
 * any of terms[0..nt) is NaN or Inf. health: [0] bad steps, [1] first bad step, [2] bit i set:
 * terms[i] non-finite at the first bad step, bit 30: the gradient norm. A bad step's gn[0]
 * becomes NaN, which the AdamW kernels' skip_nonfinite reads. */
__kernel void uf_nonfinite_guard(__global const float *terms, ulong to, int nt,
                                 __global float *gn, ulong gno, __global int *health, ulong ho,
                                 int step) {
    health += ho;
    if (get_global_id(0) != 0) return;
    int bits = isfinite(gn[gno]) ? 0 : (1 << 30);
    for (int i = 0; i < nt; i++)
        if (!isfinite(terms[to + i])) bits |= 1 << i;
    if (bits == 0) return;
    if (health[0] == 0) {
        health[1] = step;
        health[2] = bits;
    }
    health[0] += 1;
    gn[gno] = NAN;
}

/* AdamW (ops.h): bc1 = 1 - b1^step, bc2 = 1 - b2^step; gnorm_sq read only when max_norm > 0 or
 * skip_nonfinite (then a non-finite gnorm_sq leaves p, m, v as they are). */
__kernel void uf_adamw(__global float *p, ulong po, __global const float *g, ulong go,
                       __global float *m, ulong mo, __global float *v, ulong vo,
                       __global const float *gn, ulong gno, ulong n, float lr, float b1, float b2,
                       float eps, float wd, float max_norm, float grad_scale, float bc1, float bc2,
                       int skip_nonfinite) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    if (skip_nonfinite && !isfinite(gn[gno])) return;
    float clip = max_norm > 0.0f ? fmin(1.0f, max_norm / (sqrt(gn[gno]) + 1e-6f)) : 1.0f;
    float gg = clip * grad_scale * g[go + i];
    float mm = b1 * m[mo + i] + (1.0f - b1) * gg;
    float vv = b2 * v[vo + i] + (1.0f - b2) * gg * gg;
    m[mo + i] = mm;
    v[vo + i] = vv;
    float pv = p[po + i];
    p[po + i] = pv - lr * ((mm / bc1) / (sqrt(vv / bc2) + eps) + wd * pv);
}

/* CPUs: the same with explicit 16-wide vectors, work-item j owns [16j, 16j + 16) (global
 * ceil(n/16), local 1). */
__kernel void uf_adamw_v16(__global float *p, ulong po, __global const float *g, ulong go,
                           __global float *m, ulong mo, __global float *v, ulong vo,
                           __global const float *gn, ulong gno, ulong n, float lr, float b1,
                           float b2, float eps, float wd, float max_norm, float grad_scale,
                           float bc1, float bc2, int skip_nonfinite) {
    size_t i = get_global_id(0) * 16;
    if (skip_nonfinite && !isfinite(gn[gno])) return;
    float clip = max_norm > 0.0f ? fmin(1.0f, max_norm / (sqrt(gn[gno]) + 1e-6f)) : 1.0f;
    float k = clip * grad_scale;
    if (i + 16 <= n) {
        float16 gg = k * vload16(0, g + go + i);
        float16 mm = b1 * vload16(0, m + mo + i) + (1.0f - b1) * gg;
        float16 vv = b2 * vload16(0, v + vo + i) + (1.0f - b2) * gg * gg;
        vstore16(mm, 0, m + mo + i);
        vstore16(vv, 0, v + vo + i);
        float16 pv = vload16(0, p + po + i);
        vstore16(pv - lr * ((mm / bc1) / (sqrt(vv / bc2) + eps) + wd * pv), 0, p + po + i);
        return;
    }
    for (; i < n; i++) {
        float gg = k * g[go + i];
        float mm = b1 * m[mo + i] + (1.0f - b1) * gg;
        float vv = b2 * v[vo + i] + (1.0f - b2) * gg * gg;
        m[mo + i] = mm;
        v[vo + i] = vv;
        float pv = p[po + i];
        p[po + i] = pv - lr * ((mm / bc1) / (sqrt(vv / bc2) + eps) + wd * pv);
    }
}
