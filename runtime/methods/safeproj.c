/* methods/safeproj.c: see safeproj.h. */
#include "methods/safeproj.h"

#include <math.h>
#include <stdlib.h>

#include "core/util.h"

static double frob(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* tr((X^T Y) G) with X, Y (out, r), G (r, r) symmetric */
static double inner_a(const double *X, const double *Y, const double *G, int64_t out, int64_t r) {
    double s = 0;
    for (int64_t j = 0; j < r; j++)
        for (int64_t k = 0; k < r; k++) {
            double xy = 0;
            for (int64_t o = 0; o < out; o++) xy += X[o * r + j] * Y[o * r + k];
            s += xy * G[k * r + j];
        }
    return s;
}

double uf_safeproj_lowrank(const float *V, const float *B, const float *A, int64_t out, int64_t in,
                           int64_t r, float *PB) {
    double nv = frob(V, out * in);
    double *C = uf_calloc((size_t)(in * r), sizeof *C);     /* V^T B (in, r) */
    double *pb = uf_calloc((size_t)(out * r), sizeof *pb);  /* (out, r) */
    double *b = uf_malloc((size_t)(out * r) * sizeof *b);
    double *G = uf_calloc((size_t)(r * r), sizeof *G);      /* A A^T */
    for (int64_t i = 0; i < out * r; i++) b[i] = B[i];
    if (nv > 0) {
        for (int64_t o = 0; o < out; o++)
            for (int64_t i = 0; i < in; i++) {
                double v = V[o * in + i];
                for (int64_t j = 0; j < r; j++) C[i * r + j] += v * b[o * r + j];
            }
        for (int64_t o = 0; o < out; o++)
            for (int64_t i = 0; i < in; i++) {
                double v = V[o * in + i] / nv;
                for (int64_t j = 0; j < r; j++) pb[o * r + j] += v * C[i * r + j];
            }
    }
    for (int64_t j = 0; j < r; j++)
        for (int64_t k = 0; k < r; k++) {
            double s = 0;
            for (int64_t i = 0; i < in; i++) s += (double)A[j * in + i] * A[k * in + i];
            G[j * r + k] = s;
        }
    double pbb = inner_a(pb, b, G, out, r), pp = inner_a(pb, pb, G, out, r), bb = inner_a(b, b, G, out, r);
    double cos = (nv > 0 && pp > 0 && bb > 0) ? pbb / sqrt(pp * bb) : 1.0;
    if (PB)
        for (int64_t i = 0; i < out * r; i++) PB[i] = (float)(nv > 0 ? pb[i] : b[i]);
    free(C), free(pb), free(b), free(G);
    return cos;
}

double uf_safeproj_cos_dense(const float *V, const float *dW, int64_t out, int64_t in) {
    double nv = frob(V, out * in), nd = frob(dW, out * in);
    if (nv == 0 || nd == 0) return 1.0;
    /* M = V^T dW (in, in); P dW = V M / nv; <P dW, dW> = ||M||^2 / nv; ||P dW||^2 = ||V M||^2 / nv^2 */
    double *M = uf_calloc((size_t)(in * in), sizeof *M);
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) {
            double v = V[o * in + i];
            if (v == 0) continue;
            for (int64_t j = 0; j < in; j++) M[i * in + j] += v * dW[o * in + j];
        }
    double mm = 0;
    for (int64_t i = 0; i < in * in; i++) mm += M[i] * M[i];
    double vm = 0;
    double *row = uf_malloc((size_t)in * sizeof *row);
    for (int64_t o = 0; o < out; o++) {
        for (int64_t j = 0; j < in; j++) row[j] = 0;
        for (int64_t i = 0; i < in; i++) {
            double v = V[o * in + i];
            for (int64_t j = 0; j < in; j++) row[j] += v * M[i * in + j];
        }
        for (int64_t j = 0; j < in; j++) vm += row[j] * row[j];
    }
    free(row), free(M);
    double pd = mm / nv, pp = vm / (nv * nv);
    return pp > 0 ? pd / (sqrt(pp) * nd) : 1.0;
}
