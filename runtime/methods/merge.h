/* methods/merge.h: the vectors the merging methods combine (finish hook), shared by magmax.c,
 * linear.c, task_arith.c, ties.c (an internal header).
 *   theta_ft   = the fine-tuned weights (tr->model->params; under LoRA the adapters are first
 *                merged into the base, W + (alpha/r) B A, and the model stays merged);
 *   theta_safe = the weights at the start of the run (full fine-tuning: uf_trainer_anchor; under
 *                LoRA: the frozen base, i.e. the adapters' start B = 0);
 *   theta_0    = tr->theta0, the pre-alignment weights, when the run knows them. Without them
 *                the base is theta_safe (tau_1 = 0, tau_2 = theta_ft - theta_safe), which the
 *                method files state per method.
 * The merged weights are written into tr->model->params. */
#ifndef UF_METHODS_MERGE_H
#define UF_METHODS_MERGE_H

#include "methods/common.h"

struct uf_mmerge {
    struct uf_tensor *ft;          /* = model->params (written with the result) */
    const struct uf_tensor *safe;  /* theta_safe */
    const struct uf_tensor *base;  /* theta_0, or theta_safe when unknown */
    int have_theta0;
    struct uf_tensor safe_copy;    /* owned copy of theta_safe under LoRA */
};
/* uses_theta0: log the fallback when theta_0 is unknown */
int uf_mmerge_begin(struct uf_trainer *tr, const char *method, int uses_theta0, struct uf_mmerge *mm);
void uf_mmerge_end(struct uf_mmerge *mm);
/* state_bytes of the merges: the copy of theta_safe their finish hook makes under LoRA */
size_t uf_mmerge_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg);

#endif
