/* common.cl: prepended to every kernel file. Helpers shared by all kernels. */
#define UF_IDX get_global_id(0)

/* UF_VEC_SYNC(): put at the end of the body of a loop whose trip count is the same for every
 * work-item of the group (all items must reach it: no early return before it). On CPUs (PoCL,
 * built with -DUF_CPU) the barrier makes PoCL run the body for all work-items together, which it
 * vectorises across items with contiguous loads (measured 3-7x on row reductions); without it
 * each work-item runs the whole loop alone, in scalar code. A no-op on GPUs. */
#ifdef UF_CPU
#define UF_VEC_SYNC() barrier(CLK_LOCAL_MEM_FENCE)
#else
#define UF_VEC_SYNC()
#endif

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

/* horizontal sum / max of a float16 in a fixed order (pairwise halves) */
float uf_hsum16(float16 a) {
    float8 b = a.lo + a.hi;
    float4 c = b.lo + b.hi;
    float2 e = c.lo + c.hi;
    return e.x + e.y;
}
float uf_hmax16(float16 a) {
    float8 b = fmax(a.lo, a.hi);
    float4 c = fmax(b.lo, b.hi);
    float2 e = fmax(c.lo, c.hi);
    return fmax(e.x, e.y);
}
