/* methods/safemerge.c: SafeMERGE (Djuhera et al., ICLR 2025 workshop), after training (finish
 * hook), per layer and linear module (q, k, v, o, gate, up, down): the fine-tuning update
 * dW = W_ft - W_safe (under LoRA dW = (alpha/r) B A) is compared with the safety subspace of
 * SafeLoRA, P = V V^T / ||V||_F, V = W_safe - W_0 (tr->theta0, required). Where
 * cos(P dW, dW) < cos (0.35) the module is merged: W = w_ft W_ft + (1 - w_ft) W_safe (0.8 / 0.2),
 * i.e. B <- w_ft B under LoRA. Host math (safeproj.h): cheap under LoRA; full fine-tuning uses
 * the dense O(out in^2) cosine, for small models. */
#include <stdlib.h>

#include "methods/common.h"
#include "methods/safeproj.h"

static void dl(const struct uf_tensor *base, int64_t off, int64_t n, float *host) {
    struct uf_tensor v;
    uf_tensor_view(&v, base, "module", (size_t)off, 1, (int64_t[]){n});
    uf_tensor_download(&v, host);
}

static int safemerge_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_model *md = tr->model;
    if (!tr->theta0 || tr->theta0->numel != md->numel)
        return uf_fail("safemerge: needs the pre-alignment base weights theta_0 (V = W_safe - W_0); "
                       "this run does not know them");
    if (md->lora_merged) return uf_fail("safemerge: the adapters were already merged (list safemerge before any merge)");
    double cthr = uf_mcfg_num(m, "cos");
    float w = (float)uf_mcfg_num(m, "w_ft");
    int lora = md->lora.rank > 0, merged = 0, total = 0;
    const struct uf_tensor *safe = lora ? &md->params : uf_trainer_anchor(tr);
    if (!safe) return uf_fail("safemerge: no start weights");
    float *lp = NULL;
    if (lora) {
        lp = uf_malloc((size_t)md->lora_numel * sizeof *lp);
        uf_model_lora_save(md, lp);
    }
    for (int l = 0; l < md->cfg.n_layers; l++)
        for (int kind = UF_P_Q; kind <= UF_P_DOWN; kind++) {
            if (kind == UF_P_MLP_NORM) continue;
            int pi = md->pidx[l * 12 + kind];
            if (pi < 0) continue;
            const struct uf_param_desc *W = &md->descs[pi];
            int64_t out = W->rows, in = W->cols, n = out * in;
            int ai = lora ? md->lidx[l * 12 + kind] : -1;
            if (lora && ai < 0) continue; /* not adapted: unchanged */
            float *V = uf_malloc((size_t)n * sizeof *V), *w0 = uf_malloc((size_t)n * sizeof *w0);
            dl(safe, W->offset, n, V);
            dl(tr->theta0, W->offset, n, w0);
            for (int64_t k = 0; k < n; k++) V[k] -= w0[k];
            double c;
            if (lora) {
                const struct uf_lora_desc *A = &md->lora_descs[ai], *B = &md->lora_descs[ai + 1];
                c = uf_safeproj_lowrank(V, lp + B->offset, lp + A->offset, out, in, md->lora.rank, NULL);
                if (c < cthr)
                    for (int64_t k = 0; k < B->numel; k++) lp[B->offset + k] *= w;
            } else {
                float *ft = w0; /* reuse: dW = W_ft - W_safe */
                float *sv = uf_malloc((size_t)n * sizeof *sv);
                dl(&md->params, W->offset, n, ft);
                dl(safe, W->offset, n, sv);
                for (int64_t k = 0; k < n; k++) ft[k] -= sv[k];
                c = uf_safeproj_cos_dense(V, ft, out, in);
                free(sv);
                if (c < cthr) {
                    struct uf_tensor pv, sv2;
                    uf_tensor_view(&pv, &md->params, "ft", (size_t)W->offset, 1, (int64_t[]){n});
                    uf_tensor_view(&sv2, safe, "safe", (size_t)W->offset, 1, (int64_t[]){n});
                    uf_tensor_axpby(&pv, 1.0f - w, &sv2, w);
                }
            }
            uf_log(2, "safemerge: layer %d %s cos %.4f%s", l, W->name, c, c < cthr ? " merged" : "");
            merged += c < cthr;
            total++;
            free(V), free(w0);
        }
    if (lora) {
        uf_model_lora_load(md, lp);
        free(lp);
    }
    uf_log(1, "safemerge: merged %d of %d modules", merged, total);
    return 0;
}

static int safemerge_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    if (tr->model->lora.rank <= 0 && uf_mneed_anchor(tr, "safemerge") != 0) return -1; /* W_safe */
    if (!tr->theta0)
        return uf_fail("safemerge: needs the pre-alignment base weights theta_0 (V = W_safe - W_0); "
                       "this run does not know them");
    return 0;
}

const struct uf_method_ops uf_method_safemerge = {.uses_anchor = UF_ANCHOR_FULL_FT, .name = "safemerge", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .init = safemerge_init, .finish = safemerge_finish};
