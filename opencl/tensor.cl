/* tensor.cl: elementwise tensor utilities (fill, copy, axpby). Offsets are in elements.
 * Reference: runtime/core/tensor.c's plain loops in tests/test_tensor.c. */
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

/* y += a*x with 16 floats per work-item (global ceil(n/16)): the memory-bandwidth probe of
 * `unforget bench --roofline here` on CPUs, shaped as the CPU path's elementwise kernels */
__kernel void uf_stream_add_v16(__global float *y, ulong yoff, float a, __global const float *x,
                                ulong xoff, ulong n) {
    size_t i = get_global_id(0) * 16;
    if (i + 16 <= n) {
        vstore16(vload16(0, y + yoff + i) + a * vload16(0, x + xoff + i), 0, y + yoff + i);
        return;
    }
    for (; i < n; i++) y[yoff + i] += a * x[xoff + i];
}

/* bf16 (ushort, the high half of an f32) -> f32, exact */
__kernel void uf_bf16_to_f32(__global float *dst, ulong doff, __global const ushort *src,
                             ulong soff, ulong n) {
    size_t i = get_global_id(0);
    if (i < n) dst[doff + i] = as_float((uint)src[soff + i] << 16);
}

/* f32 -> bf16, round to nearest even (NaN stays a quiet NaN), as uf_f32_to_bf16 on the host */
__kernel void uf_f32_to_bf16(__global ushort *dst, ulong doff, __global const float *src,
                             ulong soff, ulong n) {
    size_t i = get_global_id(0);
    if (i >= n) return;
    uint u = as_uint(src[soff + i]);
    if ((u & 0x7fffffffu) > 0x7f800000u) dst[doff + i] = (ushort)((u >> 16) | 0x40u);
    else dst[doff + i] = (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
