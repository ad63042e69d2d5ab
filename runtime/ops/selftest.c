/* selftest.c: see selftest.h. */
#include "ops/selftest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "core/model_config.h"
#include "ops/ops.h"
#include "ref/ref_ops.h"
#include "core/tensor.h"
#include "core/util.h"

double uf_max_rel_err(const float *a, const float *b, size_t n) {
    double scale = 1e-6, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (isnan(e)) return INFINITY;
        err = fmax(err, e);
    }
    return err / scale;
}

static void fill_random(struct uf_rng *r, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * uf_rng_uniform(r) - 1);
}

static double case_gemm(struct uf_device *d) {
    static const size_t shapes[][3] = {{1, 1, 1}, {17, 33, 65}, {64, 48, 32}, {5, 130, 7}};
    struct uf_rng r;
    uf_rng_init(&r, 7);
    double worst = 0;
    for (size_t s = 0; s < UF_ARRAY_LEN(shapes); s++)
        for (int t = 0; t < 4; t++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            bool ta = t & 1, tb = t & 2;
            float *A = uf_malloc(m * k * 4), *B = uf_malloc(k * n * 4), *C = uf_malloc(m * n * 4),
                  *R = uf_malloc(m * n * 4);
            fill_random(&r, A, m * k);
            fill_random(&r, B, k * n);
            fill_random(&r, C, m * n);
            for (size_t i = 0; i < m * n; i++) R[i] = C[i];
            struct uf_tensor tA, tB, tC;
            uf_tensor_init(&tA, d, "A", UF_F32, 1, (int64_t[]){(int64_t)(m * k)});
            uf_tensor_init(&tB, d, "B", UF_F32, 1, (int64_t[]){(int64_t)(k * n)});
            uf_tensor_init(&tC, d, "C", UF_F32, 1, (int64_t[]){(int64_t)(m * n)});
            uf_tensor_upload(&tA, A);
            uf_tensor_upload(&tB, B);
            uf_tensor_upload(&tC, C);
            size_t lda = ta ? m : k, ldb = tb ? k : n;
            uf_gemm(d, ta, tb, m, n, k, 0.5f, tA.buf, 0, lda, tB.buf, 0, ldb, 0.25f, tC.buf, 0, n);
            uf_gemm_ref(ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 0.25f, R, n);
            uf_tensor_download(&tC, C);
            worst = fmax(worst, uf_max_rel_err(C, R, m * n));
            uf_tensor_free(&tA);
            uf_tensor_free(&tB);
            uf_tensor_free(&tC);
            free(A), free(B), free(C), free(R);
        }
    return worst;
}

static double case_tensor(struct uf_device *d) {
    enum { N = 1000 };
    float x[N], y[N], out[N], ref[N];
    struct uf_rng r;
    uf_rng_init(&r, 3);
    fill_random(&r, x, N);
    fill_random(&r, y, N);
    struct uf_tensor tx, ty;
    uf_tensor_init(&tx, d, "x", UF_F32, 1, (int64_t[]){N});
    uf_tensor_init(&ty, d, "y", UF_F32, 1, (int64_t[]){N});
    uf_tensor_upload(&tx, x);
    uf_tensor_upload(&ty, y);
    uf_tensor_axpby(&ty, 2.0f, &tx, -0.5f);
    uf_tensor_download(&ty, out);
    for (int i = 0; i < N; i++) ref[i] = 2.0f * x[i] - 0.5f * y[i];
    double err = uf_max_rel_err(out, ref, N);
    uf_tensor_fill(&tx, 3.5f);
    uf_tensor_copy(&ty, &tx);
    uf_tensor_download(&ty, out);
    for (int i = 0; i < N; i++) ref[i] = 3.5f;
    err = fmax(err, uf_max_rel_err(out, ref, N));
    uf_tensor_upload(&tx, x);
    uf_tensor_upload(&ty, y);
    uf_tensor_stream_add(&ty, 0.75f, &tx); /* bench's bandwidth probe */
    uf_tensor_download(&ty, out);
    for (int i = 0; i < N; i++) ref[i] = y[i] + 0.75f * x[i];
    err = fmax(err, uf_max_rel_err(out, ref, N));
    uf_tensor_free(&tx);
    uf_tensor_free(&ty);
    return err;
}

/* Attention forward + backward (GQA, window, padding) vs uf_ref_attention_* (float), head_dim
 * HD and backward form `form` (uf_attn_bwd_form). */
static double attention_case(struct uf_device *d, int HD, int form) {
    enum { B = 2, T = 11, H = 4, KV = 2, WINDOW = 6, HDM = 256, NQ = B * T * H * HDM,
           NK = B * T * KV * HDM };
    const int32_t lengths[B] = {11, 6};
    static float q[NQ], k[NK], v[NK], dout[NQ], o[NQ], lse[B * H * T], dq[NQ], dk[NK], dv[NK];
    static float ro[NQ], rlse[B * H * T], rdq[NQ], rdk[NK], rdv[NK];
    const int nq = B * T * H * HD, nk = B * T * KV * HD, saved_form = uf_attn_bwd_form;
    uf_attn_bwd_form = form;
    struct uf_rng r;
    uf_rng_init(&r, 11);
    fill_random(&r, q, nq), fill_random(&r, k, nk), fill_random(&r, v, nk);
    fill_random(&r, dout, nq);
    struct uf_tensor tq, tk, tv, tl, to, tlse, tdo, tdq, tdk, tdv;
    uf_tensor_init(&tq, d, "q", UF_F32, 1, (int64_t[]){nq});
    uf_tensor_init(&tk, d, "k", UF_F32, 1, (int64_t[]){nk});
    uf_tensor_init(&tv, d, "v", UF_F32, 1, (int64_t[]){nk});
    uf_tensor_init(&tl, d, "lengths", UF_I32, 1, (int64_t[]){B});
    uf_tensor_init(&to, d, "o", UF_F32, 1, (int64_t[]){nq});
    uf_tensor_init(&tlse, d, "lse", UF_F32, 1, (int64_t[]){B * H * T});
    uf_tensor_init(&tdo, d, "dout", UF_F32, 1, (int64_t[]){nq});
    uf_tensor_init(&tdq, d, "dq", UF_F32, 1, (int64_t[]){nq});
    uf_tensor_init(&tdk, d, "dk", UF_F32, 1, (int64_t[]){nk});
    uf_tensor_init(&tdv, d, "dv", UF_F32, 1, (int64_t[]){nk});
    uf_tensor_upload(&tq, q), uf_tensor_upload(&tk, k), uf_tensor_upload(&tv, v);
    uf_tensor_upload(&tl, lengths), uf_tensor_upload(&tdo, dout);
    uf_tensor_fill(&tdq, 0.0f), uf_tensor_fill(&tdk, 0.0f), uf_tensor_fill(&tdv, 0.0f);
    uf_op_attention_forward(d, &tq, &tk, &tv, &tl, B, T, H, KV, HD, WINDOW, &to, &tlse);
    uf_op_attention_backward(d, &tq, &tk, &tv, &tl, B, T, H, KV, HD, WINDOW, &to, &tlse, &tdo, &tdq,
                             &tdk, &tdv);
    uf_tensor_download(&to, o), uf_tensor_download(&tlse, lse);
    uf_tensor_download(&tdq, dq), uf_tensor_download(&tdk, dk), uf_tensor_download(&tdv, dv);
    uf_ref_attention_forward(ro, rlse, q, k, v, lengths, B, T, H, KV, HD, WINDOW);
    memset(rdq, 0, sizeof rdq), memset(rdk, 0, sizeof rdk), memset(rdv, 0, sizeof rdv);
    uf_ref_attention_backward(rdq, rdk, rdv, dout, q, k, v, lengths, B, T, H, KV, HD, WINDOW);
    double err = uf_max_rel_err(o, ro, nq);
    err = fmax(err, uf_max_rel_err(lse, rlse, B * H * T));
    err = fmax(err, uf_max_rel_err(dq, rdq, nq));
    err = fmax(err, uf_max_rel_err(dk, rdk, nk));
    err = fmax(err, uf_max_rel_err(dv, rdv, nk));
    struct uf_tensor *ts[] = {&tq, &tk, &tv, &tl, &to, &tlse, &tdo, &tdq, &tdk, &tdv};
    for (size_t i = 0; i < UF_ARRAY_LEN(ts); i++) uf_tensor_free(ts[i]);
    uf_attn_bwd_form = saved_form;
    return err;
}

static double case_attention(struct uf_device *d) { return attention_case(d, 12, 0); }

/* ---- ops.h cases: small odd shapes against runtime/ref/ref_ops.h -------------------------------- */
#define ST_MAXT 12
struct st { /* a case's tensors, freed together */
    struct uf_device *d;
    struct uf_tensor t[ST_MAXT];
    int n;
    double err;
};

static struct uf_tensor *st_t(struct st *s, enum uf_dtype dt, int64_t n, const void *host) {
    if (s->n >= ST_MAXT) uf_fatal(1, "selftest: too many tensors in one case");
    struct uf_tensor *t = &s->t[s->n++];
    uf_tensor_init(t, s->d, "selftest", dt, 1, &n);
    if (host) uf_tensor_upload(t, host);
    return t;
}

static void st_cmp(struct st *s, const struct uf_tensor *t, const float *ref) {
    float *got = uf_malloc((size_t)t->numel * sizeof(float));
    uf_tensor_download(t, got);
    s->err = fmax(s->err, uf_max_rel_err(got, ref, (size_t)t->numel));
    free(got);
}

static double st_done(struct st *s) {
    for (int i = 0; i < s->n; i++) uf_tensor_free(&s->t[i]);
    return s->err;
}

static double case_embed(struct uf_device *d) {
    enum { N = 9, D = 13, V = 37 };
    int32_t tok[N] = {3, 1, 3, 0, 36, 1, 3, 20, 3};
    float tab[V * D], dout[N * D], out[N * D], dtab[V * D] = {0};
    struct uf_rng r;
    uf_rng_init(&r, 11);
    fill_random(&r, tab, V * D);
    fill_random(&r, dout, N * D);
    struct st s = {.d = d};
    struct uf_tensor *tt = st_t(&s, UF_I32, N, tok), *ttab = st_t(&s, UF_F32, V * D, tab),
                     *to = st_t(&s, UF_F32, N * D, NULL), *tdo = st_t(&s, UF_F32, N * D, dout),
                     *tdt = st_t(&s, UF_F32, V * D, dtab);
    uf_op_embed_forward(d, tt, ttab, 1.5f, to);
    uf_ref_embedding_forward(out, tok, tab, N, D, 1.5f);
    st_cmp(&s, to, out);
    uf_op_embed_backward(d, tt, tdo, 1.5f, tdt);
    uf_ref_embedding_backward(dtab, dout, tok, N, D, 1.5f);
    st_cmp(&s, tdt, dtab);
    return st_done(&s);
}

static double case_rmsnorm(struct uf_device *d) {
    enum { N = 7, D = 13 };
    float x[N * D], w[D], dy[N * D], y[N * D], rs[N], dx[N * D], dw[D];
    struct uf_rng r;
    uf_rng_init(&r, 12);
    fill_random(&r, x, N * D);
    fill_random(&r, w, D);
    fill_random(&r, dy, N * D);
    struct st s = {.d = d};
    for (int po = 0; po < 2; po++) {
        memset(dx, 0, sizeof dx), memset(dw, 0, sizeof dw);
        struct uf_tensor *tx = st_t(&s, UF_F32, N * D, x), *tw = st_t(&s, UF_F32, D, w),
                         *ty = st_t(&s, UF_F32, N * D, NULL), *tr = st_t(&s, UF_F32, N, NULL),
                         *tdy = st_t(&s, UF_F32, N * D, dy), *tdx = st_t(&s, UF_F32, N * D, dx),
                         *tdw = st_t(&s, UF_F32, D, dw);
        uf_op_rmsnorm_forward(d, tx, tw, 1e-5f, po, ty, tr);
        uf_ref_rmsnorm_forward(y, rs, x, w, N, D, 1e-5f, po);
        st_cmp(&s, ty, y);
        st_cmp(&s, tr, rs);
        uf_op_rmsnorm_backward(d, tx, tw, tr, tdy, po, tdx, tdw);
        uf_ref_rmsnorm_backward(dx, dw, dy, x, w, N, D, 1e-5f, po);
        st_cmp(&s, tdx, dx);
        st_cmp(&s, tdw, dw);
        st_done(&s);
        s.n = 0;
    }
    return s.err;
}

static double case_rope(struct uf_device *d) {
    enum { B = 2, T = 5, NH = 3, HD = 32, C = NH * HD, N = B * T };
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA3, 37, C, 1, NH, NH, 19, 64);
    c.head_dim = HD;
    c.rope_original_max_pos = 64; /* all three llama3 bands within hd = 32 */
    float inv[HD / 2], ref_inv[HD / 2], x[N * C], y[N * C], dx[N * C] = {0};
    uf_rope_inv_freq(&c, inv);
    uf_ref_rope_inv_freq(&c, ref_inv);
    struct uf_rng r;
    uf_rng_init(&r, 13);
    fill_random(&r, x, N * C);
    struct st s = {.d = d};
    s.err = uf_max_rel_err(inv, ref_inv, HD / 2);
    struct uf_tensor *ti = st_t(&s, UF_F32, HD / 2, inv), *tx = st_t(&s, UF_F32, N * C, x),
                     *ty = st_t(&s, UF_F32, N * C, NULL), *tdx = st_t(&s, UF_F32, N * C, dx);
    uf_op_rope_forward(d, tx, T, NH, HD, ti, ty);
    uf_ref_rope_forward(y, x, inv, N, T, NH, HD);
    st_cmp(&s, ty, y);
    uf_op_rope_backward(d, tx, T, NH, HD, ti, tdx);
    uf_ref_rope_backward(dx, x, inv, N, T, NH, HD);
    st_cmp(&s, tdx, dx);
    return st_done(&s);
}

static double case_act(struct uf_device *d) {
    enum { n = 7 * 19 };
    float g[n], u[n], dh[n], h[n], dg[n], du[n];
    struct uf_rng r;
    uf_rng_init(&r, 14);
    fill_random(&r, g, n);
    fill_random(&r, u, n);
    fill_random(&r, dh, n);
    for (int i = 0; i < n; i++) g[i] *= 5;
    struct st s = {.d = d};
    for (int gelu = 0; gelu < 2; gelu++) {
        enum uf_act act = gelu ? UF_ACT_GELU_TANH : UF_ACT_SILU;
        memset(dg, 0, sizeof dg), memset(du, 0, sizeof du);
        struct uf_tensor *tg = st_t(&s, UF_F32, n, g), *tu = st_t(&s, UF_F32, n, u),
                         *th = st_t(&s, UF_F32, n, NULL), *tdh = st_t(&s, UF_F32, n, dh),
                         *tdg = st_t(&s, UF_F32, n, dg), *tdu = st_t(&s, UF_F32, n, du);
        uf_op_gated_forward(d, tg, tu, gelu, th);
        uf_ref_gated_act_forward(h, g, u, n, act);
        st_cmp(&s, th, h);
        uf_op_gated_backward(d, tg, tu, tdh, gelu, tdg, tdu);
        uf_ref_gated_act_backward(dg, du, dh, g, u, n, act);
        st_cmp(&s, tdg, dg);
        st_cmp(&s, tdu, du);
        /* dropout: forward against the host mask, backward with the same mask (dx += ...) */
        float p = 0.25f, want[n];
        uint32_t thr = uf_op_dropout_threshold(p);
        for (int i = 0; i < n; i++)
            want[i] = uf_op_dropout_hash(99, (uint64_t)i) >= thr ? g[i] / (1 - p) : 0.0f;
        uf_op_dropout_forward(d, tg, p, 99, th);
        st_cmp(&s, th, want);
        uf_tensor_fill(tdg, 0);
        uf_op_dropout_backward(d, tg, p, 99, tdg);
        st_cmp(&s, tdg, want);
        st_done(&s);
        s.n = 0;
    }
    return s.err;
}

static double case_cross_entropy(struct uf_device *d) {
    enum { N = 7, V = 37 };
    float lg[N * V], mask[N] = {1, 0, 1, 1, 0, 1, 1}, lr[N], dl[N * V];
    int32_t tg[N] = {0, -1, 36, 5, 7, 12, 36}; /* masked rows: targets not read */
    struct uf_rng r;
    uf_rng_init(&r, 15);
    fill_random(&r, lg, N * V);
    for (int i = 0; i < N * V; i++) lg[i] *= 4;
    uf_ref_cross_entropy_forward(lr, lg, tg, mask, N, V);
    uf_ref_cross_entropy_backward(dl, lg, tg, mask, N, V, 0.2);
    struct st s = {.d = d};
    struct uf_tensor *tl = st_t(&s, UF_F32, N * V, lg), *tt = st_t(&s, UF_I32, N, tg),
                     *tm = st_t(&s, UF_F32, N, mask), *tlr = st_t(&s, UF_F32, N, NULL);
    uf_op_cross_entropy(d, tl, tt, tm, 0.2f, tlr, tl); /* in place */
    st_cmp(&s, tlr, lr);
    st_cmp(&s, tl, dl);
    return st_done(&s);
}

static double case_optim(struct uf_device *d) {
    enum { n = 1003 };
    float p[n], g[n], m[n], v[n], got[n];
    struct uf_rng r;
    uf_rng_init(&r, 16);
    fill_random(&r, p, n);
    fill_random(&r, g, n);
    fill_random(&r, m, n);
    fill_random(&r, v, n);
    double sum = 0, sumsq = 0;
    for (int i = 0; i < n; i++) v[i] = v[i] * v[i], sum += g[i], sumsq += (double)g[i] * g[i];
    struct st s = {.d = d};
    struct uf_tensor *tp = st_t(&s, UF_F32, n, p), *tg = st_t(&s, UF_F32, n, g),
                     *tm = st_t(&s, UF_F32, n, m), *tv = st_t(&s, UF_F32, n, v),
                     *ts = st_t(&s, UF_F32, 1, NULL), *tq = st_t(&s, UF_F32, 1, NULL);
    float fs, fq;
    uf_op_sum(d, tg, ts, 0);
    uf_op_sumsq(d, tg, tq, 0);
    uf_tensor_download(ts, &fs);
    uf_tensor_download(tq, &fq);
    s.err = fmax(fabs(fs - sum) / sqrt(sumsq), fabs(fq - sumsq) / sumsq);
    /* AdamW with clipping active (|g| ~ 18 > max_norm 2) */
    struct uf_adamw_hparams h = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 2.0f, 1.0f, 2, 0};
    uf_op_adamw(d, tp, tg, tm, tv, tq, &h);
    double clip = fmin(1.0, 2.0 / (sqrt(sumsq) + 1e-6)), bc1 = 1 - 0.9 * 0.9, bc2 = 1 - 0.999 * 0.999;
    for (int i = 0; i < n; i++) {
        double gg = clip * g[i];
        m[i] = (float)(0.9 * m[i] + 0.1 * gg);
        v[i] = (float)(0.999 * v[i] + 0.001 * gg * gg);
        p[i] = (float)(p[i] - 1e-2 * ((m[i] / bc1) / (sqrt(v[i] / bc2) + 1e-8) + 0.1 * p[i]));
    }
    uf_tensor_download(tp, got);
    s.err = fmax(s.err, uf_max_rel_err(got, p, n));
    st_cmp(&s, tm, m);
    st_cmp(&s, tv, v);
    return st_done(&s);
}

static const struct {
    const char *name;
    double (*fn)(struct uf_device *);
    double bound;
} cases[] = {
    {"gemm (all transposes, odd shapes)", case_gemm, 1e-5},
    {"tensor fill/copy/axpby/stream_add", case_tensor, 1e-6},
    {"attention fwd+bwd (GQA, window, padding)", case_attention, 1e-5},
    {"embedding fwd/bwd (repeated tokens)", case_embed, 1e-6},
    {"rmsnorm fwd/bwd (w, 1+w)", case_rmsnorm, 1e-5},
    {"rope fwd/bwd, llama3 inv_freq", case_rope, 2e-6},
    {"gated silu/gelu fwd/bwd, dropout", case_act, 5e-6},
    {"cross-entropy fused, masked, in place", case_cross_entropy, 1e-5},
    {"sum/sumsq, adamw (clip active)", case_optim, 1e-5},
};

/* ---- --full: every variant a device may select ------------------------------------------ */
static double gemm_with(struct uf_device *d, enum uf_gemm_backend b) {
    uf_gemm_set_backend(d, b);
    double e = case_gemm(d);
    uf_gemm_set_backend(d, UF_GEMM_AUTO);
    return e;
}
static double case_gemm_own(struct uf_device *d) { return gemm_with(d, UF_GEMM_OWN); }
static double case_gemm_clblast(struct uf_device *d) { return gemm_with(d, UF_GEMM_CLBLAST); }

static uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* bf16 B operand (both layouts, small m read in place and packed), own and CLBlast backends,
 * vs the reference on the rounded values */
static double case_gemm_bf16(struct uf_device *d) {
    static const size_t shapes[][3] = {{3, 17, 33}, {40, 24, 9}};
    struct uf_rng r;
    uf_rng_init(&r, 17);
    double worst = 0;
    for (int be = UF_GEMM_OWN; be <= UF_GEMM_CLBLAST; be++) {
        uf_gemm_set_backend(d, (enum uf_gemm_backend)be);
        for (size_t s = 0; s < UF_ARRAY_LEN(shapes); s++)
            for (int tb = 0; tb < 2; tb++) {
                size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                float *A = uf_malloc(m * k * 4), *Bf = uf_malloc(k * n * 4), *C = uf_malloc(m * n * 4),
                      *R = uf_malloc(m * n * 4);
                uint16_t *Bh = uf_malloc(k * n * 2);
                fill_random(&r, A, m * k);
                fill_random(&r, Bf, k * n);
                for (size_t i = 0; i < k * n; i++) {
                    Bh[i] = bf16_round(Bf[i]);
                    uint32_t u = (uint32_t)Bh[i] << 16;
                    memcpy(&Bf[i], &u, 4);
                }
                fill_random(&r, C, m * n);
                memcpy(R, C, m * n * 4);
                struct uf_tensor tA, tB, tC;
                uf_tensor_init(&tA, d, "A", UF_F32, 1, (int64_t[]){(int64_t)(m * k)});
                uf_tensor_init(&tB, d, "B", UF_BF16, 1, (int64_t[]){(int64_t)(k * n)});
                uf_tensor_init(&tC, d, "C", UF_F32, 1, (int64_t[]){(int64_t)(m * n)});
                uf_tensor_upload(&tA, A), uf_tensor_upload(&tB, Bh), uf_tensor_upload(&tC, C);
                size_t ldb = tb ? k : n;
                uf_gemm_bf16(d, false, tb, m, n, k, 1.0f, tA.buf, 0, k, tB.buf, 0, ldb, 0.5f,
                             tC.buf, 0, n);
                uf_gemm_ref(false, tb, m, n, k, 1.0f, A, k, Bf, ldb, 0.5f, R, n);
                uf_tensor_download(&tC, C);
                worst = fmax(worst, uf_max_rel_err(C, R, m * n));
                uf_tensor_free(&tA), uf_tensor_free(&tB), uf_tensor_free(&tC);
                free(A), free(Bf), free(Bh), free(C), free(R);
            }
    }
    uf_gemm_set_backend(d, UF_GEMM_AUTO);
    return worst;
}

/* Every head-dim instance (D = 32, 64, 128, 256) of both kernel variants: the CPU variant
 * (attention.cl) through both backward forms where the device's local memory holds the
 * instance (the tile-kernel backward needs two tiles plus a row of padding: more than 32 KiB
 * from D = 128), and the GPU variant (attention_gpu.cl, at most 29 KiB at every D). */
static double case_attention_all(struct uf_device *d) {
    static const int hds[] = {12, 40, 100, 200};
    int saved = uf_ops_portable;
    double worst = 0;
    for (size_t i = 0; i < UF_ARRAY_LEN(hds); i++) {
        uf_ops_portable = -1; /* the CPU variant */
        for (int form = 1; form <= 2; form++) {
            int hdp = hds[i] <= 32 ? 32 : hds[i] <= 64 ? 64 : hds[i] <= 128 ? 128 : 256;
            int bt = hdp <= 64 ? 64 : hdp == 128 ? 32 : 16;
            size_t local = (size_t)2 * bt * (hdp + (form == 2)) * sizeof(float);
            if (local > d->local_mem) continue; /* as attention.c refuses it */
            worst = fmax(worst, attention_case(d, hds[i], form));
        }
        uf_ops_portable = 1; /* the GPU variant (its own backward) */
        worst = fmax(worst, attention_case(d, hds[i], 2));
    }
    uf_ops_portable = saved;
    return worst;
}

/* The op cases again with the other op path: the GPU kernels on a CPU device, the CPU-tuned
 * kernels elsewhere (ops.h uf_ops_portable) */
static double case_ops_other_path(struct uf_device *d) {
    int saved = uf_ops_portable;
    uf_ops_portable = uf_ops_cpu_path(d) ? 1 : -1;
    double e = fmax(case_embed(d), case_rmsnorm(d));
    e = fmax(e, fmax(case_rope(d), case_act(d)));
    e = fmax(e, fmax(case_cross_entropy(d), case_optim(d)));
    e = fmax(e, case_attention(d));
    uf_ops_portable = saved;
    return e;
}

static const struct {
    const char *name;
    double (*fn)(struct uf_device *);
    double bound;
} full_cases[] = {
    {"gemm, own kernels", case_gemm_own, 1e-5},
    {"gemm, CLBlast", case_gemm_clblast, 1e-5},
    {"gemm bf16 B (own, CLBlast)", case_gemm_bf16, 1e-5},
    {"attention hd 12..200, both variants", case_attention_all, 1e-5},
    {"ops on the other kernel path", case_ops_other_path, 1e-5},
};

int uf_selftest_case(FILE *out, const char *name, double err, double bound, double seconds) {
    int ok = err <= bound;
    fprintf(out, "%-4s %-40s max rel err %.2e (bound %.0e)  %.2fs\n", ok ? "ok" : "FAIL", name,
            err, bound, seconds);
    fflush(out);
    return !ok;
}

int uf_selftest_run_ex(struct uf_device *d, FILE *out, int full) {
    int failures = 0;
    for (size_t i = 0; i < UF_ARRAY_LEN(cases); i++) {
        double t0 = uf_time_now();
        double err = cases[i].fn(d);
        failures += uf_selftest_case(out, cases[i].name, err, cases[i].bound, uf_time_now() - t0);
    }
    for (size_t i = 0; full && i < UF_ARRAY_LEN(full_cases); i++) {
        double t0 = uf_time_now();
        double err = full_cases[i].fn(d);
        failures += uf_selftest_case(out, full_cases[i].name, err, full_cases[i].bound,
                                     uf_time_now() - t0);
    }
    return failures;
}

int uf_selftest_run(struct uf_device *d, FILE *out) { return uf_selftest_run_ex(d, out, 0); }
