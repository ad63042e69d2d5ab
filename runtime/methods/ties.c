/* methods/ties.c: TIES merging (Yadav et al. 2023) of the two task vectors of METHODS.md: the
 * safety vector tau_s = theta_safe - theta_0 and the user's vector tau_u = theta_ft - theta_safe
 * (theta_ft was fine-tuned FROM theta_safe). Trim each to its top share by magnitude
 * (`density_safe`, `density`), scale (lambda_safe tau_s, lambda_user tau_u), elect the sign of
 * their sum per entry, disjoint mean m of the kept entries agreeing with it; theta = theta_0 + m
 * (uf_clmath_ties; the trim thresholds are found on the host). With lambda_safe = lambda_user = l
 * this is the paper's theta_0 + l * merged. density_safe = 1 (default) keeps the provider's
 * alignment whole, so tau_u = 0 with lambda_safe = 1 gives theta_safe bit for bit. Without
 * theta_0 tau_s = 0 and this is theta_safe + lambda_user * trim(tau_u). finish hook. */
#include "methods/merge.h"

static int ties_finish(struct uf_method *m, struct uf_trainer *tr) {
    float du = (float)uf_mcfg_num(m, "density"), ds = (float)uf_mcfg_num(m, "density_safe");
    if (!(du > 0 && du <= 1)) return uf_fail("ties: density %g must be in (0, 1]", du);
    if (!(ds > 0 && ds <= 1)) return uf_fail("ties: density_safe %g must be in (0, 1]", ds);
    struct uf_mmerge mm;
    if (uf_mmerge_begin(tr, "ties", 1, &mm) != 0) return -1;
    float ls = (float)uf_mcfg_num(m, "lambda_safe"), lu = (float)uf_mcfg_num(m, "lambda_user");
    uf_log(1, "ties: tau_safe (density %g, x %g) and tau_user (density %g, x %g)%s", ds, ls, du, lu,
           mm.have_theta0 ? "" : " (no theta_0: tau_safe = 0)");
    uf_clmath_ties(tr->dev, mm.ft, mm.base, mm.safe, mm.ft, ds, du, ls, lu);
    uf_mmerge_end(&mm);
    return 0;
}

static int ties_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "ties");
}

const struct uf_method_ops uf_method_ties = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "ties theta_safe copy", .state_bytes = uf_mmerge_state_bytes, .name = "ties", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .init = ties_init, .finish = ties_finish};
