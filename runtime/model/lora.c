/* lora.c: LoRA adapters of the engine (see model.h): the PEFT layout of the flat LoRA vector,
 * adapter allocation and init, host load/save, merge into / unmerge from the base weights.
 * The forward/backward of an adapted linear lives in model.c (linear_forward/_backward). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "model/model.h"
#include "ref/ref_model.h"
#include "core/util.h"

#define NK 12

/* The layout is the reference's (ref/ref_model.h): one definition of the PEFT flat order. */
int uf_lora_descs(const struct uf_model_config *c, int rank, unsigned targets,
                  struct uf_lora_desc *out) {
    int n = uf_ref_lora_descs(c, rank, targets, NULL);
    if (!out || n == 0) return n;
    struct uf_ref_lora_desc *r = uf_calloc((size_t)n, sizeof *r);
    uf_ref_lora_descs(c, rank, targets, r);
    for (int i = 0; i < n; i++) {
        struct uf_lora_desc *d = &out[i];
        memset(d, 0, sizeof *d);
        snprintf(d->name, sizeof d->name, "%s", r[i].name);
        d->kind = r[i].kind;
        d->layer = r[i].layer;
        d->is_b = r[i].is_b;
        d->rows = r[i].rows;
        d->cols = r[i].cols;
        d->offset = r[i].offset;
        d->numel = r[i].numel;
    }
    free(r);
    return n;
}

int64_t uf_lora_numel(const struct uf_model_config *c, int rank, unsigned targets) {
    int n = uf_lora_descs(c, rank, targets, NULL);
    if (n == 0) return 0;
    struct uf_lora_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_lora_descs(c, rank, targets, d);
    int64_t total = d[n - 1].offset + d[n - 1].numel;
    free(d);
    return total;
}

int64_t uf_lora_weff_numel(const struct uf_model_config *c, int rank, unsigned targets,
                           int64_t *max_module) {
    int n = uf_lora_descs(c, rank, targets, NULL);
    struct uf_lora_desc *d = n > 0 ? uf_calloc((size_t)n, sizeof *d) : NULL;
    if (n > 0) uf_lora_descs(c, rank, targets, d);
    int64_t total = 0, biggest = 0;
    for (int i = 0; i + 1 < n; i += 2) { /* A (r, in), then B (out, r) */
        int64_t e = d[i + 1].rows * d[i].cols;
        total += e;
        biggest = UF_MAX(biggest, e);
    }
    free(d);
    if (max_module) *max_module = biggest;
    return total;
}

int uf_model_lora_init(struct uf_model *m, const struct uf_lora_config *lc, uint64_t seed) {
    if (m->lora.rank > 0) return uf_fail("uf_model_lora_init: the model already has LoRA adapters");
    if (lc->rank <= 0) return uf_fail("LoRA rank %d: must be positive", lc->rank);
    if (!(lc->alpha > 0.0f)) return uf_fail("LoRA alpha %g: must be positive", (double)lc->alpha);
    if (!(lc->dropout >= 0.0f && lc->dropout < 1.0f))
        return uf_fail("LoRA dropout %g: must be in [0, 1)", (double)lc->dropout);
    if (lc->targets == 0 || (lc->targets & ~(unsigned)UF_LORA_ALL))
        return uf_fail("LoRA targets 0x%x: must be a non-empty subset of q,k,v,o,gate,up,down",
                       lc->targets);
    const struct uf_model_config *c = &m->cfg;
    m->lora = *lc;
    m->lora_scale = lc->alpha / (float)lc->rank;
    m->lora_merged = 0;
    m->n_lora = uf_lora_descs(c, lc->rank, lc->targets, NULL);
    m->lora_descs = uf_calloc((size_t)m->n_lora, sizeof *m->lora_descs);
    uf_lora_descs(c, lc->rank, lc->targets, m->lora_descs);
    m->lora_numel = m->lora_descs[m->n_lora - 1].offset + m->lora_descs[m->n_lora - 1].numel;
    m->lora_per_layer = m->n_lora / (2 * c->n_layers);
    m->lidx = uf_malloc((size_t)c->n_layers * NK * sizeof *m->lidx);
    for (int i = 0; i < c->n_layers * NK; i++) m->lidx[i] = -1;
    uf_tensor_init(&m->lora_params, m->dev, "lora_params", UF_F32, 1, (int64_t[]){m->lora_numel});
    m->bytes_params += uf_tensor_bytes(&m->lora_params);
    m->lpv = uf_calloc((size_t)m->n_lora, sizeof *m->lpv);
    m->lgv = uf_calloc((size_t)m->n_lora, sizeof *m->lgv);
    if (!m->frozen) {
        uf_tensor_init(&m->lora_grads, m->dev, "lora_grads", UF_F32, 1, (int64_t[]){m->lora_numel});
        uf_tensor_fill(&m->lora_grads, 0.0f);
    }
    for (int i = 0; i < m->n_lora; i++) {
        const struct uf_lora_desc *ld = &m->lora_descs[i];
        int64_t shape[2] = {ld->rows, ld->cols};
        uf_tensor_view(&m->lpv[i], &m->lora_params, ld->name, (size_t)ld->offset, 2, shape);
        if (m->lora_grads.buf)
            uf_tensor_view(&m->lgv[i], &m->lora_grads, ld->name, (size_t)ld->offset, 2, shape);
        if (!ld->is_b) m->lidx[ld->layer * NK + ld->kind] = i;
    }
    /* the base is frozen: drop its gradients */
    if (m->grads.buf) uf_tensor_free(&m->grads);
    m->has_grads = 0;
    m->bytes_grads = m->lora_grads.buf ? uf_tensor_bytes(&m->lora_grads) : 0;
    for (int i = 0; i < m->n_params; i++) {
        memset(&m->gv[i], 0, sizeof m->gv[i]);
        m->trainable[i] = 0;
    }
    uf_model_release_activations(m); /* LoRA adds activation buffers */

    /* init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform(a = sqrt(5))), B = 0 */
    float *h = uf_calloc((size_t)m->lora_numel, sizeof *h);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    for (int i = 0; i < m->n_lora; i++) {
        const struct uf_lora_desc *ld = &m->lora_descs[i];
        if (ld->is_b) continue;
        double bound = 1.0 / sqrt((double)ld->cols);
        for (int64_t j = 0; j < ld->numel; j++)
            h[ld->offset + j] = (float)(bound * (2.0 * uf_rng_uniform(&r) - 1.0));
    }
    uf_tensor_upload(&m->lora_params, h);
    free(h);
    return 0;
}

static void need_lora(const struct uf_model *m, const char *what) {
    if (m->lora.rank <= 0) uf_fatal(1, "%s: the model has no LoRA adapters", what);
}

void uf_model_lora_load(struct uf_model *m, const float *host) {
    need_lora(m, "uf_model_lora_load");
    uf_tensor_upload(&m->lora_params, host);
}

void uf_model_lora_save(struct uf_model *m, float *host) {
    need_lora(m, "uf_model_lora_save");
    uf_tensor_download(&m->lora_params, host);
}

void uf_model_lora_save_grads(struct uf_model *m, float *host) {
    need_lora(m, "uf_model_lora_save_grads");
    if (m->lora_grads.buf) uf_tensor_download(&m->lora_grads, host);
    else memset(host, 0, (size_t)m->lora_numel * sizeof *host);
}

/* W (out, in) += sign * scale * B (out, r) A (r, in) for every adapter. A bf16 base
 * (UF_MODEL_BF16_BASE) goes through one f32 scratch matrix: widen, add, round back to bf16 (so
 * merge then unmerge is exact only up to bf16 rounding). */
static void fold(struct uf_model *m, float sign) {
    int64_t r = m->lora.rank, biggest = 0;
    struct uf_tensor tmp = {0};
    if (m->bf16_base) {
        for (int i = 0; i < m->n_lora; i += 2)
            biggest = UF_MAX(biggest, m->lora_descs[i + 1].rows * m->lora_descs[i].cols);
        uf_tensor_init(&tmp, m->dev, "lora merge scratch", UF_F32, 1, (int64_t[]){biggest});
    }
    for (int i = 0; i < m->n_lora; i += 2) {
        const struct uf_lora_desc *a = &m->lora_descs[i];
        const struct uf_tensor *A = &m->lpv[i], *B = &m->lpv[i + 1];
        struct uf_tensor *W = &m->pv[m->pidx[a->layer * NK + a->kind]], w32;
        int64_t out = m->lora_descs[i + 1].rows, in = a->cols;
        if (m->bf16_base) {
            uf_tensor_view(&w32, &tmp, "lora merge scratch", 0, 1, (int64_t[]){out * in});
            struct uf_tensor wf;
            uf_tensor_view(&wf, W, W->name, 0, 1, (int64_t[]){out * in});
            uf_tensor_convert(&w32, &wf);
            uf_gemm(m->dev, false, false, (size_t)out, (size_t)in, (size_t)r, sign * m->lora_scale,
                    B->buf, B->offset, (size_t)r, A->buf, A->offset, (size_t)in, 1.0f, w32.buf,
                    w32.offset, (size_t)in);
            uf_tensor_convert(&wf, &w32);
            continue;
        }
        uf_gemm(m->dev, false, false, (size_t)out, (size_t)in, (size_t)r, sign * m->lora_scale,
                B->buf, B->offset, (size_t)r, A->buf, A->offset, (size_t)in, 1.0f, W->buf,
                W->offset, (size_t)in);
    }
    if (tmp.buf) uf_tensor_free(&tmp);
}

int uf_model_lora_merge(struct uf_model *m) {
    if (m->lora.rank <= 0) return uf_fail("uf_model_lora_merge: the model has no LoRA adapters");
    if (m->lora_merged) return uf_fail("uf_model_lora_merge: the adapters are already merged");
    fold(m, 1.0f);
    m->lora_merged = 1;
    return 0;
}

int uf_model_lora_unmerge(struct uf_model *m) {
    if (m->lora.rank <= 0) return uf_fail("uf_model_lora_unmerge: the model has no LoRA adapters");
    if (!m->lora_merged) return uf_fail("uf_model_lora_unmerge: the adapters are not merged");
    fold(m, -1.0f);
    m->lora_merged = 0;
    return 0;
}
