/* methods/safeinstr.c: SafeInstr (Bianchi et al. ICLR 2024): before training, k = round(ratio *
 * n_user) safety demonstrations (harmful question -> refusal) sampled from `data` (seeded by
 * hp.seed; repeated when the set is smaller than k) are mixed into the user data and the whole
 * set shuffled (uf_mix_safeinstr). init hook: tr->data is replaced by the mixed set, which this
 * method owns; the loop builds its epochs from tr->data AFTER the init hooks. */
#include <math.h>
#include <stdlib.h>

#include "methods/common.h"

struct safeinstr_state {
    struct uf_dataset safety, mixed;
};

static int safeinstr_init(struct uf_method *m, struct uf_trainer *tr) {
    struct safeinstr_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    double ratio = uf_mcfg_num(m, "ratio");
    if (!(ratio >= 0)) return uf_fail("safeinstr: ratio must be >= 0 (a share of the user data, e.g. 0.03)");
    if (!tr->data) return uf_fail("safeinstr: the run has no training data to mix into");
    if (uf_mcfg_dataset(tr, m, "data", &st->safety) != 0) return -1;
    int64_t k = (int64_t)llround(ratio * (double)tr->data->n);
    struct uf_mix_info info;
    uf_dataset_init(&st->mixed, "safeinstr");
    if (uf_mix_safeinstr(tr->data, &st->safety, k, tr->hp.seed, 1, &st->mixed, &info) != 0)
        return uf_fail_prefix("safeinstr");
    if (info.harmful_repeated)
        uf_log(1, "safeinstr: %lld demonstrations requested from %lld rows: rows repeat",
               (long long)k, (long long)st->safety.n);
    tr->data = &st->mixed;
    return 0;
}

static void safeinstr_free(struct uf_method *m) {
    struct safeinstr_state *st = m->state;
    if (!st) return;
    uf_dataset_free(&st->safety);
    uf_dataset_free(&st->mixed);
    free(st);
    m->state = NULL;
}

const struct uf_method_ops uf_method_safeinstr = {.name = "safeinstr", .init = safeinstr_init, .free = safeinstr_free};
