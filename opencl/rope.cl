/* rope.cl: rotary position embedding, Hugging Face rotate_half form (runtime/ops/ops.c; oracle
 * uf_ref_rope_*). Row n of x (N, nh*hd) is position t = n % T; dim i pairs with i + hd/2;
 * angle = t * inv_freq[i], evaluated with an fma error term so it matches the exact product
 * t * (double)inv_freq[i] of the reference (a plain float product is off by up to half an ulp of
 * the angle, ~2e-4 rad at t = 4096). global (hd/2, N): one sincos per (i, n), reused over the
 * nh heads. */
__kernel void uf_rope(__global const float *x, ulong xo, __global float *y, ulong yo, int T, int nh,
                      int hd, __global const float *inv_freq, ulong io, int backward) {
    size_t i = get_global_id(0), n = get_global_id(1);
    int hh = hd / 2; /* "half" is an OpenCL type */
    float t = (float)(n % (size_t)T), f = inv_freq[io + i];
    float a = t * f, e = fma(t, f, -a); /* t * f = a + e exactly */
    float c0 = 0.0f, s0 = sincos(a, &c0);
    float c = c0 - s0 * e, s = s0 + c0 * e;
    for (int h = 0; h < nh; h++) {
        size_t base = (n * nh + h) * hd + i;
        float x0 = x[xo + base], x1 = x[xo + base + hh];
        if (!backward) {
            y[yo + base] = x0 * c - x1 * s;
            y[yo + base + hh] = x1 * c + x0 * s;
        } else { /* x = dy, y = dx (+=) */
            y[yo + base] += x0 * c + x1 * s;
            y[yo + base + hh] += x1 * c - x0 * s;
        }
    }
}

/* CPUs: one work-item per row (global N, local 1), 16 frequencies at a time with explicit
 * vectors (sincos on float16), scalar tail when hd/2 is not a multiple of 16. */
__kernel void uf_rope_rows(__global const float *x, ulong xo, __global float *y, ulong yo, int T,
                           int nh, int hd, __global const float *inv_freq, ulong io, int backward) {
    size_t n = get_global_id(0), i = 0;
    int hh = hd / 2;
    float t = (float)(n % (size_t)T);
    for (; i + 16 <= (size_t)hh; i += 16) {
        float16 f = vload16(0, inv_freq + io + i), a = t * f, e = fma((float16)t, f, -a), c0;
        float16 s0 = sincos(a, &c0), c = c0 - s0 * e, s = s0 + c0 * e;
        for (int h = 0; h < nh; h++) {
            size_t base = (n * nh + h) * hd + i;
            float16 x0 = vload16(0, x + xo + base), x1 = vload16(0, x + xo + base + hh);
            if (!backward) {
                vstore16(x0 * c - x1 * s, 0, y + yo + base);
                vstore16(x1 * c + x0 * s, 0, y + yo + base + hh);
            } else {
                vstore16(vload16(0, y + yo + base) + x0 * c + x1 * s, 0, y + yo + base);
                vstore16(vload16(0, y + yo + base + hh) + x1 * c - x0 * s, 0, y + yo + base + hh);
            }
        }
    }
    for (; i < (size_t)hh; i++) {
        float f = inv_freq[io + i], a = t * f, e = fma(t, f, -a), c0 = 0.0f, s0 = sincos(a, &c0);
        float c = c0 - s0 * e, s = s0 + c0 * e;
        for (int h = 0; h < nh; h++) {
            size_t base = (n * nh + h) * hd + i;
            float x0 = x[xo + base], x1 = x[xo + base + hh];
            if (!backward) {
                y[yo + base] = x0 * c - x1 * s;
                y[yo + base + hh] = x1 * c + x0 * s;
            } else {
                y[yo + base] += x0 * c + x1 * s;
                y[yo + base + hh] += x1 * c - x0 * s;
            }
        }
    }
}
