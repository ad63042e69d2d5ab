/* generate.c: KV-cache inference, generation and scoring on the device (see generate.h).
 * Kernels: opencl/decode.cl; matmuls: uf_gemm. */
#include "model/generate.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "model/model.h"
#include "ops/ops.h"
#include "ref/ref_ops.h"
#include "core/util.h"

#define DEC_WG 64        /* = DEC_WG of decode.cl */
#define DEC_GEMV_ROWS 8  /* = DEC_GEMV_ROWS of decode.cl */

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static void t2(struct uf_tensor *t, struct uf_device *d, const char *name, enum uf_dtype dt,
               int64_t a, int64_t b) {
    uf_tensor_init(t, d, name, dt, 2, (int64_t[]){a, b});
}

int uf_gen_init(struct uf_gen *g, struct uf_device *dev, const struct uf_model_config *cfg,
                const struct uf_tensor *params, int B, int Tc, int max_rows) {
    memset(g, 0, sizeof *g);
    if (uf_model_config_validate(cfg)) return uf_fail_prefix("generate");
    if ((params->dtype != UF_F32 && params->dtype != UF_BF16) ||
        params->numel != uf_model_param_numel(cfg))
        return uf_fail("generate: parameter tensor '%s' has %lld elements, the config needs %lld "
                       "(f32 or bf16)", params->name, (long long)params->numel,
                       (long long)uf_model_param_numel(cfg));
    int n = uf_model_param_descs(cfg, NULL);
    struct uf_param_desc *pd = uf_calloc((size_t)n, sizeof *pd);
    uf_model_param_descs(cfg, pd);
    struct uf_tensor *w = uf_calloc((size_t)n, sizeof *w);
    for (int i = 0; i < n; i++)
        uf_tensor_view(&w[i], params, pd[i].name, (size_t)pd[i].offset, 1, (int64_t[]){pd[i].numel});
    int rc = uf_gen_init_views(g, dev, cfg, w, B, Tc, max_rows);
    free(w), free(pd);
    return rc;
}

int uf_gen_init_views(struct uf_gen *g, struct uf_device *dev, const struct uf_model_config *cfg,
                      const struct uf_tensor *w, int B, int Tc, int max_rows) {
    memset(g, 0, sizeof *g);
    if (uf_model_config_validate(cfg)) return uf_fail_prefix("generate");
    if (B <= 0 || Tc <= 0 || max_rows <= 0)
        return uf_fail("generate: batch (%d), cache length (%d) and rows per call (%d) must be "
                       "positive", B, Tc, max_rows);
    if (cfg->head_dim > 4 * DEC_WG)
        return uf_fail("generate: head_dim %d is larger than the decode kernel supports (%d)",
                       cfg->head_dim, 4 * DEC_WG);
    int n = uf_model_param_descs(cfg, NULL);
    struct uf_param_desc *pd = uf_calloc((size_t)n, sizeof *pd);
    uf_model_param_descs(cfg, pd);
    for (int i = 0; i < n; i++)
        if ((w[i].dtype != UF_F32 && w[i].dtype != UF_BF16) || w[i].dtype != w[0].dtype ||
            w[i].numel != pd[i].numel) {
            int rc = uf_fail("generate: parameter '%s' is %s with %lld elements; the config needs "
                             "%lld (%s, like the first)", pd[i].name, uf_dtype_name(w[i].dtype),
                             (long long)w[i].numel, (long long)pd[i].numel,
                             uf_dtype_name(w[0].dtype));
            free(pd);
            return rc;
        }
    g->dev = dev;
    g->cfg = *cfg;
    g->B = B;
    g->Tc = Tc;
    g->max_rows = max_rows;
    g->n_params = n;
    g->wdtype = w[0].dtype;
    g->w = uf_calloc((size_t)n, sizeof *g->w);
    for (int i = 0; i < n; i++) g->w[i] = w[i], g->w[i].owns = 0;
    if (g->wdtype == UF_BF16) {
        g->noff = uf_calloc((size_t)g->n_params, sizeof *g->noff);
        int64_t nn = 0;
        for (int i = 0; i < g->n_params; i++)
            if (pd[i].kind == UF_P_ATTN_NORM || pd[i].kind == UF_P_MLP_NORM ||
                pd[i].kind == UF_P_FINAL_NORM)
                g->noff[i] = nn, nn += pd[i].numel;
        uf_tensor_init(&g->norm32, dev, "gen.norm32", UF_F32, 1, (int64_t[]){nn});
        for (int i = 0; i < g->n_params; i++)
            if (pd[i].kind == UF_P_ATTN_NORM || pd[i].kind == UF_P_MLP_NORM ||
                pd[i].kind == UF_P_FINAL_NORM) {
                struct uf_tensor s16, s32;
                uf_tensor_view(&s16, &g->w[i], "norm", 0, 1, (int64_t[]){pd[i].numel});
                uf_tensor_view(&s32, &g->norm32, "norm", (size_t)g->noff[i], 1, (int64_t[]){pd[i].numel});
                uf_tensor_convert(&s32, &s16);
            }
    }
    free(pd);

    int64_t L = cfg->n_layers, KV = cfg->n_kv_heads, hd = cfg->head_dim, D = cfg->d_model;
    int64_t QD = (int64_t)cfg->n_heads * hd, KD = KV * hd, R = max_rows;
    int64_t cshape[4] = {L * B, KV, Tc, hd};
    uf_tensor_init(&g->kc, dev, "kv_cache.k", UF_F32, 4, cshape);
    uf_tensor_init(&g->vc, dev, "kv_cache.v", UF_F32, 4, cshape);
    uf_tensor_init(&g->inv_freq, dev, "rope.inv_freq", UF_F32, 1, (int64_t[]){hd / 2});
    float *inv = uf_malloc((size_t)(hd / 2) * sizeof *inv);
    uf_ref_rope_inv_freq(cfg, inv);
    uf_tensor_upload(&g->inv_freq, inv);
    free(inv);
    uf_tensor_init(&g->tokens, dev, "gen.tokens", UF_I32, 1, (int64_t[]){R});
    uf_tensor_init(&g->pos, dev, "gen.pos", UF_I32, 1, (int64_t[]){R});
    uf_tensor_init(&g->seq, dev, "gen.seq", UF_I32, 1, (int64_t[]){R});
    uf_tensor_init(&g->rows, dev, "gen.rows", UF_I32, 1, (int64_t[]){R});
    t2(&g->x, dev, "gen.x", UF_F32, R, D);
    t2(&g->a, dev, "gen.a", UF_F32, R, D);
    t2(&g->q, dev, "gen.q", UF_F32, R, QD);
    t2(&g->k, dev, "gen.k", UF_F32, R, KD);
    t2(&g->v, dev, "gen.v", UF_F32, R, KD);
    t2(&g->att, dev, "gen.att", UF_F32, R, QD);
    t2(&g->g, dev, "gen.gate", UF_F32, R, cfg->d_ff);
    t2(&g->u, dev, "gen.up", UF_F32, R, cfg->d_ff);
    t2(&g->hsel, dev, "gen.hsel", UF_F32, R, D);
    uf_tensor_init(&g->rstd, dev, "gen.rstd", UF_F32, 1, (int64_t[]){R});
    t2(&g->logits, dev, "gen.logits", UF_F32, R, cfg->vocab);
    return 0;
}

int uf_gen_init_model(struct uf_gen *g, struct uf_model *m, int B, int Tc, int max_rows) {
    if (uf_gen_init_views(g, m->dev, &m->cfg, m->sv, B, Tc, max_rows)) return -1;
    if (m->lora.rank > 0 && !m->lora_merged) {
        if (uf_model_lora_merge(m)) {
            uf_gen_free(g);
            return uf_fail_prefix("generate");
        }
        g->unmerge = m;
    }
    return 0;
}

void uf_gen_free(struct uf_gen *g) {
    if (g->unmerge && uf_model_lora_unmerge(g->unmerge))
        uf_log(1, "generate: %s\n", uf_error()); /* cannot happen: merged by uf_gen_init_model */
    struct uf_tensor *ts[] = {&g->kc, &g->vc, &g->inv_freq, &g->tokens, &g->pos, &g->seq,
                              &g->rows, &g->x, &g->a, &g->q, &g->k, &g->v, &g->att, &g->g,
                              &g->u, &g->hsel, &g->logits, &g->rstd};
    if (!g->dev) return;
    for (size_t i = 0; i < UF_ARRAY_LEN(ts); i++) uf_tensor_free(ts[i]);
    if (g->norm32.buf) uf_tensor_free(&g->norm32);
    free(g->w);
    free(g->noff);
    memset(g, 0, sizeof *g);
}

/* ---- kernel launchers ------------------------------------------------------------------- */
/* Kernel arguments (core/device.h): decode.cl's buffers start at offset 0 (the work buffers are
 * owned), so a buffer is one argument (M_); ints are I_. */
#define M_ UF_ARG_MEM
#define I_ UF_ARG_I32

/* 1-D global size for n work-items (at least one group of 64) */
static size_t global1(size_t n) { return round_up(n ? n : 1, 64); }

/* parameter i of layer l: index in the desc table */
static int pidx(const struct uf_gen *g, enum uf_param_kind kind, int layer) {
    if (kind == UF_P_EMBED) return 0;
    if (kind == UF_P_FINAL_NORM) return 1 + 9 * g->cfg.n_layers;
    if (kind == UF_P_LM_HEAD) return g->cfg.tied_embeddings ? 0 : 2 + 9 * g->cfg.n_layers;
    return 1 + 9 * layer + (kind - UF_P_ATTN_NORM);
}
/* the parameter tensor (kind, layer) */
static const struct uf_tensor *wt(const struct uf_gen *g, enum uf_param_kind kind, int layer) {
    return &g->w[pidx(g, kind, layer)];
}

/* y (N, out) = x (N, in) W^T, W = parameter (kind, layer). Decode steps (N <= 8 rows) use the
 * weight-streaming dec_linear_small; larger N (prefill, scoring) the GEMM. */
static void linear(struct uf_gen *g, int N, const struct uf_tensor *x, enum uf_param_kind kind,
                   int layer, int in, int out, struct uf_tensor *y) {
    const struct uf_tensor *W = wt(g, kind, layer);
    if (g->wdtype == UF_BF16) { /* own kernels, W widened as read (m <= 128: in place) */
        uf_gemm_bf16(g->dev, false, true, (size_t)N, (size_t)out, (size_t)in, 1.0f, x->buf,
                     x->offset, (size_t)in, W->buf, W->offset, (size_t)in, 0.0f, y->buf, y->offset,
                     (size_t)out);
        return;
    }
    if (N <= DEC_GEMV_ROWS && x->offset == 0 && y->offset == 0) {
        cl_kernel k = uf_device_kernel(g->dev, "decode.cl", "dec_linear_small");
        size_t gl = (size_t)out * DEC_WG, lo = DEC_WG;
        UF_LAUNCH(g->dev, k, 1, &gl, &lo, M_(y->buf), M_(x->buf), M_(W->buf),
                  UF_ARG_U64(W->offset), I_(N), I_(in), I_(out));
        return;
    }
    uf_gemm(g->dev, false, true, (size_t)N, (size_t)out, (size_t)in, 1.0f, x->buf, x->offset,
            (size_t)in, W->buf, W->offset, (size_t)in, 0.0f, y->buf, y->offset, (size_t)out);
}

/* view of N rows of a (R, cols) work buffer */
static struct uf_tensor rows_view(const struct uf_tensor *t, int N) {
    struct uf_tensor v;
    uf_tensor_view(&v, t, t->name, 0, 2, (int64_t[]){N, t->shape[1]});
    return v;
}

/* view of parameter (kind, layer) as a flat vector */
static struct uf_tensor param_view(const struct uf_gen *g, enum uf_param_kind kind, int layer,
                                   int64_t numel) {
    struct uf_tensor v;
    uf_tensor_view(&v, wt(g, kind, layer), "param", 0, 1, (int64_t[]){numel});
    return v;
}

/* y = rmsnorm(x) over N rows with the norm weight (kind, layer) (ops.h) */
static void rmsnorm(struct uf_gen *g, int N, struct uf_tensor *y, const struct uf_tensor *x,
                    enum uf_param_kind kind, int layer) {
    struct uf_tensor xv = rows_view(x, N), yv = rows_view(y, N), rv, w;
    uf_tensor_view(&rv, &g->rstd, "rstd", 0, 1, (int64_t[]){N});
    if (g->norm32.buf) /* bf16 params: the widened copy */
        uf_tensor_view(&w, &g->norm32, "norm", (size_t)g->noff[pidx(g, kind, layer)], 1,
                       (int64_t[]){g->cfg.d_model});
    else w = param_view(g, kind, layer, g->cfg.d_model);
    uf_op_rmsnorm_forward(g->dev, &xv, &w, g->cfg.norm_eps, g->cfg.norm_plus_one, &yv, &rv);
}

static void rope(struct uf_gen *g, int N, struct uf_tensor *x, int nh) {
    cl_kernel k = uf_device_kernel(g->dev, "decode.cl", "dec_rope");
    int hd = g->cfg.head_dim;
    size_t gl = global1((size_t)N * nh * (hd / 2));
    UF_LAUNCH(g->dev, k, 1, &gl, NULL, M_(x->buf), M_(g->pos.buf), I_(N), I_(nh), I_(hd),
              M_(g->inv_freq.buf));
}

int uf_gen_forward(struct uf_gen *g, int N, const int32_t *tokens, const int32_t *pos,
                   const int32_t *seq, int n_out, const int32_t *out_rows, float *logits) {
    const struct uf_model_config *c = &g->cfg;
    if (N <= 0 || N > g->max_rows || n_out < 0 || n_out > N)
        return uf_fail("generate: %d rows (%d outputs) in one forward; 1..%d allowed", N, n_out,
                       g->max_rows);
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= c->vocab)
            return uf_fail("generate: token id %d (row %d) outside the vocabulary [0, %d)",
                           tokens[n], n, c->vocab);
        if (seq[n] < 0 || seq[n] >= g->B || pos[n] < 0 || pos[n] >= g->Tc)
            return uf_fail("generate: row %d has sequence %d position %d; the cache holds %d "
                           "sequences of %d positions", n, seq[n], pos[n], g->B, g->Tc);
    }
    for (int r = 0; r < n_out; r++)
        if (out_rows[r] < 0 || out_rows[r] >= N)
            return uf_fail("generate: output row %d outside 0..%d", out_rows[r], N - 1);
    struct uf_device *d = g->dev;
    int D = c->d_model, H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim, F = c->d_ff;
    int QD = H * hd, KD = KV * hd, Tc = g->Tc, B = g->B, win = c->sliding_window;
    struct uf_tensor tv;
    uf_tensor_view(&tv, &g->tokens, "tokens", 0, 1, (int64_t[]){N});
    uf_tensor_upload(&tv, tokens);
    uf_tensor_view(&tv, &g->pos, "pos", 0, 1, (int64_t[]){N});
    uf_tensor_upload(&tv, pos);
    uf_tensor_view(&tv, &g->seq, "seq", 0, 1, (int64_t[]){N});
    uf_tensor_upload(&tv, seq);

    /* x = scale * embed[tokens] (Gemma: scale = sqrt(D) rounded to f32) */
    {
        struct uf_tensor table, xv = rows_view(&g->x, N);
        uf_tensor_view(&table, wt(g, UF_P_EMBED, -1), "embed", 0, 2,
                       (int64_t[]){c->vocab, D});
        uf_tensor_view(&tv, &g->tokens, "tokens", 0, 1, (int64_t[]){N});
        uf_op_embed_forward(d, &tv, &table, c->embed_scale ? (float)sqrt((double)D) : 1.0f, &xv);
    }
    for (int l = 0; l < c->n_layers; l++) {
        rmsnorm(g, N, &g->a, &g->x, UF_P_ATTN_NORM, l);
        linear(g, N, &g->a, UF_P_Q, l, D, QD, &g->q);
        linear(g, N, &g->a, UF_P_K, l, D, KD, &g->k);
        linear(g, N, &g->a, UF_P_V, l, D, KD, &g->v);
        rope(g, N, &g->q, H);
        rope(g, N, &g->k, KV);
        cl_ulong coff = (cl_ulong)l * B * KV * Tc * hd;
        {
            cl_kernel k = uf_device_kernel(d, "decode.cl", "dec_cache_write");
            size_t gl = global1((size_t)N * KD);
            UF_LAUNCH(d, k, 1, &gl, NULL, M_(g->kc.buf), M_(g->vc.buf), UF_ARG_U64(coff),
                      M_(g->k.buf), M_(g->v.buf), M_(g->pos.buf), M_(g->seq.buf), I_(N), I_(KV),
                      I_(hd), I_(Tc));
        }
        {
            cl_kernel k = uf_device_kernel(d, "decode.cl", "dec_attention");
            float scale = (float)(1.0 / sqrt((double)hd));
            size_t gl = (size_t)N * H * DEC_WG, lo = DEC_WG;
            UF_LAUNCH(d, k, 1, &gl, &lo, M_(g->att.buf), M_(g->q.buf), M_(g->kc.buf),
                      M_(g->vc.buf), UF_ARG_U64(coff), M_(g->pos.buf), M_(g->seq.buf), I_(H),
                      I_(KV), I_(hd), I_(Tc), I_(win), UF_ARG_F32(scale));
        }
        /* x += att Wo^T (into a, then add) */
        linear(g, N, &g->att, UF_P_O, l, QD, D, &g->a);
        struct uf_tensor xv, av;
        uf_tensor_view(&xv, &g->x, "x", 0, 1, (int64_t[]){(int64_t)N * D});
        uf_tensor_view(&av, &g->a, "a", 0, 1, (int64_t[]){(int64_t)N * D});
        uf_tensor_axpby(&xv, 1.0f, &av, 1.0f);
        rmsnorm(g, N, &g->a, &g->x, UF_P_MLP_NORM, l);
        linear(g, N, &g->a, UF_P_GATE, l, D, F, &g->g);
        linear(g, N, &g->a, UF_P_UP, l, D, F, &g->u);
        {
            struct uf_tensor gv = rows_view(&g->g, N), uv = rows_view(&g->u, N);
            uf_op_gated_forward(d, &gv, &uv, c->act == UF_ACT_GELU_TANH, &gv); /* in place */
        }
        linear(g, N, &g->g, UF_P_DOWN, l, F, D, &g->a);
        uf_tensor_axpby(&xv, 1.0f, &av, 1.0f);
    }
    if (n_out == 0) return 0;
    rmsnorm(g, N, &g->a, &g->x, UF_P_FINAL_NORM, -1);
    uf_tensor_view(&tv, &g->rows, "rows", 0, 1, (int64_t[]){n_out});
    uf_tensor_upload(&tv, out_rows);
    {
        cl_kernel k = uf_device_kernel(d, "decode.cl", "dec_gather_rows");
        size_t gl = global1((size_t)n_out * D);
        UF_LAUNCH(d, k, 1, &gl, NULL, M_(g->hsel.buf), M_(g->a.buf), M_(g->rows.buf), I_(n_out),
                  I_(D));
    }
    linear(g, n_out, &g->hsel, UF_P_LM_HEAD, -1, D, c->vocab, &g->logits);
    struct uf_tensor lv;
    uf_tensor_view(&lv, &g->logits, "logits", 0, 2, (int64_t[]){n_out, c->vocab});
    uf_tensor_download(&lv, logits);
    return 0;
}

int uf_gen_prefill(struct uf_gen *g, int n_seq, const int32_t *const *tokens, const int *lens,
                   float *last_logits) {
    if (n_seq <= 0 || n_seq > g->B)
        return uf_fail("generate: %d sequences; the cache holds 1..%d", n_seq, g->B);
    for (int b = 0; b < n_seq; b++)
        if (lens[b] < 1 || lens[b] > g->Tc)
            return uf_fail("generate: sequence %d has %d tokens; 1..%d fit the cache", b, lens[b],
                           g->Tc);
    int R = g->max_rows;
    int32_t *tok = uf_malloc((size_t)R * sizeof *tok), *pos = uf_malloc((size_t)R * sizeof *pos);
    int32_t *seq = uf_malloc((size_t)R * sizeof *seq), *outr = uf_malloc((size_t)R * sizeof *outr);
    int32_t *outb = uf_malloc((size_t)R * sizeof *outb);
    float *lg = uf_malloc((size_t)R * g->cfg.vocab * sizeof *lg);
    int rc = 0, n = 0, n_out = 0;
    /* rows in order (sequence, position); a chunk is flushed when full */
    for (int b = 0; b < n_seq && rc == 0; b++) {
        for (int i = 0; i < lens[b] && rc == 0; i++) {
            tok[n] = tokens[b][i], pos[n] = i, seq[n] = b;
            if (i == lens[b] - 1) outr[n_out] = n, outb[n_out++] = b;
            n++;
            int last = b == n_seq - 1 && i == lens[b] - 1;
            if (n == R || last) {
                rc = uf_gen_forward(g, n, tok, pos, seq, n_out, outr, lg);
                for (int r = 0; r < n_out && rc == 0; r++)
                    memcpy(last_logits + (size_t)outb[r] * g->cfg.vocab,
                           lg + (size_t)r * g->cfg.vocab, (size_t)g->cfg.vocab * sizeof *lg);
                n = n_out = 0;
            }
        }
    }
    free(tok), free(pos), free(seq), free(outr), free(outb), free(lg);
    return rc;
}

/* ---- sampling ----------------------------------------------------------------------------- */
struct cand { float p; int32_t id; };
static int cand_cmp(const void *a, const void *b) {
    const struct cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t uf_gen_sample(const float *logits, int V, float temperature, float top_p,
                      struct uf_rng *rng) {
    int32_t best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (temperature <= 0.0f) return best;
    /* candidates: tokens within 40 nats (after temperature) of the best; the others' total mass
     * is below V e^-40 of the best's, far under f32 resolution */
    struct cand *c = uf_malloc((size_t)V * sizeof *c);
    double mx = logits[best];
    int nc = 0;
    for (int i = 0; i < V; i++) {
        double z = ((double)logits[i] - mx) / temperature;
        if (z < -40.0) continue;
        c[nc].p = (float)exp(z), c[nc].id = i;
        nc++;
    }
    int keep = nc;
    if (top_p < 1.0f) { /* nucleus: the most likely tokens until their mass reaches top_p */
        qsort(c, (size_t)nc, sizeof *c, cand_cmp);
        double sum = 0.0, cum = 0.0;
        for (int i = 0; i < nc; i++) sum += c[i].p;
        for (int i = 0; i < nc; i++) {
            cum += c[i].p / sum;
            if (cum >= top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double tot = 0.0;
    for (int i = 0; i < keep; i++) tot += c[i].p;
    double r = uf_rng_uniform(rng) * tot, acc = 0.0;
    int32_t id = c[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        acc += c[i].p;
        if (r < acc) {
            id = c[i].id;
            break;
        }
    }
    free(c);
    return id;
}

/* ---- generation ---------------------------------------------------------------------------- */
int uf_generate(struct uf_gen *g, int n_seq, const int32_t *const *prompts, const int *lens,
                const struct uf_gen_opts *o, struct uf_gen_out *out) {
    int V = g->cfg.vocab;
    if (o->max_new_tokens <= 0) return uf_fail("generate: max_new_tokens must be positive");
    if (o->temperature > 0.0f && !(o->top_p > 0.0f && o->top_p <= 1.0f))
        return uf_fail("generate: top_p %g outside (0, 1]", (double)o->top_p);
    if (n_seq <= 0 || n_seq > g->B || n_seq > g->max_rows)
        return uf_fail("generate: %d prompts at once; 1..%d allowed", n_seq,
                       UF_MIN(g->B, g->max_rows));
    for (int b = 0; b < n_seq; b++)
        if (lens[b] < 1 || lens[b] + o->max_new_tokens > g->Tc)
            return uf_fail("generate: prompt %d has %d tokens; with %d new tokens it needs %d "
                           "cache positions of %d (at least one prompt token is required)", b,
                           lens[b], o->max_new_tokens, lens[b] + o->max_new_tokens, g->Tc);
    memset(out, 0, (size_t)n_seq * sizeof *out);
    float *lg = uf_malloc((size_t)n_seq * V * sizeof *lg);
    struct uf_rng *rng = uf_malloc((size_t)n_seq * sizeof *rng);
    int *done = uf_calloc((size_t)n_seq, sizeof *done), *slot = uf_malloc((size_t)n_seq * sizeof *slot);
    int32_t *tok = uf_malloc((size_t)n_seq * sizeof *tok), *pos = uf_malloc((size_t)n_seq * sizeof *pos);
    int32_t *seq = uf_malloc((size_t)n_seq * sizeof *seq), *rows = uf_malloc((size_t)n_seq * sizeof *rows);
    for (int b = 0; b < n_seq; b++) {
        uf_rng_init(&rng[b], o->seed * 0x9e3779b97f4a7c15ull + o->first_stream + (uint64_t)b);
        out[b].tokens = uf_malloc((size_t)o->max_new_tokens * sizeof(int32_t));
        slot[b] = b;
    }
    int rc = uf_gen_prefill(g, n_seq, prompts, lens, lg);
    int active = n_seq;
    while (rc == 0 && active > 0) {
        /* lg row slot[b] holds the next-token logits of sequence b */
        int n = 0;
        for (int b = 0; b < n_seq; b++) {
            if (done[b]) continue;
            int32_t t = uf_gen_sample(lg + (size_t)slot[b] * V, V, o->temperature, o->top_p,
                                      &rng[b]);
            out[b].tokens[out[b].n++] = t;
            int stop = 0;
            for (int s = 0; s < o->n_stop_ids; s++)
                if (t == o->stop_ids[s]) stop = 1, out[b].reason = UF_GEN_STOP_EOS;
            if (!stop && o->stop && o->stop(o->stop_ctx, b, out[b].tokens, out[b].n))
                stop = 1, out[b].reason = UF_GEN_STOP_CALLBACK;
            if (!stop && out[b].n >= o->max_new_tokens)
                stop = 1, out[b].reason = UF_GEN_STOP_LENGTH;
            if (stop) {
                done[b] = 1, active--;
                continue;
            }
            tok[n] = t, pos[n] = lens[b] + out[b].n - 1, seq[n] = b, rows[n] = n;
            slot[b] = n++;
        }
        if (n > 0) rc = uf_gen_forward(g, n, tok, pos, seq, n, rows, lg);
    }
    free(lg), free(rng), free(done), free(slot), free(tok), free(pos), free(seq), free(rows);
    if (rc) uf_gen_out_free(out, n_seq);
    return rc;
}

void uf_gen_out_free(struct uf_gen_out *out, int n) {
    for (int b = 0; b < n; b++) {
        free(out[b].tokens);
        out[b].tokens = NULL;
        out[b].n = 0;
    }
}

/* ---- scoring ------------------------------------------------------------------------------ */
int uf_gen_score_batch(struct uf_gen *g, int n_seq, const int32_t *const *tokens,
                       const int *lens, double *const *logprobs) {
    int V = g->cfg.vocab, R = g->max_rows;
    if (n_seq <= 0 || n_seq > g->B)
        return uf_fail("score: %d sequences; the cache holds 1..%d", n_seq, g->B);
    for (int b = 0; b < n_seq; b++)
        if (lens[b] < 2 || lens[b] > g->Tc)
            return uf_fail("score: sequence %d has %d tokens; 2..%d allowed (cache length)", b,
                           lens[b], g->Tc);
    int32_t *tok = uf_malloc((size_t)R * sizeof *tok), *pos = uf_malloc((size_t)R * sizeof *pos);
    int32_t *seq = uf_malloc((size_t)R * sizeof *seq), *rows = uf_malloc((size_t)R * sizeof *rows);
    float *lg = uf_malloc((size_t)R * V * sizeof *lg);
    int rc = 0, n = 0;
    /* rows (b, i) for i < lens[b] - 1 predict tokens[b][i + 1]; chunks keep (b, i) order so
     * every position's keys are cached before a later chunk attends to them */
    for (int b = 0; b < n_seq && rc == 0; b++)
        for (int i = 0; i < lens[b] - 1 && rc == 0; i++) {
            tok[n] = tokens[b][i], pos[n] = i, seq[n] = b, rows[n] = n;
            n++;
            if (n < R && !(b == n_seq - 1 && i == lens[b] - 2)) continue;
            rc = uf_gen_forward(g, n, tok, pos, seq, n, rows, lg);
            for (int r = 0; r < n && rc == 0; r++) {
                const float *row = lg + (size_t)r * V;
                double mx = -DBL_MAX, s = 0.0;
                for (int v = 0; v < V; v++) mx = row[v] > mx ? row[v] : mx;
                for (int v = 0; v < V; v++) s += exp((double)row[v] - mx);
                int sb = seq[r], sp = pos[r];
                logprobs[sb][sp] = (double)row[tokens[sb][sp + 1]] - mx - log(s);
            }
            n = 0;
        }
    free(tok), free(pos), free(seq), free(rows), free(lg);
    return rc;
}

int uf_gen_score(struct uf_gen *g, const int32_t *tokens, int n, double *logprobs) {
    return uf_gen_score_batch(g, 1, &tokens, &n, &logprobs);
}
