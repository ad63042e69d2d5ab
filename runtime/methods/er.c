/* methods/er.c: experience replay, weight * CE on a minibatch drawn from the buffer each step
 * (rows: the recipe's `batch`, or the task batch), token-mean over the draw. extra hook. */
#include <stdlib.h>

#include "methods/common.h"

struct er_state {
    struct uf_dataset buf;
};

static int er_init(struct uf_method *m, struct uf_trainer *tr) {
    struct er_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    return uf_mcfg_dataset(tr, m, "buffer", &st->buf);
}

static int er_extra(struct uf_method *m, struct uf_trainer *tr) {
    struct er_state *st = m->state;
    float w = (float)uf_mcfg_num(m, "weight");
    struct uf_mdraw d;
    if (uf_mdraw_make(tr, &st->buf, uf_mcfg_rows(tr, m), &d) != 0) return uf_fail_prefix("er");
    int rc = 0;
    for (int c = 0; c < d.n && rc == 0; c++)
        if (d.n_masked > 0)
            rc = uf_mce_backprop(tr, &d.b[c], w * (float)d.b[c].n_masked / (float)d.n_masked, m->slot);
    uf_mdraw_free(&d);
    return rc;
}

static void er_free(struct uf_method *m) {
    struct er_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->buf);
    free(st);
    m->state = NULL;
}

const struct uf_method_ops uf_method_er = {.name = "er", .replays = 1, .init = er_init, .extra = er_extra, .free = er_free};
