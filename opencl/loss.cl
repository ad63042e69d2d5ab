/* loss.cl: softmax cross-entropy, forward and backward fused (runtime/ops.c; oracle
 * uf_ref_cross_entropy_*). One work-group per row (local size L, power of two): max over the row,
 * sum of exp(x - max) (fixed-order tree sums), then dlogits written in the same kernel. The row
 * (V floats) is read three times while it sits in cache; two exp per element.
 * dlogits may alias logits: each element is read and then written by the same work-item, and the
 * target logit is read before the first barrier. */
__kernel void uf_cross_entropy(__global const float *logits, ulong lo, __global const int *targets,
                               ulong to, __global const float *mask, ulong mo, int has_mask,
                               float scale, __global float *loss, ulong lso, __global float *dl,
                               ulong dlo, int write_grad, int V, __local float *s) {
    size_t n = get_group_id(0), l = get_local_id(0), L = get_local_size(0);
    __global const float *row = logits + lo + n * V;
    __global float *drow = dl + dlo + n * V;
    float mk = has_mask ? mask[mo + n] : 1.0f;
    if (mk == 0.0f) { /* uniform over the group: no barrier reached */
        if (write_grad)
            for (size_t v = l; v < (size_t)V; v += L) drow[v] = 0.0f;
        if (l == 0) loss[lso + n] = 0.0f;
        return;
    }
    int tgt = targets[to + n];
    float xt = tgt >= 0 && tgt < V ? row[tgt] : NAN;
    float m = -INFINITY;
    for (size_t v = l; v < (size_t)V; v += L) m = fmax(m, row[v]);
    m = uf_wg_max(m, s);
    float acc = 0.0f;
    for (size_t v = l; v < (size_t)V; v += L) acc += exp(row[v] - m);
    float lse = m + log(uf_wg_sum(acc, s));
    if (l == 0) loss[lso + n] = mk * (lse - xt);
    if (write_grad) {
        float f = scale * mk;
        for (size_t v = l; v < (size_t)V; v += L)
            drow[v] = f * (exp(row[v] - lse) - (v == (size_t)tgt ? 1.0f : 0.0f));
    }
}
