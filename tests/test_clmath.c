/* test_clmath.c: continual-learning vector math on the device vs the plain-C references, plus the
 * identities the methods rely on: penalty with lambda = 0 leaves g bit-identical; A-GEM's result
 * has a non-negative dot with g_ref and is unchanged when the dot is already >= 0; linear merge
 * a = 0 gives theta_safe and a = 1 the fine-tuned weights; MagMax picks the larger-magnitude entry;
 * TIES keeps the stated density and agrees with the reference; Refresh's unlearning step (on a
 * view, with and without noise) against its reference, and the moments of its normal draws; the
 * temperature KL of LwF on logits against its reference, central differences and a row computed
 * by hand. */
#include <math.h>
#include <string.h>

#include "ops/clmath.h"
#include "ops/ops.h"
#include "ops/selftest.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;
enum { N = 5003 }; /* odd, spans several work-groups */

static void randv(struct uf_rng *r, float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] = s * (float)uf_rng_normal(r);
}

static void up(struct uf_tensor *t, const char *name, const float *x, size_t n) {
    uf_tensor_init(t, &dev, name, UF_F32, 1, (int64_t[]){(int64_t)n});
    uf_tensor_upload(t, x);
}

static void test_penalty(void) {
    static float g[N], p[N], p0[N], F[N], out[N], gref[N];
    struct uf_rng r;
    uf_rng_init(&r, 1);
    randv(&r, g, N, 1), randv(&r, p, N, 1), randv(&r, p0, N, 1);
    for (int i = 0; i < N; i++) F[i] = (float)uf_rng_uniform(&r);
    for (int use_f = 0; use_f < 2; use_f++) {
        struct uf_tensor tg, tp, tp0, tF, val;
        up(&tg, "g", g, N), up(&tp, "p", p, N), up(&tp0, "p0", p0, N), up(&tF, "F", F, N);
        float zero[2] = {0.5f, 0};
        up(&val, "value", zero, 2);
        uf_clmath_penalty(&dev, &tg, &tp, &tp0, use_f ? &tF : NULL, 3.0f, &val, 0);
        memcpy(gref, g, sizeof g);
        double v = uf_clmath_ref_penalty(gref, p, p0, use_f ? F : NULL, 3.0f, N);
        uf_tensor_download(&tg, out);
        CHECK(uf_max_rel_err(out, gref, N) < 1e-6);
        float vv[2];
        uf_tensor_download(&val, vv);
        CHECK_MSG(fabs(vv[0] - (0.5 + v)) / v < 1e-5, "value %g vs %g", vv[0], 0.5 + v); /* += */
        uf_tensor_upload(&tg, g);
        uf_clmath_penalty(&dev, &tg, &tp, &tp0, use_f ? &tF : NULL, 0.0f, &val, 1);
        uf_tensor_download(&tg, out);
        CHECK(memcmp(out, g, sizeof g) == 0); /* lambda = 0: bit-identical */
        uf_tensor_free(&tg), uf_tensor_free(&tp), uf_tensor_free(&tp0), uf_tensor_free(&tF);
        uf_tensor_free(&val);
    }
}

static double dotd(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void test_agem(void) {
    static float g[N], gr[N], out[N], ref[N];
    struct uf_rng r;
    uf_rng_init(&r, 2);
    randv(&r, gr, N, 1);
    for (int i = 0; i < N; i++) g[i] = -0.5f * gr[i] + 0.1f * (float)uf_rng_normal(&r); /* conflict */
    struct uf_tensor tg, tr, dots;
    up(&tg, "g", g, N), up(&tr, "g_ref", gr, N);
    uf_tensor_init(&dots, &dev, "dots", UF_F32, 1, (int64_t[]){2});
    CHECK(dotd(g, gr, N) < 0);
    uf_clmath_agem(&dev, &tg, &tr, &dots);
    uf_tensor_download(&tg, out);
    memcpy(ref, g, sizeof g);
    uf_clmath_ref_agem(ref, gr, N);
    CHECK(uf_max_rel_err(out, ref, N) < 1e-4);
    double after = dotd(out, gr, N), scale = sqrt(dotd(gr, gr, N) * dotd(out, out, N));
    CHECK_MSG(after >= -1e-5 * scale, "projected dot %g", after);
    /* already non-negative: unchanged, bit for bit */
    for (int i = 0; i < N; i++) g[i] = 0.3f * gr[i] + 0.1f * (float)uf_rng_normal(&r);
    CHECK(dotd(g, gr, N) > 0);
    uf_tensor_upload(&tg, g);
    uf_clmath_agem(&dev, &tg, &tr, &dots);
    uf_tensor_download(&tg, out);
    CHECK(memcmp(out, g, sizeof g) == 0);
    uf_tensor_free(&tg), uf_tensor_free(&tr), uf_tensor_free(&dots);
}

static void test_merges(void) {
    static float base[N], safe[N], ft[N], out[N], ref[N];
    struct uf_rng r;
    uf_rng_init(&r, 3);
    randv(&r, base, N, 1);
    for (int i = 0; i < N; i++) safe[i] = base[i] + 0.1f * (float)uf_rng_normal(&r),
                                 ft[i] = base[i] + 0.1f * (float)uf_rng_normal(&r);
    struct uf_tensor tb, ts, tf, to;
    up(&tb, "base", base, N), up(&ts, "safe", safe, N), up(&tf, "ft", ft, N);
    uf_tensor_init(&to, &dev, "out", UF_F32, 1, (int64_t[]){N});
    /* linear a = 0 -> safe, a = 1 -> ft, exactly */
    uf_clmath_lincomb(&dev, &to, 1.0f, &ts, 0.0f, &tf, 0.0f, NULL);
    uf_tensor_download(&to, out);
    CHECK(memcmp(out, safe, sizeof safe) == 0);
    uf_clmath_lincomb(&dev, &to, 0.0f, &ts, 1.0f, &tf, 0.0f, NULL);
    uf_tensor_download(&to, out);
    CHECK(memcmp(out, ft, sizeof ft) == 0);
    /* MagMax picks the larger-magnitude task-vector entry */
    uf_clmath_magmax(&dev, &to, &tb, &ts, &tf, 1.0f);
    uf_tensor_download(&to, out);
    uf_clmath_ref_magmax(ref, base, safe, ft, 1.0f, N);
    CHECK(uf_max_rel_err(out, ref, N) < 1e-6);
    int picks = 1;
    for (int i = 0; i < N; i++) {
        float t1 = safe[i] - base[i], t2 = ft[i] - base[i];
        float want = fabsf(t1) >= fabsf(t2) ? safe[i] : ft[i];
        picks &= fabsf(out[i] - want) <= 1e-6f * (1 + fabsf(want));
    }
    CHECK(picks);
    /* TIES vs reference over tau_s = safe - base, tau_u = ft - safe; density 0.2 keeps ~20% of
     * each task vector */
    uf_clmath_ties(&dev, &to, &tb, &ts, &tf, 0.2f, 0.2f, 1.0f, 1.0f);
    uf_tensor_download(&to, out);
    uf_clmath_ref_ties(ref, base, safe, ft, 0.2f, 0.2f, 1.0f, 1.0f, N);
    CHECK(uf_max_rel_err(out, ref, N) < 1e-6);
    /* task arithmetic vs reference, and its identities: ls = 1 with ft = safe is safe exactly;
     * ls = lu = 1 is ft */
    uf_clmath_task_arith(&dev, &to, &tb, &ts, &tf, 1.5f, 0.3f);
    uf_tensor_download(&to, out);
    uf_clmath_ref_task_arith(ref, base, safe, ft, 1.5f, 0.3f, N);
    CHECK(uf_max_rel_err(out, ref, N) < 1e-6);
    uf_clmath_task_arith(&dev, &to, &tb, &ts, &ts, 1.0f, 0.7f);
    uf_tensor_download(&to, out);
    CHECK(memcmp(out, safe, sizeof safe) == 0);
    uf_clmath_ties(&dev, &to, &tb, &ts, &ts, 1.0f, 0.2f, 1.0f, 0.6f);
    uf_tensor_download(&to, out);
    CHECK(memcmp(out, safe, sizeof safe) == 0);
    uf_clmath_task_arith(&dev, &to, &tb, &ts, &tf, 1.0f, 1.0f);
    uf_tensor_download(&to, out);
    CHECK(uf_max_rel_err(out, ft, N) < 1e-6);
    uf_clmath_ties(&dev, &to, &tb, &ts, &tf, 0.2f, 0.2f, 1.0f, 1.0f); /* for the counts below */
    uf_tensor_download(&to, out);
    float t1[N];
    for (int i = 0; i < N; i++) t1[i] = safe[i] - base[i];
    float thr = uf_clmath_topk_threshold(t1, N, 0.2f);
    int kept = 0;
    for (int i = 0; i < N; i++) kept += fabsf(t1[i]) >= thr;
    CHECK_MSG(kept == (int)ceil(0.2 * N), "kept %d", kept);
    int changed = 0;
    for (int i = 0; i < N; i++) changed += fabsf(out[i] - base[i]) > 1e-5f;
    CHECK_MSG(changed <= 2 * kept && changed >= kept / 2, "changed %d", changed);
    uf_tensor_free(&tb), uf_tensor_free(&ts), uf_tensor_free(&tf), uf_tensor_free(&to);
}

/* task arithmetic and TIES on cases computed by hand (tau_s = safe - base, tau_u = ft - safe) */
static void test_merges_by_hand(void) {
    struct uf_tensor tb, ts, tf, to;
    float out[5];
    /* task arithmetic: base {1, 2}, safe {2, 0}, ft {3, 1}: tau_s = {1, -2}, tau_u = {1, 1};
     * ls 2, lu 0.5: base + 2 tau_s + 0.5 tau_u = {3.5, -1.5}; ls 2, lu 1 (RESTA: ft + tau_s) =
     * {4, -1}; ls 1, lu 0.5 = safe + 0.5 tau_u = {2.5, 0.5} */
    up(&tb, "base", (float[]){1, 2}, 2), up(&ts, "safe", (float[]){2, 0}, 2), up(&tf, "ft", (float[]){3, 1}, 2);
    uf_tensor_init(&to, &dev, "out", UF_F32, 1, (int64_t[]){2});
    const float want_ta[3][2] = {{3.5f, -1.5f}, {4, -1}, {2.5f, 0.5f}}, lam[3][2] = {{2, 0.5f}, {2, 1}, {1, 0.5f}};
    for (int c = 0; c < 3; c++) {
        uf_clmath_task_arith(&dev, &to, &tb, &ts, &tf, lam[c][0], lam[c][1]);
        uf_tensor_download(&to, out);
        CHECK_MSG(out[0] == want_ta[c][0] && out[1] == want_ta[c][1], "task_arith case %d: %g %g", c, out[0], out[1]);
    }
    uf_tensor_free(&tb), uf_tensor_free(&ts), uf_tensor_free(&tf), uf_tensor_free(&to);
    /* TIES: base 0, tau_s = safe = {1, -2, 0.5, 0, 3}, tau_u = {2, 1.5, -1, 0.1, -4};
     * density_u 0.5 keeps the top ceil(2.5) = 3 of |tau_u| (4, 2, 1.5): {2, 1.5, 0, 0, -4}; tau_s whole.
     * signs of the sums {3, -0.5, 0.5, 0, -1}: disjoint means {1.5, -2, 0.5, 0, -4}.
     * With lu = 0.5: {1, 0.75, 0, 0, -2}, sums {2, -1.25, 0.5, 0, 1} -> {1, -2, 0.5, 0, 3};
     * with density_s 0.3 (top ceil(1.5) = 2 of |tau_s|: -2, 3) and lu 1: {0, -2, 0, 0, 3} + tau_u' ->
     * sums {2, -0.5, 0, 0, -1} -> {2, -2, 0, 0, -4}. */
    float safe[5] = {1, -2, 0.5f, 0, 3}, ft[5];
    const float tu[5] = {2, 1.5f, -1, 0.1f, -4};
    for (int i = 0; i < 5; i++) ft[i] = safe[i] + tu[i];
    up(&tb, "base", (float[]){0, 0, 0, 0, 0}, 5), up(&ts, "safe", safe, 5), up(&tf, "ft", ft, 5);
    uf_tensor_init(&to, &dev, "out", UF_F32, 1, (int64_t[]){5});
    const float want[3][5] = {{1.5f, -2, 0.5f, 0, -4}, {1, -2, 0.5f, 0, 3}, {2, -2, 0, 0, -4}};
    const float ds[3] = {1, 1, 0.3f}, lu[3] = {1, 0.5f, 1};
    for (int c = 0; c < 3; c++) {
        uf_clmath_ties(&dev, &to, &tb, &ts, &tf, ds[c], 0.5f, 1.0f, lu[c]);
        uf_tensor_download(&to, out);
        float ref[5];
        uf_clmath_ref_ties(ref, (float[]){0, 0, 0, 0, 0}, safe, ft, ds[c], 0.5f, 1.0f, lu[c], 5);
        for (int i = 0; i < 5; i++) {
            CHECK_MSG(fabsf(out[i] - want[c][i]) <= 1e-6f, "ties case %d entry %d: %g, want %g", c, i, out[i], want[c][i]);
            CHECK_MSG(fabsf(ref[i] - want[c][i]) <= 1e-6f, "ties reference case %d entry %d: %g", c, i, ref[i]);
        }
    }
    uf_tensor_free(&tb), uf_tensor_free(&ts), uf_tensor_free(&tf), uf_tensor_free(&to);
}

/* DER / LwF distillation kernel, top-k thresholds, Fisher accumulation, Refresh's step */
static void test_sqdiff_topk(void) {
    enum { R = 37, W = 41 };
    static float x[R * W], y[R * W], g[R * W], gref[R * W], mask[R], thr[R], thr_ref[R];
    struct uf_rng r;
    uf_rng_init(&r, 7);
    randv(&r, x, R * W, 1), randv(&r, y, R * W, 1);
    for (int i = 0; i < R; i++) mask[i] = (float)(uf_rng_below(&r, 3) != 0);
    for (int j = 0; j < 5; j++) y[3 * W + j] = y[3 * W + 10]; /* ties in row 3 */
    struct uf_tensor tx, ty, tg, tm, tt, val;
    up(&tx, "x", x, R * W), up(&ty, "y", y, R * W), up(&tg, "g", g, R * W), up(&tm, "mask", mask, R);
    up(&tt, "thr", thr, R);
    int ks[] = {1, 3, 7, W, W + 5};
    for (size_t ki = 0; ki < UF_ARRAY_LEN(ks); ki++) {
        uf_clmath_row_topk_thr(&dev, &ty, W, ks[ki], &tt);
        uf_tensor_download(&tt, thr);
        for (int i = 0; i < R; i++) {
            thr_ref[i] = uf_clmath_ref_topk_thr(y + i * W, W, ks[ki]);
            int cnt = 0;
            for (int j = 0; j < W; j++) cnt += y[i * W + j] >= thr[i];
            CHECK_MSG(cnt >= UF_MIN(ks[ki], W), "row %d keeps %d < k %d", i, cnt, ks[ki]);
        }
        CHECK(memcmp(thr, thr_ref, sizeof thr) == 0);
    }
    uf_clmath_row_topk_thr(&dev, &ty, W, 3, &tt);
    uf_tensor_download(&tt, thr);
    for (int use_thr = 0; use_thr < 2; use_thr++) {
        float zero[2] = {0.25f, 0};
        up(&val, "value", zero, 2);
        uf_clmath_sqdiff(&dev, &tg, &tx, &ty, &tm, use_thr ? &tt : NULL, W, 0.3f, &val, 0);
        double v = uf_clmath_ref_sqdiff(gref, x, y, mask, use_thr ? thr : NULL, R, W, 0.3f);
        uf_tensor_download(&tg, g);
        CHECK(uf_max_rel_err(g, gref, R * W) < 1e-6);
        float vv[2];
        uf_tensor_download(&val, vv);
        CHECK_MSG(fabs(vv[0] - (0.25 + v)) / v < 1e-5, "value %g vs %g", vv[0], 0.25 + v);
        if (use_thr) { /* entries below the threshold and masked rows get no gradient */
            int bad = 0;
            for (int i = 0; i < R; i++)
                for (int j = 0; j < W; j++)
                    if ((mask[i] == 0 || y[i * W + j] < thr[i]) && g[i * W + j] != 0) bad++;
            CHECK_EQ_INT(bad, 0);
        }
        uf_tensor_free(&val);
    }
    uf_tensor_free(&tx), uf_tensor_free(&ty), uf_tensor_free(&tg), uf_tensor_free(&tm);
    uf_tensor_free(&tt);
}

/* LwF's temperature distillation: device against the plain-C reference (two widths, one wider
 * than a work-group), the reference's gradient against central differences of its value, and a
 * row computed by hand. */
static void test_kl_temp(void) {
    /* by hand: T = 2, x = (0, 0) -> p = (1/2, 1/2); y = (2 ln 3, 0) -> q = (3/4, 1/4);
     * KL(q || p) = 3/4 ln(3/2) + 1/4 ln(1/2); value = scale T^2 KL, g = scale T (p - q) */
    {
        float x[2] = {0, 0}, y[2] = {2.0f * logf(3.0f), 0}, mk[1] = {1}, g[2], gd[2];
        double kl = 0.75 * log(1.5) + 0.25 * log(0.5);
        double v = uf_clmath_ref_kl_temp(g, x, y, mk, 1, 2, 2.0f, 0.5f);
        CHECK_MSG(fabs(v - 0.5 * 4 * kl) < 1e-6, "hand value %.9g vs %.9g", v, 2 * kl);
        CHECK(fabsf(g[0] - 0.5f * 2 * (0.5f - 0.75f)) < 1e-7f && fabsf(g[1] - 0.5f * 2 * (0.5f - 0.25f)) < 1e-7f);
        struct uf_tensor tx, ty, tg, tm, val;
        float zero[1] = {0};
        up(&tx, "x", x, 2), up(&ty, "y", y, 2), up(&tg, "g", g, 2), up(&tm, "mask", mk, 1), up(&val, "v", zero, 1);
        uf_clmath_kl_temp(&dev, &tg, &tx, &ty, &tm, 2, 2.0f, 0.5f, &val, 0);
        float vv;
        uf_tensor_download(&val, &vv), uf_tensor_download(&tg, gd);
        CHECK_MSG(fabs(vv - 2 * kl) < 1e-6, "device hand value %.9g vs %.9g", vv, 2 * kl);
        CHECK(fabsf(gd[0] - g[0]) < 1e-6f && fabsf(gd[1] - g[1]) < 1e-6f);
        uf_tensor_free(&tx), uf_tensor_free(&ty), uf_tensor_free(&tg), uf_tensor_free(&tm), uf_tensor_free(&val);
    }
    const int shapes[2][2] = {{37, 41}, {5, 700}};
    for (int si = 0; si < 2; si++) {
        int R = shapes[si][0], W = shapes[si][1];
        float *x = uf_malloc((size_t)(R * W) * 4), *y = uf_malloc((size_t)(R * W) * 4);
        float *g = uf_malloc((size_t)(R * W) * 4), *gref = uf_malloc((size_t)(R * W) * 4);
        float *mask = uf_malloc((size_t)R * 4);
        struct uf_rng r;
        uf_rng_init(&r, 11 + (uint64_t)si);
        randv(&r, x, (size_t)(R * W), 3), randv(&r, y, (size_t)(R * W), 3);
        for (int i = 0; i < R; i++) mask[i] = (float)(uf_rng_below(&r, 3) != 0);
        mask[0] = 1;
        for (int ti = 0; ti < 2; ti++) {
            float Tt = ti ? 2.0f : 1.0f, scale = 0.3f;
            struct uf_tensor tx, ty, tg, tm, val;
            float zero[2] = {0.25f, 0};
            up(&tx, "x", x, (size_t)(R * W)), up(&ty, "y", y, (size_t)(R * W));
            up(&tg, "g", gref, (size_t)(R * W)), up(&tm, "mask", mask, (size_t)R), up(&val, "value", zero, 2);
            uf_clmath_kl_temp(&dev, &tg, &tx, &ty, &tm, W, Tt, scale, &val, 0);
            double v = uf_clmath_ref_kl_temp(gref, x, y, mask, (size_t)R, (size_t)W, Tt, scale);
            uf_tensor_download(&tg, g);
            double worst = 0, gmax = 0;
            for (int i = 0; i < R * W; i++) worst = fmax(worst, fabs(g[i] - gref[i])), gmax = fmax(gmax, fabs(gref[i]));
            CHECK_MSG(worst <= 1e-5 * gmax, "kl_temp (%d x %d, T %g): gradient off by %g (max %g)", R, W, (double)Tt, worst, gmax);
            float vv[2];
            uf_tensor_download(&val, vv);
            CHECK_MSG(v > 0 && fabs(vv[0] - (0.25 + v)) / v < 1e-4, "value %g vs %g", vv[0], 0.25 + v);
            int bad = 0;
            for (int i = 0; i < R; i++)
                for (int j = 0; j < W; j++) bad += mask[i] == 0 && g[i * W + j] != 0;
            CHECK_EQ_INT(bad, 0);
            /* the reference's gradient is the derivative of its value (central differences) */
            float *scr = uf_malloc((size_t)(R * W) * 4);
            for (int t = 0; t < 6; t++) {
                int i = (int)uf_rng_below(&r, (uint64_t)(R * W));
                float keep = x[i], h = 1e-2f, hi = keep + h, lo = keep - h;
                x[i] = hi;
                double vp = uf_clmath_ref_kl_temp(scr, x, y, mask, (size_t)R, (size_t)W, Tt, scale);
                x[i] = lo;
                double vm = uf_clmath_ref_kl_temp(scr, x, y, mask, (size_t)R, (size_t)W, Tt, scale);
                x[i] = keep;
                double fd = (vp - vm) / ((double)hi - (double)lo);
                CHECK_MSG(fabs(fd - gref[i]) <= 1e-3 * fabs(gref[i]) + 1e-6, "fd %g vs g %g", fd, (double)gref[i]);
            }
            free(scr);
            uf_tensor_free(&tx), uf_tensor_free(&ty), uf_tensor_free(&tg), uf_tensor_free(&tm), uf_tensor_free(&val);
        }
        free(x), free(y), free(g), free(gref), free(mask);
    }
}

static void test_sq_accum(void) {
    static float a[N], g[N], out[N];
    struct uf_rng r;
    uf_rng_init(&r, 8);
    randv(&r, a, N, 1), randv(&r, g, N, 1);
    struct uf_tensor ta, tg;
    up(&ta, "acc", a, N), up(&tg, "g", g, N);
    uf_clmath_sq_accum(&dev, &ta, &tg, 0.5f);
    uf_tensor_download(&ta, out);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += fabsf(out[i] - (a[i] + 0.5f * g[i] * g[i])) > 1e-6f * (1 + fabsf(out[i]));
    CHECK_EQ_INT(bad, 0);
    uf_tensor_free(&ta), uf_tensor_free(&tg);
}

/* The standard normal of uf_clmath_normal: moments of 200k draws (mean 0, variance 1, kurtosis 3,
 * no mass beyond the Box-Muller bound sqrt(2 ln 2^24) = 5.77), a fixed value pinned. */
static void test_normal(void) {
    const int n = 200000;
    double m1 = 0, m2 = 0, m4 = 0, mx = 0;
    for (int i = 0; i < n; i++) {
        double x = uf_clmath_normal(77, (uint64_t)i);
        m1 += x, m2 += x * x, m4 += x * x * x * x, mx = fmax(mx, fabs(x));
    }
    m1 /= n, m2 /= n, m4 /= n;
    CHECK_MSG(fabs(m1) < 0.012 && fabs(m2 - 1) < 0.02 && fabs(m4 / (m2 * m2) - 3) < 0.1 && mx < 5.8,
              "normal draws: mean %.4g var %.4g kurtosis %.4g max %.3g", m1, m2, m4 / (m2 * m2), mx);
    /* element 0 under seed 0, by hand: h = splitmix64 finaliser of (i + 1) * golden ratio */
    uint32_t h0 = uf_op_dropout_hash(0, 0), h1 = uf_op_dropout_hash(0, 1);
    double want = sqrt(-2 * log(((h0 >> 8) + 1) / 16777216.0)) * cos(6.283185307179586 * (h1 >> 8) / 16777216.0);
    CHECK_NEAR(uf_clmath_normal(0, 0), want, 1e-12);
}

/* Refresh's unlearning step on a view (an offset tensor in a larger vector) against the plain-C
 * reference, without and with noise; the noise alone (g = 0, c = 0, delta = 1) is the standard
 * normal of the host; the same seed gives the same bits, another seed other noise. */
static void test_refresh_step(void) {
    enum { M = 3001, OFF = 700 };
    static float p[N], g[N], F[N], out[N], want[N], p2[N];
    struct uf_rng r;
    uf_rng_init(&r, 9);
    randv(&r, p, N, 0.05f), randv(&r, g, N, 2);
    for (int i = 0; i < N; i++) F[i] = 1000 * (float)uf_rng_uniform(&r);
    struct uf_tensor tp, tg, tF, nn, vp, vg, vF;
    up(&tp, "p", p, N), up(&tg, "g", g, N), up(&tF, "F", F, N);
    float z3[3] = {0};
    up(&nn, "nn", z3, 3);
    uf_tensor_view(&vp, &tp, "p.view", OFF, 1, (int64_t[]){M});
    uf_tensor_view(&vg, &tg, "g.view", OFF, 1, (int64_t[]){M});
    uf_tensor_view(&vF, &tF, "F.view", OFF, 1, (int64_t[]){M});
    struct uf_tensor vnn;
    uf_tensor_view(&vnn, &nn, "nn.view", 1, 1, (int64_t[]){2}); /* a scratch at an offset too */
    const float sigmas[2] = {0.0f, 0.3f};
    for (int c = 0; c < 2; c++) {
        uf_tensor_upload(&tp, p);
        uf_clmath_refresh_step(&dev, &vp, &vg, &vF, &vnn, 0.01f, 0.002f, sigmas[c], 1234, 5000);
        uf_tensor_download(&tp, out);
        memcpy(want, p, sizeof p);
        uf_clmath_ref_refresh_step(want + OFF, g + OFF, F + OFF, M, 0.01f, 0.002f, sigmas[c], 1234, 5000);
        double err = 0, step = 0;
        for (int i = 0; i < N; i++) err = fmax(err, fabs(out[i] - want[i])), step = fmax(step, fabs(want[i] - p[i]));
        CHECK_MSG(step > 1e-3 && err <= 1e-5 * step, "refresh step (sigma %g): max err %.3g, step %.3g", sigmas[c], err, step);
        for (int i = 0; i < N; i++) /* outside the view: untouched */
            if (i < OFF || i >= OFF + M) CHECK(out[i] == p[i]);
    }
    /* the step's size: each tensor moves by delta ||p|| along g / ||g|| (sigma = 0, c = 0) */
    uf_tensor_upload(&tp, p);
    uf_clmath_refresh_step(&dev, &vp, &vg, &vF, &vnn, 0.01f, 0.0f, 0.0f, 1, 0);
    uf_tensor_download(&tp, out);
    double dn = 0, pn = 0;
    for (int i = OFF; i < OFF + M; i++) dn += ((double)out[i] - p[i]) * (out[i] - p[i]), pn += (double)p[i] * p[i];
    CHECK_MSG(fabs(sqrt(dn) / sqrt(pn) - 0.01) < 1e-4, "|step| / |p| = %.6g, want 0.01", sqrt(dn) / sqrt(pn));
    /* the noise alone */
    static float zero[N];
    uf_tensor_upload(&tg, zero);
    uf_tensor_upload(&tp, p);
    uf_clmath_refresh_step(&dev, &vp, &vg, &vF, &vnn, 1.0f, 0.0f, 1.0f, 42, 9);
    uf_tensor_download(&tp, out);
    double err = 0;
    for (int i = 0; i < M; i++) err = fmax(err, fabs((out[OFF + i] - p[OFF + i]) - uf_clmath_normal(42, 9 + (uint64_t)i)));
    CHECK_MSG(err < 2e-5, "device noise vs uf_clmath_normal: %.3g", err);
    uf_tensor_upload(&tp, p);
    uf_clmath_refresh_step(&dev, &vp, &vg, &vF, &vnn, 1.0f, 0.0f, 1.0f, 42, 9);
    uf_tensor_download(&tp, p2);
    CHECK(memcmp(out, p2, sizeof p2) == 0);
    uf_tensor_upload(&tp, p);
    uf_clmath_refresh_step(&dev, &vp, &vg, &vF, &vnn, 1.0f, 0.0f, 1.0f, 43, 9);
    uf_tensor_download(&tp, p2);
    int same = 0;
    for (int i = OFF; i < OFF + M; i++) same += p2[i] == out[i];
    CHECK_MSG(same < M / 100, "another seed: %d of %d entries equal", same, M);
    uf_tensor_free(&tp), uf_tensor_free(&tg), uf_tensor_free(&tF), uf_tensor_free(&nn);
}

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_penalty);
    UF_RUN(test_agem);
    UF_RUN(test_merges);
    UF_RUN(test_merges_by_hand);
    UF_RUN(test_sqdiff_topk);
    UF_RUN(test_sq_accum);
    UF_RUN(test_normal);
    UF_RUN(test_refresh_step);
    UF_RUN(test_kl_temp);
    uf_device_free(&dev);
    return uf_test_summary();
}
