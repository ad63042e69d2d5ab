/* decode.cl: the inference-only kernels of generation and scoring (runtime/generate.c).
 *
 * Token rows are described by explicit (sequence, position) pairs instead of a (B, T) grid:
 * row n is token tokens[n] of sequence seq[n] at position pos[n]; pos[n] < 0 marks an unused row
 * (skipped by cache writes, attends to nothing, gives zeros). The KV cache of one layer is
 * (B, KV, Tc, hd): cache[b, kvh, t, :] holds the key (value) of position t of sequence b.
 * Conventions (RoPE rotate_half, GQA, sliding window, RMSNorm, activations) are model_config.h's.
 * Offsets are in elements. Oracle: runtime/ref (tests/test_generate.c). */

#define DEC_WG 64 /* work-group size of the row-reduction kernels (rmsnorm, attention) */

/* out[n, :] = scale * table[tokens[n], :] */
__kernel void dec_embed(__global float *out, __global const float *table, ulong table_off,
                        __global const int *tokens, int N, int D, float scale) {
    size_t i = get_global_id(0);
    if (i >= (size_t)N * D) return;
    size_t n = i / D, d = i % D;
    out[i] = scale * table[table_off + (size_t)tokens[n] * D + d];
}

/* y[n, :] = x[n, :] * rsqrt(mean(x[n]^2) + eps) * (plus_one ? 1 + w : w); one work-group per row */
__kernel __attribute__((reqd_work_group_size(DEC_WG, 1, 1)))
void dec_rmsnorm(__global float *y, __global const float *x, __global const float *w, ulong w_off,
                 int D, float eps, int plus_one) {
    __local float part[DEC_WG];
    size_t n = get_group_id(0), lid = get_local_id(0);
    __global const float *xr = x + n * D;
    float s = 0.0f;
    for (int d = lid; d < D; d += DEC_WG) s += xr[d] * xr[d];
    part[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = DEC_WG / 2; h > 0; h >>= 1) {
        if (lid < (size_t)h) part[lid] += part[lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = rsqrt(part[0] / (float)D + eps);
    for (int d = lid; d < D; d += DEC_WG) {
        float wd = w[w_off + d];
        y[n * D + d] = xr[d] * r * (plus_one ? 1.0f + wd : wd);
    }
}

/* In place RoPE of x (N, nh*hd) at positions pos[n] (rotate_half: i pairs with i + hd/2). */
__kernel void dec_rope(__global float *x, __global const int *pos, int N, int nh, int hd,
                       __global const float *inv_freq) {
    size_t gid = get_global_id(0);
    int hh = hd / 2;
    if (gid >= (size_t)N * nh * hh) return;
    int i = gid % hh;
    size_t nhh = gid / hh; /* n * nh + h */
    int n = nhh / nh;
    int p = pos[n];
    if (p < 0) return;
    float c, s;
    s = sincos((float)p * inv_freq[i], &c);
    __global float *xh = x + nhh * hd;
    float x1 = xh[i], x2 = xh[i + hh];
    xh[i] = x1 * c - x2 * s;
    xh[i + hh] = x2 * c + x1 * s;
}

/* cache[seq[n], kvh, pos[n], :] = src[n, kvh*hd : (kvh+1)*hd] for keys and values */
__kernel void dec_cache_write(__global float *kc, __global float *vc, ulong c_off,
                              __global const float *k, __global const float *v,
                              __global const int *pos, __global const int *seq, int N, int KV,
                              int hd, int Tc) {
    size_t gid = get_global_id(0);
    if (gid >= (size_t)N * KV * hd) return;
    int d = gid % hd;
    size_t r = gid / hd;
    int kvh = r % KV, n = r / KV;
    int p = pos[n];
    if (p < 0 || p >= Tc) return;
    size_t dst = c_off + (((size_t)seq[n] * KV + kvh) * Tc + p) * hd + d;
    kc[dst] = k[gid];
    vc[dst] = v[gid];
}

/* o[n, h, :] = sum_j softmax_j(q[n,h].k_j * scale) v_j over the cached keys j of sequence seq[n]
 * with j <= pos[n] and (window == 0 or pos[n] - j < window); kv head = h / (H / KV).
 * One work-group per (n, h); keys in chunks of DEC_WG with an online softmax; each work-item
 * owns output dims lid, lid + DEC_WG, ... (hd <= 4 * DEC_WG). Fixed order: deterministic. */
__kernel __attribute__((reqd_work_group_size(DEC_WG, 1, 1)))
void dec_attention(__global float *o, __global const float *q, __global const float *kc,
                   __global const float *vc, ulong c_off, __global const int *pos,
                   __global const int *seq, int H, int KV, int hd, int Tc, int window, float scale) {
    __local float qs[4 * DEC_WG];
    __local float sc[DEC_WG];
    size_t nh = get_group_id(0);
    int lid = get_local_id(0);
    int n = nh / H, h = nh % H;
    int p = pos[n];
    __global float *orow = o + nh * hd;
    if (p < 0) {
        for (int d = lid; d < hd; d += DEC_WG) orow[d] = 0.0f;
        return;
    }
    int kvh = h / (H / KV);
    size_t base = c_off + ((size_t)seq[n] * KV + kvh) * Tc * hd;
    for (int d = lid; d < hd; d += DEC_WG) qs[d] = q[nh * hd + d];
    barrier(CLK_LOCAL_MEM_FENCE);
    int lo = window > 0 ? max(0, p - window + 1) : 0;
    float m = -INFINITY, l = 0.0f;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int c0 = lo; c0 <= p; c0 += DEC_WG) {
        int cnt = min(DEC_WG, p - c0 + 1);
        if (lid < cnt) {
            __global const float *kr = kc + base + (size_t)(c0 + lid) * hd;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qs[d] * kr[d];
            sc[lid] = s * scale;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        float cm = m;
        for (int j = 0; j < cnt; j++) cm = fmax(cm, sc[j]);
        float corr = exp(m - cm); /* m = -inf on the first chunk: 0 */
        l *= corr;
        for (int r = 0; r < 4; r++) acc[r] *= corr;
        for (int j = 0; j < cnt; j++) {
            float pj = exp(sc[j] - cm);
            l += pj;
            __global const float *vr = vc + base + (size_t)(c0 + j) * hd;
            for (int r = 0, d = lid; r < 4 && d < hd; r++, d += DEC_WG) acc[r] += pj * vr[d];
        }
        m = cm;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int r = 0, d = lid; r < 4 && d < hd; r++, d += DEC_WG) orow[d] = acc[r] / l;
}

/* g = act(g) * u, act = SiLU or tanh-GELU (HF gelu_pytorch_tanh) */
__kernel void dec_gated(__global float *g, __global const float *u, ulong n, int gelu_tanh) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    float x = g[i], a;
    if (gelu_tanh) {
        const float c = 0.7978845608028654f; /* sqrt(2/pi) */
        a = 0.5f * x * (1.0f + tanh(c * (x + 0.044715f * x * x * x)));
    } else {
        a = x / (1.0f + exp(-x));
    }
    g[i] = a * u[i];
}

/* out[r, :] = x[rows[r], :] */
__kernel void dec_gather_rows(__global float *out, __global const float *x,
                              __global const int *rows, int R, int D) {
    size_t i = get_global_id(0);
    if (i >= (size_t)R * D) return;
    out[i] = x[(size_t)rows[i / D] * D + i % D];
}
