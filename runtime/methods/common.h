/* methods/common.h: helpers the continual-learning methods share (not a public API):
 * reading a method's recipe keys, loading its datasets, drawing replay minibatches from a buffer,
 * running an extra forward/backward, and addressing the method's loss term on the device.
 *
 * Replay draws: `rows` rows of the buffer drawn uniformly WITHOUT replacement within one draw
 * (every row floor(rows/n) times plus distinct extra ones when rows > n), from tr->rng, split into
 * chunks of at most hp.micro_batch rows (all rows in one chunk when micro_batch is 0). A chunk is
 * weighted by its share of the draw's response tokens, so a draw's loss is the token mean over
 * the whole draw whatever the chunking. */
#ifndef UF_METHODS_COMMON_H
#define UF_METHODS_COMMON_H

#include "model/memplan.h"
#include "ops/clmath.h"
#include "data/mixture.h"
#include "train/train.h"
#include "core/util.h"

/* A key of the method's recipe table: lua/unforget's schema sets every key with its default
 * (the only defaults); a missing one is a fatal internal error naming method and key. */
double uf_mcfg_num(const struct uf_method *m, const char *key);
const char *uf_mcfg_str(const struct uf_method *m, const char *key);
int uf_mcfg_bool(const struct uf_method *m, const char *key);
/* A string key whose schema default is nil (absent from the table): NULL when not given. */
const char *uf_mcfg_str_opt(const struct uf_method *m, const char *key);
/* Loads the dataset of recipe key `key` (required, non-empty); uf_fail names method and key. */
int uf_mcfg_dataset(struct uf_trainer *tr, const struct uf_method *m, const char *key,
                    struct uf_dataset *out);
/* Rows per replay draw: the method's `batch` key, or hp.batch when it is 0 or the method has
 * none (refresh draws the task batch). */
int uf_mcfg_rows(const struct uf_trainer *tr, const struct uf_method *m);

struct uf_mdraw {
    int n;                       /* chunks */
    struct uf_train_batch *b;    /* (n) */
    int64_t n_masked;            /* response tokens over all chunks */
};
int uf_mdraw_make(struct uf_trainer *tr, const struct uf_dataset *buf, int rows, struct uf_mdraw *d);
void uf_mdraw_free(struct uf_mdraw *d);

/* The model-side view of a trainer batch (targets / mask included when with_targets). */
void uf_mbatch(const struct uf_train_batch *b, int with_targets, struct uf_model_batch *mb);
/* forward + backward of the masked-mean CE of b times `weight` on tr->model; the weighted loss
 * is added to tr->terms[slot] when slot >= 0. */
int uf_mce_backprop(struct uf_trainer *tr, const struct uf_train_batch *b, float weight, int slot);
/* Number of micro-batches per optimizer step (the loop weights each micro-batch's CE by its
 * inverse). */
int uf_mn_micro(const struct uf_trainer *tr);

/* Init-time captures of theta* (train.c creates the anchor and the teacher lazily, on first call):
 * a method that needs either takes it in its init hook, before any weight changes (a Refresh
 * unlearning step or the optimizer), never first at a later hook. 0 or uf_fail. */
int uf_mneed_anchor(struct uf_trainer *tr, const char *method);
int uf_mneed_teacher(struct uf_trainer *tr, const char *method);

/* Memory plan helpers (state_bytes traits): bytes of one trainable vector (the LoRA adapters, or
 * all weights), and of the whole weight vector (f32). */
size_t uf_mplan_trainable_bytes(const struct uf_memplan_in *in);
size_t uf_mplan_params_bytes(const struct uf_memplan_in *in);

/* A 1-element view of tr->terms[slot]. */
struct uf_tensor uf_mterm(struct uf_trainer *tr, int slot);
/* (Re)allocates an owned f32 tensor to hold at least n elements (views of the first n are made
 * with uf_mview). */
void uf_mensure(struct uf_tensor *t, struct uf_device *d, const char *name, int64_t n);
struct uf_tensor uf_mview(const struct uf_tensor *base, const char *name, int64_t rows, int64_t cols);

/* DER's logit distillation on one replay draw (der.c; shared with derpp.c and refresh.c):
 *   L = alpha / n * sum_{response tokens t} sum_{v in S_t} (z_theta(x)_{t,v} - z*_{t,v})^2
 * with n = the draw's response tokens ("sum": summed over the vocabulary, averaged over tokens)
 * or response tokens x V ("mean": averaged over both); S_t = the whole vocabulary, or (topk > 0)
 * the entries where the teacher's logit is among its top k at t (ties kept). z* comes from the
 * frozen teacher, recomputed on the draw at every step (equal to logits stored at buffer fill,
 * theta* being frozen). The gradient enters at the logits (backward with CE weight 0). */
struct uf_mder_scratch {
    struct uf_tensor g, mask, thr; /* (N, V), (N), (N) */
};
int uf_mder_replay(struct uf_trainer *tr, struct uf_mder_scratch *s, const struct uf_mdraw *d,
                   float alpha, int reduce_sum, int topk, int slot);
void uf_mder_scratch_free(struct uf_mder_scratch *s);
/* The scratch at its largest, allocated by init so that the memory plan's state is what the run
 * holds: N = (rows per replay forward, as uf_mdraw_make chunks a draw of `rows`) x max_len;
 * uf_mder_scratch_bytes is the same count for the plan (cfg: the method's table, its "batch"). */
void uf_mder_scratch_init(struct uf_mder_scratch *s, struct uf_trainer *tr, int rows);
size_t uf_mder_scratch_bytes(const struct uf_memplan_in *in, const cJSON *cfg);
/* reduction key "sum" (1) or "mean" (0); anything else fails */
int uf_mder_reduction(const struct uf_method *m, int *reduce_sum);

/* A diagonal Fisher (P floats) from the cache entry at path (NULL: none) into host: 1 when read,
 * 0 when absent or unsound (wrong size, a NaN, Inf or negative value: discarded with a notice
 * naming `what`). EWC and Refresh share it. */
int uf_method_fisher_cache_read(const char *path, float *host, int64_t P, const char *what);

#endif
