/* methods/lwf.c: learning without forgetting as hidden-state distillation (METHODS.md):
 *   L_lwf = beta * (1/n) sum_{t in response tokens} ||h_theta(x)_t - h_theta*(x)_t||^2
 * with h the LAST hidden states (after the final norm, (N, D)), x the user's batch, theta* the
 * frozen teacher (the start weights, uf_trainer_teacher). task_loss hook: after the forward of
 * each micro-batch b the teacher runs on b and the gradient 2 beta (h - h*) / n is added at the
 * hidden states before b's backward. n = the response tokens of the whole step
 * (tr->step_masked, the task CE's denominator; b's own count times the number of micro-batches
 * when the loop did not set it). */
#include <stdlib.h>

#include "methods/common.h"

struct lwf_state {
    struct uf_tensor g, mask; /* (N, D) gradient scratch, (N) response mask */
};

static int lwf_task_loss(struct uf_method *m, struct uf_trainer *tr, const struct uf_train_batch *b) {
    struct lwf_state *st = m->state;
    if (!st) st = m->state = uf_calloc(1, sizeof *st);
    float beta = (float)uf_mcfg_num(m, "beta");
    if (beta == 0.0f || b->n_masked == 0) return 0;
    struct uf_model *teacher = uf_trainer_teacher(tr);
    if (!teacher) return uf_fail("lwf: no teacher model");
    struct uf_model_batch mb;
    uf_mbatch(b, 0, &mb);
    if (uf_model_forward(teacher, &mb) != 0) return uf_fail_prefix("lwf: teacher forward");
    int64_t N = (int64_t)b->B * b->T, D = tr->model->cfg.d_model;
    uf_mensure(&st->g, tr->dev, "lwf.g", N * D);
    uf_mensure(&st->mask, tr->dev, "lwf.mask", N);
    struct uf_tensor mk = uf_mview(&st->mask, "lwf.mask", N, 1);
    uf_tensor_upload(&mk, b->mask);
    struct uf_tensor g = uf_mview(&st->g, "lwf.g", N, D);
    struct uf_tensor h = uf_mview(&tr->model->hidden, "hidden", N, D);
    struct uf_tensor hs = uf_mview(&teacher->hidden, "teacher.hidden", N, D);
    int64_t n = tr->step_masked > 0 ? tr->step_masked : b->n_masked * uf_mn_micro(tr);
    float scale = beta / (float)n;
    uf_clmath_sqdiff(tr->dev, &g, &h, &hs, &mk, NULL, D, scale, &tr->terms, m->slot);
    uf_model_add_grad_hidden(tr->model, &g, 1.0f);
    return 0;
}

static void lwf_free(struct uf_method *m) {
    struct lwf_state *st = m->state;
    if (!st) return;
    if (st->g.buf) uf_tensor_free(&st->g);
    if (st->mask.buf) uf_tensor_free(&st->mask);
    free(st);
    m->state = NULL;
}

static int lwf_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_teacher(tr, "lwf");
}

const struct uf_method_ops uf_method_lwf = {.uses_teacher = 1, .name = "lwf", .init = lwf_init, .task_loss = lwf_task_loss, .free = lwf_free};
