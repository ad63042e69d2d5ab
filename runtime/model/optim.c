/* optim.c: AdamW with clipping and schedules over the trainable segments (see optim.h). */
#include "model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "core/util.h"

void uf_optim_config_defaults(struct uf_optim_config *c) {
    memset(c, 0, sizeof *c);
    c->lr = 3e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.0f;
    c->max_norm = 1.0f;
    c->schedule = UF_LR_CONSTANT;
}

float uf_optim_lr(const struct uf_optim_config *c, int step) {
    if (c->warmup_steps > 0 && step <= c->warmup_steps)
        return c->lr * (float)step / (float)c->warmup_steps;
    if (c->schedule == UF_LR_CONSTANT || c->total_steps <= c->warmup_steps) return c->lr;
    double p = (double)(step - c->warmup_steps) / (double)(c->total_steps - c->warmup_steps);
    p = p < 0 ? 0 : p > 1 ? 1 : p;
    double lo = (double)c->min_lr_ratio * c->lr, f;
    if (c->schedule == UF_LR_COSINE) f = 0.5 * (1.0 + cos(M_PI * p));
    else f = 1.0 - p;
    return (float)(lo + ((double)c->lr - lo) * f);
}

static int decays(enum uf_param_kind k) {
    return k == UF_P_Q || k == UF_P_K || k == UF_P_V || k == UF_P_O || k == UF_P_GATE ||
           k == UF_P_UP || k == UF_P_DOWN || k == UF_P_LM_HEAD;
}

/* Appends [off, off+n) of (params, grads) with decay wd, merging with the previous segment when
 * contiguous with the same decay. */
static void seg_add(struct uf_optim *o, int64_t *starts, int64_t *lens, float *wds, int64_t off,
                    int64_t n, float wd) {
    if (o->n_seg > 0 && starts[o->n_seg - 1] + lens[o->n_seg - 1] == off && wds[o->n_seg - 1] == wd) {
        lens[o->n_seg - 1] += n;
        return;
    }
    starts[o->n_seg] = off, lens[o->n_seg] = n, wds[o->n_seg] = wd;
    o->n_seg++;
}

int uf_optim_init(struct uf_optim *o, struct uf_model *m, const struct uf_optim_config *c) {
    memset(o, 0, sizeof *o);
    if (!(c->lr >= 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->eps > 0) || !(c->weight_decay >= 0))
        return uf_fail("optimizer: need lr >= 0, 0 <= beta1, beta2 < 1, eps > 0, weight_decay >= 0 "
                       "(got lr=%g beta1=%g beta2=%g eps=%g wd=%g)", (double)c->lr,
                       (double)c->beta1, (double)c->beta2, (double)c->eps, (double)c->weight_decay);
    if (m->frozen) return uf_fail("optimizer: the model is frozen");
    o->cfg = *c;
    o->dev = m->dev;
    int lora = m->lora.rank > 0;
    int cap = lora ? m->n_lora : m->n_params;
    int64_t *starts = uf_calloc((size_t)cap, sizeof *starts), *lens = uf_calloc((size_t)cap, sizeof *lens);
    float *wds = uf_calloc((size_t)cap, sizeof *wds);
    if (lora) {
        seg_add(o, starts, lens, wds, 0, m->lora_numel, c->weight_decay);
    } else {
        for (int i = 0; i < m->n_params; i++) {
            if (!m->trainable[i]) continue;
            const struct uf_param_desc *pd = &m->descs[i];
            seg_add(o, starts, lens, wds, pd->offset, pd->numel, decays(pd->kind) ? c->weight_decay : 0.0f);
        }
    }
    for (int i = 0; i < o->n_seg; i++) o->numel += lens[i];
    if (o->numel == 0) {
        free(starts), free(lens), free(wds);
        return uf_fail("optimizer: no trainable parameters (all frozen)");
    }
    struct uf_tensor *P = uf_model_train_params(m), *G = uf_model_train_grads(m);
    uf_tensor_init(&o->m, o->dev, "adam_m", UF_F32, 1, (int64_t[]){o->numel});
    uf_tensor_init(&o->v, o->dev, "adam_v", UF_F32, 1, (int64_t[]){o->numel});
    uf_tensor_fill(&o->m, 0.0f);
    uf_tensor_fill(&o->v, 0.0f);
    uf_tensor_init(&o->gnorm_sq, o->dev, "gnorm_sq", UF_F32, 1, (int64_t[]){1});
    uf_tensor_fill(&o->gnorm_sq, 0.0f);
    o->bytes = uf_tensor_bytes(&o->m) + uf_tensor_bytes(&o->v);
    o->seg = uf_calloc((size_t)o->n_seg, sizeof *o->seg);
    int64_t mo = 0;
    for (int i = 0; i < o->n_seg; i++) {
        struct uf_optim_segment *s = &o->seg[i];
        int64_t sh[1] = {lens[i]};
        uf_tensor_view(&s->p, P, "seg_p", (size_t)starts[i], 1, sh);
        uf_tensor_view(&s->g, G, "seg_g", (size_t)starts[i], 1, sh);
        uf_tensor_view(&s->m, &o->m, "seg_m", (size_t)mo, 1, sh);
        uf_tensor_view(&s->v, &o->v, "seg_v", (size_t)mo, 1, sh);
        s->weight_decay = wds[i];
        mo += lens[i];
    }
    /* the norm needs only contiguity: fewer, longer reductions */
    o->norm_g = uf_calloc((size_t)o->n_seg, sizeof *o->norm_g);
    for (int i = 0; i < o->n_seg; i++) {
        if (o->n_norm > 0) {
            struct uf_tensor *prev = &o->norm_g[o->n_norm - 1];
            if (prev->offset + (size_t)prev->numel == G->offset + (size_t)starts[i]) {
                int64_t sh[1] = {prev->numel + lens[i]};
                uf_tensor_view(prev, G, "norm_g", prev->offset - G->offset, 1, sh);
                continue;
            }
        }
        int64_t sh[1] = {lens[i]};
        uf_tensor_view(&o->norm_g[o->n_norm++], G, "norm_g", (size_t)starts[i], 1, sh);
    }
    free(starts), free(lens), free(wds);
    o->last_grad_scale = 1.0f;
    return 0;
}

void uf_optim_free(struct uf_optim *o) {
    if (!o->seg) return;
    uf_tensor_free(&o->m);
    uf_tensor_free(&o->v);
    uf_tensor_free(&o->gnorm_sq);
    uf_tensor_free(&o->health);
    free(o->seg);
    free(o->norm_g);
    memset(o, 0, sizeof *o);
}

void uf_optim_step(struct uf_optim *o, float grad_scale) {
    const struct uf_optim_config *c = &o->cfg;
    o->step++;
    o->last_grad_scale = grad_scale;
    if (!(grad_scale > 0)) uf_fatal(1, "uf_optim_step: grad_scale %g must be > 0", (double)grad_scale);
    for (int i = 0; i < o->n_norm; i++) uf_op_sumsq(o->dev, &o->norm_g[i], &o->gnorm_sq, i > 0);
    if (o->guard_terms) uf_op_nonfinite_guard(o->dev, o->guard_terms, &o->gnorm_sq, &o->health, o->step);
    /* the op clips with max_norm / ||g||; scaled gradients s*g are clipped to max_norm when
     * ||g|| > max_norm / s: pass max_norm / s */
    struct uf_adamw_hparams h = {
        .lr = uf_optim_lr(c, o->step), .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
        .max_norm = c->max_norm > 0 ? c->max_norm / grad_scale : 0.0f, .grad_scale = grad_scale,
        .step = o->step, .skip_nonfinite = o->guard_terms && o->guard_skip};
    for (int i = 0; i < o->n_seg; i++) {
        h.weight_decay = o->seg[i].weight_decay;
        uf_op_adamw(o->dev, &o->seg[i].p, &o->seg[i].g, &o->seg[i].m, &o->seg[i].v, &o->gnorm_sq, &h);
    }
}

void uf_optim_guard(struct uf_optim *o, const struct uf_tensor *terms, int skip) {
    if (!o->health.buf) {
        uf_tensor_init(&o->health, o->dev, "nonfinite health", UF_I32, 1, (int64_t[]){3});
        uf_tensor_fill(&o->health, 0);
    }
    o->guard_terms = terms;
    o->guard_skip = skip;
}

struct uf_optim_health uf_optim_read_health(struct uf_optim *o) {
    struct uf_optim_health h = {0, 0, 0};
    if (!o->health.buf) return h;
    int32_t v[3];
    uf_tensor_download(&o->health, v);
    h.bad_steps = v[0], h.first_step = v[1], h.bits = v[2];
    return h;
}

void uf_optim_clip_now(struct uf_optim *o, float max_norm, struct uf_tensor *sq) {
    for (int i = 0; i < o->n_norm; i++) uf_op_sumsq(o->dev, &o->norm_g[i], sq, i > 0);
    for (int i = 0; i < o->n_norm; i++) uf_op_clip_scale(o->dev, &o->norm_g[i], sq, max_norm);
}

void uf_optim_count_clipped(struct uf_optim *o, const struct uf_tensor *sq, float max_norm,
                            struct uf_tensor *count) {
    uf_op_clip_count(o->dev, sq, max_norm, count);
}

float uf_optim_read_grad_norm(struct uf_optim *o) {
    float v;
    uf_tensor_download(&o->gnorm_sq, &v);
    return sqrtf(v) * o->last_grad_scale;
}

void uf_optim_save_state(struct uf_optim *o, float *m_host, float *v_host) {
    uf_tensor_download(&o->m, m_host);
    uf_tensor_download(&o->v, v_host);
}

void uf_optim_load_state(struct uf_optim *o, const float *m_host, const float *v_host) {
    uf_tensor_upload(&o->m, m_host);
    uf_tensor_upload(&o->v, v_host);
}
