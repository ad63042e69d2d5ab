/* optim.h: AdamW over the trainable parameters of a uf_model, with global gradient-norm clipping
 * and learning-rate schedules, all without host synchronisation: the squared gradient norm is a
 * device scalar (uf_op_sumsq over every trainable segment) that uf_op_adamw reads for clipping.
 *
 * What it trains: the LoRA vector when the model has adapters, else every base parameter with
 * m->trainable[i] set (fixed at uf_optim_init). Moments m, v are allocated for those only
 * (one flat tensor each, segments back to back in canonical order).
 * Weight decay rule: decoupled decay (weight_decay) on the 2-D projection matrices (q, k, v, o,
 * gate, up, down, an untied lm_head) and on LoRA A and B; never on norm weights or on the
 * embedding table (nor a tied lm_head, which is the embedding).
 * Gradient accumulation: backward ADDS; uf_optim_step(o, grad_scale) uses grad_scale * grads
 * (e.g. 1/k for k micro-batches whose losses are means), clipping the norm of the scaled
 * gradient to max_norm (PyTorch's clip_grad_norm_ semantics).
 * Schedule (step s is 1-based): warm-up lr * s / warmup for s <= warmup, then constant, cosine
 * down to min_lr_ratio * lr at total_steps, or linear down to the same. */
#ifndef UF_OPTIM_H
#define UF_OPTIM_H

#include "model/model.h"

enum uf_lr_schedule { UF_LR_CONSTANT = 0, UF_LR_COSINE, UF_LR_LINEAR };

struct uf_optim_config {
    float lr, beta1, beta2, eps, weight_decay;
    float max_norm;        /* <= 0: no clipping */
    enum uf_lr_schedule schedule;
    int warmup_steps, total_steps;
    float min_lr_ratio;    /* final lr = min_lr_ratio * lr (cosine / linear) */
};
/* lr 3e-4, betas (0.9, 0.999), eps 1e-8, weight_decay 0, max_norm 1, constant, no warm-up. */
void uf_optim_config_defaults(struct uf_optim_config *c);

struct uf_optim_segment {
    struct uf_tensor p, g, m, v; /* views */
    float weight_decay;
};

struct uf_optim {
    struct uf_optim_config cfg;
    struct uf_device *dev;
    int n_seg;
    struct uf_optim_segment *seg;
    int n_norm;                 /* contiguous runs of trainable gradients (for the norm) */
    struct uf_tensor *norm_g;   /* (n_norm) views */
    int64_t numel;              /* trainable elements */
    struct uf_tensor m, v;      /* (numel) moments */
    struct uf_tensor gnorm_sq;  /* (1) squared norm of the (unscaled) gradient of the last step */
    int step;                   /* steps taken (the next one is step + 1) */
    float last_grad_scale;
    const struct uf_tensor *guard_terms; /* uf_optim_guard: loss terms checked each step */
    int guard_skip;             /* 1: a non-finite step leaves the weights and moments as they are */
    struct uf_tensor health;    /* (3) i32, uf_op_nonfinite_guard's record */
    size_t bytes;               /* device bytes of m, v */
};

/* 0, or uf_fail when nothing is trainable or the config is invalid. */
int uf_optim_init(struct uf_optim *o, struct uf_model *m, const struct uf_optim_config *c);
void uf_optim_free(struct uf_optim *o);
/* Learning rate at 1-based step s. */
float uf_optim_lr(const struct uf_optim_config *c, int step);
/* One AdamW step on the accumulated gradients (they are not zeroed: uf_model_zero_grad). */
void uf_optim_step(struct uf_optim *o, float grad_scale);
/* Non-finite guard: from now on every uf_optim_step checks the gradient norm and terms
 * (uf_op_nonfinite_guard, on the device, no sync) before the update; skip = 1 also skips the
 * update of a bad step. */
void uf_optim_guard(struct uf_optim *o, const struct uf_tensor *terms, int skip);
/* The guard's record (blocks): bad steps so far, first bad step, its bad-term bits (bit 30:
 * the gradient norm). 0 bad steps when no guard is set. */
struct uf_optim_health {
    int bad_steps, first_step, bits;
};
struct uf_optim_health uf_optim_read_health(struct uf_optim *o);
/* Global norm of grad_scale * grads of the last step, before clipping (blocks). */
float uf_optim_read_grad_norm(struct uf_optim *o);
/* Clips the accumulated trainable gradients now, before any further accumulation (the loop's
 * clip_on = "task"): sq = ||g||^2 (a device scalar), g *= min(1, max_norm / (||g|| + 1e-6)),
 * AdamW's factor; the optimizer itself then runs with max_norm 0. */
void uf_optim_clip_now(struct uf_optim *o, float max_norm, struct uf_tensor *sq /* (1) */);
/* count[0] += 1 when ||g||^2 in sq (a device scalar) makes AdamW's clip factor < 1. No sync. */
void uf_optim_count_clipped(struct uf_optim *o, const struct uf_tensor *sq, float max_norm,
                            struct uf_tensor *count /* (1) */);
/* Moments to / from host memory ((numel) each; blocking), for checkpoints; step travels as
 * o->step. */
void uf_optim_save_state(struct uf_optim *o, float *m_host, float *v_host);
void uf_optim_load_state(struct uf_optim *o, const float *m_host, const float *v_host);

#endif
