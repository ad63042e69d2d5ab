/* methods/safeproj.h: the SafeLoRA safety-subspace projection on the host (internal; used by
 * safelora.c and safemerge.c). For one linear module with V = W_aligned - W_base (out, in):
 *   P = V V^T / ||V||_F  (out, out), as in Hsu et al. 2024,
 * and a low-rank update dW = B A (B (out, r), A (r, in)):
 *   PB = V (V^T B) / ||V||_F                        O(out in r), P itself is never formed,
 *   cos(P B A, B A) = <PB A, B A> / (||PB A|| ||B A||) with <X A, Y A> = tr((X^T Y)(A A^T)),
 * so the cosine costs O((out + in) r^2) beyond PB. A dense update (full fine-tuning) uses
 * uf_safeproj_cos_dense (O(out in^2): small models only). A zero V or dW gives cos = 1 (nothing
 * to project). Doubles inside, f32 in and out. */
#ifndef UF_METHODS_SAFEPROJ_H
#define UF_METHODS_SAFEPROJ_H

#include <stdint.h>

/* PB (out, r) and the cosine; PB may be NULL when only the cosine is wanted. */
double uf_safeproj_lowrank(const float *V, const float *B, const float *A, int64_t out, int64_t in,
                           int64_t r, float *PB);
/* cos(P dW, dW) for a dense dW (out, in). */
double uf_safeproj_cos_dense(const float *V, const float *dW, int64_t out, int64_t in);

#endif
