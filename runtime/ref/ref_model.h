/* ref_model.h: the plain-C reference of the whole decoder-only transformer, forward and backward,
 * composed from the ops of ref_ops.h (double-precision versions). It is the oracle the OpenCL
 * engine is checked against end to end: parameters, inputs and outputs are f32 (as on the
 * device), everything in between is double, so its results are the exact answer up to one f32
 * rounding. Host only, naive loops: for tiny models and tests, not for training.
 *
 * Model (conventions of model_config.h), with N = B*T rows:
 *   x = embed(tokens) (* sqrt(D) rounded to f32 for Gemma)
 *   per layer: a = rmsnorm(x, input_layernorm); q,k,v = a Wq^T, a Wk^T, a Wv^T; RoPE on q and k;
 *              x += attention(q, k, v) Wo^T; m = rmsnorm(x, post_attention_layernorm);
 *              x += (act(m Wg^T) * (m Wu^T)) Wd^T
 *   hidden = rmsnorm(x, model.norm)  (returned: "last hidden states");  logits = hidden Wlm^T
 *   loss = sum_n mask[n] CE(logits[n], targets[n]) / sum_n mask[n]   (0 when no mask is set)
 * Targets are used as given (no shift inside). Rows t >= lengths[b] are padding: they are computed
 * (their attention output is 0) and never influence rows t < lengths[b].
 *
 * Gradients are of the objective
 *   J = loss + <g_logits, logits> + <g_hidden, hidden>
 * where the optional external gradients g_logits (B,T,V) and g_hidden (B,T,D) let continual-
 * learning methods (DER, LwF, ...) inject d(extra loss)/d(logits or hidden).
 *
 * LoRA (PEFT): a targeted linear y = x W^T + (alpha / r) (x A^T) B^T with A (r, in), B (out, r)
 * stored in a separate flat vector (layout below); the base parameters stay frozen. */
#ifndef UF_REF_MODEL_H
#define UF_REF_MODEL_H

#include <stdint.h>

#include "core/model_config.h"

/* ---- LoRA parameter layout ----------------------------------------------------------------
 * Order: per layer l, per targeted module in the order q, k, v, o, gate, up, down: lora_A (r, in)
 * then lora_B (out, r), back to back in one flat f32 vector. Names are PEFT names without the
 * "base_model.model." prefix: "model.layers.<l>.self_attn.q_proj.lora_A.weight". */
struct uf_ref_lora_desc {
    char name[112];
    enum uf_param_kind kind; /* the base module: UF_P_Q .. UF_P_DOWN */
    int layer;
    int is_b;                /* 0: lora_A (r, in); 1: lora_B (out, r) */
    int64_t rows, cols;      /* row-major */
    int64_t offset;          /* element offset in the flat LoRA vector */
    int64_t numel;
};
/* Number of LoRA tensors; fills out[] when non-NULL (size >= the returned count). */
int uf_ref_lora_descs(const struct uf_model_config *c, int rank, unsigned targets,
                      struct uf_ref_lora_desc *out);
int64_t uf_ref_lora_numel(const struct uf_model_config *c, int rank, unsigned targets);

struct uf_ref_lora {
    int rank;            /* r > 0 */
    float alpha;         /* scale = alpha / r */
    unsigned targets;    /* UF_LORA_TARGET bits (model_config.h) */
    const float *params; /* (uf_ref_lora_numel) in the layout above */
};

/* One batch of right-padded sequences. */
struct uf_ref_batch {
    int B, T;
    const int32_t *tokens;   /* (B, T), every entry in [0, V) (pad with any valid id) */
    const int32_t *targets;  /* (B, T), in [0, V) where loss_mask != 0, not read elsewhere */
    const float *loss_mask;  /* (B, T), usually 0/1; NULL = all ones */
    const int32_t *lengths;  /* (B), 0 <= lengths[b] <= T; NULL = all T */
};

/* What one call returns. Every array pointer is optional (NULL = not wanted); buffers are the
 * caller's. Gradients are WRITTEN (not accumulated). */
struct uf_ref_result {
    double loss;       /* the masked mean cross-entropy */
    double objective;  /* J = loss + <g_logits, logits> + <g_hidden, hidden>, what grads are of */
    float *logits;     /* (B, T, V) */
    float *hidden;     /* (B, T, D) last hidden states, after the final norm */
    float *grad;       /* (uf_model_param_numel) dJ/d(base params), canonical layout */
    float *lora_grad;  /* (uf_ref_lora_numel) dJ/d(LoRA params); requires lora */
};

/* Forward, and backward when grad or lora_grad is set. params (uf_model_param_numel) in the
 * canonical layout (uf_model_param_descs). lora NULL = plain model (full fine-tuning).
 * g_logits (B, T, V) and g_hidden (B, T, D) may be NULL. Returns 0, or uf_fail on bad input
 * (invalid config, token / target / length out of range) naming the offending entry. */
int uf_ref_model_run(const struct uf_model_config *c, const float *params,
                     const struct uf_ref_lora *lora, const struct uf_ref_batch *batch,
                     const float *g_logits, const float *g_hidden, struct uf_ref_result *res);

#endif
