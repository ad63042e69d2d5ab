/* model.c: the transformer training engine (see model.h): parameters, activations, forward and
 * backward composed from the ops of ops.h and uf_gemm. LoRA bookkeeping is in lora.c; the
 * optimizer in optim.c.
 *
 * Per layer l (N = B*T rows, QD = H*hd, KD = KV*hd), saved for backward:
 *   x_l    resid[l]      (N, D)   layer input
 *   n1     norm1[l]      (N, D)   = rmsnorm(x_l)               rstd1[l] (N)
 *   q      q[l]          (N, QD)  = rope(n1 Wq^T)            k[l] (N, KD) = rope(n1 Wk^T)
 *   v      v[l]          (N, KD)  = n1 Wv^T
 *   a      att[l]        (N, QD)  = attention(q, k, v)        lse[l] (B, H, T)
 *   h      resid_mid[l]  (N, D)   = x_l + a Wo^T
 *   n2     norm2[l]      (N, D)   = rmsnorm(h)                rstd2[l] (N)
 *   g, u   gate[l], up[l] (N, F)  = n2 Wg^T, n2 Wu^T;  act[l] = act(g) * u
 *   x_l+1  resid[l+1]    (N, D)   = h + act Wd^T
 * then hidden = rmsnorm(x_L) (N, D), logits = hidden Wlm^T (N, V).
 * Residual adds are GEMMs with beta = 1 onto a copy of the residual stream. The backward carries
 * one residual-gradient buffer dres (N, D) through the whole network. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "ops/ops.h"
#include "formats/safetensors.h"
#include "core/util.h"

#define NK 12 /* parameter kinds per layer slot in pidx / lidx */

/* ---- small helpers -------------------------------------------------------------------------- */
/* A 1-D view of n elements at slot * n of base. */
static struct uf_tensor sl(const struct uf_tensor *base, int64_t slot, int64_t n) {
    struct uf_tensor v;
    uf_tensor_view(&v, base, base->name, (size_t)(slot * n), 1, (int64_t[]){n});
    return v;
}

/* The GEMM for a weight operand B = w: bf16 base weights (UF_MODEL_BF16_BASE) use uf_gemm_bf16 */
typedef void (*gemm_fn)(struct uf_device *, bool, bool, size_t, size_t, size_t, float, cl_mem,
                        size_t, size_t, cl_mem, size_t, size_t, float, cl_mem, size_t, size_t);
static gemm_fn gemm_for(const struct uf_tensor *w) { return w->dtype == UF_BF16 ? uf_gemm_bf16 : uf_gemm; }

/* y (N, out) = alpha x (N, in) W^T + beta y,  W (out, in) */
static void mm_fwd(struct uf_device *d, struct uf_tensor *y, const struct uf_tensor *x,
                   const struct uf_tensor *w, int64_t N, int64_t in, int64_t out, float alpha,
                   float beta) {
    gemm_for(w)(d, false, true, (size_t)N, (size_t)out, (size_t)in, alpha, x->buf, x->offset,
            (size_t)in, w->buf, w->offset, (size_t)in, beta, y->buf, y->offset, (size_t)out);
}
/* dx (N, in) = alpha dy (N, out) W (out, in) + beta dx */
static void mm_dx(struct uf_device *d, struct uf_tensor *dx, const struct uf_tensor *dy,
                  const struct uf_tensor *w, int64_t N, int64_t in, int64_t out, float alpha,
                  float beta) {
    gemm_for(w)(d, false, false, (size_t)N, (size_t)in, (size_t)out, alpha, dy->buf, dy->offset,
            (size_t)out, w->buf, w->offset, (size_t)in, beta, dx->buf, dx->offset, (size_t)in);
}
/* dW (out, in) += alpha dy^T (out, N) x (N, in) */
static void mm_dw(struct uf_device *d, struct uf_tensor *dw, const struct uf_tensor *dy,
                  const struct uf_tensor *x, int64_t N, int64_t in, int64_t out, float alpha) {
    uf_gemm(d, true, false, (size_t)out, (size_t)in, (size_t)N, alpha, dy->buf, dy->offset,
            (size_t)out, x->buf, x->offset, (size_t)in, 1.0f, dw->buf, dw->offset, (size_t)in);
}

/* (in, out) of a layer's linear module */
static void linear_dims(const struct uf_model_config *c, enum uf_param_kind kind, int64_t *in,
                        int64_t *out) {
    int64_t D = c->d_model, F = c->d_ff, QD = (int64_t)c->n_heads * c->head_dim,
            KD = (int64_t)c->n_kv_heads * c->head_dim;
    switch (kind) {
    case UF_P_Q: *in = D, *out = QD; break;
    case UF_P_K: case UF_P_V: *in = D, *out = KD; break;
    case UF_P_O: *in = QD, *out = D; break;
    case UF_P_GATE: case UF_P_UP: *in = D, *out = F; break;
    case UF_P_DOWN: *in = F, *out = D; break;
    default: *in = *out = 0; break;
    }
}

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* dropout stream of (forward call, layer, module) */
static uint64_t dropout_seed(const struct uf_model *m, int l, enum uf_param_kind kind) {
    return mix64(mix64(m->seed ^ 0x64726f706f7574ull) ^ mix64(m->n_forward) ^
                 ((uint64_t)l * NK + (uint64_t)kind + 1));
}

static float embed_scale(const struct uf_model_config *c) {
    return c->embed_scale ? (float)sqrt((double)c->d_model) : 1.0f;
}

/* per-layer activation slot: frozen models and activation checkpointing reuse slot 0 (frozen
 * resid: ping-pong over 2; checkpointing keeps every layer input in resid) */
static int one_layer(const struct uf_model *m) { return m->frozen || m->checkpointing; }
static int64_t lslot(const struct uf_model *m, int l) { return one_layer(m) ? 0 : l; }
static int64_t rslot(const struct uf_model *m, int l) { return m->frozen ? l % 2 : l; }

static int is_norm(enum uf_param_kind k) {
    return k == UF_P_ATTN_NORM || k == UF_P_MLP_NORM || k == UF_P_FINAL_NORM;
}

/* bf16_base: norms (f32) = the widened bf16 norm weights of params */
static void bf16_sync_norms(struct uf_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        const struct uf_param_desc *pd = &m->descs[i];
        if (!is_norm(pd->kind)) continue;
        uf_tensor_convert(&m->pv[i], &m->sv[i]);
    }
}

/* ---- init / free ---------------------------------------------------------------------------- */
int uf_model_init(struct uf_model *m, struct uf_device *dev, const struct uf_model_config *cfg,
                  uint64_t seed, int flags) {
    memset(m, 0, sizeof *m);
    if (uf_model_config_validate(cfg)) return -1;
    m->cfg = *cfg;
    m->dev = dev;
    m->frozen = (flags & UF_MODEL_FROZEN) != 0;
    m->bf16_base = (flags & UF_MODEL_BF16_BASE) != 0;
    m->training = !m->frozen;
    m->seed = seed;
    const struct uf_model_config *c = &m->cfg;

    m->n_params = uf_model_param_descs(c, NULL);
    m->descs = uf_calloc((size_t)m->n_params, sizeof *m->descs);
    uf_model_param_descs(c, m->descs);
    m->numel = m->descs[m->n_params - 1].offset + m->descs[m->n_params - 1].numel;
    m->sv = uf_calloc((size_t)m->n_params, sizeof *m->sv);
    if (m->bf16_base) { /* one buffer per tensor (see sv) */
        for (int i = 0; i < m->n_params; i++) {
            const struct uf_param_desc *pd = &m->descs[i];
            uf_tensor_init(&m->sv[i], dev, pd->name, UF_BF16, 2, (int64_t[]){pd->rows, pd->cols});
            m->bytes_params += uf_tensor_bytes(&m->sv[i]);
        }
    } else {
        uf_tensor_init(&m->params, dev, "params", UF_F32, 1, (int64_t[]){m->numel});
        m->bytes_params = uf_tensor_bytes(&m->params);
        for (int i = 0; i < m->n_params; i++)
            uf_tensor_view(&m->sv[i], &m->params, m->descs[i].name, (size_t)m->descs[i].offset, 2,
                           (int64_t[]){m->descs[i].rows, m->descs[i].cols});
    }
    int64_t n_norm = 0; /* bf16_base: norm weights get an f32 side copy */
    for (int i = 0; i < m->n_params; i++)
        if (is_norm(m->descs[i].kind)) n_norm += m->descs[i].numel;
    if (m->bf16_base) {
        uf_tensor_init(&m->norms, dev, "norms", UF_F32, 1, (int64_t[]){n_norm});
        m->bytes_params += uf_tensor_bytes(&m->norms);
    }
    m->pv = uf_calloc((size_t)m->n_params, sizeof *m->pv);
    m->gv = uf_calloc((size_t)m->n_params, sizeof *m->gv);
    m->trainable = uf_calloc((size_t)m->n_params, sizeof *m->trainable);
    m->pidx = uf_malloc((size_t)c->n_layers * NK * sizeof *m->pidx);
    for (int i = 0; i < c->n_layers * NK; i++) m->pidx[i] = -1;
    m->p_embed = m->p_final = m->p_head = -1;
    int64_t norm_off = 0;
    for (int i = 0; i < m->n_params; i++) {
        const struct uf_param_desc *pd = &m->descs[i];
        if (m->bf16_base && is_norm(pd->kind)) {
            uf_tensor_view(&m->pv[i], &m->norms, pd->name, (size_t)norm_off, 2,
                           (int64_t[]){pd->rows, pd->cols});
            norm_off += pd->numel;
        } else {
            m->pv[i] = m->sv[i];
            m->pv[i].owns = 0;
        }
        m->trainable[i] = !m->frozen && !m->bf16_base;
        if (pd->layer >= 0) m->pidx[pd->layer * NK + pd->kind] = i;
        else if (pd->kind == UF_P_EMBED) m->p_embed = i;
        else if (pd->kind == UF_P_FINAL_NORM) m->p_final = i;
        else if (pd->kind == UF_P_LM_HEAD) m->p_head = i;
    }
    if (c->tied_embeddings) m->p_head = m->p_embed;
    if (!m->frozen && !m->bf16_base) {
        uf_tensor_init(&m->grads, dev, "grads", UF_F32, 1, (int64_t[]){m->numel});
        m->bytes_grads = uf_tensor_bytes(&m->grads);
        m->has_grads = 1;
        for (int i = 0; i < m->n_params; i++)
            uf_tensor_view(&m->gv[i], &m->grads, m->descs[i].name, (size_t)m->descs[i].offset, 2,
                           (int64_t[]){m->descs[i].rows, m->descs[i].cols});
        uf_tensor_fill(&m->grads, 0.0f);
    }
    int hh = c->head_dim / 2;
    float *inv = uf_malloc((size_t)hh * sizeof *inv);
    uf_rope_inv_freq(c, inv);
    uf_tensor_init(&m->inv_freq, dev, "inv_freq", UF_F32, 1, (int64_t[]){hh});
    uf_tensor_upload(&m->inv_freq, inv);
    free(inv);
    uf_tensor_init(&m->loss, dev, "loss", UF_F32, 1, (int64_t[]){1});
    uf_tensor_fill(&m->loss, 0.0f);
    if (!(flags & UF_MODEL_NO_INIT)) uf_model_init_params(m, seed);
    return 0;
}

void uf_model_params_written(struct uf_model *m) {
    if (m->bf16_base) bf16_sync_norms(m);
}

/* Fills x[0..n) with the init values of parameter pd (the stream of r continues across calls). */
static void init_values(const struct uf_model_config *c, const struct uf_param_desc *pd,
                        struct uf_rng *r, float *x, int64_t n) {
    if (pd->kind == UF_P_ATTN_NORM || pd->kind == UF_P_MLP_NORM || pd->kind == UF_P_FINAL_NORM) {
        for (int64_t j = 0; j < n; j++) x[j] = c->norm_plus_one ? 0.0f : 1.0f;
        return;
    }
    double std = 0.02;
    if (pd->kind == UF_P_O || pd->kind == UF_P_DOWN) std *= 1.0 / sqrt(2.0 * c->n_layers);
    for (int64_t j = 0; j < n; j++) x[j] = (float)(std * uf_rng_normal(r));
}

void uf_model_init_params(struct uf_model *m, uint64_t seed) {
    const struct uf_model_config *c = &m->cfg;
    struct uf_rng r;
    uf_rng_init(&r, seed);
    if (m->bf16_base) { /* in chunks: no P-sized f32 host buffer (27 GB for 7B); same values */
        enum { CH = 1 << 22 };
        float *h = uf_malloc((size_t)CH * sizeof *h);
        uint16_t *h16 = uf_malloc((size_t)CH * sizeof *h16);
        for (int i = 0; i < m->n_params; i++) {
            const struct uf_param_desc *pd = &m->descs[i];
            for (int64_t o = 0; o < pd->numel; o += CH) {
                int64_t n = UF_MIN((int64_t)CH, pd->numel - o);
                init_values(c, pd, &r, h, n);
                for (int64_t j = 0; j < n; j++) h16[j] = uf_f32_to_bf16(h[j]);
                struct uf_tensor v;
                uf_tensor_view(&v, &m->sv[i], pd->name, (size_t)o, 1, (int64_t[]){n});
                uf_tensor_upload(&v, h16);
            }
        }
        free(h), free(h16);
        bf16_sync_norms(m);
        return;
    }
    float *h = uf_malloc((size_t)m->numel * sizeof *h);
    for (int i = 0; i < m->n_params; i++)
        init_values(c, &m->descs[i], &r, h + m->descs[i].offset, m->descs[i].numel);
    uf_tensor_upload(&m->params, h);
    free(h);
}

void uf_model_release_activations(struct uf_model *m) {
    struct uf_tensor *all[] = {
        &m->resid, &m->resid_mid, &m->norm1, &m->norm2, &m->rstd1, &m->rstd2, &m->q, &m->att,
        &m->k, &m->v, &m->lse, &m->gate, &m->up, &m->act, &m->lora_t, &m->hidden, &m->rstdf,
        &m->logits, &m->loss_rows, &m->tokens, &m->targets, &m->mask, &m->lengths, &m->qpre,
        &m->kpre, &m->dropbuf, &m->dres, &m->dnorm, &m->dhidden, &m->dq, &m->datt, &m->dk,
        &m->dv, &m->dgate, &m->dup, &m->dact, &m->dlogits, &m->dlora, &m->ext_glogits,
        &m->ext_ghidden};
    for (size_t i = 0; i < UF_ARRAY_LEN(all); i++)
        if (all[i]->buf) uf_tensor_free(all[i]);
    m->n_cap = 0;
    m->bytes_acts = 0;
    m->ext_glogits_set = m->ext_ghidden_set = 0;
    m->ref_glogits = m->ref_ghidden = NULL;
    m->dlogits_valid = 0;
    m->has_loss = 0;
}

static void act_alloc(struct uf_model *m, struct uf_tensor *t, const char *name,
                      enum uf_dtype dtype, int64_t n) {
    if (n <= 0) return;
    uf_tensor_init(t, m->dev, name, dtype, 1, (int64_t[]){n});
    m->bytes_acts += uf_tensor_bytes(t);
}

/* Activations for N rows (grown only). */
static void acts_reserve(struct uf_model *m, int64_t N) {
    if (N <= m->n_cap && m->acts_ckpt == m->checkpointing) return;
    uf_model_release_activations(m);
    m->acts_ckpt = m->checkpointing;
    const struct uf_model_config *c = &m->cfg;
    int64_t D = c->d_model, F = c->d_ff, V = c->vocab, H = c->n_heads;
    int64_t QD = H * c->head_dim, KD = (int64_t)c->n_kv_heads * c->head_dim;
    int64_t Ls = one_layer(m) ? 1 : c->n_layers, Rs = m->frozen ? 2 : c->n_layers + 1;
    int64_t r = m->lora.rank, nl = Ls * m->lora_per_layer;
    act_alloc(m, &m->resid, "resid", UF_F32, Rs * N * D);
    act_alloc(m, &m->resid_mid, "resid_mid", UF_F32, Ls * N * D);
    act_alloc(m, &m->norm1, "norm1", UF_F32, Ls * N * D);
    act_alloc(m, &m->norm2, "norm2", UF_F32, Ls * N * D);
    act_alloc(m, &m->rstd1, "rstd1", UF_F32, Ls * N);
    act_alloc(m, &m->rstd2, "rstd2", UF_F32, Ls * N);
    act_alloc(m, &m->q, "q", UF_F32, Ls * N * QD);
    act_alloc(m, &m->att, "att", UF_F32, Ls * N * QD);
    act_alloc(m, &m->k, "k", UF_F32, Ls * N * KD);
    act_alloc(m, &m->v, "v", UF_F32, Ls * N * KD);
    act_alloc(m, &m->lse, "lse", UF_F32, Ls * N * H);
    act_alloc(m, &m->gate, "gate", UF_F32, Ls * N * F);
    act_alloc(m, &m->up, "up", UF_F32, Ls * N * F);
    act_alloc(m, &m->act, "act", UF_F32, Ls * N * F);
    if (r > 0) act_alloc(m, &m->lora_t, "lora_t", UF_F32, nl * N * r);
    act_alloc(m, &m->hidden, "hidden", UF_F32, N * D);
    act_alloc(m, &m->rstdf, "rstdf", UF_F32, N);
    act_alloc(m, &m->logits, "logits", UF_F32, N * V);
    act_alloc(m, &m->loss_rows, "loss_rows", UF_F32, N);
    act_alloc(m, &m->tokens, "tokens", UF_I32, N);
    act_alloc(m, &m->targets, "targets", UF_I32, N);
    act_alloc(m, &m->mask, "loss_mask", UF_F32, N);
    act_alloc(m, &m->lengths, "lengths", UF_I32, N);
    act_alloc(m, &m->qpre, "qpre", UF_F32, N * QD);
    act_alloc(m, &m->kpre, "kpre", UF_F32, N * KD);
    if (r > 0 && m->lora.dropout > 0)
        act_alloc(m, &m->dropbuf, "dropbuf", UF_F32, N * UF_MAX(UF_MAX(D, F), QD));
    if (!m->frozen) {
        act_alloc(m, &m->dres, "dres", UF_F32, N * D);
        act_alloc(m, &m->dnorm, "dnorm", UF_F32, N * D);
        act_alloc(m, &m->dhidden, "dhidden", UF_F32, N * D);
        act_alloc(m, &m->dq, "dq", UF_F32, N * QD);
        act_alloc(m, &m->datt, "datt", UF_F32, N * QD);
        act_alloc(m, &m->dk, "dk", UF_F32, N * KD);
        act_alloc(m, &m->dv, "dv", UF_F32, N * KD);
        act_alloc(m, &m->dgate, "dgate", UF_F32, N * F);
        act_alloc(m, &m->dup, "dup", UF_F32, N * F);
        act_alloc(m, &m->dact, "dact", UF_F32, N * F);
        act_alloc(m, &m->dlogits, "dlogits", UF_F32, N * V);
        if (r > 0) act_alloc(m, &m->dlora, "dlora", UF_F32, N * r);
    }
    m->n_cap = N;
}

void uf_model_free(struct uf_model *m) {
    if (!m->descs) return;
    uf_model_release_activations(m);
    for (int i = 0; i < 2; i++) { /* a pending upload still reads its staging buffer */
        if (m->stage_ev[i]) {
            UF_CL(clWaitForEvents(1, &m->stage_ev[i]));
            clReleaseEvent(m->stage_ev[i]);
        }
        free(m->stage[i]);
    }
    if (m->bf16_base)
        for (int i = 0; i < m->n_params; i++) uf_tensor_free(&m->sv[i]);
    else
        uf_tensor_free(&m->params);
    free(m->sv);
    if (m->norms.buf) uf_tensor_free(&m->norms);
    if (m->grads.buf) uf_tensor_free(&m->grads);
    if (m->lora_params.buf) uf_tensor_free(&m->lora_params);
    if (m->lora_grads.buf) uf_tensor_free(&m->lora_grads);
    uf_tensor_free(&m->inv_freq);
    uf_tensor_free(&m->loss);
    free(m->descs);
    free(m->pv);
    free(m->gv);
    free(m->trainable);
    free(m->pidx);
    free(m->lora_descs);
    free(m->lpv);
    free(m->lgv);
    free(m->lidx);
    memset(m, 0, sizeof *m);
}

/* ---- parameters to / from the host ---------------------------------------------------------- */
/* bf16 base <-> host f32 vector in the canonical layout, tensor by tensor in chunks (no second
 * P-sized host copy): src != NULL rounds src onto the device, else the device is widened into dst */
static void bf16_host_copy(struct uf_model *m, const float *src, float *dst) {
    enum { CH = 1 << 22 };
    uint16_t *h16 = uf_malloc((size_t)UF_MIN(m->numel, (int64_t)CH) * sizeof *h16);
    for (int i = 0; i < m->n_params; i++) {
        const struct uf_param_desc *pd = &m->descs[i];
        for (int64_t o = 0; o < pd->numel; o += CH) {
            int64_t n = UF_MIN((int64_t)CH, pd->numel - o), at = pd->offset + o;
            struct uf_tensor v;
            uf_tensor_view(&v, &m->sv[i], pd->name, (size_t)o, 1, (int64_t[]){n});
            if (src) {
                for (int64_t j = 0; j < n; j++) h16[j] = uf_f32_to_bf16(src[at + j]);
                uf_tensor_upload(&v, h16);
            } else {
                uf_tensor_download(&v, h16);
                for (int64_t j = 0; j < n; j++) dst[at + j] = uf_bf16_to_f32(h16[j]);
            }
        }
    }
    free(h16);
}

void uf_model_load_params(struct uf_model *m, const float *host) {
    if (!m->bf16_base) {
        uf_tensor_upload(&m->params, host);
        return;
    }
    bf16_host_copy(m, host, NULL);
    bf16_sync_norms(m); /* widen the norms on the device */
}

void uf_model_save_params(struct uf_model *m, float *host) {
    if (!m->bf16_base) uf_tensor_download(&m->params, host);
    else bf16_host_copy(m, NULL, host);
}

void uf_model_save_grads(struct uf_model *m, float *host) {
    if (m->has_grads) uf_tensor_download(&m->grads, host);
    else memset(host, 0, (size_t)m->numel * sizeof *host);
}

int uf_model_copy_params(struct uf_model *dst, const struct uf_model *src) {
    const struct uf_model_config *a = &dst->cfg, *b = &src->cfg;
    if (dst->numel != src->numel || a->vocab != b->vocab || a->d_model != b->d_model ||
        a->n_layers != b->n_layers || a->n_heads != b->n_heads || a->n_kv_heads != b->n_kv_heads ||
        a->head_dim != b->head_dim || a->d_ff != b->d_ff || a->tied_embeddings != b->tied_embeddings)
        return uf_fail("uf_model_copy_params: the two models have different shapes (%lld vs %lld "
                       "parameters)", (long long)dst->numel, (long long)src->numel);
    if (!dst->bf16_base && !src->bf16_base) {
        uf_tensor_copy(&dst->params, &src->params);
        return 0;
    }
    for (int i = 0; i < dst->n_params; i++) { /* per tensor; f32 -> bf16: nearest even */
        if (dst->bf16_base == src->bf16_base) uf_tensor_copy(&dst->sv[i], &src->sv[i]);
        else uf_tensor_convert(&dst->sv[i], &src->sv[i]);
    }
    if (dst->bf16_base) bf16_sync_norms(dst);
    return 0;
}

void uf_model_freeze_kinds(struct uf_model *m, unsigned kind_mask) {
    if (m->cfg.tied_embeddings && (kind_mask & ((1u << UF_P_EMBED) | (1u << UF_P_LM_HEAD))))
        kind_mask |= (1u << UF_P_EMBED) | (1u << UF_P_LM_HEAD);
    for (int i = 0; i < m->n_params; i++)
        if (kind_mask & (1u << m->descs[i].kind)) m->trainable[i] = 0;
}

struct uf_tensor *uf_model_train_params(struct uf_model *m) {
    return m->lora.rank > 0 ? &m->lora_params : &m->params;
}
struct uf_tensor *uf_model_train_grads(struct uf_model *m) {
    return m->lora.rank > 0 ? &m->lora_grads : &m->grads;
}

void uf_model_zero_grad(struct uf_model *m) {
    if (m->has_grads) uf_tensor_fill(&m->grads, 0.0f);
    if (m->lora_grads.buf) uf_tensor_fill(&m->lora_grads, 0.0f);
}

float uf_model_read_loss(struct uf_model *m) {
    float v;
    uf_tensor_download(&m->loss, &v);
    return v;
}

/* ---- linear modules (base + LoRA) ----------------------------------------------------------- */
static int lora_active(const struct uf_model *m, int l, enum uf_param_kind kind) {
    return m->lora.rank > 0 && !m->lora_merged && m->lidx[l * NK + kind] >= 0;
}

static struct uf_tensor lora_t_view(const struct uf_model *m, int li, int64_t N) {
    int64_t slot = li / 2 - (one_layer(m) ? (int64_t)m->lora_descs[li].layer * m->lora_per_layer : 0);
    return sl(&m->lora_t, slot, N * m->lora.rank);
}


/* y (N, out) = x W^T + beta y  (+ scale dropout(x) A^T B^T) */
static void linear_forward(struct uf_model *m, int l, enum uf_param_kind kind,
                           const struct uf_tensor *x, struct uf_tensor *y, float beta, int64_t N) {
    int64_t in, out;
    linear_dims(&m->cfg, kind, &in, &out);
    mm_fwd(m->dev, y, x, &m->pv[m->pidx[l * NK + kind]], N, in, out, 1.0f, beta);
    if (!lora_active(m, l, kind)) return;
    int li = m->lidx[l * NK + kind];
    int64_t r = m->lora.rank;
    struct uf_tensor t = lora_t_view(m, li, N), db;
    const struct uf_tensor *src = x;
    if (m->drop_active) {
        db = sl(&m->dropbuf, 0, N * in);
        uf_op_dropout_forward(m->dev, x, m->lora.dropout, dropout_seed(m, l, kind), &db);
        src = &db;
    }
    mm_fwd(m->dev, &t, src, &m->lpv[li], N, in, r, 1.0f, 0.0f);
    mm_fwd(m->dev, y, &t, &m->lpv[li + 1], N, r, out, m->lora_scale, 1.0f);
}

/* Backward of linear_forward given dy (N, out): dx (N, in) = dy W + dx_beta dx (+ LoRA path),
 * dW += dy^T x when trainable, dA, dB += under LoRA. dx may be NULL. */
static void linear_backward(struct uf_model *m, int l, enum uf_param_kind kind,
                            const struct uf_tensor *x, const struct uf_tensor *dy,
                            struct uf_tensor *dx, float dx_beta, int64_t N) {
    struct uf_device *d = m->dev;
    int64_t in, out;
    linear_dims(&m->cfg, kind, &in, &out);
    int pi = m->pidx[l * NK + kind];
    if (dx) mm_dx(d, dx, dy, &m->pv[pi], N, in, out, 1.0f, dx_beta);
    if (m->has_grads && m->trainable[pi]) mm_dw(d, &m->gv[pi], dy, x, N, in, out, 1.0f);
    if (!lora_active(m, l, kind) || !m->lora_grads.buf) return;
    int li = m->lidx[l * NK + kind];
    if (m->weff_fn) { /* g (out, in) = dy^T x: the gradient of the effective weight W + s B A */
        struct uf_tensor g;
        uf_tensor_view(&g, m->weff_scratch, "weff grad", 0, 2, (int64_t[]){out, in});
        uf_gemm(d, true, false, (size_t)out, (size_t)in, (size_t)N, 1.0f, dy->buf, dy->offset,
                (size_t)out, x->buf, x->offset, (size_t)in, 0.0f, g.buf, g.offset, (size_t)in);
        m->weff_fn(m->weff_ctx, li / 2, &g);
    }
    int64_t r = m->lora.rank;
    float s = m->lora_scale;
    struct uf_tensor t = lora_t_view(m, li, N), dt = sl(&m->dlora, 0, N * r), db;
    mm_dw(d, &m->lgv[li + 1], dy, &t, N, r, out, s);      /* dB (out, r) += s dy^T t */
    mm_dx(d, &dt, dy, &m->lpv[li + 1], N, r, out, s, 0.0f); /* dt (N, r) = s dy B */
    const struct uf_tensor *src = x;
    int drop = m->drop_active;
    uint64_t seed = dropout_seed(m, l, kind);
    if (drop) {
        db = sl(&m->dropbuf, 0, N * in);
        uf_op_dropout_forward(d, x, m->lora.dropout, seed, &db);
        src = &db;
    }
    mm_dw(d, &m->lgv[li], &dt, src, N, in, r, 1.0f); /* dA (r, in) += dt^T src */
    if (!dx) return;
    if (drop) {
        mm_dx(d, &db, &dt, &m->lpv[li], N, in, r, 1.0f, 0.0f);
        uf_op_dropout_backward(d, &db, m->lora.dropout, seed, dx);
    } else {
        mm_dx(d, dx, &dt, &m->lpv[li], N, in, r, 1.0f, 1.0f);
    }
}

/* ---- forward --------------------------------------------------------------------------------- */
/* Layer l's forward: resid[rslot(l)] -> the layer's saved activations (slot lslot(l)) and
 * resid[rslot(l + 1)]. Backward calls it again under activation checkpointing (same inputs,
 * same dropout masks: bit-identical recomputation). */
static void layer_forward(struct uf_model *m, int l, const struct uf_tensor *lengths, int B, int T) {
    struct uf_device *d = m->dev;
    const struct uf_model_config *c = &m->cfg;
    int64_t N = (int64_t)B * T, D = c->d_model, F = c->d_ff;
    int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    int64_t QD = (int64_t)H * hd, KD = (int64_t)KV * hd;
    int gelu = c->act == UF_ACT_GELU_TANH;
    struct uf_tensor x = sl(&m->resid, rslot(m, l), N * D);
    struct uf_tensor qpre = sl(&m->qpre, 0, N * QD), kpre = sl(&m->kpre, 0, N * KD);
    int64_t s = lslot(m, l);
    const int *pi = &m->pidx[l * NK];
    struct uf_tensor h = sl(&m->resid_mid, s, N * D), xo = sl(&m->resid, rslot(m, l + 1), N * D);
    struct uf_tensor n1 = sl(&m->norm1, s, N * D), r1 = sl(&m->rstd1, s, N);
    struct uf_tensor n2 = sl(&m->norm2, s, N * D), r2 = sl(&m->rstd2, s, N);
    struct uf_tensor q = sl(&m->q, s, N * QD), k = sl(&m->k, s, N * KD);
    struct uf_tensor v = sl(&m->v, s, N * KD), a = sl(&m->att, s, N * QD);
    struct uf_tensor lse = sl(&m->lse, s, N * H);
    struct uf_tensor g = sl(&m->gate, s, N * F), u = sl(&m->up, s, N * F);
    struct uf_tensor act = sl(&m->act, s, N * F);

    uf_op_rmsnorm_forward(d, &x, &m->pv[pi[UF_P_ATTN_NORM]], c->norm_eps, c->norm_plus_one, &n1, &r1);
    linear_forward(m, l, UF_P_Q, &n1, &qpre, 0.0f, N);
    uf_op_rope_forward(d, &qpre, T, H, hd, &m->inv_freq, &q);
    linear_forward(m, l, UF_P_K, &n1, &kpre, 0.0f, N);
    uf_op_rope_forward(d, &kpre, T, KV, hd, &m->inv_freq, &k);
    linear_forward(m, l, UF_P_V, &n1, &v, 0.0f, N);
    uf_op_attention_forward(d, &q, &k, &v, lengths, B, T, H, KV, hd, c->sliding_window, &a, &lse);
    uf_tensor_copy(&h, &x);
    linear_forward(m, l, UF_P_O, &a, &h, 1.0f, N);

    uf_op_rmsnorm_forward(d, &h, &m->pv[pi[UF_P_MLP_NORM]], c->norm_eps, c->norm_plus_one, &n2, &r2);
    linear_forward(m, l, UF_P_GATE, &n2, &g, 0.0f, N);
    linear_forward(m, l, UF_P_UP, &n2, &u, 0.0f, N);
    uf_op_gated_forward(d, &g, &u, gelu, &act);
    uf_tensor_copy(&xo, &h);
    linear_forward(m, l, UF_P_DOWN, &act, &xo, 1.0f, N);
}

static void forward_core(struct uf_model *m, const struct uf_tensor *tokens,
                         const struct uf_tensor *lengths, int B, int T) {
    struct uf_device *d = m->dev;
    const struct uf_model_config *c = &m->cfg;
    int64_t N = (int64_t)B * T, D = c->d_model, V = c->vocab;
    m->B = B, m->T = T;
    m->n_forward++;
    m->drop_active = m->training && m->lora.rank > 0 && m->lora.dropout > 0.0f;

    struct uf_tensor x = sl(&m->resid, rslot(m, 0), N * D);
    uf_op_embed_forward(d, tokens, &m->pv[m->p_embed], embed_scale(c), &x);
    for (int l = 0; l < c->n_layers; l++) layer_forward(m, l, lengths, B, T);
    x = sl(&m->resid, rslot(m, c->n_layers), N * D);
    struct uf_tensor hid = sl(&m->hidden, 0, N * D), rf = sl(&m->rstdf, 0, N);
    struct uf_tensor lg = sl(&m->logits, 0, N * V);
    uf_op_rmsnorm_forward(d, &x, &m->pv[m->p_final], c->norm_eps, c->norm_plus_one, &hid, &rf);
    mm_fwd(d, &lg, &hid, &m->pv[m->p_head], N, D, V, 1.0f, 0.0f);
    m->has_loss = 0;
    m->dlogits_valid = 0;
    m->ext_glogits_set = m->ext_ghidden_set = 0;
    m->ref_glogits = m->ref_ghidden = NULL;
}

/* Non-blocking upload of the batch inputs through a ring of two host staging buffers: a slot is
 * reused only after its previous transfer completed (waits for that transfer, not the queue). */
static void stage_write(struct uf_model *m, void *host, size_t bytes, const struct uf_tensor *parts[],
                        const size_t sizes[], int n) {
    int s = m->stage_next;
    m->stage_next ^= 1;
    if (m->stage_ev[s]) {
        UF_CL(clWaitForEvents(1, &m->stage_ev[s]));
        UF_CL(clReleaseEvent(m->stage_ev[s]));
        m->stage_ev[s] = NULL;
    }
    if (m->stage_bytes[s] < bytes) {
        free(m->stage[s]);
        m->stage[s] = uf_malloc(bytes);
        m->stage_bytes[s] = bytes;
    }
    memcpy(m->stage[s], host, bytes);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] == 0) continue;
        cl_event *ev = i == n - 1 ? &m->stage_ev[s] : NULL;
        UF_CL(clEnqueueWriteBuffer(m->dev->queue, parts[i]->buf, CL_FALSE,
                                   parts[i]->offset * uf_dtype_size(parts[i]->dtype), sizes[i],
                                   (char *)m->stage[s] + off, 0, NULL, ev));
        off += sizes[i];
    }
}

int uf_model_forward(struct uf_model *m, const struct uf_model_batch *b) {
    const struct uf_model_config *c = &m->cfg;
    if (b->B <= 0 || b->T <= 0 || !b->tokens)
        return uf_fail("uf_model_forward: batch needs B > 0, T > 0 and tokens (got B=%d T=%d)",
                       b->B, b->T);
    int B = b->B, T = b->T;
    int64_t N = (int64_t)B * T;
    for (int64_t n = 0; n < N; n++)
        if (b->tokens[n] < 0 || b->tokens[n] >= c->vocab)
            return uf_fail("uf_model_forward: tokens[%lld] (b=%lld t=%lld) = %d outside [0, %d)",
                           (long long)n, (long long)(n / T), (long long)(n % T), b->tokens[n],
                           c->vocab);
    if (b->lengths)
        for (int i = 0; i < B; i++)
            if (b->lengths[i] < 0 || b->lengths[i] > T)
                return uf_fail("uf_model_forward: lengths[%d] = %d outside [0, %d]", i,
                               b->lengths[i], T);
    /* host block: tokens | targets | mask | lengths (4-byte entries) */
    size_t sz = (size_t)N * 4;
    uint8_t *blk = uf_malloc(3 * sz + (size_t)B * 4);
    int32_t *tg = (int32_t *)(blk + sz);
    float *mk = (float *)(blk + 2 * sz);
    int32_t *ln = (int32_t *)(blk + 3 * sz);
    memcpy(blk, b->tokens, sz);
    double count = 0;
    for (int64_t n = 0; n < N; n++) {
        float w = b->targets ? (b->loss_mask ? b->loss_mask[n] : 1.0f) : 0.0f;
        int32_t t = w != 0.0f ? b->targets[n] : 0;
        if (t < 0 || t >= c->vocab) {
            free(blk);
            return uf_fail("uf_model_forward: targets[%lld] (b=%lld t=%lld) = %d outside [0, %d) "
                           "where the loss mask is set", (long long)n, (long long)(n / T),
                           (long long)(n % T), t, c->vocab);
        }
        tg[n] = t;
        mk[n] = w;
        count += w;
    }
    for (int i = 0; i < B; i++) ln[i] = b->lengths ? b->lengths[i] : T;

    acts_reserve(m, N);
    struct uf_tensor tok = sl(&m->tokens, 0, N), tgt = sl(&m->targets, 0, N);
    struct uf_tensor msk = sl(&m->mask, 0, N), len = sl(&m->lengths, 0, B);
    const struct uf_tensor *parts[4] = {&tok, &tgt, &msk, &len};
    size_t sizes[4] = {sz, b->targets ? sz : 0, b->targets ? sz : 0, (size_t)B * 4};
    if (!b->targets) { /* pack: tokens then lengths */
        memmove(blk + sz, ln, (size_t)B * 4);
    }
    stage_write(m, blk, b->targets ? 3 * sz + (size_t)B * 4 : sz + (size_t)B * 4, parts, sizes, 4);
    free(blk);

    forward_core(m, &tok, &len, B, T);
    if (!b->targets) {
        uf_tensor_fill(&m->loss, 0.0f);
        return 0;
    }
    m->loss_denom = b->loss_denom > 0 ? b->loss_denom : (float)count;
    float scale = m->loss_denom > 0 ? 1.0f / m->loss_denom : 0.0f;
    struct uf_tensor lr = sl(&m->loss_rows, 0, N), lg = sl(&m->logits, 0, N * c->vocab);
    struct uf_tensor dl;
    int want_grad = !m->frozen && m->training;
    if (want_grad) dl = sl(&m->dlogits, 0, N * c->vocab);
    uf_op_cross_entropy(m->dev, &lg, &tgt, &msk, scale, &lr, want_grad ? &dl : NULL);
    uf_op_sum(m->dev, &lr, &m->loss, 0);
    uf_tensor_scale(&m->loss, scale);
    m->has_loss = 1;
    m->dlogits_valid = want_grad;
    return 0;
}

int uf_model_forward_device(struct uf_model *m, const struct uf_tensor *tokens,
                            const struct uf_tensor *lengths, int B, int T) {
    int64_t N = (int64_t)B * T;
    if (B <= 0 || T <= 0 || tokens->numel != N || tokens->dtype != UF_I32)
        return uf_fail("uf_model_forward_device: tokens %s must be i32 with B*T = %lld elements",
                       tokens->name, (long long)N);
    if (lengths && (lengths->numel != B || lengths->dtype != UF_I32))
        return uf_fail("uf_model_forward_device: lengths %s must be i32 with B = %d elements",
                       lengths->name, B);
    acts_reserve(m, N);
    struct uf_tensor tok = sl(&m->tokens, 0, N), len = sl(&m->lengths, 0, B);
    uf_tensor_copy(&tok, tokens);
    if (lengths) uf_tensor_copy(&len, lengths);
    else uf_tensor_fill(&len, (float)T);
    forward_core(m, &tok, &len, B, T);
    uf_tensor_fill(&m->loss, 0.0f);
    return 0;
}

/* ---- backward -------------------------------------------------------------------------------- */
static void add_pending(struct uf_model *m, struct uf_tensor *buf, int *set, const char *name,
                        const struct uf_tensor *g, int64_t n, float scale) {
    if (m->n_cap == 0) uf_fatal(1, "uf_model_add_grad_%s: no forward ran yet", name);
    if (g->numel != n || g->dtype != UF_F32)
        uf_fatal(1, "uf_model_add_grad_%s: %s has %lld elements, the last forward needs %lld",
                 name, g->name, (long long)g->numel, (long long)n);
    if (!buf->buf) {
        char nm[32];
        snprintf(nm, sizeof nm, "ext_g%s", name);
        act_alloc(m, buf, nm, UF_F32, m->n_cap * (n / ((int64_t)m->B * m->T)));
    }
    struct uf_tensor v = sl(buf, 0, n);
    if (!*set) uf_tensor_fill(&v, 0.0f); /* axpby with b = 0 would still read NaN garbage */
    uf_tensor_axpby(&v, scale, g, 1.0f);
    *set = 1;
}

void uf_model_add_grad_logits(struct uf_model *m, const struct uf_tensor *g, float scale) {
    add_pending(m, &m->ext_glogits, &m->ext_glogits_set, "logits", g,
                (int64_t)m->B * m->T * m->cfg.vocab, scale);
}

void uf_model_add_grad_hidden(struct uf_model *m, const struct uf_tensor *g, float scale) {
    add_pending(m, &m->ext_ghidden, &m->ext_ghidden_set, "hidden", g,
                (int64_t)m->B * m->T * m->cfg.d_model, scale);
}

static void set_ref(struct uf_model *m, const struct uf_tensor **slot, const char *name,
                    const struct uf_tensor *g, int64_t n) {
    if (m->n_cap == 0) uf_fatal(1, "uf_model_ref_grad_%s: no forward ran yet", name);
    if (g->numel != n || g->dtype != UF_F32)
        uf_fatal(1, "uf_model_ref_grad_%s: %s has %lld elements, the last forward needs %lld",
                 name, g->name, (long long)g->numel, (long long)n);
    if (*slot) uf_fatal(1, "uf_model_ref_grad_%s: a reference (%s) is already pending", name, (*slot)->name);
    *slot = g;
}

void uf_model_ref_grad_logits(struct uf_model *m, const struct uf_tensor *g) {
    set_ref(m, &m->ref_glogits, "logits", g, (int64_t)m->B * m->T * m->cfg.vocab);
}

void uf_model_ref_grad_hidden(struct uf_model *m, const struct uf_tensor *g) {
    set_ref(m, &m->ref_ghidden, "hidden", g, (int64_t)m->B * m->T * m->cfg.d_model);
}

void uf_model_set_weff_grad(struct uf_model *m, uf_weff_grad_fn fn, void *ctx,
                            struct uf_tensor *scratch) {
    if (fn) {
        int64_t biggest = 0;
        if (m->lora.rank <= 0) uf_fatal(1, "uf_model_set_weff_grad: the model has no LoRA adapters");
        uf_lora_weff_numel(&m->cfg, m->lora.rank, m->lora.targets, &biggest);
        if (!scratch || scratch->dtype != UF_F32 || scratch->numel < biggest)
            uf_fatal(1, "uf_model_set_weff_grad: the scratch needs %lld f32 elements", (long long)biggest);
    }
    m->weff_fn = fn;
    m->weff_ctx = ctx;
    m->weff_scratch = scratch;
}

int uf_model_backward(struct uf_model *m) { return uf_model_backward_ex(m, 1.0f, NULL, NULL); }

int uf_model_backward_ex(struct uf_model *m, float ce_weight, const struct uf_tensor *g_logits,
                         const struct uf_tensor *g_hidden) {
    if (m->frozen) return uf_fail("uf_model_backward: the model is frozen (forward only)");
    if (m->bf16_base && m->lora.rank <= 0)
        return uf_fail("uf_model_backward: the base is stored as bf16 (UF_MODEL_BF16_BASE) and has "
                       "no gradients; add LoRA adapters (uf_model_lora_init) to train");
    if (m->n_cap == 0) return uf_fail("uf_model_backward: no forward ran yet");
    if (m->weff_fn && m->drop_active)
        return uf_fail("uf_model_backward: the effective-weight gradient hook needs LoRA dropout "
                       "off (m->training = 0)");
    if (m->acts_ckpt != m->checkpointing)
        return uf_fail("uf_model_backward: m->checkpointing changed after the forward; set it "
                       "before uf_model_forward");
    struct uf_device *d = m->dev;
    const struct uf_model_config *c = &m->cfg;
    int B = m->B, T = m->T;
    int64_t N = (int64_t)B * T, D = c->d_model, F = c->d_ff, V = c->vocab;
    int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    int64_t QD = (int64_t)H * hd, KD = (int64_t)KV * hd;
    int gelu = c->act == UF_ACT_GELU_TANH;
    if (g_logits && (g_logits->numel != N * V || g_logits->dtype != UF_F32))
        return uf_fail("uf_model_backward_ex: g_logits %s has %lld elements, expected (N=%lld, V=%lld)",
                       g_logits->name, (long long)g_logits->numel, (long long)N, (long long)V);
    if (g_hidden && (g_hidden->numel != N * D || g_hidden->dtype != UF_F32))
        return uf_fail("uf_model_backward_ex: g_hidden %s has %lld elements, expected (N=%lld, D=%lld)",
                       g_hidden->name, (long long)g_hidden->numel, (long long)N, (long long)D);

    /* head: dlogits = ce_weight * dCE + g_logits + pending */
    struct uf_tensor dl = sl(&m->dlogits, 0, N * V), lg = sl(&m->logits, 0, N * V);
    if (m->has_loss && ce_weight != 0.0f) {
        if (!m->dlogits_valid) {
            struct uf_tensor lr = sl(&m->loss_rows, 0, N), tg = sl(&m->targets, 0, N);
            struct uf_tensor mk = sl(&m->mask, 0, N);
            float scale = m->loss_denom > 0 ? 1.0f / m->loss_denom : 0.0f;
            uf_op_cross_entropy(d, &lg, &tg, &mk, scale, &lr, &dl);
        }
        if (ce_weight != 1.0f) uf_tensor_scale(&dl, ce_weight);
    } else {
        uf_tensor_fill(&dl, 0.0f);
    }
    m->dlogits_valid = 0; /* consumed (scaled / overwritten by now) */
    if (g_logits) uf_tensor_axpby(&dl, 1.0f, g_logits, 1.0f);
    if (m->ref_glogits) uf_tensor_axpby(&dl, 1.0f, m->ref_glogits, 1.0f);
    if (m->ext_glogits_set) {
        struct uf_tensor e = sl(&m->ext_glogits, 0, N * V);
        uf_tensor_axpby(&dl, 1.0f, &e, 1.0f);
    }
    struct uf_tensor dh = sl(&m->dhidden, 0, N * D), hid = sl(&m->hidden, 0, N * D);
    mm_dx(d, &dh, &dl, &m->pv[m->p_head], N, D, V, 1.0f, 0.0f);
    if (m->has_grads && m->trainable[m->p_head]) mm_dw(d, &m->gv[m->p_head], &dl, &hid, N, D, V, 1.0f);
    if (g_hidden) uf_tensor_axpby(&dh, 1.0f, g_hidden, 1.0f);
    if (m->ref_ghidden) uf_tensor_axpby(&dh, 1.0f, m->ref_ghidden, 1.0f);
    if (m->ext_ghidden_set) {
        struct uf_tensor e = sl(&m->ext_ghidden, 0, N * D);
        uf_tensor_axpby(&dh, 1.0f, &e, 1.0f);
    }
    m->ext_glogits_set = m->ext_ghidden_set = 0;
    m->ref_glogits = m->ref_ghidden = NULL;

    struct uf_tensor dres = sl(&m->dres, 0, N * D), dnorm = sl(&m->dnorm, 0, N * D);
    struct uf_tensor xL = sl(&m->resid, c->n_layers, N * D), rf = sl(&m->rstdf, 0, N);
    uf_tensor_fill(&dres, 0.0f);
    uf_op_rmsnorm_backward(d, &xL, &m->pv[m->p_final], &rf, &dh, c->norm_plus_one, &dres,
                           m->has_grads && m->trainable[m->p_final] ? &m->gv[m->p_final] : NULL);

    struct uf_tensor dq = sl(&m->dq, 0, N * QD), da = sl(&m->datt, 0, N * QD);
    struct uf_tensor dk = sl(&m->dk, 0, N * KD), dv = sl(&m->dv, 0, N * KD);
    struct uf_tensor dqp = sl(&m->qpre, 0, N * QD), dkp = sl(&m->kpre, 0, N * KD);
    struct uf_tensor dg = sl(&m->dgate, 0, N * F), du = sl(&m->dup, 0, N * F);
    struct uf_tensor dact = sl(&m->dact, 0, N * F), len = sl(&m->lengths, 0, B);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const int *pi = &m->pidx[l * NK];
        int64_t s = lslot(m, l); /* activation checkpointing: recompute the layer into slot 0 */
        if (m->checkpointing) layer_forward(m, l, &len, B, T);
        struct uf_tensor x = sl(&m->resid, l, N * D), h = sl(&m->resid_mid, s, N * D);
        struct uf_tensor n1 = sl(&m->norm1, s, N * D), r1 = sl(&m->rstd1, s, N);
        struct uf_tensor n2 = sl(&m->norm2, s, N * D), r2 = sl(&m->rstd2, s, N);
        struct uf_tensor q = sl(&m->q, s, N * QD), k = sl(&m->k, s, N * KD);
        struct uf_tensor v = sl(&m->v, s, N * KD), a = sl(&m->att, s, N * QD);
        struct uf_tensor lse = sl(&m->lse, s, N * H);
        struct uf_tensor g = sl(&m->gate, s, N * F), u = sl(&m->up, s, N * F);
        struct uf_tensor act = sl(&m->act, s, N * F);
        struct uf_tensor *gw1 = m->has_grads && m->trainable[pi[UF_P_ATTN_NORM]] ? &m->gv[pi[UF_P_ATTN_NORM]] : NULL;
        struct uf_tensor *gw2 = m->has_grads && m->trainable[pi[UF_P_MLP_NORM]] ? &m->gv[pi[UF_P_MLP_NORM]] : NULL;

        /* MLP: x_out = h + (act(g) * u) Wd^T */
        linear_backward(m, l, UF_P_DOWN, &act, &dres, &dact, 0.0f, N);
        uf_tensor_fill(&dg, 0.0f);
        uf_tensor_fill(&du, 0.0f);
        uf_op_gated_backward(d, &g, &u, &dact, gelu, &dg, &du);
        linear_backward(m, l, UF_P_GATE, &n2, &dg, &dnorm, 0.0f, N);
        linear_backward(m, l, UF_P_UP, &n2, &du, &dnorm, 1.0f, N);
        uf_op_rmsnorm_backward(d, &h, &m->pv[pi[UF_P_MLP_NORM]], &r2, &dnorm, c->norm_plus_one, &dres, gw2);

        /* attention: h = x + attention(rope(q), rope(k), v) Wo^T */
        linear_backward(m, l, UF_P_O, &a, &dres, &da, 0.0f, N);
        uf_tensor_fill(&dq, 0.0f);
        uf_tensor_fill(&dk, 0.0f);
        uf_tensor_fill(&dv, 0.0f);
        uf_op_attention_backward(d, &q, &k, &v, &len, B, T, H, KV, hd, c->sliding_window, &a, &lse,
                                 &da, &dq, &dk, &dv);
        uf_tensor_fill(&dqp, 0.0f);
        uf_tensor_fill(&dkp, 0.0f);
        uf_op_rope_backward(d, &dq, T, H, hd, &m->inv_freq, &dqp);
        uf_op_rope_backward(d, &dk, T, KV, hd, &m->inv_freq, &dkp);
        linear_backward(m, l, UF_P_Q, &n1, &dqp, &dnorm, 0.0f, N);
        linear_backward(m, l, UF_P_K, &n1, &dkp, &dnorm, 1.0f, N);
        linear_backward(m, l, UF_P_V, &n1, &dv, &dnorm, 1.0f, N);
        uf_op_rmsnorm_backward(d, &x, &m->pv[pi[UF_P_ATTN_NORM]], &r1, &dnorm, c->norm_plus_one, &dres, gw1);
    }
    if (m->has_grads && m->trainable[m->p_embed]) {
        struct uf_tensor tok = sl(&m->tokens, 0, N);
        uf_op_embed_backward(d, &tok, &dres, embed_scale(c), &m->gv[m->p_embed]);
    }
    return 0;
}
