/* attention_gpu.cl: the GPU variant of causal flash attention (the contract: layout, GQA,
 * sliding window, per-sequence lengths, lse, is attention.cl's; oracle uf_ref_attention_* in
 * runtime/ref). runtime/ops/attention.c selects these kernels on every device that does not
 * take the CPU path (uf_ops_cpu_path in ops.h: GPUs, accelerators; uf_ops_portable = 1 forces
 * them anywhere); attention.cl's kernels, one work-item per query row with the row in private
 * vectors, are the CPU variant. A separate file, so CPU devices never build these.
 *
 * Shape (FlashAttention-2 without atomics): a work-group of UF_WG = 128 work-items owns a block
 * of query rows (forward, dq) or of key rows (dk/dv) of one (sequence, head). The rows it needs
 * (Q, dO, K, V tiles) are staged in local memory by coalesced copies (consecutive work-items,
 * consecutive floats), each row padded by one float so that walks down a column of the tile
 * touch different banks. A tile of scores is computed cooperatively, each work-item owning a
 * few scores of one column (register-blocked: one K element per step feeds all its rows), and
 * kept as a local (rows, cols) matrix; the output accumulators are spread the same way, 16 (or
 * 2 x 16) floats per work-item. No work-item holds a head row of its own.
 *
 *   uf_attn_fwd_gpu_dD       group = BQ queries of (b, h); per key tile of BK: S = scale Q K^T
 *                            masked; work-item r < BQ updates row r's running max and sum in key
 *                            order and turns the row into p; then O = corr O + P V. Writes o, lse.
 *   uf_attn_bwd_dq_gpu_dD    group = BQ queries: first Delta_i = rowsum(dO_i * O_i) (summed by
 *                            work-item r in column order, also written to `delta` (B, H, T) for
 *                            the next kernel); per key tile dS = P (dP - Delta) scale in local,
 *                            then dq += dS K.
 *   uf_attn_bwd_dkdv_gpu_dD  group = BK keys of (b, g): over the query heads of the group and
 *                            the query tiles that see the block, in order: P^T and dS^T in local,
 *                            then dv += P^T dO, dk += scale dS^T Q.
 * Every sum has a fixed order and there are no atomics (bit-identical reruns); barriers sit in
 * uniform control flow. Results equal attention.cl's up to rounding.
 *
 * Tile rows per head-dim instance (D = 32, 64, 128, 256; attention.c's uf_attn_gpu_tiles
 * mirrors them for the launch grid and the performance model), chosen so
 * every kernel needs at most 29 KiB of local memory (OpenCL guarantees 32 KiB) and each
 * work-item 16 accumulators per output:
 *           fwd BQ x BK   dq BQ x BK   dkdv BK x BQ
 *   D = 32     64 x 32      32 x 32      32 x 32
 *   D = 64     32 x 32      32 x 16      32 x 16
 *   D = 128    16 x 16      16 x 8       16 x 8
 *   D = 256     8 x 8        8 x 4        8 x 4
 * A score tile has either a multiple of 128 entries or fewer than 128 (then the work-items past
 * its size idle in the score phase). Not measured on a GPU yet (none at hand): checked against
 * the reference on PoCL and under oclgrind (tests/test_oclgrind.sh, races and bounds). */

#define UF_WG 128   /* work-items per group (reqd_work_group_size) */
#define UF_NACC 16  /* the most accumulators (scores, outputs) a work-item holds */
#define UF_CEIL(a, b) (((a) + (b) - 1) / (b))

#define FWD_BQ(D) ((D) == 32 ? 64 : (D) == 64 ? 32 : (D) == 128 ? 16 : 8)
#define FWD_BK(D) ((D) <= 64 ? 32 : (D) == 128 ? 16 : 8)
#define DQ_BQ(D) ((D) <= 64 ? 32 : (D) == 128 ? 16 : 8)
#define DQ_BK(D) ((D) == 32 ? 32 : (D) == 64 ? 16 : (D) == 128 ? 8 : 4)
#define DKV_BK(D) DQ_BQ(D)
#define DKV_BQ(D) DQ_BK(D)

/* dst[r * (D + 1) + c] = s * x[row r0 + r][c] of head `head` of a (B*T, nheads*hd) tensor, for
 * r < nr, c < D; zero for c >= hd and for rows >= rmax. */
static inline void stage_rows(__local float *dst, __global const float *x, int b, int T,
                              int nheads, int head, int hd, const int D, int r0, const int nr,
                              int rmax, float s) {
    for (int e = get_local_id(0); e < nr * D; e += UF_WG) {
        int r = e / D, c = e - r * D, t = r0 + r;
        float val = 0.0f;
        if (t < rmax && c < hd) val = s * x[((size_t)(b * T + t) * nheads + head) * hd + c];
        dst[r * (D + 1) + c] = val;
    }
}

/* How many of a work-item's rows r0, r0 + step, ... (n of them) are below nlive: a prefix. */
static inline int live_rows(int r0, int step, int n, int nlive) {
    return r0 < nlive ? min(n, (nlive - r0 + step - 1) / step) : 0;
}

/* key j visible to query i (attention.cl) */
static inline int visible(int i, int j, int len, int window) {
    return j <= i && i < len && (window == 0 || i - j < window);
}

/* global (ceil(T/BQ)*128, H, B), local (128, 1, 1). Qs (BQ, D+1) scaled queries, Ks, Vs (BK, D+1),
 * Ps (BQ, BK+1) scores then probabilities, rs (BQ) per-row factors. */
static inline void attn_fwd_gpu(__global const float *q, ulong qoff, __global const float *k,
                                ulong koff, __global const float *v, ulong voff,
                                __global const int *lengths, ulong loff, __global float *o,
                                ulong ooff, __global float *lse, ulong lseoff, int T, int H,
                                int KV, int hd, int window, float scale, __local float *Qs,
                                __local float *Ks, __local float *Vs, __local float *Ps,
                                __local float *rs, const int D, const int BQ, const int BK) {
    const int DP = D + 1, BKP = BK + 1, NS = UF_CEIL(BQ * BK, UF_WG), NO = BQ * D / UF_WG;
    const int RS = UF_WG / BK; /* row step of a work-item's scores */
    int tid = get_local_id(0), i0 = get_group_id(0) * BQ;
    int h = get_global_id(1), b = get_global_id(2), g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int nq = clamp(len - i0, 0, BQ); /* live query rows of the block */
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff;

    stage_rows(Qs, q, b, T, H, h, hd, D, i0, BQ, len, scale);
    float acc[UF_NACC];
    for (int a = 0; a < NO; a++) acc[a] = 0.0f;
    float m = -INFINITY, l = 0.0f; /* running max and sum of row tid (tid < BQ) */
    /* keys any live query of the block can see (uniform over the group) */
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = i0 < len ? min(len, i0 + BQ) : 0;
    for (int j0 = jlo; j0 < jhi; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous tile is consumed */
        stage_rows(Ks, k, b, T, KV, g, hd, D, j0, BK, jhi, 1.0f);
        stage_rows(Vs, v, b, T, KV, g, hd, D, j0, BK, jhi, 1.0f);
        barrier(CLK_LOCAL_MEM_FENCE);
        int nk = min(BK, jhi - j0); /* keys of the tile */
        /* scores: work-item tid owns column j = tid % BK of rows tid / BK + RS a, the first
         * na of them live (rows past the sequence and keys past the tile are skipped) */
        if (BQ * BK >= UF_WG || tid < BQ * BK) {
            int j = tid % BK, r0 = tid / BK, na = live_rows(r0, RS, NS, nq);
            if (j >= nk) na = 0;
            float s[UF_NACC];
            for (int a = 0; a < NS; a++) s[a] = 0.0f;
            for (int c = 0; c < D; c++) {
                float kv = Ks[j * DP + c];
                for (int a = 0; a < NS; a++)
                    if (a < na) s[a] = fma(Qs[(r0 + RS * a) * DP + c], kv, s[a]);
            }
            for (int a = 0; a < NS; a++) {
                int r = r0 + RS * a;
                int vis = a < na && visible(i0 + r, j0 + j, len, window);
                Ps[r * BKP + j] = vis ? s[a] : -INFINITY;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* online softmax of row tid, keys in order: rs = exp(m_old - m_new), row -> p */
        if (tid < BQ) {
            __local float *pr = Ps + tid * BKP;
            float mt = m, corr = 1.0f;
            for (int j = 0; j < nk; j++) mt = fmax(mt, pr[j]);
            if (mt == -INFINITY) { /* nothing visible yet for this row */
                for (int j = 0; j < nk; j++) pr[j] = 0.0f;
            } else {
                float lt = 0.0f;
                corr = exp(m - mt);
                for (int j = 0; j < nk; j++) {
                    float p = exp(pr[j] - mt);
                    pr[j] = p;
                    lt += p;
                }
                l = l * corr + lt;
                m = mt;
            }
            rs[tid] = corr;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* O = corr O + P V: work-item tid owns (row, dim) = divmod(tid + 128 a, D) */
        for (int a = 0; a < NO; a++) {
            int e = tid + UF_WG * a, r = e / D, c = e - r * D;
            if (r >= nq) continue; /* past the sequence: stays 0 */
            __local const float *pr = Ps + r * BKP;
            float t = 0.0f;
            for (int j = 0; j < nk; j++) t = fma(pr[j], Vs[j * DP + c], t);
            acc[a] = fma(acc[a], rs[r], t);
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (tid < BQ) {
        int i = i0 + tid, live = i < len;
        rs[tid] = live ? 1.0f / l : 0.0f;
        if (i < T) lse[((size_t)b * H + h) * T + i] = live ? m + log(l) : 0.0f;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int a = 0; a < NO; a++) {
        int e = tid + UF_WG * a, r = e / D, c = e - r * D, i = i0 + r;
        if (i < T && c < hd)
            o[((size_t)(b * T + i) * H + h) * hd + c] = i < len ? acc[a] * rs[r] : 0.0f;
    }
}

/* global (ceil(T/BQ)*128, H, B), local (128, 1, 1). Qs, dOs (BQ, D+1) scaled queries and dO
 * rows, Ks, Vs (BK, D+1), Ss (BQ, BK+1) scaled dS, ls, dd (BQ) lse and Delta of the rows.
 * delta (B, H, T): Delta_i for uf_attn_bwd_dkdv_gpu (rows i < T; 0 on padded rows). */
static inline void attn_bwd_dq_gpu(__global const float *q, ulong qoff, __global const float *k,
                                   ulong koff, __global const float *v, ulong voff,
                                   __global const int *lengths, ulong loff,
                                   __global const float *o, ulong ooff, __global const float *lse,
                                   ulong lseoff, __global const float *dout, ulong dooff,
                                   __global float *dq, ulong dqoff, __global float *delta, int T,
                                   int H, int KV, int hd, int window, float scale,
                                   __local float *Qs, __local float *dOs, __local float *Ks,
                                   __local float *Vs, __local float *Ss, __local float *ls,
                                   __local float *dd, const int D, const int BQ, const int BK) {
    const int DP = D + 1, BKP = BK + 1, NS = UF_CEIL(BQ * BK, UF_WG), NO = BQ * D / UF_WG;
    const int RS = UF_WG / BK; /* row step of a work-item's scores */
    int tid = get_local_id(0), i0 = get_group_id(0) * BQ;
    int h = get_global_id(1), b = get_global_id(2), g = h / (H / KV);
    int len = clamp(lengths[loff + b], 0, T);
    int nq = clamp(len - i0, 0, BQ); /* live query rows of the block */
    q += qoff, k += koff, v += voff, o += ooff, lse += lseoff, dout += dooff, dq += dqoff;

    /* Delta_i = rowsum(dO_i * O_i): the products staged in Qs, then summed by work-item r */
    for (int e = tid; e < BQ * D; e += UF_WG) {
        int r = e / D, c = e - r * D, i = i0 + r;
        float dov = 0.0f, prod = 0.0f;
        if (i < len && c < hd) {
            size_t x = ((size_t)(b * T + i) * H + h) * hd + c;
            dov = dout[x];
            prod = dov * o[x];
        }
        dOs[r * DP + c] = dov;
        Qs[r * DP + c] = prod;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (tid < BQ) {
        int i = i0 + tid;
        float di = 0.0f;
        for (int c = 0; c < D; c++) di += Qs[tid * DP + c];
        dd[tid] = di;
        ls[tid] = i < len ? lse[((size_t)b * H + h) * T + i] : 0.0f;
        if (i < T) delta[((size_t)b * H + h) * T + i] = di;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    stage_rows(Qs, q, b, T, H, h, hd, D, i0, BQ, len, scale);

    float acc[UF_NACC];
    for (int a = 0; a < NO; a++) acc[a] = 0.0f;
    int jlo = window > 0 ? max(0, i0 - window + 1) : 0;
    int jhi = i0 < len ? min(len, i0 + BQ) : 0;
    for (int j0 = jlo; j0 < jhi; j0 += BK) {
        barrier(CLK_LOCAL_MEM_FENCE);
        stage_rows(Ks, k, b, T, KV, g, hd, D, j0, BK, jhi, 1.0f);
        stage_rows(Vs, v, b, T, KV, g, hd, D, j0, BK, jhi, 1.0f);
        barrier(CLK_LOCAL_MEM_FENCE);
        int nk = min(BK, jhi - j0); /* keys of the tile */
        /* s = (scale q) . k and dp = dO . v for column j = tid % BK of rows tid / BK + RS a (the
         * first na live) */
        if (BQ * BK >= UF_WG || tid < BQ * BK) {
            int j = tid % BK, r0 = tid / BK, na = live_rows(r0, RS, NS, nq);
            if (j >= nk) na = 0;
            float s[UF_NACC], dp[UF_NACC];
            for (int a = 0; a < NS; a++) s[a] = dp[a] = 0.0f;
            for (int c = 0; c < D; c++) {
                float kv = Ks[j * DP + c], vv = Vs[j * DP + c];
                for (int a = 0; a < NS; a++) {
                    if (a >= na) continue;
                    int r = r0 + RS * a;
                    s[a] = fma(Qs[r * DP + c], kv, s[a]);
                    dp[a] = fma(dOs[r * DP + c], vv, dp[a]);
                }
            }
            for (int a = 0; a < NS; a++) {
                int r = r0 + RS * a;
                int vis = a < na && visible(i0 + r, j0 + j, len, window);
                float p = vis ? exp(s[a] - ls[r]) : 0.0f;
                Ss[r * BKP + j] = p * (dp[a] - dd[r]) * scale;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        /* dq += dS K: work-item tid owns (row, dim) = divmod(tid + 128 a, D) */
        for (int a = 0; a < NO; a++) {
            int e = tid + UF_WG * a, r = e / D, c = e - r * D;
            if (r >= nq) continue;
            __local const float *sr = Ss + r * BKP;
            float t = 0.0f;
            for (int j = 0; j < nk; j++) t = fma(sr[j], Ks[j * DP + c], t);
            acc[a] += t;
        }
    }
    for (int a = 0; a < NO; a++) {
        int e = tid + UF_WG * a, r = e / D, c = e - r * D, i = i0 + r;
        if (i < len && c < hd) dq[((size_t)(b * T + i) * H + h) * hd + c] += acc[a];
    }
}

/* global (ceil(T/BK)*128, KV, B), local (128, 1, 1). Ks (BK, D+1) scaled keys, Vs (BK, D+1),
 * Qs, dOs (BQ, D+1) query and dO rows, Ps, Ss (BK, BQ+1) P^T and dS^T, ls, dd (BQ) lse and
 * Delta (from delta, written by uf_attn_bwd_dq_gpu) of the query rows. */
static inline void attn_bwd_dkdv_gpu(__global const float *q, ulong qoff,
                                     __global const float *k, ulong koff,
                                     __global const float *v, ulong voff,
                                     __global const int *lengths, ulong loff,
                                     __global const float *lse, ulong lseoff,
                                     __global const float *dout, ulong dooff, __global float *dk,
                                     ulong dkoff, __global float *dv, ulong dvoff,
                                     __global const float *delta, int T, int H, int KV, int hd,
                                     int window, float scale, __local float *Ks,
                                     __local float *Vs, __local float *Qs, __local float *dOs,
                                     __local float *Ps, __local float *Ss, __local float *ls,
                                     __local float *dd, const int D, const int BK, const int BQ) {
    const int DP = D + 1, BQP = BQ + 1, NS = UF_CEIL(BK * BQ, UF_WG), NA = BK * D / UF_WG;
    const int RS = UF_WG / BQ; /* row step of a work-item's scores */
    int tid = get_local_id(0), j0 = get_group_id(0) * BK;
    int g = get_global_id(1), b = get_global_id(2), R = H / KV;
    int len = clamp(lengths[loff + b], 0, T);
    if (j0 >= len) return; /* the whole block is padding (uniform over the group) */
    int nkb = min(BK, len - j0); /* live key rows of the block */
    q += qoff, k += koff, v += voff, lse += lseoff, dout += dooff, dk += dkoff, dv += dvoff;

    stage_rows(Ks, k, b, T, KV, g, hd, D, j0, BK, len, scale);
    stage_rows(Vs, v, b, T, KV, g, hd, D, j0, BK, len, 1.0f);
    float dka[UF_NACC], dva[UF_NACC];
    for (int a = 0; a < NA; a++) dka[a] = dva[a] = 0.0f;
    /* queries that can see some key of the block: [j0, ihi) */
    int ihi = window > 0 ? min(len, j0 + BK - 1 + window) : len;
    for (int rh = 0; rh < R; rh++) {
        int h = g * R + rh;
        for (int i0 = j0; i0 < ihi; i0 += BQ) {
            barrier(CLK_LOCAL_MEM_FENCE);
            stage_rows(Qs, q, b, T, H, h, hd, D, i0, BQ, ihi, 1.0f);
            stage_rows(dOs, dout, b, T, H, h, hd, D, i0, BQ, ihi, 1.0f);
            if (tid < BQ) {
                int i = i0 + tid;
                size_t x = ((size_t)b * H + h) * T + i;
                ls[tid] = i < ihi ? lse[x] : 0.0f;
                dd[tid] = i < ihi ? delta[x] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            int nqt = min(BQ, ihi - i0); /* queries of the tile */
            /* s = (scale k) . q and dp = v . dO for query i = tid % BQ of keys tid / BQ + RS a
             * (the first na live) */
            if (BK * BQ >= UF_WG || tid < BK * BQ) {
                int i = tid % BQ, r0 = tid / BQ, na = live_rows(r0, RS, NS, nkb);
                if (i >= nqt) na = 0;
                float s[UF_NACC], dp[UF_NACC];
                for (int a = 0; a < NS; a++) s[a] = dp[a] = 0.0f;
                for (int c = 0; c < D; c++) {
                    float qv = Qs[i * DP + c], ov = dOs[i * DP + c];
                    for (int a = 0; a < NS; a++) {
                        if (a >= na) continue;
                        int r = r0 + RS * a;
                        s[a] = fma(Ks[r * DP + c], qv, s[a]);
                        dp[a] = fma(Vs[r * DP + c], ov, dp[a]);
                    }
                }
                for (int a = 0; a < NS; a++) {
                    int r = r0 + RS * a;
                    int vis = a < na && visible(i0 + i, j0 + r, len, window);
                    float p = vis ? exp(s[a] - ls[i]) : 0.0f;
                    Ps[r * BQP + i] = p;
                    Ss[r * BQP + i] = p * (dp[a] - dd[i]);
                }
            }
            barrier(CLK_LOCAL_MEM_FENCE);
            /* dv += P^T dO, dk += dS^T Q: work-item tid owns (key, dim) = divmod(tid + 128 a, D) */
            for (int a = 0; a < NA; a++) {
                int e = tid + UF_WG * a, r = e / D, c = e - r * D;
                if (r >= nkb) continue; /* past the sequence: never written */
                __local const float *pr = Ps + r * BQP, *sr = Ss + r * BQP;
                float tv = 0.0f, tk = 0.0f;
                for (int ii = 0; ii < nqt; ii++) {
                    tv = fma(pr[ii], dOs[ii * DP + c], tv);
                    tk = fma(sr[ii], Qs[ii * DP + c], tk);
                }
                dva[a] += tv;
                dka[a] += tk;
            }
        }
    }
    for (int a = 0; a < NA; a++) {
        int e = tid + UF_WG * a, r = e / D, c = e - r * D, j = j0 + r;
        if (j < len && c < hd) {
            size_t x = ((size_t)(b * T + j) * KV + g) * hd + c;
            dk[x] += dka[a] * scale;
            dv[x] += dva[a];
        }
    }
}

/* ---- kernel instances: head rows padded to D = 32, 64, 128 or 256 floats ------------------ */
#define UF_ATTN_GPU_INSTANCE(D)                                                                \
    __kernel __attribute__((reqd_work_group_size(UF_WG, 1, 1))) void uf_attn_fwd_gpu_d##D(     \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global float *o, ulong ooff, __global float *lse, ulong lseoff, int T, int H, int KV, \
        int hd, int window, float scale) {                                                     \
        __local float Qs[FWD_BQ(D) * (D + 1)], Ks[FWD_BK(D) * (D + 1)],                         \
            Vs[FWD_BK(D) * (D + 1)], Ps[FWD_BQ(D) * (FWD_BK(D) + 1)], rs[FWD_BQ(D)];            \
        attn_fwd_gpu(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, T, H, KV,  \
                     hd, window, scale, Qs, Ks, Vs, Ps, rs, D, FWD_BQ(D), FWD_BK(D));           \
    }                                                                                          \
    __kernel __attribute__((reqd_work_group_size(UF_WG, 1, 1))) void uf_attn_bwd_dq_gpu_d##D(  \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global const float *o, ulong ooff, __global const float *lse, ulong lseoff,          \
        __global const float *dout, ulong dooff, __global float *dq, ulong dqoff,              \
        __global float *delta, int T, int H, int KV, int hd, int window, float scale) {        \
        __local float Qs[DQ_BQ(D) * (D + 1)], dOs[DQ_BQ(D) * (D + 1)],                          \
            Ks[DQ_BK(D) * (D + 1)], Vs[DQ_BK(D) * (D + 1)], Ss[DQ_BQ(D) * (DQ_BK(D) + 1)],      \
            ls[DQ_BQ(D)], dd[DQ_BQ(D)];                                                        \
        attn_bwd_dq_gpu(q, qoff, k, koff, v, voff, lengths, loff, o, ooff, lse, lseoff, dout,  \
                        dooff, dq, dqoff, delta, T, H, KV, hd, window, scale, Qs, dOs, Ks, Vs, \
                        Ss, ls, dd, D, DQ_BQ(D), DQ_BK(D));                                    \
    }                                                                                          \
    __kernel __attribute__((reqd_work_group_size(UF_WG, 1, 1))) void uf_attn_bwd_dkdv_gpu_d##D( \
        __global const float *q, ulong qoff, __global const float *k, ulong koff,              \
        __global const float *v, ulong voff, __global const int *lengths, ulong loff,          \
        __global const float *lse, ulong lseoff, __global const float *dout, ulong dooff,      \
        __global float *dk, ulong dkoff, __global float *dv, ulong dvoff,                      \
        __global const float *delta, int T, int H, int KV, int hd, int window, float scale) {  \
        __local float Ks[DKV_BK(D) * (D + 1)], Vs[DKV_BK(D) * (D + 1)],                         \
            Qs[DKV_BQ(D) * (D + 1)], dOs[DKV_BQ(D) * (D + 1)],                                  \
            Ps[DKV_BK(D) * (DKV_BQ(D) + 1)], Ss[DKV_BK(D) * (DKV_BQ(D) + 1)], ls[DKV_BQ(D)],    \
            dd[DKV_BQ(D)];                                                                     \
        attn_bwd_dkdv_gpu(q, qoff, k, koff, v, voff, lengths, loff, lse, lseoff, dout, dooff,  \
                          dk, dkoff, dv, dvoff, delta, T, H, KV, hd, window, scale, Ks, Vs, Qs, \
                          dOs, Ps, Ss, ls, dd, D, DKV_BK(D), DKV_BQ(D));                        \
    }

UF_ATTN_GPU_INSTANCE(32)
UF_ATTN_GPU_INSTANCE(64)
UF_ATTN_GPU_INSTANCE(128)
UF_ATTN_GPU_INSTANCE(256)
