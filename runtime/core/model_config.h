/* model_config.h: the one config that describes every supported decoder-only transformer
 * (LLaMA-2, Mistral, Gemma, LLaMA-3), and the canonical parameter layout shared by the device
 * engine, the plain-C reference, checkpoints and Hugging Face import/export.
 *
 * Conventions (all modules follow these):
 *   - Linear weights are stored as in Hugging Face: W (out, in) row-major, y = x W^T.
 *   - Parameter names are Hugging Face names ("model.layers.3.self_attn.q_proj.weight"); LoRA
 *     adapters use PEFT names ("...q_proj.lora_A.weight" (r, in), "...q_proj.lora_B.weight" (out, r)),
 *     LoRA output = x W^T + (alpha / r) * (x A^T) B^T.
 *   - RoPE is the Hugging Face "rotate_half" form: within a head, dim i pairs with i + head_dim/2,
 *     inv_freq[i] = theta^(-2i/head_dim) for i < head_dim/2 (llama3 scaling applied to inv_freq);
 *     position of token t in a right-padded sequence is t.
 *   - Attention: causal; key j visible to query i iff j <= i, j < length[b], and (sliding_window
 *     == 0 or i - j < sliding_window); scale 1/sqrt(head_dim); query head h uses kv head
 *     h / (n_heads / n_kv_heads).
 *   - RMSNorm: y = x / sqrt(mean(x^2) + eps) * w      (Gemma: * (1 + w)).
 *   - MLP: down( act(gate(x)) * up(x) ), act = SiLU (llama/mistral) or tanh-GELU (gemma).
 *   - Gemma scales the input embeddings by sqrt(d_model) and ties lm_head to the embeddings.
 *   - Loss: token cross-entropy averaged over tokens whose loss mask is 1 (sum over the batch of
 *     masked CE divided by the number of masked tokens). */
#ifndef UF_MODEL_CONFIG_H
#define UF_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum uf_family { UF_FAMILY_LLAMA = 0, UF_FAMILY_MISTRAL, UF_FAMILY_GEMMA, UF_FAMILY_LLAMA3 };
enum uf_act { UF_ACT_SILU = 0, UF_ACT_GELU_TANH };

struct uf_model_config {
    enum uf_family family;
    int vocab;          /* V */
    int d_model;        /* D */
    int n_layers;       /* L */
    int n_heads;        /* H */
    int n_kv_heads;     /* KV, divides H */
    int head_dim;       /* hd (Gemma: independent of D / H) */
    int d_ff;           /* F */
    int max_seq;        /* longest sequence the model is used with */
    float norm_eps;
    float rope_theta;
    /* llama3 RoPE scaling (rope_scaling.rope_type == "llama3"); factor 0 = off */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    int sliding_window; /* 0 = full causal attention */
    enum uf_act act;
    int norm_plus_one;   /* Gemma RMSNorm scales by (1 + w) */
    int embed_scale;     /* Gemma multiplies embeddings by sqrt(D) */
    int tied_embeddings; /* lm_head shares model.embed_tokens.weight */
};

/* Defaults of each family for the given sizes (head_dim = D / H unless set later). */
void uf_model_config_defaults(struct uf_model_config *c, enum uf_family family, int vocab,
                              int d_model, int n_layers, int n_heads, int n_kv_heads, int d_ff,
                              int max_seq);
const char *uf_family_name(enum uf_family f);
int uf_family_parse(const char *name, enum uf_family *out); /* 0 or uf_fail */
int uf_model_config_validate(const struct uf_model_config *c); /* 0 or uf_fail with the reason */

/* ---- parameter layout -------------------------------------------------------------------
 * The parameters in canonical order; one flat f32 vector holds them back to back (offset in
 * elements). Order: embed, then per layer [input_layernorm, q, k, v, o, post_attention_layernorm,
 * gate, up, down], then model.norm, then lm_head (absent when tied). */
enum uf_param_kind {
    UF_P_EMBED = 0, UF_P_ATTN_NORM, UF_P_Q, UF_P_K, UF_P_V, UF_P_O, UF_P_MLP_NORM,
    UF_P_GATE, UF_P_UP, UF_P_DOWN, UF_P_FINAL_NORM, UF_P_LM_HEAD
};

struct uf_param_desc {
    char name[96];
    enum uf_param_kind kind;
    int layer;        /* -1 for embed / final norm / lm_head */
    int64_t rows;     /* (rows, cols) row-major; a norm weight is (1, D) */
    int64_t cols;
    int64_t offset;   /* element offset in the flat vector */
    int64_t numel;
};

/* Number of parameter tensors; fills out[] when non-NULL (size >= the returned count). */
int uf_model_param_descs(const struct uf_model_config *c, struct uf_param_desc *out);
int64_t uf_model_param_numel(const struct uf_model_config *c); /* total elements */
/* llm.c accounting: FLOPs per token for one training step (fwd+bwd) = 6N + 6*L*C*T with
 * N = non-embedding... here N = all matmul parameters incl. lm_head, C = n_heads*head_dim, T = seq. */
double uf_model_flops_per_token(const struct uf_model_config *c, int seq);

/* Which linear modules LoRA targets: bit (1 << kind) for UF_P_Q..UF_P_DOWN. */
#define UF_LORA_TARGET(kind) (1u << (kind))
#define UF_LORA_ALL (UF_LORA_TARGET(UF_P_Q) | UF_LORA_TARGET(UF_P_K) | UF_LORA_TARGET(UF_P_V) | \
                     UF_LORA_TARGET(UF_P_O) | UF_LORA_TARGET(UF_P_GATE) |                      \
                     UF_LORA_TARGET(UF_P_UP) | UF_LORA_TARGET(UF_P_DOWN))
int uf_lora_targets_parse(const char *spec, unsigned *mask); /* "all" or "q,k,v,o,gate,up,down" */

#endif
