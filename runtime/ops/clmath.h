/* clmath.h: flat-vector math that continual-learning methods share, on the device, over
 * uf_tensors of equal length (views into the flat parameter / gradient vectors):
 *   - quadratic penalty toward anchor weights (EWC with a diagonal Fisher F, L2-SP with F = 1,
 *     Lisa's proximal term): g += lambda F (p - p0), value += sum lambda/2 F (p - p0)^2;
 *   - dot products into device scalars and the A-GEM projection (no host sync);
 *   - merges: linear / WiSE-FT, task arithmetic, MagMax, TIES (task vectors of METHODS.md).
 * Each has a plain-C reference (uf_clmath_ref_*) that the tests compare against. */
#ifndef UF_CLMATH_H
#define UF_CLMATH_H

#include "core/tensor.h"

/* g += lambda * F * (p - p0) (F may be NULL: F = 1); value[slot] += sum lambda/2 F (p-p0)^2 */
void uf_clmath_penalty(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *p,
                       const struct uf_tensor *p0, const struct uf_tensor *F, float lambda,
                       struct uf_tensor *value, int slot);
/* out[slot] (= or +=) x . y */
void uf_clmath_dot(struct uf_device *d, const struct uf_tensor *x, const struct uf_tensor *y,
                   struct uf_tensor *out, int slot, int accumulate);
/* A-GEM: dots = {g.g_ref, g_ref.g_ref} (device (2)); if g.g_ref < 0: g -= (g.g_ref/g_ref.g_ref) g_ref.
 * Computes the dots itself into `dots`. */
void uf_clmath_agem(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *g_ref,
                    struct uf_tensor *dots);
/* out = a x + b y + c z (z may be NULL with c = 0); out may alias an input. */
void uf_clmath_lincomb(struct uf_device *d, struct uf_tensor *out, float a, const struct uf_tensor *x,
                       float b, const struct uf_tensor *y, float c, const struct uf_tensor *z);
/* MagMax: out = base + lambda * maxabs(m1 - base, m2 - base) */
void uf_clmath_magmax(struct uf_device *d, struct uf_tensor *out, const struct uf_tensor *base,
                      const struct uf_tensor *m1, const struct uf_tensor *m2, float lambda);
/* Task arithmetic over the safety vector tau_s = safe - base and the user vector
 * tau_u = ft - safe: out = base + ls tau_s + lu tau_u (computed as safe + (ls - 1) tau_s +
 * lu tau_u: ls = 1, tau_u = 0 gives safe exactly). out may alias an input. */
void uf_clmath_task_arith(struct uf_device *d, struct uf_tensor *out, const struct uf_tensor *base,
                          const struct uf_tensor *safe, const struct uf_tensor *ft, float ls, float lu);
/* TIES over tau_s = safe - base and tau_u = ft - safe: keep the top `dens_s` / `dens_u` share of
 * each by magnitude, scale them by ls / lu, elect the sign of their sum per entry, disjoint mean
 * m of the kept entries agreeing with it; out = base + m (computed as safe + (m - tau_s): with
 * tau_u = 0, dens_s = 1 and ls = 1 it is safe exactly). The trim thresholds are found on the host
 * (after training, once): this one reads the vectors back. out may alias an input. */
void uf_clmath_ties(struct uf_device *d, struct uf_tensor *out, const struct uf_tensor *base,
                    const struct uf_tensor *safe, const struct uf_tensor *ft, float dens_s,
                    float dens_u, float ls, float lu);

/* Plain-C references (double accumulation where it reduces). */
double uf_clmath_ref_penalty(float *g, const float *p, const float *p0, const float *F,
                             float lambda, size_t n);
void uf_clmath_ref_agem(float *g, const float *g_ref, size_t n);
void uf_clmath_ref_magmax(float *out, const float *base, const float *m1, const float *m2,
                          float lambda, size_t n);
void uf_clmath_ref_task_arith(float *out, const float *base, const float *safe, const float *ft,
                              float ls, float lu, size_t n);
void uf_clmath_ref_ties(float *out, const float *base, const float *safe, const float *ft,
                        float dens_s, float dens_u, float ls, float lu, size_t n);
/* magnitude threshold keeping the top `density` share of |x| (entries >= it are kept) */
float uf_clmath_topk_threshold(const float *x, size_t n, float density);

/* ---- distillation and Fisher helpers (DER, LwF, EWC, Refresh) ------------------------------ */
/* x, y, g: (rows, W) views; mask: (rows) f32; thr: (rows) or NULL. For each element,
 * sel = mask[row] * (thr == NULL or y >= thr[row]);  g = 2 scale sel (x - y) (g is WRITTEN);
 * value[slot] += sum scale sel (x - y)^2. g may not alias x or y. */
void uf_clmath_sqdiff(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *x,
                      const struct uf_tensor *y, const struct uf_tensor *mask,
                      const struct uf_tensor *thr, int64_t W, float scale,
                      struct uf_tensor *value, int slot);
/* Temperature distillation (LwF on logits; Hinton et al. 2015): x (student), y (teacher), g:
 * (rows, W) views, mask (rows) f32. Per row, p = softmax(x / T), q = softmax(y / T):
 * g = scale T mask (p - q) (WRITTEN; the gradient of the value with respect to x);
 * value[slot] += sum_rows scale T^2 mask KL(q || p), KL = sum_v q (log q - log p).
 * g may not alias x or y. T > 0. */
void uf_clmath_kl_temp(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *x,
                       const struct uf_tensor *y, const struct uf_tensor *mask, int64_t W, float T,
                       float scale, struct uf_tensor *value, int slot);
/* thr[r] = k-th largest entry of row r of x (rows, W), ties counted (k >= W: the row minimum). */
void uf_clmath_row_topk_thr(struct uf_device *d, const struct uf_tensor *x, int64_t W, int k,
                            struct uf_tensor *thr);
/* acc += scale * g^2 */
void uf_clmath_sq_accum(struct uf_device *d, struct uf_tensor *acc, const struct uf_tensor *g,
                        float scale);
/* Refresh's unlearning step (methods/refresh.c) on one parameter tensor p (a view; its elements
 * are elements base.. of the trainable vector), with its gradient g and Fisher F:
 *   p += delta / (1 + c F) * (||p|| / (||g|| + 1e-20) g + sigma xi),
 * xi_i = uf_clmath_normal(seed, base + i) (a standard normal, deterministic). nn: a device scratch of
 * >= 2 floats at its offset, which gets {p.p, g.g} (computed here). */
void uf_clmath_refresh_step(struct uf_device *d, struct uf_tensor *p, const struct uf_tensor *g,
                            const struct uf_tensor *F, struct uf_tensor *nn, float delta, float c,
                            float sigma, uint64_t seed, uint64_t base);
/* The standard normal of element i under seed: Box-Muller on the counter-based hash
 * (uf_op_dropout_hash), u1 = ((h(seed, 2i) >> 8) + 1) 2^-24, u2 = (h(seed, 2i + 1) >> 8) 2^-24,
 * sqrt(-2 ln u1) cos(2 pi u2); the device computes the same in float. */
double uf_clmath_normal(uint64_t seed, uint64_t i);

double uf_clmath_ref_sqdiff(float *g, const float *x, const float *y, const float *mask,
                            const float *thr, size_t rows, size_t W, float scale);
/* returns the value; g as uf_clmath_kl_temp */
double uf_clmath_ref_kl_temp(float *g, const float *x, const float *y, const float *mask,
                             size_t rows, size_t W, float T, float scale);
/* k-th largest of x[0..W) with ties counted (as uf_clmath_row_topk_thr) */
float uf_clmath_ref_topk_thr(const float *x, size_t W, int k);
/* uf_clmath_refresh_step on the host (norms in double) */
void uf_clmath_ref_refresh_step(float *p, const float *g, const float *F, size_t n, float delta,
                                float c, float sigma, uint64_t seed, uint64_t base);

#endif
