/* methods/ema.c: parameter-space exponential moving average of the trainable weights (Kim et al.
 * 2025, "Rethinking Safety in LLM Fine-tuning: An Optimization Perspective", arXiv 2508.12531),
 * used as the final model:
 *   theta_ema_0 = theta*  (the weights at the start of fine-tuning; 0 with bias_correction)
 *   theta_ema_k = decay theta_ema_{k-1} + (1 - decay) theta_k     after optimizer step k = 1..K
 *   final weights = theta_ema_K  (with bias_correction: theta_ema_K / (1 - decay^K), the average
 *                                 of the run's iterates alone; K = 0 keeps the weights)
 * Warm-started at theta*, theta_ema_K = decay^K theta* + (1 - decay) sum_k decay^(K-k) theta_k:
 * the share decay^K of the aligned weights stays in the final model. decay = 0 is plain
 * fine-tuning bit for bit, decay = 1 returns theta* bit for bit.
 * Hooks: the update after step k runs in the first batch hook of step k + 1 (the weights are
 * theta_k there: no method has moved them yet in that step) and, for the last step, in the finish
 * hook, which then writes theta_ema into the trainable weights (rewrites_weights). theta_ema is
 * in checkpoints (the state hook): a resumed run continues the same average bit for bit. On the
 * device (uf_clmath_lincomb), no host sync. Memory: one trainable vector. */
#include <math.h>
#include <stdlib.h>

#include "methods/common.h"

struct ema_state {
    struct uf_tensor ema; /* (P) theta_ema */
    int64_t last_step;    /* the step whose first batch hook ran the update */
};

static int ema_init(struct uf_method *m, struct uf_trainer *tr) {
    struct ema_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    double d = uf_mcfg_num(m, "decay");
    int bc = uf_mcfg_bool(m, "bias_correction");
    if (!(d >= 0 && d <= 1) || (bc && d >= 1))
        return uf_fail("ema: decay %g must be in [0, 1] (in [0, 1) with bias_correction)", d);
    struct uf_tensor *p = uf_model_train_params(tr->model);
    uf_tensor_init(&st->ema, tr->dev, "ema.theta", UF_F32, 1, (int64_t[]){p->numel});
    if (bc) uf_tensor_fill(&st->ema, 0.0f);
    else uf_tensor_copy(&st->ema, p);
    st->last_step = -1;
    return 0;
}

static void ema_update(struct uf_method *m, struct uf_trainer *tr) {
    struct ema_state *st = m->state;
    float d = (float)uf_mcfg_num(m, "decay");
    uf_clmath_lincomb(tr->dev, &st->ema, d, &st->ema, 1.0f - d, uf_model_train_params(tr->model), 0.0f, NULL);
}

static int ema_batch(struct uf_method *m, struct uf_trainer *tr, struct uf_train_batch *b) {
    (void)b;
    struct ema_state *st = m->state;
    if (tr->step == st->last_step) return 0; /* a later micro-batch of the same step */
    st->last_step = tr->step;
    if (tr->step > 0) ema_update(m, tr); /* theta_{step}, the weights after the previous step */
    return 0;
}

static int ema_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct ema_state *st = m->state;
    struct uf_tensor *p = uf_model_train_params(tr->model);
    if (tr->step > 0) ema_update(m, tr); /* theta_K */
    if (uf_mcfg_bool(m, "bias_correction")) {
        double corr = 1.0 - pow(uf_mcfg_num(m, "decay"), (double)tr->step);
        if (tr->step == 0 || corr <= 0) return 0; /* nothing averaged: the weights stay */
        uf_tensor_copy(p, &st->ema);
        uf_tensor_scale(p, (float)(1.0 / corr));
        return 0;
    }
    uf_tensor_copy(p, &st->ema);
    return 0;
}

static int ema_state_fn(struct uf_method *m, struct uf_method_state *out) {
    struct ema_state *st = m->state;
    out[0] = (struct uf_method_state){"theta_ema", &st->ema, NULL, 0};
    return 1;
}

static void ema_free(struct uf_method *m) {
    struct ema_state *st = m->state;
    if (!st) return;
    if (st->ema.buf) uf_tensor_free(&st->ema);
    free(st);
    m->state = NULL;
}

static size_t ema_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    (void)cfg;
    return uf_mplan_trainable_bytes(in);
}

const struct uf_method_ops uf_method_ema = {
    .name = "ema", .rewrites_weights = 1, .state_name = "ema theta_ema",
    .state_bytes = ema_state_bytes, .state = ema_state_fn, .init = ema_init, .batch = ema_batch,
    .finish = ema_finish, .free = ema_free};
