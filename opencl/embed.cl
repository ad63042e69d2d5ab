/* embed.cl: token embedding lookup and its deterministic backward (runtime/ops.c; oracle
 * uf_ref_embedding_* in runtime/ref/ref_ops.h). Offsets are in elements. A token outside [0, V)
 * gives a NaN row in forward (the loss shows it) and no gradient in backward. */

/* global (D rounded up, N): out[n, d] = scale * table[tokens[n], d] */
__kernel void uf_embed_forward(__global const int *tokens, ulong to, __global const float *table,
                               ulong tbo, float scale, __global float *out, ulong oo, int D, int V) {
    size_t d = get_global_id(0), n = get_global_id(1);
    if (d >= (size_t)D) return;
    int tok = tokens[to + n];
    out[oo + n * D + d] = tok >= 0 && tok < V ? scale * table[tbo + (size_t)tok * D + d] : NAN;
}

/* global (L, N), local (L, 1): work-group n owns the first occurrence of its token and sums, in
 * token order, dout of every later row with the same token: no atomics, fixed order. O(N^2)
 * token comparisons (uniform within the group), independent of V. */
__kernel void uf_embed_backward(__global const int *tokens, ulong to, __global const float *dout,
                                ulong doo, float scale, __global float *dtable, ulong dto, int N,
                                int D, int V) {
    int n = (int)get_global_id(1);
    size_t l = get_local_id(0), L = get_local_size(0);
    __global const int *tk = tokens + to;
    int tok = tk[n];
    if (tok < 0 || tok >= V) return;
    for (int j = 0; j < n; j++)
        if (tk[j] == tok) return; /* an earlier row owns this token */
    __global float *row = dtable + dto + (size_t)tok * D;
    for (size_t d = l; d < (size_t)D; d += L) {
        float acc = 0.0f;
        for (int j = n; j < N; j++)
            if (tk[j] == tok) acc += dout[doo + (size_t)j * D + d];
        row[d] += scale * acc;
    }
}
