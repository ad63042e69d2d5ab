/* attention.cl: causal flash attention with GQA, sliding window and per-sequence lengths
 * (runtime/ops.h, launched by runtime/attention.c; oracle: uf_ref_attention_* in runtime/ref).
 *
 * Layout: q, o, dout (B*T, H*hd); k, v (B*T, KV*hd); row n = b*T + t; query head h reads kv head
 * h / (H/KV). Key j is visible to query i iff j <= i, j < len, (window == 0 or i - j < window).
 * Query rows i >= len produce o = 0, lse = 0 and contribute no gradient.
 *
 * Three kernels, none with atomics, every sum in a fixed order (bit-identical reruns):
 *   uf_attn_fwd   one work-item per query row (b, h, i); the work-group (a block of queries)
 *                 stages K/V tiles of `bk` keys in local memory; online softmax per tile.
 *   uf_attn_bwd_dq one work-item per query row: recomputes p = exp(s - lse), D = rowsum(dO*O),
 *                 dq += scale * sum_j p (dp - D) k_j.
 *   uf_attn_bwd_dkdv one work-item per key row (b, g, j): loops over the query heads of its
 *                 group and the queries that see it in order; stages Q/dO tiles (and lse, D)
 *                 in local memory; dk += scale * sum dS q, dv += sum p dO.
 * Memory is O(T) per row: no T x T matrix is ever stored.
 *
 * Head vectors are held as UF_VW-wide vectors (hd padded with zeros to a multiple of UF_VW),
 * in private arrays sized for hd <= 256. Global loads are bounds-checked per element so any hd
 * and any tensor offset (in elements) work. */

#ifndef UF_VW
#define UF_VW 16
#endif
#if UF_VW == 16
typedef float16 vecf;
#define VLOAD vload16
#define VSTORE vstore16
static inline float vsum(vecf a) {
    float8 e = a.lo + a.hi;
    float4 s = e.lo + e.hi;
    return (s.x + s.y) + (s.z + s.w);
}
#elif UF_VW == 8
typedef float8 vecf;
#define VLOAD vload8
#define VSTORE vstore8
static inline float vsum(vecf a) {
    float4 s = a.lo + a.hi;
    return (s.x + s.y) + (s.z + s.w);
}
#else
typedef float4 vecf;
#define VLOAD vload4
#define VSTORE vstore4
static inline float vsum(vecf a) { return (a.x + a.y) + (a.z + a.w); }
#endif
#define UF_HDV_MAX (256 / UF_VW)
#define UF_BK_MAX 64

static inline float vdot(vecf a, vecf b) { return vsum(a * b); }

/* Elements [c*UF_VW, c*UF_VW + UF_VW) of a row of hd floats, zero past hd. */
static inline vecf load_vec(__global const float *row, int c, int hd) {
    if ((c + 1) * UF_VW <= hd) return VLOAD(c, row);
    float t[UF_VW];
    for (int e = 0; e < UF_VW; e++) t[e] = c * UF_VW + e < hd ? row[c * UF_VW + e] : 0.0f;
    return VLOAD(0, t);
}

static inline void store_vec(__global float *row, int c, int hd, vecf x, int add) {
    float t[UF_VW];
    VSTORE(x, 0, t);
    for (int e = 0; e < UF_VW && c * UF_VW + e < hd; e++) {
        if (add) row[c * UF_VW + e] += t[e];
        else row[c * UF_VW + e] = t[e];
    }
}

static inline int uf_visible(int i, int j, int len, int window) {
    return j <= i && j < len && (window == 0 || i - j < window);
}

/* Cooperative copy of rows [r0, r0 + nr) (rows < rmax, else zeros) of head `head` of a
 * (B*T, nheads*hd) tensor into tile (nr, hdv). */
static inline void load_tile(__local vecf *tile, __global const float *x, int b, int T,
                             int nheads, int head, int hd, int hdv, int r0, int nr, int rmax,
                             int lid, int lsz) {
    for (int e = lid; e < nr * hdv; e += lsz) {
        int r = e / hdv, c = e - r * hdv, t = r0 + r;
        vecf val = (vecf)(0.0f);
        if (t < rmax) val = load_vec(x + ((size_t)(b * T + t) * nheads + head) * hd, c, hd);
        tile[e] = val;
    }
}

/* global (ceil(T/bq)*bq, H, B), local (bq, 1, 1); ks, vs: local (bk, hdv) each. */
__kernel void uf_attn_fwd(__global const float *q, ulong qoff, __global const float *k, ulong koff,
                          __global const float *v, ulong voff, __global const int *lengths,
                          ulong loff, __global float *o, ulong ooff, __global float *lse,
                          ulong lseoff, int T, int H, int KV, int hd, int window, float scale,
                          int bk, __local vecf *ks, __local vecf *vs) {
    int lid = get_local_id(0), bq = get_local_size(0);
    int i0 = get_group_id(0) * bq, i = i0 + lid;
    int h = get_global_id(1), b = get_global_id(2);
    int g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int hdv = (hd + UF_VW - 1) / UF_VW;
    int live = i < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff;

    vecf qv[UF_HDV_MAX], acc[UF_HDV_MAX];
    float m = -INFINITY, l = 0.0f;
    if (live) {
        __global const float *qrow = q + ((size_t)(b * T + i) * H + h) * hd;
        for (int c = 0; c < hdv; c++) qv[c] = load_vec(qrow, c, hd) * scale, acc[c] = (vecf)(0.0f);
    }
    /* keys any live query of this block can see (uniform over the work-group) */
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = min(len, i0 + bq);
    for (int j0 = jlo; j0 < jhi; j0 += bk) {
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(ks, k, b, T, KV, g, hd, hdv, j0, bk, jhi, lid, bq);
        load_tile(vs, v, b, T, KV, g, hd, hdv, j0, bk, jhi, lid, bq);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live) continue;
        float s[UF_BK_MAX];
        float mt = m;
        for (int jj = 0; jj < bk; jj++) {
            float sc = -INFINITY;
            if (uf_visible(i, j0 + jj, len, window)) {
                __local const vecf *kr = ks + jj * hdv;
                vecf a = (vecf)(0.0f);
                for (int c = 0; c < hdv; c++) a = fma(qv[c], kr[c], a);
                sc = vsum(a);
            }
            s[jj] = sc;
            mt = fmax(mt, sc);
        }
        if (mt == -INFINITY) continue; /* nothing visible yet for this row */
        float corr = exp(m - mt);
        l *= corr;
        for (int c = 0; c < hdv; c++) acc[c] *= corr;
        for (int jj = 0; jj < bk; jj++) {
            if (s[jj] == -INFINITY) continue;
            float p = exp(s[jj] - mt);
            l += p;
            __local const vecf *vr = vs + jj * hdv;
            for (int c = 0; c < hdv; c++) acc[c] = fma((vecf)(p), vr[c], acc[c]);
        }
        m = mt;
    }
    if (i >= T) return;
    __global float *orow = o + ((size_t)(b * T + i) * H + h) * hd;
    if (live) {
        float inv = 1.0f / l;
        for (int c = 0; c < hdv; c++) store_vec(orow, c, hd, acc[c] * inv, 0);
        lse[((size_t)b * H + h) * T + i] = m + log(l);
    } else {
        for (int c = 0; c < hdv; c++) store_vec(orow, c, hd, (vecf)(0.0f), 0);
        lse[((size_t)b * H + h) * T + i] = 0.0f;
    }
}

/* global (ceil(T/bq)*bq, H, B), local (bq, 1, 1); ks, vs: local (bk, hdv) each. dq += ... */
__kernel void uf_attn_bwd_dq(__global const float *q, ulong qoff, __global const float *k,
                             ulong koff, __global const float *v, ulong voff,
                             __global const int *lengths, ulong loff, __global const float *o,
                             ulong ooff, __global const float *lse, ulong lseoff,
                             __global const float *dout, ulong dooff, __global float *dq,
                             ulong dqoff, int T, int H, int KV, int hd, int window, float scale,
                             int bk, __local vecf *ks, __local vecf *vs) {
    int lid = get_local_id(0), bq = get_local_size(0);
    int i0 = get_group_id(0) * bq, i = i0 + lid;
    int h = get_global_id(1), b = get_global_id(2);
    int g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int hdv = (hd + UF_VW - 1) / UF_VW;
    int live = i < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff, dout += dooff, dq += dqoff;

    vecf qv[UF_HDV_MAX], dov[UF_HDV_MAX], acc[UF_HDV_MAX];
    float li = 0.0f, Di = 0.0f;
    size_t row = ((size_t)(b * T + i) * H + h) * hd;
    if (live) {
        vecf d = (vecf)(0.0f);
        for (int c = 0; c < hdv; c++) {
            qv[c] = load_vec(q + row, c, hd) * scale;
            dov[c] = load_vec(dout + row, c, hd);
            d = fma(dov[c], load_vec(o + row, c, hd), d);
            acc[c] = (vecf)(0.0f);
        }
        Di = vsum(d);
        li = lse[((size_t)b * H + h) * T + i];
    }
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = min(len, i0 + bq);
    for (int j0 = jlo; j0 < jhi; j0 += bk) {
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(ks, k, b, T, KV, g, hd, hdv, j0, bk, jhi, lid, bq);
        load_tile(vs, v, b, T, KV, g, hd, hdv, j0, bk, jhi, lid, bq);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live) continue;
        for (int jj = 0; jj < bk; jj++) {
            if (!uf_visible(i, j0 + jj, len, window)) continue;
            __local const vecf *kr = ks + jj * hdv, *vr = vs + jj * hdv;
            vecf a = (vecf)(0.0f), dp = (vecf)(0.0f);
            for (int c = 0; c < hdv; c++) a = fma(qv[c], kr[c], a), dp = fma(dov[c], vr[c], dp);
            float p = exp(vsum(a) - li);
            float ds = p * (vsum(dp) - Di) * scale;
            for (int c = 0; c < hdv; c++) acc[c] = fma((vecf)(ds), kr[c], acc[c]);
        }
    }
    if (!live) return;
    for (int c = 0; c < hdv; c++) store_vec(dq + row, c, hd, acc[c], 1);
}

/* global (ceil(T/bkk)*bkk, KV, B), local (bkk, 1, 1); one work-item per key row.
 * qs, dos: local (bkk, hdv) tiles of queries; ls, ds: local (bkk) lse and D of those rows. */
__kernel void uf_attn_bwd_dkdv(__global const float *q, ulong qoff, __global const float *k,
                               ulong koff, __global const float *v, ulong voff,
                               __global const int *lengths, ulong loff, __global const float *o,
                               ulong ooff, __global const float *lse, ulong lseoff,
                               __global const float *dout, ulong dooff, __global float *dk,
                               ulong dkoff, __global float *dv, ulong dvoff, int T, int H, int KV,
                               int hd, int window, float scale, __local vecf *qs,
                               __local vecf *dos, __local float *ls, __local float *ds) {
    int lid = get_local_id(0), bkk = get_local_size(0);
    int j0 = get_group_id(0) * bkk, j = j0 + lid;
    int g = get_global_id(1), b = get_global_id(2);
    int R = H / KV;
    int len = clamp(lengths[loff + b], 0, T);
    int hdv = (hd + UF_VW - 1) / UF_VW;
    int live = j < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff, dout += dooff;
    dk += dkoff, dv += dvoff;

    vecf kv_[UF_HDV_MAX], vv[UF_HDV_MAX], dka[UF_HDV_MAX], dva[UF_HDV_MAX];
    size_t krow = ((size_t)(b * T + j) * KV + g) * hd;
    if (live)
        for (int c = 0; c < hdv; c++) {
            kv_[c] = load_vec(k + krow, c, hd) * scale;
            vv[c] = load_vec(v + krow, c, hd);
            dka[c] = dva[c] = (vecf)(0.0f);
        }
    /* queries that can see some key of this block: [j0, min(len, j0 + bkk - 1 + window)) */
    int ihi = window > 0 ? min(len, j0 + bkk - 1 + window) : len;
    for (int r = 0; r < R; r++) {
        int h = g * R + r;
        for (int i0 = j0; i0 < ihi; i0 += bkk) {
            barrier(CLK_LOCAL_MEM_FENCE);
            load_tile(qs, q, b, T, H, h, hd, hdv, i0, bkk, ihi, lid, bkk);
            load_tile(dos, dout, b, T, H, h, hd, hdv, i0, bkk, ihi, lid, bkk);
            {
                int i = i0 + lid;
                float li = 0.0f, di = 0.0f;
                if (i < ihi) {
                    size_t row = ((size_t)(b * T + i) * H + h) * hd;
                    vecf d = (vecf)(0.0f);
                    for (int c = 0; c < hdv; c++)
                        d = fma(load_vec(dout + row, c, hd), load_vec(o + row, c, hd), d);
                    di = vsum(d);
                    li = lse[((size_t)b * H + h) * T + i];
                }
                ls[lid] = li;
                ds[lid] = di;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (!live) continue;
            for (int ii = 0; ii < bkk; ii++) {
                int i = i0 + ii;
                if (i >= ihi || !uf_visible(i, j, len, window)) continue;
                __local const vecf *qr = qs + ii * hdv, *dr = dos + ii * hdv;
                vecf a = (vecf)(0.0f), dp = (vecf)(0.0f);
                for (int c = 0; c < hdv; c++) a = fma(qr[c], kv_[c], a), dp = fma(dr[c], vv[c], dp);
                float p = exp(vsum(a) - ls[ii]);
                float dsc = p * (vsum(dp) - ds[ii]);
                for (int c = 0; c < hdv; c++) {
                    dva[c] = fma((vecf)(p), dr[c], dva[c]);
                    dka[c] = fma((vecf)(dsc), qr[c], dka[c]);
                }
            }
        }
    }
    if (!live) return;
    for (int c = 0; c < hdv; c++) {
        store_vec(dk + krow, c, hd, dka[c] * scale, 1);
        store_vec(dv + krow, c, hd, dva[c], 1);
    }
}
