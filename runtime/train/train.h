/* train.h: the training loop of one stage or run, and the hook interface of continual-learning
 * methods (runtime/methods/, one file per method, listed in methods/registry.c).
 *
 * One optimizer step:
 *   zero grads
 *   every method's  batch(b) for each micro-batch b of the step: may change it (Lisa's source
 *                                       switch); then tr->step_masked = their response tokens,
 *                                       tr->step_tokens = their non-padding positions
 *   for each micro-batch b of the step:
 *       forward(b)
 *       every method's  task_loss(b)    may add gradient at the logits / last hidden states of b
 *                                       (LwF: teacher hidden states), before b's backward
 *       backward        (CE of b, weighted 1/#micro-batches via loss_denom)
 *   every method's  extra()             own forward/backward passes adding into the grads
 *                                       (ER, DER, DER++ replay); the model's activations are free
 *   every method's  grad()              add penalty gradients on the flat vectors (EWC, L2-SP, Lisa)
 *   every method's  project()           project the accumulated gradient (A-GEM)
 *   clip by the global norm, AdamW (learning-rate schedule), log, checkpoint
 *   (clip_on = "task": the clip runs right after the micro-batches' backward instead, on the
 *   task gradient, and the hooks' gradients are added unclipped)
 * init() runs once before training (Fisher, buffers, teacher), finish() once after (merges,
 * SafeLoRA). Each method reports its loss term into its slot of tr->terms (a device vector): the
 * loop reads all terms at logging steps only, so no hook needs a host sync.
 * A method with a hook it does not need leaves it NULL. */
#ifndef UF_TRAIN_H
#define UF_TRAIN_H

#include <cjson/cJSON.h>

#include "data/data.h"
#include "data/plan_data.h"
#include "formats/plan.h"
#include "model/model.h"
#include "core/util.h"

struct uf_tokenizer;
struct uf_trainer;

/* A tokenized, right-padded batch on the host. Row r holds example rows[r] of `data`. */
struct uf_train_batch {
    int B, T;
    int32_t *tokens;   /* (B, T) */
    int32_t *targets;  /* (B, T) next token (an RTO row: see make_batch); read where mask != 0 */
    float *mask;       /* (B, T) 1 on response tokens (and EOS), 0 on prompt and padding (an
                          RTO row: its rto_weight on its trained positions) */
    int32_t *lengths;  /* (B) */
    int64_t *rows;     /* (B) */
    int64_t n_masked;  /* sum of mask */
    const struct uf_dataset *data;
};

enum { UF_ANCHOR_ALWAYS = 1, UF_ANCHOR_FULL_FT = 2 };
struct uf_memplan_in;
struct uf_method;
/* A piece of a method's state that checkpoints hold, for a bit-exact resume: a device tensor
 * (t, f32 or i32) or host bytes (host, bytes). */
struct uf_method_state {
    const char *name;
    struct uf_tensor *t;
    void *host;
    size_t bytes;
};
#define UF_METHOD_MAX_STATE 8

struct uf_method_ops {
    const char *name;
    /* traits, read above the loop (uf_methods_check, the pipeline, the memory plan); 0 = no */
    int rewrites_weights; /* its finish hook replaces the final weights: at most one per run */
    int replays;          /* replays a buffer with its own extra forward/backward (ER, DER...) */
    int recomputes_grad;  /* its extra hook recomputes the step's gradient (Refresh): it comes
                             before any other method with an extra hook and with no replays one */
    int needs_theta0;     /* reads tr->theta0: the run loads the pre-alignment weights for it */
    int needs_f32_base;   /* edits the base weights in f32: refuses bf16 = true */
    int needs_lora;       /* works on LoRA adapters: refuses full fine-tuning */
    /* its device state, for the memory plan (memplan.h; `unforget check` prints it): */
    int uses_teacher;     /* takes the frozen teacher (uf_trainer_teacher, shared by methods) */
    int uses_anchor;      /* takes the anchor theta* (uf_trainer_anchor, shared):
                             UF_ANCHOR_ALWAYS, or UF_ANCHOR_FULL_FT (not under LoRA) */
    const char *state_name; /* its own state ("Fisher F", ...), bytes from state_bytes(): what
                             it holds on the device from init to the end of training, plus what
                             its finish hook adds (the merges' copy of theta_safe under LoRA) */
    size_t (*state_bytes)(const struct uf_memplan_in *in, const cJSON *cfg);
    /* optional, called after init: the state beyond the weights, AdamW, step and trainer RNG
     * that a resumed run needs (e.g. Lisa's theta_switch); fills out, returns the count */
    int (*state)(struct uf_method *m, struct uf_method_state *out /* (UF_METHOD_MAX_STATE) */);
    int (*init)(struct uf_method *m, struct uf_trainer *tr);
    int (*batch)(struct uf_method *m, struct uf_trainer *tr, struct uf_train_batch *b);
    int (*task_loss)(struct uf_method *m, struct uf_trainer *tr, const struct uf_train_batch *b);
    int (*extra)(struct uf_method *m, struct uf_trainer *tr);
    int (*grad)(struct uf_method *m, struct uf_trainer *tr);
    int (*project)(struct uf_method *m, struct uf_trainer *tr);
    int (*finish)(struct uf_method *m, struct uf_trainer *tr);
    void (*free)(struct uf_method *m);
};

struct uf_method {
    const struct uf_method_ops *ops;
    const cJSON *cfg;  /* the method's recipe table (validated and defaulted by lua/unforget) */
    int slot;          /* its loss term: tr->terms[slot] */
    void *state;       /* owned by the method, freed by ops->free */
};


/* Optimizer and schedule settings (the recipe's uf.adamw table). */
struct uf_train_hparams {
    float lr, beta1, beta2, eps, weight_decay, clip, warmup;
    int clip_on;      /* 0 "total": clip the step's whole gradient (task + methods) in AdamW;
                         1 "task": clip the task micro-batches' gradient before the methods'
                         extra / grad / project hooks add theirs (README: clip_on) */
    int schedule;     /* 0 constant, 1 cosine, 2 linear (after warm-up) */
    double epochs;
    int64_t steps;    /* 0: from epochs */
    int batch, micro_batch, max_len;
    uint64_t seed;
    int64_t checkpoint_every;
    int skip_nonfinite; /* on_nonfinite: 0 "stop" (error at the first NaN/Inf step), 1 "skip" */
};
/* From the plan's optimizer (every key defaulted by lua/unforget); 0 or uf_fail (invalid values). */
int uf_train_hparams_from_plan(const struct uf_plan_optim *o, struct uf_train_hparams *hp);

#define UF_TRAIN_MAX_TERMS 16

struct uf_trainer {
    struct uf_device *dev;
    struct uf_model *model;          /* the model being trained */
    struct uf_model *teacher;        /* frozen copy of the starting weights; uf_trainer_teacher() */
    struct uf_tensor anchor;         /* copy of the starting trainable vector; uf_trainer_anchor() */
    const struct uf_tensor *theta0;  /* pre-alignment base weights theta_0 (full canonical vector,
                                        model->numel) when known, else NULL: used by the merges,
                                        SafeLoRA and SafeMERGE (methods/README.md) */
    const struct uf_tokenizer *tok;
    const char *template_name;       /* "plain", "llama-2", ... */
    struct uf_train_hparams hp;
    const struct uf_dataset *data;   /* the training rows */
    int64_t step, total_steps;       /* step: completed optimizer steps */
    int64_t step_masked;             /* response tokens of this step's micro-batches (after the
                                        batch hooks): the CE's denominator, for task_loss hooks */
    int64_t step_tokens;             /* non-padding positions of the same micro-batches (sum of
                                        their lengths): LwF's denominator on all tokens */
    int n_methods;
    struct uf_method *methods;
    const char *term_names[UF_TRAIN_MAX_TERMS]; /* [0] = "ce", then one per method */
    struct uf_tensor terms;          /* (UF_TRAIN_MAX_TERMS) device scalars, zeroed each step */
    struct uf_rng rng;               /* for methods' sampling (seeded from hp.seed) */
    double clip_share;               /* after uf_trainer_run: share of the run's steps whose
                                        clipped gradient (clip_on) was clipped; NAN if clip = 0 */
    void *priv;                      /* loop state (train.c) */
};

/* Tokenizes examples rows[0..n) of data with the trainer's tokenizer and template into a
 * right-padded batch of T = min(max_len, longest row); over-long rows are truncated from the
 * end of the response (the prompt is kept; a prompt longer than max_len keeps its last part).
 * text-kind rows (pre-training) are language-modelled on every token.
 * Rows may carry a response prefix (fields written by DeRTa, data/derta.h): response_prefix (a
 * text whose tokens, uf_derta_encode, go at the start of the response with loss mask 0),
 * response_prefix_tokens (keep only the first N of them), rto_weight (an RTO row: prompt + the
 * whole prefix, no response; the target of every prefix token is the response's first token, with
 * mask = rto_weight). A row without these fields is rendered exactly as before. */
int uf_trainer_make_batch(struct uf_trainer *tr, const struct uf_dataset *data,
                          const int64_t *rows, int n, struct uf_train_batch *b);
void uf_train_batch_free(struct uf_train_batch *b);
/* The frozen teacher (a copy of the weights at the start of training, forward only), created on
 * first call. Under LoRA it is the base model with the adapters as they were at the start. */
struct uf_model *uf_trainer_teacher(struct uf_trainer *tr);
/* Device copy of the trainable vector at the start of training (theta*), created on first call. */
struct uf_tensor *uf_trainer_anchor(struct uf_trainer *tr);
/* Loads a dataset of the plan (world split, file, adapter, then its take/skip/sample ops). */
int uf_trainer_load_dataset(struct uf_trainer *tr, const struct uf_plan_dataset *spec, struct uf_dataset *out);

/* ---- the loop -------------------------------------------------------------------------------- */
struct uf_rundir;
/* total_steps = hp->steps, or ceil(epochs * rows / batch). The trainer keeps pointers to model,
 * tok and data (they must outlive it). */
void uf_trainer_init(struct uf_trainer *tr, struct uf_device *dev, struct uf_model *model,
                     const struct uf_tokenizer *tok, const char *template_name,
                     const struct uf_train_hparams *hp, const struct uf_dataset *data);
/* Adds a method (hooks `ops`, found by the caller in the registry, methods.h) with its recipe
 * table cfg (kept, must outlive the trainer); hooks run in the order of the calls. 0 or uf_fail. */
int uf_trainer_add_method(struct uf_trainer *tr, const struct uf_method_ops *ops, const cJSON *cfg);
/* Trains to total_steps: resumes from rd's latest checkpoint when there is one, logs metrics
 * and checkpoints into rd (may be NULL: no logging, no checkpoints), runs the finish hooks. */
int uf_trainer_run(struct uf_trainer *tr, struct uf_rundir *rd, const char *label);
void uf_trainer_free(struct uf_trainer *tr);

#endif
