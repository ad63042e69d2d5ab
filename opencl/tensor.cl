/* tensor.cl: elementwise tensor utilities (fill, copy, axpby). Offsets are in elements.
 * Reference: runtime/tensor.c's plain loops in tests/test_tensor.c. */
__kernel void uf_fill_f32(__global float *x, ulong off, ulong n, float v) {
    size_t i = get_global_id(0);
    if (i < n) x[off + i] = v;
}

__kernel void uf_fill_i32(__global int *x, ulong off, ulong n, int v) {
    size_t i = get_global_id(0);
    if (i < n) x[off + i] = v;
}

__kernel void uf_copy_u32(__global uint *dst, ulong doff, __global const uint *src, ulong soff, ulong n) {
    size_t i = get_global_id(0);
    if (i < n) dst[doff + i] = src[soff + i];
}

/* y = a*x + b*y */
__kernel void uf_axpby_f32(__global float *y, ulong yoff, float a, __global const float *x,
                           ulong xoff, float b, ulong n) {
    size_t i = get_global_id(0);
    if (i < n) y[yoff + i] = a * x[xoff + i] + b * y[yoff + i];
}
