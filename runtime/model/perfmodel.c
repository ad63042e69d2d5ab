/* perfmodel.c: the performance model of perfmodel.h: per-family costs from shapes, the walk of
 * one training step (mirrors model.c, lora.c's linear path, attention.c and optim.c launch by
 * launch), the roofline, the table of GPU peaks. */
#include "model/perfmodel.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"
#include "model/model.h"
#include "ops/gemm.h"
#include "ops/ops.h"

/* ---- families ----------------------------------------------------------------------------- */
static const char *family_names[UF_PF_N] = {
    "gemm", "attn_fwd", "attn_bwd", "rmsnorm_fwd", "rmsnorm_bwd", "rope", "act_fwd", "act_bwd",
    "dropout", "embed_fwd", "embed_bwd", "cross_entropy", "reduce", "adamw", "tensor"};

const char *uf_perf_family_name(enum uf_perf_family f) {
    return f >= 0 && f < UF_PF_N ? family_names[f] : "other";
}

enum uf_perf_family uf_perf_family_of_kernel(const char *k) {
    static const struct { const char *prefix; enum uf_perf_family f; } map[] = {
        {"uf_gemm_", UF_PF_GEMM},           {"clblast_", UF_PF_GEMM},
        {"uf_attn_fwd", UF_PF_ATTN_FWD},    {"uf_attn_bwd", UF_PF_ATTN_BWD},
        {"uf_rmsnorm_forward", UF_PF_NORM_FWD}, {"uf_rmsnorm_backward", UF_PF_NORM_BWD},
        {"uf_rope", UF_PF_ROPE},            {"uf_gated_forward", UF_PF_ACT_FWD},
        {"uf_gated_backward", UF_PF_ACT_BWD}, {"uf_dropout", UF_PF_DROPOUT},
        {"uf_embed_forward", UF_PF_EMBED_FWD}, {"uf_embed_", UF_PF_EMBED_BWD},
        {"uf_cross_entropy", UF_PF_LOSS},   {"uf_reduce_", UF_PF_REDUCE},
        {"uf_adamw", UF_PF_ADAMW},          {"uf_clip_", UF_PF_ADAMW},
        {"uf_nonfinite_guard", UF_PF_ADAMW}, {"uf_fill_", UF_PF_TENSOR},
        {"uf_axpby_", UF_PF_TENSOR},        {"uf_stream_add", UF_PF_TENSOR},
        {"uf_bf16_to_f32", UF_PF_TENSOR},
        {"uf_f32_to_bf16", UF_PF_TENSOR},   {"copy_buffer", UF_PF_TENSOR},
    };
    for (size_t i = 0; i < UF_ARRAY_LEN(map); i++)
        if (strncmp(k, map[i].prefix, strlen(map[i].prefix)) == 0) return map[i].f;
    return UF_PF_N;
}

static struct uf_perf_cost cost(double flops, double bytes, double launches) {
    return (struct uf_perf_cost){flops, bytes, launches};
}

/* ---- GEMM ---------------------------------------------------------------------------------- */
static int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/* Mirrors own_run in ops/gemm.c: panels of B (and of A when ta) packed per chunk, one
 * uf_gemm_block launch per (batch group, column chunk, row chunk). */
static struct uf_perf_cost gemm_own(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                                    int b_bytes, int beta, int64_t scratch_limit) {
    const int64_t MR = UF_GEMM_MR, NR = UF_GEMM_NR;
    double c_bytes = (beta ? 8.0 : 4.0) * (double)m * (double)n * (double)batch;
    double flops = 2.0 * (double)m * (double)n * (double)k * (double)batch;
    if (!ta && tb && m <= UF_GEMM_SMALL_M) /* uf_gemm_nt_small: W read in place */
        return cost(flops, 4.0 * (double)(m * k * batch) + (double)b_bytes * (double)(n * k * batch) + c_bytes, 1);
    int64_t kk = k ? k : 1;
    int64_t lim = (scratch_limit > 0 ? scratch_limit : (int64_t)UF_GEMM_SCRATCH_DEFAULT) / 4;
    int64_t lim_b = ta ? lim / 2 : lim, lim_a = lim / 2;
    int64_t npad = round_up(n, NR), mpad = round_up(m, MR);
    int64_t nc = UF_MIN(npad, UF_MAX(NR, lim_b / (kk * NR) * NR));
    int64_t mc = ta ? UF_MIN(mpad, UF_MAX(MR, lim_a / (kk * MR) * MR)) : m;
    int64_t group = batch;
    if (nc < npad || mc < mpad) group = 1;
    group = UF_MAX((int64_t)1, UF_MIN(group, lim_b / (kk * npad)));
    if (ta) group = UF_MAX((int64_t)1, UF_MIN(group, lim_a / (kk * mpad)));
    double bytes = c_bytes, launches = 0;
    for (int64_t b0 = 0; b0 < batch; b0 += group) {
        double gb = (double)UF_MIN(group, batch - b0);
        for (int64_t j = 0; j < n; j += nc) {
            int64_t ncur = UF_MIN(nc, n - j), ncpad = round_up(ncur, NR);
            if (k > 0) { /* pack B: read the panel's source, write it packed (f32) */
                bytes += gb * ((double)b_bytes * (double)(k * ncur) + 4.0 * (double)(kk * ncpad));
                launches++;
            }
            for (int64_t i = 0; i < m; i += mc) {
                int64_t mcur = UF_MIN(mc, m - i), mcpad = round_up(mcur, MR);
                if (ta && k > 0) {
                    bytes += gb * 4.0 * (double)(k * mcur + kk * mcpad);
                    launches++;
                }
                /* block: A (or its packed panel) and the packed B panel once, C (above) */
                bytes += gb * 4.0 * (double)(k * (ta ? mcpad : mcur) + kk * ncpad);
                launches++;
            }
        }
    }
    return cost(flops, bytes, launches);
}

struct uf_perf_cost uf_perf_gemm(int own, int ta, int tb, int64_t m, int64_t n, int64_t k,
                                 int64_t batch, int b_bytes, int beta, int64_t scratch_limit) {
    if (m == 0 || n == 0 || batch == 0) return cost(0, 0, 0);
    if (own || k == 0) return gemm_own(ta, tb, m, n, k, batch, b_bytes, beta, scratch_limit);
    double bytes = (double)batch * (4.0 * (double)(m * k) + (double)b_bytes * (double)(k * n) +
                                    (beta ? 8.0 : 4.0) * (double)(m * n));
    return cost(2.0 * (double)m * (double)n * (double)k * (double)batch, bytes, 1);
}

/* ---- attention ------------------------------------------------------------------------------ */
/* attention.c: head rows padded to 32, 64, 128 or 256; key tiles of 64, 64, 32, 16 rows */
static int padded_hd(int hd) { return hd <= 32 ? 32 : hd <= 64 ? 64 : hd <= 128 ? 128 : 256; }
static int tile_rows(int hdp) { return hdp <= 64 ? 64 : hdp == 128 ? 32 : 16; }

/* Key tiles a causal query row computes, summed over the T rows: row i computes the tiles that
 * start at or before i. */
static double tiles_sum(int T, int BK) {
    double s = 0;
    for (int i = 0; i < T; i++) s += (double)(i / BK + 1);
    return s;
}

/* Per (sequence, head), attn_fwd: q row scaled (hdp) and normalised (hdp); per computed tile
 * the scores (2 hdp BK), softmax max / subtract / exp / sum (4 BK) and the rescale of the
 * accumulator (hdp); per visible key the p v update (2 hdp). Reads q, k, v, writes o, lse. */
struct uf_perf_cost uf_perf_attn_fwd(int B, int T, int H, int KV, int hd) {
    int hdp = padded_hd(hd), BK = tile_rows(hdp);
    double vis = (double)T * (T + 1) / 2, tiles = tiles_sum(T, BK);
    double per_head = 2.0 * hdp * T + tiles * (2.0 * hdp * BK + 4.0 * BK + hdp) + 2.0 * hdp * vis;
    double bytes = 4.0 * (double)B * T * ((double)H * hd * 2 + (double)KV * hd * 2 + H);
    return cost((double)B * H * per_head, bytes, 1);
}

/* Per query row: D = rowsum(dO o) and the scaled q (3 hdp); per computed tile the scores and
 * dP (4 hdp BK) and p, dS (6 BK); the row's P and dS written whole (2 T floats). */
struct uf_perf_cost uf_perf_attn_bwd_pds(int nb, int nh, int T, int hd) {
    int hdp = padded_hd(hd), BK = tile_rows(hdp);
    double per_head = 3.0 * hdp * T + tiles_sum(T, BK) * (4.0 * hdp * BK + 6.0 * BK);
    double bytes_head = 4.0 * T * (3.0 * hd + 1 + 2.0 * T) + 4.0 * 2 * T * hd; /* + K, V */
    return cost((double)nb * nh * per_head, (double)nb * nh * bytes_head, 1);
}

/* dq kernel per query row: as the P/dS kernel, plus the dq update per visible key (2 hdp);
 * dk/dv kernel per key row and head of its group: the same tiles seen from the keys (4 hdp BK
 * + 6 BK) and the dk, dv updates per visible query (4 hdp). Reads q, k, v, o, dO, lse;
 * accumulates dq, dk, dv. */
struct uf_perf_cost uf_perf_attn_bwd_tiles(int B, int T, int H, int KV, int hd) {
    int hdp = padded_hd(hd), BK = tile_rows(hdp);
    double vis = (double)T * (T + 1) / 2, tiles = tiles_sum(T, BK);
    double dq = 3.0 * hdp * T + tiles * (4.0 * hdp * BK + 6.0 * BK) + 2.0 * hdp * vis;
    double dkdv = tiles * (4.0 * hdp * BK + 6.0 * BK) + 4.0 * hdp * vis;
    double q_bytes = 4.0 * (double)B * T * H * hd, kv_bytes = 4.0 * (double)B * T * KV * hd;
    double bytes = 5 * q_bytes /* q, o, dO, dq r+w */ + 6 * kv_bytes /* k, v, dk r+w, dv r+w */ +
                   4.0 * (double)B * H * T;
    return cost((double)B * H * (dq + dkdv), bytes, 2);
}

/* GPU variant (attention_gpu.cl, uf_attn_gpu_tiles), every sequence of length T. Forward per
 * (sequence, head): q scale and normalise (2 D per row); per query block of nq rows and key tile
 * of nk keys up to the block's diagonal: scores 2 D nq nk, softmax 4 nq nk, P V 2 D nq nk,
 * rescale D nq. Bytes as attention.cl's forward. */
struct uf_perf_cost uf_perf_attn_fwd_gpu(int B, int T, int H, int KV, int hd) {
    struct uf_attn_gpu_tiles t = uf_attn_gpu_tiles(hd);
    double D = t.D, per_head = 2.0 * D * T;
    for (int i0 = 0; i0 < T; i0 += t.fwd_bq) {
        int nq = UF_MIN(t.fwd_bq, T - i0), jhi = UF_MIN(T, i0 + t.fwd_bq);
        for (int j0 = 0; j0 < jhi; j0 += t.fwd_bk)
            per_head += (4.0 * D + 4.0) * nq * UF_MIN(t.fwd_bk, jhi - j0) + D * nq;
    }
    double bytes = 4.0 * (double)B * T * ((double)H * hd * 2 + (double)KV * hd * 2 + H);
    return cost((double)B * H * per_head, bytes, 1);
}

/* dq kernel per (sequence, head): Delta and the scaled q (3 D per row); per query block and key
 * tile up to its diagonal: S and dP 4 D nq nk, p and dS 6 nq nk, dq += dS K 2 D nq nk. dk/dv
 * kernel per key block and query tile from the block's first key on, for every head: S and dP
 * 4 D nk nq, p and dS 6, dk and dv 4 D. Reads q, o, dO, k, v, lse; accumulates dq, dk, dv;
 * writes and reads Delta (B H T floats). */
struct uf_perf_cost uf_perf_attn_bwd_gpu(int B, int T, int H, int KV, int hd) {
    struct uf_attn_gpu_tiles t = uf_attn_gpu_tiles(hd);
    double D = t.D, dq = 3.0 * D * T, dkdv = 0;
    for (int i0 = 0; i0 < T; i0 += t.bwd_rows) {
        int nq = UF_MIN(t.bwd_rows, T - i0), jhi = UF_MIN(T, i0 + t.bwd_rows);
        for (int j0 = 0; j0 < jhi; j0 += t.bwd_cols)
            dq += (6.0 * D + 6.0) * nq * UF_MIN(t.bwd_cols, jhi - j0);
    }
    for (int j0 = 0; j0 < T; j0 += t.bwd_rows) {
        int nk = UF_MIN(t.bwd_rows, T - j0);
        for (int i0 = j0; i0 < T; i0 += t.bwd_cols)
            dkdv += (8.0 * D + 6.0) * nk * UF_MIN(t.bwd_cols, T - i0);
    }
    double q_bytes = 4.0 * (double)B * T * H * hd, kv_bytes = 4.0 * (double)B * T * KV * hd;
    double bytes = 5 * q_bytes + 6 * kv_bytes + 3 * 4.0 * (double)B * H * T; /* + lse, Delta w+r */
    return cost((double)B * H * (dq + dkdv), bytes, 2);
}

/* ---- row and elementwise kernels ------------------------------------------------------------ */
/* sum x^2 (2 per element), y = x r w (2); reads x, w, writes y, rstd */
struct uf_perf_cost uf_perf_rmsnorm_fwd(int64_t N, int64_t D) {
    return cost(4.0 * (double)(N * D), 4.0 * (double)(2 * N * D + D + N), 1);
}

/* dx: sum dy w x (3), dx += r w dy - c x (5); reads x, dy, dx, rstd, w, writes dx.
 * dw (when trained): partial sums over chunks of 32 rows (3 per element), then the chunks in
 * order (1 per partial, dw read and written). */
struct uf_perf_cost uf_perf_rmsnorm_bwd(int64_t N, int64_t D, int dw) {
    double flops = 8.0 * (double)(N * D), bytes = 4.0 * (double)(4 * N * D + N + D), launches = 1;
    if (dw) {
        int64_t C = (N + 31) / 32;
        flops += 3.0 * (double)(N * D) + (double)(C * D);
        bytes += 4.0 * (double)(2 * N * D + N + C * D) + 4.0 * (double)(C * D + 2 * D);
        launches += 2;
    }
    return cost(flops, bytes, launches);
}

/* per pair of elements 4 multiplies and 2 adds (the backward accumulates: +2, and reads dx);
 * one sincos (2) per (position, frequency) */
struct uf_perf_cost uf_perf_rope(int64_t N, int nh, int hd, int backward) {
    double n = (double)N * nh * hd;
    double flops = (backward ? 4.0 : 3.0) * n + 2.0 * (double)N * (hd / 2);
    return cost(flops, (backward ? 12.0 : 8.0) * n, 1);
}

/* SiLU: g / (1 + exp(-g)) * u, 5 per element; tanh-GELU 11. Reads g, u, writes h. */
struct uf_perf_cost uf_perf_act_fwd(int64_t n, int gelu) {
    return cost((gelu ? 11.0 : 5.0) * (double)n, 12.0 * (double)n, 1);
}

/* act and act' (SiLU 9, GELU 20) and the two accumulations (5). Reads g, u, dh, dg, du; writes
 * dg, du. */
struct uf_perf_cost uf_perf_act_bwd(int64_t n, int gelu) {
    return cost((gelu ? 25.0 : 14.0) * (double)n, 28.0 * (double)n, 1);
}

/* one multiply per kept element (the hash is integer work); forward reads x, writes y; the
 * backward accumulates into dx */
struct uf_perf_cost uf_perf_dropout(int64_t n, int backward) {
    return cost((backward ? 2.0 : 1.0) * (double)n, (backward ? 12.0 : 8.0) * (double)n, 1);
}

/* out = scale * table[token]: one multiply; reads tokens and N rows of the table */
struct uf_perf_cost uf_perf_embed_fwd(int64_t N, int64_t D, int table_bytes) {
    return cost((double)(N * D), 4.0 * (double)N + (4.0 + table_bytes) * (double)(N * D), 1);
}

/* links (token comparisons, no FLOPs; tokens read, links written), then per row: dout summed
 * over the rows with its token and added to the table (upper bound: all tokens distinct, each
 * table row read and written) */
struct uf_perf_cost uf_perf_embed_bwd(int64_t N, int64_t D) {
    return cost(2.0 * (double)(N * D), 4.0 * (double)(N + 2 * N) + 12.0 * (double)(N * D) + 8.0 * (double)N, 2);
}

/* max (1), subtract + exp + sum (3); with the gradient subtract + exp + scale (3). Reads the
 * logits once (a row is re-read from cache), writes dlogits; targets, mask, loss per row. */
struct uf_perf_cost uf_perf_cross_entropy(int64_t N, int64_t V, int grad) {
    double n = (double)(N * V);
    return cost((grad ? 7.0 : 4.0) * n, (grad ? 8.0 : 4.0) * n + 12.0 * (double)N, 1);
}

/* partial sums (1 or 2 per element), then one small final launch */
struct uf_perf_cost uf_perf_reduce(int64_t n, int square) {
    return cost((square ? 2.0 : 1.0) * (double)n, 4.0 * (double)n, 2);
}

/* clip and scale (2), m (3), v (4), the update (9); reads p, g, m, v, writes p, m, v */
struct uf_perf_cost uf_perf_adamw(int64_t n) { return cost(18.0 * (double)n, 28.0 * (double)n, 1); }
struct uf_perf_cost uf_perf_fill(int64_t n) { return cost(0, 4.0 * (double)n, 1); }
struct uf_perf_cost uf_perf_axpby(int64_t n) { return cost(3.0 * (double)n, 12.0 * (double)n, 1); }
struct uf_perf_cost uf_perf_copy(int64_t n) { return cost(0, 8.0 * (double)n, 1); }
struct uf_perf_cost uf_perf_convert(int64_t n) { return cost(0, 6.0 * (double)n, 1); }

/* ---- the step --------------------------------------------------------------------------------- */
void uf_perf_setup_defaults(struct uf_perf_setup *s, const struct uf_model_config *c, int B, int T) {
    memset(s, 0, sizeof *s);
    s->cfg = *c;
    s->B = B, s->T = T;
    s->weight_decay = 0.01f;
    for (int l = 0; l < 4; l++) s->own_gemm[l] = 1;
}

static void add(struct uf_perf_step *st, enum uf_perf_family f, struct uf_perf_cost c) {
    if (c.launches == 0) return;
    if (st->n == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 1024;
        st->ops = uf_realloc(st->ops, (size_t)st->cap * sizeof *st->ops);
    }
    st->ops[st->n++] = (struct uf_perf_op){f, c};
}

struct walk {
    const struct uf_perf_setup *s;
    struct uf_perf_step *st;
    int64_t N, D, F, V, QD, KD, r;
    int H, KV, hd, gelu, lora, drop, bf16, has_grads;
};

/* uf_gemm / uf_gemm_batched (f32 B) and uf_gemm_bf16 (bf16 B; CLBlast: B widened in row
 * chunks of the scratch limit, one CLBlast call each, as bf16_widen_run) */
static void gemm(struct walk *w, int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t batch,
                 int bf16, int beta) {
    const struct uf_perf_setup *s = w->s;
    if (m == 0 || n == 0 || batch == 0) return;
    w->st->gemm_flops += 2.0 * (double)m * (double)n * (double)k * (double)batch;
    int own = s->own_gemm[ta + 2 * tb];
    if (!bf16 || own || k == 0) {
        add(w->st, UF_PF_GEMM, uf_perf_gemm(own, ta, tb, m, n, k, batch, bf16 ? 2 : 4, beta, s->scratch_limit));
        return;
    }
    int64_t rows = tb ? n : k, cols = tb ? k : n; /* weights are contiguous: ld = cols */
    int64_t lim = s->scratch_limit > 0 ? s->scratch_limit : (int64_t)UF_GEMM_SCRATCH_DEFAULT;
    int64_t chunk = UF_MIN(UF_MAX((int64_t)1, lim / 4 / UF_MAX(cols, (int64_t)1)), rows);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
        int64_t nr = UF_MIN(chunk, rows - r0);
        add(w->st, UF_PF_TENSOR, uf_perf_convert(nr * cols));
        add(w->st, UF_PF_GEMM, tb ? uf_perf_gemm(0, ta, tb, m, nr, k, 1, 4, beta, 0)
                                  : uf_perf_gemm(0, ta, tb, m, n, nr, 1, 4, r0 ? 1 : beta, 0));
    }
}

static void linear_dims(const struct walk *w, enum uf_param_kind kind, int64_t *in, int64_t *out) {
    switch (kind) {
    case UF_P_Q: *in = w->D, *out = w->QD; break;
    case UF_P_K: case UF_P_V: *in = w->D, *out = w->KD; break;
    case UF_P_O: *in = w->QD, *out = w->D; break;
    case UF_P_GATE: case UF_P_UP: *in = w->D, *out = w->F; break;
    default: *in = w->F, *out = w->D; break; /* down */
    }
}

static int lora_on(const struct walk *w, enum uf_param_kind kind) {
    unsigned t = w->s->lora_targets ? w->s->lora_targets : UF_LORA_ALL;
    return w->lora && (t & UF_LORA_TARGET(kind));
}

/* model.c linear_forward: y = x W^T (+ s dropout(x) A^T B^T) */
static void linear_forward(struct walk *w, enum uf_param_kind kind, int beta) {
    int64_t in, out, N = w->N;
    linear_dims(w, kind, &in, &out);
    gemm(w, 0, 1, N, out, in, 1, w->bf16, beta);
    if (!lora_on(w, kind)) return;
    if (w->drop) add(w->st, UF_PF_DROPOUT, uf_perf_dropout(N * in, 0));
    gemm(w, 0, 1, N, w->r, in, 1, 0, 0);
    gemm(w, 0, 1, N, out, w->r, 1, 0, 1);
}

/* model.c linear_backward with dx: dx = dy W (+ beta dx), dW += dy^T x when trained, LoRA dB,
 * dt, dA and the adapter's share of dx */
static void linear_backward(struct walk *w, enum uf_param_kind kind, int dx_beta) {
    int64_t in, out, N = w->N, r = w->r;
    linear_dims(w, kind, &in, &out);
    gemm(w, 0, 0, N, in, out, 1, w->bf16, dx_beta);
    if (w->has_grads) gemm(w, 1, 0, out, in, N, 1, 0, 1);
    if (!lora_on(w, kind)) return;
    gemm(w, 1, 0, out, r, N, 1, 0, 1); /* dB += s dy^T t */
    gemm(w, 0, 0, N, r, out, 1, 0, 0); /* dt = s dy B */
    if (w->drop) add(w->st, UF_PF_DROPOUT, uf_perf_dropout(N * in, 0));
    gemm(w, 1, 0, r, in, N, 1, 0, 1);  /* dA += dt^T src */
    if (w->drop) {
        gemm(w, 0, 0, N, in, r, 1, 0, 0);
        add(w->st, UF_PF_DROPOUT, uf_perf_dropout(N * in, 1));
    } else {
        gemm(w, 0, 0, N, in, r, 1, 0, 1);
    }
}

static void layer_forward(struct walk *w) {
    struct uf_perf_step *st = w->st;
    int64_t N = w->N;
    int T = w->s->T;
    add(st, UF_PF_NORM_FWD, uf_perf_rmsnorm_fwd(N, w->D));
    linear_forward(w, UF_P_Q, 0);
    add(st, UF_PF_ROPE, uf_perf_rope(N, w->H, w->hd, 0));
    linear_forward(w, UF_P_K, 0);
    add(st, UF_PF_ROPE, uf_perf_rope(N, w->KV, w->hd, 0));
    linear_forward(w, UF_P_V, 0);
    add(st, UF_PF_ATTN_FWD, (w->s->gpu_kernels ? uf_perf_attn_fwd_gpu : uf_perf_attn_fwd)(
                                w->s->B, T, w->H, w->KV, w->hd));
    add(st, UF_PF_TENSOR, uf_perf_copy(N * w->D));
    linear_forward(w, UF_P_O, 1);
    add(st, UF_PF_NORM_FWD, uf_perf_rmsnorm_fwd(N, w->D));
    linear_forward(w, UF_P_GATE, 0);
    linear_forward(w, UF_P_UP, 0);
    add(st, UF_PF_ACT_FWD, uf_perf_act_fwd(N * w->F, w->gelu));
    add(st, UF_PF_TENSOR, uf_perf_copy(N * w->D));
    linear_forward(w, UF_P_DOWN, 1);
}

/* attention.c: on the CPU path the GEMM form when a (T, T) pair of P and dS fits 64 MiB, else
 * the tile kernels; on the GPU path the GPU variant's tile kernels */
#define ATTN_GEMM_BUDGET ((int64_t)64 << 20)

static void attention_backward(struct walk *w) {
    int B = w->s->B, T = w->s->T, H = w->H, KV = w->KV, hd = w->hd;
    int64_t TT = (int64_t)T * T, budget = ATTN_GEMM_BUDGET / 8;
    if (w->s->gpu_kernels) {
        add(w->st, UF_PF_ATTN_BWD, uf_perf_attn_bwd_gpu(B, T, H, KV, hd));
        return;
    }
    if (w->s->attn_bwd_tiles || TT * 8 > ATTN_GEMM_BUDGET) {
        add(w->st, UF_PF_ATTN_BWD, uf_perf_attn_bwd_tiles(B, T, H, KV, hd));
        return;
    }
    int hc, bc;
    if ((int64_t)H * TT <= budget) {
        hc = H;
        bc = (int)UF_MIN((int64_t)B, budget / ((int64_t)H * TT));
    } else {
        hc = (int)UF_MAX((int64_t)1, budget / TT);
        bc = 1;
    }
    int64_t rb = T >= 256 ? 128 : T;
    for (int b0 = 0; b0 < B; b0 += bc) {
        int nb = UF_MIN(bc, B - b0);
        for (int h0 = 0; h0 < H; h0 += hc) {
            int nh = UF_MIN(hc, H - h0);
            add(w->st, UF_PF_ATTN_BWD, uf_perf_attn_bwd_pds(nb, nh, T, hd));
            for (int hh = 0; hh < nh; hh++)
                for (int64_t r0 = 0; r0 < T; r0 += rb) {
                    int64_t r1 = UF_MIN((int64_t)T, r0 + rb), mr = r1 - r0;
                    gemm(w, 0, 0, mr, hd, r1, nb, 0, 1);     /* dq += dS K */
                    gemm(w, 1, 0, mr, hd, T - r0, nb, 0, 1); /* dk += dS^T Q */
                    gemm(w, 1, 0, mr, hd, T - r0, nb, 0, 1); /* dv += P^T dO */
                }
        }
    }
}

static int decays(enum uf_param_kind k) { /* optim.c */
    return k == UF_P_Q || k == UF_P_K || k == UF_P_V || k == UF_P_O || k == UF_P_GATE ||
           k == UF_P_UP || k == UF_P_DOWN || k == UF_P_LM_HEAD;
}

/* optim.c: one gradient-norm reduction over the contiguous trainable vector, then AdamW per
 * segment of equal weight decay */
static void optim_step(struct walk *w) {
    const struct uf_perf_setup *s = w->s;
    if (w->lora) {
        int64_t n = uf_lora_numel(&s->cfg, s->lora_rank, s->lora_targets ? s->lora_targets : UF_LORA_ALL);
        add(w->st, UF_PF_REDUCE, uf_perf_reduce(n, 1));
        add(w->st, UF_PF_ADAMW, uf_perf_adamw(n));
        return;
    }
    int np = uf_model_param_descs(&s->cfg, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)np, sizeof *d);
    uf_model_param_descs(&s->cfg, d);
    add(w->st, UF_PF_REDUCE, uf_perf_reduce(d[np - 1].offset + d[np - 1].numel, 1));
    int64_t seg = 0;
    float seg_wd = -1;
    for (int i = 0; i < np; i++) {
        float wd = decays(d[i].kind) ? s->weight_decay : 0.0f;
        if (seg > 0 && wd != seg_wd) {
            add(w->st, UF_PF_ADAMW, uf_perf_adamw(seg));
            seg = 0;
        }
        seg += d[i].numel, seg_wd = wd;
    }
    add(w->st, UF_PF_ADAMW, uf_perf_adamw(seg));
    free(d);
}

int uf_perf_step_build(const struct uf_perf_setup *s, struct uf_perf_step *st) {
    memset(st, 0, sizeof *st);
    const struct uf_model_config *c = &s->cfg;
    if (uf_model_config_validate(c)) return -1;
    if (s->B < 1 || s->T < 1) return uf_fail("performance model: batch %d x seq %d", s->B, s->T);
    if (s->bf16_base && s->lora_rank <= 0)
        return uf_fail("performance model: a bf16 base trains only LoRA adapters (rank > 0)");
    struct walk w = {.s = s, .st = st};
    w.N = (int64_t)s->B * s->T, w.D = c->d_model, w.F = c->d_ff, w.V = c->vocab;
    w.H = c->n_heads, w.KV = c->n_kv_heads, w.hd = c->head_dim;
    w.QD = (int64_t)w.H * w.hd, w.KD = (int64_t)w.KV * w.hd;
    w.gelu = c->act == UF_ACT_GELU_TANH;
    w.lora = s->lora_rank > 0, w.r = s->lora_rank;
    w.drop = w.lora && s->lora_dropout > 0;
    w.bf16 = s->bf16_base;
    w.has_grads = !w.lora; /* LoRA freezes the base */
    int64_t N = w.N, D = w.D, V = w.V;
    int L = c->n_layers;

    /* uf_model_zero_grad */
    add(st, UF_PF_TENSOR, uf_perf_fill(w.lora ? uf_lora_numel(c, s->lora_rank, s->lora_targets ? s->lora_targets : UF_LORA_ALL)
                                              : uf_model_param_numel(c)));
    /* forward */
    add(st, UF_PF_EMBED_FWD, uf_perf_embed_fwd(N, D, w.bf16 ? 2 : 4));
    for (int l = 0; l < L; l++) layer_forward(&w);
    add(st, UF_PF_NORM_FWD, uf_perf_rmsnorm_fwd(N, D));
    gemm(&w, 0, 1, N, V, D, 1, w.bf16, 0);
    add(st, UF_PF_LOSS, uf_perf_cross_entropy(N, V, 1));
    add(st, UF_PF_REDUCE, uf_perf_reduce(N, 0));
    add(st, UF_PF_TENSOR, uf_perf_axpby(1));
    /* backward */
    gemm(&w, 0, 0, N, D, V, 1, w.bf16, 0);
    if (w.has_grads) gemm(&w, 1, 0, V, D, N, 1, 0, 1);
    add(st, UF_PF_TENSOR, uf_perf_fill(N * D));
    add(st, UF_PF_NORM_BWD, uf_perf_rmsnorm_bwd(N, D, w.has_grads));
    for (int l = L - 1; l >= 0; l--) {
        if (s->checkpointing) layer_forward(&w);
        linear_backward(&w, UF_P_DOWN, 0);
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.F));
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.F));
        add(st, UF_PF_ACT_BWD, uf_perf_act_bwd(N * w.F, w.gelu));
        linear_backward(&w, UF_P_GATE, 0);
        linear_backward(&w, UF_P_UP, 1);
        add(st, UF_PF_NORM_BWD, uf_perf_rmsnorm_bwd(N, D, w.has_grads));
        linear_backward(&w, UF_P_O, 0);
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.QD));
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.KD));
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.KD));
        attention_backward(&w);
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.QD));
        add(st, UF_PF_TENSOR, uf_perf_fill(N * w.KD));
        add(st, UF_PF_ROPE, uf_perf_rope(N, w.H, w.hd, 1));
        add(st, UF_PF_ROPE, uf_perf_rope(N, w.KV, w.hd, 1));
        linear_backward(&w, UF_P_Q, 0);
        linear_backward(&w, UF_P_K, 1);
        linear_backward(&w, UF_P_V, 1);
        add(st, UF_PF_NORM_BWD, uf_perf_rmsnorm_bwd(N, D, w.has_grads));
    }
    if (w.has_grads) add(st, UF_PF_EMBED_BWD, uf_perf_embed_bwd(N, D));
    optim_step(&w);
    return 0;
}

void uf_perf_step_free(struct uf_perf_step *st) {
    free(st->ops);
    memset(st, 0, sizeof *st);
}

double uf_perf_model_flops(const struct uf_perf_setup *s) {
    const struct uf_model_config *c = &s->cfg;
    double tokens = (double)s->B * s->T;
    if (s->lora_rank <= 0) return uf_model_flops_per_token(c, s->T) * tokens;
    double D = c->d_model, F = c->d_ff, V = c->vocab;
    double QD = (double)c->n_heads * c->head_dim, KD = (double)c->n_kv_heads * c->head_dim;
    double Nmm = c->n_layers * (D * QD + 2 * D * KD + QD * D + 3 * D * F) + V * D;
    double Nl = (double)uf_lora_numel(c, s->lora_rank, s->lora_targets ? s->lora_targets : UF_LORA_ALL);
    return (4.0 * Nmm + 6.0 * Nl + 6.0 * c->n_layers * QD * s->T) * tokens;
}

/* ---- roofline --------------------------------------------------------------------------------- */
void uf_perf_predict(const struct uf_perf_step *st, const struct uf_perf_peaks *p,
                     struct uf_perf_pred *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < st->n; i++) {
        const struct uf_perf_op *op = &st->ops[i];
        double peak = op->family == UF_PF_GEMM ? p->gemm : p->vector;
        double tc = op->cost.flops / peak, tm = op->cost.bytes / p->bw, t = fmax(tc, tm);
        struct uf_perf_row *rows[2] = {&out->fam[op->family], &out->total};
        for (int r = 0; r < 2; r++) {
            rows[r]->flops += op->cost.flops;
            rows[r]->bytes += op->cost.bytes;
            rows[r]->launches += op->cost.launches;
            rows[r]->time += t;
            if (tm > tc) rows[r]->time_mem += t;
        }
    }
}

/* ---- GPU peaks ---------------------------------------------------------------------------------
 * Vendor figures (README, Performance: the table with its sources): fp32 = the non-matrix FMA
 * rate (AMD's "FP32 vector", NVIDIA's "FP32", Intel's vector engines), matrix = dense fp16/bf16
 * on the matrix units without structured sparsity. */
const struct uf_perf_device uf_perf_devices[] = {
    {"AMD Instinct MI250X", "mi250x", 47.9, 383.0, 3276.8, "128 GB HBM2e"},
    {"AMD Instinct MI300X", "mi300x", 163.4, 1307.4, 5300.0, "192 GB HBM3"},
    {"AMD Radeon RX 7900 XTX", "7900 xtx", 61.4, 122.8, 960.0, "24 GB GDDR6"},
    {"NVIDIA A100 SXM 80GB", "a100", 19.5, 312.0, 2039.0, "80 GB HBM2e"},
    {"NVIDIA H200 SXM", "h200", 66.9, 989.5, 4800.0, "141 GB HBM3e"},
    {"Intel Data Center GPU Max 1550", "max 1550", 52.4, 838.9, 3276.8, "128 GB HBM2e"},
};
const int uf_perf_n_devices = (int)UF_ARRAY_LEN(uf_perf_devices);

static int contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    if (n == 0) return 0;
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0) return 1;
    return 0;
}

const struct uf_perf_device *uf_perf_device_find(const char *name) {
    for (int i = 0; i < uf_perf_n_devices; i++)
        if (contains(name, uf_perf_devices[i].key) || contains(uf_perf_devices[i].name, name))
            return &uf_perf_devices[i];
    return NULL;
}
