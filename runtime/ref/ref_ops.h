/* ref_ops.h: the plain-C reference (oracle) of every op of the training engine, forward and
 * backward, over plain host arrays. Clarity and exactness first: naive loops, every sum and dot
 * product accumulated in double, reductions over repeated indices (embedding rows, GQA key/value
 * heads) accumulated in double before a single add into the output. Not fast, not for training.
 *
 * Conventions are those of model_config.h and ops.h:
 *   - N = B*T token rows, row n is (b = n / T, t = n % T); all arrays contiguous row-major.
 *   - Linear weights are (out, in): y = x W^T.
 *   - Forward functions WRITE their outputs. Backward functions ADD into every gradient output
 *     (dx, dw, ...), so the caller zeroes gradients first. A NULL gradient output is skipped
 *     (frozen weight). The one exception is uf_ref_cross_entropy_backward, which WRITES dlogits.
 *   - Final norm = uf_ref_rmsnorm_*, LM head = uf_ref_matmul_* with W = lm_head (or the embedding
 *     table when tied).
 *
 * Every op exists twice, from the same source (ref_ops_impl.h): on float arrays (uf_ref_<op>_*, the
 * oracle for the f32 OpenCL kernels) and on double arrays (uf_ref_<op>_*_f64, used by the
 * reference model and by the finite-difference tests). Except for the float storage of inputs
 * and outputs the two compute the same thing. */
#ifndef UF_REF_OPS_H
#define UF_REF_OPS_H

#include <stdint.h>

#include "core/model_config.h"

/* ---- RoPE frequencies ---------------------------------------------------------------------
 * inv_freq[i] = theta^(-2i/hd) for i < hd/2 (computed in double, stored as float), then, when
 * c->rope_factor > 0, the llama3 scaling of Hugging Face (_compute_llama3_parameters):
 *   wavelen = 2 pi / inv_freq; lo = orig_max_pos / low_freq_factor; hi = orig_max_pos / high_freq_factor
 *   wavelen > lo: inv_freq / factor;  wavelen < hi: inv_freq;  otherwise (medium band)
 *   s = (orig_max_pos / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor),
 *   (1 - s) * inv_freq / factor + s * inv_freq.
 * The rotation angle of position t is t * (double)inv_freq[i]. Everyone uses this function. */
void uf_ref_rope_inv_freq(const struct uf_model_config *c, float *inv_freq /* (hd/2) */);

/* ---- embedding ----------------------------------------------------------------------------
 * out[n, :] = scale * wte[tokens[n], :]  (scale = sqrt(D) rounded to float for Gemma, else 1).
 * backward: dwte[v, :] += scale * sum over n with tokens[n] == v of dout[n, :]. Tokens in [0, V). */
void uf_ref_embedding_forward(float *out /* (N, D) */, const int32_t *tokens /* (N) */,
                              const float *wte /* (V, D) */, int N, int D, float scale);
void uf_ref_embedding_backward(float *dwte /* (V, D) += */, const float *dout /* (N, D) */,
                               const int32_t *tokens /* (N) */, int N, int D, float scale);

/* ---- RMSNorm ------------------------------------------------------------------------------
 * rstd[n] = 1 / sqrt(mean_d(x[n,d]^2) + eps); y[n,d] = x[n,d] * rstd[n] * (plus_one ? 1 + w[d] : w[d]).
 * rstd may be NULL (not returned). backward recomputes rstd from x. */
void uf_ref_rmsnorm_forward(float *y /* (N, D) */, float *rstd /* (N) or NULL */,
                            const float *x /* (N, D) */, const float *w /* (D) */, int N, int D,
                            float eps, int plus_one);
void uf_ref_rmsnorm_backward(float *dx /* (N, D) += */, float *dw /* (D) += or NULL */,
                             const float *dy /* (N, D) */, const float *x /* (N, D) */,
                             const float *w /* (D) */, int N, int D, float eps, int plus_one);

/* ---- matmul (linear without bias) ---------------------------------------------------------
 * y = x W^T;  backward: dx += dy W, dW += dy^T x. */
void uf_ref_matmul_forward(float *y /* (N, out) */, const float *x /* (N, in) */,
                           const float *w /* (out, in) */, int N, int in, int out);
void uf_ref_matmul_backward(float *dx /* (N, in) += or NULL */, float *dw /* (out, in) += or NULL */,
                            const float *dy /* (N, out) */, const float *x /* (N, in) */,
                            const float *w /* (out, in) */, int N, int in, int out);

/* ---- LoRA linear (PEFT) -------------------------------------------------------------------
 * y = x W^T + scale * (x A^T) B^T, scale = alpha / r.  W frozen (dw usually NULL).
 * backward: with u = x A^T:  dB += scale dy^T u;  du = scale dy B;  dA += du^T x;
 *           dx += dy W + du A;  dW += dy^T x (when dw != NULL). */
void uf_ref_lora_forward(float *y /* (N, out) */, const float *x /* (N, in) */,
                         const float *w /* (out, in) */, const float *a /* (r, in) */,
                         const float *b /* (out, r) */, int N, int in, int out, int r, float scale);
void uf_ref_lora_backward(float *dx /* (N, in) += or NULL */, float *dw /* (out, in) += or NULL */,
                          float *da /* (r, in) += or NULL */, float *db /* (out, r) += or NULL */,
                          const float *dy /* (N, out) */, const float *x /* (N, in) */,
                          const float *w /* (out, in) */, const float *a /* (r, in) */,
                          const float *b /* (out, r) */, int N, int in, int out, int r, float scale);

/* ---- RoPE (Hugging Face rotate_half form) -------------------------------------------------
 * x viewed as (N, nh, hd), position of row n is t = n % T, half = hd/2, angle = t * inv_freq[i]:
 *   y[i] = x[i] cos - x[i+half] sin;  y[i+half] = x[i+half] cos + x[i] sin   (i < half)
 * y may alias x in forward. backward: dx[i] += dy[i] cos + dy[i+half] sin;
 *                                      dx[i+half] += dy[i+half] cos - dy[i] sin. */
void uf_ref_rope_forward(float *y /* (N, nh*hd) */, const float *x /* (N, nh*hd) */,
                         const float *inv_freq /* (hd/2) */, int N, int T, int nh, int hd);
void uf_ref_rope_backward(float *dx /* (N, nh*hd) += */, const float *dy /* (N, nh*hd) */,
                          const float *inv_freq /* (hd/2) */, int N, int T, int nh, int hd);

/* ---- causal attention with GQA, sliding window and per-sequence lengths --------------------
 * Query (b, i, h) with i < lengths[b] sees key j iff j <= i, j < lengths[b] and (window == 0 or
 * i - j < window); kv head = h / (H / KV); s_j = q.k_j / sqrt(hd); o = sum_j softmax(s)_j v_j;
 * lse[b,h,i] = logsumexp_j s_j. Query rows i >= lengths[b] give o = 0, lse = 0 and no gradient.
 * backward recomputes the probabilities from q and k. */
void uf_ref_attention_forward(float *o /* (N, H*hd) */, float *lse /* (B, H, T) or NULL */,
                              const float *q /* (N, H*hd) */, const float *k /* (N, KV*hd) */,
                              const float *v /* (N, KV*hd) */, const int32_t *lengths /* (B) */,
                              int B, int T, int H, int KV, int hd, int window);
void uf_ref_attention_backward(float *dq /* (N, H*hd) += */, float *dk /* (N, KV*hd) += */,
                               float *dv /* (N, KV*hd) += */, const float *dout /* (N, H*hd) */,
                               const float *q, const float *k, const float *v,
                               const int32_t *lengths /* (B) */, int B, int T, int H, int KV,
                               int hd, int window);

/* ---- gated MLP activation -----------------------------------------------------------------
 * h = act(g) * u, act = SiLU g / (1 + e^-g) or tanh-GELU 0.5 g (1 + tanh(sqrt(2/pi)(g + 0.044715 g^3))).
 * backward: dg += dh * u * act'(g);  du += dh * act(g). n = N * F elements. */
void uf_ref_gated_act_forward(float *h, const float *g, const float *u, int64_t n, enum uf_act act);
void uf_ref_gated_act_backward(float *dg /* += */, float *du /* += */, const float *dh,
                               const float *g, const float *u, int64_t n, enum uf_act act);

/* ---- residual add -------------------------------------------------------------------------
 * out = a + b;  backward: da += dout, db += dout. */
void uf_ref_residual_forward(float *out, const float *a, const float *b, int64_t n);
void uf_ref_residual_backward(float *da /* += */, float *db /* += */, const float *dout, int64_t n);

/* ---- softmax cross-entropy with a loss mask -----------------------------------------------
 * loss_rows[n] = mask[n] * (logsumexp(logits[n]) - logits[n, targets[n]])  (0 where mask[n] == 0;
 * targets there are not read). Returns sum_n loss_rows[n] / sum_n mask[n] (0 when no mask is set).
 * mask NULL = all ones. backward WRITES dlogits[n,:] = scale * mask[n] * (softmax(logits[n]) -
 * onehot(targets[n])); the mean loss has scale = 1 / sum(mask). dlogits must not alias logits. */
double uf_ref_cross_entropy_forward(float *loss_rows /* (N) or NULL */, const float *logits /* (N, V) */,
                                    const int32_t *targets /* (N) */, const float *mask /* (N) */,
                                    int N, int V);
void uf_ref_cross_entropy_backward(float *dlogits /* (N, V) written */, const float *logits /* (N, V) */,
                                   const int32_t *targets /* (N) */, const float *mask /* (N) */,
                                   int N, int V, double scale);

/* ---- AdamW (the optimizer step of ops.h's uf_op_adamw, on one parameter segment) -----------
 *   clip = max_norm > 0 ? min(1, max_norm / (sqrt(gnorm_sq) + 1e-6)) : 1
 *   g' = clip * grad_scale * g;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
 *   p -= lr * ((m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps) + weight_decay * p)
 * step is 1-based; computed in double, p, m, v stored back as float. */
void uf_ref_adamw(float *p /* (n) */, const float *g /* (n) */, float *m /* (n) */, float *v /* (n) */,
                  int64_t n, double gnorm_sq, float lr, float beta1, float beta2, float eps,
                  float weight_decay, float max_norm, float grad_scale, int step);

/* ---- the same ops on double arrays (see the float versions above for shapes and meaning) --- */
void uf_ref_embedding_forward_f64(double *out, const int32_t *tokens, const double *wte, int N, int D,
                                  float scale);
void uf_ref_embedding_backward_f64(double *dwte, const double *dout, const int32_t *tokens, int N,
                                   int D, float scale);
void uf_ref_rmsnorm_forward_f64(double *y, double *rstd, const double *x, const double *w, int N,
                                int D, float eps, int plus_one);
void uf_ref_rmsnorm_backward_f64(double *dx, double *dw, const double *dy, const double *x,
                                 const double *w, int N, int D, float eps, int plus_one);
void uf_ref_matmul_forward_f64(double *y, const double *x, const double *w, int N, int in, int out);
void uf_ref_matmul_backward_f64(double *dx, double *dw, const double *dy, const double *x,
                                const double *w, int N, int in, int out);
void uf_ref_lora_forward_f64(double *y, const double *x, const double *w, const double *a,
                             const double *b, int N, int in, int out, int r, float scale);
void uf_ref_lora_backward_f64(double *dx, double *dw, double *da, double *db, const double *dy,
                              const double *x, const double *w, const double *a, const double *b,
                              int N, int in, int out, int r, float scale);
void uf_ref_rope_forward_f64(double *y, const double *x, const float *inv_freq, int N, int T, int nh,
                             int hd);
void uf_ref_rope_backward_f64(double *dx, const double *dy, const float *inv_freq, int N, int T,
                              int nh, int hd);
void uf_ref_attention_forward_f64(double *o, double *lse, const double *q, const double *k,
                                  const double *v, const int32_t *lengths, int B, int T, int H,
                                  int KV, int hd, int window);
void uf_ref_attention_backward_f64(double *dq, double *dk, double *dv, const double *dout,
                                   const double *q, const double *k, const double *v,
                                   const int32_t *lengths, int B, int T, int H, int KV, int hd,
                                   int window);
void uf_ref_gated_act_forward_f64(double *h, const double *g, const double *u, int64_t n,
                                  enum uf_act act);
void uf_ref_gated_act_backward_f64(double *dg, double *du, const double *dh, const double *g,
                                   const double *u, int64_t n, enum uf_act act);
void uf_ref_residual_forward_f64(double *out, const double *a, const double *b, int64_t n);
void uf_ref_residual_backward_f64(double *da, double *db, const double *dout, int64_t n);
double uf_ref_cross_entropy_forward_f64(double *loss_rows, const double *logits,
                                        const int32_t *targets, const float *mask, int N, int V);
void uf_ref_cross_entropy_backward_f64(double *dlogits, const double *logits, const int32_t *targets,
                                       const float *mask, int N, int V, double scale);

#endif
