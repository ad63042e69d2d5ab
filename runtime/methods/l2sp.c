/* methods/l2sp.c: L2-SP, (lambda/2) ||theta - theta*||^2 over the trainable vector (EWC with
 * F = 1); theta* = the weights at the start of training (uf_trainer_anchor). grad hook only. */
#include "methods/common.h"

static int l2sp_grad(struct uf_method *m, struct uf_trainer *tr) {
    float lambda = (float)uf_mcfg_num(m, "lambda");
    struct uf_tensor *anchor = uf_trainer_anchor(tr);
    if (!anchor) return uf_fail("l2sp: no anchor weights (uf_trainer_anchor failed)");
    uf_clmath_penalty(tr->dev, uf_model_train_grads(tr->model), uf_model_train_params(tr->model),
                      anchor, NULL, lambda, &tr->terms, m->slot);
    return 0;
}

static int l2sp_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "l2sp");
}

const struct uf_method_ops uf_method_l2sp = {.uses_anchor = UF_ANCHOR_ALWAYS, .name = "l2sp", .init = l2sp_init, .grad = l2sp_grad};
