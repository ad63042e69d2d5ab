/* data/derta.h: the training rows of DeRTa (Yuan et al. 2024, "Refuse Whenever You Feel Unsafe:
 * Improving Safety in LLMs via Decoupled Refusal Training"), built from an alignment stage's data
 * (uf.stage { ..., derta = { ... } }; runtime/methods/README.md, section DeRTa).
 *
 * For every harmful row of the data (kind harmful: request -> refusal) whose harmful response r^
 * is known:
 *   prefix (MLE with a harmful response prefix): the row stays request -> refusal and gets the
 *     fields response_prefix = r^ and response_prefix_tokens = k, k drawn uniformly in [0, L]
 *     (L = tokens of r^ under tok, uf_derta_encode), once per row, in row order, from the RNG
 *     stream (seed, "derta"). Training renders request, then the first k tokens of r^ (loss mask
 *     0), then the refusal (trained as before).
 *   rto (reinforced transition optimisation): one more row per harmful row, appended after all
 *     rows of the data: request -> refusal with response_prefix = r^ (all of it) and
 *     rto_weight = w. Training renders request + r^ only; the target of every token of r^ (the
 *     prediction made after request + r^_<i, i = 1..L) is the refusal's first token, with loss
 *     weight w; nothing else of the row is trained.
 * These row fields are the trainer's general mechanism (train.h, uf_trainer_make_batch): any row
 * may carry them; this module only writes them.
 *
 * Harmful responses: the `responses` rows (prompt -> harmful response), matched by the exact
 * prompt (the first row of a prompt wins), when given; else the default world's compliant answer
 * for the row's act field (uf_world_harmful_answer: no RNG, no world split changes). Harmful rows
 * with no harmful response, and chat rows (a messages field), stay as they are. */
#ifndef UF_DATA_DERTA_H
#define UF_DATA_DERTA_H

#include <stdint.h>

#include "data/data.h"

struct uf_tokenizer;

struct uf_derta_opts {
    int prefix;       /* MLE with a random-length harmful response prefix */
    int rto;          /* append the RTO rows */
    double rto_weight; /* loss weight of every RTO position */
    uint64_t seed;    /* the prefix lengths' RNG */
};

struct uf_derta_info {
    int64_t harmful;  /* harmful rows of the data */
    int64_t matched;  /* of these, rows with a harmful response (those DeRTa changes) */
    int64_t rto_rows; /* rows appended */
    int64_t prefix_tokens, response_tokens; /* sums of k and of L over the matched rows */
};

/* The tokens of a response prefix as training renders them (text continuing the prompt: no
 * leading space marker, added tokens not parsed). 0 or uf_fail. */
int uf_derta_encode(const struct uf_tokenizer *tok, const char *text, int32_t **ids, int *n);

/* out = the rows of data with DeRTa's fields, then the RTO rows (see above). responses may be
 * NULL (world answers). Fails when no harmful row has a harmful response. 0 or uf_fail. */
int uf_derta_build(const struct uf_tokenizer *tok, const struct uf_dataset *data,
                   const struct uf_dataset *responses, const struct uf_derta_opts *o,
                   struct uf_dataset *out, struct uf_derta_info *info);

#endif
