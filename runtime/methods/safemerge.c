/* methods/safemerge.c: SafeMERGE (Djuhera et al., arXiv 2503.17239), after training (finish
 * hook), per layer and linear module (q, k, v, o, gate, up, down). It needs a separately trained
 * SAFETY LoRA (`safety_lora`: a PEFT adapter folder, trained on safety data from theta_safe) with
 * update dW_s = (alpha_s / r_s) B_s A_s. The fine-tuning update dW_f = W_ft - W_safe (under LoRA
 * (alpha/r) B A) is compared with the safety subspace of SafeLoRA, P = V V^T / ||V||_F,
 * V = W_safe - W_0 (tr->theta0, required). Where cos(P dW_f, dW_f) < cos (0.35) the module
 * becomes the linear merge of the fine-tuned and the safety model:
 *     W = W_safe + w_ft dW_f + (1 - w_ft) dW_s        (w_ft = 0.8)
 * elsewhere it keeps W_safe + dW_f. Under LoRA the adapters are folded into the base (B <- w_ft B
 * on the merged modules, then W + (alpha/r) B A; the model stays merged, as after the merges),
 * then (1 - w_ft) dW_s is added. Host math (safeproj.h): cheap under LoRA; full fine-tuning uses
 * the dense O(out in^2) cosine, for small models. dW_s is built densely on the host (one host
 * copy of the weights). */
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"
#include "methods/safeproj.h"
#include "model/hf.h"

struct safemerge_state {
    struct uf_hf_lora safety;
};

static void dl(const struct uf_tensor *base, int64_t off, int64_t n, float *host) {
    struct uf_tensor v;
    uf_tensor_view(&v, base, "module", (size_t)off, 1, (int64_t[]){n});
    uf_tensor_download(&v, host);
}

static void ul(struct uf_tensor *base, int64_t off, int64_t n, const float *host) {
    struct uf_tensor v;
    uf_tensor_view(&v, base, "module", (size_t)off, 1, (int64_t[]){n});
    uf_tensor_upload(&v, host);
}

static int safemerge_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_model *md = tr->model;
    struct safemerge_state *st = m->state;
    if (!tr->theta0 || tr->theta0->numel != md->numel)
        return uf_fail("safemerge: needs the pre-alignment base weights theta_0 (V = W_safe - W_0); "
                       "this run does not know them");
    if (md->lora_merged) return uf_fail("safemerge: the adapters were already merged (list safemerge before any merge)");
    double cthr = uf_mcfg_num(m, "cos");
    float w = (float)uf_mcfg_num(m, "w_ft");
    int lora = md->lora.rank > 0, merged = 0, total = 0;
    const struct uf_tensor *safe = lora ? &md->params : uf_trainer_anchor(tr);
    if (!safe) return uf_fail("safemerge: no start weights");
    /* dW_s of every module, dense (canonical layout) */
    float *dws = uf_calloc((size_t)md->numel, sizeof *dws);
    uf_hf_lora_merge(&md->cfg, dws, &st->safety);
    float *lp = NULL;
    if (lora) {
        lp = uf_malloc((size_t)md->lora_numel * sizeof *lp);
        uf_model_lora_save(md, lp);
    }
    int nmod = md->cfg.n_layers * 12;
    char *take = uf_calloc((size_t)nmod, 1);
    for (int l = 0; l < md->cfg.n_layers; l++)
        for (int kind = UF_P_Q; kind <= UF_P_DOWN; kind++) {
            if (kind == UF_P_MLP_NORM) continue;
            int pi = md->pidx[l * 12 + kind];
            if (pi < 0) continue;
            const struct uf_param_desc *W = &md->descs[pi];
            int64_t out = W->rows, in = W->cols, n = out * in;
            int ai = lora ? md->lidx[l * 12 + kind] : -1;
            int has_s = (st->safety.targets & UF_LORA_TARGET(kind)) != 0;
            if (lora && ai < 0 && !has_s) continue; /* neither adapter touches it */
            float *V = uf_malloc((size_t)n * sizeof *V), *w0 = uf_malloc((size_t)n * sizeof *w0);
            dl(safe, W->offset, n, V);
            dl(tr->theta0, W->offset, n, w0);
            for (int64_t k = 0; k < n; k++) V[k] -= w0[k];
            double c;
            if (lora && ai >= 0) {
                const struct uf_lora_desc *A = &md->lora_descs[ai], *B = &md->lora_descs[ai + 1];
                c = uf_safeproj_lowrank(V, lp + B->offset, lp + A->offset, out, in, md->lora.rank, NULL);
                if (c < cthr)
                    for (int64_t k = 0; k < B->numel; k++) lp[B->offset + k] *= w;
            } else if (lora) {
                c = 1.0; /* not fine-tuned (dW_f = 0): kept */
            } else {
                float *ft = w0; /* reuse: dW_f = W_ft - W_safe */
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
                    uf_tensor_axpby(&pv, 1.0f - w, &sv2, w); /* w W_ft + (1 - w) W_safe */
                }
            }
            take[l * 12 + kind] = c < cthr;
            uf_log(2, "safemerge: layer %d %s cos %.4f%s", l, W->name, c, c < cthr ? " merged" : "");
            merged += c < cthr;
            total++;
            free(V), free(w0);
        }
    int rc = 0;
    if (lora) {
        uf_model_lora_load(md, lp);
        free(lp);
        rc = uf_model_lora_merge(md); /* W_safe + (w_ft or 1) dW_f */
    }
    /* + (1 - w_ft) dW_s on the merged modules */
    for (int l = 0; l < md->cfg.n_layers && rc == 0; l++)
        for (int kind = UF_P_Q; kind <= UF_P_DOWN; kind++) {
            if (!take[l * 12 + kind] || !(st->safety.targets & UF_LORA_TARGET(kind))) continue;
            const struct uf_param_desc *W = &md->descs[md->pidx[l * 12 + kind]];
            float *h = uf_malloc((size_t)W->numel * sizeof *h);
            dl(&md->params, W->offset, W->numel, h);
            for (int64_t k = 0; k < W->numel; k++) h[k] += (1.0f - w) * dws[W->offset + k];
            ul(&md->params, W->offset, W->numel, h);
            free(h);
        }
    free(take);
    free(dws);
    if (rc) return uf_fail_prefix("safemerge: merging the adapters");
    uf_log(1, "safemerge: merged %d of %d modules with the safety LoRA", merged, total);
    return 0;
}

static int safemerge_init(struct uf_method *m, struct uf_trainer *tr) {
    if (!tr->theta0)
        return uf_fail("safemerge: needs the pre-alignment base weights theta_0 (V = W_safe - W_0); "
                       "this run does not know them");
    const char *path = uf_mcfg_str_opt(m, "safety_lora");
    if (!path || !path[0])
        return uf_fail("safemerge: safety_lora (a PEFT adapter folder of a LoRA trained on safety data "
                       "from the aligned model) is required: SafeMERGE merges with it");
    if (tr->model->lora.rank <= 0 && uf_mneed_anchor(tr, "safemerge") != 0) return -1; /* W_safe */
    /* a relative path: to the working directory, as every path in a recipe */
    struct safemerge_state *st = uf_calloc(1, sizeof *st);
    if (uf_hf_lora_load(path, &tr->model->cfg, &st->safety)) {
        free(st);
        return uf_fail_prefix("safemerge: safety_lora %s", path);
    }
    uf_log(1, "safemerge: safety LoRA %s (r %d, alpha %g)", path, st->safety.rank, (double)st->safety.alpha);
    m->state = st;
    return 0;
}

static void safemerge_free(struct uf_method *m) {
    struct safemerge_state *st = m->state;
    if (!st) return;
    uf_hf_lora_free(&st->safety);
    free(st);
    m->state = NULL;
}

const struct uf_method_ops uf_method_safemerge = {.uses_anchor = UF_ANCHOR_FULL_FT, .name = "safemerge",
                                                  .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1,
                                                  .init = safemerge_init, .finish = safemerge_finish,
                                                  .free = safemerge_free};
