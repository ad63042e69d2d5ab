/* methods/task_arith.c: task arithmetic (Ilharco et al. 2023):
 *   theta = theta_0 + lambda (tau_1 + tau_2) = (1 - 2 lambda) theta_0 + lambda theta_safe + lambda theta_ft.
 * Without theta_0: theta = theta_safe + lambda (theta_ft - theta_safe). finish hook. */
#include "methods/merge.h"

static int task_arith_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_mmerge mm;
    if (uf_mmerge_begin(tr, "task_arith", 1, &mm) != 0) return -1;
    float l = (float)uf_mcfg_num(m, "lambda", 1.0);
    if (mm.have_theta0)
        uf_clmath_lincomb(tr->dev, mm.ft, l, mm.safe, l, mm.ft, 1.0f - 2.0f * l, mm.base);
    else
        uf_clmath_lincomb(tr->dev, mm.ft, 1.0f - l, mm.safe, l, mm.ft, 0.0f, NULL);
    uf_mmerge_end(&mm);
    return 0;
}

static int task_arith_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "task_arith");
}

const struct uf_method_ops uf_method_task_arith = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "task_arith theta_safe copy", .state_bytes = uf_mmerge_state_bytes, .name = "task_arith", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .init = task_arith_init, .finish = task_arith_finish};
