/* test_ref_ops_host.c: every reference op's backward against central finite differences of its
 * forward, in double (ref_ops.h, _f64 versions), and the float versions against the double ones.
 *
 * For an op y = f(x1, x2, ...) and a random cotangent r, the objective is J = <r, y>; the
 * backward called with dy = r must give dJ/dx for every input element. Central differences with
 * step h = 1e-5; bound |fd - analytic| <= 1e-7 * max(1, |analytic|) for every element (the
 * truncation error is O(h^2) ~ 1e-10 and the rounding error O(1e-16 / h) ~ 1e-11). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ref/ref_ops.h"
#include "uf_test.h"
#include "core/util.h"

#define FD_H 1e-5
#define FD_BOUND 1e-7

/* one finite-difference case: inputs x[i] (n[i] elements), output y (ny), cotangent r */
struct fdc {
    int nin;
    const char *name[6];
    double *x[6], *g[6];
    size_t n[6];
    double *y, *r;
    size_t ny;
    void (*fwd)(struct fdc *);
    void (*bwd)(struct fdc *); /* g[i] += dJ/dx[i] with dy = r */
    /* sizes and options used by fwd/bwd */
    int N, D, in, out, rk, B, T, H, KV, hd, window, plus_one, V;
    enum uf_act act;
    float eps, scale;
    int32_t *tok, *len;
    float *mask, *inv_freq;
};

static struct uf_rng rng;

static double *rnd(size_t n, double s) {
    double *p = uf_calloc(n + 1, sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = s * uf_rng_normal(&rng);
    return p;
}

static void add_input(struct fdc *c, const char *name, size_t n, double s) {
    c->name[c->nin] = name;
    c->n[c->nin] = n;
    c->x[c->nin] = rnd(n, s);
    c->g[c->nin] = uf_calloc(n + 1, sizeof(double));
    c->nin++;
}

static double objective(struct fdc *c) {
    c->fwd(c);
    double s = 0;
    for (size_t i = 0; i < c->ny; i++) s += c->r[i] * c->y[i];
    return s;
}

/* runs the finite-difference check; returns the largest error relative to max(1, |g|) */
static void fd_check(struct fdc *c, const char *op) {
    c->y = uf_calloc(c->ny + 1, sizeof(double));
    c->r = rnd(c->ny, 1.0);
    c->fwd(c);
    c->bwd(c);
    double worst = 0;
    for (int i = 0; i < c->nin; i++)
        for (size_t j = 0; j < c->n[i]; j++) {
            double keep = c->x[i][j];
            c->x[i][j] = keep + FD_H;
            double fp = objective(c);
            c->x[i][j] = keep - FD_H;
            double fm = objective(c);
            c->x[i][j] = keep;
            double fd = (fp - fm) / (2 * FD_H), an = c->g[i][j];
            double err = fabs(fd - an) / fmax(1.0, fabs(an));
            if (err > worst) worst = err;
            CHECK_MSG(err <= FD_BOUND, "%s: d/d%s[%zu]: analytic %.12g, finite difference %.12g", op,
                      c->name[i], j, an, fd);
        }
    fprintf(stderr, "  %-28s max rel err %.3g (bound %g)\n", op, worst, FD_BOUND);
    for (int i = 0; i < c->nin; i++) {
        free(c->x[i]);
        free(c->g[i]);
    }
    free(c->y);
    free(c->r);
}

/* ---- embedding ---- */
static void emb_f(struct fdc *c) { uf_ref_embedding_forward_f64(c->y, c->tok, c->x[0], c->N, c->D, c->scale); }
static void emb_b(struct fdc *c) { uf_ref_embedding_backward_f64(c->g[0], c->r, c->tok, c->N, c->D, c->scale); }
static void test_embedding(void) {
    int32_t tok[7] = {3, 1, 3, 0, 4, 3, 1}; /* repeated tokens: accumulation */
    struct fdc c = {0};
    c.N = 7; c.D = 5; c.V = 6; c.tok = tok; c.scale = sqrtf(5.0f);
    add_input(&c, "wte", (size_t)c.V * c.D, 1.0);
    c.ny = (size_t)c.N * c.D;
    c.fwd = emb_f; c.bwd = emb_b;
    fd_check(&c, "embedding");
}

/* ---- rmsnorm ---- */
static void rms_f(struct fdc *c) { uf_ref_rmsnorm_forward_f64(c->y, NULL, c->x[0], c->x[1], c->N, c->D, c->eps, c->plus_one); }
static void rms_b(struct fdc *c) { uf_ref_rmsnorm_backward_f64(c->g[0], c->g[1], c->r, c->x[0], c->x[1], c->N, c->D, c->eps, c->plus_one); }
static void test_rmsnorm(void) {
    for (int po = 0; po < 2; po++) {
        struct fdc c = {0};
        c.N = 5; c.D = 8; c.eps = 1e-5f; c.plus_one = po;
        add_input(&c, "x", (size_t)c.N * c.D, 1.0);
        add_input(&c, "w", (size_t)c.D, 1.0);
        c.ny = (size_t)c.N * c.D;
        c.fwd = rms_f; c.bwd = rms_b;
        fd_check(&c, po ? "rmsnorm (1 + w)" : "rmsnorm");
    }
}

/* ---- matmul ---- */
static void mm_f(struct fdc *c) { uf_ref_matmul_forward_f64(c->y, c->x[0], c->x[1], c->N, c->in, c->out); }
static void mm_b(struct fdc *c) { uf_ref_matmul_backward_f64(c->g[0], c->g[1], c->r, c->x[0], c->x[1], c->N, c->in, c->out); }
static void test_matmul(void) {
    struct fdc c = {0};
    c.N = 4; c.in = 6; c.out = 5;
    add_input(&c, "x", (size_t)c.N * c.in, 1.0);
    add_input(&c, "w", (size_t)c.out * c.in, 1.0);
    c.ny = (size_t)c.N * c.out;
    c.fwd = mm_f; c.bwd = mm_b;
    fd_check(&c, "matmul");
}

/* ---- LoRA linear ---- */
static void lora_f(struct fdc *c) { uf_ref_lora_forward_f64(c->y, c->x[0], c->x[1], c->x[2], c->x[3], c->N, c->in, c->out, c->rk, c->scale); }
static void lora_b(struct fdc *c) { uf_ref_lora_backward_f64(c->g[0], c->g[1], c->g[2], c->g[3], c->r, c->x[0], c->x[1], c->x[2], c->x[3], c->N, c->in, c->out, c->rk, c->scale); }
static void test_lora(void) {
    struct fdc c = {0};
    c.N = 4; c.in = 6; c.out = 5; c.rk = 3; c.scale = 16.0f / 3.0f;
    add_input(&c, "x", (size_t)c.N * c.in, 1.0);
    add_input(&c, "w", (size_t)c.out * c.in, 1.0);
    add_input(&c, "A", (size_t)c.rk * c.in, 0.5);
    add_input(&c, "B", (size_t)c.out * c.rk, 0.5);
    c.ny = (size_t)c.N * c.out;
    c.fwd = lora_f; c.bwd = lora_b;
    fd_check(&c, "lora linear");
}

/* ---- RoPE ---- */
static void rope_f(struct fdc *c) { uf_ref_rope_forward_f64(c->y, c->x[0], c->inv_freq, c->N, c->T, c->H, c->hd); }
static void rope_b(struct fdc *c) { uf_ref_rope_backward_f64(c->g[0], c->r, c->inv_freq, c->N, c->T, c->H, c->hd); }
static void test_rope(void) {
    struct uf_model_config cfg;
    uf_model_config_defaults(&cfg, UF_FAMILY_LLAMA3, 37, 24, 1, 2, 2, 24, 64);
    cfg.rope_original_max_pos = 32; /* with theta 10 and hd 12: one high, four medium, one low band */
    cfg.rope_theta = 10.0f;
    float inv_freq[6];
    uf_ref_rope_inv_freq(&cfg, inv_freq);
    struct fdc c = {0};
    c.B = 2; c.T = 5; c.N = 10; c.H = 2; c.hd = 12; c.inv_freq = inv_freq;
    add_input(&c, "x", (size_t)c.N * c.H * c.hd, 1.0);
    c.ny = c.n[0];
    c.fwd = rope_f; c.bwd = rope_b;
    fd_check(&c, "rope (llama3 scaling)");
    /* in-place forward equals out-of-place */
    double *x = rnd(240, 1.0), *y = uf_calloc(240, sizeof *y);
    uf_ref_rope_forward_f64(y, x, inv_freq, 10, 5, 2, 12);
    uf_ref_rope_forward_f64(x, x, inv_freq, 10, 5, 2, 12);
    for (int i = 0; i < 240; i++) CHECK(x[i] == y[i]);
    free(x);
    free(y);
}

/* ---- attention ---- */
static void att_f(struct fdc *c) { uf_ref_attention_forward_f64(c->y, NULL, c->x[0], c->x[1], c->x[2], c->len, c->B, c->T, c->H, c->KV, c->hd, c->window); }
static void att_b(struct fdc *c) { uf_ref_attention_backward_f64(c->g[0], c->g[1], c->g[2], c->r, c->x[0], c->x[1], c->x[2], c->len, c->B, c->T, c->H, c->KV, c->hd, c->window); }
static void test_attention(void) {
    int32_t len[2] = {7, 4};
    const struct { int H, KV, hd, window; const char *name; } cases[] = {
        {4, 2, 4, 0, "attention GQA"}, {4, 2, 4, 3, "attention GQA window 3"},
        {3, 1, 6, 0, "attention MQA hd 6"}, {2, 2, 4, 1, "attention MHA window 1"}};
    for (unsigned k = 0; k < UF_ARRAY_LEN(cases); k++) {
        struct fdc c = {0};
        c.B = 2; c.T = 7; c.N = 14; c.H = cases[k].H; c.KV = cases[k].KV; c.hd = cases[k].hd;
        c.window = cases[k].window; c.len = len;
        add_input(&c, "q", (size_t)c.N * c.H * c.hd, 1.0);
        add_input(&c, "k", (size_t)c.N * c.KV * c.hd, 1.0);
        add_input(&c, "v", (size_t)c.N * c.KV * c.hd, 1.0);
        c.ny = (size_t)c.N * c.H * c.hd;
        c.fwd = att_f; c.bwd = att_b;
        fd_check(&c, cases[k].name);
    }
}

/* padded rows are zero, padded keys and keys outside the window are invisible */
static void test_attention_masking(void) {
    int B = 2, T = 7, H = 2, KV = 1, hd = 4, W = 3, N = B * T;
    int32_t len[2] = {7, 4};
    double *q = rnd((size_t)N * H * hd, 1), *k = rnd((size_t)N * KV * hd, 1), *v = rnd((size_t)N * KV * hd, 1);
    double *o1 = uf_calloc((size_t)N * H * hd, sizeof *o1), *o2 = uf_calloc((size_t)N * H * hd, sizeof *o2);
    double lse[2 * 2 * 7];
    uf_ref_attention_forward_f64(o1, lse, q, k, v, len, B, T, H, KV, hd, W);
    for (int t = 4; t < T; t++)
        for (int e = 0; e < H * hd; e++) CHECK(o1[(size_t)(T + t) * H * hd + e] == 0);
    for (int t = 4; t < T; t++) CHECK(lse[(1 * H + 1) * T + t] == 0);
    /* change the keys/values of the padding of sequence 1 and key 0 of sequence 0 */
    for (int e = 0; e < hd; e++) {
        k[(size_t)(T + 5) * hd + e] += 3; v[(size_t)(T + 6) * hd + e] -= 2;
        k[e] += 1; v[e] += 1;
    }
    uf_ref_attention_forward_f64(o2, NULL, q, k, v, len, B, T, H, KV, hd, W);
    for (int n = 0; n < N; n++) {
        int b = n / T, t = n % T;
        int affected = b == 0 && t < W; /* rows of sequence 0 that still see key 0 */
        for (int e = 0; e < H * hd; e++) {
            double d = fabs(o1[(size_t)n * H * hd + e] - o2[(size_t)n * H * hd + e]);
            if (affected) CHECK(d > 0);
            else CHECK_MSG(d == 0, "row b=%d t=%d changed by %g", b, t, d);
        }
    }
    free(q); free(k); free(v); free(o1); free(o2);
}

/* ---- gated activation ---- */
static void act_f(struct fdc *c) { uf_ref_gated_act_forward_f64(c->y, c->x[0], c->x[1], (int64_t)c->n[0], c->act); }
static void act_b(struct fdc *c) { uf_ref_gated_act_backward_f64(c->g[0], c->g[1], c->r, c->x[0], c->x[1], (int64_t)c->n[0], c->act); }
static void test_gated_act(void) {
    for (int a = 0; a < 2; a++) {
        struct fdc c = {0};
        c.act = a ? UF_ACT_GELU_TANH : UF_ACT_SILU;
        add_input(&c, "g", 40, 2.0);
        add_input(&c, "u", 40, 1.0);
        c.ny = 40;
        c.fwd = act_f; c.bwd = act_b;
        fd_check(&c, a ? "gated tanh-GELU" : "gated SiLU");
    }
    /* values at a few points, against closed forms */
    double g[3] = {-1.5, 0.0, 2.0}, u[3] = {1, 1, 1}, h[3];
    uf_ref_gated_act_forward_f64(h, g, u, 3, UF_ACT_SILU);
    CHECK_NEAR(h[0], -1.5 / (1 + exp(1.5)), 1e-15);
    CHECK_NEAR(h[2], 2.0 / (1 + exp(-2.0)), 1e-15);
    uf_ref_gated_act_forward_f64(h, g, u, 3, UF_ACT_GELU_TANH);
    CHECK_NEAR(h[1], 0.0, 0);
    CHECK_NEAR(h[2], 1.954597694087775, 1e-12); /* torch gelu(2.0, approximate='tanh') */
}

/* ---- residual ---- */
static void res_f(struct fdc *c) { uf_ref_residual_forward_f64(c->y, c->x[0], c->x[1], (int64_t)c->n[0]); }
static void res_b(struct fdc *c) { uf_ref_residual_backward_f64(c->g[0], c->g[1], c->r, (int64_t)c->n[0]); }
static void test_residual(void) {
    struct fdc c = {0};
    add_input(&c, "a", 12, 1.0);
    add_input(&c, "b", 12, 1.0);
    c.ny = 12;
    c.fwd = res_f; c.bwd = res_b;
    fd_check(&c, "residual");
}

/* ---- cross-entropy ---- */
static int32_t ce_tgt[9] = {0, 4, 10, 3, -100, 2, 10, 7, 5};
static float ce_mask[9] = {1, 1, 1, 0, 0, 1, 1, 1, 0};
static void ce_f(struct fdc *c) { c->y[0] = uf_ref_cross_entropy_forward_f64(NULL, c->x[0], ce_tgt, ce_mask, c->N, c->V); }
static void ce_b(struct fdc *c) {
    double *d = uf_calloc(c->n[0], sizeof *d);
    uf_ref_cross_entropy_backward_f64(d, c->x[0], ce_tgt, ce_mask, c->N, c->V, c->r[0] / 6.0);
    for (size_t i = 0; i < c->n[0]; i++) c->g[0][i] += d[i];
    free(d);
}
static void test_cross_entropy(void) {
    struct fdc c = {0};
    c.N = 9; c.V = 11;
    add_input(&c, "logits", (size_t)c.N * c.V, 2.0);
    c.ny = 1;
    c.fwd = ce_f; c.bwd = ce_b;
    fd_check(&c, "cross-entropy (masked mean)");
    /* uniform logits: loss = log V exactly; no masked token: loss 0 */
    double z[2 * 11] = {0};
    int32_t t[2] = {1, 2};
    float m1[2] = {1, 1}, m0[2] = {0, 0};
    CHECK_NEAR(uf_ref_cross_entropy_forward_f64(NULL, z, t, m1, 2, 11), log(11.0), 1e-14);
    CHECK(uf_ref_cross_entropy_forward_f64(NULL, z, t, m0, 2, 11) == 0);
}

/* ---- float versions agree with the double versions (same code, f32 storage) ---- */
static float *tof(const double *x, size_t n) {
    float *f = uf_calloc(n + 1, sizeof *f);
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}
static double *tod(const float *x, size_t n) {
    double *d = uf_calloc(n + 1, sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
/* max |a - b| / max(1, max |b|) */
static double relerr(const float *a, const double *b, size_t n) {
    double m = 1, e = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(b[i]));
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i]));
    return e / m;
}
#define F32_BOUND 1e-6 /* a few f32 roundings of the outputs and inputs */

static void test_float_matches_double(void) {
    int B = 2, T = 7, N = 14, H = 4, KV = 2, hd = 4, D = 16, V = 37;
    int32_t len[2] = {7, 4};
    size_t nq = (size_t)N * H * hd, nk = (size_t)N * KV * hd;
    /* inputs rounded to f32 first so both versions see the same numbers */
    double *qd = rnd(nq, 1), *kd = rnd(nk, 1), *vd = rnd(nk, 1), *dod = rnd(nq, 1);
    float *q = tof(qd, nq), *k = tof(kd, nk), *v = tof(vd, nk), *dout = tof(dod, nq);
    free(qd); free(kd); free(vd); free(dod);
    qd = tod(q, nq); kd = tod(k, nk); vd = tod(v, nk); dod = tod(dout, nq);
    float *o = uf_calloc(nq, sizeof *o), *dq = uf_calloc(nq, sizeof *dq), *dk = uf_calloc(nk, sizeof *dk), *dv = uf_calloc(nk, sizeof *dv);
    double *od = uf_calloc(nq, sizeof *od), *dqd = uf_calloc(nq, sizeof *dqd), *dkd = uf_calloc(nk, sizeof *dkd), *dvd = uf_calloc(nk, sizeof *dvd);
    uf_ref_attention_forward(o, NULL, q, k, v, len, B, T, H, KV, hd, 3);
    uf_ref_attention_forward_f64(od, NULL, qd, kd, vd, len, B, T, H, KV, hd, 3);
    CHECK(relerr(o, od, nq) <= F32_BOUND);
    uf_ref_attention_backward(dq, dk, dv, dout, q, k, v, len, B, T, H, KV, hd, 3);
    uf_ref_attention_backward_f64(dqd, dkd, dvd, dod, qd, kd, vd, len, B, T, H, KV, hd, 3);
    CHECK(relerr(dq, dqd, nq) <= F32_BOUND);
    CHECK(relerr(dk, dkd, nk) <= F32_BOUND);
    CHECK(relerr(dv, dvd, nk) <= F32_BOUND);
    /* matmul + rmsnorm + cross-entropy on (N, D) -> (N, V) */
    double *xd0 = rnd((size_t)N * D, 1), *wd0 = rnd((size_t)V * D, 1), *nd0 = rnd((size_t)D, 1);
    float *x = tof(xd0, (size_t)N * D), *w = tof(wd0, (size_t)V * D), *nw = tof(nd0, (size_t)D);
    double *xd = tod(x, (size_t)N * D), *wd = tod(w, (size_t)V * D), *nwd = tod(nw, (size_t)D);
    float *hf = uf_calloc((size_t)N * D, sizeof *hf), *lf = uf_calloc((size_t)N * V, sizeof *lf);
    double *hdd = uf_calloc((size_t)N * D, sizeof *hdd), *ld = uf_calloc((size_t)N * V, sizeof *ld);
    uf_ref_rmsnorm_forward(hf, NULL, x, nw, N, D, 1e-6f, 1);
    uf_ref_rmsnorm_forward_f64(hdd, NULL, xd, nwd, N, D, 1e-6f, 1);
    CHECK(relerr(hf, hdd, (size_t)N * D) <= F32_BOUND);
    double *hdf = tod(hf, (size_t)N * D);
    uf_ref_matmul_forward(lf, hf, w, N, D, V);
    uf_ref_matmul_forward_f64(ld, hdf, wd, N, D, V);
    CHECK(relerr(lf, ld, (size_t)N * V) <= F32_BOUND);
    int32_t tg[14];
    float mk[14];
    for (int n = 0; n < N; n++) { tg[n] = (int32_t)uf_rng_below(&rng, (uint64_t)V); mk[n] = n % 3 != 0; }
    double *ldf = tod(lf, (size_t)N * V);
    double lossf = uf_ref_cross_entropy_forward(NULL, lf, tg, mk, N, V);
    double lossd = uf_ref_cross_entropy_forward_f64(NULL, ldf, tg, mk, N, V);
    CHECK_NEAR(lossf, lossd, 1e-6 * fabs(lossd));
    float *dlf = uf_calloc((size_t)N * V, sizeof *dlf);
    double *dld = uf_calloc((size_t)N * V, sizeof *dld);
    uf_ref_cross_entropy_backward(dlf, lf, tg, mk, N, V, 0.1);
    uf_ref_cross_entropy_backward_f64(dld, ldf, tg, mk, N, V, 0.1);
    CHECK(relerr(dlf, dld, (size_t)N * V) <= F32_BOUND);
    free(q); free(k); free(v); free(dout); free(o); free(dq); free(dk); free(dv);
    free(qd); free(kd); free(vd); free(dod); free(od); free(dqd); free(dkd); free(dvd);
    free(xd0); free(wd0); free(nd0); free(x); free(w); free(nw); free(xd); free(wd); free(nwd);
    free(hf); free(lf); free(hdd); free(ld); free(hdf); free(ldf); free(dlf); free(dld);
}

/* llama3 inv_freq: the three bands at their defining values */
static void test_rope_inv_freq(void) {
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA3, 100, 2048, 1, 16, 8, 64, 64); /* hd 128 */
    float f[64];
    uf_ref_rope_inv_freq(&c, f);
    double pi = acos(-1.0);
    for (int i = 0; i < 64; i++) {
        double base = pow(500000.0, -i / 64.0), wl = 2 * pi / base, want;
        if (wl < 8192 / 4.0) want = base;            /* high frequency: unchanged */
        else if (wl > 8192 / 1.0) want = base / 8;    /* low frequency: / factor */
        else {
            double s = (8192 / wl - 1) / (4 - 1);
            want = (1 - s) * base / 8 + s * base;
        }
        CHECK_NEAR(f[i], want, 1e-7 * want);
    }
    CHECK(f[0] == 1.0f);
    c.rope_factor = 0; /* plain */
    uf_ref_rope_inv_freq(&c, f);
    CHECK_NEAR(f[63], pow(500000.0, -126.0 / 128.0), 1e-7 * f[63]);
}

/* AdamW: the first step moves each weight by about lr * sign(g) (+ decay); clipping scales g */
static void test_adamw(void) {
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.3f, -0.01f, 0.0f}, m[3] = {0}, v[3] = {0};
    uf_ref_adamw(p, g, m, v, 3, 0.0, 0.1f, 0.9f, 0.999f, 1e-8f, 0.0f, 0.0f, 1.0f, 1);
    CHECK_NEAR(p[0], 0.9, 1e-6);
    CHECK_NEAR(p[1], -1.9, 1e-6);
    CHECK_NEAR(p[2], 0.5, 0);
    CHECK_NEAR(m[0], 0.03, 1e-8);
    CHECK_NEAR(v[0], (1 - (double)0.999f) * (double)0.3f * (double)0.3f, 1e-11); /* f32 beta2, f32 v */
    /* weight decay alone (g = 0): p -= lr * wd * p */
    float q[1] = {2.0f}, z[1] = {0}, mq[1] = {0}, vq[1] = {0};
    uf_ref_adamw(q, z, mq, vq, 1, 0.0, 0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 0.0f, 1.0f, 1);
    CHECK_NEAR(q[0], 2.0 - 0.1 * 0.5 * 2.0, 1e-6);
    /* clipping: gnorm 10, max_norm 1 -> g' = g / 10 (+1e-6 guard); step 2 bias correction */
    float r[1] = {0}, gr[1] = {4.0f}, mr[1] = {0.2f}, vr[1] = {0.01f};
    uf_ref_adamw(r, gr, mr, vr, 1, 100.0, 1.0f, 0.9f, 0.99f, 0.0f, 0.0f, 1.0f, 1.0f, 2);
    double gc = 4.0 / (10 + 1e-6), mm = 0.9 * 0.2 + 0.1 * gc, vv = 0.99 * 0.01 + 0.01 * gc * gc;
    CHECK_NEAR(r[0], -(mm / (1 - 0.81)) / sqrt(vv / (1 - 0.9801)), 1e-6);
}

int main(void) {
    uf_rng_init(&rng, 1234);
    UF_RUN(test_embedding);
    UF_RUN(test_rmsnorm);
    UF_RUN(test_matmul);
    UF_RUN(test_lora);
    UF_RUN(test_rope);
    UF_RUN(test_rope_inv_freq);
    UF_RUN(test_attention);
    UF_RUN(test_attention_masking);
    UF_RUN(test_gated_act);
    UF_RUN(test_residual);
    UF_RUN(test_cross_entropy);
    UF_RUN(test_float_matches_double);
    UF_RUN(test_adamw);
    return uf_test_summary();
}
