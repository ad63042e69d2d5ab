/* attention.cl: causal flash attention with GQA, sliding window and per-sequence lengths
 * (runtime/ops/ops.h, launched by runtime/ops/attention.c; oracle: uf_ref_attention_* in runtime/ref).
 * The CPU variant: runtime/ops/attention.c selects these kernels where ops take the CPU path
 * (uf_ops_cpu_path, ops.h: CPU devices) and attention_gpu.cl's work-group tiles elsewhere (GPUs).
 *
 * Layout: q, o, dout (B*T, H*hd); k, v (B*T, KV*hd); row n = b*T + t; query head h reads kv head
 * h / (H/KV). Key j is visible to query i iff j <= i, j < len, (window == 0 or i - j < window).
 * Query rows i >= len produce o = 0, lse = 0 and contribute no gradient.
 *
 * Three kernels, none with atomics, every sum in a fixed order (bit-identical reruns):
 *   uf_attn_fwd_dD      one work-item per query row (b, h, i); the work-group (a block of
 *                       queries) stages K (transposed) and V tiles of BK keys in local memory;
 *                       online softmax per tile; writes o and lse.
 *   uf_attn_bwd_dq_dD   one work-item per query row: recomputes p = exp(s - lse) and
 *                       D = rowsum(dO * O); dq += scale * sum_j p (dp - D) k_j.
 *   uf_attn_bwd_dkdv_dD one work-item per key row (b, g, j): loops over the query heads of its
 *                       group and the query tiles that see it, in order; dk += scale * sum dS q,
 *                       dv += sum p dO.
 *   uf_attn_bwd_pds_dD  (the GEMM form of the backward, used when T is small enough: see
 *                       attention.c) one work-item per query row: writes its rows of P and
 *                       scale * dS as dense (T, T) matrices for batched GEMMs.
 * Memory is O(T) per row: no T x T matrix is ever stored.
 *
 * Hot spot: the score tiles. Scores (and dP) are computed 16 keys (or queries) at a time as one
 * float16 against a transposed tile (D, BK) in local memory, with eight independent
 * accumulators; the rank-1 updates (o, dq, dk, dv) use float16 rows. Head rows are padded with
 * zeros to D = 32, 64, 128 or 256, a compile-time constant of each kernel instance (end of file),
 * so loops over D unroll. In the backward, the rows of the rank-1 updates (k for dq; q and dO
 * for dk/dv) are read straight from global memory (cached; the same address for the whole
 * work-group), so every kernel needs two tiles of local memory (32 KiB, the OpenCL minimum).
 * Global loads are bounds-checked per element when hd < D, so any hd <= 256 and any tensor
 * offset (in elements) work. Tuned on PoCL (CPU); on a GPU these kernels would hold large
 * private arrays per work-item, which is why GPUs get attention_gpu.cl. */

#define UF_VW 16 /* floats per vector */
typedef float16 vecf;
#define UF_HDV_MAX (256 / UF_VW)
#define UF_BK_MAX 64
/* Keys (or queries) per tile of an instance: 64 at D = 32 and 64, 32 at 128, 16 at 256. */
#define UF_ATTN_BK(D) ((D) <= 64 ? 64 : (D) == 128 ? 32 : 16)

/* Elements [c*16, c*16 + 16) of a row of hd floats, zero past hd. */
static inline vecf load_vec(__global const float *row, int c, int hd) {
    if ((c + 1) * UF_VW <= hd) return vload16(c, row);
    float t[UF_VW];
    for (int e = 0; e < UF_VW; e++) t[e] = c * UF_VW + e < hd ? row[c * UF_VW + e] : 0.0f;
    return vload16(0, t);
}

/* row[c*16 + e] (+)= x[e] for c*16 + e < hd */
static inline void store_vec(__global float *row, int c, int hd, vecf x, int add) {
    if ((c + 1) * UF_VW <= hd) {
        vstore16(add ? vload16(c, row) + x : x, c, row);
        return;
    }
    float t[UF_VW];
    vstore16(x, 0, t);
    for (int e = 0; e < UF_VW && c * UF_VW + e < hd; e++) {
        if (add) row[c * UF_VW + e] += t[e];
        else row[c * UF_VW + e] = t[e];
    }
}

/* Transposed cooperative copy: tile[c * nr + r] = x[row r0 + r][c] for c < D (zeros past hd
 * and for rows >= rmax) of head `head` of a (B*T, nheads*hd) tensor, so that 16 consecutive
 * rows of one dimension are one float16. */
static inline void load_tile_t(__local float *tile, __global const float *x, int b, int T,
                               int nheads, int head, int hd, const int D, int r0, int nr,
                               int rmax, int lid, int lsz) {
    const int DV = D / UF_VW;
    for (int e = lid; e < nr * DV; e += lsz) {
        int r = e / DV, c = e - r * DV, t = r0 + r;
        vecf val = (vecf)(0.0f);
        if (t < rmax) val = load_vec(x + ((size_t)(b * T + t) * nheads + head) * hd, c, hd);
        float f[UF_VW];
        vstore16(val, 0, f);
        for (int l = 0; l < UF_VW; l++) tile[(c * UF_VW + l) * nr + r] = f[l];
    }
}

/* The lanes of d summed in a fixed order. */
static inline float hsum16(vecf d) {
    float8 e = d.lo + d.hi;
    float4 f = e.lo + e.hi;
    return (f.x + f.y) + (f.z + f.w);
}

/* Query row `row` of the backward: dos = dO_i and qs = scale * q_i (private, hdv vectors);
 * returns D_i = rowsum(dO_i * O_i). */
static inline float bwd_row(__global const float *q, __global const float *o,
                            __global const float *dout, size_t row, int hd, const int hdv,
                            float scale, float *qs, float *dos) {
    vecf d = (vecf)(0.0f);
    for (int c = 0; c < hdv; c++) {
        vecf dv = load_vec(dout + row, c, hd);
        d = fma(dv, load_vec(o + row, c, hd), d);
        vstore16(dv, c, dos);
        vstore16(load_vec(q + row, c, hd) * scale, c, qs);
    }
    return hsum16(d);
}

/* s[0..BK) = x . tile[:, r] for the BK rows of a transposed tile (D, BK); x (D) private.
 * Eight independent float16 accumulators (BK/16 row blocks x 8/(BK/16) partial sums over
 * dimensions) hide the FMA latency; the summation order is fixed. */
static inline void dots_tile(float *s, const float *x, __local const float *tile, const int D,
                             const int BK) {
    const int NB = BK / 16, P = 8 / NB;
    float16 acc[8];
    for (int a = 0; a < 8; a++) acc[a] = (float16)(0.0f);
    for (int c = 0; c < D; c += P) {
#pragma unroll
        for (int pp = 0; pp < P; pp++) {
            float16 xb = (float16)(x[c + pp]);
#pragma unroll
            for (int u = 0; u < NB; u++)
                acc[u * P + pp] = fma(xb, vload16(0, tile + (c + pp) * BK + 16 * u), acc[u * P + pp]);
        }
    }
    for (int u = 0; u < NB; u++) {
        float16 sv = acc[u * P];
        for (int pp = 1; pp < P; pp++) sv += acc[u * P + pp];
        vstore16(sv, 0, s + 16 * u);
    }
}

/* Visibility of 16 (query, key) pairs as an int16 mask (-1 = visible). */
static inline int16 visible16(int16 i, int16 j, int len, int window) {
    int16 vis = (j <= i) & (j < (int16)(len)) & (i < (int16)(len));
    if (window > 0) vis &= i - j < (int16)(window);
    return vis;
}
#define UF_IOTA16 ((int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))

/* global (ceil(T/bq)*bq, H, B), local (bq, 1, 1); kT: local (D, BK) transposed keys, vs: local
 * (BK, D / 16) value rows. */
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
        for (int e = lid; e < BK * hdv; e += bq) { /* V rows (BK, hdv) */
            int r = e / hdv, c = e - r * hdv;
            vs[e] = j0 + r < jhi ? load_vec(v + ((size_t)(b * T + j0 + r) * KV + g) * hd, c, hd)
                                 : (vecf)(0.0f);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live || j0 > i) continue;
        float s[UF_BK_MAX];
        dots_tile(s, qs, kT, D, BK);
        for (int jb = 0; jb < BK; jb += 16) {
            int16 vis = visible16((int16)(i), (int16)(j0 + jb) + UF_IOTA16, len, window);
            vstore16(select((float16)(-INFINITY), vload16(0, s + jb), vis), 0, s + jb);
        }
        int nj = min(BK, i - j0 + 1); /* keys past the diagonal are invisible (p = 0) */
        int nb = (nj + 15) / 16 * 16;
        float16 mv = (float16)(m);
        for (int jb = 0; jb < nb; jb += 16) mv = fmax(mv, vload16(0, s + jb));
        float8 m8 = fmax(mv.lo, mv.hi);
        float4 m4 = fmax(m8.lo, m8.hi);
        float mt = fmax(fmax(m4.x, m4.y), fmax(m4.z, m4.w));
        if (mt == -INFINITY) continue; /* nothing visible yet for this row */
        float corr = exp(m - mt);
        for (int c = 0; c < hdv; c++) acc[c] *= corr;
        float16 lv = (float16)(0.0f);
        for (int jb = 0; jb < nb; jb += 16) {
            float16 p = exp(vload16(0, s + jb) - (float16)(mt));
            lv += p;
            vstore16(p, 0, s + jb);
        }
        float8 l8 = lv.lo + lv.hi;
        float4 l4 = l8.lo + l8.hi;
        l = l * corr + ((l4.x + l4.y) + (l4.z + l4.w));
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

/* global (ceil(T/bq)*bq, H, B), local (bq, 1, 1); kT, vT: local (D, BK) transposed K and V.
 * dq += scale * sum_j p_ij (dp_ij - D_i) k_j. */
static inline void attn_bwd_dq(__global const float *q, ulong qoff, __global const float *k,
                               ulong koff, __global const float *v, ulong voff,
                               __global const int *lengths, ulong loff, __global const float *o,
                               ulong ooff, __global const float *lse, ulong lseoff,
                               __global const float *dout, ulong dooff, __global float *dq,
                               ulong dqoff, int T, int H, int KV, int hd, int window, float scale,
                               __local float *kT, __local float *vT, const int hdv) {
    const int D = hdv * UF_VW, BK = UF_ATTN_BK(D);
    int lid = get_local_id(0), bq = get_local_size(0);
    int i0 = get_group_id(0) * bq, i = i0 + lid;
    int h = get_global_id(1), b = get_global_id(2);
    int g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int live = i < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff, dout += dooff, dq += dqoff;

    float qs[UF_HDV_MAX * UF_VW], dos[UF_HDV_MAX * UF_VW];
    vecf acc[UF_HDV_MAX];
    float li = 0.0f, Di = 0.0f;
    size_t row = ((size_t)(b * T + i) * H + h) * hd;
    if (live) {
        Di = bwd_row(q, o, dout, row, hd, hdv, scale, qs, dos);
        li = lse[((size_t)b * H + h) * T + i];
        for (int c = 0; c < hdv; c++) acc[c] = (vecf)(0.0f);
    }
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = min(len, i0 + bq);
    for (int j0 = jlo; j0 < jhi; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile_t(kT, k, b, T, KV, g, hd, D, j0, BK, jhi, lid, bq);
        load_tile_t(vT, v, b, T, KV, g, hd, D, j0, BK, jhi, lid, bq);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live || j0 > i) continue;
        float s[UF_BK_MAX], dp[UF_BK_MAX];
        dots_tile(s, qs, kT, D, BK);
        dots_tile(dp, dos, vT, D, BK);
        int nj = min(BK, i - j0 + 1); /* keys past the diagonal are invisible */
        for (int jb = 0; jb < nj; jb += 16) {
            int16 vis = visible16((int16)(i), (int16)(j0 + jb) + UF_IOTA16, len, window);
            float16 p = exp(vload16(0, s + jb) - (float16)(li));
            float16 ds = select((float16)(0.0f), p * (vload16(0, dp + jb) - (float16)(Di)), vis);
            vstore16(ds * scale, 0, s + jb);
        }
        for (int jj = 0; jj < nj; jj++) {
            float ds = s[jj];
            if (ds == 0.0f) continue; /* invisible key (adds exactly nothing) */
            __global const float *kr = k + ((size_t)(b * T + j0 + jj) * KV + g) * hd;
#pragma unroll
            for (int c = 0; c < hdv; c++) acc[c] = fma((vecf)(ds), load_vec(kr, c, hd), acc[c]);
        }
    }
    if (!live) return;
    for (int c = 0; c < hdv; c++) store_vec(dq + row, c, hd, acc[c], 1);
}

/* global (ceil(T/bkk)*bkk, KV, B), local (bkk, 1, 1); one work-item per key row j.
 * qT, doT: local (D, BQ) transposed query and dO tiles; ls, dd: local (BQ) lse and D rows. */
static inline void attn_bwd_dkdv(__global const float *q, ulong qoff, __global const float *k,
                                 ulong koff, __global const float *v, ulong voff,
                                 __global const int *lengths, ulong loff, __global const float *o,
                                 ulong ooff, __global const float *lse, ulong lseoff,
                                 __global const float *dout, ulong dooff, __global float *dk,
                                 ulong dkoff, __global float *dv, ulong dvoff, int T, int H,
                                 int KV, int hd, int window, float scale, __local float *qT,
                                 __local float *doT, __local float *ls, __local float *dd,
                                 const int hdv) {
    const int D = hdv * UF_VW, BQ = UF_ATTN_BK(D);
    int lid = get_local_id(0), bkk = get_local_size(0);
    int j0 = get_group_id(0) * bkk, j = j0 + lid;
    int g = get_global_id(1), b = get_global_id(2);
    int R = H / KV;
    int len = clamp(lengths[loff + b], 0, T);
    int live = j < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff, dout += dooff;
    dk += dkoff, dv += dvoff;

    float ks[UF_HDV_MAX * UF_VW], vsc[UF_HDV_MAX * UF_VW];
    vecf dka[UF_HDV_MAX], dva[UF_HDV_MAX];
    size_t krow = ((size_t)(b * T + j) * KV + g) * hd;
    if (live)
        for (int c = 0; c < hdv; c++) {
            vstore16(load_vec(k + krow, c, hd) * scale, c, ks);
            vstore16(load_vec(v + krow, c, hd), c, vsc);
            dka[c] = dva[c] = (vecf)(0.0f);
        }
    /* queries that can see some key of this block: [j0, min(len, j0 + bkk - 1 + window)) */
    int ihi = window > 0 ? min(len, j0 + bkk - 1 + window) : len;
    for (int r = 0; r < R; r++) {
        int h = g * R + r;
        for (int i0 = j0; i0 < ihi; i0 += BQ) {
            barrier(CLK_LOCAL_MEM_FENCE);
            load_tile_t(qT, q, b, T, H, h, hd, D, i0, BQ, ihi, lid, bkk);
            load_tile_t(doT, dout, b, T, H, h, hd, D, i0, BQ, ihi, lid, bkk);
            for (int rr = lid; rr < BQ; rr += bkk) { /* lse and D = rowsum(dO * O) of the tile */
                int i = i0 + rr;
                float li = 0.0f, di = 0.0f;
                if (i < ihi) {
                    size_t row = ((size_t)(b * T + i) * H + h) * hd;
                    vecf d = (vecf)(0.0f);
                    for (int c = 0; c < hdv; c++)
                        d = fma(load_vec(dout + row, c, hd), load_vec(o + row, c, hd), d);
                    di = hsum16(d);
                    li = lse[((size_t)b * H + h) * T + i];
                }
                ls[rr] = li;
                dd[rr] = di;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            if (!live || i0 + BQ <= j) continue; /* the whole tile is before this key */
            float s[UF_BK_MAX], dp[UF_BK_MAX];
            dots_tile(s, ks, qT, D, BQ);
            dots_tile(dp, vsc, doT, D, BQ);
            int ilo = max(0, j - i0), nq = min(BQ, ihi - i0);
            for (int ib = 0; ib < BQ; ib += 16) {
                int16 vis = visible16((int16)(i0 + ib) + UF_IOTA16, (int16)(j), len, window);
                float16 p = select((float16)(0.0f),
                                   exp(vload16(0, s + ib) - vload16(0, ls + ib)), vis);
                float16 dsv = p * (vload16(0, dp + ib) - vload16(0, dd + ib));
                vstore16(p, 0, s + ib);
                vstore16(dsv, 0, dp + ib);
            }
            for (int ii = ilo; ii < nq; ii++) {
                float p = s[ii], dsv = dp[ii];
                if (p == 0.0f) continue; /* invisible query (adds exactly nothing) */
                size_t row = ((size_t)(b * T + i0 + ii) * H + h) * hd;
#pragma unroll
                for (int c = 0; c < hdv; c++) {
                    dva[c] = fma((vecf)(p), load_vec(dout + row, c, hd), dva[c]);
                    dka[c] = fma((vecf)(dsv), load_vec(q + row, c, hd), dka[c]);
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

/* a[j] = b[j] = 0 for j in [lo, hi), 16 at a time */
static inline void zero_cols(__global float *a, __global float *b, int lo, int hi) {
    int j = lo;
    for (; j + 16 <= hi; j += 16) {
        vstore16((float16)(0.0f), 0, a + j);
        vstore16((float16)(0.0f), 0, b + j);
    }
    for (; j < hi; j++) a[j] = b[j] = 0.0f;
}

/* global (ceil(T/bq)*bq, nh, nb), local (bq, 1, 1); kT, vT: local (D, BK) transposed K and V.
 * The GEMM form of the backward (attention.c): for head h = h0 + gid(1), sequence b = b0 + gid(2)
 * writes the whole rows i < T of P = exp(s - lse) and dS = scale * P (dP - D_i), zeros where a
 * key is invisible and on rows i >= len, into p / ds laid out (nh, nb, T, T). */
static inline void attn_bwd_pds(__global const float *q, ulong qoff, __global const float *k,
                                ulong koff, __global const float *v, ulong voff,
                                __global const int *lengths, ulong loff, __global const float *o,
                                ulong ooff, __global const float *lse, ulong lseoff,
                                __global const float *dout, ulong dooff, __global float *p,
                                ulong poff, __global float *ds, ulong dsoff, int T, int H, int KV,
                                int hd, int window, float scale, int h0, int b0,
                                __local float *kT, __local float *vT, const int hdv) {
    const int D = hdv * UF_VW, BK = UF_ATTN_BK(D);
    int lid = get_local_id(0), bq = get_local_size(0);
    int i0 = get_group_id(0) * bq, i = i0 + lid;
    int hh = get_global_id(1), bb = get_global_id(2);
    int h = h0 + hh, b = b0 + bb;
    int g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int live = i < len;
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff, dout += dooff;
    size_t prow_off = ((size_t)(hh * get_global_size(2) + bb) * T + i) * T;
    __global float *prow = p + poff + prow_off, *dsrow = ds + dsoff + prow_off;

    float qs[UF_HDV_MAX * UF_VW], dos[UF_HDV_MAX * UF_VW];
    float li = 0.0f, Di = 0.0f;
    size_t row = ((size_t)(b * T + i) * H + h) * hd;
    if (live) {
        Di = bwd_row(q, o, dout, row, hd, hdv, scale, qs, dos);
        li = lse[((size_t)b * H + h) * T + i];
    }
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = min(len, i0 + bq);
    if (i < T) { /* columns no tile covers: [0, jlo) and [jhi, T) (all of them on dead rows) */
        zero_cols(prow, dsrow, 0, live ? jlo : 0);
        zero_cols(prow, dsrow, live ? max(jhi, jlo) : 0, T);
    }
    for (int j0 = jlo; j0 < jhi; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile_t(kT, k, b, T, KV, g, hd, D, j0, BK, jhi, lid, bq);
        load_tile_t(vT, v, b, T, KV, g, hd, D, j0, BK, jhi, lid, bq);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!live) continue;
        int nw = min(BK, jhi - j0); /* columns [j0, j0 + nw) of this row */
        if (j0 > i) { /* the whole tile is past the diagonal */
            zero_cols(prow, dsrow, j0, j0 + nw);
            continue;
        }
        float s[UF_BK_MAX], dp[UF_BK_MAX];
        dots_tile(s, qs, kT, D, BK);
        dots_tile(dp, dos, vT, D, BK);
        for (int jb = 0; jb < BK; jb += 16) {
            int16 vis = visible16((int16)(i), (int16)(j0 + jb) + UF_IOTA16, len, window);
            float16 pv = select((float16)(0.0f), exp(vload16(0, s + jb) - (float16)(li)), vis);
            float16 dsv = pv * (vload16(0, dp + jb) - (float16)(Di)) * scale;
            if (jb + 16 <= nw) {
                vstore16(pv, 0, prow + j0 + jb);
                vstore16(dsv, 0, dsrow + j0 + jb);
            } else {
                vstore16(pv, 0, s + jb);
                vstore16(dsv, 0, dp + jb);
                for (int jj = jb; jj < nw; jj++) prow[j0 + jj] = s[jj], dsrow[j0 + jj] = dp[jj];
            }
        }
    }
}

/* ---- kernel instances: head rows padded to D = 32, 64, 128 or 256 floats -------------------- */
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
        int KV, int hd, int window, float scale, __local float *kT, __local float *vT) {       \
        attn_bwd_dq(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, dout,      \
                    dooff, dq, dqoff, T, H, KV, hd, window, scale, kT, vT, D / UF_VW);         \
    }                                                                                          \
    __kernel void uf_attn_bwd_pds_d##D(                                                        \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global const float *o, ulong ooff, __global const float *lse, ulong lseoff,          \
        __global const float *dout, ulong dooff, __global float *p, ulong poff,                \
        __global float *ds, ulong dsoff, int T, int H, int KV, int hd, int window, float scale, \
        int h0, int b0, __local float *kT, __local float *vT) {                                \
        attn_bwd_pds(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, dout,     \
                     dooff, p, poff, ds, dsoff, T, H, KV, hd, window, scale, h0, b0, kT, vT,   \
                     D / UF_VW);                                                               \
    }                                                                                          \
    __kernel void uf_attn_bwd_dkdv_d##D(                                                       \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global const float *o, ulong ooff, __global const float *lse, ulong lseoff,          \
        __global const float *dout, ulong dooff, __global float *dk, ulong dkoff,              \
        __global float *dv, ulong dvoff, int T, int H, int KV, int hd, int window, float scale, \
        __local float *qT, __local float *doT, __local float *ls, __local float *dd) {         \
        attn_bwd_dkdv(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, dout,    \
                      dooff, dk, dkoff, dv, dvoff, T, H, KV, hd, window, scale, qT, doT, ls,   \
                      dd, D / UF_VW);                                                          \
    }

UF_ATTN_INSTANCE(32)
UF_ATTN_INSTANCE(64)
UF_ATTN_INSTANCE(128)
UF_ATTN_INSTANCE(256)
