/* methods/der.c: dark experience replay (Buzzega et al. 2020) on a buffer of safety examples:
 * every step draws a minibatch from the buffer and adds
 *   alpha * squared error between the student's logits and the frozen teacher's logits,
 * on response tokens only, with the reduction of the recipe (see uf_mder_replay in common.h:
 * "sum" = summed over the vocabulary and averaged over tokens, "mean" = averaged over both;
 * topk > 0 restricts the error to the teacher's top-k logits per token). The teacher's logits
 * are recomputed by the frozen teacher each step rather than stored at buffer fill: theta* is
 * frozen, so they are the same numbers, and nothing of size (rows, T, V) is kept. extra hook. */
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"

int uf_mder_reduction(const struct uf_method *m, int *reduce_sum) {
    const char *r = uf_mcfg_str(m, "reduction");
    if (strcmp(r, "sum") == 0) *reduce_sum = 1;
    else if (strcmp(r, "mean") == 0) *reduce_sum = 0;
    else return uf_fail("method '%s': reduction '%s' is not sum or mean", m->ops->name, r);
    return 0;
}

int uf_mder_replay(struct uf_trainer *tr, struct uf_mder_scratch *s, const struct uf_mdraw *d,
                   float alpha, int reduce_sum, int topk, int slot) {
    if (alpha == 0.0f || d->n_masked == 0) return 0;
    struct uf_model *teacher = uf_trainer_teacher(tr);
    if (!teacher) return uf_fail("der: no teacher model");
    int64_t V = tr->model->cfg.vocab;
    float scale = alpha / ((float)d->n_masked * (reduce_sum ? 1.0f : (float)V));
    for (int c = 0; c < d->n; c++) {
        const struct uf_train_batch *b = &d->b[c];
        if (b->n_masked == 0) continue;
        struct uf_model_batch mb;
        uf_mbatch(b, 0, &mb);
        if (uf_model_forward(teacher, &mb) != 0) return uf_fail_prefix("der: teacher forward");
        if (uf_model_forward(tr->model, &mb) != 0) return uf_fail_prefix("der: forward");
        int64_t N = (int64_t)b->B * b->T;
        uf_mensure(&s->g, tr->dev, "der.g", N * V);
        uf_mensure(&s->mask, tr->dev, "der.mask", N);
        uf_mensure(&s->thr, tr->dev, "der.thr", N);
        struct uf_tensor mk = uf_mview(&s->mask, "der.mask", N, 1);
        uf_tensor_upload(&mk, b->mask);
        struct uf_tensor g = uf_mview(&s->g, "der.g", N, V);
        struct uf_tensor z = uf_mview(&tr->model->logits, "logits", N, V);
        struct uf_tensor zs = uf_mview(&teacher->logits, "teacher.logits", N, V);
        struct uf_tensor thr = uf_mview(&s->thr, "der.thr", N, 1);
        if (topk > 0) uf_clmath_row_topk_thr(tr->dev, &zs, V, topk, &thr);
        uf_clmath_sqdiff(tr->dev, &g, &z, &zs, &mk, topk > 0 ? &thr : NULL, V, scale, &tr->terms, slot);
        if (uf_model_backward_ex(tr->model, 0.0f, &g, NULL) != 0) return uf_fail_prefix("der: backward");
    }
    return 0;
}

void uf_mder_scratch_init(struct uf_mder_scratch *s, struct uf_trainer *tr, int rows) {
    int chunk = tr->hp.micro_batch > 0 && tr->hp.micro_batch < rows ? tr->hp.micro_batch : rows;
    int64_t N = (int64_t)chunk * tr->hp.max_len, V = tr->model->cfg.vocab;
    uf_mensure(&s->g, tr->dev, "der.g", N * V);
    uf_mensure(&s->mask, tr->dev, "der.mask", N);
    uf_mensure(&s->thr, tr->dev, "der.thr", N);
}

size_t uf_mder_scratch_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cfg, "batch");
    int rows = cJSON_IsNumber(b) ? (int)b->valuedouble : 0;
    size_t chunk = (size_t)(rows > 0 && rows < in->micro_batch ? rows : in->micro_batch);
    size_t N = chunk * (size_t)in->max_len;
    return N * ((size_t)in->cfg.vocab + 2) * sizeof(float);
}

void uf_mder_scratch_free(struct uf_mder_scratch *s) {
    if (s->g.buf) uf_tensor_free(&s->g);
    if (s->mask.buf) uf_tensor_free(&s->mask);
    if (s->thr.buf) uf_tensor_free(&s->thr);
}

struct der_state {
    struct uf_dataset buf;
    struct uf_mder_scratch s;
    int reduce_sum;
};

static int der_init(struct uf_method *m, struct uf_trainer *tr) {
    if (uf_mneed_teacher(tr, "der") != 0) return -1;
    struct der_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    if (uf_mder_reduction(m, &st->reduce_sum) != 0) return -1;
    if (uf_mcfg_num(m, "topk") < 0) return uf_fail("der: topk must be >= 0 (0 = all logits)");
    uf_mder_scratch_init(&st->s, tr, uf_mcfg_rows(tr, m));
    return uf_mcfg_dataset(tr, m, "buffer", &st->buf);
}

static int der_extra(struct uf_method *m, struct uf_trainer *tr) {
    struct der_state *st = m->state;
    float alpha = (float)uf_mcfg_num(m, "alpha");
    if (alpha == 0.0f) return 0; /* alpha = 0: exactly plain fine-tuning (no draw, no rng use) */
    struct uf_mdraw d;
    if (uf_mdraw_make(tr, &st->buf, uf_mcfg_rows(tr, m), &d) != 0) return uf_fail_prefix("der");
    int rc = uf_mder_replay(tr, &st->s, &d, alpha, st->reduce_sum, (int)uf_mcfg_num(m, "topk"), m->slot);
    uf_mdraw_free(&d);
    return rc;
}

static void der_free(struct uf_method *m) {
    struct der_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->buf);
    uf_mder_scratch_free(&st->s);
    free(st);
    m->state = NULL;
}

const struct uf_method_ops uf_method_der = {.uses_teacher = 1, .state_name = "der scratch (N,V)",
                                           .state_bytes = uf_mder_scratch_bytes, .name = "der", .replays = 1, .init = der_init, .extra = der_extra, .free = der_free};
