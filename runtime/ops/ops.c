/* ops.c: host launchers of the device ops declared in ops.h (kernels in opencl/embed.cl,
 * norm.cl, rope.cl, act.cl, loss.cl, optim.cl; attention lives in attention.c). Each launcher
 * checks dtypes and sizes (a mismatch is a programming error: uf_fatal naming the tensors),
 * derives the shape from the element counts, sets the kernel arguments (buffer + element offset
 * per tensor) and enqueues; nothing is read back.
 * Work-group sizes depend only on the shape and the device, so reruns are bit-identical.
 * Two kernel paths: the portable one (work-group per row, local-memory tree sums, coalesced loops:
 * what GPUs run, selected by uf_device_gpu_like) and, on CPU devices, kernels with explicit 16-wide vectors and one work-item per
 * row / chunk / 16 elements, because PoCL runs the work-group kernels 4-30x slower (its implicit
 * vectorisation across work-items does not reach loops inside a work-item). uf_ops_portable = 1
 * forces the portable path everywhere, -1 the CPU one (tests run both; ops.h). */
#include "ops/ops.h"

#include <math.h>

#include "core/model_config.h"
#include "core/util.h"

int uf_ops_portable = 0;

/* CPU devices get kernels with explicit 16-wide vectors, one work-item per row or chunk (PoCL's
 * implicit vectorisation of the work-group kernels costs 4-10x more CPU time). GPUs, devices
 * with the GPU bit besides the CPU bit (oclgrind reports all bits) and any device under GPU
 * limits get the GPU kernels (uf_device_gpu_like, core/device.h). */
int uf_ops_cpu_path(const struct uf_device *d) {
    if (uf_ops_portable) return uf_ops_portable < 0;
    return !uf_device_gpu_like(d);
}

/* ---- helpers -------------------------------------------------------------------------------- */
/* Kernel arguments: UF_ARG_TENSOR(t) (buffer + element offset), UF_ARG_I32/U32/U64/F32/MEM/LOCAL
 * (core/device.h), launched with UF_LAUNCH. */
#define T_ UF_ARG_TENSOR
#define I_ UF_ARG_I32
#define F_ UF_ARG_F32
#define N_ UF_ARG_U64

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* elementwise global size: one work-item per element, or per 16 elements on the CPU path */
static size_t elementwise_global(int64_t n, int v16) {
    return v16 ? ((size_t)n + 15) / 16 : round_up((size_t)n, 64);
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
    cl_kernel k = uf_device_kernel(d, "embed.cl", bf16 ? "uf_embed_forward_bf16" : "uf_embed_forward");
    size_t ls = pow2_local(d, k, UF_MIN(64, (size_t)D));
    size_t g[2] = {round_up((size_t)D, ls), (size_t)N}, l[2] = {ls, 1};
    UF_LAUNCH(d, k, 2, g, l, T_(tokens), T_(table), F_(scale), T_(out), I_(D), I_(V));
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
    cl_kernel kl = uf_device_kernel(d, "embed.cl", "uf_embed_links");
    size_t gk = round_up((size_t)N, 64);
    UF_LAUNCH(d, kl, 1, &gk, NULL, T_(tokens), UF_ARG_MEM(link), I_(N));
    cl_kernel k = uf_device_kernel(d, "embed.cl", "uf_embed_backward");
    size_t ls = pow2_local(d, k, UF_MIN((size_t)256, (size_t)D));
    size_t g[2] = {round_up((size_t)D, ls), (size_t)N}, l[2] = {ls, 1};
    UF_LAUNCH(d, k, 2, g, l, T_(tokens), UF_ARG_MEM(link), T_(dout), F_(scale), T_(dtable), I_(N),
              I_(D), I_(V));
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
    if (uf_ops_cpu_path(d)) {
        cl_kernel k = uf_device_kernel(d, "norm.cl", "uf_rmsnorm_forward_rows");
        size_t g = (size_t)N, l = 1;
        UF_LAUNCH(d, k, 1, &g, &l, T_(x), T_(w), F_(eps), I_(plus_one), T_(y), T_(rstd), I_(D),
                  I_(N));
        return;
    }
    cl_kernel k = uf_device_kernel(d, "norm.cl", "uf_rmsnorm_forward");
    size_t ls = row_local(d, k, D);
    size_t g = (size_t)N * ls;
    UF_LAUNCH(d, k, 1, &g, &ls, T_(x), T_(w), F_(eps), I_(plus_one), T_(y), T_(rstd), I_(D),
              UF_ARG_LOCAL(ls * sizeof(float)));
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
    int cpu = uf_ops_cpu_path(d);
    if (cpu) {
        cl_kernel k = uf_device_kernel(d, "norm.cl", "uf_rmsnorm_backward_dx_rows");
        size_t g = (size_t)N, l = 1;
        UF_LAUNCH(d, k, 1, &g, &l, T_(x), T_(w), T_(rstd), T_(dy), I_(plus_one), T_(dx), I_(D),
                  I_(N));
    } else {
        cl_kernel k = uf_device_kernel(d, "norm.cl", "uf_rmsnorm_backward_dx");
        size_t ls = row_local(d, k, D);
        size_t g = (size_t)N * ls;
        UF_LAUNCH(d, k, 1, &g, &ls, T_(x), T_(w), T_(rstd), T_(dy), I_(plus_one), T_(dx), I_(D),
                  UF_ARG_LOCAL(ls * sizeof(float)));
    }
    if (!dw) return;
    /* dw: partial sums over chunks of UF_NORM_DW_ROWS rows, then the chunks in order */
    int C = (int)((N + UF_NORM_DW_ROWS - 1) / UF_NORM_DW_ROWS);
    cl_mem part = uf_device_scratch(d, (size_t)C * (size_t)D * sizeof(float));
    cl_kernel kp = uf_device_kernel(d, "norm.cl", cpu ? "uf_rmsnorm_backward_dw_part_rows"
                                                      : "uf_rmsnorm_backward_dw_part");
    size_t lp = pow2_local(d, kp, UF_MIN(64, (size_t)D));
    size_t gp[2] = {cpu ? ((size_t)D + 15) / 16 : round_up((size_t)D, lp), (size_t)C};
    size_t lpp[2] = {cpu ? 1 : lp, 1};
    UF_LAUNCH(d, kp, 2, gp, lpp, T_(x), T_(rstd), T_(dy), UF_ARG_MEM(part), I_(N), I_(D),
              I_(UF_NORM_DW_ROWS));
    cl_kernel ks = uf_device_kernel(d, "norm.cl", "uf_rmsnorm_backward_dw_sum");
    size_t gs = round_up((size_t)D, lp);
    UF_LAUNCH(d, ks, 1, &gs, &lp, UF_ARG_MEM(part), I_(C), T_(dw), I_(D));
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
    int cpu = uf_ops_cpu_path(d);
    cl_kernel k = uf_device_kernel(d, "rope.cl", cpu ? "uf_rope_rows" : "uf_rope");
    size_t g[2] = {(size_t)hd / 2, (size_t)N}, l = 1;
    if (cpu) g[0] = (size_t)N;
    UF_LAUNCH(d, k, cpu ? 1 : 2, g, cpu ? &l : NULL, T_(x), T_(y), I_(T), I_(nh), I_(hd),
              T_(inv_freq), I_(backward));
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
    int cpu = uf_ops_cpu_path(d);
    cl_kernel k = uf_device_kernel(d, "act.cl", cpu ? "uf_gated_forward_v16" : "uf_gated_forward");
    size_t gs = elementwise_global(n, cpu);
    UF_LAUNCH(d, k, 1, &gs, NULL, T_(g), T_(u), T_(h), N_(n), I_(gelu_tanh));
}

void uf_op_gated_backward(struct uf_device *d, const struct uf_tensor *g, const struct uf_tensor *u,
                          const struct uf_tensor *dh, int gelu_tanh, struct uf_tensor *dg,
                          struct uf_tensor *du) {
    const char *op = "uf_op_gated_backward";
    int64_t n = g->numel;
    need(g, UF_F32, n, op, "g"), need(u, UF_F32, n, op, "u"), need(dh, UF_F32, n, op, "dh");
    need(dg, UF_F32, n, op, "dg"), need(du, UF_F32, n, op, "du");
    if (n == 0) return;
    int cpu = uf_ops_cpu_path(d);
    cl_kernel k = uf_device_kernel(d, "act.cl", cpu ? "uf_gated_backward_v16" : "uf_gated_backward");
    size_t gs = elementwise_global(n, cpu);
    UF_LAUNCH(d, k, 1, &gs, NULL, T_(g), T_(u), T_(dh), T_(dg), T_(du), N_(n), I_(gelu_tanh));
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
    cl_kernel k = uf_device_kernel(d, "act.cl", "uf_dropout");
    size_t gs = round_up((size_t)n, 64);
    UF_LAUNCH(d, k, 1, &gs, NULL, T_(x), T_(y), N_(n), UF_ARG_U32(uf_op_dropout_threshold(p)),
              F_(1.0f / (1.0f - p)), N_(seed), I_(backward));
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
    if (uf_ops_cpu_path(d)) { /* one work-item per row, explicit vectors */
        cl_kernel k = uf_device_kernel(d, "loss.cl", "uf_cross_entropy_rows");
        size_t g = (size_t)N, l = 1;
        UF_LAUNCH(d, k, 1, &g, &l, T_(logits), T_(targets), T_(mask ? mask : loss_rows),
                  I_(mask != NULL), F_(scale), T_(loss_rows), T_(dlogits ? dlogits : loss_rows),
                  I_(dlogits != NULL), I_(V), I_(N));
        return;
    }
    cl_kernel k = uf_device_kernel(d, "loss.cl", "uf_cross_entropy");
    size_t ls = row_local(d, k, V);
    size_t g = (size_t)N * ls;
    UF_LAUNCH(d, k, 1, &g, &ls, T_(logits), T_(targets), T_(mask ? mask : loss_rows),
              I_(mask != NULL), F_(scale), T_(loss_rows), T_(dlogits ? dlogits : loss_rows),
              I_(dlogits != NULL), I_(V), UF_ARG_LOCAL(2 * ls * sizeof(float)));
}

/* ---- reductions, AdamW ------------------------------------------------------------------------ */
static void reduce(struct uf_device *d, const char *op, const struct uf_tensor *x,
                   struct uf_tensor *out, int accumulate, int square) {
    need(x, UF_F32, x->numel, op, "x");
    need(out, UF_F32, 1, op, "out");
    size_t n = (size_t)x->numel, G;
    cl_mem part;
    if (uf_ops_cpu_path(d)) { /* G contiguous chunks (multiples of 16), at least 4096 elements each */
        size_t C = UF_MAX((size_t)4096, round_up((n + 255) / 256, 16));
        G = UF_MAX((size_t)1, (n + C - 1) / C);
        part = uf_device_scratch(d, G * sizeof(float));
        cl_kernel k = uf_device_kernel(d, "optim.cl", "uf_reduce_partial_chunks");
        size_t l = 1;
        UF_LAUNCH(d, k, 1, &G, &l, T_(x), N_(n), I_(square), UF_ARG_MEM(part), N_(C));
    } else { /* at least ~16 elements per work-item, at most 256 groups */
        cl_kernel k = uf_device_kernel(d, "optim.cl", "uf_reduce_partial");
        size_t ls = pow2_local(d, k, 256);
        G = UF_MAX((size_t)1, UF_MIN((size_t)256, (n + ls * 16 - 1) / (ls * 16)));
        part = uf_device_scratch(d, G * sizeof(float));
        size_t g = G * ls;
        UF_LAUNCH(d, k, 1, &g, &ls, T_(x), N_(n), I_(square), UF_ARG_MEM(part),
                  UF_ARG_LOCAL(ls * sizeof(float)));
    }
    cl_kernel kf = uf_device_kernel(d, "optim.cl", "uf_reduce_final");
    size_t lf = pow2_local(d, kf, UF_MIN((size_t)256, G));
    UF_LAUNCH(d, kf, 1, &lf, &lf, UF_ARG_MEM(part), I_(G), T_(out), I_(accumulate),
              UF_ARG_LOCAL(lf * sizeof(float)));
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
    cl_kernel k = uf_device_kernel(d, "optim.cl", "uf_clip_scale");
    size_t gs = elementwise_global(n, 0);
    UF_LAUNCH(d, k, 1, &gs, NULL, T_(g), T_(gnorm_sq), F_(max_norm), N_(n));
}

void uf_op_clip_count(struct uf_device *d, const struct uf_tensor *gnorm_sq, float max_norm,
                      struct uf_tensor *count) {
    const char *op = "uf_op_clip_count";
    need(gnorm_sq, UF_F32, 1, op, "gnorm_sq"), need(count, UF_F32, 1, op, "count");
    cl_kernel k = uf_device_kernel(d, "optim.cl", "uf_clip_count");
    size_t g = 1;
    UF_LAUNCH(d, k, 1, &g, NULL, T_(gnorm_sq), F_(max_norm), T_(count));
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
    if (h->max_norm > 0 || h->skip_nonfinite) need(gnorm_sq, UF_F32, 1, op, "gnorm_sq");
    if (h->step < 1) uf_fatal(1, "%s: step %d (1-based)", op, h->step);
    if (n == 0) return;
    float bc1 = (float)(1.0 - pow((double)h->beta1, h->step));
    float bc2 = (float)(1.0 - pow((double)h->beta2, h->step));
    int cpu = uf_ops_cpu_path(d);
    cl_kernel k = uf_device_kernel(d, "optim.cl", cpu ? "uf_adamw_v16" : "uf_adamw");
    size_t gs = elementwise_global(n, cpu);
    UF_LAUNCH(d, k, 1, &gs, NULL, T_(p), T_(g), T_(m), T_(v),
              T_(h->max_norm > 0 || h->skip_nonfinite ? gnorm_sq : p),
              N_(n), F_(h->lr), F_(h->beta1), F_(h->beta2), F_(h->eps), F_(h->weight_decay),
              F_(h->max_norm), F_(h->grad_scale), F_(bc1), F_(bc2), I_(h->skip_nonfinite != 0));
}

void uf_op_nonfinite_guard(struct uf_device *d, const struct uf_tensor *terms,
                           struct uf_tensor *gnorm_sq, struct uf_tensor *health, int step) {
    const char *op = "uf_op_nonfinite_guard";
    need(terms, UF_F32, terms->numel, op, "terms");
    need(gnorm_sq, UF_F32, 1, op, "gnorm_sq");
    need(health, UF_I32, 3, op, "health");
    if (terms->numel > 30) uf_fatal(1, "%s: at most 30 terms (got %lld)", op, (long long)terms->numel);
    cl_kernel k = uf_device_kernel(d, "optim.cl", "uf_nonfinite_guard");
    size_t g = 1;
    UF_LAUNCH(d, k, 1, &g, &g, T_(terms), I_((int)terms->numel), T_(gnorm_sq), T_(health), I_(step));
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
