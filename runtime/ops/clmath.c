/* clmath.c: see clmath.h. Kernels in opencl/clmath.cl. */
#include "ops/clmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "ops/ops.h"

/* Kernel arguments (core/device.h): a tensor is its buffer and its element offset (ulong). */
#define T_ UF_ARG_TENSOR

static void same_len(const struct uf_tensor *a, const struct uf_tensor *b, const char *what) {
    if (b && a->numel != b->numel)
        uf_fatal(1, "%s: %s has %lld elements but %s has %lld", what, a->name, (long long)a->numel,
                 b->name, (long long)b->numel);
}

static size_t local_size(struct uf_device *d) {
    size_t ls = 1;
    while (ls * 2 <= 256 && ls * 2 <= d->max_wg) ls *= 2;
    return ls;
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* Reduce the partial sums in the scratch buffer into out[slot]. */
static void sum_parts(struct uf_device *d, cl_mem part, cl_uint np, struct uf_tensor *out, int slot,
                      int accumulate) {
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_sum_parts");
    size_t g = 1;
    UF_LAUNCH(d, k, 1, &g, NULL, UF_ARG_MEM(part), UF_ARG_U32(np), UF_ARG_MEM(out->buf),
              UF_ARG_U32(out->offset + (size_t)slot), UF_ARG_I32(accumulate));
}

void uf_clmath_penalty(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *p,
                       const struct uf_tensor *p0, const struct uf_tensor *F, float lambda,
                       struct uf_tensor *value, int slot) {
    same_len(g, p, "penalty");
    same_len(g, p0, "penalty");
    same_len(g, F, "penalty");
    size_t ls = local_size(d), ng = UF_MIN((size_t)64, UF_MAX((size_t)1, ((size_t)g->numel + ls - 1) / ls));
    cl_mem part = uf_device_scratch(d, ng * sizeof(float));
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_penalty_quad");
    size_t global = ng * ls;
    UF_LAUNCH(d, k, 1, &global, &ls, T_(g), T_(p), T_(p0), UF_ARG_MEM(F ? F->buf : p->buf),
              UF_ARG_U64(F ? F->offset : 0), UF_ARG_I32(F != NULL), UF_ARG_F32(lambda),
              UF_ARG_U64(g->numel), UF_ARG_MEM(part), UF_ARG_LOCAL(ls * sizeof(float)));
    sum_parts(d, part, (cl_uint)ng, value, slot, 1);
}

void uf_clmath_dot(struct uf_device *d, const struct uf_tensor *x, const struct uf_tensor *y,
                   struct uf_tensor *out, int slot, int accumulate) {
    same_len(x, y, "dot");
    size_t ls = local_size(d), ng = UF_MIN((size_t)64, UF_MAX((size_t)1, ((size_t)x->numel + ls - 1) / ls));
    cl_mem part = uf_device_scratch(d, ng * sizeof(float));
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_dot_partial");
    size_t global = ng * ls;
    UF_LAUNCH(d, k, 1, &global, &ls, T_(x), T_(y), UF_ARG_U64(x->numel), UF_ARG_MEM(part),
              UF_ARG_LOCAL(ls * sizeof(float)));
    sum_parts(d, part, (cl_uint)ng, out, slot, accumulate);
}

void uf_clmath_agem(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *g_ref,
                    struct uf_tensor *dots) {
    same_len(g, g_ref, "agem");
    uf_clmath_dot(d, g, g_ref, dots, 0, 0);
    uf_clmath_dot(d, g_ref, g_ref, dots, 1, 0);
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_agem_project");
    if (dots->offset != 0) uf_fatal(1, "agem: the dots tensor must start at offset 0");
    size_t global = round_up((size_t)g->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(g), T_(g_ref), UF_ARG_MEM(dots->buf),
              UF_ARG_U64(g->numel));
}

void uf_clmath_lincomb(struct uf_device *d, struct uf_tensor *out, float a, const struct uf_tensor *x,
                       float b, const struct uf_tensor *y, float c, const struct uf_tensor *z) {
    same_len(out, x, "lincomb");
    same_len(out, y, "lincomb");
    same_len(out, z, "lincomb");
    if (!z) z = x, c = 0.0f;
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_lincomb3");
    size_t global = round_up((size_t)out->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(out), UF_ARG_F32(a), T_(x), UF_ARG_F32(b), T_(y),
              UF_ARG_F32(c), T_(z), UF_ARG_U64(out->numel));
}

void uf_clmath_magmax(struct uf_device *d, struct uf_tensor *out, const struct uf_tensor *base,
                      const struct uf_tensor *m1, const struct uf_tensor *m2, float lambda) {
    same_len(out, base, "magmax");
    same_len(out, m1, "magmax");
    same_len(out, m2, "magmax");
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_magmax");
    size_t global = round_up((size_t)out->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(out), T_(base), T_(m1), T_(m2), UF_ARG_F32(lambda),
              UF_ARG_U64(out->numel));
}

static int cmp_float_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

float uf_clmath_topk_threshold(const float *x, size_t n, float density) {
    if (n == 0 || density >= 1.0f) return 0.0f;
    /* the float density's rounding (0.2f = 0.2000000030) must not add an entry: 0.2f of 10 is 2 */
    size_t keep = (size_t)ceil((double)density * (double)n - 1e-6);
    if (keep == 0 && density > 0) keep = 1;
    if (keep == 0) return INFINITY;
    float *a = uf_malloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = fabsf(x[i]);
    qsort(a, n, sizeof *a, cmp_float_desc);
    float thr = a[keep - 1];
    free(a);
    return thr;
}

static float *task_vector(const struct uf_tensor *base, const struct uf_tensor *m) {
    size_t n = (size_t)base->numel;
    float *b = uf_malloc(n * 4), *t = uf_malloc(n * 4);
    uf_tensor_download(base, b);
    uf_tensor_download(m, t);
    for (size_t i = 0; i < n; i++) t[i] -= b[i];
    free(b);
    return t;
}

void uf_clmath_task_arith(struct uf_device *d, struct uf_tensor *out, const struct uf_tensor *base,
                          const struct uf_tensor *safe, const struct uf_tensor *ft, float ls, float lu) {
    same_len(out, base, "task_arith");
    same_len(out, safe, "task_arith");
    same_len(out, ft, "task_arith");
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_task_arith");
    size_t global = round_up((size_t)out->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(out), T_(base), T_(safe), T_(ft), UF_ARG_F32(ls),
              UF_ARG_F32(lu), UF_ARG_U64(out->numel));
}

void uf_clmath_ties(struct uf_device *d, struct uf_tensor *out, const struct uf_tensor *base,
                    const struct uf_tensor *safe, const struct uf_tensor *ft, float dens_s,
                    float dens_u, float ls, float lu) {
    same_len(out, base, "ties");
    same_len(out, safe, "ties");
    same_len(out, ft, "ties");
    float *ts = task_vector(base, safe), *tu = task_vector(safe, ft);
    float thr_s = uf_clmath_topk_threshold(ts, (size_t)base->numel, dens_s);
    float thr_u = uf_clmath_topk_threshold(tu, (size_t)base->numel, dens_u);
    free(ts);
    free(tu);
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_ties");
    size_t global = round_up((size_t)out->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(out), T_(base), T_(safe), T_(ft), UF_ARG_F32(thr_s),
              UF_ARG_F32(thr_u), UF_ARG_F32(ls), UF_ARG_F32(lu), UF_ARG_U64(out->numel));
}

/* ---- references ------------------------------------------------------------------------ */
double uf_clmath_ref_penalty(float *g, const float *p, const float *p0, const float *F,
                             float lambda, size_t n) {
    double v = 0;
    for (size_t i = 0; i < n; i++) {
        double dd = (double)p[i] - p0[i], f = F ? F[i] : 1.0;
        g[i] = (float)(g[i] + lambda * f * dd);
        v += 0.5 * lambda * f * dd * dd;
    }
    return v;
}

void uf_clmath_ref_agem(float *g, const float *g_ref, size_t n) {
    double dot = 0, rr = 0;
    for (size_t i = 0; i < n; i++) dot += (double)g[i] * g_ref[i], rr += (double)g_ref[i] * g_ref[i];
    if (dot < 0 && rr > 0)
        for (size_t i = 0; i < n; i++) g[i] = (float)(g[i] - dot / rr * g_ref[i]);
}

void uf_clmath_ref_magmax(float *out, const float *base, const float *m1, const float *m2,
                          float lambda, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float t1 = m1[i] - base[i], t2 = m2[i] - base[i];
        out[i] = base[i] + lambda * (fabsf(t1) >= fabsf(t2) ? t1 : t2);
    }
}

void uf_clmath_ref_task_arith(float *out, const float *base, const float *safe, const float *ft,
                              float ls, float lu, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double ts = (double)safe[i] - base[i], tu = (double)ft[i] - safe[i];
        out[i] = (float)(base[i] + ls * ts + lu * tu);
    }
}

void uf_clmath_ref_ties(float *out, const float *base, const float *safe, const float *ft,
                        float dens_s, float dens_u, float ls, float lu, size_t n) {
    float *ts = uf_malloc(n * 4), *tu = uf_malloc(n * 4);
    for (size_t i = 0; i < n; i++) ts[i] = safe[i] - base[i], tu[i] = ft[i] - safe[i];
    float thr_s = uf_clmath_topk_threshold(ts, n, dens_s), thr_u = uf_clmath_topk_threshold(tu, n, dens_u);
    for (size_t i = 0; i < n; i++) {
        double a = fabsf(ts[i]) < thr_s ? 0.0 : (double)ls * ts[i], b = fabsf(tu[i]) < thr_u ? 0.0 : (double)lu * tu[i];
        double s = a + b, sum = 0, cnt = 0;
        if (s != 0) {
            if (a != 0 && (a > 0) == (s > 0)) sum += a, cnt += 1;
            if (b != 0 && (b > 0) == (s > 0)) sum += b, cnt += 1;
        }
        out[i] = (float)(base[i] + (cnt > 0 ? sum / cnt : 0.0));
    }
    free(ts);
    free(tu);
}

/* ---- distillation and Fisher helpers ------------------------------------------------------- */
void uf_clmath_sqdiff(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *x,
                      const struct uf_tensor *y, const struct uf_tensor *mask,
                      const struct uf_tensor *thr, int64_t W, float scale,
                      struct uf_tensor *value, int slot) {
    same_len(g, x, "sqdiff");
    same_len(g, y, "sqdiff");
    if (W <= 0 || x->numel % W != 0 || mask->numel < x->numel / W || (thr && thr->numel < x->numel / W))
        uf_fatal(1, "sqdiff: %s has %lld elements, not rows of width %lld matching %s", x->name,
                 (long long)x->numel, (long long)W, mask->name);
    size_t ls = local_size(d), ng = UF_MIN((size_t)64, UF_MAX((size_t)1, ((size_t)g->numel + ls - 1) / ls));
    cl_mem part = uf_device_scratch(d, ng * sizeof(float));
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_sqdiff");
    size_t global = ng * ls;
    UF_LAUNCH(d, k, 1, &global, &ls, T_(g), T_(x), T_(y), T_(mask),
              UF_ARG_MEM(thr ? thr->buf : mask->buf), UF_ARG_U64(thr ? thr->offset : 0),
              UF_ARG_I32(thr != NULL), UF_ARG_U64(W), UF_ARG_F32(scale), UF_ARG_U64(g->numel),
              UF_ARG_MEM(part), UF_ARG_LOCAL(ls * sizeof(float)));
    sum_parts(d, part, (cl_uint)ng, value, slot, 1);
}

void uf_clmath_kl_temp(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *x,
                       const struct uf_tensor *y, const struct uf_tensor *mask, int64_t W, float T,
                       float scale, struct uf_tensor *value, int slot) {
    same_len(g, x, "kl_temp");
    same_len(g, y, "kl_temp");
    if (W <= 0 || x->numel % W != 0 || mask->numel < x->numel / W || !(T > 0.0f))
        uf_fatal(1, "kl_temp: %s has %lld elements, not rows of width %lld matching %s (T %g)",
                 x->name, (long long)x->numel, (long long)W, mask->name, (double)T);
    size_t rows = (size_t)(x->numel / W);
    cl_mem part = uf_device_scratch(d, rows * sizeof(float));
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_kl_temp");
    size_t global = round_up(rows, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(g), T_(x), T_(y), T_(mask), UF_ARG_U64(W),
              UF_ARG_F32(1.0f / T), UF_ARG_F32(scale * T), UF_ARG_F32(scale * T * T),
              UF_ARG_U64(rows), UF_ARG_MEM(part));
    sum_parts(d, part, (cl_uint)rows, value, slot, 1);
}

void uf_clmath_row_topk_thr(struct uf_device *d, const struct uf_tensor *x, int64_t W, int k,
                            struct uf_tensor *thr) {
    if (W <= 0 || x->numel % W != 0 || thr->numel < x->numel / W || k <= 0)
        uf_fatal(1, "row_topk_thr: bad shapes (%s: %lld elements, W %lld, k %d)", x->name,
                 (long long)x->numel, (long long)W, k);
    cl_kernel kr = uf_device_kernel(d, "clmath.cl", "uf_row_topk_thr");
    int64_t rows = x->numel / W;
    size_t global = round_up((size_t)rows, 64);
    UF_LAUNCH(d, kr, 1, &global, NULL, T_(x), UF_ARG_U64(W), UF_ARG_U32(k), UF_ARG_U64(rows),
              T_(thr));
}

void uf_clmath_sq_accum(struct uf_device *d, struct uf_tensor *acc, const struct uf_tensor *g,
                        float scale) {
    same_len(acc, g, "sq_accum");
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_sq_accum");
    size_t global = round_up((size_t)acc->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(acc), T_(g), UF_ARG_F32(scale), UF_ARG_U64(acc->numel));
}

void uf_clmath_refresh_step(struct uf_device *d, struct uf_tensor *p, const struct uf_tensor *g,
                            const struct uf_tensor *F, struct uf_tensor *nn, float delta, float c,
                            float sigma, uint64_t seed, uint64_t base) {
    same_len(p, g, "refresh_step");
    same_len(p, F, "refresh_step");
    if (nn->numel < 2) uf_fatal(1, "refresh_step: %s needs 2 elements (p.p, g.g)", nn->name);
    uf_clmath_dot(d, p, p, nn, 0, 0);
    uf_clmath_dot(d, g, g, nn, 1, 0);
    cl_kernel k = uf_device_kernel(d, "clmath.cl", "uf_refresh_unlearn");
    size_t global = round_up((size_t)p->numel, 64);
    UF_LAUNCH(d, k, 1, &global, NULL, T_(p), T_(g), T_(F), T_(nn), UF_ARG_F32(delta), UF_ARG_F32(c),
              UF_ARG_F32(sigma), UF_ARG_U64(seed), UF_ARG_U64(base), UF_ARG_U64(p->numel));
}

double uf_clmath_normal(uint64_t seed, uint64_t i) {
    double u1 = (double)((uf_op_dropout_hash(seed, 2 * i) >> 8) + 1u) * 0x1p-24;
    double u2 = (double)(uf_op_dropout_hash(seed, 2 * i + 1) >> 8) * 0x1p-24;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void uf_clmath_ref_refresh_step(float *p, const float *g, const float *F, size_t n, float delta,
                                float c, float sigma, uint64_t seed, uint64_t base) {
    double pp = 0, gg = 0;
    for (size_t i = 0; i < n; i++) pp += (double)p[i] * p[i], gg += (double)g[i] * g[i];
    double rho = sqrt(pp) / (sqrt(gg) + 1e-20);
    for (size_t i = 0; i < n; i++) {
        double xi = sigma != 0.0f ? uf_clmath_normal(seed, base + i) : 0.0;
        p[i] = (float)(p[i] + (double)delta / (1.0 + (double)c * F[i]) * (rho * g[i] + (double)sigma * xi));
    }
}

float uf_clmath_ref_topk_thr(const float *x, size_t W, int k) {
    float cur = INFINITY;
    int have = 0;
    while (have < k) {
        float best = -INFINITY;
        int cnt = 0;
        for (size_t j = 0; j < W; j++) {
            if (x[j] < cur) {
                if (x[j] > best) best = x[j], cnt = 1;
                else if (x[j] == best) cnt++;
            }
        }
        if (cnt == 0) break;
        cur = best;
        have += cnt;
    }
    return cur;
}

double uf_clmath_ref_kl_temp(float *g, const float *x, const float *y, const float *mask,
                             size_t rows, size_t W, float T, float scale) {
    double v = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * W, *yr = y + r * W;
        double mx = -INFINITY, my = -INFINITY, sx = 0, sy = 0, kl = 0;
        for (size_t j = 0; j < W; j++) mx = fmax(mx, xr[j]), my = fmax(my, yr[j]);
        for (size_t j = 0; j < W; j++) sx += exp((xr[j] - mx) / T), sy += exp((yr[j] - my) / T);
        for (size_t j = 0; j < W; j++) {
            double lp = (xr[j] - mx) / T - log(sx), lq = (yr[j] - my) / T - log(sy);
            g[r * W + j] = (float)(scale * T * mask[r] * (exp(lp) - exp(lq)));
            kl += exp(lq) * (lq - lp);
        }
        v += (double)scale * T * T * mask[r] * kl;
    }
    return v;
}

double uf_clmath_ref_sqdiff(float *g, const float *x, const float *y, const float *mask,
                            const float *thr, size_t rows, size_t W, float scale) {
    double v = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < W; j++) {
            size_t i = r * W + j;
            double sel = mask[r];
            if (thr && y[i] < thr[r]) sel = 0;
            double dd = (double)x[i] - y[i];
            g[i] = (float)(2.0 * scale * sel * dd);
            v += scale * sel * dd * dd;
        }
    return v;
}
