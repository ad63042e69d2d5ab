/* mixture.h: building the user's fine-tuning data from sources, and iterating over it.
 *
 *   - take / sample: the first k rows, or k rows drawn WITHOUT replacement (seeded). When a
 *     source has fewer than k rows, sampling fails unless repeats are allowed; then every row is
 *     used floor(k/n) times and k mod n further rows are drawn without replacement, and the
 *     caller is told (struct uf_mix_info).
 *   - uf_mix_poison: METHODS.md's poisoned set: exactly round(p*n) harmful rows plus
 *     round((1-p)*n) task rows (round half away from zero; the total may differ from n by one
 *     when p*n ends in .5), shuffled by seed. Rows get the extra field mix = "poison" | "task".
 *   - uf_mix_safeinstr: SafeInstr (Bianchi et al.): the user rows plus k safety demonstrations,
 *     shuffled (mix = "user" | "safety").
 *   - uf_alternate: Lisa-style schedule: k_a steps on source A, then k_b steps on source B,
 *     repeating from step 0.
 *   - uf_epoch_iter: epochs over a dataset in a seed-determined order (a fresh permutation per
 *     epoch, independent of the batch size); uf_alt_stream runs two of them on a uf_alternate
 *     schedule.
 * All results depend only on the inputs and the seed. Output datasets hold deep copies.
 * Not here: tokenisation and padding of batches (the trainer), replay buffers (methods/). */
#ifndef UF_MIXTURE_H
#define UF_MIXTURE_H

#include <stdint.h>

#include "data/data.h"
#include "core/util.h"

struct uf_mix_info {
    int64_t n_task, n_harmful;  /* poison: rows of each kind; safeinstr: user rows, safety rows */
    int task_repeated;          /* 1 when the task/user source was too small and rows repeat */
    int harmful_repeated;       /* 1 when the harmful/safety source was too small and rows repeat */
};

/* k indices of [0, n) in random order without replacement; k > n only with allow_repeat (each
 * index floor(k/n) times plus k mod n distinct ones). *repeated (may be NULL) is set to k > n.
 * -1 + uf_fail when k > n and !allow_repeat, or n == 0 < k. */
int uf_sample_indices(int64_t n, int64_t k, uint64_t seed, int allow_repeat, int64_t *out, int *repeated);
/* A permutation of [0, n) from rng (Fisher-Yates over int64). */
void uf_shuffle_indices(struct uf_rng *r, int64_t *idx, int64_t n);

/* Appends min(k, src->n) first rows of src to out; returns the count. */
int64_t uf_dataset_take(const struct uf_dataset *src, int64_t k, struct uf_dataset *out);
/* Appends k rows sampled as uf_sample_indices. */
int uf_dataset_sample(const struct uf_dataset *src, int64_t k, uint64_t seed, int allow_repeat,
                      struct uf_dataset *out, int *repeated);
/* Shuffles the rows of d in place. */
void uf_dataset_shuffle(struct uf_dataset *d, uint64_t seed);

/* The poisoned user set: round(p*n) rows of harmful + round((1-p)*n) rows of task, shuffled.
 * p in [0, 1]. allow_repeat as above (a source that is too small fails without it). */
int uf_mix_poison(const struct uf_dataset *task, const struct uf_dataset *harmful, int64_t n, double p,
                  uint64_t seed, int allow_repeat, struct uf_dataset *out, struct uf_mix_info *info);
/* SafeInstr: all rows of user + k rows sampled from safety, shuffled. */
int uf_mix_safeinstr(const struct uf_dataset *user, const struct uf_dataset *safety, int64_t k,
                     uint64_t seed, int allow_repeat, struct uf_dataset *out, struct uf_mix_info *info);

/* ---- Lisa-style alternation ----------------------------------------------------------- */
struct uf_alternate {
    int64_t k_a; /* steps on source A (alignment data in Lisa) */
    int64_t k_b; /* steps on source B (user data) */
};
/* 0 = source A, 1 = source B at training step `step` (0-based). k_a = 0: always B; k_b = 0:
 * always A. */
int uf_alternate_source(const struct uf_alternate *s, int64_t step);
/* 1 when step > 0 and its source differs from step - 1's (Lisa's proximal anchor moves). */
int uf_alternate_is_switch(const struct uf_alternate *s, int64_t step);

/* ---- epochs ----------------------------------------------------------------------------- */
struct uf_epoch_iter {
    int64_t n;       /* rows of the dataset */
    uint64_t seed;
    int shuffle;     /* 0: rows in file order every epoch */
    int64_t epoch;   /* current epoch (0-based) */
    int64_t pos;     /* next position within the epoch's order */
    int64_t *order;  /* (n) the current epoch's permutation */
};
void uf_epoch_iter_init(struct uf_epoch_iter *it, int64_t n, uint64_t seed, int shuffle);
void uf_epoch_iter_free(struct uf_epoch_iter *it);
/* Up to `batch` row indices of the current epoch into idx; a short batch ends an epoch; the next
 * call starts the next epoch. Returns the count (0 only when n == 0). */
int64_t uf_epoch_iter_next(struct uf_epoch_iter *it, int64_t *idx, int64_t batch);
/* Always `batch` indices (0 when n == 0), continuing into the next epoch(s) as needed. */
int64_t uf_epoch_iter_next_full(struct uf_epoch_iter *it, int64_t *idx, int64_t batch);

/* Two sources on an alternation schedule; each keeps its own epochs. */
struct uf_alt_stream {
    struct uf_alternate sched;
    struct uf_epoch_iter a, b;
    int64_t step;
};
void uf_alt_stream_init(struct uf_alt_stream *s, struct uf_alternate sched, int64_t n_a, int64_t n_b,
                        uint64_t seed);
void uf_alt_stream_free(struct uf_alt_stream *s);
/* The next batch: *source = 0 (A) or 1 (B), idx = `batch` row indices into that source. Returns
 * the count, or -1 + uf_fail when the scheduled source is empty. */
int64_t uf_alt_stream_next(struct uf_alt_stream *s, int64_t *idx, int64_t batch, int *source);

#endif
