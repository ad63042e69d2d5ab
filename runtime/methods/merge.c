/* methods/merge.c: see merge.h. */
#include "methods/merge.h"

#include <string.h>

int uf_mmerge_begin(struct uf_trainer *tr, const char *method, int uses_theta0, struct uf_mmerge *mm) {
    memset(mm, 0, sizeof *mm);
    struct uf_model *m = tr->model;
    if (tr->theta0 && tr->theta0->numel != m->numel)
        return uf_fail("%s: theta_0 has %lld elements but the model %lld", method,
                       (long long)tr->theta0->numel, (long long)m->numel);
    if (m->lora.rank > 0) {
        /* the base is still theta_safe: keep a copy, then fold the adapters in */
        uf_tensor_init(&mm->safe_copy, tr->dev, "merge.theta_safe", UF_F32, 1, (int64_t[]){m->numel});
        uf_tensor_copy(&mm->safe_copy, &m->params);
        mm->safe = &mm->safe_copy;
        if (!m->lora_merged && uf_model_lora_merge(m) != 0) {
            uf_tensor_free(&mm->safe_copy);
            return uf_fail_prefix("%s: merging the LoRA adapters", method);
        }
    } else {
        mm->safe = uf_trainer_anchor(tr);
        if (!mm->safe) return uf_fail("%s: no start weights (uf_trainer_anchor failed)", method);
    }
    mm->ft = &m->params;
    mm->have_theta0 = tr->theta0 != NULL;
    mm->base = tr->theta0 ? tr->theta0 : mm->safe;
    if (!tr->theta0 && uses_theta0)
        uf_log(1, "%s: no pre-alignment weights theta_0 in this run: merging with theta_safe as the base "
                  "(tau_1 = 0, tau_2 = theta_ft - theta_safe)", method);
    return 0;
}

void uf_mmerge_end(struct uf_mmerge *mm) {
    if (mm->safe_copy.buf) uf_tensor_free(&mm->safe_copy);
}

size_t uf_mmerge_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    (void)cfg;
    return in->lora_rank > 0 ? uf_mplan_params_bytes(in) : 0;
}
