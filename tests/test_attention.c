/* test_attention.c: the attention ops of ops.h on the device against the plain-C oracle
 * (uf_ref_attention_*_f64 of runtime/ref, on the same float inputs):
 * forward o and lse, backward dq/dk/dv (which ADD into their outputs), on odd shapes: GQA,
 * MQA, sliding window, right padding, hd = 256, multi-tile T, tensors at element offsets.
 * Also: padded query rows give exact zeros and no gradient, bit-identical reruns, and a
 * finite-difference check of the device backward against the device forward. Every check runs
 * for both kernel variants (attention.cl, the CPU one; attention_gpu.cl, the GPU one).
 * Bounds: max |dev - ref| / max |ref| <= 2e-6 (forward, lse) and 5e-6 (gradients), 1e-4 with
 * scores in the hundreds (test_large_scores); the float
 * finite differences (eps 1e-2, loss sum(o * w)) agree within 1e-3 of the largest gradient. */
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ops/ops.h"
#include "ref/ref_ops.h"
#include "ops/selftest.h"
#include "core/tensor.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

/* ---- helpers ------------------------------------------------------------------------------ */
struct shape { int B, T, H, KV, hd, window; int32_t lengths[8]; };

/* A tensor view at element offset `off` into a larger buffer (offsets must be honoured). */
static void tensor_at(struct uf_tensor *base, struct uf_tensor *t, const char *name,
                      enum uf_dtype dtype, int64_t n, size_t off) {
    uf_tensor_init(base, &dev, name, dtype, 1, (int64_t[]){n + (int64_t)off});
    uf_tensor_fill(base, -777.0f);
    uf_tensor_view(t, base, name, off, 1, (int64_t[]){n});
}

static void to_double(double *d, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = f[i];
}

static double rel_err_d(const float *a, const double *b, size_t n) {
    double scale = 1e-6, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (isnan(e)) return INFINITY;
        err = fmax(err, e);
    }
    return err / scale;
}

static void fill(struct uf_rng *r, float *x, size_t n, double amp) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * uf_rng_normal(r));
}

/* Everything one case needs on host and device. */
struct attn_case {
    struct shape s;
    size_t nq, nk, nl;                       /* elements of q/o/dout, k/v, lse */
    float *q, *k, *v, *dout, *dq0, *dk0, *dv0; /* inputs and initial gradients */
    struct uf_tensor bases[11], tq, tk, tv, tlen, to, tlse, tdout, tdq, tdk, tdv;
};

static double g_amp = 1.0; /* standard deviation of the random inputs */

static void case_init(struct attn_case *c, const struct shape *s, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->s = *s;
    size_t N = (size_t)s->B * s->T;
    c->nq = N * s->H * s->hd, c->nk = N * s->KV * s->hd, c->nl = N * s->H;
    struct uf_rng r;
    uf_rng_init(&r, seed);
    float *bufs[7];
    size_t sizes[7] = {c->nq, c->nk, c->nk, c->nq, c->nq, c->nk, c->nk};
    for (int i = 0; i < 7; i++) bufs[i] = uf_malloc(sizeof(float) * sizes[i]), fill(&r, bufs[i], sizes[i], g_amp);
    c->q = bufs[0], c->k = bufs[1], c->v = bufs[2], c->dout = bufs[3];
    c->dq0 = bufs[4], c->dk0 = bufs[5], c->dv0 = bufs[6];
    tensor_at(&c->bases[0], &c->tq, "q", UF_F32, (int64_t)c->nq, 3);
    tensor_at(&c->bases[1], &c->tk, "k", UF_F32, (int64_t)c->nk, 5);
    tensor_at(&c->bases[2], &c->tv, "v", UF_F32, (int64_t)c->nk, 0);
    tensor_at(&c->bases[3], &c->tlen, "lengths", UF_I32, s->B, 1);
    tensor_at(&c->bases[4], &c->to, "o", UF_F32, (int64_t)c->nq, 7);
    tensor_at(&c->bases[5], &c->tlse, "lse", UF_F32, (int64_t)c->nl, 2);
    tensor_at(&c->bases[6], &c->tdout, "dout", UF_F32, (int64_t)c->nq, 1);
    tensor_at(&c->bases[7], &c->tdq, "dq", UF_F32, (int64_t)c->nq, 9);
    tensor_at(&c->bases[8], &c->tdk, "dk", UF_F32, (int64_t)c->nk, 4);
    tensor_at(&c->bases[9], &c->tdv, "dv", UF_F32, (int64_t)c->nk, 11);
    uf_tensor_upload(&c->tq, c->q);
    uf_tensor_upload(&c->tk, c->k);
    uf_tensor_upload(&c->tv, c->v);
    uf_tensor_upload(&c->tlen, s->lengths);
    uf_tensor_upload(&c->tdout, c->dout);
}

static void case_free(struct attn_case *c) {
    for (int i = 0; i < 11; i++)
        if (c->bases[i].buf) uf_tensor_free(&c->bases[i]);
    free(c->q), free(c->k), free(c->v), free(c->dout), free(c->dq0), free(c->dk0), free(c->dv0);
}

static void run_forward(struct attn_case *c) {
    const struct shape *s = &c->s;
    uf_op_attention_forward(&dev, &c->tq, &c->tk, &c->tv, &c->tlen, s->B, s->T, s->H, s->KV, s->hd,
                            s->window, &c->to, &c->tlse);
}

/* Uploads the initial gradients, runs the backward (after run_forward). */
static void run_backward(struct attn_case *c) {
    const struct shape *s = &c->s;
    uf_tensor_upload(&c->tdq, c->dq0);
    uf_tensor_upload(&c->tdk, c->dk0);
    uf_tensor_upload(&c->tdv, c->dv0);
    uf_op_attention_backward(&dev, &c->tq, &c->tk, &c->tv, &c->tlen, s->B, s->T, s->H, s->KV,
                             s->hd, s->window, &c->to, &c->tlse, &c->tdout, &c->tdq, &c->tdk,
                             &c->tdv);
}

/* Forward + backward vs the oracle; padded rows exactly zero / untouched; reruns identical. */
static void check_case_tol(const struct shape *s, uint64_t seed, double tol_fwd, double tol_bwd) {
    struct attn_case c;
    case_init(&c, s, seed);
    size_t nq = c.nq, nk = c.nk, nl = c.nl;
    float *o = uf_malloc(4 * nq), *lse = uf_malloc(4 * nl), *dq = uf_malloc(4 * nq),
          *dk = uf_malloc(4 * nk), *dv = uf_malloc(4 * nk);
    double *qd = uf_malloc(8 * nq), *kd = uf_malloc(8 * nk), *vd = uf_malloc(8 * nk),
           *dod = uf_malloc(8 * nq), *od = uf_malloc(8 * nq), *lsed = uf_malloc(8 * nl),
           *dqd = uf_malloc(8 * nq), *dkd = uf_malloc(8 * nk), *dvd = uf_malloc(8 * nk);
    to_double(qd, c.q, nq), to_double(kd, c.k, nk), to_double(vd, c.v, nk);
    to_double(dod, c.dout, nq);
    to_double(dqd, c.dq0, nq), to_double(dkd, c.dk0, nk), to_double(dvd, c.dv0, nk);
    uf_ref_attention_forward_f64(od, lsed, qd, kd, vd, s->lengths, s->B, s->T, s->H, s->KV, s->hd,
                                 s->window);
    uf_ref_attention_backward_f64(dqd, dkd, dvd, dod, qd, kd, vd, s->lengths, s->B, s->T, s->H,
                                  s->KV, s->hd, s->window);

    run_forward(&c);
    run_backward(&c);
    uf_tensor_download(&c.to, o), uf_tensor_download(&c.tlse, lse);
    uf_tensor_download(&c.tdq, dq), uf_tensor_download(&c.tdk, dk), uf_tensor_download(&c.tdv, dv);
    double eo = rel_err_d(o, od, nq), el = rel_err_d(lse, lsed, nl);
    double eq = rel_err_d(dq, dqd, nq), ek = rel_err_d(dk, dkd, nk), ev = rel_err_d(dv, dvd, nk);
    fprintf(stderr, "  B=%d T=%d H=%d KV=%d hd=%d window=%d: o %.1e lse %.1e dq %.1e dk %.1e dv %.1e\n",
            s->B, s->T, s->H, s->KV, s->hd, s->window, eo, el, eq, ek, ev);
    CHECK(eo <= tol_fwd);
    CHECK(el <= tol_fwd);
    CHECK(eq <= tol_bwd);
    CHECK(ek <= tol_bwd);
    CHECK(ev <= tol_bwd);

    /* padded rows: o and lse exactly 0, dq rows untouched; keys j >= len get no dk/dv */
    int pad_ok = 1;
    for (int b = 0; b < s->B; b++)
        for (int t = s->lengths[b]; t < s->T; t++) {
            size_t n = (size_t)b * s->T + t;
            for (size_t e = n * s->H * s->hd; e < (n + 1) * s->H * s->hd; e++)
                pad_ok &= o[e] == 0.0f && dq[e] == c.dq0[e];
            for (size_t e = n * s->KV * s->hd; e < (n + 1) * s->KV * s->hd; e++)
                pad_ok &= dk[e] == c.dk0[e] && dv[e] == c.dv0[e];
            for (int h = 0; h < s->H; h++) pad_ok &= lse[((size_t)b * s->H + h) * s->T + t] == 0.0f;
        }
    CHECK_MSG(pad_ok, "padded rows must give zeros and leave gradients untouched");

    /* determinism: a second run is bit-identical */
    float *o2 = uf_malloc(4 * nq), *dq2 = uf_malloc(4 * nq), *dk2 = uf_malloc(4 * nk),
          *dv2 = uf_malloc(4 * nk), *lse2 = uf_malloc(4 * nl);
    run_forward(&c);
    run_backward(&c);
    uf_tensor_download(&c.to, o2), uf_tensor_download(&c.tlse, lse2);
    uf_tensor_download(&c.tdq, dq2), uf_tensor_download(&c.tdk, dk2), uf_tensor_download(&c.tdv, dv2);
    CHECK(memcmp(o, o2, 4 * nq) == 0 && memcmp(lse, lse2, 4 * nl) == 0);
    CHECK(memcmp(dq, dq2, 4 * nq) == 0 && memcmp(dk, dk2, 4 * nk) == 0 &&
          memcmp(dv, dv2, 4 * nk) == 0);

    /* the guard values around the views are untouched (offsets honoured) */
    float guard[16];
    struct uf_tensor g;
    uf_tensor_view(&g, &c.bases[4], "o_guard", 0, 1, (int64_t[]){7});
    uf_tensor_download(&g, guard);
    int guard_ok = 1;
    for (int i = 0; i < 7; i++) guard_ok &= guard[i] == -777.0f;
    uf_tensor_view(&g, &c.bases[7], "dq_guard", 0, 1, (int64_t[]){9});
    uf_tensor_download(&g, guard);
    for (int i = 0; i < 9; i++) guard_ok &= guard[i] == -777.0f;
    CHECK_MSG(guard_ok, "writes outside the output views");

    free(o2), free(dq2), free(dk2), free(dv2), free(lse2);
    free(o), free(lse), free(dq), free(dk), free(dv);
    free(qd), free(kd), free(vd), free(dod), free(od), free(lsed), free(dqd), free(dkd), free(dvd);
    case_free(&c);
}

static void check_case(const struct shape *s, uint64_t seed) { check_case_tol(s, seed, 2e-6, 5e-6); }

static void test_gqa_padding(void) {
    check_case(&(struct shape){2, 9, 4, 2, 6, 0, {9, 5}}, 1);
}
static void test_mqa(void) {
    check_case(&(struct shape){2, 9, 4, 1, 6, 0, {9, 5}}, 2);
}
static void test_window(void) {
    check_case(&(struct shape){2, 9, 4, 2, 6, 3, {9, 5}}, 3);
}
static void test_hd256(void) {
    check_case(&(struct shape){2, 5, 2, 1, 256, 0, {5, 3}}, 4);
}
static void test_multi_tile(void) {
    /* several query blocks and key tiles; window crossing tile borders; an empty sequence */
    check_case(&(struct shape){3, 70, 4, 2, 64, 0, {70, 33, 0}}, 5);
    check_case(&(struct shape){2, 70, 2, 2, 72, 40, {70, 45}}, 6);
    check_case(&(struct shape){1, 37, 3, 3, 1, 0, {37}}, 7);
    check_case(&(struct shape){2, 150, 4, 2, 24, 0, {150, 97}}, 14); /* D = 32 over tiles */
    /* the 128 and 256 instances over several tiles (32 and 16 rows), GQA, windows */
    check_case(&(struct shape){2, 75, 4, 2, 128, 0, {75, 50}}, 10);
    check_case(&(struct shape){2, 41, 4, 2, 256, 20, {41, 17}}, 11);
    check_case(&(struct shape){1, 33, 2, 1, 200, 5, {33}}, 12);
}

/* Scores in the hundreds (inputs with standard deviation 8): the online softmax must not
 * overflow. Float rounding of scores ~300 is ~3e-5 absolute, hence the looser bounds. */
static void test_large_scores(void) {
    g_amp = 8.0;
    check_case_tol(&(struct shape){2, 70, 4, 2, 64, 0, {70, 31}}, 13, 1e-4, 1e-4);
    g_amp = 1.0;
}

/* d/dx of L = sum(o * dout) by central differences of the device forward, per element of
 * q, k, v, against the device backward (started from zero gradients). */
static void test_finite_differences(void) {
    struct shape s = {2, 9, 4, 2, 6, 3, {9, 5}};
    struct attn_case c;
    case_init(&c, &s, 8);
    memset(c.dq0, 0, 4 * c.nq), memset(c.dk0, 0, 4 * c.nk), memset(c.dv0, 0, 4 * c.nk);
    run_forward(&c);
    run_backward(&c);
    float *grad[3] = {uf_malloc(4 * c.nq), uf_malloc(4 * c.nk), uf_malloc(4 * c.nk)};
    uf_tensor_download(&c.tdq, grad[0]), uf_tensor_download(&c.tdk, grad[1]);
    uf_tensor_download(&c.tdv, grad[2]);
    float *x[3] = {c.q, c.k, c.v};
    struct uf_tensor *tx[3] = {&c.tq, &c.tk, &c.tv};
    size_t n[3] = {c.nq, c.nk, c.nk};
    float *o = uf_malloc(4 * c.nq);
    const float eps = 1e-2f;
    for (int w = 0; w < 3; w++) {
        double gmax = 1e-6, err = 0;
        for (size_t i = 0; i < n[w]; i++) gmax = fmax(gmax, fabs(grad[w][i]));
        for (size_t i = 0; i < n[w]; i++) {
            float keep = x[w][i];
            double L[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                x[w][i] = keep + (sgn ? -eps : eps);
                uf_tensor_upload(tx[w], x[w]);
                run_forward(&c);
                uf_tensor_download(&c.to, o);
                L[sgn] = 0;
                for (size_t e = 0; e < c.nq; e++) L[sgn] += (double)o[e] * c.dout[e];
            }
            x[w][i] = keep;
            err = fmax(err, fabs((L[0] - L[1]) / (2.0 * eps) - grad[w][i]));
        }
        uf_tensor_upload(tx[w], x[w]);
        fprintf(stderr, "  finite differences %s: max err %.2e of max |grad| %.2e\n",
                w == 0 ? "dq" : w == 1 ? "dk" : "dv", err, gmax);
        CHECK(err <= 1e-3 * gmax);
    }
    free(o), free(grad[0]), free(grad[1]), free(grad[2]);
    case_free(&c);
}

/* A caller bug (H not a multiple of KV; a tensor of the wrong size) exits 1 naming the problem
 * before any OpenCL call (the child of fork() must not touch the device). */
static void expect_fatal(struct attn_case *c, int which, const char *needle) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        if (which == 0) /* H = 3 with KV = 2 */
            uf_op_attention_forward(&dev, &c->tq, &c->tk, &c->tv, &c->tlen, 1, 4, 3, 2, 8, 0, &c->to,
                                    &c->tlse);
        else /* lse given where o belongs */
            uf_op_attention_forward(&dev, &c->tq, &c->tk, &c->tv, &c->tlen, 1, 4, 2, 1, 8, 0,
                                    &c->tlse, &c->tlse);
        _exit(0);
    }
    close(fds[1]);
    char buf[2048] = {0};
    size_t n = 0;
    ssize_t got;
    while (n < sizeof buf - 1 && (got = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)got;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    CHECK_MSG(strstr(buf, needle) != NULL, "message: %s", buf);
}

static void test_bad_shapes(void) {
    struct attn_case c;
    case_init(&c, &(struct shape){1, 4, 2, 1, 8, 0, {4}}, 1);
    uf_device_finish(&dev);
    expect_fatal(&c, 0, "KV divides H");
    expect_fatal(&c, 1, "o (lse)");
    case_free(&c);
}

/* Forward + backward times at training shapes (informational; `test_attention --bench`). */
static void bench(void) {
    static const int heads[][2] = {{4, 4}, {8, 8}, {8, 2}};
    enum { REPS = 7 };
    for (size_t i = 0; i < UF_ARRAY_LEN(heads); i++) {
        struct shape s = {8, 256, heads[i][0], heads[i][1], 64, 0, {256, 256, 256, 256, 256, 256, 256, 256}};
        struct attn_case c;
        case_init(&c, &s, 9);
        run_forward(&c);
        run_backward(&c);
        uf_device_finish(&dev);
        /* best of REPS, wall and process CPU time (the machine may be shared) */
        double tf = INFINITY, tb = INFINITY, cf = INFINITY, cb = INFINITY;
        for (int r = 0; r < REPS; r++) {
            double t0 = uf_time_now(), c0 = (double)clock() / CLOCKS_PER_SEC;
            run_forward(&c);
            uf_device_finish(&dev);
            double t1 = uf_time_now(), c1 = (double)clock() / CLOCKS_PER_SEC;
            uf_op_attention_backward(&dev, &c.tq, &c.tk, &c.tv, &c.tlen, s.B, s.T, s.H, s.KV, s.hd,
                                     s.window, &c.to, &c.tlse, &c.tdout, &c.tdq, &c.tdk, &c.tdv);
            uf_device_finish(&dev);
            double t2 = uf_time_now(), c2 = (double)clock() / CLOCKS_PER_SEC;
            tf = fmin(tf, t1 - t0), tb = fmin(tb, t2 - t1);
            cf = fmin(cf, c1 - c0), cb = fmin(cb, c2 - c1);
        }
        fprintf(stderr, "  bench B=8 T=256 H=%d KV=%d hd=64: forward %.1f ms (cpu %.1f), "
                "backward %.1f ms (cpu %.1f), best of %d\n", s.H, s.KV, tf * 1e3, cf * 1e3,
                tb * 1e3, cb * 1e3, REPS);
        case_free(&c);
    }
}

int main(int argc, char **argv) {
    uf_device_init(&dev, NULL);
    if (argc > 1 && strcmp(argv[1], "--bench-only") == 0) {
        bench();
        uf_device_free(&dev);
        return 0;
    }
    /* both kernel variants: the device's own (CPU devices: attention.cl) and the other one
     * (ops.h uf_ops_portable: attention_gpu.cl on a CPU device, attention.cl elsewhere) */
    for (int pass = 0; pass < 2; pass++) {
        uf_ops_portable = pass == 0 ? 0 : uf_ops_cpu_path(&dev) ? 1 : -1;
        fprintf(stderr, "---- %s variant\n", uf_ops_cpu_path(&dev) ? "CPU (attention.cl)"
                                                                   : "GPU (attention_gpu.cl)");
        UF_RUN(test_gqa_padding);
        UF_RUN(test_mqa);
        UF_RUN(test_window);
        UF_RUN(test_hd256);
        UF_RUN(test_multi_tile);
        UF_RUN(test_large_scores);
        UF_RUN(test_bad_shapes);
        UF_RUN(test_finite_differences);
    }
    uf_ops_portable = 0;
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) bench();
    uf_device_free(&dev);
    return uf_test_summary();
}
