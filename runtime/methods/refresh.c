/* methods/refresh.c: Refresh learning (Wang et al. ICLR 2024) on top of DER++, simplified:
 * each step, with g the task gradient of the step's micro-batches at theta (the loop's CE plus
 * the task_loss hooks of the other methods),
 *   1. unlearn: F <- 0.9 F + 0.1 g^2 (a running diagonal Fisher, F_0 = 0), then
 *      theta <- theta + gamma * g / (F / mean(F) + 1),  gamma = unlearn_lr * lr(step),
 *      repeated unlearn_steps times (each later repeat at the new weights);
 *   2. relearn: the gradient is zeroed and recomputed at the unlearned weights: the task CE of
 *      the saved micro-batches (one token mean over all of them, as the loop weights them; the
 *      other methods' task_loss hooks included) plus DER++ on the buffer (alpha, beta, "sum"
 *      reduction, all logits);
 *   the optimizer then steps from the unlearned weights with this gradient.
 * The Fisher-scaled ascent moves low-Fisher coordinates by up to gamma |g| and high-Fisher ones
 * less; the paper's Langevin noise term is left out. extra hook; the task_loss hook keeps host
 * copies of the step's micro-batches. uf_methods_check refuses it together with er / der /
 * derpp (it already replays) and requires it to be the only method with an extra hook before
 * it. Its loss term is DER++'s. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "model/optim.h"
#include "methods/common.h"

struct refresh_state {
    struct uf_dataset buf;
    struct uf_mder_scratch s;
    struct uf_tensor F, fsum; /* (P) running Fisher, (1) its sum */
    int nb, cap;
    struct uf_train_batch *saved;
    int64_t saved_step;
};

static void batch_copy(const struct uf_train_batch *src, struct uf_train_batch *dst) {
    size_t n = (size_t)src->B * (size_t)src->T;
    *dst = *src;
    dst->tokens = uf_malloc(n * sizeof *dst->tokens);
    dst->targets = uf_malloc(n * sizeof *dst->targets);
    dst->mask = uf_malloc(n * sizeof *dst->mask);
    dst->lengths = uf_malloc((size_t)src->B * sizeof *dst->lengths);
    dst->rows = uf_malloc((size_t)src->B * sizeof *dst->rows);
    memcpy(dst->tokens, src->tokens, n * sizeof *dst->tokens);
    memcpy(dst->targets, src->targets, n * sizeof *dst->targets);
    memcpy(dst->mask, src->mask, n * sizeof *dst->mask);
    memcpy(dst->lengths, src->lengths, (size_t)src->B * sizeof *dst->lengths);
    if (src->rows) memcpy(dst->rows, src->rows, (size_t)src->B * sizeof *dst->rows);
    else memset(dst->rows, 0, (size_t)src->B * sizeof *dst->rows);
}

static void saved_clear(struct refresh_state *st) {
    for (int i = 0; i < st->nb; i++) uf_train_batch_free(&st->saved[i]);
    st->nb = 0;
}

static int refresh_init(struct uf_method *m, struct uf_trainer *tr) {
    if (tr->hp.clip_on && tr->hp.clip > 0) /* the relearn gradient replaces the clipped task one */
        return uf_fail("refresh: recomputes the step's gradient, so clip_on = \"task\" cannot apply; "
                       "use clip_on = \"total\" (or clip = 0)");
    if (uf_mneed_teacher(tr, "refresh") != 0) return -1;
    struct refresh_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    st->saved_step = -1;
    if (uf_mcfg_dataset(tr, m, "buffer", &st->buf) != 0) return -1;
    int64_t P = uf_model_train_params(tr->model)->numel;
    uf_tensor_init(&st->F, tr->dev, "refresh.F", UF_F32, 1, (int64_t[]){P});
    uf_tensor_fill(&st->F, 0.0f);
    uf_tensor_init(&st->fsum, tr->dev, "refresh.fsum", UF_F32, 1, (int64_t[]){1});
    return 0;
}

static int refresh_task_loss(struct uf_method *m, struct uf_trainer *tr, const struct uf_train_batch *b) {
    struct refresh_state *st = m->state;
    if (st->saved_step != tr->step) saved_clear(st), st->saved_step = tr->step;
    if (st->nb == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 4;
        st->saved = uf_realloc(st->saved, (size_t)st->cap * sizeof *st->saved);
    }
    batch_copy(b, &st->saved[st->nb++]);
    return 0;
}

/* zero grads, then the task gradient of the saved micro-batches at the current weights */
static int task_gradient(struct uf_method *self, struct uf_trainer *tr, struct refresh_state *st) {
    uf_model_zero_grad(tr->model);
    int64_t masked = 0;
    for (int i = 0; i < st->nb; i++) masked += st->saved[i].n_masked;
    for (int i = 0; i < st->nb; i++) {
        const struct uf_train_batch *b = &st->saved[i];
        struct uf_model_batch mb;
        uf_mbatch(b, 1, &mb);
        mb.loss_denom = (float)UF_MAX(masked, (int64_t)1); /* the loop's weighting: one token mean */
        if (uf_model_forward(tr->model, &mb) != 0) return -1;
        for (int k = 0; k < tr->n_methods; k++) {
            struct uf_method *o = &tr->methods[k];
            if (o != self && o->ops->task_loss && o->ops->task_loss(o, tr, b) != 0) return -1;
        }
        if (uf_model_backward(tr->model) != 0) return -1;
    }
    return 0;
}

/* the learning rate of this step on the recipe's schedule (warmup < 1: a share of the steps) */
static float step_lr(const struct uf_trainer *tr) {
    struct uf_optim_config c;
    uf_optim_config_defaults(&c);
    c.lr = tr->hp.lr;
    c.schedule = (enum uf_lr_schedule)tr->hp.schedule;
    c.total_steps = (int)tr->total_steps;
    c.warmup_steps = tr->hp.warmup < 1 ? (int)(tr->hp.warmup * (float)tr->total_steps + 0.5f) : (int)tr->hp.warmup;
    return uf_optim_lr(&c, (int)tr->step + 1);
}

static int refresh_extra(struct uf_method *m, struct uf_trainer *tr) {
    struct refresh_state *st = m->state;
    if (st->saved_step != tr->step || st->nb == 0) return 0; /* no task batch this step */
    struct uf_tensor *p = uf_model_train_params(tr->model), *g = uf_model_train_grads(tr->model);
    float lr = step_lr(tr);
    float gamma = (float)uf_mcfg_num(m, "unlearn_lr") * lr;
    int steps = (int)uf_mcfg_num(m, "unlearn_steps");
    for (int s = 0; s < steps; s++) {
        if (s > 0 && task_gradient(m, tr, st) != 0) return uf_fail_prefix("refresh: unlearning gradient");
        uf_tensor_scale(&st->F, 0.9f);
        uf_clmath_sq_accum(tr->dev, &st->F, g, 0.1f);
        uf_op_sum(tr->dev, &st->F, &st->fsum, 0);
        uf_clmath_precond_step(tr->dev, p, g, &st->F, &st->fsum, gamma, 1.0f);
    }
    if (steps > 0 && task_gradient(m, tr, st) != 0) return uf_fail_prefix("refresh: relearning gradient");
    saved_clear(st);
    float alpha = (float)uf_mcfg_num(m, "alpha"), beta = (float)uf_mcfg_num(m, "beta");
    int rows = uf_mcfg_rows(tr, m), rc = 0;
    struct uf_mdraw d;
    if (alpha != 0.0f) {
        if (uf_mdraw_make(tr, &st->buf, rows, &d) != 0) return uf_fail_prefix("refresh");
        rc = uf_mder_replay(tr, &st->s, &d, alpha, 1, 0, m->slot);
        uf_mdraw_free(&d);
    }
    if (rc == 0 && beta != 0.0f) {
        if (uf_mdraw_make(tr, &st->buf, rows, &d) != 0) return uf_fail_prefix("refresh");
        for (int c = 0; c < d.n && rc == 0; c++)
            if (d.n_masked > 0)
                rc = uf_mce_backprop(tr, &d.b[c], beta * (float)d.b[c].n_masked / (float)d.n_masked, m->slot);
        uf_mdraw_free(&d);
    }
    return rc;
}

static void refresh_free(struct uf_method *m) {
    struct refresh_state *st = m->state;
    if (!st) return;
    saved_clear(st);
    free(st->saved);
    uf_dataset_free(&st->buf);
    uf_mder_scratch_free(&st->s);
    if (st->F.buf) uf_tensor_free(&st->F);
    if (st->fsum.buf) uf_tensor_free(&st->fsum);
    free(st);
    m->state = NULL;
}

static int refresh_state(struct uf_method *m, struct uf_method_state *out) {
    struct refresh_state *st = m->state;
    out[0] = (struct uf_method_state){"fisher", &st->F, NULL, 0}; /* fsum is recomputed from it */
    return 1;
}

static size_t refresh_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    (void)cfg;
    return uf_mplan_trainable_bytes(in) + 4; /* F, fsum */
}

const struct uf_method_ops uf_method_refresh = {.uses_teacher = 1, .state_name = "refresh running Fisher", .state_bytes = refresh_state_bytes, .name = "refresh", .recomputes_grad = 1, .state = refresh_state,
                                                .init = refresh_init,
                                                .task_loss = refresh_task_loss,
                                                .extra = refresh_extra, .free = refresh_free};
