/* model.h: the transformer training engine on the OpenCL device, composed from the ops of ops.h
 * and uf_gemm. One struct uf_model holds a decoder-only transformer of any supported family
 * (conventions and the canonical parameter layout: model_config.h) and runs forward / backward
 * on a batch of right-padded sequences. The optimizer lives in optim.h.
 *
 * Memory (llm.c style):
 *   params  (P)  ONE flat f32 device tensor in the canonical layout; pv[i] is a view per parameter.
 *                With a bf16 base: one bf16 buffer per parameter tensor (sv[i]), no flat vector.
 *   grads   (P)  one flat tensor, same layout (gv[i]); absent for a frozen model and under LoRA.
 *   LoRA         its own flat params / grads in the PEFT layout of lora_descs (see below); the
 *                base is frozen (no base gradients or optimizer state are allocated).
 *   activations  allocated on the first forward for N = B*T rows and reused; they grow only when
 *                a larger N arrives. A frozen model (teacher) keeps one layer's worth only; with
 *                m->checkpointing, the layer inputs (L+1, N, D) plus one layer's worth, and
 *                backward recomputes each layer's forward before its backward.
 *
 * A training step (nothing in it waits for the device; the loss is read only on request):
 *   uf_model_zero_grad(m);
 *   for each micro-batch: uf_model_forward(m, &batch); [methods: read m->logits / m->hidden,
 *       uf_model_add_grad_logits / _hidden]; uf_model_backward(m);      (grads ADD up)
 *   uf_optim_step(&opt, 1.0f / k);  loss = uf_model_read_loss(m) when wanted.
 *
 * Loss: masked mean token cross-entropy (targets used as given: the caller shifts), divided by
 * batch->loss_denom when set, else by the number of masked tokens of this micro-batch. The
 * gradient backward computes is that of
 *   J = ce_weight * loss + <g_logits, logits> + <g_hidden, hidden>
 * where g_logits (N, V) and g_hidden (N, D) are the external gradients of continual-learning
 * methods (DER, LwF, ...), given with uf_model_add_grad_* or uf_model_backward_ex.
 *
 * Trainable groups: m->trainable[i] (one flag per parameter tensor, 1 by default) says whether
 * backward computes that parameter's gradient; a frozen parameter's gradient stays 0 and the
 * optimizer skips it. Change flags before uf_optim_init. Tied embeddings (Gemma): the lm_head
 * gradient adds into the embedding gradient.
 *
 * Dropout applies to the LoRA input only (PEFT lora_dropout), only while m->training is 1; its
 * mask comes from (seed, forward counter, layer, module), so runs are reproducible.
 *
 * Determinism: every op and GEMM has a fixed reduction order, so the same seed, inputs and device
 * give bit-identical results. Errors: bad input (token out of range, shapes) is a uf_fail with
 * the offending entry named; device failures exit through UF_CL. */
#ifndef UF_MODEL_H
#define UF_MODEL_H

#include <stdint.h>

#include "core/model_config.h"
#include "core/tensor.h"

/* ---- LoRA --------------------------------------------------------------------------------- */
struct uf_lora_config {
    int rank;         /* r > 0 */
    float alpha;      /* scale = alpha / r */
    float dropout;    /* on the LoRA input, [0, 1) */
    unsigned targets; /* UF_LORA_TARGET bits; uf_lora_targets_parse */
};

/* Layout of the flat LoRA vector (identical to runtime/ref's uf_ref_lora_descs): per layer l,
 * per targeted module in the order q, k, v, o, gate, up, down: lora_A (r, in) then lora_B
 * (out, r). Names: "model.layers.<l>.self_attn.q_proj.lora_A.weight" (PEFT, without the
 * "base_model.model." prefix). */
struct uf_lora_desc {
    char name[112];
    enum uf_param_kind kind; /* the base module: UF_P_Q .. UF_P_DOWN */
    int layer;
    int is_b;                /* 0: lora_A (r, in); 1: lora_B (out, r) */
    int64_t rows, cols;
    int64_t offset;          /* element offset in the flat LoRA vector */
    int64_t numel;
};
int uf_lora_descs(const struct uf_model_config *c, int rank, unsigned targets,
                  struct uf_lora_desc *out /* NULL = count only */);
int64_t uf_lora_numel(const struct uf_model_config *c, int rank, unsigned targets);
/* The adapted modules' base weights (one (out, in) matrix per adapter pair, in lora_descs order):
 * their total element count, and the largest one's in *max_module (may be NULL). EWC's Fisher of
 * the merged weights is a vector of this layout. */
int64_t uf_lora_weff_numel(const struct uf_model_config *c, int rank, unsigned targets,
                           int64_t *max_module);

/* Gradient of the effective weights under LoRA (uf_model_set_weff_grad): pair = the adapter pair
 * (lora_descs[2 pair] is its A, [2 pair + 1] its B); g (out, in) = dJ/dW_eff of the backward's
 * objective J for the module's effective weight W_eff = W + (alpha / r) B A (= dy^T x summed
 * over the batch's rows), a view of the caller's scratch, valid during the call only. */
typedef void (*uf_weff_grad_fn)(void *ctx, int pair, const struct uf_tensor *g);

/* ---- the batch ---------------------------------------------------------------------------- */
struct uf_model_batch {
    int B, T;
    const int32_t *tokens;    /* (B, T) in [0, V) */
    const int32_t *targets;   /* (B, T), read where loss_mask != 0; NULL = no loss */
    const float *loss_mask;   /* (B, T) 0/1; NULL = all ones */
    const int32_t *lengths;   /* (B) in [0, T]; NULL = all T */
    float loss_denom;         /* > 0: the loss is sum(masked CE) / loss_denom (gradient
                                 accumulation over micro-batches of unequal size); 0 = number
                                 of masked tokens of this batch */
};

/* ---- the model ---------------------------------------------------------------------------- */
/* uf_model_init flags. UF_MODEL_FROZEN: forward only, no gradients (teachers).
 * UF_MODEL_BF16_BASE: the base parameters are stored on the device as bf16, one buffer per tensor
 * (m->sv; 2 bytes per parameter; no flat vector, so no single allocation beyond the largest
 * tensor, e.g. 250 MiB for Llama-2-7B's embedding): every base parameter is rounded to bf16 (nearest even) when loaded; the
 * GEMMs widen it exactly in their packing step and accumulate in f32 (gemm.h uf_gemm_bf16), the
 * embedding lookup reads bf16, and the norm weights (tiny) are widened into an f32 side copy
 * (`norms`). No base gradients exist: valid for frozen models and with LoRA (whose params,
 * grads and optimizer state stay f32); backward without LoRA is refused. */
enum { UF_MODEL_FROZEN = 1, UF_MODEL_BF16_BASE = 2, UF_MODEL_NO_INIT = 4 };
/* UF_MODEL_NO_INIT: the base parameters are left uninitialised (the caller loads them; saves
 * the random init of billions of values). */

struct uf_model {
    struct uf_model_config cfg;
    struct uf_device *dev;
    int frozen;                 /* UF_MODEL_FROZEN given */
    int training;               /* 1: LoRA dropout active (default 1 unless frozen) */
    uint64_t seed;              /* init and dropout seed */
    uint64_t n_forward;         /* forward calls so far (dropout stream) */
    int bf16_base;              /* UF_MODEL_BF16_BASE given: params is bf16 */
    int checkpointing;          /* activation checkpointing (set any time; default 0): keep
                                   only each layer's input (resid) and recompute the layer's
                                   forward in backward; gradients are bit-identical */
    int acts_ckpt;              /* the checkpointing mode the activations were allocated for */

    /* parameters: canonical layout */
    int n_params;
    struct uf_param_desc *descs;  /* (n_params) */
    int64_t numel;                /* P */
    struct uf_tensor params;      /* (P) f32; NOT allocated with bf16_base (buf NULL) */
    struct uf_tensor *sv;         /* (n_params) each parameter in its storage dtype: views of
                                     params (f32), or with bf16_base one owned bf16 buffer per
                                     tensor (a 7B's 12.6 GiB exceed one OpenCL allocation) */
    struct uf_tensor norms;       /* bf16_base only: f32 copy of the norm weights (pv[norm] view it) */
    struct uf_tensor grads;       /* (P); buf NULL when has_grads is 0 */
    struct uf_tensor *pv, *gv;    /* (n_params) views ("gv" views valid when has_grads) */
    int *trainable;               /* (n_params) flags */
    int has_grads;
    int *pidx;                    /* (L * 12) parameter index of (layer, kind), -1 if none */
    int p_embed, p_final, p_head; /* p_head == p_embed when tied */
    struct uf_tensor inv_freq;    /* (hd/2) */

    /* LoRA (lora.rank == 0: none) */
    struct uf_lora_config lora;
    float lora_scale;             /* alpha / r */
    int lora_merged;              /* 1: B A is folded into the base; forward skips adapters */
    int n_lora;
    struct uf_lora_desc *lora_descs;
    int64_t lora_numel;
    struct uf_tensor lora_params, lora_grads; /* (lora_numel) */
    struct uf_tensor *lpv, *lgv;  /* (n_lora) views */
    int *lidx;                    /* (L * 12) index of lora_A of (layer, kind), -1 if none */
    int lora_per_layer;           /* targeted modules per layer */

    /* activations for N = B*T rows (capacity n_cap); frozen models keep 1 layer (2 residuals) */
    int B, T;                     /* shape of the last forward */
    int64_t n_cap;
    struct uf_tensor resid;       /* (L+1, N, D) layer inputs; x_L feeds the final norm */
    struct uf_tensor resid_mid;   /* (L, N, D) after attention */
    struct uf_tensor norm1, norm2;/* (L, N, D) */
    struct uf_tensor rstd1, rstd2;/* (L, N) */
    struct uf_tensor q, att;      /* (L, N, H*hd) q after RoPE, attention output */
    struct uf_tensor k, v;        /* (L, N, KV*hd) k after RoPE */
    struct uf_tensor lse;         /* (L, B, H, T) */
    struct uf_tensor gate, up, act; /* (L, N, F) */
    struct uf_tensor lora_t;      /* (L, lora_per_layer, N, r) x A^T per adapter */
    struct uf_tensor hidden;      /* (N, D) last hidden states (after the final norm) */
    struct uf_tensor rstdf;       /* (N) */
    struct uf_tensor logits;      /* (N, V) */
    struct uf_tensor loss_rows;   /* (N) */
    struct uf_tensor loss;        /* (1) the loss of the last forward (device scalar) */
    struct uf_tensor tokens, targets, mask, lengths; /* inputs: (N) i32, (N) i32, (N) f32, (B) i32 */
    struct uf_tensor qpre, kpre;  /* (N, H*hd), (N, KV*hd) scratch before RoPE */
    struct uf_tensor dropbuf;     /* (N, max(D, F, H*hd)) LoRA dropout scratch */
    /* backward scratch (not for frozen models) */
    struct uf_tensor dres, dnorm, dhidden; /* (N, D) */
    struct uf_tensor dq, datt;    /* (N, H*hd) */
    struct uf_tensor dk, dv, dkp; /* (N, KV*hd) */
    struct uf_tensor dgate, dup, dact; /* (N, F) */
    struct uf_tensor dlogits;     /* (N, V) */
    struct uf_tensor dlora;       /* (N, r) */
    struct uf_tensor ext_glogits, ext_ghidden; /* (N, V), (N, D) lazily, for uf_model_add_grad_* */
    int ext_glogits_set, ext_ghidden_set;
    const struct uf_tensor *ref_glogits, *ref_ghidden; /* uf_model_ref_grad_*: added, not copied */
    uf_weff_grad_fn weff_fn;      /* uf_model_set_weff_grad (NULL: off) */
    void *weff_ctx;
    struct uf_tensor *weff_scratch;
    int drop_active;              /* the last forward applied LoRA dropout */
    int dlogits_valid;            /* forward wrote CE gradients into dlogits */
    int has_loss;                 /* the last forward had targets */
    float loss_denom;             /* of the last forward */

    /* host staging of the batch inputs (ring of 2, no blocking writes) */
    void *stage[2];
    size_t stage_bytes[2];
    cl_event stage_ev[2];
    int stage_next;

    /* device memory accounting, bytes */
    size_t bytes_params, bytes_grads, bytes_acts;
};

/* Builds the model: parameters allocated and initialised deterministically from `seed`
 * (matrices normal(0, 0.02), the residual projections o_proj and down_proj scaled by
 * 1/sqrt(2L) as in GPT-2, norm weights 1 (0 with Gemma's (1 + w)). flags: UF_MODEL_FROZEN.
 * Returns 0, or uf_fail for an invalid config. */
int uf_model_init(struct uf_model *m, struct uf_device *dev, const struct uf_model_config *cfg,
                  uint64_t seed, int flags);
void uf_model_free(struct uf_model *m);
/* Re-initialise the base parameters from seed as uf_model_init does (blocking upload). */
void uf_model_init_params(struct uf_model *m, uint64_t seed);

/* Flat parameter vector to / from host memory (canonical layout, numel floats; blocking).
 * With bf16_base, load rounds to bf16 and save returns the widened bf16 values. */
void uf_model_load_params(struct uf_model *m, const float *host /* (P) */);
void uf_model_save_params(struct uf_model *m, float *host /* (P) */);
void uf_model_save_grads(struct uf_model *m, float *host /* (P) */);
/* Call after writing the parameters directly (m->sv[i], e.g. tensor by tensor from a file): with
 * a bf16 base it refreshes the f32 copy of the norm weights. */
void uf_model_params_written(struct uf_model *m);
/* Device copy of another model's base parameters (same shapes), e.g. student -> teacher. */
int uf_model_copy_params(struct uf_model *dst, const struct uf_model *src);
/* Freezes (trainable = 0) every parameter whose kind bit (1u << kind) is in kind_mask, e.g.
 * 1u << UF_P_EMBED; with tied embeddings freezing either the embed or the lm_head freezes both. */
void uf_model_freeze_kinds(struct uf_model *m, unsigned kind_mask);

/* ---- LoRA (lora.c) ------------------------------------------------------------------------- */
/* Adds adapters: allocates the LoRA params (A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's
 * kaiming_uniform(a=sqrt(5)), B = 0, from seed) and grads, frees the base gradients (the base
 * is frozen). Call before uf_optim_init. 0 or uf_fail (bad rank / targets / dropout). */
int uf_model_lora_init(struct uf_model *m, const struct uf_lora_config *lc, uint64_t seed);
void uf_model_lora_load(struct uf_model *m, const float *host /* (lora_numel) */);
void uf_model_lora_save(struct uf_model *m, float *host /* (lora_numel) */);
void uf_model_lora_save_grads(struct uf_model *m, float *host /* (lora_numel) */);
/* W += (alpha / r) B A for every adapter (merge) or W -= ... (unmerge); device-side. Merged,
 * the forward skips the adapters (so outputs stay the same up to rounding). 0 or uf_fail when
 * already in that state. */
int uf_model_lora_merge(struct uf_model *m);
int uf_model_lora_unmerge(struct uf_model *m);
/* While fn is set, every backward of a LoRA model (adapters not merged) also computes each
 * adapted module's effective-weight gradient g (uf_weff_grad_fn) into scratch (f32, at least
 * the largest adapted module's out * in elements, uf_lora_weff_numel) and hands it to fn right
 * away (the adapters' own gradients are computed as usual). g uses the module's input before
 * LoRA dropout, so backward refuses while dropout is active (set m->training = 0). fn = NULL
 * turns it off. For EWC's Fisher of the merged weights (methods/ewc.c). */
void uf_model_set_weff_grad(struct uf_model *m, uf_weff_grad_fn fn, void *ctx,
                            struct uf_tensor *scratch);

/* ---- forward / backward -------------------------------------------------------------------- */
/* Forward on a host batch (uploaded without blocking). Writes m->logits (N, V), m->hidden (N, D)
 * and, with targets, m->loss (and, when trainable, the CE gradient for backward).
 * 0, or uf_fail naming the bad entry (token / target / length out of range, bad B or T). */
int uf_model_forward(struct uf_model *m, const struct uf_model_batch *batch);
/* Forward on tokens already on the device ((B*T) i32 and (B) i32, or lengths NULL = all T);
 * no loss. For generation and teachers fed by device data. */
int uf_model_forward_device(struct uf_model *m, const struct uf_tensor *tokens,
                            const struct uf_tensor *lengths, int B, int T);
/* External gradients for the next backward, ADDED (scaled) into pending buffers; call after
 * the forward they belong to (a forward clears pending gradients). */
void uf_model_add_grad_logits(struct uf_model *m, const struct uf_tensor *g /* (N, V) */, float scale);
void uf_model_add_grad_hidden(struct uf_model *m, const struct uf_tensor *g /* (N, D) */, float scale);
/* The same by reference: the next backward adds g as it is then, without a copy into a pending
 * buffer (g must stay allocated and unchanged until that backward; one reference per kind per
 * backward; a forward clears it). Saves the (N, V) / (N, D) pending buffer (LwF). */
void uf_model_ref_grad_logits(struct uf_model *m, const struct uf_tensor *g /* (N, V) */);
void uf_model_ref_grad_hidden(struct uf_model *m, const struct uf_tensor *g /* (N, D) */);
/* Backward of the last forward: gradients ADDED into m->grads (or m->lora_grads).
 * Equivalent to uf_model_backward_ex(m, 1, NULL, NULL) plus the pending external gradients. */
int uf_model_backward(struct uf_model *m);
/* ce_weight scales the cross-entropy term (0: only the external gradients); g_logits / g_hidden
 * may be NULL. Pending uf_model_add_grad_* buffers are used and cleared too. */
int uf_model_backward_ex(struct uf_model *m, float ce_weight, const struct uf_tensor *g_logits,
                         const struct uf_tensor *g_hidden);
void uf_model_zero_grad(struct uf_model *m);
/* Frees the activation buffers (they come back, sized to the next batch, on the next forward). */
void uf_model_release_activations(struct uf_model *m);
/* The loss of the last forward (blocks until it is computed). */
float uf_model_read_loss(struct uf_model *m);

/* The trainable flat vectors: LoRA params/grads under LoRA, else the base ones. */
struct uf_tensor *uf_model_train_params(struct uf_model *m);
struct uf_tensor *uf_model_train_grads(struct uf_model *m);

#endif
