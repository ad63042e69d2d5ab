/* act.cl: gated MLP activation h = act(g) * u (SiLU or tanh-GELU) and inverted dropout
 * (runtime/ops/ops.c; oracle uf_ref_gated_act_*). Elementwise, one work-item per element. */

#define UF_GELU_C 0.7978845608028654f /* sqrt(2 / pi) */
#define UF_GELU_K 0.044715f

/* act(g) into *a, act'(g) returned; one exp or tanh */
float uf_act2(float g, int gelu, float *a) {
    if (!gelu) {
        float s = 1.0f / (1.0f + exp(-g));
        *a = g * s;
        return s * (1.0f + g * (1.0f - s));
    }
    float t = tanh(UF_GELU_C * (g + UF_GELU_K * g * g * g));
    *a = 0.5f * g * (1.0f + t);
    return 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * UF_GELU_C * (1.0f + 3.0f * UF_GELU_K * g * g);
}

float uf_act(float g, int gelu) {
    if (!gelu) return g / (1.0f + exp(-g));
    return 0.5f * g * (1.0f + tanh(UF_GELU_C * (g + UF_GELU_K * g * g * g)));
}

__kernel void uf_gated_forward(__global const float *g, ulong go, __global const float *u, ulong uo,
                               __global float *h, ulong ho, ulong n, int gelu) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    h[ho + i] = uf_act(g[go + i], gelu) * u[uo + i];
}

__kernel void uf_gated_backward(__global const float *g, ulong go, __global const float *u,
                                ulong uo, __global const float *dh, ulong dho, __global float *dg,
                                ulong dgo, __global float *du, ulong duo, ulong n, int gelu) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float d = dh[dho + i], a, da = uf_act2(g[go + i], gelu, &a);
    dg[dgo + i] += d * u[uo + i] * da;
    du[duo + i] += d * a;
}

/* keep element i iff uf_hash_u32(seed, i) >= thr (thr = p * 2^32); forward y = keep ? x*scale : 0,
 * backward (x = dy, y = dx) y += keep ? x*scale : 0. */
__kernel void uf_dropout(__global const float *x, ulong xo, __global float *y, ulong yo, ulong n,
                         uint thr, float scale, ulong seed, int backward) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float v = uf_hash_u32(seed, i) >= thr ? x[xo + i] * scale : 0.0f;
    if (backward) y[yo + i] += v;
    else y[yo + i] = v;
}

/* ---- CPUs: work-item j owns elements [16j, 16j + 16) with explicit 16-wide vectors (global
 * ceil(n/16), local 1); the last one finishes a partial block in scalar code. -------------- */
float16 uf_act2_16(float16 g, int gelu, float16 *a) {
    if (!gelu) {
        float16 s = 1.0f / (1.0f + exp(-g));
        *a = g * s;
        return s * (1.0f + g * (1.0f - s));
    }
    float16 t = tanh(UF_GELU_C * (g + UF_GELU_K * g * g * g));
    *a = 0.5f * g * (1.0f + t);
    return 0.5f * (1.0f + t) + 0.5f * g * (1.0f - t * t) * UF_GELU_C * (1.0f + 3.0f * UF_GELU_K * g * g);
}

__kernel void uf_gated_forward_v16(__global const float *g, ulong go, __global const float *u,
                                   ulong uo, __global float *h, ulong ho, ulong n, int gelu) {
    size_t i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        float16 a;
        uf_act2_16(vload16(0, g + go + i), gelu, &a);
        vstore16(a * vload16(0, u + uo + i), 0, h + ho + i);
        return;
    }
    for (; i < n; i++) h[ho + i] = uf_act(g[go + i], gelu) * u[uo + i];
}

__kernel void uf_gated_backward_v16(__global const float *g, ulong go, __global const float *u,
                                    ulong uo, __global const float *dh, ulong dho,
                                    __global float *dg, ulong dgo, __global float *du, ulong duo,
                                    ulong n, int gelu) {
    size_t i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        float16 a, da = uf_act2_16(vload16(0, g + go + i), gelu, &a), d = vload16(0, dh + dho + i);
        vstore16(vload16(0, dg + dgo + i) + d * vload16(0, u + uo + i) * da, 0, dg + dgo + i);
        vstore16(vload16(0, du + duo + i) + d * a, 0, du + duo + i);
        return;
    }
    for (; i < n; i++) {
        float d = dh[dho + i], a, da = uf_act2(g[go + i], gelu, &a);
        dg[dgo + i] += d * u[uo + i] * da;
        du[duo + i] += d * a;
    }
}
