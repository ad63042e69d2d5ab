/* common.cl: prepended to every kernel file. Helpers shared by all kernels. */
#define UF_IDX get_global_id(0)

/* Sum (max) of v over the work-group by a fixed-order tree in local memory s (one float per
 * work-item; the local size is a power of two). Every work-item gets the result. Contains
 * barriers: call from uniform control flow only. s may be reused right after the call. */
float uf_wg_sum(float v, __local float *s) {
    size_t l = get_local_id(0), L = get_local_size(0);
    s[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = L / 2; h > 0; h >>= 1) {
        if (l < h) s[l] += s[l + h];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

float uf_wg_max(float v, __local float *s) {
    size_t l = get_local_id(0), L = get_local_size(0);
    s[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (size_t h = L / 2; h > 0; h >>= 1) {
        if (l < h) s[l] = fmax(s[l], s[l + h]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = s[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Counter-based RNG: 32 random bits for element i under seed (splitmix64 finaliser of
 * seed + (i + 1) * golden ratio). Same function on the host: uf_op_dropout_hash (ops.h). */
uint uf_hash_u32(ulong seed, ulong i) {
    ulong z = seed + (i + 1) * 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    z ^= z >> 31;
    return (uint)(z >> 32);
}
