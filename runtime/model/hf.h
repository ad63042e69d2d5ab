/* hf.h: Hugging Face model directories <-> the engine's flat parameter vector.
 *
 * Import (uf_hf_load*): config.json (hf_config.h) and model.safetensors, or the shards listed in
 * model.safetensors.index.json (safetensors.h). The HF tensor names ARE the canonical parameter
 * names of model_config.h, so the mapping is by name: every canonical tensor must be present
 * with exactly its shape ((rows, cols) for linears and the embedding, (D) for norm weights);
 * F32 / F16 / BF16 (and F64) are converted to f32. With tied embeddings lm_head.weight is not
 * needed (ignored when a checkpoint carries it anyway). A tensor the engine does not know (a
 * bias, an unknown module) is an error, except the rotary_emb.inv_freq buffers of old LLaMA
 * checkpoints. Errors name the tensor and the file.
 *
 * Export (uf_hf_save): config.json + model.safetensors (one file, F32 or BF16, canonical order;
 * tied models carry no lm_head.weight); tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json and generation_config.json are copied from a source folder when given.
 *
 * LoRA adapters (PEFT layout): adapter_config.json (peft_type LORA, r, lora_alpha,
 * target_modules) + adapter_model.safetensors with names
 * "base_model.model.model.layers.<l>.self_attn.q_proj.lora_A.weight" (r, in) / "...lora_B.weight"
 * (out, r). The flat LoRA vector uses the layout of uf_ref_lora_descs (ref/ref_model.h).
 * uf_hf_lora_merge folds an adapter into the base weights: W += (alpha / r) B A.
 *
 * The uf_hf_model_* functions do the same for a device struct uf_model (model.h).
 *
 * Not here: quantized weights, sharded export, biases, rslora / DoRA adapters. */
#ifndef UF_HF_H
#define UF_HF_H

#include <stdint.h>

#include "formats/hf_config.h"
#include "core/model_config.h"
#include "formats/safetensors.h"
#include "core/tensor.h"

/* config.json of dir -> c (and extra, may be NULL), then the weights into a new host vector
 * *params (uf_model_param_numel(c) floats, malloc'd). 0 or uf_fail. */
int uf_hf_load(const char *dir, struct uf_model_config *c, struct uf_hf_extra *extra,
               float **params);
/* Only the weights, for a known config, into params (uf_model_param_numel(c)). */
int uf_hf_load_params(const char *dir, const struct uf_model_config *c, float *params);
/* config.json, then a device tensor `params` (allocated here, 1-D) filled tensor by tensor
 * (host memory: one tensor at a time, not the whole model); when lora_dir is not NULL the PEFT
 * adapter there is merged into its targeted weights on the way. */
int uf_hf_load_device(const char *dir, const char *lora_dir, struct uf_device *dev,
                      struct uf_model_config *c, struct uf_hf_extra *extra,
                      struct uf_tensor *params);
/* Writes dir/config.json and dir/model.safetensors (dtype UF_ST_F32 or UF_ST_BF16); creates dir.
 * tokenizer_from: a folder whose tokenizer files are copied (NULL: none). 0 or uf_fail. */
int uf_hf_save(const char *dir, const struct uf_model_config *c, const struct uf_hf_extra *extra,
               const float *params, enum uf_st_dtype dtype, const char *tokenizer_from);

/* ---- LoRA (PEFT) ------------------------------------------------------------------------- */
struct uf_hf_lora {
    int rank;
    float alpha;
    unsigned targets;  /* UF_LORA_TARGET bits */
    float *params;     /* (uf_ref_lora_numel) malloc'd by uf_hf_lora_load */
};
/* Writes dir/adapter_config.json and dir/adapter_model.safetensors (F32). base_model may be NULL. */
int uf_hf_lora_save(const char *dir, const struct uf_model_config *c, int rank, float alpha,
                    unsigned targets, const float *lora, const char *base_model);
int uf_hf_lora_load(const char *dir, const struct uf_model_config *c, struct uf_hf_lora *out);
void uf_hf_lora_free(struct uf_hf_lora *l);
/* params (canonical layout) += the adapter's (alpha / r) B A on every targeted linear. */
void uf_hf_lora_merge(const struct uf_model_config *c, float *params, const struct uf_hf_lora *l);

/* ---- the training engine (model.h) -------------------------------------------------------
 * Bridges between HF folders and a device struct uf_model. */
struct uf_model;
/* Builds m from an HF folder (uf_model_init with flags, then the weights uploaded tensor by
 * tensor: host memory holds one tensor at a time; with UF_MODEL_BF16_BASE each is rounded to
 * bf16 on the way). */
int uf_hf_model_load(struct uf_model *m, struct uf_device *dev, const char *dir,
                     struct uf_hf_extra *extra, int flags);
/* The same with the PEFT adapter in lora_dir (or NULL) merged into the base weights on the host
 * in f32 before any bf16 rounding (as uf_hf_load_device), e.g. `unforget generate --bf16 --lora`. */
int uf_hf_model_load_merged(struct uf_model *m, struct uf_device *dev, const char *dir,
                            const char *lora_dir, struct uf_hf_extra *extra, int flags);
/* Exports the model as an HF folder (uf_hf_save). Adapters that are not merged are folded into
 * the written weights (host side: the device model is not changed). */
int uf_hf_model_save(struct uf_model *m, const char *dir, const struct uf_hf_extra *extra,
                     enum uf_st_dtype dtype, const char *tokenizer_from);
/* Exports the model's LoRA adapter in PEFT layout (error when it has none). */
int uf_hf_model_save_lora(struct uf_model *m, const char *dir, const char *base_model);
/* Adds the adapter in dir to m (uf_model_lora_init with its rank / alpha / targets and the
 * given dropout, then its weights). */
int uf_hf_model_load_lora(struct uf_model *m, const char *dir, float dropout);

#endif
