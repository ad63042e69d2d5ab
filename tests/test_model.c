/* test_model.c: the training engine (model.h, optim.h) on the device against the plain-C
 * reference model (runtime/ref/ref_model.h), on tiny configs of every family
 * (V=37 D=16 L=2 H=4 KV=2 F=24, B=2 T=7, lengths {7, 4}, a loss mask with holes):
 *   - logits, last hidden states, loss and EVERY parameter gradient, full fine-tuning and LoRA,
 *     with external gradients at the logits and the hidden states (both entry points);
 *   - the LoRA layout equals the reference's; merge / unmerge; a frozen teacher copy gives the
 *     same logits; LoRA dropout's gradient against central finite differences (same masks);
 *   - AdamW (clipping, grad_scale, weight-decay rule, frozen embeddings) against a plain-C AdamW
 *     with PyTorch clip_grad_norm_ semantics;
 *   - 30 steps on a fixed batch lower the loss; two runs are bit-identical; gradient accumulation
 *     of two micro-batches equals one batch of both;
 *   - the reference comparisons of llama, gemma, LoRA llama3, AdamW, accumulation and
 *     determinism again with the other kernel path (GPU kernels on a CPU device).
 * Bounds (f32 device vs double reference): max |dev - ref| / max |ref| per tensor <= 1e-5 for
 * logits / hidden / loss, <= 5e-5 for each gradient tensor, and NMSE <= 1e-10 for each gradient
 * (measured on PoCL: 8.5e-7, 2.7e-6, 1.9e-12).
 * The largest measured errors are printed. */
#include <math.h>
#include <string.h>

#include "model/model.h"
#include "ops/ops.h"
#include "model/optim.h"
#include "ref/ref_model.h"
#include "ref/ref_ops.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

enum { V = 37, D = 16, L = 2, H = 4, KV = 2, F = 24, B = 2, T = 7 };
static const int32_t lengths[B] = {7, 4};

#define TOL_FWD 1e-5
#define TOL_GRAD 5e-5
#define TOL_NMSE 1e-10

static double worst_fwd, worst_grad, worst_nmse;

/* ---- helpers ------------------------------------------------------------------------------ */
static void make_cfg(struct uf_model_config *c, enum uf_family fam) {
    uf_model_config_defaults(c, fam, V, D, L, H, KV, F, 16);
    if (fam == UF_FAMILY_MISTRAL) c->sliding_window = 3;
    if (fam == UF_FAMILY_GEMMA) c->n_kv_heads = 1, c->head_dim = 6; /* MQA, H*hd = 24 != D */
}

static double max_rel(const float *a, const float *b, size_t n) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (isnan(e)) return INFINITY;
        err = fmax(err, e);
    }
    return scale > 0 ? err / scale : err;
}

static double nmse(const float *a, const float *b, size_t n) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - (double)b[i];
        num += e * e;
        den += (double)b[i] * b[i];
    }
    return num / den;
}

static int cmp_fwd(const char *what, const float *a, const float *b, size_t n) {
    double e = max_rel(a, b, n);
    worst_fwd = fmax(worst_fwd, e);
    CHECK_MSG(e <= TOL_FWD, "%s: max rel err %.3g > %g", what, e, TOL_FWD);
    return e <= TOL_FWD;
}

static int cmp_grad(const char *what, const float *a, const float *b, size_t n) {
    double e = max_rel(a, b, n), q = nmse(a, b, n);
    double bmax = 0;
    for (size_t i = 0; i < n; i++) bmax = fmax(bmax, fabs((double)b[i]));
    if (bmax == 0) { /* an exactly zero reference gradient must be exactly zero */
        CHECK_MSG(e == 0, "%s: reference gradient is 0, device max |g| = %.3g", what, e);
        return e == 0;
    }
    worst_grad = fmax(worst_grad, e);
    worst_nmse = fmax(worst_nmse, q);
    CHECK_MSG(e <= TOL_GRAD && q <= TOL_NMSE, "%s: max rel err %.3g (bound %g), NMSE %.3g (bound %g)",
              what, e, TOL_GRAD, q, TOL_NMSE);
    return e <= TOL_GRAD && q <= TOL_NMSE;
}

static void fill_normal(struct uf_rng *r, float *x, size_t n, double amp) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * uf_rng_normal(r));
}

/* Random parameters with O(1) activations (more telling than the 0.02 init). */
static float *random_params(const struct uf_model_config *c, uint64_t seed) {
    int n = uf_model_param_descs(c, NULL);
    struct uf_param_desc *pd = uf_calloc((size_t)n, sizeof *pd);
    uf_model_param_descs(c, pd);
    int64_t P = uf_model_param_numel(c);
    float *p = uf_malloc((size_t)P * sizeof *p);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    for (int i = 0; i < n; i++) {
        float *w = p + pd[i].offset;
        int norm = pd[i].kind == UF_P_ATTN_NORM || pd[i].kind == UF_P_MLP_NORM ||
                   pd[i].kind == UF_P_FINAL_NORM;
        for (int64_t j = 0; j < pd[i].numel; j++)
            w[j] = norm ? (c->norm_plus_one ? 0.0f : 1.0f) + (float)(0.2 * uf_rng_normal(&r))
                        : (float)(uf_rng_normal(&r) / sqrt((double)pd[i].cols));
    }
    free(pd);
    return p;
}

struct batch {
    int32_t tokens[B * T], targets[B * T];
    float mask[B * T];
};

static void make_batch(struct batch *b, uint64_t seed) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    for (int i = 0; i < B * T; i++) {
        b->tokens[i] = (int32_t)uf_rng_below(&r, V);
        b->targets[i] = (int32_t)uf_rng_below(&r, V);
        int t = i % T;
        b->mask[i] = t < lengths[i / T] && t != 2 ? 1.0f : 0.0f; /* a hole at t = 2 */
        if (b->mask[i] == 0.0f) b->targets[i] = -100;            /* ignored where masked */
    }
}

static struct uf_model_batch as_batch(const struct batch *b) {
    struct uf_model_batch mb = {B, T, b->tokens, b->targets, b->mask, lengths, 0.0f};
    return mb;
}

static float *download(const struct uf_tensor *t, int64_t n) {
    float *h = uf_malloc((size_t)n * sizeof *h);
    struct uf_tensor v;
    uf_tensor_view(&v, t, t->name, 0, 1, (int64_t[]){n});
    uf_tensor_download(&v, h);
    return h;
}

static void upload_new(struct uf_tensor *t, const char *name, const float *h, int64_t n) {
    uf_tensor_init(t, &dev, name, UF_F32, 1, (int64_t[]){n});
    uf_tensor_upload(t, h);
}

/* ---- the oracle comparison ------------------------------------------------------------------ */
/* One family, full fine-tuning (lora_targets 0) or LoRA, with external gradients. */
static void check_vs_ref(enum uf_family fam, unsigned lora_targets) {
    struct uf_model_config c;
    make_cfg(&c, fam);
    float *P = random_params(&c, 11 + fam);
    struct batch bt;
    make_batch(&bt, 5 + fam);
    int64_t N = B * T;
    struct uf_rng r;
    uf_rng_init(&r, 99);
    float *gl = uf_malloc((size_t)(N * V) * sizeof *gl), *gh = uf_malloc((size_t)(N * D) * sizeof *gh);
    fill_normal(&r, gl, (size_t)(N * V), 0.01);
    fill_normal(&r, gh, (size_t)(N * D), 0.01);

    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, 0) == 0);
    uf_model_load_params(&m, P);
    struct uf_ref_lora rl = {0};
    float *LP = NULL;
    if (lora_targets) {
        struct uf_lora_config lc = {3, 6.0f, 0.0f, lora_targets};
        CHECK(uf_model_lora_init(&m, &lc, 7) == 0);
        LP = uf_malloc((size_t)m.lora_numel * sizeof *LP);
        fill_normal(&r, LP, (size_t)m.lora_numel, 0.3); /* B != 0 so every path matters */
        uf_model_lora_load(&m, LP);
        rl.rank = 3, rl.alpha = 6.0f, rl.targets = lora_targets, rl.params = LP;
        /* layout identical to the reference's */
        int n = uf_ref_lora_descs(&c, 3, lora_targets, NULL);
        CHECK_EQ_INT(n, m.n_lora);
        struct uf_ref_lora_desc *rd = uf_calloc((size_t)n, sizeof *rd);
        uf_ref_lora_descs(&c, 3, lora_targets, rd);
        for (int i = 0; i < n && i < m.n_lora; i++) {
            CHECK_STR(m.lora_descs[i].name, rd[i].name);
            CHECK_EQ_INT(m.lora_descs[i].offset, rd[i].offset);
            CHECK_EQ_INT(m.lora_descs[i].rows, rd[i].rows);
            CHECK_EQ_INT(m.lora_descs[i].cols, rd[i].cols);
        }
        free(rd);
    }
    struct uf_tensor tgl, tgh;
    upload_new(&tgl, "g_logits", gl, N * V);
    upload_new(&tgh, "g_hidden", gh, N * D);
    struct uf_model_batch mb = as_batch(&bt);
    CHECK(uf_model_forward(&m, &mb) == 0);
    uf_model_add_grad_logits(&m, &tgl, 0.25f); /* two halves of one external gradient */
    uf_model_add_grad_logits(&m, &tgl, 0.75f);
    CHECK(uf_model_backward_ex(&m, 1.0f, NULL, &tgh) == 0);
    float loss = uf_model_read_loss(&m);
    float *logits = download(&m.logits, N * V), *hidden = download(&m.hidden, N * D);

    /* reference */
    struct uf_ref_batch rb = {B, T, bt.tokens, bt.targets, bt.mask, lengths};
    int64_t Pn = m.numel;
    struct uf_ref_result res = {0};
    res.logits = uf_malloc((size_t)(N * V) * sizeof(float));
    res.hidden = uf_malloc((size_t)(N * D) * sizeof(float));
    if (lora_targets) res.lora_grad = uf_malloc((size_t)m.lora_numel * sizeof(float));
    else res.grad = uf_malloc((size_t)Pn * sizeof(float));
    int rc = uf_ref_model_run(&c, P, lora_targets ? &rl : NULL, &rb, gl, gh, &res);
    CHECK_MSG(rc == 0, "%s", uf_error());

    char what[160];
    snprintf(what, sizeof what, "%s%s logits", uf_family_name(fam), lora_targets ? "+lora" : "");
    cmp_fwd(what, logits, res.logits, (size_t)(N * V));
    snprintf(what, sizeof what, "%s%s hidden", uf_family_name(fam), lora_targets ? "+lora" : "");
    cmp_fwd(what, hidden, res.hidden, (size_t)(N * D));
    double le = fabs(loss - res.loss) / fabs(res.loss);
    worst_fwd = fmax(worst_fwd, le);
    CHECK_MSG(le <= TOL_FWD, "%s loss %.9g vs ref %.9g", uf_family_name(fam), (double)loss, res.loss);

    if (!lora_targets) {
        float *g = uf_malloc((size_t)Pn * sizeof *g);
        uf_model_save_grads(&m, g);
        for (int i = 0; i < m.n_params; i++) {
            const struct uf_param_desc *pd = &m.descs[i];
            snprintf(what, sizeof what, "%s grad %s", uf_family_name(fam), pd->name);
            cmp_grad(what, g + pd->offset, res.grad + pd->offset, (size_t)pd->numel);
        }
        free(g);
    } else {
        float *g = uf_malloc((size_t)m.lora_numel * sizeof *g);
        uf_model_lora_save_grads(&m, g);
        for (int i = 0; i < m.n_lora; i++) {
            const struct uf_lora_desc *ld = &m.lora_descs[i];
            snprintf(what, sizeof what, "%s+lora grad %s", uf_family_name(fam), ld->name);
            cmp_grad(what, g + ld->offset, res.lora_grad + ld->offset, (size_t)ld->numel);
        }
        CHECK(m.has_grads == 0 && m.grads.buf == NULL); /* no base gradients under LoRA */
        free(g);

        /* merge: same logits without the adapter path; unmerge restores the base */
        CHECK(uf_model_lora_merge(&m) == 0);
        CHECK(uf_model_lora_merge(&m) != 0);
        m.training = 0;
        CHECK(uf_model_forward(&m, &mb) == 0);
        float *lm = download(&m.logits, N * V);
        snprintf(what, sizeof what, "%s merged-LoRA logits", uf_family_name(fam));
        cmp_fwd(what, lm, res.logits, (size_t)(N * V));
        CHECK(uf_model_lora_unmerge(&m) == 0);
        float *P2 = uf_malloc((size_t)Pn * sizeof *P2);
        uf_model_save_params(&m, P2);
        double e = max_rel(P2, P, (size_t)Pn);
        CHECK_MSG(e < 1e-6, "unmerge: base differs by %.3g", e);
        free(P2);
        free(lm);
    }

    /* a frozen teacher with the same parameters gives bit-identical logits */
    if (!lora_targets) {
        struct uf_model te;
        CHECK(uf_model_init(&te, &dev, &c, 2, UF_MODEL_FROZEN) == 0);
        CHECK(uf_model_copy_params(&te, &m) == 0);
        CHECK(uf_model_forward(&te, &mb) == 0);
        float *tl = download(&te.logits, N * V);
        CHECK_MSG(memcmp(tl, logits, (size_t)(N * V) * sizeof *tl) == 0, "teacher logits differ");
        CHECK(fabsf(uf_model_read_loss(&te) - loss) == 0.0f);
        CHECK(uf_model_backward(&te) != 0); /* frozen */
        CHECK(te.bytes_acts < m.bytes_acts);
        free(tl);
        uf_model_free(&te);
    }

    uf_tensor_free(&tgl);
    uf_tensor_free(&tgh);
    uf_model_free(&m);
    free(res.logits), free(res.hidden), free(res.grad), free(res.lora_grad);
    free(logits), free(hidden), free(P), free(LP), free(gl), free(gh);
}

static void test_llama(void) { check_vs_ref(UF_FAMILY_LLAMA, 0); }
static void test_mistral(void) { check_vs_ref(UF_FAMILY_MISTRAL, 0); }
static void test_gemma(void) { check_vs_ref(UF_FAMILY_GEMMA, 0); }
static void test_llama3(void) { check_vs_ref(UF_FAMILY_LLAMA3, 0); }
static void test_lora_llama(void) { check_vs_ref(UF_FAMILY_LLAMA, UF_LORA_ALL); }
static void test_lora_mistral(void) {
    unsigned t;
    uf_lora_targets_parse("q,v,down", &t);
    check_vs_ref(UF_FAMILY_MISTRAL, t);
}
static void test_lora_gemma(void) { check_vs_ref(UF_FAMILY_GEMMA, UF_LORA_ALL); }
static void test_lora_llama3(void) {
    unsigned t;
    uf_lora_targets_parse("k,o,gate,up", &t);
    check_vs_ref(UF_FAMILY_LLAMA3, t);
}

/* ---- LoRA dropout: backward agrees with finite differences of the forward (same masks) ---- */
static double loss_at(struct uf_model *m, const struct uf_model_batch *mb, uint64_t fwd_counter) {
    m->n_forward = fwd_counter; /* forward_core increments first: same dropout masks */
    uf_model_forward(m, mb);
    return uf_model_read_loss(m);
}

static void test_lora_dropout_fd(void) {
    struct uf_model_config c;
    make_cfg(&c, UF_FAMILY_LLAMA);
    float *P = random_params(&c, 3);
    struct batch bt;
    make_batch(&bt, 4);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, 0) == 0);
    uf_model_load_params(&m, P);
    struct uf_lora_config lc = {4, 8.0f, 0.3f, UF_LORA_ALL};
    CHECK(uf_model_lora_init(&m, &lc, 9) == 0);
    int64_t n = m.lora_numel;
    float *LP = uf_malloc((size_t)n * sizeof *LP), *dir = uf_malloc((size_t)n * sizeof *dir);
    float *g = uf_malloc((size_t)n * sizeof *g), *tmp = uf_malloc((size_t)n * sizeof *tmp);
    struct uf_rng r;
    uf_rng_init(&r, 5);
    fill_normal(&r, LP, (size_t)n, 0.3);
    fill_normal(&r, dir, (size_t)n, 1.0);
    uf_model_lora_load(&m, LP);
    struct uf_model_batch mb = as_batch(&bt);
    uint64_t ctr = 41;
    loss_at(&m, &mb, ctr);
    uf_model_zero_grad(&m);
    CHECK(uf_model_backward(&m) == 0);
    uf_model_lora_save_grads(&m, g);
    double an = 0, gmax = 0;
    for (int64_t i = 0; i < n; i++) an += (double)g[i] * dir[i], gmax = fmax(gmax, fabs(g[i]));
    double eps = 3e-4, lp, lm; /* larger steps see the curvature (1e-2: 5% off) */
    for (int64_t i = 0; i < n; i++) tmp[i] = LP[i] + (float)eps * dir[i];
    uf_model_lora_load(&m, tmp);
    lp = loss_at(&m, &mb, ctr);
    for (int64_t i = 0; i < n; i++) tmp[i] = LP[i] - (float)eps * dir[i];
    uf_model_lora_load(&m, tmp);
    lm = loss_at(&m, &mb, ctr);
    double fd = (lp - lm) / (2 * eps);
    double e = fabs(fd - an) / fmax(fabs(an), 1e-6);
    fprintf(stderr, "  dropout FD: analytic %.6g, finite difference %.6g, rel err %.3g\n", an, fd, e);
    CHECK_MSG(e < 5e-3, "LoRA dropout gradient vs finite differences: rel err %.3g", e);
    /* the mask is really applied: a different counter changes the loss */
    uf_model_lora_load(&m, LP);
    double l0 = loss_at(&m, &mb, ctr), l1 = loss_at(&m, &mb, ctr + 1);
    CHECK(l0 != l1);
    m.training = 0; /* eval: no dropout, counter irrelevant */
    CHECK(loss_at(&m, &mb, 1) == loss_at(&m, &mb, 2));
    uf_model_free(&m);
    free(P), free(LP), free(dir), free(g), free(tmp);
}

/* ---- AdamW step vs a plain-C AdamW ---------------------------------------------------------- */
static void test_adamw(void) {
    struct uf_model_config c;
    make_cfg(&c, UF_FAMILY_LLAMA);
    float *P = random_params(&c, 21);
    struct batch bt;
    make_batch(&bt, 22);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, 0) == 0);
    uf_model_load_params(&m, P);
    uf_model_freeze_kinds(&m, 1u << UF_P_EMBED);
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.lr = 1e-2f, oc.weight_decay = 0.1f, oc.max_norm = 0.05f; /* clipping active */
    oc.schedule = UF_LR_COSINE, oc.warmup_steps = 1, oc.total_steps = 4, oc.min_lr_ratio = 0.1f;
    struct uf_optim o;
    CHECK(uf_optim_init(&o, &m, &oc) == 0);
    CHECK_EQ_INT(o.numel, m.numel - V * D);
    int64_t Pn = m.numel;
    float *hp = uf_malloc((size_t)Pn * sizeof *hp), *hm = uf_calloc((size_t)Pn, sizeof *hm);
    float *hv = uf_calloc((size_t)Pn, sizeof *hv), *g = uf_malloc((size_t)Pn * sizeof *g);
    float *dp = uf_malloc((size_t)Pn * sizeof *dp);
    memcpy(hp, P, (size_t)Pn * sizeof *hp);
    struct uf_model_batch mb = as_batch(&bt);
    const float gs = 0.5f;
    for (int step = 1; step <= 3; step++) {
        uf_model_zero_grad(&m);
        CHECK(uf_model_forward(&m, &mb) == 0);
        CHECK(uf_model_backward(&m) == 0);
        uf_model_save_grads(&m, g);
        uf_optim_step(&o, gs);
        /* plain C: g' = gs g; clip to max_norm (torch clip_grad_norm_); AdamW on trainables */
        double nsq = 0;
        for (int i = 0; i < m.n_params; i++)
            if (m.trainable[i])
                for (int64_t j = 0; j < m.descs[i].numel; j++) {
                    double x = (double)gs * g[m.descs[i].offset + j];
                    nsq += x * x;
                }
        double clip = fmin(1.0, oc.max_norm / (sqrt(nsq) + 1e-6));
        CHECK(clip < 1.0);
        float lr = uf_optim_lr(&oc, step);
        for (int i = 0; i < m.n_params; i++) {
            const struct uf_param_desc *pd = &m.descs[i];
            if (!m.trainable[i]) continue;
            int mat = pd->rows > 1;
            float *gg = uf_malloc((size_t)pd->numel * sizeof *gg);
            for (int64_t j = 0; j < pd->numel; j++) gg[j] = (float)(clip * gs * g[pd->offset + j]);
            uf_ref_adamw(hp + pd->offset, gg, hm + pd->offset, hv + pd->offset, pd->numel, 0.0, lr,
                         oc.beta1, oc.beta2, oc.eps, mat ? oc.weight_decay : 0.0f, 0.0f, 1.0f, step);
            free(gg);
        }
        CHECK_NEAR(uf_optim_read_grad_norm(&o), sqrt(nsq), 1e-4 * sqrt(nsq));
    }
    uf_model_save_params(&m, dp);
    double e = max_rel(dp, hp, (size_t)Pn), moved = max_rel(dp, P, (size_t)Pn);
    fprintf(stderr, "  adamw: max rel err vs plain C %.3g (params moved by %.3g)\n", e, moved);
    CHECK_MSG(e < 1e-5, "AdamW params differ from plain C by %.3g", e);
    CHECK(moved > 1e-3);
    CHECK(memcmp(dp, P, (size_t)(V * D) * sizeof *dp) == 0); /* frozen embeddings untouched */
    uf_model_save_grads(&m, g);
    for (int64_t j = 0; j < V * D; j++) CHECK(g[j] == 0.0f);
    /* schedule */
    CHECK_NEAR(uf_optim_lr(&oc, 1), 1e-2, 1e-9);
    CHECK_NEAR(uf_optim_lr(&oc, 4), 1e-3, 1e-9);
    CHECK_NEAR(uf_optim_lr(&oc, 100), 1e-3, 1e-9);
    uf_optim_free(&o);
    uf_model_free(&m);
    free(P), free(hp), free(hm), free(hv), free(g), free(dp);
}

/* ---- training ------------------------------------------------------------------------------- */
/* 30 AdamW steps on a fixed batch (full: from the default init); returns the losses (31: last = eval). */
static void train(enum uf_family fam, int lora, float *losses, float *final_params, int64_t *np) {
    struct uf_model_config c;
    make_cfg(&c, fam);
    struct batch bt;
    make_batch(&bt, 77);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1234, 0) == 0);
    if (lora) { /* a base with O(1) logits (the 0.02 init leaves LoRA no room to move them) */
        float *P = random_params(&c, 4321);
        uf_model_load_params(&m, P);
        free(P);
        struct uf_lora_config lc = {4, 8.0f, 0.1f, UF_LORA_ALL};
        CHECK(uf_model_lora_init(&m, &lc, 99) == 0);
    }
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.lr = 1e-2f;
    oc.weight_decay = 0.01f;
    oc.warmup_steps = 3;
    oc.total_steps = 30;
    oc.schedule = UF_LR_COSINE;
    struct uf_optim o;
    CHECK(uf_optim_init(&o, &m, &oc) == 0);
    struct uf_model_batch mb = as_batch(&bt);
    for (int s = 0; s < 30; s++) {
        uf_model_zero_grad(&m);
        uf_model_forward(&m, &mb);
        uf_model_backward(&m);
        uf_optim_step(&o, 1.0f);
        losses[s] = uf_model_read_loss(&m);
    }
    m.training = 0;
    uf_model_forward(&m, &mb);
    losses[30] = uf_model_read_loss(&m);
    struct uf_tensor *tp = uf_model_train_params(&m);
    *np = tp->numel;
    if (final_params) uf_tensor_download(tp, final_params);
    uf_optim_free(&o);
    uf_model_free(&m);
}

static void test_training(void) {
    float a[31], b[31];
    int64_t n;
    for (int lora = 0; lora <= 1; lora++) {
        train(UF_FAMILY_LLAMA, lora, a, NULL, &n);
        fprintf(stderr, "  %s: loss %.4f -> %.4f (eval %.4f)\n", lora ? "lora" : "full", a[0], a[29],
                a[30]);
        CHECK_MSG(a[30] < 0.5f * a[0], "loss did not halve: %g -> %g", a[0], a[30]);
        (void)b;
    }
}

static void test_determinism(void) {
    for (int lora = 0; lora <= 1; lora++) {
        float a[31], b[31];
        int64_t n1, n2;
        struct uf_model_config c;
        make_cfg(&c, UF_FAMILY_GEMMA);
        int64_t cap = uf_model_param_numel(&c);
        float *p1 = uf_malloc((size_t)cap * sizeof *p1), *p2 = uf_malloc((size_t)cap * sizeof *p2);
        train(UF_FAMILY_GEMMA, lora, a, p1, &n1);
        train(UF_FAMILY_GEMMA, lora, b, p2, &n2);
        CHECK_EQ_INT(n1, n2);
        CHECK_MSG(memcmp(a, b, sizeof a) == 0, "%s: loss curves differ", lora ? "lora" : "full");
        CHECK_MSG(memcmp(p1, p2, (size_t)n1 * sizeof *p1) == 0, "final parameters differ");
        free(p1), free(p2);
    }
}

/* Two micro-batches (one sequence each, loss_denom = masked tokens of both) accumulate to the
 * gradient of one batch of both. */
static void test_accumulation(void) {
    struct uf_model_config c;
    make_cfg(&c, UF_FAMILY_MISTRAL);
    float *P = random_params(&c, 31);
    struct batch bt;
    make_batch(&bt, 32);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, 0) == 0);
    uf_model_load_params(&m, P);
    int64_t Pn = m.numel;
    float *g1 = uf_malloc((size_t)Pn * sizeof *g1), *g2 = uf_malloc((size_t)Pn * sizeof *g2);
    struct uf_model_batch mb = as_batch(&bt);
    uf_model_zero_grad(&m);
    CHECK(uf_model_forward(&m, &mb) == 0);
    float loss_full = uf_model_read_loss(&m);
    CHECK(uf_model_backward(&m) == 0);
    uf_model_save_grads(&m, g1);
    float total = 0;
    for (int i = 0; i < B * T; i++) total += bt.mask[i];
    uf_model_zero_grad(&m);
    float loss_sum = 0;
    for (int b = 0; b < B; b++) {
        struct uf_model_batch mi = {1, T, bt.tokens + b * T, bt.targets + b * T, bt.mask + b * T,
                                    lengths + b, total};
        CHECK(uf_model_forward(&m, &mi) == 0);
        loss_sum += uf_model_read_loss(&m);
        CHECK(uf_model_backward(&m) == 0);
    }
    uf_model_save_grads(&m, g2);
    CHECK_NEAR(loss_sum, loss_full, 1e-5 * loss_full);
    double e = max_rel(g2, g1, (size_t)Pn);
    fprintf(stderr, "  accumulation: max rel err %.3g\n", e);
    CHECK_MSG(e < 1e-5, "accumulated gradient differs by %.3g", e);
    uf_model_free(&m);
    free(P), free(g1), free(g2);
}

/* Device-fed forward (generation, teachers) equals the host-batch forward; a larger batch after a
 * smaller one grows the activations and stays right. */
static void test_forward_device(void) {
    struct uf_model_config c;
    make_cfg(&c, UF_FAMILY_GEMMA);
    float *P = random_params(&c, 41);
    struct batch bt;
    make_batch(&bt, 42);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, UF_MODEL_FROZEN) == 0);
    uf_model_load_params(&m, P);
    struct uf_model_batch one = {1, 3, bt.tokens, NULL, NULL, NULL, 0.0f};
    CHECK(uf_model_forward(&m, &one) == 0);
    int64_t cap1 = m.n_cap;
    struct uf_model_batch mb = as_batch(&bt);
    mb.targets = NULL;
    CHECK(uf_model_forward(&m, &mb) == 0);
    CHECK(m.n_cap > cap1);
    int64_t N = B * T;
    float *a = download(&m.logits, N * V);
    struct uf_tensor tok, len;
    uf_tensor_init(&tok, &dev, "tok", UF_I32, 1, (int64_t[]){N});
    uf_tensor_init(&len, &dev, "len", UF_I32, 1, (int64_t[]){B});
    uf_tensor_upload(&tok, bt.tokens);
    uf_tensor_upload(&len, lengths);
    CHECK(uf_model_forward_device(&m, &tok, &len, B, T) == 0);
    float *b = download(&m.logits, N * V);
    CHECK(memcmp(a, b, (size_t)(N * V) * sizeof *a) == 0);
    struct uf_ref_batch rb = {B, T, bt.tokens, bt.targets, bt.mask, lengths};
    struct uf_ref_result res = {0};
    res.logits = uf_malloc((size_t)(N * V) * sizeof(float));
    CHECK(uf_ref_model_run(&c, P, NULL, &rb, NULL, NULL, &res) == 0);
    cmp_fwd("gemma device-fed logits", b, res.logits, (size_t)(N * V));
    CHECK(uf_model_forward_device(&m, &tok, &len, B + 1, T) != 0); /* wrong shape */
    uf_tensor_free(&tok), uf_tensor_free(&len);
    uf_model_free(&m);
    free(P), free(a), free(b), free(res.logits);
}

/* Bad input is an error naming the entry, never a crash. */
static void test_bad_input(void) {
    struct uf_model_config c;
    make_cfg(&c, UF_FAMILY_LLAMA);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, 0) == 0);
    struct batch bt;
    make_batch(&bt, 1);
    bt.tokens[5] = V;
    struct uf_model_batch mb = as_batch(&bt);
    CHECK(uf_model_forward(&m, &mb) != 0);
    CHECK(strstr(uf_error(), "tokens[5]") != NULL);
    bt.tokens[5] = 0;
    bt.targets[1] = -1; /* mask is 1 there */
    CHECK(uf_model_forward(&m, &mb) != 0);
    CHECK(strstr(uf_error(), "targets[1]") != NULL);
    struct uf_lora_config lc = {0, 1.0f, 0.0f, UF_LORA_ALL};
    CHECK(uf_model_lora_init(&m, &lc, 1) != 0);
    struct uf_model_config bad = c;
    bad.n_kv_heads = 3;
    struct uf_model m2;
    CHECK(uf_model_init(&m2, &dev, &bad, 1, 0) != 0);
    uf_model_free(&m);
}

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_llama);
    UF_RUN(test_mistral);
    UF_RUN(test_gemma);
    UF_RUN(test_llama3);
    UF_RUN(test_lora_llama);
    UF_RUN(test_lora_mistral);
    UF_RUN(test_lora_gemma);
    UF_RUN(test_lora_llama3);
    UF_RUN(test_lora_dropout_fd);
    UF_RUN(test_adamw);
    UF_RUN(test_accumulation);
    UF_RUN(test_training);
    UF_RUN(test_determinism);
    UF_RUN(test_forward_device);
    UF_RUN(test_bad_input);
    /* the reference comparisons again on the other kernel path (ops.h uf_ops_portable: the GPU
     * kernels on a CPU device, the CPU-tuned ones elsewhere) */
    uf_ops_portable = uf_ops_cpu_path(&dev) ? 1 : -1;
    fprintf(stderr, "---- the %s kernels\n", uf_ops_portable > 0 ? "GPU" : "CPU-tuned");
    UF_RUN(test_llama);
    UF_RUN(test_gemma);
    UF_RUN(test_lora_llama3);
    UF_RUN(test_adamw);
    UF_RUN(test_accumulation);
    UF_RUN(test_determinism);
    uf_ops_portable = 0;
    fprintf(stderr, "worst: forward max rel %.3g, gradient max rel %.3g, gradient NMSE %.3g\n",
            worst_fwd, worst_grad, worst_nmse);
    uf_device_free(&dev);
    return uf_test_summary();
}
