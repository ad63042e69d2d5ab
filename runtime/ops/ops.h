/* ops.h: the device op launchers the training engine is built from (one opencl/<family>.cl per
 * op family, one plain-C oracle per op in runtime/ref/ref_ops.h).
 *
 * Rules shared by every op:
 *   - Tensors are f32 unless marked i32; contiguous row-major; N = B*T token rows, row n is
 *     (b = n / T, t = n % T). Shapes are given beside each argument.
 *   - Forward ops WRITE their outputs. Backward ops ADD into every gradient output (dx, dw, ...),
 *     so the caller zeroes gradients once and micro-batches / residual branches accumulate.
 *     The one exception is uf_op_cross_entropy, the head of the backward chain, which WRITES dlogits.
 *   - Deterministic: no floating-point atomics; every reduction has a fixed order, so the same
 *     inputs on the same device give bit-identical outputs.
 *   - Nothing is read back to the host: scalars (loss, squared grad norm) stay in device tensors.
 *   - Conventions (RoPE form, attention masking, norms, activations) are those of model_config.h. */
#ifndef UF_OPS_H
#define UF_OPS_H

#include "core/tensor.h"

/* Kernel path. 0 (default): by device (uf_device_gpu_like, core/device.h), CPU devices get the
 * CPU-tuned kernels (explicit 16-wide vectors, one work-item per row or chunk; attention.cl's one
 * work-item per query row), GPUs and any device under GPU limits the GPU kernels (work-group per
 * row with local-memory tree sums, coalesced; attention_gpu.cl's cooperative tiles). 1: the GPU
 * kernels on every device; -1: the CPU-tuned kernels on every device (tests run both paths on
 * any device). Both are deterministic; their summation orders differ, so CPU and GPU results
 * differ in the last bits. */
extern int uf_ops_portable;
/* 1 when ops on d take the CPU-tuned kernels (the rule above). */
int uf_ops_cpu_path(const struct uf_device *d);
/* Attention backward form: 0 (default) = $UNFORGET_ATTN_BWD (kernels | gemm), else on the CPU
 * path the GEMM form when it fits, on the GPU path the tile kernels; 1 = the GEMM form when it
 * fits; 2 = the tile kernels (memory linear in T) of the path's variant. Tests set it. */
extern int uf_attn_bwd_form;

/* ---- embedding (opencl/embed.cl) --------------------------------------------------------- */
/* out[n, :] = scale * table[tokens[n], :]; a token outside [0, V) gives a NaN row (so the loss shows
 * it) and no gradient. D = out.numel / N, V = table.numel / D. */
void uf_op_embed_forward(struct uf_device *d, const struct uf_tensor *tokens /* i32 (N) */,
                         const struct uf_tensor *table /* (V, D) */, float scale,
                         struct uf_tensor *out /* (N, D) */);
/* dtable[v, :] += scale * sum over n with tokens[n] == v of dout[n, :] (rows summed in order n;
 * uses 2N ints of the device scratch buffer) */
void uf_op_embed_backward(struct uf_device *d, const struct uf_tensor *tokens /* i32 (N) */,
                          const struct uf_tensor *dout /* (N, D) */, float scale,
                          struct uf_tensor *dtable /* (V, D) */);

/* ---- RMSNorm (opencl/norm.cl) ------------------------------------------------------------ */
/* y = x * rstd * (plus_one ? 1 + w : w), rstd[n] = 1 / sqrt(mean(x[n]^2) + eps) (saved) */
void uf_op_rmsnorm_forward(struct uf_device *d, const struct uf_tensor *x /* (N, D) */,
                           const struct uf_tensor *w /* (D) */, float eps, int plus_one,
                           struct uf_tensor *y /* (N, D) */, struct uf_tensor *rstd /* (N) */);
void uf_op_rmsnorm_backward(struct uf_device *d, const struct uf_tensor *x /* (N, D) */,
                            const struct uf_tensor *w /* (D) */, const struct uf_tensor *rstd /* (N) */,
                            const struct uf_tensor *dy /* (N, D) */, int plus_one,
                            struct uf_tensor *dx /* (N, D), += */,
                            struct uf_tensor *dw /* (D), +=; NULL when w is frozen */);
/* (dw uses ceil(N/32)*D floats of the device scratch buffer) */

/* ---- RoPE (opencl/rope.cl), rotate_half form -------------------------------------------- */
/* x viewed as (N, nh, hd); position of row n is n % T; inv_freq (hd/2) from uf_rope_inv_freq.
 * y may be x (in place). The angle is t * inv_freq[i] evaluated exactly (as the reference). */
void uf_op_rope_forward(struct uf_device *d, const struct uf_tensor *x /* (N, nh*hd) */, int T,
                        int nh, int hd, const struct uf_tensor *inv_freq /* (hd/2) */,
                        struct uf_tensor *y /* (N, nh*hd) */);
void uf_op_rope_backward(struct uf_device *d, const struct uf_tensor *dy /* (N, nh*hd) */, int T,
                         int nh, int hd, const struct uf_tensor *inv_freq /* (hd/2) */,
                         struct uf_tensor *dx /* (N, nh*hd), += */);

/* ---- gated activation (opencl/act.cl) ---------------------------------------------------- */
/* h = act(g) * u with act = SiLU (gelu_tanh = 0) or tanh-approximated GELU (gelu_tanh = 1) */
void uf_op_gated_forward(struct uf_device *d, const struct uf_tensor *g /* (N, F) */,
                         const struct uf_tensor *u /* (N, F) */, int gelu_tanh,
                         struct uf_tensor *h /* (N, F) */);
void uf_op_gated_backward(struct uf_device *d, const struct uf_tensor *g, const struct uf_tensor *u,
                          const struct uf_tensor *dh /* (N, F) */, int gelu_tanh,
                          struct uf_tensor *dg /* (N, F), += */, struct uf_tensor *du /* += */);
/* Inverted dropout with a counter-based RNG: keep element i iff hash(seed, i) >= p; y = x / (1-p)
 * on kept elements, 0 elsewhere. The same seed regenerates the mask in backward (nothing stored).
 * backward: dx += mask * dy / (1-p). */
void uf_op_dropout_forward(struct uf_device *d, const struct uf_tensor *x, float p, uint64_t seed,
                           struct uf_tensor *y); /* p in [0, 1) */
void uf_op_dropout_backward(struct uf_device *d, const struct uf_tensor *dy, float p, uint64_t seed,
                            struct uf_tensor *dx /* += */);
/* The mask on the host (tests, oracles): element i is kept iff
 * uf_op_dropout_hash(seed, i) >= uf_op_dropout_threshold(p) (i counts from the tensor's start). */
uint32_t uf_op_dropout_hash(uint64_t seed, uint64_t i);
uint32_t uf_op_dropout_threshold(float p); /* floor(p * 2^32) */

/* ---- attention (opencl/attention.cl: CPU variant; attention_gpu.cl: GPU variant) -------- */
/* Causal attention with GQA, optional sliding window, per-sequence lengths (model_config.h):
 * o[b,t,h,:] = sum_j softmax_j(q.k_j / sqrt(hd)) v_j over visible keys j. Rows t >= lengths[b]
 * produce zeros. lse (B, H, T) = log-sum-exp of the scaled scores per query (saved for backward;
 * 0 for padded rows). The forward keeps O(T) memory (online softmax); on the CPU path the
 * backward writes P and dS tiles into at most 64 MiB of device scratch and uses batched GEMMs,
 * falling back to tile kernels with memory linear in T for longer sequences (or
 * UNFORGET_ATTN_BWD=kernels); on the GPU path it runs the tile kernels (B*H*T floats of scratch). */
/* Tile rows of the GPU variant's instance for head_dim hd (attention_gpu.cl's FWD_BQ, FWD_BK,
 * DQ_BQ = DKV_BK, DQ_BK = DKV_BQ): forward query block x key tile, backward query block (dq)
 * and key block (dk/dv) x the tile of the other side. D is hd padded to 32, 64, 128 or 256. */
struct uf_attn_gpu_tiles { int D, fwd_bq, fwd_bk, bwd_rows, bwd_cols; };
struct uf_attn_gpu_tiles uf_attn_gpu_tiles(int hd);
void uf_op_attention_forward(struct uf_device *d, const struct uf_tensor *q /* (N, H*hd) */,
                             const struct uf_tensor *k /* (N, KV*hd) */,
                             const struct uf_tensor *v /* (N, KV*hd) */,
                             const struct uf_tensor *lengths /* i32 (B) */, int B, int T, int H,
                             int KV, int hd, int window, struct uf_tensor *o /* (N, H*hd) */,
                             struct uf_tensor *lse /* (B, H, T) */);
void uf_op_attention_backward(struct uf_device *d, const struct uf_tensor *q,
                              const struct uf_tensor *k, const struct uf_tensor *v,
                              const struct uf_tensor *lengths, int B, int T, int H, int KV, int hd,
                              int window, const struct uf_tensor *o, const struct uf_tensor *lse,
                              const struct uf_tensor *dout /* (N, H*hd) */,
                              struct uf_tensor *dq /* += */, struct uf_tensor *dk /* += */,
                              struct uf_tensor *dv /* += */);

/* ---- loss (opencl/loss.cl) --------------------------------------------------------------- */
/* Softmax cross-entropy, fused forward + backward in one pass over the vocabulary:
 *   loss_rows[n] = mask[n] * (logsumexp(logits[n]) - logits[n, targets[n]])
 *   dlogits[n, :] = scale * mask[n] * (softmax(logits[n]) - onehot(targets[n]))   (WRITTEN)
 * scale is usually 1 / (number of masked tokens). dlogits may be NULL (evaluation only) and may
 * alias logits (computed in place). Rows with mask 0 get loss 0 and dlogits 0 (their target is not
 * read); an unmasked target outside [0, V) gives a NaN loss. */
void uf_op_cross_entropy(struct uf_device *d, const struct uf_tensor *logits /* (N, V) */,
                         const struct uf_tensor *targets /* i32 (N) */,
                         const struct uf_tensor *mask /* (N); NULL = all ones */, float scale,
                         struct uf_tensor *loss_rows /* (N) */, struct uf_tensor *dlogits /* (N, V) */);

/* ---- reductions and the optimizer (opencl/optim.cl) ------------------------------------- */
/* out[0] (= or +=) sum(x) and sum(x^2): deterministic two-level reductions (partials in the
 * device scratch buffer, uf_device_scratch). */
void uf_op_sum(struct uf_device *d, const struct uf_tensor *x, struct uf_tensor *out /* (1) */,
               int accumulate);
void uf_op_sumsq(struct uf_device *d, const struct uf_tensor *x, struct uf_tensor *out /* (1) */,
                 int accumulate);
/* AdamW with decoupled weight decay and bias correction, on one parameter segment:
 *   clip = max_norm > 0 ? min(1, max_norm / (sqrt(gnorm_sq[0]) + 1e-6)) : 1
 *   g' = clip * grad_scale * g;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2
 *   p -= lr * ( (m / (1-b1^step)) / (sqrt(v / (1-b2^step)) + eps) + wd * p )
 * gnorm_sq is a device scalar (from uf_op_sumsq over all trainable grads): no host sync. */
struct uf_adamw_hparams {
    float lr, beta1, beta2, eps, weight_decay, max_norm, grad_scale;
    int step; /* 1-based */
    int skip_nonfinite; /* 1: a NaN/Inf gnorm_sq[0] leaves p, m, v unchanged (gnorm_sq needed) */
};
void uf_op_adamw(struct uf_device *d, struct uf_tensor *p, const struct uf_tensor *g,
                 struct uf_tensor *m, struct uf_tensor *v,
                 const struct uf_tensor *gnorm_sq /* (1); may be NULL when max_norm <= 0 */,
                 const struct uf_adamw_hparams *h);

/* Non-finite guard, one work-item, no host sync: the step is bad when gnorm_sq[0] or any of
 * terms[0..n) (n <= 30) is NaN/Inf. Then health[0] += 1; on the first bad step health[1] = step
 * and health[2] = bit i for each bad terms[i], bit 30 for a bad gnorm_sq; and gnorm_sq[0] = NaN
 * (so uf_op_adamw with skip_nonfinite skips the update). */
void uf_op_nonfinite_guard(struct uf_device *d, const struct uf_tensor *terms /* (n) */,
                           struct uf_tensor *gnorm_sq /* (1) */, struct uf_tensor *health /* (3) i32 */,
                           int step);
/* Clipping outside the optimizer, with AdamW's factor clip = min(1, max_norm / (sqrt(gnorm_sq[0])
 * + 1e-6)) (max_norm > 0): g *= clip; and count[0] += 1 when clip < 1 (a clipped step; count is a
 * device f32 scalar, so no host sync). References below. */
void uf_op_clip_scale(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *gnorm_sq,
                      float max_norm);
void uf_op_clip_count(struct uf_device *d, const struct uf_tensor *gnorm_sq, float max_norm,
                      struct uf_tensor *count /* (1) */);
float uf_ref_clip_factor(float gnorm_sq, float max_norm); /* 1 when max_norm <= 0 */

/* ---- RoPE frequencies (host) ------------------------------------------------------------- */
/* inv_freq[i] = theta^(-2i/hd), i < hd/2, with llama3 scaling when cfg->rope_factor > 0. */
struct uf_model_config;
void uf_rope_inv_freq(const struct uf_model_config *cfg, float *inv_freq /* (hd/2) */);

#endif
