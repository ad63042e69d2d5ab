/* test_ops.c: the device ops of ops.h (all but attention, see test_attention.c) against the
 * plain-C oracles of runtime/ref/ref_ops.h, on odd shapes (N=7, D=13, V=37, F=19, hd=6), with
 * tensors placed at odd element offsets inside larger buffers (views) and gradients pre-filled
 * with random values (backward ops must ADD). Each check states its bound: max |got - ref| over
 * max |ref| (uf_max_rel_err). Also: llama3 inv_freq bands, AdamW with clipping active/inactive/off
 * vs a plain-C step, dropout mask/rate/backward, bit-identical reruns. Everything runs twice: with
 * the default kernels (CPU devices: explicit-vector kernels) and with uf_ops_portable = 1.
 * UF_OPS_BENCH=1 (or a name substring) additionally times (UF_OPS_PORTABLE=1: the portable kernels) every op at N=2048, D=256/512, V=8192 (printed, not checked). */
#include <math.h>
#include <stdint.h>
#include <sys/resource.h>

#include "core/model_config.h"
#include "ops/ops.h"
#include "ref/ref_ops.h"
#include "ops/selftest.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;
static struct uf_rng rng;

/* ---- helpers: tensors as views at an odd offset into a bigger buffer -------------------------- */
#define MAX_BASES 64
static struct uf_tensor bases[MAX_BASES];
static int nbases;

static struct uf_tensor mk(const char *name, enum uf_dtype dt, int64_t n, const void *host) {
    size_t off = 3 + (size_t)nbases % 5;
    struct uf_tensor *b = &bases[nbases++], v;
    if (nbases > MAX_BASES) uf_fatal(1, "test_ops: too many tensors");
    uf_tensor_init(b, &dev, name, dt, 1, (int64_t[]){n + (int64_t)off + 2});
    uf_tensor_fill(b, -12345.0f); /* guard values around the view */
    uf_tensor_view(&v, b, name, off, 1, &n);
    if (host) uf_tensor_upload(&v, host);
    return v;
}

static void free_all(void) {
    for (int i = 0; i < nbases; i++) uf_tensor_free(&bases[i]);
    nbases = 0;
}

static float *rnd(size_t n, double lo, double hi) {
    float *x = uf_malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * uf_rng_uniform(&rng));
    return x;
}

static float *copyf(const float *x, size_t n) {
    float *y = uf_malloc(n * sizeof(float) + 1);
    memcpy(y, x, n * sizeof(float));
    return y;
}

static float *get(const struct uf_tensor *t) {
    float *x = uf_malloc((size_t)t->numel * sizeof(float) + 1);
    uf_tensor_download(t, x);
    return x;
}

/* compares a device tensor with a reference array; returns the error */
static double cmp(const char *what, const struct uf_tensor *t, const float *ref, double bound) {
    float *got = get(t);
    double e = uf_max_rel_err(got, ref, (size_t)t->numel);
    fprintf(stderr, "  %-36s max rel err %.2e (bound %.0e)\n", what, e, bound);
    CHECK_MSG(e <= bound, "%s: %.3g > %.3g", what, e, bound);
    free(got);
    return e;
}

/* the guard elements around every view are untouched */
static void check_guards(void) {
    int ok = 1;
    for (int i = 0; i < nbases; i++) {
        if (bases[i].dtype != UF_F32) continue;
        float *b = get(&bases[i]);
        size_t off = 3 + (size_t)i % 5, n = (size_t)bases[i].numel - off - 2;
        for (size_t j = 0; j < off; j++) ok &= b[j] == -12345.0f;
        ok &= b[off + n] == -12345.0f && b[off + n + 1] == -12345.0f;
        free(b);
    }
    CHECK_MSG(ok, "an op wrote outside its tensor");
}

/* ---- embedding ---------------------------------------------------------------------------------- */
static void test_embed(void) {
    enum { N = 11, D = 13, V = 37 };
    int32_t tok[N] = {3, 1, 3, 0, 36, 1, 3, 20, 36, 3, 5}; /* repeats: accumulation in order */
    float scale = 1.7f, *table = rnd(V * D, -1, 1), *dout = rnd(N * D, -1, 1),
          *dtab = rnd(V * D, -1, 1), ref[N * D], *dref = copyf(dtab, V * D);
    struct uf_tensor tt = mk("tokens", UF_I32, N, tok), ttab = mk("table", UF_F32, V * D, table),
                     tout = mk("out", UF_F32, N * D, NULL), tdout = mk("dout", UF_F32, N * D, dout),
                     tdtab = mk("dtable", UF_F32, V * D, dtab);
    uf_op_embed_forward(&dev, &tt, &ttab, scale, &tout);
    uf_ref_embedding_forward(ref, tok, table, N, D, scale);
    cmp("embed forward", &tout, ref, 1e-6);
    uf_op_embed_backward(&dev, &tt, &tdout, scale, &tdtab);
    uf_ref_embedding_backward(dref, dout, tok, N, D, scale);
    cmp("embed backward (+=, repeated tokens)", &tdtab, dref, 1e-6);
    /* a token outside [0, V): NaN row forward, no gradient backward */
    int32_t bad[2] = {V, -1};
    struct uf_tensor tb = mk("bad_tokens", UF_I32, 2, bad), tbo = mk("bad_out", UF_F32, 2 * D, NULL);
    uf_op_embed_forward(&dev, &tb, &ttab, 1.0f, &tbo);
    float *bo = get(&tbo);
    int all_nan = 1;
    for (int i = 0; i < 2 * D; i++) all_nan &= isnan(bo[i]);
    CHECK_MSG(all_nan, "out-of-range tokens give NaN rows");
    uf_op_embed_backward(&dev, &tb, &tbo, 1.0f, &tdtab);
    cmp("  out-of-range tokens: no gradient", &tdtab, dref, 1e-6);
    check_guards();
    free_all();
    free(table), free(dout), free(dtab), free(dref), free(bo);
}

/* many rows, few tokens, D larger than one work-group */
static void test_embed_big(void) {
    enum { N = 300, D = 300, V = 9 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)uf_rng_below(&rng, V);
    float *dout = rnd(N * D, -1, 1), *dref = uf_calloc(V * D, sizeof(float));
    struct uf_tensor tt = mk("tokens", UF_I32, N, tok), tdout = mk("dout", UF_F32, N * D, dout),
                     tdtab = mk("dtable", UF_F32, V * D, NULL);
    uf_tensor_fill(&tdtab, 0);
    uf_op_embed_backward(&dev, &tt, &tdout, 1.0f, &tdtab);
    uf_ref_embedding_backward(dref, dout, tok, N, D, 1.0f);
    cmp("embed backward N=300 D=300 V=9", &tdtab, dref, 1e-5);
    free_all();
    free(dout), free(dref);
}

/* ---- RMSNorm ---------------------------------------------------------------------------------- */
static void rmsnorm_case(int N, int D, int plus_one, int with_dw) {
    float eps = 1e-5f, *x = rnd((size_t)N * D, -2, 2), *w = rnd(D, -1, 1),
          *dy = rnd((size_t)N * D, -1, 1), *dx = rnd((size_t)N * D, -1, 1), *dw = rnd(D, -1, 1);
    float *y = uf_malloc((size_t)N * D * 4), *rs = uf_malloc((size_t)N * 4 + 4),
          *dxr = copyf(dx, (size_t)N * D), *dwr = copyf(dw, D);
    struct uf_tensor tx = mk("x", UF_F32, (int64_t)N * D, x), tw = mk("w", UF_F32, D, w),
                     ty = mk("y", UF_F32, (int64_t)N * D, NULL), tr = mk("rstd", UF_F32, N, NULL),
                     tdy = mk("dy", UF_F32, (int64_t)N * D, dy),
                     tdx = mk("dx", UF_F32, (int64_t)N * D, dx), tdw = mk("dw", UF_F32, D, dw);
    uf_op_rmsnorm_forward(&dev, &tx, &tw, eps, plus_one, &ty, &tr);
    uf_ref_rmsnorm_forward(y, rs, x, w, N, D, eps, plus_one);
    char what[96];
    snprintf(what, sizeof what, "rmsnorm fwd N=%d D=%d%s", N, D, plus_one ? " (1+w)" : "");
    cmp(what, &ty, y, 2e-6);
    cmp("  rstd", &tr, rs, 2e-6);
    uf_op_rmsnorm_backward(&dev, &tx, &tw, &tr, &tdy, plus_one, &tdx, with_dw ? &tdw : NULL);
    uf_ref_rmsnorm_backward(dxr, with_dw ? dwr : NULL, dy, x, w, N, D, eps, plus_one);
    cmp("  dx (+=)", &tdx, dxr, 1e-5);
    cmp(with_dw ? "  dw (+=)" : "  dw untouched (NULL)", &tdw, dwr, 1e-5);
    check_guards();
    free_all();
    free(x), free(w), free(dy), free(dx), free(dw), free(y), free(rs), free(dxr), free(dwr);
}

static void test_rmsnorm(void) {
    rmsnorm_case(7, 13, 0, 1);
    rmsnorm_case(7, 13, 1, 1);
    rmsnorm_case(7, 13, 0, 0);
    rmsnorm_case(70, 515, 1, 1); /* several dw chunks, several elements per work-item */
}

/* ---- RoPE --------------------------------------------------------------------------------------- */
static void rope_case(int B, int T, int nh, int hd, const struct uf_model_config *cfg, double bound) {
    int N = B * T, C = nh * hd;
    struct uf_model_config c = *cfg;
    c.head_dim = hd;
    float *inv = uf_malloc((size_t)hd / 2 * 4), *x = rnd((size_t)N * C, -1, 1),
          *dx = rnd((size_t)N * C, -1, 1), *y = uf_malloc((size_t)N * C * 4),
          *dxr = copyf(dx, (size_t)N * C);
    uf_rope_inv_freq(&c, inv);
    struct uf_tensor ti = mk("inv_freq", UF_F32, hd / 2, inv), tx = mk("x", UF_F32, (int64_t)N * C, x),
                     ty = mk("y", UF_F32, (int64_t)N * C, NULL),
                     tdx = mk("dx", UF_F32, (int64_t)N * C, dx);
    uf_op_rope_forward(&dev, &tx, T, nh, hd, &ti, &ty);
    uf_ref_rope_forward(y, x, inv, N, T, nh, hd);
    char what[96];
    snprintf(what, sizeof what, "rope fwd B=%d T=%d nh=%d hd=%d", B, T, nh, hd);
    cmp(what, &ty, y, bound);
    uf_op_rope_backward(&dev, &tx, T, nh, hd, &ti, &tdx); /* dy = x */
    uf_ref_rope_backward(dxr, x, inv, N, T, nh, hd);
    cmp("  rope bwd (+=)", &tdx, dxr, bound);
    uf_op_rope_forward(&dev, &tx, T, nh, hd, &ti, &tx); /* in place */
    cmp("  rope fwd in place", &tx, y, bound);
    check_guards();
    free_all();
    free(inv), free(x), free(dx), free(y), free(dxr);
}

static void test_rope(void) {
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 37, 18, 1, 3, 3, 19, 64);
    rope_case(2, 5, 3, 6, &c, 2e-6);
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA3, 37, 64, 1, 2, 1, 19, 64);
    rope_case(3, 7, 2, 32, &c, 2e-6);
    rope_case(2, 9, 3, 40, &c, 2e-6); /* hd/2 = 20: one 16-wide block and a scalar tail */
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 37, 8, 1, 1, 1, 19, 8192);
    rope_case(1, 8192, 1, 8, &c, 1e-6); /* large angles up to 8191 rad (a plain float angle: 2.6e-5) */
}

static void test_rope_inv_freq(void) {
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA3, 128256, 4096, 32, 32, 8, 14336, 8192);
    c.head_dim = 128;
    float a[64], b[64];
    uf_rope_inv_freq(&c, a);
    uf_ref_rope_inv_freq(&c, b);
    CHECK(uf_max_rel_err(a, b, 64) < 1e-7);
    /* the three bands, by hand: orig 8192, low 1, high 4 -> wavelen > 8192: / 8; < 2048: kept */
    int nlow = 0, nhigh = 0, nmid = 0;
    for (int i = 0; i < 64; i++) {
        double f = pow(500000.0, -2.0 * i / 128), wl = 2 * M_PI / f;
        if (wl > 8192) {
            CHECK_NEAR(a[i], f / 8, 1e-7 * f);
            nlow++;
        }
        else if (wl < 2048) {
            CHECK_NEAR(a[i], f, 1e-7 * f);
            nhigh++;
        }
        else {
            double s = (8192 / wl - 1) / 3;
            CHECK_NEAR(a[i], (1 - s) * f / 8 + s * f, 1e-6 * f);
            CHECK(a[i] > f / 8 && a[i] < f);
            nmid++;
        }
    }
    CHECK(nlow > 0 && nhigh > 0 && nmid > 0);
    c.rope_factor = 0; /* unscaled */
    uf_rope_inv_freq(&c, a);
    for (int i = 0; i < 64; i++) CHECK_NEAR(a[i], pow(500000.0, -2.0 * i / 128), 1e-7 * a[i]);
}

/* ---- gated activation, dropout ----------------------------------------------------------------- */
static void test_gated(void) {
    enum { N = 7, F = 19, n = N * F };
    for (int gelu = 0; gelu < 2; gelu++) {
        float *g = rnd(n, -6, 6), *u = rnd(n, -2, 2), *dh = rnd(n, -1, 1), *dg = rnd(n, -1, 1),
              *du = rnd(n, -1, 1), h[n], *dgr = copyf(dg, n), *dur = copyf(du, n);
        enum uf_act act = gelu ? UF_ACT_GELU_TANH : UF_ACT_SILU;
        struct uf_tensor tg = mk("g", UF_F32, n, g), tu = mk("u", UF_F32, n, u),
                         th = mk("h", UF_F32, n, NULL), tdh = mk("dh", UF_F32, n, dh),
                         tdg = mk("dg", UF_F32, n, dg), tdu = mk("du", UF_F32, n, du);
        uf_op_gated_forward(&dev, &tg, &tu, gelu, &th);
        uf_ref_gated_act_forward(h, g, u, n, act);
        cmp(gelu ? "gated gelu_tanh fwd" : "gated silu fwd", &th, h, 2e-6);
        uf_op_gated_backward(&dev, &tg, &tu, &tdh, gelu, &tdg, &tdu);
        uf_ref_gated_act_backward(dgr, dur, dh, g, u, n, act);
        cmp("  dg (+=)", &tdg, dgr, 5e-6);
        cmp("  du (+=)", &tdu, dur, 5e-6);
        check_guards();
        free_all();
        free(g), free(u), free(dh), free(dg), free(du), free(dgr), free(dur);
    }
}

static void test_dropout(void) {
    enum { n = 100003 };
    float p = 0.3f, scale = 1.0f / (1.0f - p), *x = rnd(n, -1, 1), *dx = rnd(n, -1, 1);
    float *want = uf_malloc(n * 4), *dwant = copyf(dx, n);
    uint64_t seed = 0x1234abcdull;
    uint32_t thr = uf_op_dropout_threshold(p);
    size_t kept = 0;
    for (int i = 0; i < n; i++) {
        int keep = uf_op_dropout_hash(seed, (uint64_t)i) >= thr;
        kept += keep;
        want[i] = keep ? x[i] * scale : 0.0f;
        dwant[i] += keep ? x[i] * scale : 0.0f;
    }
    double rate = 1.0 - (double)kept / n;
    fprintf(stderr, "  dropout p=0.3: dropped fraction %.4f\n", rate);
    CHECK_MSG(fabs(rate - p) < 0.01, "rate %.4f", rate); /* 3 sigma ~ 0.0043 */
    struct uf_tensor tx = mk("x", UF_F32, n, x), ty = mk("y", UF_F32, n, NULL),
                     ty2 = mk("y2", UF_F32, n, NULL), tdx = mk("dx", UF_F32, n, dx);
    uf_op_dropout_forward(&dev, &tx, p, seed, &ty);
    cmp("dropout fwd vs host mask", &ty, want, 1e-7);
    uf_op_dropout_forward(&dev, &tx, p, seed, &ty2);
    float *a = get(&ty), *b = get(&ty2);
    CHECK(memcmp(a, b, n * 4) == 0); /* reproducible */
    uf_op_dropout_forward(&dev, &tx, p, seed + 1, &ty2);
    free(b);
    b = get(&ty2);
    size_t same = 0;
    for (int i = 0; i < n; i++) same += (a[i] == 0) == (b[i] == 0);
    CHECK_MSG(same < n * 0.7, "another seed gives a different mask (%zu of %d agree)", same, n);
    uf_op_dropout_backward(&dev, &tx, p, seed, &tdx); /* dy = x: dx += mask * x / (1-p) */
    cmp("dropout bwd (+=, same mask)", &tdx, dwant, 1e-7);
    uf_op_dropout_forward(&dev, &tx, 0.0f, seed, &ty);
    cmp("dropout p=0 is the identity", &ty, x, 0);
    check_guards();
    free_all();
    free(x), free(dx), free(want), free(dwant), free(a), free(b);
}

/* ---- cross-entropy ------------------------------------------------------------------------------ */
static void ce_case(int N, int V, double spread) {
    float *logits = rnd((size_t)N * V, -spread, spread), *mask = uf_malloc((size_t)N * 4 + 4);
    int32_t *tg = uf_malloc((size_t)N * 4 + 4);
    float cnt = 0;
    for (int i = 0; i < N; i++) {
        tg[i] = (int32_t)uf_rng_below(&rng, (uint64_t)V);
        mask[i] = i % 3 == 1 ? 0.0f : 1.0f;
        cnt += mask[i];
    }
    tg[0] = V - 1;
    if (N > 1) tg[1] = -5; /* masked row: the target is never read */
    float scale = 1.0f / cnt, *lr = uf_malloc((size_t)N * 4 + 4), *dl = uf_malloc((size_t)N * V * 4);
    uf_ref_cross_entropy_forward(lr, logits, tg, mask, N, V);
    uf_ref_cross_entropy_backward(dl, logits, tg, mask, N, V, scale);
    struct uf_tensor tl = mk("logits", UF_F32, (int64_t)N * V, logits), tt = mk("targets", UF_I32, N, tg),
                     tm = mk("mask", UF_F32, N, mask), tlr = mk("loss_rows", UF_F32, N, NULL),
                     tdl = mk("dlogits", UF_F32, (int64_t)N * V, logits);
    char what[96];
    snprintf(what, sizeof what, "cross-entropy N=%d V=%d loss_rows", N, V);
    uf_op_cross_entropy(&dev, &tl, &tt, &tm, scale, &tlr, &tdl);
    cmp(what, &tlr, lr, 2e-6);
    cmp("  dlogits (written)", &tdl, dl, 2e-6);
    uf_tensor_fill(&tlr, 7);
    uf_op_cross_entropy(&dev, &tl, &tt, &tm, scale, &tlr, NULL);
    cmp("  loss only (dlogits NULL)", &tlr, lr, 2e-6);
    uf_op_cross_entropy(&dev, &tl, &tt, &tm, scale, &tlr, &tl); /* in place */
    cmp("  dlogits in place (aliases logits)", &tl, dl, 2e-6);
    cmp("  loss_rows in place", &tlr, lr, 2e-6);
    check_guards();
    free_all();
    free(logits), free(mask), free(tg), free(lr), free(dl);
}

static void test_cross_entropy(void) {
    ce_case(7, 37, 3);
    ce_case(9, 3001, 8);
}

/* ---- reductions, AdamW ------------------------------------------------------------------------- */
static void test_reduce(void) {
    static const int sizes[] = {1, 13, 1000, 100003, 1234567};
    for (size_t s = 0; s < UF_ARRAY_LEN(sizes); s++) {
        int n = sizes[s];
        float *x = rnd((size_t)n, -1, 1);
        double sum = 0, sumsq = 0, sabs = 0;
        for (int i = 0; i < n; i++) sum += x[i], sumsq += (double)x[i] * x[i], sabs += fabs(x[i]);
        struct uf_tensor tx = mk("x", UF_F32, n, x), to = mk("out", UF_F32, 1, NULL);
        float got;
        uf_op_sum(&dev, &tx, &to, 0);
        uf_tensor_download(&to, &got);
        CHECK_MSG(fabs(got - sum) <= 1e-6 * sabs + 1e-7, "sum n=%d: %.9g vs %.9g", n, got, sum);
        uf_op_sumsq(&dev, &tx, &to, 0);
        uf_tensor_download(&to, &got);
        CHECK_MSG(fabs(got - sumsq) <= 2e-6 * sumsq, "sumsq n=%d: %.9g vs %.9g", n, got, sumsq);
        uf_op_sumsq(&dev, &tx, &to, 1); /* accumulate: twice */
        uf_tensor_download(&to, &got);
        CHECK_MSG(fabs(got - 2 * sumsq) <= 4e-6 * sumsq, "sumsq += n=%d: %.9g vs %.9g", n, got, 2 * sumsq);
        fprintf(stderr, "  sum/sumsq n=%-8d rel err sumsq %.2e\n", n, fabs(got - 2 * sumsq) / (2 * sumsq));
        free_all();
        free(x);
    }
}

/* plain-C AdamW step, float arithmetic as ops.h states it */
static void adamw_ref(float *p, const float *g, float *m, float *v, int n, double gnorm_sq,
                      const struct uf_adamw_hparams *h) {
    double clip = h->max_norm > 0 ? fmin(1.0, h->max_norm / (sqrt(gnorm_sq) + 1e-6)) : 1.0;
    double bc1 = 1 - pow(h->beta1, h->step), bc2 = 1 - pow(h->beta2, h->step);
    for (int i = 0; i < n; i++) {
        double gg = clip * h->grad_scale * g[i];
        m[i] = (float)(h->beta1 * m[i] + (1 - h->beta1) * gg);
        v[i] = (float)(h->beta2 * v[i] + (1 - h->beta2) * gg * gg);
        p[i] = (float)(p[i] - h->lr * ((m[i] / bc1) / (sqrt(v[i] / bc2) + h->eps) + h->weight_decay * p[i]));
    }
}

static void test_adamw(void) {
    enum { n = 1001 };
    float *p = rnd(n, -1, 1), *g = rnd(n, -1, 1), *m = rnd(n, -0.1, 0.1), *v = rnd(n, 0, 0.01);
    double gsq = 0;
    for (int i = 0; i < n; i++) gsq += (double)g[i] * g[i] * 0.25; /* grad_scale 0.5 applied first */
    /* max_norm 1: clip active (|g| ~ 9); 100: inactive; 0: off */
    static const float norms[] = {1.0f, 100.0f, 0.0f};
    float *p_active = NULL;
    for (size_t c = 0; c < UF_ARRAY_LEN(norms); c++) {
        struct uf_adamw_hparams h = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                                     .weight_decay = 0.1f, .max_norm = norms[c], .grad_scale = 0.5f,
                                     .step = 3};
        float *pr = copyf(p, n), *mr = copyf(m, n), *vr = copyf(v, n);
        struct uf_tensor tp = mk("p", UF_F32, n, p), tg = mk("g", UF_F32, n, g), tm = mk("m", UF_F32, n, m),
                         tv = mk("v", UF_F32, n, v), tgs = mk("gnorm_sq", UF_F32, 1, NULL),
                         tgh = mk("g_half", UF_F32, n, g);
        /* gnorm_sq of the scaled gradient, on the device (the engine's order: scale, sumsq, step) */
        uf_tensor_scale(&tgh, 0.5f);
        uf_op_sumsq(&dev, &tgh, &tgs, 0);
        uf_op_adamw(&dev, &tp, &tg, &tm, &tv, norms[c] > 0 ? &tgs : NULL, &h);
        adamw_ref(pr, g, mr, vr, n, gsq, &h);
        char what[64];
        snprintf(what, sizeof what, "adamw max_norm=%g: p", (double)norms[c]);
        cmp(what, &tp, pr, 1e-6);
        cmp("  m", &tm, mr, 1e-6);
        cmp("  v", &tv, vr, 1e-6);
        if (c == 0) p_active = get(&tp);
        if (c == 1) { /* clipping changed the step */
            float *q = get(&tp);
            double diff = 0;
            for (int i = 0; i < n; i++) diff = fmax(diff, fabs(q[i] - p_active[i]));
            CHECK_MSG(diff > 1e-4, "clip active vs inactive differ by %g", diff);
            free(q);
        }
        free_all();
        free(pr), free(mr), free(vr);
    }
    free(p_active), free(p), free(g), free(m), free(v);
}

/* ---- determinism: every op twice, bit-identical -------------------------------------------------- */
static void test_determinism(void) {
    enum { N = 96, D = 160, V = 500 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)uf_rng_below(&rng, 17);
    float *x = rnd(N * D, -1, 1), *w = rnd(D, -1, 1), *lg = rnd(N * V, -5, 5), *mask = rnd(N, 1, 1);
    struct uf_tensor tt = mk("tok", UF_I32, N, tok), tx = mk("x", UF_F32, N * D, x), tw = mk("w", UF_F32, D, w),
                     tr = mk("rstd", UF_F32, N, NULL), ty = mk("y", UF_F32, N * D, NULL),
                     tdx = mk("dx", UF_F32, N * D, NULL), tdw = mk("dw", UF_F32, D, NULL),
                     tdt = mk("dtable", UF_F32, 17 * D, NULL), tl = mk("logits", UF_F32, N * V, lg),
                     tm = mk("mask", UF_F32, N, mask), tlr = mk("loss", UF_F32, N, NULL),
                     tdl = mk("dl", UF_F32, N * V, NULL), ts = mk("s", UF_F32, 1, NULL);
    float *first[6] = {0};
    for (int run = 0; run < 2; run++) {
        uf_tensor_fill(&tdx, 0), uf_tensor_fill(&tdw, 0), uf_tensor_fill(&tdt, 0);
        uf_op_embed_backward(&dev, &tt, &tx, 0.5f, &tdt);
        uf_op_rmsnorm_forward(&dev, &tx, &tw, 1e-6f, 0, &ty, &tr);
        uf_op_rmsnorm_backward(&dev, &tx, &tw, &tr, &ty, 0, &tdx, &tdw);
        uf_op_cross_entropy(&dev, &tl, &tt, &tm, 1.0f / N, &tlr, &tdl);
        uf_op_sumsq(&dev, &tdl, &ts, 0);
        const struct uf_tensor *outs[6] = {&tdt, &tdx, &tdw, &tlr, &tdl, &ts};
        for (int i = 0; i < 6; i++) {
            float *o = get(outs[i]);
            if (run == 0) first[i] = o;
            else {
                CHECK_MSG(memcmp(o, first[i], (size_t)outs[i]->numel * 4) == 0, "%s differs between runs",
                          outs[i]->name);
                free(o), free(first[i]);
            }
        }
    }
    free_all();
    free(x), free(w), free(lg), free(mask);
}

/* ---- timings (UF_OPS_BENCH=1) ---------------------------------------------------------------------- */
/* best wall time of one call (ms; robust to other processes on the machine) and the process CPU
 * time per call (ms; the work done by all PoCL threads together) */
static double cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static double bench_ms(void (*fn)(void *), void *ctx, double *cpu_ms) {
    fn(ctx);
    uf_device_finish(&dev);
    int reps = 0;
    double best = 1e30, t0 = uf_time_now(), c0 = cpu_s();
    do {
        double t = uf_time_now();
        fn(ctx);
        uf_device_finish(&dev);
        best = fmin(best, uf_time_now() - t);
        reps++;
    } while (uf_time_now() - t0 < 0.5 && reps < 50);
    *cpu_ms = 1e3 * (cpu_s() - c0) / reps;
    return 1e3 * best;
}

struct bctx {
    int N, D, V, F;
    struct uf_tensor tok, x, w, y, r, dx, dw, table, dtable, g, u, h, logits, tg, mask, loss, inv, s, m, v;
};

static void b_embf(void *c) { struct bctx *b = c; uf_op_embed_forward(&dev, &b->tok, &b->table, 1, &b->x); }
static void b_embb(void *c) { struct bctx *b = c; uf_op_embed_backward(&dev, &b->tok, &b->x, 1, &b->dtable); }
static void b_rmsf(void *c) { struct bctx *b = c; uf_op_rmsnorm_forward(&dev, &b->x, &b->w, 1e-5f, 0, &b->y, &b->r); }
static void b_rmsb(void *c) { struct bctx *b = c; uf_op_rmsnorm_backward(&dev, &b->x, &b->w, &b->r, &b->y, 0, &b->dx, &b->dw); }
static void b_ropef(void *c) { struct bctx *b = c; uf_op_rope_forward(&dev, &b->x, 1024, b->D / 64, 64, &b->inv, &b->y); }
static void b_ropeb(void *c) { struct bctx *b = c; uf_op_rope_backward(&dev, &b->x, 1024, b->D / 64, 64, &b->inv, &b->dx); }
static void b_gf(void *c) { struct bctx *b = c; uf_op_gated_forward(&dev, &b->g, &b->u, 0, &b->h); }
static void b_gb(void *c) { struct bctx *b = c; uf_op_gated_backward(&dev, &b->g, &b->u, &b->h, 1, &b->g, &b->u); }
static void b_dropf(void *c) { struct bctx *b = c; uf_op_dropout_forward(&dev, &b->g, 0.1f, 7, &b->h); }
static void b_ce(void *c) { struct bctx *b = c; uf_op_cross_entropy(&dev, &b->logits, &b->tg, &b->mask, 1.0f / b->N, &b->loss, &b->logits); }
static void b_sumsq(void *c) { struct bctx *b = c; uf_op_sumsq(&dev, &b->logits, &b->s, 0); }
static void b_adamw(void *c) {
    struct bctx *b = c;
    struct uf_adamw_hparams h = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 1.0f, 1, 0};
    uf_op_adamw(&dev, &b->logits, &b->logits, &b->m, &b->v, &b->s, &h);
}

static void test_bench(void) {
    if (!getenv("UF_OPS_BENCH")) UF_SKIP("set UF_OPS_BENCH=1 to time the ops");
    fprintf(stderr, "  device: %s\n", dev.name);
    static const int dims[] = {256, 512};
    for (size_t di = 0; di < UF_ARRAY_LEN(dims); di++) {
        struct bctx b = {.N = 2048, .D = dims[di], .V = 8192, .F = 4 * dims[di]};
        int N = b.N, D = b.D, V = b.V, F = b.F;
        int32_t *tok = uf_malloc((size_t)N * 4);
        for (int i = 0; i < N; i++) tok[i] = (int32_t)uf_rng_below(&rng, (uint64_t)V);
        float *big = rnd((size_t)N * V, -3, 3), inv[32];
        struct uf_model_config c;
        uf_model_config_defaults(&c, UF_FAMILY_LLAMA, V, D, 1, D / 64, D / 64, F, 1024);
        uf_rope_inv_freq(&c, inv);
        b.tok = mk("tok", UF_I32, N, tok);
        b.tg = mk("tg", UF_I32, N, tok);
        b.x = mk("x", UF_F32, (int64_t)N * D, big);
        b.y = mk("y", UF_F32, (int64_t)N * D, big);
        b.dx = mk("dx", UF_F32, (int64_t)N * D, big);
        b.w = mk("w", UF_F32, D, big);
        b.dw = mk("dw", UF_F32, D, big);
        b.r = mk("r", UF_F32, N, big);
        b.table = mk("table", UF_F32, (int64_t)V * D, big);
        b.dtable = mk("dtable", UF_F32, (int64_t)V * D, big);
        b.g = mk("g", UF_F32, (int64_t)N * F, big);
        b.u = mk("u", UF_F32, (int64_t)N * F, big);
        b.h = mk("h", UF_F32, (int64_t)N * F, big);
        b.logits = mk("logits", UF_F32, (int64_t)N * V, big);
        b.m = mk("m", UF_F32, (int64_t)N * V, NULL);
        b.v = mk("v", UF_F32, (int64_t)N * V, NULL);
        uf_tensor_fill(&b.m, 0), uf_tensor_fill(&b.v, 0);
        b.mask = mk("mask", UF_F32, N, NULL);
        uf_tensor_fill(&b.mask, 1);
        b.loss = mk("loss", UF_F32, N, NULL);
        b.s = mk("s", UF_F32, 1, NULL);
        b.inv = mk("inv", UF_F32, 32, inv);
        struct { const char *name; void (*fn)(void *); } ops[] = {
            {"embed fwd (N,D)", b_embf}, {"embed bwd (N,D)->(V,D)", b_embb},
            {"rmsnorm fwd", b_rmsf}, {"rmsnorm bwd (dx+dw)", b_rmsb},
            {"rope fwd (hd 64)", b_ropef}, {"rope bwd", b_ropeb},
            {"gated silu fwd (N,4D)", b_gf}, {"gated gelu bwd (N,4D)", b_gb},
            {"dropout fwd (N,4D)", b_dropf}, {"cross-entropy fwd+bwd (N,V)", b_ce},
            {"sumsq (N*V)", b_sumsq}, {"adamw (N*V params)", b_adamw},
        };
        const char *only = getenv("UF_OPS_BENCH"); /* "1" = all, else a name substring */
        for (size_t i = 0; i < UF_ARRAY_LEN(ops); i++)
            if (!strcmp(only, "1") || strstr(ops[i].name, only)) {
                double cpu, wall = bench_ms(ops[i].fn, &b, &cpu);
                fprintf(stderr, "  N=%d D=%d V=%d  %-28s best %8.3f ms  cpu %8.3f ms\n", N, D, V,
                        ops[i].name, wall, cpu);
            }
        free_all();
        free(tok), free(big);
    }
}

int main(void) {
    uf_device_init(&dev, NULL);
    uf_rng_init(&rng, 42);
    /* both kernel paths: the CPU one (explicit vectors; only on CPU devices) and the portable
     * work-group one that GPUs run */
    for (int portable = 0; portable < 2; portable++) {
        uf_ops_portable = portable;
        fprintf(stderr, "---- %s kernels\n", portable ? "portable (GPU) work-group" : "default");
        UF_RUN(test_embed);
        UF_RUN(test_embed_big);
        UF_RUN(test_rmsnorm);
        UF_RUN(test_rope_inv_freq);
        UF_RUN(test_rope);
        UF_RUN(test_gated);
        UF_RUN(test_dropout);
        UF_RUN(test_cross_entropy);
        UF_RUN(test_reduce);
        UF_RUN(test_adamw);
        UF_RUN(test_determinism);
    }
    uf_ops_portable = getenv("UF_OPS_PORTABLE") != NULL; /* time the portable kernels instead */
    UF_RUN(test_bench);
    uf_device_free(&dev);
    return uf_test_summary();
}
