/* methods/ties.c: TIES merging (Yadav et al. 2023) of tau_1 = theta_safe - theta_0 and
 * tau_2 = theta_ft - theta_0: trim each to its top `density` share by magnitude, elect the sign
 * of the sum, average the kept entries agreeing with it; theta = theta_0 + lambda * merged
 * (uf_clmath_ties; the trim thresholds are found on the host). Without theta_0, tau_1 = 0 and
 * this is theta_safe + lambda * trim(theta_ft - theta_safe). finish hook. */
#include "methods/merge.h"

static int ties_finish(struct uf_method *m, struct uf_trainer *tr) {
    float density = (float)uf_mcfg_num(m, "density", 0.2);
    if (!(density > 0 && density <= 1)) return uf_fail("ties: density %g must be in (0, 1]", density);
    struct uf_mmerge mm;
    if (uf_mmerge_begin(tr, "ties", 1, &mm) != 0) return -1;
    uf_clmath_ties(tr->dev, mm.ft, mm.base, mm.safe, mm.ft, density, (float)uf_mcfg_num(m, "lambda", 1.0));
    uf_mmerge_end(&mm);
    return 0;
}

static int ties_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "ties");
}

const struct uf_method_ops uf_method_ties = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "ties theta_safe copy", .state_bytes = uf_mmerge_state_bytes, .name = "ties", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .init = ties_init, .finish = ties_finish};
