/* loss.cl: softmax cross-entropy, forward and backward fused (runtime/ops/ops.c; oracle
 * uf_ref_cross_entropy_*). Two variants, selected by uf_ops_cpu_path (ops.h):
 *   uf_cross_entropy       GPUs: one work-group per row (local size L, power of two). One pass
 *                          over the row gives each work-item the running max and rescaled sum
 *                          of exp of its elements (consecutive work-items read consecutive
 *                          floats), a fixed-order tree in local memory combines the (max, sum)
 *                          pairs, a second pass writes dlogits: the row is read twice.
 *   uf_cross_entropy_rows  CPUs: one work-item per row with explicit 16-wide vectors (max pass,
 *                          sum pass, write pass; measured ~4x less CPU time than the work-group
 *                          kernel under PoCL).
 * native_exp: relative error ~1e-7 on PoCL, a few ulp on GPUs; the loss is a log of a sum.
 * dlogits may alias logits: each element is read and then written by the same work-item, and the
 * target logit is read before a global-memory barrier that precedes the writes (oclgrind
 * --data-races reports the aliasing without it). */

/* Folds x into a work-item's running softmax statistics: s = sum of exp(x_k - m) over the
 * values folded so far, m their max (starts at -FLT_MAX, s at 0, so -inf logits add 0). */
static inline void lse_fold(float x, float *m, float *s) {
    if (x > *m) {
        *s = *s * native_exp(*m - x) + 1.0f;
        *m = x;
    } else {
        *s += native_exp(x - *m);
    }
}

/* The (m, s) pairs of the work-group combined by a fixed-order tree in local memory (sm, ss:
 * one float per work-item each); every work-item gets the group's pair. Contains barriers. */
static inline void wg_lse(float *m, float *s, __local float *sm, __local float *ss) {
    size_t l = get_local_id(0), L = get_local_size(0);
    sm[l] = *m;
    ss[l] = *s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = L / 2; h > 0; h >>= 1) {
        if (l < h) {
            float m1 = sm[l], m2 = sm[l + h], mm = fmax(m1, m2);
            ss[l] = ss[l] * native_exp(m1 - mm) + ss[l + h] * native_exp(m2 - mm);
            sm[l] = mm;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    *m = sm[0];
    *s = ss[0];
}

/* global (N * L), local (L); s: local (2 L) */
__kernel void uf_cross_entropy(__global const float *logits, ulong lo, __global const int *targets,
                               ulong to, __global const float *mask, ulong mo, int has_mask,
                               float scale, __global float *loss, ulong lso, __global float *dl,
                               ulong dlo, int write_grad, int V, __local float *s) {
    size_t n = get_group_id(0), l = get_local_id(0), L = get_local_size(0);
    __global const float *row = logits + lo + n * V;
    __global float *drow = dl + dlo + n * V;
    float mk = has_mask ? mask[mo + n] : 1.0f;
    if (mk == 0.0f) { /* uniform over the group */
        if (write_grad)
            for (size_t b = 0; b < (size_t)V; b += L) {
                if (b + l < (size_t)V) drow[b + l] = 0.0f;
                UF_VEC_SYNC();
            }
        if (l == 0) loss[lso + n] = 0.0f;
        return;
    }
    int tgt = targets[to + n];
    float xt = tgt >= 0 && tgt < V ? row[tgt] : NAN;
    /* full blocks of L unguarded (vectorises cleanly on CPUs), then the tail */
    size_t full = (size_t)V / L * L;
    float m = -FLT_MAX, acc = 0.0f;
    for (size_t b = 0; b < full; b += L) {
        lse_fold(row[b + l], &m, &acc);
        UF_VEC_SYNC();
    }
    if (full + l < (size_t)V) lse_fold(row[full + l], &m, &acc);
    wg_lse(&m, &acc, s, s + L);
    float lse = m + log(acc);
    if (l == 0) loss[lso + n] = mk * (lse - xt);
    if (write_grad) {
        float f = scale * mk;
        /* dlogits may alias logits: every read of the row (the target logit by every item)
         * happens before any write (the tree sums' barriers only fence local memory) */
#ifndef UF_TEST_RACE /* a deliberately racy build: tests/test_oclgrind.sh checks it is caught */
        barrier(CLK_GLOBAL_MEM_FENCE);
#endif
        for (size_t b = 0; b < full; b += L) {
            drow[b + l] = f * native_exp(row[b + l] - lse);
            UF_VEC_SYNC();
        }
        if (full + l < (size_t)V) drow[full + l] = f * native_exp(row[full + l] - lse);
        barrier(CLK_GLOBAL_MEM_FENCE);
        if (l == 0 && tgt >= 0 && tgt < V) drow[tgt] -= f; /* the one-hot term */
    }
}

/* The same for CPUs: one work-item per row (global N), explicit 16-wide vectors; measured ~4x
 * less CPU time than the work-group kernel under PoCL. */
__kernel void uf_cross_entropy_rows(__global const float *logits, ulong lo,
                                    __global const int *targets, ulong to,
                                    __global const float *mask, ulong mo, int has_mask,
                                    float scale, __global float *loss, ulong lso,
                                    __global float *dl, ulong dlo, int write_grad, int V, int N) {
    size_t n = get_global_id(0);
    if (n >= (size_t)N) return;
    __global const float *row = logits + lo + n * V;
    __global float *drow = dl + dlo + n * V;
    size_t V16 = (size_t)V / 16 * 16, v;
    float mk = has_mask ? mask[mo + n] : 1.0f;
    if (mk == 0.0f) {
        if (write_grad) {
            for (v = 0; v < V16; v += 16) vstore16((float16)0.0f, 0, drow + v);
            for (; v < (size_t)V; v++) drow[v] = 0.0f;
        }
        loss[lso + n] = 0.0f;
        return;
    }
    int tgt = targets[to + n];
    float xt = tgt >= 0 && tgt < V ? row[tgt] : NAN;
    float16 m16 = (float16)(-INFINITY);
    for (v = 0; v < V16; v += 16) m16 = fmax(m16, vload16(0, row + v));
    float m = uf_hmax16(m16);
    for (v = V16; v < (size_t)V; v++) m = fmax(m, row[v]);
    float16 a16 = (float16)0.0f;
    for (v = 0; v < V16; v += 16) a16 += native_exp(vload16(0, row + v) - m);
    float acc = uf_hsum16(a16);
    for (v = V16; v < (size_t)V; v++) acc += native_exp(row[v] - m);
    float lse = m + log(acc);
    loss[lso + n] = mk * (lse - xt);
    if (write_grad) {
        float f = scale * mk;
        for (v = 0; v < V16; v += 16) vstore16(f * native_exp(vload16(0, row + v) - lse), 0, drow + v);
        for (v = V16; v < (size_t)V; v++) drow[v] = f * native_exp(row[v] - lse);
        if (tgt >= 0 && tgt < V) drow[tgt] -= f;
    }
}
