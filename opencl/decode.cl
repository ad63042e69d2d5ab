/* decode.cl: the inference-only kernels of generation and scoring (runtime/model/generate.c): RoPE at
 * explicit positions, KV-cache append, attention over the cache, row gather, small-batch linear.
 *
 * Token rows are described by explicit (sequence, position) pairs instead of a (B, T) grid:
 * row n is token tokens[n] of sequence seq[n] at position pos[n]; pos[n] < 0 marks an unused row
 * (skipped by cache writes, attends to nothing, gives zeros). The KV cache of one layer is
 * (B, KV, Tc, hd): cache[b, kvh, t, :] holds the key (value) of position t of sequence b.
 * Conventions (RoPE rotate_half, GQA, sliding window, RMSNorm, activations) are model_config.h's.
 * Offsets are in elements. Oracle: runtime/ref (tests/test_generate.c). */

#define DEC_WG 64 /* work-group size of the reduction kernels (attention, small linear) */

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

/* out[r, :] = x[rows[r], :] */
__kernel void dec_gather_rows(__global float *out, __global const float *x,
                              __global const int *rows, int R, int D) {
    size_t i = get_global_id(0);
    if (i >= (size_t)R * D) return;
    out[i] = x[(size_t)rows[i / D] * D + i % D];
}

/* Small-batch linear for decode steps (memory-bound: each weight row is read once for all rows):
 * y[n, o] = sum_i x[n, i] W[o, i] for n < N <= DEC_GEMV_ROWS. One work-group per output o;
 * work-item lid sums i = lid, lid + DEC_WG, ... then a fixed-order tree over the work-group. */
#define DEC_GEMV_ROWS 8
__kernel __attribute__((reqd_work_group_size(DEC_WG, 1, 1)))
void dec_linear_small(__global float *y, __global const float *x, __global const float *w,
                      ulong w_off, int N, int in, int out) {
    __local float part[DEC_GEMV_ROWS][DEC_WG];
    int o = get_group_id(0), lid = get_local_id(0);
    __global const float *wr = w + w_off + (size_t)o * in;
    float acc[DEC_GEMV_ROWS];
    for (int n = 0; n < DEC_GEMV_ROWS; n++) acc[n] = 0.0f;
    for (int i = lid; i < in; i += DEC_WG) {
        float wi = wr[i];
        for (int n = 0; n < N; n++) acc[n] += wi * x[(size_t)n * in + i];
    }
    for (int n = 0; n < N; n++) part[n][lid] = acc[n];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = DEC_WG / 2; h > 0; h >>= 1) {
        if (lid < h)
            for (int n = 0; n < N; n++) part[n][lid] += part[n][lid + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid < N) y[(size_t)lid * out + o] = part[lid][0];
}
