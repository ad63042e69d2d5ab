/* methods/magmax.c: MagMax (Marczak et al. 2024) with the two task vectors of METHODS.md:
 *   tau_1 = theta_safe - theta_0, tau_2 = theta_ft - theta_0; per parameter the entry of larger
 *   magnitude: theta = theta_0 + lambda * (|tau_1| >= |tau_2| ? tau_1 : tau_2).
 * Without theta_0 (merge.h) tau_1 = 0 and this is theta_safe + lambda (theta_ft - theta_safe).
 * finish hook. */
#include "methods/merge.h"

static int magmax_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_mmerge mm;
    if (uf_mmerge_begin(tr, "magmax", 1, &mm) != 0) return -1;
    uf_clmath_magmax(tr->dev, mm.ft, mm.base, mm.safe, mm.ft, (float)uf_mcfg_num(m, "lambda"));
    uf_mmerge_end(&mm);
    return 0;
}

static int magmax_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "magmax");
}

const struct uf_method_ops uf_method_magmax = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "magmax theta_safe copy", .state_bytes = uf_mmerge_state_bytes, .name = "magmax", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .init = magmax_init, .finish = magmax_finish};
