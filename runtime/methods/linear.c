/* methods/linear.c: linear merge / WiSE-FT (Wortsman et al. 2022):
 *   theta = (1 - a) theta_safe + a theta_ft   (theta_0 is not used). finish hook. */
#include "methods/merge.h"

static int linear_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_mmerge mm;
    if (uf_mmerge_begin(tr, "linear", 0, &mm) != 0) return -1;
    float a = (float)uf_mcfg_num(m, "a");
    uf_clmath_lincomb(tr->dev, mm.ft, 1.0f - a, mm.safe, a, mm.ft, 0.0f, NULL);
    uf_mmerge_end(&mm);
    return 0;
}

static int linear_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    return uf_mneed_anchor(tr, "linear");
}

const struct uf_method_ops uf_method_linear = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "linear theta_safe copy", .state_bytes = uf_mmerge_state_bytes, .name = "linear", .rewrites_weights = 1, .needs_f32_base = 1, .init = linear_init, .finish = linear_finish};
