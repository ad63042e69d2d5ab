/* memplan.h: the device-memory plan of a training run, computed from the model config and the
 * recipe's knobs before anything is allocated. `unforget check` prints it and refuses a plan
 * that does not fit the device; `unforget run` checks it before building the model.
 *
 * The byte counts follow the engine's allocations exactly (model.c acts_reserve, lora.c,
 * optim.c's AdamW m and v, generate.c's cache and work buffers), except the workspace, which is
 * an upper bound: the own GEMM's packing buffer (64 MiB cap, gemm.c), with a bf16 base the LoRA
 * merge scratch (one f32 module) and uf_gemm_bf16's widening buffer for CLBlast (64 MiB cap),
 * and a 16 MiB allowance for small scratch buffers. CLBlast's own
 * temporaries and the OpenCL driver's overhead are not counted: plans keep 5% of the device
 * free for them (UF_MEMPLAN_RESERVE).
 *
 * Phases: training peak = weights + LoRA + gradients + optimizer + activations + workspace +
 * method state (the continual-learning methods' device state from their init hook to the end of
 * training: the frozen teacher of DER / DER++ / LwF / Refresh, the anchor theta* of EWC / L2-SP /
 * the merges, EWC's Fisher, A-GEM's gradient copies, ...: struct uf_method_ops traits);
 * evaluation (generation after training) peak = weights + LoRA + KV cache + generation work
 * buffers + workspace (the trainer's activations are released before evaluation), with the
 * largest generation batch (<= 32) that keeps it within the training peak. The plan's total is
 * the larger of the two. */
#ifndef UF_MEMPLAN_H
#define UF_MEMPLAN_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "core/model_config.h"
#include "formats/plan.h"

#define UF_MEMPLAN_RESERVE 0.05 /* fraction of global memory left for driver / CLBlast */

struct uf_memplan_in {
    struct uf_model_config cfg;
    int lora_rank;            /* 0: full fine-tuning */
    unsigned lora_targets;    /* UF_LORA_TARGET bits */
    float lora_dropout;       /* > 0 adds the dropout scratch */
    int micro_batch, max_len; /* rows per forward/backward, tokens per row */
    int bf16_base;            /* UF_MODEL_BF16_BASE (needs lora_rank > 0) */
    int checkpointing;        /* activation checkpointing: keep layer inputs only */
    int eval_len;             /* cache positions per sequence for generation (0: max_len);
                                 from a recipe: max_len + the largest max_new_tokens (prompts
                                 assumed within max_len) */
    int eval_batch_max;       /* largest generation batch (0: 32, evaluate.c's) */
    /* method state (filled by methods.h uf_methods_memplan from the methods' traits) */
    int method_teacher;       /* a method takes the frozen teacher (one copy, shared) */
    int method_anchor;        /* a method takes the anchor theta* (one copy, shared) */
    int n_method_state;
    struct uf_memplan_item {
        const char *name;     /* "ewc Fisher", ... */
        size_t bytes;
    } method_state[16];       /* the methods' own device state */
    size_t device_bytes;      /* global memory of the device (0: unknown) */
    size_t device_max_alloc;  /* CL_DEVICE_MAX_MEM_ALLOC_SIZE (0: no per-buffer limit known) */
};

struct uf_memplan {
    size_t weights_f32, weights_bf16; /* base parameters by storage dtype */
    size_t lora;                      /* LoRA parameters (f32) */
    size_t grads;                     /* f32: LoRA grads, or the base grads (full fine-tuning) */
    size_t optim;                     /* AdamW m and v (f32) */
    size_t act_layer;                 /* saved activations of one layer, no checkpointing */
    size_t act_layer_ckpt;            /* per layer with checkpointing (the layer input) */
    size_t act_full, act_ckpt;        /* all activations + backward scratch, without / with */
    size_t act;                       /* the chosen one of the two */
    size_t workspace;
    size_t teacher;                   /* the frozen teacher: base weights (+ LoRA adapters) */
    size_t anchor;                    /* the anchor: one trainable vector, f32 */
    size_t method_state;              /* teacher + anchor + the methods' own state */
    int eval_batch, eval_len;         /* generation batch that fits, cache positions */
    size_t kv_cache;                  /* (L, eval_batch, KV, eval_len, hd) x 2, f32 */
    size_t gen_work;                  /* generation work buffers (1024 rows) */
    size_t train_total, eval_total, total;
    size_t biggest;                   /* the largest single buffer, bytes */
    const char *biggest_name;         /* its name ("params", "logits", "gate/up/act", ...) */
};

/* Fills *p. 0, or uf_fail for an invalid config / knob (named). */
int uf_memplan_compute(const struct uf_memplan_in *in, struct uf_memplan *p);
/* The generation batch (<= max_batch, >= 1) whose KV cache of `len` positions fits in `bytes`. */
int uf_memplan_eval_batch(const struct uf_model_config *c, int len, size_t bytes, int max_batch);
/* The generation batch (<= max_batch, >= 1) for `len` cache positions on device d now, by the
 * plan's rule: the cache may use what the device's peak so far (training) leaves beside the
 * live buffers and the generation work buffers, within the usable memory. evaluate.c uses it. */
struct uf_device;
int uf_memplan_eval_batch_now(const struct uf_device *d, const struct uf_model_config *c, int len,
                              int max_batch);
/* Bytes of generate.c's work buffers for `rows` token rows per call (KV cache excluded). */
size_t uf_memplan_gen_work(const struct uf_model_config *c, int rows);
/* Prints the plan (one line per item, GiB and MiB), indented by `indent`. */
void uf_memplan_print(const struct uf_memplan_in *in, const struct uf_memplan *p, FILE *out,
                      const char *indent);
/* 0 when the plan fits `device_bytes` of global memory (less the reserve) and its largest
 * buffer fits in->device_max_alloc (when known); else -1 with a uf_fail that names the total
 * (or the buffer), the device and the knobs to turn (bf16, checkpointing, micro_batch, max_len,
 * lora) with what each saves. */
int uf_memplan_fits(const struct uf_memplan_in *in, const struct uf_memplan *p,
                    size_t device_bytes, const char *device_name);

/* The model config of a recipe model spec (uf.model.new with `vocab` standing in for the
 * tokenizer's when the spec has none; uf.hf / uf.checkpoint: their config.json only). 0 or uf_fail. */
int uf_memplan_config_from_spec(const struct uf_plan_model *m, int vocab, struct uf_model_config *c);
/* The config of a uf.model.new spec (family, d_model, layers, heads, kv_heads, d_ff, head_dim,
 * max_seq; vocab from the spec or the given tokenizer size); the engine builds the same. */
int uf_memplan_config_new(const struct uf_plan_model *m, int vocab, struct uf_model_config *c);
/* The plan inputs of a recipe stage/run node (lora, optim: micro_batch / batch, max_len, bf16,
 * checkpointing; eval: max_new_tokens) for config cfg. 0 or uf_fail. */
int uf_memplan_from_node(const struct uf_plan_node *node, const struct uf_model_config *cfg,
                         size_t device_bytes, struct uf_memplan_in *in);

#endif
