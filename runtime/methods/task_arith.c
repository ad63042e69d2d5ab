/* methods/task_arith.c: task arithmetic (Ilharco et al. 2023) over the two task vectors of
 * METHODS.md: the safety vector tau_s = theta_safe - theta_0 and the user's vector
 * tau_u = theta_ft - theta_safe (theta_ft was fine-tuned FROM theta_safe, so tau_u is the user's
 * update alone):
 *   theta = theta_0 + lambda_safe tau_s + lambda_user tau_u   (uf_clmath_task_arith).
 * lambda_safe = lambda_user = 1 gives theta_ft; lambda_safe = 1 gives
 * theta_safe + lambda_user (theta_ft - theta_safe) (= linear with a = lambda_user);
 * lambda_safe = 2, lambda_user = 1 is RESTA's theta_ft + tau_s (Bhardwaj et al. 2024);
 * tau_u = 0 with lambda_safe = 1 gives theta_safe bit for bit. Without theta_0 tau_s = 0 and
 * lambda_safe has no effect. finish hook. */
#include "methods/merge.h"

static int task_arith_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_mmerge mm;
    if (uf_mmerge_begin(tr, "task_arith", 1, &mm) != 0) return -1;
    float ls = (float)uf_mcfg_num(m, "lambda_safe"), lu = (float)uf_mcfg_num(m, "lambda_user");
    uf_log(1, "task_arith: theta_0 + %g tau_safe + %g tau_user%s", ls, lu,
           mm.have_theta0 ? "" : " (no theta_0: tau_safe = 0)");
    uf_clmath_task_arith(tr->dev, mm.ft, mm.base, mm.safe, mm.ft, ls, lu);
    uf_mmerge_end(&mm);
    return 0;
}

static int task_arith_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "task_arith");
}

const struct uf_method_ops uf_method_task_arith = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "task_arith theta_safe copy", .state_bytes = uf_mmerge_state_bytes, .name = "task_arith", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .init = task_arith_init, .finish = task_arith_finish};
