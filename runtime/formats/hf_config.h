/* hf_config.h: Hugging Face config.json <-> struct uf_model_config.
 *
 * Supported architectures: LlamaForCausalLM (LLaMA-2; LLaMA-3 when rope_scaling.rope_type is
 * "llama3" or vocab_size >= 128000), MistralForCausalLM, GemmaForCausalLM. Fields read:
 * vocab_size, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads
 * (default: num_attention_heads), head_dim (default hidden/heads), intermediate_size,
 * max_position_embeddings (-> max_seq), rms_norm_eps, rope_theta, sliding_window (null = 0),
 * hidden_act / hidden_activation (silu; gelu, gelu_pytorch_tanh, gelu_new -> tanh GELU),
 * tie_word_embeddings, rope_scaling {rope_type "llama3", factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings}, bos_token_id, eos_token_id.
 * Anything the engine cannot run (attention_bias, mlp_bias, other rope scalings, unknown
 * activations, other architectures) is an error naming the field and the file.
 *
 * Not here: weights (safetensors.h / hf.c) and tokenizer files (tokenizer.h). */
#ifndef UF_HF_CONFIG_H
#define UF_HF_CONFIG_H

#include <stddef.h>

#include "core/model_config.h"

struct uf_hf_extra {
    int bos_token_id, eos_token_id; /* -1 when absent (eos given as a list: its first entry) */
    char torch_dtype[16];           /* "bfloat16", "float16", "float32" or "" */
};

/* Parses config.json text; `where` names the file in errors. extra may be NULL. 0 or uf_fail. */
int uf_hf_config_parse(const char *json, size_t len, const char *where, struct uf_model_config *c,
                       struct uf_hf_extra *extra);
/* Reads <path>/config.json when path is a folder, else the file itself. */
int uf_hf_config_load(const char *path, struct uf_model_config *c, struct uf_hf_extra *extra);
/* config.json text for c (malloc'd). extra may be NULL (no token ids, torch_dtype float32). */
char *uf_hf_config_to_json(const struct uf_model_config *c, const struct uf_hf_extra *extra);
/* Writes config.json atomically. 0 or uf_fail. */
int uf_hf_config_write(const char *path, const struct uf_model_config *c,
                       const struct uf_hf_extra *extra);

#endif
