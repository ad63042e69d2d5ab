/* methods/safelora.c: SafeLoRA (Hsu et al. 2024), after training (finish hook), per layer and
 * LoRA target module: V = W_aligned - W_base with W_aligned the frozen base of this run
 * (theta_safe) and W_base the pre-alignment weights (tr->theta0, required), P = V V^T / ||V||_F;
 * where cos(P B A, B A) <= tau (or, with topk > 0, for the topk modules of lowest cosine) the
 * adapter's B is replaced by P B. Needs LoRA (uf_methods_check refuses it without). Host math
 * (safeproj.h), one module at a time. The per-module cosines are logged at verbosity 2. */
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"
#include "methods/safeproj.h"

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void download_view(const struct uf_tensor *base, int64_t off, int64_t n, float *host) {
    struct uf_tensor v;
    uf_tensor_view(&v, base, "module", (size_t)off, 1, (int64_t[]){n});
    uf_tensor_download(&v, host);
}

static int safelora_finish(struct uf_method *m, struct uf_trainer *tr) {
    struct uf_model *md = tr->model;
    if (md->lora.rank <= 0) return uf_fail("safelora: the run has no LoRA adapters (give lora = uf.lora {...})");
    if (md->lora_merged) return uf_fail("safelora: the adapters were already merged (list safelora before any merge)");
    if (!tr->theta0 || tr->theta0->numel != md->numel)
        return uf_fail("safelora: needs the pre-alignment base weights theta_0 (V = W_aligned - W_base); "
                       "this run does not know them");
    double tau = uf_mcfg_num(m, "tau");
    int topk = (int)uf_mcfg_num(m, "topk");
    int64_t r = md->lora.rank;
    float *lora = uf_malloc((size_t)md->lora_numel * sizeof *lora);
    uf_model_lora_save(md, lora);
    int n_mod = 0;
    int *ia = uf_malloc((size_t)md->n_lora * sizeof *ia);
    double *cosv = uf_malloc((size_t)md->n_lora * sizeof *cosv);
    float **pbs = uf_calloc((size_t)md->n_lora, sizeof *pbs);
    for (int i = 0; i + 1 < md->n_lora; i++) {
        const struct uf_lora_desc *A = &md->lora_descs[i], *B = &md->lora_descs[i + 1];
        if (A->is_b || !B->is_b || A->layer != B->layer || A->kind != B->kind) continue;
        int pi = md->pidx[A->layer * 12 + A->kind];
        const struct uf_param_desc *W = &md->descs[pi];
        int64_t out = W->rows, in = W->cols;
        float *wa = uf_malloc((size_t)(out * in) * sizeof *wa), *wb = uf_malloc((size_t)(out * in) * sizeof *wb);
        download_view(&md->params, W->offset, out * in, wa);
        download_view(tr->theta0, W->offset, out * in, wb);
        for (int64_t k = 0; k < out * in; k++) wa[k] -= wb[k];
        pbs[n_mod] = uf_malloc((size_t)(out * r) * sizeof(float));
        cosv[n_mod] = uf_safeproj_lowrank(wa, lora + B->offset, lora + A->offset, out, in, r, pbs[n_mod]);
        uf_log(2, "safelora: layer %d %s cos %.4f", A->layer, W->name, cosv[n_mod]);
        ia[n_mod++] = i;
        free(wa), free(wb);
    }
    double thr = tau;
    if (topk > 0) { /* the topk lowest cosines */
        double *s = uf_malloc((size_t)(n_mod > 0 ? n_mod : 1) * sizeof *s);
        memcpy(s, cosv, (size_t)n_mod * sizeof *s);
        qsort(s, (size_t)n_mod, sizeof *s, cmp_dbl);
        thr = n_mod == 0 ? 0 : s[UF_MIN(topk, n_mod) - 1];
        free(s);
    }
    int projected = 0;
    for (int k = 0; k < n_mod; k++) {
        const struct uf_lora_desc *B = &md->lora_descs[ia[k] + 1];
        if (cosv[k] <= thr && (topk <= 0 || projected < topk)) {
            memcpy(lora + B->offset, pbs[k], (size_t)B->numel * sizeof(float));
            projected++;
        }
        free(pbs[k]);
    }
    uf_model_lora_load(md, lora);
    uf_log(1, "safelora: projected %d of %d modules", projected, n_mod);
    free(pbs), free(cosv), free(ia), free(lora);
    return 0;
}

/* fail before training, not after it, when the run cannot do the projection */
static int safelora_init(struct uf_method *m, struct uf_trainer *tr) {
    (void)m;
    if (tr->model->lora.rank <= 0) return uf_fail("safelora: the run has no LoRA adapters (give lora = uf.lora {...})");
    if (!tr->theta0)
        return uf_fail("safelora: needs the pre-alignment base weights theta_0 (V = W_aligned - W_base); "
                       "this run does not know them");
    return 0;
}

const struct uf_method_ops uf_method_safelora = {.name = "safelora", .rewrites_weights = 1, .needs_theta0 = 1, .needs_f32_base = 1, .needs_lora = 1, .init = safelora_init, .finish = safelora_finish};
