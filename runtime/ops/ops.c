/* ops.c: host launchers of the device ops declared in ops.h (kernels in opencl/embed.cl,
 * norm.cl, rope.cl, act.cl, loss.cl, optim.cl; attention lives in attention.c). Each launcher
 * checks dtypes and sizes (a mismatch is a programming error: uf_fatal naming the tensors),
 * derives the shape from the element counts, sets the kernel arguments (buffer + element offset
 * per tensor) and enqueues; nothing is read back.
 * Work-group sizes depend only on the shape and the device, so reruns are bit-identical.
 * Two kernel paths: the portable one (work-group per row, local-memory tree sums, coalesced loops:
 * what GPUs run) and, on CPU devices, kernels with explicit 16-wide vectors and one work-item per
 * row / chunk / 16 elements, because PoCL runs the work-group kernels 4-30x slower (its implicit
 * vectorisation across work-items does not reach loops inside a work-item). uf_ops_portable = 1
 * forces the portable path everywhere (tests run both). */
#include "ops/ops.h"

#include <math.h>

#include "core/model_config.h"
#include "core/util.h"

int uf_ops_portable = 0;

/* CPU devices get kernels with explicit 16-wide vectors, one work-item per row or chunk (PoCL's
 * implicit vectorisation of the work-group kernels costs 4-10x more CPU time). */
static int cpu_path(const struct uf_device *d) {
    return (d->type & CL_DEVICE_TYPE_CPU) && !uf_ops_portable;
}

/* ---- helpers -------------------------------------------------------------------------------- */
struct kargs {
    cl_kernel k;
    cl_uint i;
};

static struct kargs kargs_begin(struct uf_device *d, const char *file, const char *name) {
    struct kargs a = {uf_device_kernel(d, file, name), 0};
    return a;
}
static void arg_raw(struct kargs *a, size_t size, const void *v) {
    UF_CL(clSetKernelArg(a->k, a->i++, size, v));
}
/* a tensor is two arguments: its buffer and its element offset */
static void arg_t(struct kargs *a, const struct uf_tensor *t) {
    cl_ulong off = t->offset;
    arg_raw(a, sizeof(cl_mem), &t->buf);
    arg_raw(a, sizeof off, &off);
}
static void arg_i(struct kargs *a, int v) { cl_int x = v; arg_raw(a, sizeof x, &x); }
static void arg_u(struct kargs *a, uint32_t v) { cl_uint x = v; arg_raw(a, sizeof x, &x); }
static void arg_f(struct kargs *a, float v) { arg_raw(a, sizeof v, &v); }
static void arg_n(struct kargs *a, uint64_t v) { cl_ulong x = v; arg_raw(a, sizeof x, &x); }
static void arg_mem(struct kargs *a, cl_mem m) { arg_raw(a, sizeof m, &m); }
static void arg_local(struct kargs *a, size_t bytes) { arg_raw(a, bytes, NULL); }

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* elementwise launch: one work-item per element, or per 16 elements on the CPU path */
static void run_elementwise(struct uf_device *d, cl_kernel k, int64_t n, int v16) {
    size_t g = v16 ? ((size_t)n + 15) / 16 : round_up((size_t)n, 64);
    uf_device_run(d, k, 1, &g, NULL);
}

/* Largest power of two <= min(cap, the kernel's and the device's work-group limit). */
static size_t pow2_local(struct uf_device *d, cl_kernel k, size_t cap) {
    size_t kmax = 0;
    UF_CL(clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
    size_t lim = UF_MIN(cap, UF_MIN(kmax, d->max_wg)), l = 1;
    while (l * 2 <= lim) l *= 2;
    return l;
}

/* Local size for a row kernel over rows of length D: about 4+ elements per work-item, 256 max. */
static size_t row_local(struct uf_device *d, cl_kernel k, int64_t D) {
    size_t want = 1;
    while (want < 256 && (int64_t)want * 8 <= D) want *= 2;
    return pow2_local(d, k, want);
}

static void need(const struct uf_tensor *t, enum uf_dtype dt, int64_t numel, const char *op,
                 const char *arg) {
    if (!t) uf_fatal(1, "%s: tensor %s is NULL", op, arg);
    if (t->dtype != dt || t->numel != numel)
        uf_fatal(1, "%s: %s (%s) is %s with %lld elements, expected %s with %lld", op, arg, t->name,
                 uf_dtype_name(t->dtype), (long long)t->numel, uf_dtype_name(dt), (long long)numel);
}

/* rows: n = total / cols with a divisibility check */
static int64_t rows_of(const struct uf_tensor *t, int64_t cols, const char *op) {
    if (cols <= 0 || t->numel % cols != 0)
        uf_fatal(1, "%s: %s has %lld elements, not a multiple of the row length %lld", op, t->name,
                 (long long)t->numel, (long long)cols);
    return t->numel / cols;
}

/* ---- embedding -------------------------------------------------------------------------------- */
void uf_op_embed_forward(struct uf_device *d, const struct uf_tensor *tokens,
                         const struct uf_tensor *table, float scale, struct uf_tensor *out) {
    const char *op = "uf_op_embed_forward";
    int64_t N = tokens->numel, D = N ? out->numel / N : 0;
    need(tokens, UF_I32, N, op, "tokens");
    if (N == 0) return;
    need(out, UF_F32, N * D, op, "out");
    int64_t V = rows_of(table, D, op);
    int bf16 = table->dtype == UF_BF16; /* frozen bf16 base (model.h UF_MODEL_BF16_BASE) */
    need(table, bf16 ? UF_BF16 : UF_F32, V * D, op, "table");
    struct kargs a = kargs_begin(d, "embed.cl", bf16 ? "uf_embed_forward_bf16" : "uf_embed_forward");
    arg_t(&a, tokens), arg_t(&a, table), arg_f(&a, scale), arg_t(&a, out);
    arg_i(&a, (int)D), arg_i(&a, (int)V);
    size_t ls = pow2_local(d, a.k, UF_MIN(64, (size_t)D));
    size_t g[2] = {round_up((size_t)D, ls), (size_t)N}, l[2] = {ls, 1};
    uf_device_run(d, a.k, 2, g, l);
}

void uf_op_embed_backward(struct uf_device *d, const struct uf_tensor *tokens,
                          const struct uf_tensor *dout, float scale, struct uf_tensor *dtable) {
    const char *op = "uf_op_embed_backward";
    int64_t N = tokens->numel, D = N ? dout->numel / N : 0;
    need(tokens, UF_I32, N, op, "tokens");
    if (N == 0) return;
    need(dout, UF_F32, N * D, op, "dout");
    int64_t V = rows_of(dtable, D, op);
    need(dtable, UF_F32, V * D, op, "dtable");
    cl_mem link = uf_device_scratch(d, 2 * (size_t)N * sizeof(cl_int)); /* (2, N) i32 */
    struct kargs k = kargs_begin(d, "embed.cl", "uf_embed_links");
    arg_t(&k, tokens), arg_mem(&k, link), arg_i(&k, (int)N);
    size_t gk = round_up((size_t)N, 64);
    uf_device_run(d, k.k, 1, &gk, NULL);
    struct kargs a = kargs_begin(d, "embed.cl", "uf_embed_backward");
    arg_t(&a, tokens), arg_mem(&a, link), arg_t(&a, dout), arg_f(&a, scale), arg_t(&a, dtable);
    arg_i(&a, (int)N), arg_i(&a, (int)D), arg_i(&a, (int)V);
    size_t ls = pow2_local(d, a.k, UF_MIN((size_t)256, (size_t)D));
    size_t g[2] = {round_up((size_t)D, ls), (size_t)N}, l[2] = {ls, 1};
    uf_device_run(d, a.k, 2, g, l);
}

/* ---- RMSNorm ---------------------------------------------------------------------------------- */
void uf_op_rmsnorm_forward(struct uf_device *d, const struct uf_tensor *x, const struct uf_tensor *w,
                           float eps, int plus_one, struct uf_tensor *y, struct uf_tensor *rstd) {
    const char *op = "uf_op_rmsnorm_forward";
    int64_t D = w->numel, N = rows_of(x, D, op);
    need(w, UF_F32, D, op, "w");
    need(x, UF_F32, N * D, op, "x");
    need(y, UF_F32, N * D, op, "y");
    need(rstd, UF_F32, N, op, "rstd");
    if (N == 0) return;
    if (cpu_path(d)) {
        struct kargs a = kargs_begin(d, "norm.cl", "uf_rmsnorm_forward_rows");
        arg_t(&a, x), arg_t(&a, w), arg_f(&a, eps), arg_i(&a, plus_one), arg_t(&a, y);
        arg_t(&a, rstd), arg_i(&a, (int)D), arg_i(&a, (int)N);
        size_t g = (size_t)N, l = 1;
        uf_device_run(d, a.k, 1, &g, &l);
        return;
    }
    struct kargs a = kargs_begin(d, "norm.cl", "uf_rmsnorm_forward");
    size_t ls = row_local(d, a.k, D);
    arg_t(&a, x), arg_t(&a, w), arg_f(&a, eps), arg_i(&a, plus_one), arg_t(&a, y), arg_t(&a, rstd);
    arg_i(&a, (int)D), arg_local(&a, ls * sizeof(float));
    size_t g = (size_t)N * ls;
    uf_device_run(d, a.k, 1, &g, &ls);
}

#define UF_NORM_DW_ROWS 32 /* rows per partial sum of dw */

void uf_op_rmsnorm_backward(struct uf_device *d, const struct uf_tensor *x, const struct uf_tensor *w,
                            const struct uf_tensor *rstd, const struct uf_tensor *dy, int plus_one,
                            struct uf_tensor *dx, struct uf_tensor *dw) {
    const char *op = "uf_op_rmsnorm_backward";
    int64_t D = w->numel, N = rows_of(x, D, op);
    need(w, UF_F32, D, op, "w");
    need(x, UF_F32, N * D, op, "x");
    need(rstd, UF_F32, N, op, "rstd");
    need(dy, UF_F32, N * D, op, "dy");
    need(dx, UF_F32, N * D, op, "dx");
    if (dw) need(dw, UF_F32, D, op, "dw");
    if (N == 0) return;
    int cpu = cpu_path(d);
    struct kargs a = kargs_begin(d, "norm.cl", cpu ? "uf_rmsnorm_backward_dx_rows" : "uf_rmsnorm_backward_dx");
    arg_t(&a, x), arg_t(&a, w), arg_t(&a, rstd), arg_t(&a, dy), arg_i(&a, plus_one), arg_t(&a, dx);
    arg_i(&a, (int)D);
    if (cpu) {
        arg_i(&a, (int)N);
        size_t g = (size_t)N, l = 1;
        uf_device_run(d, a.k, 1, &g, &l);
    } else {
        size_t ls = row_local(d, a.k, D);
        arg_local(&a, ls * sizeof(float));
        size_t g = (size_t)N * ls;
        uf_device_run(d, a.k, 1, &g, &ls);
    }
    if (!dw) return;
    /* dw: partial sums over chunks of UF_NORM_DW_ROWS rows, then the chunks in order */
    int C = (int)((N + UF_NORM_DW_ROWS - 1) / UF_NORM_DW_ROWS);
    cl_mem part = uf_device_scratch(d, (size_t)C * (size_t)D * sizeof(float));
    struct kargs p = kargs_begin(d, "norm.cl", cpu ? "uf_rmsnorm_backward_dw_part_rows"
                                                   : "uf_rmsnorm_backward_dw_part");
    arg_t(&p, x), arg_t(&p, rstd), arg_t(&p, dy), arg_mem(&p, part);
    arg_i(&p, (int)N), arg_i(&p, (int)D), arg_i(&p, UF_NORM_DW_ROWS);
    size_t lp = pow2_local(d, p.k, UF_MIN(64, (size_t)D));
    if (cpu) {
        size_t gp[2] = {((size_t)D + 15) / 16, (size_t)C}, lpp[2] = {1, 1};
        uf_device_run(d, p.k, 2, gp, lpp);
    } else {
        size_t gp[2] = {round_up((size_t)D, lp), (size_t)C}, lpp[2] = {lp, 1};
        uf_device_run(d, p.k, 2, gp, lpp);
    }
    struct kargs s = kargs_begin(d, "norm.cl", "uf_rmsnorm_backward_dw_sum");
    arg_mem(&s, part), arg_i(&s, C), arg_t(&s, dw), arg_i(&s, (int)D);
    size_t gs = round_up((size_t)D, lp);
    uf_device_run(d, s.k, 1, &gs, &lp);
}

/* ---- RoPE ------------------------------------------------------------------------------------- */
static void rope(struct uf_device *d, const char *op, const struct uf_tensor *x, int T, int nh,
                 int hd, const struct uf_tensor *inv_freq, struct uf_tensor *y, int backward) {
    if (T <= 0 || nh <= 0 || hd <= 0 || hd % 2)
        uf_fatal(1, "%s: T = %d, nh = %d, hd = %d (positive, hd even)", op, T, nh, hd);
    int64_t C = (int64_t)nh * hd, N = rows_of(x, C, op);
    need(x, UF_F32, N * C, op, backward ? "dy" : "x");
    need(y, UF_F32, N * C, op, backward ? "dx" : "y");
    need(inv_freq, UF_F32, hd / 2, op, "inv_freq");
    if (N == 0) return;
    int cpu = cpu_path(d);
    struct kargs a = kargs_begin(d, "rope.cl", cpu ? "uf_rope_rows" : "uf_rope");
    arg_t(&a, x), arg_t(&a, y), arg_i(&a, T), arg_i(&a, nh), arg_i(&a, hd), arg_t(&a, inv_freq);
    arg_i(&a, backward);
    if (cpu) {
        size_t g = (size_t)N, l = 1;
        uf_device_run(d, a.k, 1, &g, &l);
    } else {
        size_t g[2] = {(size_t)hd / 2, (size_t)N};
        uf_device_run(d, a.k, 2, g, NULL);
    }
}

void uf_op_rope_forward(struct uf_device *d, const struct uf_tensor *x, int T, int nh, int hd,
                        const struct uf_tensor *inv_freq, struct uf_tensor *y) {
    rope(d, "uf_op_rope_forward", x, T, nh, hd, inv_freq, y, 0);
}

void uf_op_rope_backward(struct uf_device *d, const struct uf_tensor *dy, int T, int nh, int hd,
                         const struct uf_tensor *inv_freq, struct uf_tensor *dx) {
    rope(d, "uf_op_rope_backward", dy, T, nh, hd, inv_freq, dx, 1);
}

/* ---- gated activation, dropout ---------------------------------------------------------------- */
void uf_op_gated_forward(struct uf_device *d, const struct uf_tensor *g, const struct uf_tensor *u,
                         int gelu_tanh, struct uf_tensor *h) {
    const char *op = "uf_op_gated_forward";
    int64_t n = g->numel;
    need(g, UF_F32, n, op, "g"), need(u, UF_F32, n, op, "u"), need(h, UF_F32, n, op, "h");
    if (n == 0) return;
    int cpu = cpu_path(d);
    struct kargs a = kargs_begin(d, "act.cl", cpu ? "uf_gated_forward_v16" : "uf_gated_forward");
    arg_t(&a, g), arg_t(&a, u), arg_t(&a, h), arg_n(&a, (uint64_t)n), arg_i(&a, gelu_tanh);
    run_elementwise(d, a.k, n, cpu);
}

void uf_op_gated_backward(struct uf_device *d, const struct uf_tensor *g, const struct uf_tensor *u,
                          const struct uf_tensor *dh, int gelu_tanh, struct uf_tensor *dg,
                          struct uf_tensor *du) {
    const char *op = "uf_op_gated_backward";
    int64_t n = g->numel;
    need(g, UF_F32, n, op, "g"), need(u, UF_F32, n, op, "u"), need(dh, UF_F32, n, op, "dh");
    need(dg, UF_F32, n, op, "dg"), need(du, UF_F32, n, op, "du");
    if (n == 0) return;
    int cpu = cpu_path(d);
    struct kargs a = kargs_begin(d, "act.cl", cpu ? "uf_gated_backward_v16" : "uf_gated_backward");
    arg_t(&a, g), arg_t(&a, u), arg_t(&a, dh), arg_t(&a, dg), arg_t(&a, du);
    arg_n(&a, (uint64_t)n), arg_i(&a, gelu_tanh);
    run_elementwise(d, a.k, n, cpu);
}

uint32_t uf_op_dropout_hash(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (uint32_t)(z >> 32);
}

uint32_t uf_op_dropout_threshold(float p) {
    double t = floor((double)p * 4294967296.0);
    return t <= 0 ? 0u : (uint32_t)UF_MIN(t, 4294967295.0);
}

static void dropout(struct uf_device *d, const char *op, const struct uf_tensor *x, float p,
                    uint64_t seed, struct uf_tensor *y, int backward) {
    if (!(p >= 0.0f && p < 1.0f)) uf_fatal(1, "%s: dropout rate %g outside [0, 1)", op, (double)p);
    int64_t n = x->numel;
    need(x, UF_F32, n, op, backward ? "dy" : "x");
    need(y, UF_F32, n, op, backward ? "dx" : "y");
    if (n == 0) return;
    struct kargs a = kargs_begin(d, "act.cl", "uf_dropout");
    arg_t(&a, x), arg_t(&a, y), arg_n(&a, (uint64_t)n), arg_u(&a, uf_op_dropout_threshold(p));
    arg_f(&a, 1.0f / (1.0f - p)), arg_n(&a, seed), arg_i(&a, backward);
    size_t gs = round_up((size_t)n, 64);
    uf_device_run(d, a.k, 1, &gs, NULL);
}

void uf_op_dropout_forward(struct uf_device *d, const struct uf_tensor *x, float p, uint64_t seed,
                           struct uf_tensor *y) {
    dropout(d, "uf_op_dropout_forward", x, p, seed, y, 0);
}

void uf_op_dropout_backward(struct uf_device *d, const struct uf_tensor *dy, float p, uint64_t seed,
                            struct uf_tensor *dx) {
    dropout(d, "uf_op_dropout_backward", dy, p, seed, dx, 1);
}

/* ---- loss ------------------------------------------------------------------------------------- */
void uf_op_cross_entropy(struct uf_device *d, const struct uf_tensor *logits,
                         const struct uf_tensor *targets, const struct uf_tensor *mask, float scale,
                         struct uf_tensor *loss_rows, struct uf_tensor *dlogits) {
    const char *op = "uf_op_cross_entropy";
    int64_t N = targets->numel;
    need(targets, UF_I32, N, op, "targets");
    if (N == 0) return;
    int64_t V = logits->numel / N;
    need(logits, UF_F32, N * V, op, "logits");
    if (V == 0) uf_fatal(1, "%s: %s has no columns", op, logits->name);
    if (mask) need(mask, UF_F32, N, op, "mask");
    need(loss_rows, UF_F32, N, op, "loss_rows");
    if (dlogits) need(dlogits, UF_F32, N * V, op, "dlogits");
    if (cpu_path(d)) { /* one work-item per row, explicit vectors */
        struct kargs a = kargs_begin(d, "loss.cl", "uf_cross_entropy_rows");
        arg_t(&a, logits), arg_t(&a, targets), arg_t(&a, mask ? mask : loss_rows);
        arg_i(&a, mask != NULL), arg_f(&a, scale), arg_t(&a, loss_rows);
        arg_t(&a, dlogits ? dlogits : loss_rows), arg_i(&a, dlogits != NULL), arg_i(&a, (int)V);
        arg_i(&a, (int)N);
        size_t g = (size_t)N, l = 1;
        uf_device_run(d, a.k, 1, &g, &l);
        return;
    }
    struct kargs a = kargs_begin(d, "loss.cl", "uf_cross_entropy");
    size_t ls = row_local(d, a.k, V);
    arg_t(&a, logits), arg_t(&a, targets), arg_t(&a, mask ? mask : loss_rows), arg_i(&a, mask != NULL);
    arg_f(&a, scale), arg_t(&a, loss_rows), arg_t(&a, dlogits ? dlogits : loss_rows);
    arg_i(&a, dlogits != NULL), arg_i(&a, (int)V), arg_local(&a, ls * sizeof(float));
    size_t g = (size_t)N * ls;
    uf_device_run(d, a.k, 1, &g, &ls);
}

/* ---- reductions, AdamW ------------------------------------------------------------------------ */
static void reduce(struct uf_device *d, const char *op, const struct uf_tensor *x,
                   struct uf_tensor *out, int accumulate, int square) {
    need(x, UF_F32, x->numel, op, "x");
    need(out, UF_F32, 1, op, "out");
    size_t n = (size_t)x->numel, G;
    cl_mem part;
    if (cpu_path(d)) { /* G contiguous chunks (multiples of 16), at least 4096 elements each */
        size_t C = UF_MAX((size_t)4096, round_up((n + 255) / 256, 16));
        G = UF_MAX((size_t)1, (n + C - 1) / C);
        part = uf_device_scratch(d, G * sizeof(float));
        struct kargs a = kargs_begin(d, "optim.cl", "uf_reduce_partial_chunks");
        arg_t(&a, x), arg_n(&a, n), arg_i(&a, square), arg_mem(&a, part), arg_n(&a, C);
        size_t l = 1;
        uf_device_run(d, a.k, 1, &G, &l);
    } else { /* at least ~16 elements per work-item, at most 256 groups */
        struct kargs a = kargs_begin(d, "optim.cl", "uf_reduce_partial");
        size_t ls = pow2_local(d, a.k, 256);
        G = UF_MAX((size_t)1, UF_MIN((size_t)256, (n + ls * 16 - 1) / (ls * 16)));
        part = uf_device_scratch(d, G * sizeof(float));
        arg_t(&a, x), arg_n(&a, n), arg_i(&a, square), arg_mem(&a, part);
        arg_local(&a, ls * sizeof(float));
        size_t g = G * ls;
        uf_device_run(d, a.k, 1, &g, &ls);
    }
    struct kargs f = kargs_begin(d, "optim.cl", "uf_reduce_final");
    size_t lf = pow2_local(d, f.k, UF_MIN((size_t)256, G));
    arg_mem(&f, part), arg_i(&f, (int)G), arg_t(&f, out), arg_i(&f, accumulate);
    arg_local(&f, lf * sizeof(float));
    uf_device_run(d, f.k, 1, &lf, &lf);
}

void uf_op_sum(struct uf_device *d, const struct uf_tensor *x, struct uf_tensor *out, int accumulate) {
    reduce(d, "uf_op_sum", x, out, accumulate, 0);
}

void uf_op_sumsq(struct uf_device *d, const struct uf_tensor *x, struct uf_tensor *out,
                 int accumulate) {
    reduce(d, "uf_op_sumsq", x, out, accumulate, 1);
}

void uf_op_clip_scale(struct uf_device *d, struct uf_tensor *g, const struct uf_tensor *gnorm_sq,
                      float max_norm) {
    const char *op = "uf_op_clip_scale";
    int64_t n = g->numel;
    need(g, UF_F32, n, op, "g"), need(gnorm_sq, UF_F32, 1, op, "gnorm_sq");
    if (n == 0 || !(max_norm > 0)) return;
    struct kargs a = kargs_begin(d, "optim.cl", "uf_clip_scale");
    arg_t(&a, g), arg_t(&a, gnorm_sq), arg_f(&a, max_norm), arg_n(&a, (uint64_t)n);
    run_elementwise(d, a.k, n, 0);
}

void uf_op_clip_count(struct uf_device *d, const struct uf_tensor *gnorm_sq, float max_norm,
                      struct uf_tensor *count) {
    const char *op = "uf_op_clip_count";
    need(gnorm_sq, UF_F32, 1, op, "gnorm_sq"), need(count, UF_F32, 1, op, "count");
    struct kargs a = kargs_begin(d, "optim.cl", "uf_clip_count");
    arg_t(&a, gnorm_sq), arg_f(&a, max_norm), arg_t(&a, count);
    size_t g = 1;
    uf_device_run(d, a.k, 1, &g, NULL);
}

float uf_ref_clip_factor(float gnorm_sq, float max_norm) {
    return max_norm > 0 ? fminf(1.0f, max_norm / (sqrtf(gnorm_sq) + 1e-6f)) : 1.0f;
}

void uf_op_adamw(struct uf_device *d, struct uf_tensor *p, const struct uf_tensor *g,
                 struct uf_tensor *m, struct uf_tensor *v, const struct uf_tensor *gnorm_sq,
                 const struct uf_adamw_hparams *h) {
    const char *op = "uf_op_adamw";
    int64_t n = p->numel;
    need(p, UF_F32, n, op, "p"), need(g, UF_F32, n, op, "g");
    need(m, UF_F32, n, op, "m"), need(v, UF_F32, n, op, "v");
    if (h->max_norm > 0) need(gnorm_sq, UF_F32, 1, op, "gnorm_sq");
    if (h->step < 1) uf_fatal(1, "%s: step %d (1-based)", op, h->step);
    if (n == 0) return;
    float bc1 = (float)(1.0 - pow((double)h->beta1, h->step));
    float bc2 = (float)(1.0 - pow((double)h->beta2, h->step));
    int cpu = cpu_path(d);
    struct kargs a = kargs_begin(d, "optim.cl", cpu ? "uf_adamw_v16" : "uf_adamw");
    arg_t(&a, p), arg_t(&a, g), arg_t(&a, m), arg_t(&a, v);
    arg_t(&a, h->max_norm > 0 ? gnorm_sq : p), arg_n(&a, (uint64_t)n);
    arg_f(&a, h->lr), arg_f(&a, h->beta1), arg_f(&a, h->beta2), arg_f(&a, h->eps);
    arg_f(&a, h->weight_decay), arg_f(&a, h->max_norm), arg_f(&a, h->grad_scale);
    arg_f(&a, bc1), arg_f(&a, bc2);
    run_elementwise(d, a.k, n, cpu);
}

/* ---- RoPE frequencies --------------------------------------------------------------------------- */
void uf_rope_inv_freq(const struct uf_model_config *cfg, float *inv_freq) {
    const double two_pi = 6.283185307179586476925;
    int hd = cfg->head_dim, half = hd / 2;
    for (int i = 0; i < half; i++) {
        double f = 1.0 / pow((double)cfg->rope_theta, (2.0 * i) / hd);
        if (cfg->rope_factor > 0) { /* llama3: Hugging Face _compute_llama3_parameters */
            double factor = cfg->rope_factor, low = cfg->rope_low_freq_factor,
                   high = cfg->rope_high_freq_factor, orig = cfg->rope_original_max_pos;
            double wavelen = two_pi / f;
            if (wavelen > orig / low) {
                f = f / factor;
            } else if (!(wavelen < orig / high)) {
                double smooth = (orig / wavelen - low) / (high - low);
                f = (1 - smooth) * f / factor + smooth * f;
            }
        }
        inv_freq[i] = (float)f;
    }
}
