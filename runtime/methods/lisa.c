/* methods/lisa.c: Lisa (Huang et al. NeurIPS 2024), bi-state optimisation. On the schedule of
 * uf_alternate {k_a = align_steps, k_b = user_steps} (steps 0-based: the first align_steps steps
 * of each cycle train on the alignment data, the next user_steps on the user data) the batch
 * hook replaces every micro-batch of an alignment step by as many rows of `data` (its own
 * seeded epochs). The grad hook adds the proximal term
 *   (rho/2) ||theta - theta_switch||^2,  gradient rho (theta - theta_switch),
 * where theta_switch = the weights at the start of the step where the source last changed (the
 * start weights until the first switch). */
#include <stdlib.h>

#include "methods/common.h"

struct lisa_state {
    struct uf_dataset data;
    struct uf_alternate sched;
    struct uf_epoch_iter it;
    struct uf_tensor anchor; /* (P) theta_switch */
    int64_t last_step;       /* step whose first micro-batch was seen */
};

static int lisa_init(struct uf_method *m, struct uf_trainer *tr) {
    struct lisa_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    st->sched.k_a = (int64_t)uf_mcfg_num(m, "align_steps");
    st->sched.k_b = (int64_t)uf_mcfg_num(m, "user_steps");
    if (st->sched.k_a < 0 || st->sched.k_b < 0 || st->sched.k_a + st->sched.k_b == 0)
        return uf_fail("lisa: align_steps (%lld) and user_steps (%lld) must be >= 0, not both 0",
                       (long long)st->sched.k_a, (long long)st->sched.k_b);
    if (uf_mcfg_dataset(tr, m, "data", &st->data) != 0) return -1;
    uf_epoch_iter_init(&st->it, st->data.n, tr->hp.seed ^ 0x4c697361ull, 1);
    struct uf_tensor *p = uf_model_train_params(tr->model);
    uf_tensor_init(&st->anchor, tr->dev, "lisa.anchor", UF_F32, 1, (int64_t[]){p->numel});
    uf_tensor_copy(&st->anchor, p);
    st->last_step = -1;
    return 0;
}

static int lisa_batch(struct uf_method *m, struct uf_trainer *tr, struct uf_train_batch *b) {
    struct lisa_state *st = m->state;
    if (tr->step != st->last_step) { /* first micro-batch of this step */
        st->last_step = tr->step;
        if (uf_alternate_is_switch(&st->sched, tr->step))
            uf_tensor_copy(&st->anchor, uf_model_train_params(tr->model));
    }
    if (uf_alternate_source(&st->sched, tr->step) != 0) return 0; /* user data */
    int n = b->B;
    int64_t *idx = uf_malloc((size_t)n * sizeof *idx);
    uf_epoch_iter_next_full(&st->it, idx, n);
    struct uf_train_batch nb;
    int rc = uf_trainer_make_batch(tr, &st->data, idx, n, &nb);
    free(idx);
    if (rc != 0) return uf_fail_prefix("lisa: alignment batch");
    uf_train_batch_free(b);
    *b = nb;
    return 0;
}

static int lisa_grad(struct uf_method *m, struct uf_trainer *tr) {
    struct lisa_state *st = m->state;
    float rho = (float)uf_mcfg_num(m, "rho");
    uf_clmath_penalty(tr->dev, uf_model_train_grads(tr->model), uf_model_train_params(tr->model),
                      &st->anchor, NULL, rho, &tr->terms, m->slot);
    return 0;
}

static int lisa_state(struct uf_method *m, struct uf_method_state *out) {
    struct lisa_state *st = m->state;
    out[0] = (struct uf_method_state){"anchor", &st->anchor, NULL, 0};
    out[1] = (struct uf_method_state){"last_step", NULL, &st->last_step, sizeof st->last_step};
    out[2] = (struct uf_method_state){"data.epoch", NULL, &st->it.epoch, sizeof st->it.epoch};
    out[3] = (struct uf_method_state){"data.pos", NULL, &st->it.pos, sizeof st->it.pos};
    out[4] = (struct uf_method_state){"data.order", NULL, st->it.order,
                                      (size_t)st->it.n * sizeof *st->it.order};
    return 5;
}

static void lisa_free(struct uf_method *m) {
    struct lisa_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->data);
    uf_epoch_iter_free(&st->it);
    if (st->anchor.buf) uf_tensor_free(&st->anchor);
    free(st);
    m->state = NULL;
}

static size_t lisa_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    (void)cfg;
    return uf_mplan_trainable_bytes(in);
}

const struct uf_method_ops uf_method_lisa = {.state_name = "lisa theta_switch", .state_bytes = lisa_state_bytes, .name = "lisa", .state = lisa_state,
                                             .init = lisa_init, .batch = lisa_batch,
                                             .grad = lisa_grad, .free = lisa_free};
