/* methods/safegrad.c: SafeGrad (Yi et al. 2025, "Gradient Surgery for Safe LLM Fine-Tuning",
 * arXiv 2508.07172), project hook. With
 *   g_u = the step's accumulated gradient (the task CE and every earlier hook's terms, as A-GEM),
 *   g_a = the gradient of the alignment loss on a draw x from `data`:
 *         L_a = (1/n) sum_{response tokens t of x} KL(p_theta*(. | x_<t) || p_theta(. | x_<t)),
 *         theta* = the frozen teacher (the weights at the start of fine-tuning: the aligned
 *         model), n = the draw's response tokens; recomputed every `every` steps, kept between;
 * the update direction is
 *   if g_u . g_a < 0:  g_u <- g_u - (g_u . g_a / ||g_a||^2) g_a      (uf_clmath_agem)
 *   g <- g_u + weight * g_a
 * on the device, no host sync. Its loss term is L_a (unweighted) at the steps that recompute g_a,
 * 0 at the others. g_a is the gradient of the KL at the logits, (p - q) / n per response token
 * (uf_clmath_kl_temp at T = 1, LwF's kernel), backpropagated with CE weight 0. At theta = theta*
 * the KL and g_a are exactly 0 (the kernel computes p and q by the same expressions): no
 * projection, which matters because the projection ignores g_a's size. Memory: g_u and g_a (two
 * trainable vectors, g_a in checkpoints) and the (N, V) logit-gradient scratch of a draw chunk
 * (N = rows x max_len, allocated at init). */
#include <stdlib.h>

#include "methods/common.h"

struct safegrad_state {
    struct uf_dataset data;
    struct uf_tensor g, g_a, dots; /* (P), (P), (2) */
    struct uf_tensor kl_g, mask;   /* (N, V) gradient at the logits, (N) response mask */
    int64_t n_rows;                /* N = chunk rows x max_len */
};

/* rows of one chunk of a draw (uf_mdraw_make: at most micro_batch rows) */
static int chunk_rows(int rows, int micro_batch) {
    return micro_batch > 0 && micro_batch < rows ? micro_batch : rows;
}

static int safegrad_init(struct uf_method *m, struct uf_trainer *tr) {
    if (uf_mneed_teacher(tr, "safegrad") != 0) return -1;
    struct safegrad_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    if (uf_mcfg_num(m, "every") < 1)
        return uf_fail("safegrad: every must be >= 1 (recompute g_a every that many steps)");
    if (uf_mcfg_num(m, "batch") < 0) return uf_fail("safegrad: batch must be >= 0 (0 = the task batch)");
    if (uf_mcfg_dataset(tr, m, "data", &st->data) != 0) return -1;
    int64_t P = uf_model_train_grads(tr->model)->numel, V = tr->model->cfg.vocab;
    uf_tensor_init(&st->g, tr->dev, "safegrad.g_u", UF_F32, 1, (int64_t[]){P});
    uf_tensor_init(&st->g_a, tr->dev, "safegrad.g_a", UF_F32, 1, (int64_t[]){P});
    uf_tensor_fill(&st->g_a, 0.0f);
    uf_tensor_init(&st->dots, tr->dev, "safegrad.dots", UF_F32, 1, (int64_t[]){2});
    st->n_rows = (int64_t)chunk_rows(uf_mcfg_rows(tr, m), tr->hp.micro_batch) * tr->hp.max_len;
    uf_tensor_init(&st->kl_g, tr->dev, "safegrad.kl_g", UF_F32, 1, (int64_t[]){st->n_rows * V});
    uf_tensor_init(&st->mask, tr->dev, "safegrad.mask", UF_F32, 1, (int64_t[]){st->n_rows});
    return 0;
}

/* grads = the gradient of L_a on a fresh draw (grads are zeroed first); L_a into the term */
static int alignment_grad(struct uf_method *m, struct uf_trainer *tr, struct safegrad_state *st) {
    struct uf_model *teacher = uf_trainer_teacher(tr);
    if (!teacher) return uf_fail("safegrad: no teacher model");
    struct uf_mdraw d;
    if (uf_mdraw_make(tr, &st->data, uf_mcfg_rows(tr, m), &d) != 0) return uf_fail_prefix("safegrad");
    uf_model_zero_grad(tr->model);
    int64_t V = tr->model->cfg.vocab;
    int rc = 0;
    for (int c = 0; c < d.n && rc == 0; c++) {
        const struct uf_train_batch *b = &d.b[c];
        if (b->n_masked == 0) continue;
        int64_t N = (int64_t)b->B * b->T;
        if (N > st->n_rows) {
            rc = uf_fail("safegrad: a draw chunk of %lld token rows exceeds its scratch (%lld)",
                         (long long)N, (long long)st->n_rows);
            break;
        }
        struct uf_model_batch mb;
        uf_mbatch(b, 0, &mb);
        if (uf_model_forward(teacher, &mb) != 0) rc = uf_fail_prefix("safegrad: teacher forward");
        else if (uf_model_forward(tr->model, &mb) != 0) rc = uf_fail_prefix("safegrad: forward");
        if (rc) break;
        struct uf_tensor mk = uf_mview(&st->mask, "safegrad.mask", N, 1);
        uf_tensor_upload(&mk, b->mask);
        struct uf_tensor g = uf_mview(&st->kl_g, "safegrad.kl_g", N, V);
        struct uf_tensor z = uf_mview(&tr->model->logits, "logits", N, V);
        struct uf_tensor zs = uf_mview(&teacher->logits, "teacher.logits", N, V);
        uf_clmath_kl_temp(tr->dev, &g, &z, &zs, &mk, V, 1.0f, 1.0f / (float)d.n_masked, &tr->terms, m->slot);
        if (uf_model_backward_ex(tr->model, 0.0f, &g, NULL) != 0) rc = uf_fail_prefix("safegrad: backward");
    }
    uf_mdraw_free(&d);
    return rc;
}

static int safegrad_project(struct uf_method *m, struct uf_trainer *tr) {
    struct safegrad_state *st = m->state;
    struct uf_tensor *grads = uf_model_train_grads(tr->model);
    if (tr->step % (int64_t)uf_mcfg_num(m, "every") == 0) {
        uf_tensor_copy(&st->g, grads);
        if (alignment_grad(m, tr, st) != 0) return -1;
        uf_tensor_copy(&st->g_a, grads);
        uf_tensor_copy(grads, &st->g);
    }
    uf_clmath_agem(tr->dev, grads, &st->g_a, &st->dots);
    float w = (float)uf_mcfg_num(m, "weight");
    if (w != 0.0f) uf_tensor_axpby(grads, w, &st->g_a, 1.0f);
    return 0;
}

static int safegrad_state(struct uf_method *m, struct uf_method_state *out) {
    struct safegrad_state *st = m->state;
    out[0] = (struct uf_method_state){"g_a", &st->g_a, NULL, 0}; /* kept between recomputations */
    return 1;
}

static void safegrad_free(struct uf_method *m) {
    struct safegrad_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->data);
    struct uf_tensor *t[] = {&st->g, &st->g_a, &st->dots, &st->kl_g, &st->mask};
    for (size_t i = 0; i < UF_ARRAY_LEN(t); i++)
        if (t[i]->buf) uf_tensor_free(t[i]);
    free(st);
    m->state = NULL;
}

static size_t safegrad_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, "batch");
    int rows = cJSON_IsNumber(b) && b->valuedouble > 0 ? (int)b->valuedouble : in->micro_batch;
    size_t N = (size_t)chunk_rows(rows, in->micro_batch) * (size_t)in->max_len;
    return 2 * uf_mplan_trainable_bytes(in) + 2 * 4 + N * (size_t)in->cfg.vocab * 4 + N * 4;
}

const struct uf_method_ops uf_method_safegrad = {
    .name = "safegrad", .uses_teacher = 1, .state_name = "safegrad g_u, g_a, dz",
    .state_bytes = safegrad_state_bytes, .state = safegrad_state, .init = safegrad_init,
    .project = safegrad_project, .free = safegrad_free};
