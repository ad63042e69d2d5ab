/* methods/agem.c: averaged gradient episodic memory (Chaudhry et al. 2019). project hook: with g
 * the accumulated gradient of the step (task CE and every earlier hook's terms), g_ref = the
 * gradient of the CE (token mean) on a buffer draw at the current weights; if g . g_ref < 0 then
 * g <- g - (g . g_ref / g_ref . g_ref) g_ref (uf_clmath_agem, no host sync). Its loss term is the
 * buffer CE. Memory: two extra copies of the trainable vector. */
#include <stdlib.h>

#include "methods/common.h"

struct agem_state {
    struct uf_dataset buf;
    struct uf_tensor g, g_ref, dots; /* (P), (P), (2) */
};

static int agem_init(struct uf_method *m, struct uf_trainer *tr) {
    struct agem_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    if (uf_mcfg_dataset(tr, m, "buffer", &st->buf) != 0) return -1;
    int64_t P = uf_model_train_grads(tr->model)->numel;
    uf_tensor_init(&st->g, tr->dev, "agem.g", UF_F32, 1, (int64_t[]){P});
    uf_tensor_init(&st->g_ref, tr->dev, "agem.g_ref", UF_F32, 1, (int64_t[]){P});
    uf_tensor_init(&st->dots, tr->dev, "agem.dots", UF_F32, 1, (int64_t[]){2});
    return 0;
}

static int agem_project(struct uf_method *m, struct uf_trainer *tr) {
    struct agem_state *st = m->state;
    struct uf_tensor *grads = uf_model_train_grads(tr->model);
    struct uf_mdraw d;
    if (uf_mdraw_make(tr, &st->buf, uf_mcfg_rows(tr, m), &d) != 0) return uf_fail_prefix("agem");
    uf_tensor_copy(&st->g, grads);
    uf_model_zero_grad(tr->model);
    int rc = 0;
    for (int c = 0; c < d.n && rc == 0; c++)
        if (d.n_masked > 0)
            rc = uf_mce_backprop(tr, &d.b[c], (float)d.b[c].n_masked / (float)d.n_masked, m->slot);
    uf_mdraw_free(&d);
    if (rc != 0) return uf_fail_prefix("agem: reference gradient");
    uf_tensor_copy(&st->g_ref, grads);
    uf_tensor_copy(grads, &st->g);
    uf_clmath_agem(tr->dev, grads, &st->g_ref, &st->dots);
    return 0;
}

static void agem_free(struct uf_method *m) {
    struct agem_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->buf);
    if (st->g.buf) uf_tensor_free(&st->g);
    if (st->g_ref.buf) uf_tensor_free(&st->g_ref);
    if (st->dots.buf) uf_tensor_free(&st->dots);
    free(st);
    m->state = NULL;
}

static size_t agem_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    (void)cfg;
    return 2 * uf_mplan_trainable_bytes(in) + 2 * 4; /* g, g_ref, dots */
}

const struct uf_method_ops uf_method_agem = {.state_name = "agem g, g_ref", .state_bytes = agem_state_bytes, .name = "agem", .init = agem_init, .project = agem_project, .free = agem_free};
