/* embed.cl: token embedding lookup and its deterministic backward (runtime/ops/ops.c; oracle
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

/* the same with a bf16 table (ushort, the high half of an f32: frozen bf16 base weights) */
__kernel void uf_embed_forward_bf16(__global const int *tokens, ulong to,
                                    __global const ushort *table, ulong tbo, float scale,
                                    __global float *out, ulong oo, int D, int V) {
    size_t d = get_global_id(0), n = get_global_id(1);
    if (d >= (size_t)D) return;
    int tok = tokens[to + n];
    out[oo + n * D + d] =
        tok >= 0 && tok < V ? scale * as_float((uint)table[tbo + (size_t)tok * D + d] << 16) : NAN;
}

/* global N: link[n] = the next row j > n with the same token (-1: none); link[N + n] = 1 when n is
 * the first row with its token. O(N^2) token comparisons in all. */
__kernel void uf_embed_links(__global const int *tokens, ulong to, __global int *link, int N) {
    int n = (int)get_global_id(0);
    if (n >= N) return;
    __global const int *tk = tokens + to;
    int tok = tk[n], first = 1, next = -1;
    for (int j = 0; j < n; j++) first &= tk[j] != tok;
    for (int j = N - 1; j > n; j--) next = tk[j] == tok ? j : next;
    link[n] = next;
    link[N + n] = first;
}

/* global (D rounded up to L, N), local (L, 1): the group of a row that first holds its token sums
 * dout over the chain of rows with that token, in row order, and adds it into dtable once: no
 * atomics, fixed order, O(N*D) work. */
__kernel void uf_embed_backward(__global const int *tokens, ulong to, __global const int *link,
                                __global const float *dout, ulong doo, float scale,
                                __global float *dtable, ulong dto, int N, int D, int V) {
    size_t d = get_global_id(0);
    int n = (int)get_global_id(1);
    int tok = tokens[to + n];
    if (!link[N + n] || tok < 0 || tok >= V) return; /* uniform over the group */
    float acc = 0.0f;
    for (int j = n; j >= 0; j = link[j]) {
        if (d < (size_t)D) acc += dout[doo + (size_t)j * D + d];
        UF_VEC_SYNC();
    }
    if (d < (size_t)D) dtable[dto + (size_t)tok * D + d] += scale * acc;
}
