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

/* Transposed cooperative copy: tile[c * nr + r] = x[row r0 + r][c] for c < D (zeros past hd
 * and for rows >= rmax), so that 16 consecutive keys of one dimension are one float16. */
static inline void load_tile_t(__local float *tile, __global const float *x, int b, int T,
                               int nheads, int head, int hd, const int D, int r0, int nr,
                               int rmax, int lid, int lsz) {
    const int DV = D / UF_VW;
    for (int e = lid; e < nr * DV; e += lsz) {
        int r = e / DV, c = e - r * DV, t = r0 + r;
        vecf val = (vecf)(0.0f);
        if (t < rmax) val = load_vec(x + ((size_t)(b * T + t) * nheads + head) * hd, c, hd);
        float f[UF_VW];
        VSTORE(val, 0, f);
        for (int l = 0; l < UF_VW; l++) tile[(c * UF_VW + l) * nr + r] = f[l];
    }
}

static inline float hmax16(float16 a) {
    float8 e = fmax(a.lo, a.hi);
    float4 f = fmax(e.lo, e.hi);
    return fmax(fmax(f.x, f.y), fmax(f.z, f.w));
}
static inline float hsum16(float16 a) {
    float8 e = a.lo + a.hi;
    float4 f = e.lo + e.hi;
    return (f.x + f.y) + (f.z + f.w);
}

/* Key tile width of an instance: 64 keys at D = 64, 32 at 128, 16 at 256 (K + V tiles 32 KiB). */
#define UF_ATTN_BK(D) ((D) == 64 ? 64 : (D) == 128 ? 32 : 16)

/* s[0..BK) = scores of query i (scaled q in qs[D]) against the BK keys j0.. of the transposed
 * tile kT (D, BK); invisible keys get -inf. Eight independent float16 accumulators (BK/16 key
 * blocks x 8/(BK/16) partial sums over dimensions) hide the FMA latency; fixed order. */
static inline void scores_tile(float *s, const float *qs, __local const float *kT, int i, int j0,
                               int len, int window, const int D, const int BK) {
    const int NB = BK / 16, P = 8 / NB;
    float16 acc[8];
    for (int a = 0; a < 8; a++) acc[a] = (float16)(0.0f);
    for (int c = 0; c < D; c += P) {
#pragma unroll
        for (int pp = 0; pp < P; pp++) {
            float16 qb = (float16)(qs[c + pp]);
#pragma unroll
            for (int u = 0; u < NB; u++)
                acc[u * P + pp] = fma(qb, vload16(0, kT + (c + pp) * BK + 16 * u), acc[u * P + pp]);
        }
    }
    for (int u = 0; u < NB; u++) {
        float16 sv = acc[u * P];
        for (int pp = 1; pp < P; pp++) sv += acc[u * P + pp];
        int16 j = (int16)(j0 + 16 * u) + (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        int16 vis = (j <= (int16)(i)) & (j < (int16)(len));
        if (window > 0) vis &= (int16)(i) - j < (int16)(window);
        vstore16(select((float16)(-INFINITY), sv, vis), 0, s + 16 * u);
    }
}

/* global (ceil(T/bq)*bq, H, B), local (bq, 1, 1); kT: local (D, BK) transposed keys, vs: local
 * (BK, hdv) values. D = hdv * UF_VW (head rows padded to 64, 128 or 256) and BK are
 * compile-time constants of each kernel instance (see the end of the file), so loops over them
 * unroll. Scores are computed 16 keys at a time as float16 (no horizontal sums). */
static inline void attn_fwd(__global const float *q, ulong qoff, __global const float *k,
                            ulong koff, __global const float *v, ulong voff,
                            __global const int *lengths, ulong loff, __global float *o, ulong ooff,
                            __global float *lse, ulong lseoff, int T, int H, int KV, int hd,
                            int window, float scale, __local float *kT, __local vecf *vs,
                            const int hdv) {
    const int D = hdv * UF_VW, BK = UF_ATTN_BK(D);
    int lid = get_local_id(0), bq = get_local_size(0);
    int i0 = get_group_id(0) * bq, i = i0 + lid;
    int h = get_global_id(1), b = get_global_id(2);
    int g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int live = i < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff;

    float qs[UF_HDV_MAX * UF_VW];
    vecf acc[UF_HDV_MAX];
    float m = -INFINITY, l = 0.0f;
    if (live) {
        __global const float *qrow = q + ((size_t)(b * T + i) * H + h) * hd;
        for (int c = 0; c < D; c++) qs[c] = c < hd ? qrow[c] * scale : 0.0f;
        for (int c = 0; c < hdv; c++) acc[c] = (vecf)(0.0f);
    }
    /* keys any live query of this block can see (uniform over the work-group) */
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = min(len, i0 + bq);
    for (int j0 = jlo; j0 < jhi; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile_t(kT, k, b, T, KV, g, hd, D, j0, BK, jhi, lid, bq);
        load_tile(vs, v, b, T, KV, g, hd, hdv, j0, BK, jhi, lid, bq);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live || j0 > i) continue;
        float s[UF_BK_MAX];
        scores_tile(s, qs, kT, i, j0, len, window, D, BK);
        int nj = min(BK, i - j0 + 1); /* keys past the diagonal are invisible */
        float mt = m;
        for (int jj = 0; jj < nj; jj++) mt = fmax(mt, s[jj]);
        if (mt == -INFINITY) continue; /* nothing visible yet for this row */
        float corr = exp(m - mt);
        l *= corr;
        for (int c = 0; c < hdv; c++) acc[c] *= corr;
        for (int jb = 0; jb < nj; jb += 16) {
            float16 pv = exp(vload16(0, s + jb) - (float16)(mt));
            vstore16(pv, 0, s + jb);
        }
        for (int jj = 0; jj < nj; jj++) l += s[jj];
        for (int jj = 0; jj < nj; jj++) {
            vecf p = (vecf)(s[jj]);
            __local const vecf *vr = vs + jj * hdv;
#pragma unroll
            for (int c = 0; c < hdv; c++) acc[c] = fma(p, vr[c], acc[c]);
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
static inline void attn_bwd_dq(__global const float *q, ulong qoff, __global const float *k,
                               ulong koff, __global const float *v, ulong voff,
                               __global const int *lengths, ulong loff, __global const float *o,
                               ulong ooff, __global const float *lse, ulong lseoff,
                               __global const float *dout, ulong dooff, __global float *dq,
                               ulong dqoff, int T, int H, int KV, int hd, int window, float scale,
                               int bk, __local vecf *ks, __local vecf *vs, const int hdv) {
    int lid = get_local_id(0), bq = get_local_size(0);
    int i0 = get_group_id(0) * bq, i = i0 + lid;
    int h = get_global_id(1), b = get_global_id(2);
    int g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
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
static inline void attn_bwd_dkdv(__global const float *q, ulong qoff, __global const float *k,
                                 ulong koff, __global const float *v, ulong voff,
                                 __global const int *lengths, ulong loff, __global const float *o,
                                 ulong ooff, __global const float *lse, ulong lseoff,
                                 __global const float *dout, ulong dooff, __global float *dk,
                                 ulong dkoff, __global float *dv, ulong dvoff, int T, int H,
                                 int KV, int hd, int window, float scale, __local vecf *qs,
                                 __local vecf *dos, __local float *ls, __local float *ds,
                                 const int hdv) {
    int lid = get_local_id(0), bkk = get_local_size(0);
    int j0 = get_group_id(0) * bkk, j = j0 + lid;
    int g = get_global_id(1), b = get_global_id(2);
    int R = H / KV;
    int len = clamp(lengths[loff + b], 0, T);
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

/* ---- kernel instances: head rows padded to 64, 128 or 256 floats ------------------------- */
#define UF_ATTN_INSTANCE(D)                                                                    \
    __kernel void uf_attn_fwd_d##D(                                                            \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global float *o, ulong ooff, __global float *lse, ulong lseoff, int T, int H, int KV, \
        int hd, int window, float scale, __local float *kT, __local vecf *vs) {                \
        attn_fwd(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, T, H, KV, hd,  \
                 window, scale, kT, vs, D / UF_VW);                                            \
    }                                                                                          \
    __kernel void uf_attn_bwd_dq_d##D(                                                         \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global const float *o, ulong ooff, __global const float *lse, ulong lseoff,          \
        __global const float *dout, ulong dooff, __global float *dq, ulong dqoff, int T, int H, \
        int KV, int hd, int window, float scale, int bk, __local vecf *ks, __local vecf *vs) { \
        attn_bwd_dq(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, dout,      \
                    dooff, dq, dqoff, T, H, KV, hd, window, scale, bk, ks, vs, D / UF_VW);     \
    }                                                                                          \
    __kernel void uf_attn_bwd_dkdv_d##D(                                                       \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global const float *o, ulong ooff, __global const float *lse, ulong lseoff,          \
        __global const float *dout, ulong dooff, __global float *dk, ulong dkoff,              \
        __global float *dv, ulong dvoff, int T, int H, int KV, int hd, int window, float scale, \
        __local vecf *qs, __local vecf *dos, __local float *ls, __local float *ds) {           \
        attn_bwd_dkdv(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, dout,    \
                      dooff, dk, dkoff, dv, dvoff, T, H, KV, hd, window, scale, qs, dos, ls,   \
                      ds, D / UF_VW);                                                          \
    }

UF_ATTN_INSTANCE(64)
UF_ATTN_INSTANCE(128)
UF_ATTN_INSTANCE(256)
