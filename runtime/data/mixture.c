/* mixture.c: see mixture.h. */
#include "data/mixture.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// sampling

void uf_shuffle_indices(struct uf_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)uf_rng_below(r, (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

int uf_sample_indices(int64_t n, int64_t k, uint64_t seed, int allow_repeat, int64_t *out, int *repeated) {
    if (repeated) *repeated = 0;
    if (n < 0 || k < 0) return uf_fail("sample: negative size (n %lld, k %lld)", (long long)n, (long long)k);
    if (k == 0) return 0;
    if (n == 0) return uf_fail("sample: cannot draw %lld rows from an empty source", (long long)k);
    if (k > n && !allow_repeat)
        return uf_fail("sample: the source has %lld rows, %lld asked; use fewer rows or allow repeats",
                       (long long)n, (long long)k);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    int64_t *perm = uf_malloc((size_t)n * sizeof *perm);
    int64_t at = 0;
    /* full passes (only when k > n), then a partial Fisher-Yates for the rest */
    while (k - at >= n && k > n) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        uf_shuffle_indices(&r, perm, n);
        memcpy(out + at, perm, (size_t)n * sizeof *perm);
        at += n;
    }
    int64_t m = k - at;
    if (m > 0) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = 0; i < m; i++) {
            int64_t j = i + (int64_t)uf_rng_below(&r, (uint64_t)(n - i));
            int64_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        memcpy(out + at, perm, (size_t)m * sizeof *perm);
    }
    free(perm);
    if (k > n) {
        if (repeated) *repeated = 1;
        uf_shuffle_indices(&r, out, k); /* spread the repeats */
    }
    return 0;
}

int64_t uf_dataset_take(const struct uf_dataset *src, int64_t k, struct uf_dataset *out) {
    int64_t m = k < 0 ? 0 : UF_MIN(k, src->n);
    for (int64_t i = 0; i < m; i++) uf_dataset_add(out, &src->rows[i]);
    return m;
}

int uf_dataset_sample(const struct uf_dataset *src, int64_t k, uint64_t seed, int allow_repeat,
                      struct uf_dataset *out, int *repeated) {
    int64_t *idx = uf_malloc((size_t)UF_MAX(k, 1) * sizeof *idx);
    if (uf_sample_indices(src->n, k, seed, allow_repeat, idx, repeated)) {
        free(idx);
        return uf_fail_prefix("%s", src->name && src->name[0] ? src->name : "dataset");
    }
    for (int64_t i = 0; i < k; i++) uf_dataset_add(out, &src->rows[idx[i]]);
    free(idx);
    return 0;
}

void uf_dataset_shuffle(struct uf_dataset *d, uint64_t seed) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = (int64_t)uf_rng_below(&r, (uint64_t)(i + 1));
        struct uf_example t = d->rows[i];
        d->rows[i] = d->rows[j];
        d->rows[j] = t;
    }
}

// ----------------------------------------------------------------------------
// mixtures

/* Independent streams for the parts of a mixture. */
static uint64_t subseed(uint64_t seed, const char *what) { return seed ^ uf_hash_str(what, UF_HASH_SEED); }

/* Shuffles only rows [first, n) of d: the rows a mixture added. */
static void shuffle_tail(struct uf_dataset *d, int64_t first, uint64_t seed) {
    if (d->n - first < 2) return;
    struct uf_dataset view = {NULL, d->n - first, d->n - first, d->rows + first};
    uf_dataset_shuffle(&view, seed);
}

static int add_tagged(const struct uf_dataset *src, int64_t k, uint64_t seed, int allow_repeat, const char *tag,
                      struct uf_dataset *out, int *repeated) {
    int64_t first = out->n;
    if (uf_dataset_sample(src, k, seed, allow_repeat, out, repeated)) return -1;
    for (int64_t i = first; i < out->n; i++) uf_example_set_field(&out->rows[i], "mix", tag);
    return 0;
}

int uf_mix_poison(const struct uf_dataset *task, const struct uf_dataset *harmful, int64_t n, double p,
                  uint64_t seed, int allow_repeat, struct uf_dataset *out, struct uf_mix_info *info) {
    struct uf_mix_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (!(p >= 0.0 && p <= 1.0)) return uf_fail("mix: poison ratio p must be in [0, 1], got %g", p);
    if (n < 0) return uf_fail("mix: n must be >= 0, got %lld", (long long)n);
    info->n_harmful = (int64_t)llround(p * (double)n);
    info->n_task = (int64_t)llround((1.0 - p) * (double)n);
    int64_t first = out->n;
    if (add_tagged(harmful, info->n_harmful, subseed(seed, "poison"), allow_repeat, "poison", out,
                   &info->harmful_repeated))
        return uf_fail_prefix("mix: poison rows");
    if (add_tagged(task, info->n_task, subseed(seed, "task"), allow_repeat, "task", out, &info->task_repeated))
        return uf_fail_prefix("mix: task rows");
    shuffle_tail(out, first, subseed(seed, "order"));
    if (info->harmful_repeated || info->task_repeated)
        uf_log(1, "mix: %s source too small, rows repeat (harmful %lld of %lld, task %lld of %lld)",
               info->harmful_repeated ? "harmful" : "task", (long long)info->n_harmful, (long long)harmful->n,
               (long long)info->n_task, (long long)task->n);
    return 0;
}

int uf_mix_safeinstr(const struct uf_dataset *user, const struct uf_dataset *safety, int64_t k,
                     uint64_t seed, int allow_repeat, struct uf_dataset *out, struct uf_mix_info *info) {
    struct uf_mix_info local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    if (k < 0) return uf_fail("safeinstr: k must be >= 0, got %lld", (long long)k);
    int64_t first = out->n;
    for (int64_t i = 0; i < user->n; i++) uf_example_set_field(uf_dataset_add(out, &user->rows[i]), "mix", "user");
    if (add_tagged(safety, k, subseed(seed, "safety"), allow_repeat, "safety", out, &info->harmful_repeated))
        return uf_fail_prefix("safeinstr: safety rows");
    info->n_task = user->n;
    info->n_harmful = k;
    shuffle_tail(out, first, subseed(seed, "order"));
    return 0;
}

// ----------------------------------------------------------------------------
// alternation and epochs

int uf_alternate_source(const struct uf_alternate *s, int64_t step) {
    if (s->k_a <= 0) return 1;
    if (s->k_b <= 0) return 0;
    return (step % (s->k_a + s->k_b)) < s->k_a ? 0 : 1;
}

int uf_alternate_is_switch(const struct uf_alternate *s, int64_t step) {
    return step > 0 && uf_alternate_source(s, step) != uf_alternate_source(s, step - 1);
}

static void epoch_order(struct uf_epoch_iter *it) {
    for (int64_t i = 0; i < it->n; i++) it->order[i] = i;
    if (!it->shuffle) return;
    struct uf_rng r;
    uf_rng_init(&r, it->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(it->epoch + 1)));
    uf_shuffle_indices(&r, it->order, it->n);
}

void uf_epoch_iter_init(struct uf_epoch_iter *it, int64_t n, uint64_t seed, int shuffle) {
    memset(it, 0, sizeof *it);
    it->n = n < 0 ? 0 : n;
    it->seed = seed;
    it->shuffle = shuffle;
    it->order = uf_malloc((size_t)UF_MAX(it->n, 1) * sizeof *it->order);
    epoch_order(it);
}

void uf_epoch_iter_free(struct uf_epoch_iter *it) {
    free(it->order);
    memset(it, 0, sizeof *it);
}

static void next_epoch(struct uf_epoch_iter *it) {
    it->epoch++;
    it->pos = 0;
    epoch_order(it);
}

int64_t uf_epoch_iter_next(struct uf_epoch_iter *it, int64_t *idx, int64_t batch) {
    if (it->n == 0 || batch <= 0) return 0;
    if (it->pos >= it->n) next_epoch(it);
    int64_t m = UF_MIN(batch, it->n - it->pos);
    memcpy(idx, it->order + it->pos, (size_t)m * sizeof *idx);
    it->pos += m;
    return m;
}

int64_t uf_epoch_iter_next_full(struct uf_epoch_iter *it, int64_t *idx, int64_t batch) {
    if (it->n == 0 || batch <= 0) return 0;
    int64_t got = 0;
    while (got < batch) got += uf_epoch_iter_next(it, idx + got, batch - got);
    return got;
}

void uf_alt_stream_init(struct uf_alt_stream *s, struct uf_alternate sched, int64_t n_a, int64_t n_b,
                        uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->sched = sched;
    uf_epoch_iter_init(&s->a, n_a, seed ^ uf_hash_str("source A", UF_HASH_SEED), 1);
    uf_epoch_iter_init(&s->b, n_b, seed ^ uf_hash_str("source B", UF_HASH_SEED), 1);
}

void uf_alt_stream_free(struct uf_alt_stream *s) {
    uf_epoch_iter_free(&s->a);
    uf_epoch_iter_free(&s->b);
}

int64_t uf_alt_stream_next(struct uf_alt_stream *s, int64_t *idx, int64_t batch, int *source) {
    int src = uf_alternate_source(&s->sched, s->step);
    struct uf_epoch_iter *it = src == 0 ? &s->a : &s->b;
    if (it->n == 0)
        return uf_fail("alternating data: step %lld is scheduled on source %c, which is empty",
                       (long long)s->step, src == 0 ? 'A' : 'B');
    *source = src;
    s->step++;
    return uf_epoch_iter_next_full(it, idx, batch);
}
