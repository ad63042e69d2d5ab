/* generate.h: inference on the device: batched generation with a KV cache, and scoring.
 *
 * The model is the flat f32 parameter vector in the canonical layout of model_config.h (the one
 * the training engine trains, or the one hf.c loads), read in place; nothing is copied. A LoRA
 * adapter is merged into a copy of the weights by the caller (uf_hf_lora_merge) before decoding.
 *
 * Positions (the batching convention): sequences are LEFT-ALIGNED with per-sequence positions.
 * Token i of sequence b is at position i (0-based) whatever the other sequences' lengths, so
 * batching never changes a sequence's result (no padding tokens, no position offsets). A forward
 * call takes any set of token rows, each with its (sequence, position); its keys and values are
 * appended to the cache at [sequence, position] before attention, so a row attends to positions
 * 0..pos of its own sequence (sliding window: pos - j < window). Prefill puts every prompt token
 * of every sequence in one call (chunked when longer than max_rows, in order); a decode step is
 * one row per unfinished sequence.
 *
 * Sampling runs on the host from the logits of the last row of each sequence (read back every
 * step): greedy = argmax (ties: lowest id); otherwise softmax(logits / temperature) over the
 * tokens within 40 nats of the best, nucleus (top-p < 1: sorted by probability, ties by id)
 * truncation, one uniform draw from a per-sequence RNG stream seeded with
 * (seed, first_stream + index of the sequence in the call). Stops: any id in stop_ids (EOS), a
 * caller callback (stop strings), or max_new_tokens.
 *
 * Not here: tokenization (tokenizer.h), chat templates, beam search, speculative decoding,
 * paged caches, a ring-buffer cache for sliding windows (the cache keeps every position).
 * Hot spot: the GEMMs (uf_gemm; dec_linear_small for decode steps) and dec_attention in
 * opencl/decode.cl. Embedding, RMSNorm and the gated activation are the engine's ops (ops.h). */
#ifndef UF_GENERATE_H
#define UF_GENERATE_H

#include <stdint.h>

#include "core/model_config.h"
#include "core/tensor.h"

struct uf_gen {
    struct uf_device *dev;
    struct uf_model_config cfg;
    struct uf_tensor *w;  /* (n_params) the parameter tensors by desc index (views, not owning
                             their buffers: into one flat vector or one buffer each) */
    enum uf_dtype wdtype; /* UF_F32 or UF_BF16, the same for all */
    int B;        /* sequences the cache holds */
    int Tc;       /* positions per sequence in the cache */
    int max_rows; /* token rows per forward call (longer prefills are chunked) */
    /* bf16 params (model.h UF_MODEL_BF16_BASE): linears run uf_gemm_bf16, the embedding reads
     * bf16, and the norm weights are widened once into norm32 at noff[i] (f32, owned) */
    struct uf_tensor norm32;
    int64_t *noff;
    int n_params;
    struct uf_tensor kc, vc;      /* (L, B, KV, Tc, hd) key / value cache */
    struct uf_tensor inv_freq;    /* (hd/2) */
    /* work buffers for max_rows rows */
    struct uf_tensor tokens, pos, seq, rows;    /* i32 (max_rows) */
    struct uf_tensor x, a;                      /* (R, D) residual, normed */
    struct uf_tensor q, k, v, att;              /* (R, H*hd) (R, KV*hd) (R, KV*hd) (R, H*hd) */
    struct uf_tensor g, u;                      /* (R, F) */
    struct uf_tensor hsel, logits;              /* (R, D) selected rows, (R, V) */
    struct uf_tensor rstd;                      /* (R) */
    struct uf_model *unmerge;     /* uf_gen_init_model merged this model's LoRA: undone at free */
};

/* Allocates the cache and work buffers. params: the flat canonical vector (f32 or bf16), read in
 * place. 0 or uf_fail (invalid config, sizes). */
int uf_gen_init(struct uf_gen *g, struct uf_device *dev, const struct uf_model_config *cfg,
                const struct uf_tensor *params, int B, int Tc, int max_rows);
/* The same from one tensor per canonical parameter (w[i]: uf_model_param_descs order, numel of
 * desc i, all f32 or all bf16; e.g. struct uf_model's sv). */
int uf_gen_init_views(struct uf_gen *g, struct uf_device *dev, const struct uf_model_config *cfg,
                      const struct uf_tensor *w, int B, int Tc, int max_rows);
void uf_gen_free(struct uf_gen *g);
/* Generation straight from a training-engine model (model.h), reading its weights in place. A LoRA
 * adapter that is not merged is merged on the device now (uf_model_lora_merge) and unmerged by
 * uf_gen_free, so the model can train on; W + sBA - sBA may differ from W by one f32 rounding per
 * element. The model must not be used between the two (its weights hold the merged adapter). */
struct uf_model;
int uf_gen_init_model(struct uf_gen *g, struct uf_model *m, int B, int Tc, int max_rows);

/* One forward over N <= max_rows token rows: row n is tokens[n] at position pos[n] of sequence
 * seq[n] (0 <= seq < B, 0 <= pos < Tc). Appends their keys/values to the cache. Writes the
 * logits (n_out, V) of the rows out_rows[0..n_out) into logits (host). 0 or uf_fail. */
int uf_gen_forward(struct uf_gen *g, int N, const int32_t *tokens, const int32_t *pos,
                   const int32_t *seq, int n_out, const int32_t *out_rows, float *logits);

/* Prefill of whole sequences: sequence b (of n_seq <= B) gets tokens[b][0..lens[b]) at positions
 * 0..lens[b]-1; returns the logits (n_seq, V) of each last token (lens[b] >= 1). Chunked. */
int uf_gen_prefill(struct uf_gen *g, int n_seq, const int32_t *const *tokens, const int *lens,
                   float *last_logits /* (n_seq, V) */);

/* ---- generation --------------------------------------------------------------------------- */
typedef int (*uf_gen_stop_fn)(void *ctx, int b, const int32_t *new_tokens, int n_new);
struct uf_gen_opts {
    int max_new_tokens;     /* > 0 */
    float temperature;      /* <= 0: greedy */
    float top_p;            /* (0, 1]; 1 = no truncation */
    uint64_t seed;
    uint64_t first_stream;  /* sequence b samples from RNG stream (seed, first_stream + b) */
    const int32_t *stop_ids; /* tokens that end a sequence (EOS); the stop token is kept */
    int n_stop_ids;
    uf_gen_stop_fn stop;    /* optional: returns 1 to end sequence b (e.g. a stop string) */
    void *stop_ctx;
};
enum uf_gen_stop_reason { UF_GEN_STOP_LENGTH = 0, UF_GEN_STOP_EOS, UF_GEN_STOP_CALLBACK };
struct uf_gen_out {
    int32_t *tokens; /* (n) new tokens, malloc'd */
    int n;
    enum uf_gen_stop_reason reason;
};

/* Generates for n_seq <= B prompts at once (each resets its cache rows). Prompts must fit:
 * lens[b] + max_new_tokens <= Tc. out[b] receives the new tokens. 0 or uf_fail. */
int uf_generate(struct uf_gen *g, int n_seq, const int32_t *const *prompts, const int *lens,
                const struct uf_gen_opts *o, struct uf_gen_out *out /* (n_seq) */);
void uf_gen_out_free(struct uf_gen_out *out, int n);

/* Host sampler (exposed for tests): greedy when temperature <= 0. logits (V) is not modified. */
struct uf_rng;
int32_t uf_gen_sample(const float *logits, int V, float temperature, float top_p,
                      struct uf_rng *rng);

/* ---- scoring ------------------------------------------------------------------------------ */
/* Teacher-forced log-probabilities of a token sequence (n >= 2, n <= Tc): logprobs[i] =
 * log p(tokens[i+1] | tokens[0..i]) for i < n-1, log-softmax in double. Uses cache row 0. */
int uf_gen_score(struct uf_gen *g, const int32_t *tokens, int n, double *logprobs /* (n-1) */);
/* The same for n_seq <= B sequences at once (sequence b in cache row b): logprobs[b] has
 * lens[b] - 1 entries. Rows are packed across sequences and chunked by max_rows. */
int uf_gen_score_batch(struct uf_gen *g, int n_seq, const int32_t *const *tokens,
                       const int *lens, double *const *logprobs);

#endif
