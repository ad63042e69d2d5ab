/* methods/lwf.c: learning without forgetting (Li & Hoiem 2016), the frozen start model theta*
 * as the teacher on the user's own batch x, in one of two forms (`target`):
 *   "logits" (default; Li & Hoiem's distillation of the output distribution with a temperature,
 *            scaled by T^2 as in Hinton et al. 2015):
 *     L = beta T^2 (1/n) sum_{t in S} KL(softmax(z*_t / T) || softmax(z_t / T)),
 *     gradient at the logits: beta T (softmax(z_t / T) - softmax(z*_t / T)) / n  (uf_clmath_kl_temp);
 *   "hidden": L = beta (1/n) sum_{t in S} ||h_theta(x)_t - h_theta*(x)_t||^2 over the LAST hidden
 *            states (after the final norm, (N, D)), gradient 2 beta (h - h*) / n  (uf_clmath_sqdiff).
 * S (`tokens`): "response" = the response tokens (the task CE's positions), n = the step's
 * response tokens (tr->step_masked, the CE's denominator); "all" = every non-padding position
 * (prompt and response), n = the step's non-padding positions (tr->step_tokens). When the loop
 * did not set them (a hook called alone), b's own count times the number of micro-batches.
 * task_loss hook: after the forward of each micro-batch b the teacher runs on b and the gradient
 * is handed to the next backward by reference (uf_model_ref_grad_*), all on the device. The
 * gradient scratch ((N, V) or (N, D), N = micro_batch x max_len) and the mask (N) are allocated
 * in init: the memory plan counts them (state_bytes). */
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"

struct lwf_state {
    int logits, all; /* target = "logits", tokens = "all" */
    struct uf_tensor g, mask; /* (N, W) gradient scratch (W = V or D), (N) positions */
    struct uf_tensor gv;      /* the (here x T, W) view of g handed to the next backward by
                                 reference: it must outlive task_loss (not a stack local) */
    float *hmask;             /* (N) host staging of the mask */
};

static int lwf_parse(const struct uf_method *m, int *logits, int *all) {
    const char *t = uf_mcfg_str(m, "target"), *k = uf_mcfg_str(m, "tokens");
    if (strcmp(t, "logits") != 0 && strcmp(t, "hidden") != 0)
        return uf_fail("lwf: target '%s' is not logits or hidden", t);
    if (strcmp(k, "response") != 0 && strcmp(k, "all") != 0)
        return uf_fail("lwf: tokens '%s' is not response or all", k);
    if (strcmp(t, "logits") == 0 && !(uf_mcfg_num(m, "T") > 0))
        return uf_fail("lwf: T must be > 0 (the distillation temperature, e.g. 2)");
    *logits = strcmp(t, "logits") == 0;
    *all = strcmp(k, "all") == 0;
    return 0;
}

static int lwf_task_loss(struct uf_method *m, struct uf_trainer *tr, const struct uf_train_batch *b) {
    struct lwf_state *st = m->state;
    float beta = (float)uf_mcfg_num(m, "beta");
    int64_t N = (int64_t)b->B * b->T, W = st->logits ? tr->model->cfg.vocab : tr->model->cfg.d_model;
    int64_t positions = 0;
    for (int r = 0; r < b->B; r++) positions += b->lengths[r];
    int64_t here = st->all ? positions : b->n_masked;
    if (beta == 0.0f || here == 0) return 0;
    if (N > st->mask.numel) { /* beyond micro_batch x max_len (the plan's): a caller's own batch */
        uf_mensure(&st->g, tr->dev, "lwf.g", N * W);
        uf_mensure(&st->mask, tr->dev, "lwf.mask", N);
        st->hmask = uf_realloc(st->hmask, (size_t)N * sizeof *st->hmask);
    }
    struct uf_model *teacher = uf_trainer_teacher(tr);
    if (!teacher) return uf_fail("lwf: no teacher model");
    struct uf_model_batch mb;
    uf_mbatch(b, 0, &mb);
    if (uf_model_forward(teacher, &mb) != 0) return uf_fail_prefix("lwf: teacher forward");
    for (int r = 0; r < b->B; r++)
        for (int t = 0; t < b->T; t++) {
            int64_t i = (int64_t)r * b->T + t;
            st->hmask[i] = st->all ? (float)(t < b->lengths[r]) : b->mask[i];
        }
    struct uf_tensor mk = uf_mview(&st->mask, "lwf.mask", N, 1);
    uf_tensor_upload(&mk, st->hmask);
    int64_t step_n = st->all ? tr->step_tokens : tr->step_masked;
    int64_t n = step_n > 0 ? step_n : here * uf_mn_micro(tr);
    float scale = beta / (float)n;
    st->gv = uf_mview(&st->g, "lwf.g", N, W);
    struct uf_tensor *g = &st->gv;
    if (st->logits) {
        struct uf_tensor z = uf_mview(&tr->model->logits, "logits", N, W);
        struct uf_tensor zs = uf_mview(&teacher->logits, "teacher.logits", N, W);
        uf_clmath_kl_temp(tr->dev, g, &z, &zs, &mk, W, (float)uf_mcfg_num(m, "T"), scale, &tr->terms, m->slot);
        uf_model_ref_grad_logits(tr->model, g);
    } else {
        struct uf_tensor h = uf_mview(&tr->model->hidden, "hidden", N, W);
        struct uf_tensor hs = uf_mview(&teacher->hidden, "teacher.hidden", N, W);
        uf_clmath_sqdiff(tr->dev, g, &h, &hs, &mk, NULL, W, scale, &tr->terms, m->slot);
        uf_model_ref_grad_hidden(tr->model, g);
    }
    return 0;
}

static void lwf_free(struct uf_method *m) {
    struct lwf_state *st = m->state;
    if (!st) return;
    if (st->g.buf) uf_tensor_free(&st->g);
    if (st->mask.buf) uf_tensor_free(&st->mask);
    free(st->hmask);
    free(st);
    m->state = NULL;
}

static int lwf_init(struct uf_method *m, struct uf_trainer *tr) {
    struct lwf_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    if (lwf_parse(m, &st->logits, &st->all) != 0) return -1;
    if (uf_mneed_teacher(tr, "lwf") != 0) return -1;
    int64_t N = (int64_t)tr->hp.micro_batch * tr->hp.max_len;
    int64_t W = st->logits ? tr->model->cfg.vocab : tr->model->cfg.d_model;
    uf_mensure(&st->g, tr->dev, "lwf.g", N * W);
    uf_mensure(&st->mask, tr->dev, "lwf.mask", N);
    st->hmask = uf_malloc((size_t)N * sizeof *st->hmask);
    return 0;
}

/* the gradient scratch (micro_batch x max_len rows of V or D floats) and the mask */
static size_t lwf_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "target");
    int logits = !(cJSON_IsString(t) && strcmp(t->valuestring, "hidden") == 0);
    size_t N = (size_t)in->micro_batch * (size_t)in->max_len;
    return N * ((size_t)(logits ? in->cfg.vocab : in->cfg.d_model) + 1) * 4;
}

const struct uf_method_ops uf_method_lwf = {.uses_teacher = 1, .name = "lwf", .state_name = "lwf gradient scratch",
                                            .state_bytes = lwf_state_bytes, .init = lwf_init,
                                            .task_loss = lwf_task_loss, .free = lwf_free};
