/* loss.cl: softmax cross-entropy, forward and backward fused (runtime/ops/ops.c; oracle
 * uf_ref_cross_entropy_*). One work-group per row (local size L, power of two): max over the row,
 * sum of exp(x - max) (fixed-order tree sums), then dlogits written in the same kernel. The row
 * (V floats) is read three times while it sits in cache; two exp per element (native_exp:
 * relative error ~1e-7 on PoCL, a few ulp on GPUs; the loss is a log of their sum).
 * dlogits may alias logits: each element is read and then written by the same work-item, and the
 * target logit is read before a global-memory barrier that precedes the writes (oclgrind
 * --data-races reports the aliasing without it). */
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
    float m = -INFINITY;
    for (size_t b = 0; b < full; b += L) {
        m = fmax(m, row[b + l]);
        UF_VEC_SYNC();
    }
    if (full + l < (size_t)V) m = fmax(m, row[full + l]);
    m = uf_wg_max(m, s);
    float acc = 0.0f;
    for (size_t b = 0; b < full; b += L) {
        acc += native_exp(row[b + l] - m);
        UF_VEC_SYNC();
    }
    if (full + l < (size_t)V) acc += native_exp(row[full + l] - m);
    float lse = m + log(uf_wg_sum(acc, s));
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
