/* methods/derpp.c: DER++ = DER (alpha, reduction, topk as der.c) on one buffer draw plus
 * beta * CE (token mean) on a second, independently drawn buffer minibatch. extra hook. */
#include <stdlib.h>

#include "methods/common.h"

struct derpp_state {
    struct uf_dataset buf;
    struct uf_mder_scratch s;
    int reduce_sum;
};

static int derpp_init(struct uf_method *m, struct uf_trainer *tr) {
    if (uf_mneed_teacher(tr, "derpp") != 0) return -1;
    struct derpp_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    if (uf_mder_reduction(m, &st->reduce_sum) != 0) return -1;
    uf_mder_scratch_init(&st->s, tr, uf_mcfg_rows(tr, m));
    return uf_mcfg_dataset(tr, m, "buffer", &st->buf);
}

static int derpp_extra(struct uf_method *m, struct uf_trainer *tr) {
    struct derpp_state *st = m->state;
    float alpha = (float)uf_mcfg_num(m, "alpha"), beta = (float)uf_mcfg_num(m, "beta");
    int rows = uf_mcfg_rows(tr, m), rc = 0;
    struct uf_mdraw d;
    if (alpha != 0.0f) {
        if (uf_mdraw_make(tr, &st->buf, rows, &d) != 0) return uf_fail_prefix("derpp");
        rc = uf_mder_replay(tr, &st->s, &d, alpha, st->reduce_sum, (int)uf_mcfg_num(m, "topk"), m->slot);
        uf_mdraw_free(&d);
    }
    if (rc == 0 && beta != 0.0f) {
        if (uf_mdraw_make(tr, &st->buf, rows, &d) != 0) return uf_fail_prefix("derpp");
        for (int c = 0; c < d.n && rc == 0; c++)
            if (d.n_masked > 0)
                rc = uf_mce_backprop(tr, &d.b[c], beta * (float)d.b[c].n_masked / (float)d.n_masked, m->slot);
        uf_mdraw_free(&d);
    }
    return rc;
}

static void derpp_free(struct uf_method *m) {
    struct derpp_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->buf);
    uf_mder_scratch_free(&st->s);
    free(st);
    m->state = NULL;
}

const struct uf_method_ops uf_method_derpp = {.uses_teacher = 1, .state_name = "derpp scratch (N,V)",
                                             .state_bytes = uf_mder_scratch_bytes, .name = "derpp", .replays = 1, .init = derpp_init, .extra = derpp_extra, .free = derpp_free};
