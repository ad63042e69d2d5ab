/* gemm.c: the one GEMM (see gemm.h): CLBlast or the own kernels of opencl/gemm.cl, chosen per
 * device and layout by measurement (cached on disk), plus the plain-C reference. */
#include "ops/gemm.h"

#include <clblast_c.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kernels.h"
#include "core/util.h"

static const char *clblast_status_name(CLBlastStatusCode s) {
    switch (s) {
    case CLBlastNotImplemented: return "CLBlastNotImplemented";
    case CLBlastInvalidMatrixA: return "CLBlastInvalidMatrixA";
    case CLBlastInvalidMatrixB: return "CLBlastInvalidMatrixB";
    case CLBlastInvalidMatrixC: return "CLBlastInvalidMatrixC";
    case CLBlastInsufficientMemoryA: return "CLBlastInsufficientMemoryA";
    case CLBlastInsufficientMemoryB: return "CLBlastInsufficientMemoryB";
    case CLBlastInsufficientMemoryC: return "CLBlastInsufficientMemoryC";
    case CLBlastInvalidLocalMemUsage: return "CLBlastInvalidLocalMemUsage";
    case CLBlastNoHalfPrecision: return "CLBlastNoHalfPrecision";
    case CLBlastInvalidBatchCount: return "CLBlastInvalidBatchCount";
    case CLBlastInvalidOverrideKernel: return "CLBlastInvalidOverrideKernel";
    case CLBlastMissingOverrideParameter: return "CLBlastMissingOverrideParameter";
    case CLBlastInvalidLocalThreadsDim: return "CLBlastInvalidLocalThreadsDim";
    case CLBlastInvalidLocalThreadsTotal: return "CLBlastInvalidLocalThreadsTotal";
    case CLBlastUnknownError: return "CLBlastUnknownError";
    case CLBlastUnexpectedError: return "CLBlastUnexpectedError";
    default: return uf_cl_error_name((cl_int)s);
    }
}

static void check(struct uf_device *d, CLBlastStatusCode s, const char *what, size_t m, size_t n,
                  size_t k) {
    if (s == CLBlastSuccess) return;
    uf_fatal(1, "CLBlast error %s (%d) in %s (m=%zu n=%zu k=%zu) on %s\n  hint: %s",
             clblast_status_name(s), (int)s, what, m, n, k, d->name,
             uf_cl_error_hint(s > -1000 ? (cl_int)s : 0));
}

/* ---- per-device state --------------------------------------------------------------------- */
#define SCRATCH_DEFAULT UF_GEMM_SCRATCH_DEFAULT /* bytes of packed panels the own backend may hold */
/* Up to this many rows of A, y = x W^T reads W in place (uf_gemm_nt_small) instead of packing
 * it: measured on PoCL/Zen 4 (n = 4096, k = 2048) 17x faster at m = 1, 1.3x at m = 128, even at
 * m = 256, 0.8x at m = 512. */
#define SMALL_M UF_GEMM_SMALL_M

struct uf_gemm_state {
    enum uf_gemm_backend forced;    /* uf_gemm_set_backend; AUTO = env, then measurement */
    enum uf_gemm_backend env;       /* $UNFORGET_GEMM; AUTO when unset or "auto" */
    enum uf_gemm_backend choice[4]; /* per layout ta + 2*tb; AUTO = not measured yet */
    double gflops[4][2];            /* measured [layout][own, clblast] */
    cl_mem scratch;                 /* packed panels of the own backend */
    size_t scratch_bytes, scratch_limit;
    cl_mem widen;                   /* bf16 B widened to f32 for CLBlast (uf_gemm_bf16) */
    size_t widen_bytes;
    char name[96];
    double flops;                   /* issued since init (uf_gemm_flops_issued) */
};

static const char *layout_name[4] = {"nn", "tn", "nt", "tt"}; /* index ta + 2*tb */

static struct uf_gemm_state *state(struct uf_device *d) {
    if (d->gemm) return d->gemm;
    struct uf_gemm_state *st = uf_calloc(1, sizeof *st);
    st->scratch_limit = SCRATCH_DEFAULT;
    const char *e = getenv("UNFORGET_GEMM");
    if (e && *e) {
        if (strcmp(e, "own") == 0) st->env = UF_GEMM_OWN;
        else if (strcmp(e, "clblast") == 0) st->env = UF_GEMM_CLBLAST;
        else if (strcmp(e, "auto") != 0)
            uf_fatal(2, "UNFORGET_GEMM='%s' is not a GEMM backend (valid: own, clblast, auto)", e);
    }
    d->gemm = st;
    d->gemm_free = uf_gemm_release;
    return st;
}

void uf_gemm_release(struct uf_device *d) {
    struct uf_gemm_state *st = d->gemm;
    if (!st) return;
    if (st->scratch) uf_device_release(d, st->scratch, st->scratch_bytes);
    if (st->widen) uf_device_release(d, st->widen, st->widen_bytes);
    free(st);
    d->gemm = NULL;
}

void uf_gemm_set_backend(struct uf_device *d, enum uf_gemm_backend b) { state(d)->forced = b; }

void uf_gemm_set_scratch_limit(struct uf_device *d, size_t bytes) {
    state(d)->scratch_limit = bytes ? bytes : SCRATCH_DEFAULT;
}

/* ---- CLBlast ------------------------------------------------------------------------------ */
struct call {
    bool ta, tb;
    size_t m, n, k, batch;
    float alpha, beta;
    cl_mem A, B, C;
    size_t a_off, lda, a_stride, b_off, ldb, b_stride, c_off, ldc, c_stride;
    bool b_bf16; /* B holds bf16 (own kernels only) */
};

/* Enqueues the call on CLBlast; returns its status (the selection survives a CLBlast failure). */
static CLBlastStatusCode clblast_try(struct uf_device *d, const struct call *c) {
    cl_event ev = NULL;
    CLBlastTranspose ta = c->ta ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = c->tb ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastStatusCode s;
    if (c->batch == 1)
        s = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, c->m, c->n, c->k, c->alpha, c->A, c->a_off,
                         c->lda, c->B, c->b_off, c->ldb, c->beta, c->C, c->c_off, c->ldc, &d->queue,
                         d->prof ? &ev : NULL);
    else
        s = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, c->m, c->n, c->k, c->alpha,
                                       c->A, c->a_off, c->lda, c->a_stride, c->B, c->b_off, c->ldb,
                                       c->b_stride, c->beta, c->C, c->c_off, c->ldc, c->c_stride,
                                       c->batch, &d->queue, d->prof ? &ev : NULL);
    if (ev) uf_device_profile_add(d, ev, c->batch == 1 ? "clblast_sgemm" : "clblast_sgemm_batched");
    return s;
}

static void clblast_run(struct uf_device *d, const struct call *c) {
    check(d, clblast_try(d, c), c->batch == 1 ? "CLBlastSgemm" : "CLBlastSgemmStridedBatched",
          c->m, c->n, c->k);
}

/* ---- own kernels (opencl/gemm.cl) --------------------------------------------------------- */
#define MR UF_GEMM_MR /* rows of C per work-item */
#define NR UF_GEMM_NR /* columns of C per work-item */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* Kernel arguments (core/device.h); sizes and offsets are ulong in gemm.cl. */
#define I_ UF_ARG_I32
#define U_ UF_ARG_U64
#define F_ UF_ARG_F32
#define M_ UF_ARG_MEM
static const size_t ones[3] = {1, 1, 1}; /* work-groups of one work-item */

static cl_mem scratch(struct uf_device *d, size_t bytes) {
    struct uf_gemm_state *st = state(d);
    if (bytes < 64) bytes = 64;
    if (st->scratch && st->scratch_bytes >= bytes) return st->scratch;
    /* the in-order queue keeps a released buffer alive until its enqueued users finish */
    if (st->scratch) uf_device_release(d, st->scratch, st->scratch_bytes);
    st->scratch = uf_device_alloc(d, bytes, "gemm packing buffer");
    st->scratch_bytes = bytes;
    return st->scratch;
}

/* Packs X(p, j) (p < k, j < n; X[off + (trans ? j*ld + p : p*ld + j)]) for `batch` matrices into
 * panels of W columns at element p_off of P (see gemm.cl). */
static void pack(struct uf_device *d, int W, size_t k, size_t n, cl_mem X, size_t off, size_t ld,
                 size_t x_bstride, bool trans, cl_mem P, size_t p_off, size_t p_bstride,
                 size_t batch, bool bf16) {
    if (k == 0) return;
    cl_kernel kr = uf_device_kernel(d, "gemm.cl", W == 8 ? "uf_gemm_pack8"
                                                  : bf16 ? "uf_gemm_pack32_bf16" : "uf_gemm_pack32");
    size_t global[3] = {round_up(n, (size_t)W) / (size_t)W, (k + 63) / 64, batch};
    UF_LAUNCH(d, kr, 3, global, ones, I_(k), I_(n), M_(X), U_(off), U_(ld),
              U_(x_bstride), I_(trans), M_(P), U_(p_off), U_(p_bstride));
}

/* Row-blocks per group (see uf_gemm_block): measured on PoCL/Zen 4 for k = 256..2048, 16..64
 * are within noise of each other, 4 loses 15-20% and no grouping (all rows) 10-15%. */
#define GROUP_ROWS 32

static void own_nt_small(struct uf_device *d, const struct call *c) {
    cl_kernel kr = uf_device_kernel(d, "gemm.cl", c->b_bf16 ? "uf_gemm_nt_small_bf16" : "uf_gemm_nt_small");
    size_t global[2] = {(c->n + 3) / 4, c->batch};
    UF_LAUNCH(d, kr, 2, global, ones, I_(c->m), I_(c->n), I_(c->k), F_(c->alpha),
              F_(c->beta), M_(c->A), U_(c->a_off), U_(c->lda), U_(c->a_stride), M_(c->B),
              U_(c->b_off), U_(c->ldb), U_(c->b_stride), M_(c->C), U_(c->c_off), U_(c->ldc),
              U_(c->c_stride));
}

static void own_run(struct uf_device *d, const struct call *c) {
    struct uf_gemm_state *st = state(d);
    size_t m = c->m, n = c->n, k = c->k, kk = k ? k : 1;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX ||
        round_up(m, MR) / MR * (round_up(n, NR) / NR) > INT32_MAX)
        uf_fatal(1, "gemm m=%zu n=%zu k=%zu is too large for the own kernels\n"
                 "  hint: UNFORGET_GEMM=clblast", m, n, k);
    if (!c->ta && c->tb && m <= SMALL_M) {
        own_nt_small(d, c);
        return;
    }
    /* Budget in floats: all for packed B, or half each for packed A (ta) and B. */
    size_t lim = st->scratch_limit / 4, lim_b = c->ta ? lim / 2 : lim, lim_a = lim / 2;
    size_t npad = round_up(n, NR), mpad = round_up(m, MR);
    size_t nc = UF_MIN(npad, UF_MAX((size_t)NR, lim_b / (kk * NR) * NR));
    size_t mc = c->ta ? UF_MIN(mpad, UF_MAX((size_t)MR, lim_a / (kk * MR) * MR)) : m;
    size_t group = c->batch; /* batches per launch: all whose panels fit */
    if (nc < npad || mc < mpad) group = 1;
    group = UF_MAX((size_t)1, UF_MIN(group, lim_b / (kk * npad)));
    if (c->ta) group = UF_MAX((size_t)1, UF_MIN(group, lim_a / (kk * mpad)));
    size_t b_floats = group * kk * UF_MIN(npad, nc), a_floats = c->ta ? group * kk * round_up(mc, MR) : 0;
    cl_mem P = scratch(d, (b_floats + a_floats) * 4);
    cl_kernel kr = uf_device_kernel(d, "gemm.cl", "uf_gemm_block");
    for (size_t b0 = 0; b0 < c->batch; b0 += group) {
        size_t gb = UF_MIN(group, c->batch - b0);
        for (size_t j = 0; j < n; j += nc) {
            size_t ncur = UF_MIN(nc, n - j), ncpad = round_up(ncur, NR);
            pack(d, NR, k, ncur, c->B, c->b_off + b0 * c->b_stride + (c->tb ? j * c->ldb : j),
                 c->ldb, c->b_stride, c->tb, P, 0, kk * ncpad, gb, c->b_bf16);
            for (size_t i = 0; i < m; i += mc) {
                size_t mcur = UF_MIN(mc, m - i), mcpad = round_up(mcur, MR);
                cl_mem A = c->A;
                size_t a_off, a_bs, a_rs, a_ps, a_bstride;
                if (c->ta) { /* op(A)^T = A (k, m): contiguous in i; pack 8-row panels */
                    pack(d, MR, k, mcur, c->A, c->a_off + b0 * c->a_stride + i, c->lda,
                         c->a_stride, false, P, b_floats, kk * mcpad, gb, false);
                    A = P, a_off = b_floats, a_bs = MR * kk, a_rs = 1, a_ps = MR;
                    a_bstride = kk * mcpad;
                } else {
                    a_off = c->a_off + b0 * c->a_stride + i * c->lda, a_bs = MR * c->lda;
                    a_rs = c->lda, a_ps = 1, a_bstride = c->a_stride;
                }
                size_t global[2] = {mcpad / MR * (ncpad / NR), gb};
                UF_LAUNCH(d, kr, 2, global, ones, I_(mcur), I_(ncur), I_(k),
                          I_(GROUP_ROWS), F_(c->alpha), F_(c->beta), M_(A), U_(a_off), U_(a_bs),
                          U_(a_rs), U_(a_ps), U_(a_bstride), M_(P), U_(kk * ncpad), M_(c->C),
                          U_(c->c_off + b0 * c->c_stride + i * c->ldc + j), U_(c->ldc),
                          U_(c->c_stride));
            }
        }
    }
}

/* ---- selection by measurement ------------------------------------------------------------- */
/* Seconds for one call (queue drained before and after); negative when CLBlast fails. */
static double process_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Wall seconds for one call (queue drained before and after), and the process's CPU seconds in
 * *cpu (on a CPU device: the driver's worker threads); negative when CLBlast fails. */
static double time_call(struct uf_device *d, enum uf_gemm_backend b, const struct call *c,
                        double *cpu) {
    uf_device_finish(d);
    double t = uf_time_now(), t_cpu = process_cpu_seconds();
    if (b == UF_GEMM_OWN) own_run(d, c);
    else {
        CLBlastStatusCode s = clblast_try(d, c);
        if (s != CLBlastSuccess) {
            uf_log(1, "warning: CLBlast fails on %s (%s, m=%zu n=%zu k=%zu): not using it",
                   d->name, clblast_status_name(s), c->m, c->n, c->k);
            return -1;
        }
    }
    uf_device_finish(d);
    *cpu = process_cpu_seconds() - t_cpu;
    return uf_time_now() - t;
}

/* GFLOP/s: best of up to 3 timed runs after one warm-up (which builds kernels); a slow backend
 * gets one timed run; 0 when CLBlast fails. *per_cpu_s (may be NULL): GFLOP per CPU second of
 * the best run, which on a shared CPU tells the kernel's speed apart from the contention. */
static double measure(struct uf_device *d, enum uf_gemm_backend b, const struct call *c,
                      double *per_cpu_s) {
    double cpu, best_cpu;
    double flop = 2.0 * (double)c->m * (double)c->n * (double)c->k * (double)c->batch;
    if (per_cpu_s) *per_cpu_s = 0;
    if (time_call(d, b, c, &cpu) < 0) return 0;
    double best = time_call(d, b, c, &best_cpu);
    for (int r = 0; r < 2 && best < 0.05; r++) {
        double t = time_call(d, b, c, &cpu);
        if (t < best) best = t, best_cpu = cpu;
    }
    if (per_cpu_s) *per_cpu_s = flop / UF_MAX(best_cpu, 1e-9) * 1e-9;
    return flop / UF_MAX(best, 1e-9) * 1e-9;
}

static char *choice_path(struct uf_device *d) {
    const struct uf_kernel_source *s;
    for (s = uf_kernel_sources; s->name; s++)
        if (strcmp(s->name, "gemm.cl") == 0) break;
    uint64_t h = uf_hash_str(s->name ? s->source : "", UF_HASH_SEED);
    h = uf_hash_str(d->name, h);
    h = uf_hash_str(d->platform_name, h);
    h = uf_hash_str(d->driver, h);
    h = uf_hash_str(d->version, h);
    h = uf_hash_str("gemm-select-v1", h);
    char *dir = uf_cache_dir("kernels");
    char *path = dir ? uf_sprintf("%s/gemm-select-%016llx.ufc", dir, (unsigned long long)h) : NULL;
    free(dir);
    return path;
}

/* Reads "<layout> <own|clblast> <own GFLOP/s> <clblast GFLOP/s>" lines; 0 when all 4 are there. */
static int load_choice(struct uf_gemm_state *st, const char *path) {
    char *text = path ? uf_cache_read(path, NULL, "gemm choice") : NULL;
    if (!text) return -1;
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char lay[8], who[16];
        double go, gc;
        if (sscanf(line, "%7s %15s %lf %lf", lay, who, &go, &gc) != 4) continue;
        for (int l = 0; l < 4; l++) {
            if (strcmp(lay, layout_name[l]) != 0) continue;
            bool own = strcmp(who, "own") == 0;
            if (!own && strcmp(who, "clblast") != 0) continue;
            st->choice[l] = own ? UF_GEMM_OWN : UF_GEMM_CLBLAST;
            st->gflops[l][0] = go, st->gflops[l][1] = gc;
            found |= 1 << l;
        }
    }
    free(text);
    if (found != 15) uf_cache_discard(path, "gemm choice", "not all 4 layouts");
    return found == 15 ? 0 : -1;
}

/* Times both backends on one shape per layout (m=256, n=1024, k=512: large enough for the
 * kernels' steady state, small enough that the whole measurement stays well under 2 s). */
static void select_backends(struct uf_device *d) {
    struct uf_gemm_state *st = state(d);
    char *path = choice_path(d);
    const char *how = "cached";
    if (load_choice(st, path) != 0) {
        how = "measured";
        double t0 = uf_time_now();
        size_t m = 256, n = 1024, k = 512, na = m * k, nb = k * n, nc = m * n;
        float *host = uf_malloc(nb * 4);
        struct uf_rng r;
        uf_rng_init(&r, 1);
        for (size_t i = 0; i < nb; i++) host[i] = (float)(uf_rng_uniform(&r) - 0.5);
        cl_mem A = uf_device_alloc(d, na * 4, "gemm selection A");
        cl_mem B = uf_device_alloc(d, nb * 4, "gemm selection B");
        cl_mem C = uf_device_alloc(d, nc * 4, "gemm selection C");
        UF_CL(clEnqueueWriteBuffer(d->queue, A, CL_TRUE, 0, na * 4, host, 0, NULL, NULL));
        UF_CL(clEnqueueWriteBuffer(d->queue, B, CL_TRUE, 0, nb * 4, host, 0, NULL, NULL));
        for (int l = 0; l < 4; l++) {
            bool ta = l & 1, tb = l & 2;
            struct call c = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = 1,
                             .alpha = 1.0f, .beta = 0.0f, .A = A, .B = B, .C = C,
                             .lda = ta ? m : k, .ldb = tb ? k : n, .ldc = n};
            st->gflops[l][0] = measure(d, UF_GEMM_OWN, &c, NULL);
            st->gflops[l][1] = measure(d, UF_GEMM_CLBLAST, &c, NULL);
            st->choice[l] = st->gflops[l][0] >= st->gflops[l][1] ? UF_GEMM_OWN : UF_GEMM_CLBLAST;
        }
        uf_device_release(d, A, na * 4);
        uf_device_release(d, B, nb * 4);
        uf_device_release(d, C, nc * 4);
        free(host);
        char text[512];
        int len = 0;
        for (int l = 0; l < 4; l++)
            len += snprintf(text + len, sizeof text - (size_t)len, "%s %s %.2f %.2f\n",
                            layout_name[l], st->choice[l] == UF_GEMM_OWN ? "own" : "clblast",
                            st->gflops[l][0], st->gflops[l][1]);
        if (path && uf_cache_write(path, text, (size_t)len) != 0)
            uf_log(1, "warning: cannot write the gemm choice cache: %s", uf_error());
        uf_log(2, "gemm: measured both backends in %.2f s", uf_time_now() - t0);
    }
    for (int l = 0; l < 4; l++)
        uf_log(2, "gemm: %s -> %s (%s: own %.1f GFLOP/s, clblast %.1f GFLOP/s at 256x1024x512)",
               layout_name[l], st->choice[l] == UF_GEMM_OWN ? "own" : "clblast", how,
               st->gflops[l][0], st->gflops[l][1]);
    free(path);
}

enum uf_gemm_backend uf_gemm_backend_for(struct uf_device *d, bool ta, bool tb) {
    struct uf_gemm_state *st = state(d);
    if (st->forced != UF_GEMM_AUTO) return st->forced;
    if (st->env != UF_GEMM_AUTO) return st->env;
    if (d->gpu_limits) return UF_GEMM_CLBLAST; /* the GPU backend, not measured on this device */
    int l = ta + 2 * tb;
    if (st->choice[l] == UF_GEMM_AUTO) select_backends(d);
    return st->choice[l];
}

const char *uf_gemm_backend_name(struct uf_device *d) {
    struct uf_gemm_state *st = state(d);
    enum uf_gemm_backend b[4];
    int own = 0;
    for (int l = 0; l < 4; l++) own += (b[l] = uf_gemm_backend_for(d, l & 1, l & 2)) == UF_GEMM_OWN;
    if (own == 4) return "own";
    if (own == 0) return "clblast";
    int len = snprintf(st->name, sizeof st->name, "mixed (");
    for (int l = 0; l < 4; l++)
        len += snprintf(st->name + len, sizeof st->name - (size_t)len, "%s%s %s", l ? ", " : "",
                        layout_name[l], b[l] == UF_GEMM_OWN ? "own" : "clblast");
    snprintf(st->name + len, sizeof st->name - (size_t)len, ")");
    return st->name;
}

/* ---- public entry points ------------------------------------------------------------------ */
double uf_gemm_flops_issued(struct uf_device *d) { return state(d)->flops; }

static void count(struct uf_device *d, const struct call *c) {
    state(d)->flops += 2.0 * (double)c->m * (double)c->n * (double)c->k * (double)c->batch;
}

static void run(struct uf_device *d, const struct call *c) {
    if (c->m == 0 || c->n == 0 || c->batch == 0) return;
    count(d, c);
    /* CLBlast rejects k = 0 (C = beta C); the own kernels handle it on every device */
    if (c->k == 0 || uf_gemm_backend_for(d, c->ta, c->tb) == UF_GEMM_OWN) own_run(d, c);
    else clblast_run(d, c);
}

void uf_gemm(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
             cl_mem A, size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb, float beta,
             cl_mem C, size_t c_off, size_t ldc) {
    struct call c = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = 1, .alpha = alpha,
                     .beta = beta, .A = A, .B = B, .C = C, .a_off = a_off, .lda = lda,
                     .b_off = b_off, .ldb = ldb, .c_off = c_off, .ldc = ldc};
    run(d, &c);
}

/* bf16 B through CLBlast (where the selection prefers it, e.g. GPUs): B's rows are widened to
 * f32 in chunks of at most scratch_limit bytes, one CLBlast call per chunk. tb: a chunk of B's
 * rows is a block of C's columns; !tb: a chunk of k, accumulated (beta only on the first). */
static void bf16_widen_run(struct uf_device *d, const struct call *c) {
    struct uf_gemm_state *st = state(d);
    size_t rows = c->tb ? c->n : c->k, cols = c->tb ? c->k : c->n, ld = c->ldb;
    size_t chunk = UF_MAX((size_t)1, st->scratch_limit / 4 / UF_MAX(ld, (size_t)1));
    chunk = UF_MIN(chunk, rows);
    size_t need = ((chunk - 1) * ld + cols) * 4;
    if (!st->widen || st->widen_bytes < need) {
        if (st->widen) uf_device_release(d, st->widen, st->widen_bytes);
        st->widen = uf_device_alloc(d, need, "gemm bf16 widening buffer");
        st->widen_bytes = need;
    }
    cl_kernel kr = uf_device_kernel(d, "tensor.cl", "uf_bf16_to_f32");
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
        size_t nr = UF_MIN(chunk, rows - r0);
        size_t g = round_up((nr - 1) * ld + cols, 64);
        UF_LAUNCH(d, kr, 1, &g, NULL, M_(st->widen), U_(0), M_(c->B), U_(c->b_off + r0 * ld),
                  U_((nr - 1) * ld + cols));
        struct call cc = *c;
        cc.B = st->widen, cc.b_off = 0, cc.b_bf16 = false;
        if (c->tb) {
            cc.n = nr, cc.c_off = c->c_off + r0;
        } else {
            cc.k = nr, cc.a_off = c->a_off + (c->ta ? r0 * c->lda : r0);
            cc.beta = r0 ? 1.0f : c->beta;
        }
        clblast_run(d, &cc);
    }
}

void uf_gemm_bf16(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                  cl_mem A, size_t a_off, size_t lda, cl_mem B, size_t b_off, size_t ldb,
                  float beta, cl_mem C, size_t c_off, size_t ldc) {
    struct call c = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = 1, .alpha = alpha,
                     .beta = beta, .A = A, .B = B, .C = C, .a_off = a_off, .lda = lda,
                     .b_off = b_off, .ldb = ldb, .c_off = c_off, .ldc = ldc, .b_bf16 = true};
    if (m == 0 || n == 0) return;
    count(d, &c);
    if (k > 0 && uf_gemm_backend_for(d, ta, tb) == UF_GEMM_CLBLAST) bf16_widen_run(d, &c);
    else own_run(d, &c); /* B widened in the own kernels' packing */
}

void uf_gemm_batched(struct uf_device *d, bool ta, bool tb, size_t m, size_t n, size_t k,
                     float alpha, cl_mem A, size_t a_off, size_t lda, size_t a_stride, cl_mem B,
                     size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem C, size_t c_off,
                     size_t ldc, size_t c_stride, size_t batch) {
    struct call c = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .batch = batch, .alpha = alpha,
                     .beta = beta, .A = A, .B = B, .C = C, .a_off = a_off, .lda = lda,
                     .a_stride = a_stride, .b_off = b_off, .ldb = ldb, .b_stride = b_stride,
                     .c_off = c_off, .ldc = ldc, .c_stride = c_stride};
    run(d, &c);
}

void uf_gemm_ref(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                 size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t p = 0; p < k; p++) {
                double a = ta ? A[p * lda + i] : A[i * lda + p];
                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                acc += a * b;
            }
            double c = beta == 0.0f ? 0.0 : (double)beta * C[i * ldc + j];
            C[i * ldc + j] = (float)((double)alpha * acc + c);
        }
}
