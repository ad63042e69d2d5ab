/* test_methods.c: the continual-learning methods (runtime/methods/) at the method level on a tiny
 * llama config (V=37 D=16 L=2 H=4 KV=2 F=24, T=7) on the device, with a struct uf_trainer filled
 * by hand and the hooks called as train.h orders them.
 *   - DER (sum / mean reductions, top-k), LwF (logits at temperature T and hidden states, on
 *     response or all tokens, full fine-tuning and LoRA), L2-SP, Lisa's proximal term: the value written
 *     into tr->terms[slot] equals the loss computed on the host from the reference model's
 *     forward (runtime/ref), and the added gradient matches central finite differences of that
 *     host loss along random directions;
 *   - ER and DER++'s CE part: the gradient equals the reference model's CE gradient on the same
 *     draw; DER++ with beta = 0 is DER and with alpha = 0 is ER, bit for bit;
 *   - EWC: the diagonal Fisher equals the mean over examples of the squared reference gradient of
 *     each example's SUMMED response CE (per = "example"), of the per-token squared gradients
 *     summed over its tokens (per = "token"), and under LoRA with space = "merged" the same over
 *     the effective weights W + s B A (reference on host-merged weights) with its penalty
 *     (value, gradient vs finite differences); the cache returns it bit for bit, normalize gives
 *     mean 1, the true Fisher differs;
 *   - A-GEM: the projected gradient equals the plain-C projection with a reference g_ref;
 *   - SafeGrad: g_a against finite differences of the host KL loss (its value in the term); the
 *     user gradient projected only when g_u . g_a < 0 (plain-C projection), unchanged bit for bit
 *     otherwise, plus weight g_a; g_a kept between recomputations (every), 0 at theta*;
 *   - EMA: decay over three steps (warm start at theta*, and with bias correction) against the
 *     hand formula; through the loop decay 0 is plain fine-tuning and decay 1 theta*, bit for bit;
 *   - TokenSel: the per-token weights its batch hook puts on the user rows against scores
 *     CE_util - CE_deg computed here (references trained by the real loop, CE by the reference
 *     model): weight mode 1 - min-max(s), drop mode exactly round(drop N) highest-s tokens out of
 *     the mask and the denominator; the weights are theta* after init; drop = 0 is plain
 *     fine-tuning bit for bit through the loop (full and LoRA with dropout);
 *   - merges: task arithmetic against its formula theta_0 + ls tau_safe + lu tau_user (tau_safe =
 *     theta_safe - theta_0, tau_user = theta_ft - theta_safe), MagMax / TIES against the clmath
 *     references; identities: linear a = 0 / 1, and tau_user = 0 returns theta_safe (bit for bit
 *     for task arithmetic and TIES);
 *   - SafeLoRA: B <- P B exactly where the dense cos(P B A, B A) <= tau, P B against a dense
 *     P = V V^T / ||V||_F; SafeMERGE gives W_safe + w_ft dW_f + (1 - w_ft) dW_s (a safety LoRA
 *     saved in PEFT layout) exactly where the dense cosine < cos, W_safe + dW_f elsewhere;
 *   - Lisa alternates sources on its schedule and moves its anchor at the switches;
 *   - SafeInstr mixes round(ratio n) demonstrations in; Refresh's Fisher (summed-CE per-example
 *     reference gradients) and unlearning step(s), noise included, against the plain-C reference;
 *   - plain fine-tuning steps are reproduced BIT FOR BIT with DER alpha = 0 + EWC lambda = 0, and
 *     with Refresh at delta = alpha = beta = 0 (a step function following train.h's order);
 *   - clip_on: "task" without methods is "total" bit for bit; with ER the step's gradient is
 *     clip(g_task) + g_er (against unclipped runs and the plain-C clip factor); clip shares;
 *   - composition: DER + EWC + L2-SP's gradient is the sum of each alone (uf_methods_check:
 *     test_methods_check_host.c).
 * The trainer is train.c's (uf_trainer_init, a BPE tokenizer trained on the test rows, datasets
 * read from JSONL files); the hooks are called by hand in train.h's order, and the bit-for-bit
 * tests run the real loop (uf_trainer_run). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/clmath.h"
#include "ops/ops.h"
#include "methods/methods.h"
#include "methods/common.h"
#include "methods/safeproj.h"
#include "model/memplan.h"
#include "recipe.h"
#include "model/hf.h"
#include "model/model.h"
#include "model/optim.h"
#include "ref/ref_model.h"
#include "formats/template.h"
#include "formats/tokenizer.h"
#include "uf_test.h"
#include "core/util.h"

enum { D = 16, L = 2, H = 4, KV = 2, F = 24, T = 40 };
static int V; /* the tokenizer's vocabulary */

static struct uf_device dev;
static struct uf_dataset ds_user, ds_safe;
static struct uf_model_config cfg;
static struct uf_tokenizer tok;
static char tmpdir[] = "/tmp/uf_test_methods_data_XXXXXX";
static char *spec_user, *spec_safe; /* dataset plan nodes (JSON) */
static char *safe_path;             /* the safety rows' file (spec_safe's) */

/* ---- fixture ---------------------------------------------------------------------------------- */
struct fx {
    struct uf_trainer tr;
    struct uf_model model, *teacher_p; /* the teacher is freed by uf_trainer_free */
    struct uf_method *meth;
    cJSON *cfgs[4];
    float *theta, *theta_t; /* host copies of student / teacher params */
    int64_t P;
};

static void make_data(void) {
    uf_dataset_init(&ds_user, "user");
    uf_dataset_init(&ds_safe, "safe");
    const char *up[] = {"ab", "xyz", "q", "hello", "mn"}, *ur[] = {"cdef", "pos", "neg!", "ok", "uvw"};
    for (int i = 0; i < 5; i++) uf_dataset_push(&ds_user, up[i], ur[i], NULL, "task", NULL, UF_KIND_TASK);
    const char *sp[] = {"hurt", "bomb", "hack", "steal"}, *sr[] = {"no", "sorry", "I can't", "nope"};
    for (int i = 0; i < 4; i++) uf_dataset_push(&ds_safe, sp[i], sr[i], NULL, "safety", NULL, UF_KIND_HARMFUL);
    CHECK(mkdtemp(tmpdir) != NULL);
    char *pu = uf_sprintf("%s/user.jsonl", tmpdir), *ps = uf_sprintf("%s/safe.jsonl", tmpdir);
    CHECK(uf_dataset_write_jsonl(&ds_user, pu) == 0 && uf_dataset_write_jsonl(&ds_safe, ps) == 0);
    spec_user = uf_sprintf("{\"_kind\":\"dataset\",\"on_bad\":\"error\",\"source\":\"file\",\"path\":\"%s\",\"kind\":\"task\"}", pu);
    spec_safe = uf_sprintf("{\"_kind\":\"dataset\",\"on_bad\":\"error\",\"source\":\"file\",\"path\":\"%s\",\"kind\":\"harmful\"}", ps);
    safe_path = ps;
    free(pu);
    const char *texts[9];
    int n = 0;
    for (int i = 0; i < 5; i++) texts[n++] = ds_user.rows[i].response;
    for (int i = 0; i < 4; i++) texts[n++] = ds_safe.rows[i].response;
    CHECK(uf_tokenizer_train(&tok, texts, NULL, n, 280) == 0);
    V = tok.n_vocab;
}

/* "safe" / "user" in a method's JSON become the dataset nodes */
static char *with_specs(const char *json) {
    char *out = uf_strdup(json);
    const char *keys[2] = {"\"safe\"", "\"user\""}, *vals[2] = {spec_safe, spec_user};
    for (int k = 0; k < 2; k++) {
        char *at;
        while ((at = strstr(out, keys[k]))) {
            *at = 0;
            char *n = uf_sprintf("%s%s%s", out, vals[k], at + strlen(keys[k]));
            free(out);
            out = n;
        }
    }
    return out;
}

/* A method's table as a recipe gets it (lua/unforget's schema defaults, every dataset key the
 * safety file; recipe.h uf_recipe_method_plan) with the keys of `json` (after with_specs) over it. */
static cJSON *method_cfg(const char *name, const char *json) {
    struct uf_plan p;
    CHECK_MSG(uf_recipe_method_plan(name, safe_path, &p) == 0, "%s", uf_error());
    cJSON *c = cJSON_Duplicate(p.runs[0].methods[0].cfg, 1);
    uf_plan_free(&p);
    char *js = with_specs(json);
    cJSON *o = cJSON_Parse(js);
    free(js);
    CHECK(o != NULL);
    const cJSON *it;
    cJSON_ArrayForEach(it, o) {
        cJSON_DeleteItemFromObjectCaseSensitive(c, it->string);
        cJSON_AddItemToObject(c, it->string, cJSON_Duplicate(it, 1));
    }
    cJSON_Delete(o);
    return c;
}

/* a key of a method's table when it has it (tables of several methods are read alike below) */
static double key_or(const struct uf_method *m, const char *k, double absent) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->cfg, k);
    return cJSON_IsNumber(v) ? v->valuedouble : absent;
}

static void perturb(struct uf_model *m, uint64_t seed, float s) {
    float *p = uf_malloc((size_t)m->numel * sizeof *p);
    uf_model_save_params(m, p);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    for (int64_t i = 0; i < m->numel; i++) p[i] += s * (float)uf_rng_normal(&r);
    uf_model_load_params(m, p);
    free(p);
}

static void fx_init(struct fx *f, int lora) {
    memset(f, 0, sizeof *f);
    CHECK(uf_model_init(&f->model, &dev, &cfg, 1, 0) == 0);
    if (lora) {
        struct uf_lora_config lc = {.rank = 2, .alpha = 4, .dropout = 0, .targets = UF_LORA_ALL};
        CHECK(uf_model_lora_init(&f->model, &lc, 3) == 0);
    }
    f->teacher_p = uf_calloc(1, sizeof *f->teacher_p);
    CHECK(uf_model_init(f->teacher_p, &dev, &cfg, 1, UF_MODEL_FROZEN) == 0);
    perturb(f->teacher_p, 99, 0.05f); /* a teacher that differs, so distillation losses are not 0 */
    struct uf_train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lr = 1e-2f, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
    hp.batch = 2, hp.micro_batch = 2, hp.max_len = T, hp.seed = 5, hp.steps = 100;
    struct uf_trainer *tr = &f->tr;
    uf_trainer_init(tr, &dev, &f->model, &tok, "plain", &hp, &ds_user);
    tr->teacher = f->teacher_p;
    CHECK(uf_trainer_anchor(tr) != NULL);
    uf_rng_init(&tr->rng, 11);
    tr->methods = f->meth = uf_calloc(4, sizeof *f->meth);
    f->P = f->model.numel;
    f->theta = uf_malloc((size_t)f->P * sizeof(float));
    f->theta_t = uf_malloc((size_t)f->P * sizeof(float));
    uf_model_save_params(&f->model, f->theta);
    uf_model_save_params(f->teacher_p, f->theta_t);
}

/* adds method `name` with JSON config (type added) at slot n+1 and runs its init */
static struct uf_method *fx_add(struct fx *f, const char *name, const char *json) {
    int k = f->tr.n_methods++;
    f->cfgs[k] = method_cfg(name, json);
    struct uf_method *m = &f->meth[k];
    m->ops = uf_method_find(name);
    CHECK(m->ops != NULL);
    m->cfg = f->cfgs[k];
    m->slot = k + 1;
    if (m->ops->init) CHECK_MSG(m->ops->init(m, &f->tr) == 0, "%s init: %s", name, uf_error());
    return m;
}

static void fx_free(struct fx *f) {
    int n = f->tr.n_methods;
    uf_trainer_free(&f->tr); /* the methods' free hooks, the teacher, anchor and terms */
    for (int k = 0; k < n; k++) cJSON_Delete(f->cfgs[k]);
    uf_model_free(&f->model);
    free(f->theta), free(f->theta_t);
}

static float read_term(struct fx *f, int slot) {
    float t[UF_TRAIN_MAX_TERMS];
    uf_tensor_download(&f->tr.terms, t);
    return t[slot];
}

static void read_grads(struct fx *f, float *g) { uf_tensor_download(uf_model_train_grads(&f->model), g); }

static void ref_fwd(const float *params, const struct uf_train_batch *b, float *logits, float *hidden) {
    struct uf_ref_batch rb = {b->B, b->T, b->tokens, b->targets, b->mask, b->lengths};
    struct uf_ref_result res = {0};
    res.logits = logits, res.hidden = hidden;
    CHECK(uf_ref_model_run(&cfg, params, NULL, &rb, NULL, NULL, &res) == 0);
}

/* central differences of loss(theta + e u) along 3 random unit directions vs g . u */
typedef double (*loss_fn)(const float *theta, void *ctx);
static double worst_fd;
static void check_fd(const char *what, loss_fn fn, void *ctx, const float *theta, const float *g, int64_t P) {
    float *x = uf_malloc((size_t)P * sizeof *x), *u = uf_malloc((size_t)P * sizeof *u);
    struct uf_rng r;
    uf_rng_init(&r, 123);
    double gn = 0;
    for (int64_t i = 0; i < P; i++) gn += (double)g[i] * g[i];
    gn = sqrt(gn);
    CHECK_MSG(gn > 0, "%s: zero gradient", what);
    for (int dir = 0; dir < 3; dir++) {
        double un = 0, gu = 0;
        for (int64_t i = 0; i < P; i++) u[i] = (float)uf_rng_normal(&r), un += (double)u[i] * u[i];
        un = sqrt(un);
        for (int64_t i = 0; i < P; i++) u[i] = (float)(u[i] / un), gu += (double)g[i] * u[i];
        if (dir == 0) /* the direction of the gradient itself: the strongest test */
            for (int64_t i = 0; i < P; i++) u[i] = (float)(g[i] / gn);
        if (dir == 0) gu = gn;
        double eps = 1e-3, lp, lm;
        for (int64_t i = 0; i < P; i++) x[i] = theta[i] + (float)eps * u[i];
        lp = fn(x, ctx);
        for (int64_t i = 0; i < P; i++) x[i] = theta[i] - (float)eps * u[i];
        lm = fn(x, ctx);
        double fd = (lp - lm) / (2 * eps), err = fabs(fd - gu) / gn;
        worst_fd = fmax(worst_fd, err);
        CHECK_MSG(err < 5e-4, "%s dir %d: finite difference %.6g vs g.u %.6g (|g| %.3g)", what, dir, fd, gu, gn);
    }
    free(x), free(u);
}

/* Under LoRA, the full weights of the model: theta = base + (alpha / r) B A for every adapted
 * module, merged on the host in double (EWC's merged Fisher reference). */
static void lora_merge_host(const struct uf_model *m, const float *base, const float *lp, float *out) {
    memcpy(out, base, (size_t)m->numel * sizeof *out);
    for (int i = 0; i + 1 < m->n_lora; i += 2) {
        const struct uf_lora_desc *A = &m->lora_descs[i], *B = &m->lora_descs[i + 1];
        int64_t in = A->cols, out_ = B->rows, r = A->rows;
        float *W = out + m->descs[m->pidx[A->layer * 12 + A->kind]].offset;
        for (int64_t o = 0; o < out_; o++)
            for (int64_t j = 0; j < in; j++) {
                double acc = 0;
                for (int64_t k = 0; k < r; k++) acc += (double)lp[B->offset + o * r + k] * lp[A->offset + k * in + j];
                W[o * in + j] = (float)((double)W[o * in + j] + m->lora_scale * acc);
            }
    }
}

/* every adapter entry (B too) set to normal(0, sd): B A != 0, so A's gradients are not 0 */
static void perturb_lora(struct uf_model *m, uint64_t seed, float sd) {
    float *lp = uf_malloc((size_t)m->lora_numel * sizeof *lp);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    for (int64_t i = 0; i < m->lora_numel; i++) lp[i] = sd * (float)uf_rng_normal(&r);
    uf_model_lora_load(m, lp);
    free(lp);
}

/* ---- DER ------------------------------------------------------------------------------------ */
struct der_ctx {
    struct uf_mdraw *d;
    const float *theta_t;
    float alpha;
    int sum, topk;
};

static double der_loss(const float *theta, void *vctx) {
    struct der_ctx *c = vctx;
    double s = 0;
    for (int k = 0; k < c->d->n; k++) {
        const struct uf_train_batch *b = &c->d->b[k];
        int64_t N = (int64_t)b->B * b->T;
        float *z = uf_malloc((size_t)(N * V) * sizeof *z), *zs = uf_malloc((size_t)(N * V) * sizeof *zs);
        ref_fwd(theta, b, z, NULL);
        ref_fwd(c->theta_t, b, zs, NULL);
        for (int64_t n = 0; n < N; n++) {
            if (b->mask[n] == 0) continue;
            float thr = c->topk > 0 ? uf_clmath_ref_topk_thr(zs + n * V, V, c->topk) : -INFINITY;
            for (int v = 0; v < V; v++)
                if (zs[n * V + v] >= thr) {
                    double dd = (double)z[n * V + v] - zs[n * V + v];
                    s += dd * dd;
                }
        }
        free(z), free(zs);
    }
    return c->alpha * s / ((double)c->d->n_masked * (c->sum ? 1 : V));
}

static void test_der_grad(void) {
    const char *cases[] = {"{\"buffer\":\"safe\",\"alpha\":0.7,\"reduction\":\"sum\",\"topk\":0}",
                           "{\"buffer\":\"safe\",\"alpha\":3,\"reduction\":\"mean\",\"topk\":0}",
                           "{\"buffer\":\"safe\",\"alpha\":0.5,\"reduction\":\"sum\",\"topk\":5,\"batch\":3}"};
    for (int c = 0; c < 3; c++) {
        struct fx f;
        fx_init(&f, 0);
        if (c == 2) f.tr.hp.micro_batch = 2; /* a draw of 3 rows in chunks of 2 and 1 */
        struct uf_method *m = fx_add(&f, "der", cases[c]);
        struct uf_rng save = f.tr.rng;
        uf_model_zero_grad(&f.model);
        CHECK(m->ops->extra(m, &f.tr) == 0);
        float *g = uf_malloc((size_t)f.P * sizeof *g);
        read_grads(&f, g);
        float term = read_term(&f, m->slot);
        f.tr.rng = save; /* replay the same draw */
        struct uf_mdraw d;
        CHECK(uf_mdraw_make(&f.tr, &ds_safe, uf_mcfg_rows(&f.tr, m), &d) == 0);
        CHECK_EQ_INT(d.n, c == 2 ? 2 : 1);
        struct der_ctx ctx = {&d, f.theta_t, (float)key_or(m, "alpha", 0), c != 1, c == 2 ? 5 : 0};
        double want = der_loss(f.theta, &ctx);
        CHECK_MSG(fabs(term - want) <= 1e-4 * fabs(want) && want > 0, "der case %d: term %.7g vs host %.7g", c, term, want);
        check_fd(cases[c], der_loss, &ctx, f.theta, g, f.P);
        uf_mdraw_free(&d);
        free(g);
        fx_free(&f);
    }
}

/* ---- LwF ------------------------------------------------------------------------------------ */
struct lwf_ctx {
    const struct uf_train_batch *b;
    const float *theta_t;
    double beta, T; /* T > 0: on logits at temperature T; 0: hidden states */
    int all;        /* every non-padding position, else the response tokens */
    int64_t n;      /* the denominator */
    const float *lora; /* the student's LoRA adapters (rank 2, alpha 4, all targets), or NULL */
    const float *base; /* the student's base weights under LoRA */
};

/* the host loss from the reference model's forward: beta T^2 / n sum_S KL(softmax(z* / T) ||
 * softmax(z / T)), or beta / n sum_S ||h - h*||^2 */
static double lwf_loss(const float *theta, void *vctx) {
    struct lwf_ctx *c = vctx;
    const struct uf_train_batch *b = c->b;
    int64_t N = (int64_t)b->B * b->T, W = c->T > 0 ? V : D;
    float *h = uf_malloc((size_t)(N * W) * sizeof *h), *hs = uf_malloc((size_t)(N * W) * sizeof *hs);
    struct uf_ref_lora rl = {2, 4.0f, UF_LORA_ALL, theta};
    struct uf_ref_batch rb = {b->B, b->T, b->tokens, b->targets, b->mask, b->lengths};
    struct uf_ref_result res = {0};
    res.logits = c->T > 0 ? h : NULL, res.hidden = c->T > 0 ? NULL : h;
    CHECK(uf_ref_model_run(&cfg, c->lora ? c->base : theta, c->lora ? &rl : NULL, &rb, NULL, NULL, &res) == 0);
    ref_fwd(c->theta_t, b, c->T > 0 ? hs : NULL, c->T > 0 ? NULL : hs);
    double s = 0;
    for (int64_t n = 0; n < N; n++) {
        int on = c->all ? (n % b->T) < b->lengths[n / b->T] : b->mask[n] != 0;
        if (!on) continue;
        const float *z = h + n * W, *zs = hs + n * W;
        if (c->T > 0) { /* KL(q || p), q = softmax(zs / T), p = softmax(z / T), by hand */
            double mz = -INFINITY, ms = -INFINITY, sz = 0, ss = 0;
            for (int64_t v = 0; v < W; v++) mz = fmax(mz, z[v]), ms = fmax(ms, zs[v]);
            for (int64_t v = 0; v < W; v++) sz += exp((z[v] - mz) / c->T), ss += exp((zs[v] - ms) / c->T);
            for (int64_t v = 0; v < W; v++) {
                double q = exp((zs[v] - ms) / c->T) / ss, p = exp((z[v] - mz) / c->T) / sz;
                s += q * log(q / p);
            }
        } else {
            for (int64_t j = 0; j < W; j++) s += ((double)z[j] - zs[j]) * ((double)z[j] - zs[j]);
        }
    }
    free(h), free(hs);
    return c->beta * (c->T > 0 ? c->T * c->T : 1.0) * s / (double)c->n;
}

/* each target x tokens: the term against the host loss, the gradient (computed on the device,
 * handed to backward by reference) against central differences of it; the step's denominators
 * are set apart from the micro-batch's own counts, so the test sees which one is used */
static void test_lwf_grad(void) {
    const char *cases[] = {"{\"beta\":2.5,\"target\":\"hidden\",\"tokens\":\"response\"}",
                           "{\"beta\":1.5,\"target\":\"logits\",\"T\":2,\"tokens\":\"response\"}",
                           "{\"beta\":0.7,\"target\":\"logits\",\"T\":1,\"tokens\":\"all\"}",
                           "{\"beta\":2.0,\"target\":\"hidden\",\"tokens\":\"all\"}"};
    for (int c = 0; c < 4; c++) {
        struct fx f;
        fx_init(&f, c == 1); /* LoRA in one case: the gradient reaches the adapters */
        if (c == 1) perturb_lora(&f.model, 21, 0.1f); /* small: the loss of the adapters is close to quadratic */
        struct uf_method *m = fx_add(&f, "lwf", cases[c]);
        struct uf_train_batch b;
        CHECK(uf_trainer_make_batch(&f.tr, &ds_user, (int64_t[]){0, 3, 4}, 3, &b) == 0);
        int64_t positions = 0;
        for (int r = 0; r < b.B; r++) positions += b.lengths[r];
        f.tr.step_masked = b.n_masked + 5, f.tr.step_tokens = positions + 7;
        struct uf_model_batch mb;
        uf_mbatch(&b, 1, &mb);
        uf_model_zero_grad(&f.model);
        CHECK(uf_model_forward(&f.model, &mb) == 0);
        CHECK(m->ops->task_loss(m, &f.tr, &b) == 0);
        CHECK(uf_model_backward_ex(&f.model, 0.0f, NULL, NULL) == 0); /* only LwF's gradient */
        int64_t P = uf_model_train_grads(&f.model)->numel;
        float *g = uf_malloc((size_t)P * sizeof *g);
        read_grads(&f, g);
        int all = c >= 2;
        struct lwf_ctx ctx = {&b, f.theta_t, key_or(m, "beta", 0), c == 1 || c == 2 ? key_or(m, "T", 0) : 0,
                              all, all ? f.tr.step_tokens : f.tr.step_masked, NULL, f.theta};
        float term = read_term(&f, m->slot);
        float *x = f.theta; /* the loss as a function of the trainable vector */
        if (c == 1) { /* under LoRA: of the adapters (the reference's LoRA forward), base and teacher fixed */
            x = uf_malloc((size_t)P * sizeof *x);
            uf_model_lora_save(&f.model, x);
            ctx.lora = x;
        }
        double want = lwf_loss(x, &ctx);
        CHECK_MSG(fabs(term - want) <= 1e-4 * want && want > 0, "lwf case %d term %.7g vs host %.7g", c, term, want);
        check_fd(cases[c], lwf_loss, &ctx, x, g, P);
        if (x != f.theta) free(x);
        free(g);
        uf_train_batch_free(&b);
        fx_free(&f);
    }
}

/* ---- L2-SP and Lisa's proximal term -------------------------------------------------------- */
struct quad_ctx {
    const float *anchor;
    double lambda;
    int64_t P;
};

static double quad_loss(const float *theta, void *vctx) {
    struct quad_ctx *c = vctx;
    double s = 0;
    for (int64_t i = 0; i < c->P; i++) s += ((double)theta[i] - c->anchor[i]) * ((double)theta[i] - c->anchor[i]);
    return 0.5 * c->lambda * s;
}

static void test_l2sp_grad(void) {
    struct fx f;
    fx_init(&f, 0);
    struct uf_method *m = fx_add(&f, "l2sp", "{\"lambda\":0.3}");
    perturb(&f.model, 5, 0.01f); /* move away from the anchor */
    uf_model_save_params(&f.model, f.theta);
    uf_model_zero_grad(&f.model);
    CHECK(m->ops->grad(m, &f.tr) == 0);
    float *g = uf_malloc((size_t)f.P * sizeof *g), *a = uf_malloc((size_t)f.P * sizeof *a);
    read_grads(&f, g);
    uf_tensor_download(&f.tr.anchor, a);
    struct quad_ctx ctx = {a, 0.3, f.P};
    double want = quad_loss(f.theta, &ctx);
    CHECK_MSG(fabs(read_term(&f, m->slot) - want) <= 1e-4 * want, "l2sp term %.7g vs %.7g", read_term(&f, m->slot), want);
    check_fd("l2sp", quad_loss, &ctx, f.theta, g, f.P);
    free(g), free(a);
    fx_free(&f);
}

static void test_lisa(void) {
    struct fx f;
    fx_init(&f, 0);
    struct uf_method *m = fx_add(&f, "lisa", "{\"data\":\"safe\",\"align_steps\":2,\"user_steps\":3,\"rho\":0.7}");
    float *g = uf_malloc((size_t)f.P * sizeof *g), *anchor = uf_malloc((size_t)f.P * sizeof *anchor);
    memcpy(anchor, f.theta, (size_t)f.P * sizeof *anchor); /* before the first switch: the start weights */
    for (int64_t step = 0; step < 12; step++) {
        f.tr.step = step;
        perturb(&f.model, 100 + (uint64_t)step, 0.01f); /* the weights this step starts from */
        uf_model_save_params(&f.model, f.theta);
        int want_align = step % 5 < 2; /* cycle: 2 alignment steps then 3 user steps */
        int is_switch = step > 0 && (step % 5 == 0 || step % 5 == 2);
        if (is_switch) memcpy(anchor, f.theta, (size_t)f.P * sizeof *anchor);
        for (int micro = 0; micro < 2; micro++) {
            struct uf_train_batch b;
            CHECK(uf_trainer_make_batch(&f.tr, &ds_user, (int64_t[]){0, 1}, 2, &b) == 0);
            CHECK(m->ops->batch(m, &f.tr, &b) == 0);
            CHECK_EQ_INT(b.B, 2);
            int is_align = b.data != &ds_user;
            CHECK_MSG(is_align == want_align, "step %lld micro %d: source %s, want %s", (long long)step, micro,
                      is_align ? "alignment" : "user", want_align ? "alignment" : "user");
            uf_train_batch_free(&b);
        }
        uf_tensor_fill(&f.tr.terms, 0.0f);
        uf_model_zero_grad(&f.model);
        CHECK(m->ops->grad(m, &f.tr) == 0);
        read_grads(&f, g);
        struct quad_ctx ctx = {anchor, 0.7, f.P};
        double want = quad_loss(f.theta, &ctx);
        CHECK_MSG(fabs(read_term(&f, m->slot) - want) <= 1e-4 * want + 1e-12, "step %lld: proximal %.7g vs %.7g",
                  (long long)step, read_term(&f, m->slot), want);
        if (step == 3 || step == 8) check_fd("lisa proximal", quad_loss, &ctx, f.theta, g, f.P);
    }
    free(g), free(anchor);
    fx_free(&f);
}

/* ---- ER, DER++ -------------------------------------------------------------------------------- */
static void ref_ce_grad(struct fx *f, const struct uf_mdraw *d, double w, float *g) {
    memset(g, 0, (size_t)f->P * sizeof *g);
    float *gk = uf_malloc((size_t)f->P * sizeof *gk);
    for (int k = 0; k < d->n; k++) {
        const struct uf_train_batch *b = &d->b[k];
        struct uf_ref_batch rb = {b->B, b->T, b->tokens, b->targets, b->mask, b->lengths};
        struct uf_ref_result res = {0};
        res.grad = gk;
        CHECK(uf_ref_model_run(&cfg, f->theta, NULL, &rb, NULL, NULL, &res) == 0);
        double share = (double)b->n_masked / (double)d->n_masked;
        for (int64_t i = 0; i < f->P; i++) g[i] += (float)(w * share * gk[i]);
    }
    free(gk);
}

static double rel_err(const float *a, const float *b, int64_t n) {
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs((double)a[i] - b[i])), s = fmax(s, fabs((double)b[i]));
    return s > 0 ? e / s : e;
}

static void run_extra(struct fx *f, struct uf_method *m, uint64_t seed, float *g) {
    uf_rng_init(&f->tr.rng, seed);
    uf_tensor_fill(&f->tr.terms, 0.0f);
    uf_model_zero_grad(&f->model);
    CHECK(m->ops->extra(m, &f->tr) == 0);
    read_grads(f, g);
}

static void test_er_derpp(void) {
    struct fx f;
    fx_init(&f, 0);
    f.tr.hp.micro_batch = 2;
    struct uf_method *er = fx_add(&f, "er", "{\"buffer\":\"safe\",\"batch\":3,\"weight\":0.6}");
    struct uf_method *dpp_ce = fx_add(&f, "derpp", "{\"buffer\":\"safe\",\"batch\":3,\"alpha\":0,\"beta\":0.6}");
    struct uf_method *dpp_mse = fx_add(&f, "derpp", "{\"buffer\":\"safe\",\"batch\":3,\"alpha\":0.4,\"beta\":0}");
    struct uf_method *der = fx_add(&f, "der", "{\"buffer\":\"safe\",\"batch\":3,\"alpha\":0.4}");
    int64_t P = f.P;
    float *g1 = uf_malloc((size_t)P * 4), *g2 = uf_malloc((size_t)P * 4), *gr = uf_malloc((size_t)P * 4);
    run_extra(&f, er, 77, g1);
    uf_rng_init(&f.tr.rng, 77);
    struct uf_mdraw d;
    CHECK(uf_mdraw_make(&f.tr, &ds_safe, 3, &d) == 0);
    ref_ce_grad(&f, &d, 0.6, gr);
    double e = rel_err(g1, gr, P);
    CHECK_MSG(e < 5e-5, "er gradient vs reference: %.3g", e);
    uf_mdraw_free(&d);
    run_extra(&f, dpp_ce, 77, g2);
    CHECK(memcmp(g1, g2, (size_t)P * 4) == 0); /* DER++ with alpha = 0 is ER */
    run_extra(&f, dpp_mse, 78, g1);
    run_extra(&f, der, 78, g2);
    CHECK(memcmp(g1, g2, (size_t)P * 4) == 0); /* DER++ with beta = 0 is DER */
    free(g1), free(g2), free(gr);
    fx_free(&f);
}

/* ---- EWC ------------------------------------------------------------------------------------- */
/* F (via the grad hook with theta - theta* = 1 and lambda = 1: g = F) */
static void ewc_read_F(struct fx *f, struct uf_method *m, float *Fo) {
    float *p = uf_malloc((size_t)f->P * 4);
    for (int64_t i = 0; i < f->P; i++) p[i] = f->theta[i] - 1.0f;
    uf_tensor_upload(&f->tr.anchor, p);
    cJSON_ReplaceItemInObject((cJSON *)m->cfg, "lambda", cJSON_CreateNumber(1.0));
    uf_model_zero_grad(&f->model);
    CHECK(m->ops->grad(m, &f->tr) == 0);
    read_grads(f, Fo);
    for (int64_t i = 0; i < f->P; i++) Fo[i] = (float)(Fo[i] / (double)(f->theta[i] - p[i]));
    uf_tensor_upload(&f->tr.anchor, f->theta);
    free(p);
}

/* reference gradient of row s's summed response CE (per = "example"), or of its token t alone
 * (t >= 0), at the full weights th: the reference's masked-mean gradient times the count */
static void ewc_ref_grad(struct fx *f, const float *th, int64_t row, int64_t t, float *gk, int64_t *n_tok) {
    struct uf_train_batch b;
    CHECK(uf_trainer_make_batch(&f->tr, &ds_safe, &row, 1, &b) == 0);
    int64_t N = (int64_t)b.B * b.T;
    float *mk = uf_malloc((size_t)N * 4);
    for (int64_t i = 0; i < N; i++) mk[i] = t < 0 ? b.mask[i] : (float)(i == t);
    struct uf_ref_batch rb = {b.B, b.T, b.tokens, b.targets, mk, b.lengths};
    struct uf_ref_result res = {0};
    res.grad = gk;
    CHECK(uf_ref_model_run(&cfg, th, NULL, &rb, NULL, NULL, &res) == 0);
    double cnt = 0;
    for (int64_t i = 0; i < N; i++) cnt += mk[i];
    for (int64_t i = 0; i < f->P; i++) gk[i] = (float)(gk[i] * cnt);
    if (n_tok) *n_tok = N;
    free(mk);
    uf_train_batch_free(&b);
}

/* the one Fisher entry in a fresh cache folder (space = "merged" has no other read-out) */
static float *ewc_cached_F(const char *dir, int64_t n) {
    char *cmd = uf_sprintf("ls %s/fisher", dir);
    FILE *p = popen(cmd, "r");
    char name[256] = "";
    CHECK(p && fgets(name, sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = 0;
    char *path = uf_sprintf("%s/fisher/%s", dir, name);
    size_t size = 0;
    float *F = uf_cache_read(path, &size, "test Fisher");
    CHECK(F && size == (size_t)n * 4);
    free(cmd), free(path);
    return F;
}

/* EWC's merged penalty as a function of the adapters: lambda/2 sum F (s B A - s B* A*)^2 */
struct ewcm_ctx {
    const struct uf_model *m;
    const float *F, *anchor;
    double lambda;
};

static double ewcm_loss(const float *lp, void *vctx) {
    struct ewcm_ctx *c = vctx;
    const struct uf_model *m = c->m;
    double v = 0;
    int64_t off = 0;
    for (int i = 0; i + 1 < m->n_lora; i += 2) {
        const struct uf_lora_desc *A = &m->lora_descs[i], *B = &m->lora_descs[i + 1];
        int64_t in = A->cols, out = B->rows, r = A->rows;
        for (int64_t o = 0; o < out; o++)
            for (int64_t j = 0; j < in; j++) {
                double ba = 0, bas = 0;
                for (int64_t k = 0; k < r; k++) {
                    ba += (double)lp[B->offset + o * r + k] * lp[A->offset + k * in + j];
                    bas += (double)c->anchor[B->offset + o * r + k] * c->anchor[A->offset + k * in + j];
                }
                double dd = m->lora_scale * (ba - bas);
                v += 0.5 * c->lambda * c->F[off + o * in + j] * dd * dd;
            }
        off += out * in;
    }
    return v;
}

/* F pinned against plain-C computations: per = "example" (mean over the 3 rows of the squared
 * gradient of each row's SUMMED response CE, from the reference model), per = "token" (the
 * squared per-token gradients summed over each row's tokens), space = "merged" under LoRA (the
 * same over the effective weights W + s B A, the reference run on host-merged weights) and its
 * penalty (value and gradient against central differences); the cache, normalize, true Fisher */
static void test_ewc(void) {
    char dir[] = "/tmp/uf_test_methods_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("UNFORGET_CACHE_DIR", dir, 1);
    struct fx f;
    fx_init(&f, 0);
    int64_t P = f.P;
    struct uf_method *m = fx_add(&f, "ewc", "{\"data\":\"safe\",\"samples\":3,\"lambda\":1,\"fisher\":\"empirical\"}");
    float *Fd = uf_malloc((size_t)P * 4), *Fr = uf_calloc((size_t)P, 4), *gk = uf_malloc((size_t)P * 4);
    ewc_read_F(&f, m, Fd);
    /* reference: the same 3 rows (ewc.c's seeded choice), per-example summed-loss gradients */
    int64_t rows[3];
    uf_sample_indices(ds_safe.n, 3, f.tr.hp.seed ^ 0x45574346ull, 0, rows, NULL);
    for (int s = 0; s < 3; s++) {
        ewc_ref_grad(&f, f.theta, rows[s], -1, gk, NULL);
        for (int64_t i = 0; i < P; i++) Fr[i] += gk[i] * gk[i] / 3.0f;
    }
    double e = rel_err(Fd, Fr, P);
    CHECK_MSG(e < 1e-4, "Fisher (per example, summed loss) vs reference: %.3g", e);
    /* the cache: a second init reads the same numbers back */
    struct uf_method *m2 = fx_add(&f, "ewc", "{\"data\":\"safe\",\"samples\":3,\"lambda\":1,\"fisher\":\"empirical\"}");
    float *F2 = uf_malloc((size_t)P * 4);
    ewc_read_F(&f, m2, F2);
    CHECK(memcmp(Fd, F2, (size_t)P * 4) == 0);
    char *fdir = uf_sprintf("%s/fisher", dir);
    char *cmd = uf_sprintf("test $(ls %s | wc -l) -eq 1", fdir);
    CHECK(system(cmd) == 0);
    free(cmd);
    /* normalised: mean 1 */
    struct uf_method *m3 = fx_add(&f, "ewc", "{\"data\":\"safe\",\"samples\":3,\"lambda\":1,\"normalize\":true}");
    ewc_read_F(&f, m3, F2);
    double mean = 0;
    for (int64_t i = 0; i < P; i++) mean += F2[i];
    mean /= (double)P;
    CHECK_NEAR(mean, 1.0, 1e-3);
    /* true Fisher: labels sampled from the model, a different (positive) estimate */
    struct uf_method *m4 = fx_add(&f, "ewc", "{\"data\":\"safe\",\"samples\":3,\"lambda\":1,\"fisher\":\"true\"}");
    ewc_read_F(&f, m4, F2);
    double diff = 0, tot = 0;
    int neg = 0;
    for (int64_t i = 0; i < P; i++) diff += fabs(F2[i] - Fd[i]), tot += F2[i], neg += F2[i] < -1e-6f;
    CHECK(diff > 0 && tot > 0 && neg == 0);
    fx_free(&f);

    /* per = "token": (1/S) sum_s sum_t (grad CE_{s,t})^2, one reference run per token */
    fx_init(&f, 0);
    m = fx_add(&f, "ewc", "{\"data\":\"safe\",\"samples\":3,\"lambda\":1,\"per\":\"token\"}");
    ewc_read_F(&f, m, F2);
    memset(Fr, 0, (size_t)P * 4);
    double tokens = 0;
    for (int s = 0; s < 3; s++) {
        struct uf_train_batch b;
        CHECK(uf_trainer_make_batch(&f.tr, &ds_safe, rows + s, 1, &b) == 0);
        for (int64_t t = 0; t < (int64_t)b.B * b.T; t++) {
            if (b.mask[t] == 0) continue;
            ewc_ref_grad(&f, f.theta, rows[s], t, gk, NULL);
            for (int64_t i = 0; i < P; i++) Fr[i] += gk[i] * gk[i] / 3.0f;
            tokens++;
        }
        uf_train_batch_free(&b);
    }
    CHECK(tokens > 3); /* rows of several tokens: "token" differs from "example" */
    e = rel_err(F2, Fr, P);
    CHECK_MSG(e < 1e-4, "Fisher (per token) vs reference: %.3g", e);
    CHECK(rel_err(F2, Fd, P) > 1e-2);
    fx_free(&f);

    /* space = "merged" under LoRA, adapters with B != 0 (the anchor too) */
    char *rmf = uf_sprintf("rm -rf %s/fisher", dir);
    CHECK(system(rmf) == 0);
    free(rmf);
    fx_init(&f, 1);
    perturb_lora(&f.model, 21, 0.3f);
    uf_tensor_copy(&f.tr.anchor, &f.model.lora_params); /* theta* = these adapters */
    m = fx_add(&f, "ewc", "{\"data\":\"safe\",\"samples\":3,\"lambda\":1.7,\"space\":\"merged\"}");
    int64_t biggest = 0, Pw = uf_lora_weff_numel(&cfg, 2, UF_LORA_ALL, &biggest);
    float *Fm = ewc_cached_F(dir, Pw), *Fmr = uf_calloc((size_t)Pw, 4);
    int64_t nl = f.model.lora_numel;
    float *lp1 = uf_malloc((size_t)nl * 4), *merged = uf_malloc((size_t)P * 4);
    uf_model_lora_save(&f.model, lp1);
    lora_merge_host(&f.model, f.theta, lp1, merged);
    for (int s = 0; s < 3; s++) {
        ewc_ref_grad(&f, merged, rows[s], -1, gk, NULL); /* dCE/dW at W_eff = the merged weights */
        int64_t off = 0;
        for (int i = 0; i + 1 < f.model.n_lora; i += 2) {
            const struct uf_lora_desc *A = &f.model.lora_descs[i], *B = &f.model.lora_descs[i + 1];
            const float *gw = gk + f.model.descs[f.model.pidx[A->layer * 12 + A->kind]].offset;
            for (int64_t j = 0; j < B->rows * A->cols; j++) Fmr[off + j] += gw[j] * gw[j] / 3.0f;
            off += B->rows * A->cols;
        }
    }
    e = rel_err(Fm, Fmr, Pw);
    CHECK_MSG(e < 1e-4, "Fisher (merged weights) vs reference: %.3g", e);
    /* its penalty at other adapters: value and gradient (dA, dB) */
    perturb_lora(&f.model, 22, 0.3f);
    float *lp2 = uf_malloc((size_t)nl * 4), *gl = uf_malloc((size_t)nl * 4);
    uf_model_lora_save(&f.model, lp2);
    uf_model_zero_grad(&f.model);
    uf_tensor_fill(&f.tr.terms, 0.0f);
    CHECK(m->ops->grad(m, &f.tr) == 0);
    uf_model_lora_save_grads(&f.model, gl);
    struct ewcm_ctx ec = {&f.model, Fm, lp1, 1.7};
    double want = ewcm_loss(lp2, &ec);
    float term = read_term(&f, m->slot);
    CHECK_MSG(want > 0 && fabs(term - want) <= 1e-4 * want, "merged penalty %.7g vs host %.7g", term, want);
    check_fd("ewc merged penalty", ewcm_loss, &ec, lp2, gl, nl);
    /* merged needs LoRA */
    fx_free(&f);
    fx_init(&f, 0);
    struct uf_method bad = {.ops = uf_method_find("ewc"), .cfg = method_cfg("ewc", "{\"data\":\"safe\",\"space\":\"merged\"}")};
    CHECK(bad.ops->init(&bad, &f.tr) != 0 && strstr(uf_error(), "uf.lora"));
    bad.ops->free(&bad);
    cJSON_Delete((cJSON *)bad.cfg);
    fx_free(&f);

    char *rm = uf_sprintf("rm -rf %s", dir);
    CHECK(system(rm) == 0);
    free(rm), free(fdir);
    free(Fd), free(Fr), free(F2), free(gk), free(Fm), free(Fmr), free(lp1), free(lp2), free(gl), free(merged);
    unsetenv("UNFORGET_CACHE_DIR");
}

/* ---- A-GEM ------------------------------------------------------------------------------------ */
static void test_agem(void) {
    struct fx f;
    fx_init(&f, 0);
    struct uf_method *m = fx_add(&f, "agem", "{\"buffer\":\"safe\",\"batch\":2}");
    int64_t P = f.P;
    float *gref = uf_malloc((size_t)P * 4), *g = uf_malloc((size_t)P * 4), *out = uf_malloc((size_t)P * 4);
    uf_rng_init(&f.tr.rng, 31);
    struct uf_mdraw d;
    CHECK(uf_mdraw_make(&f.tr, &ds_safe, 2, &d) == 0);
    ref_ce_grad(&f, &d, 1.0, gref);
    uf_mdraw_free(&d);
    struct uf_rng r;
    uf_rng_init(&r, 32);
    for (int conflict = 0; conflict < 2; conflict++) {
        for (int64_t i = 0; i < P; i++)
            g[i] = (conflict ? -0.5f : 0.5f) * gref[i] + 0.01f * (float)uf_rng_normal(&r);
        uf_tensor_upload(uf_model_train_grads(&f.model), g);
        uf_rng_init(&f.tr.rng, 31);
        CHECK(m->ops->project(m, &f.tr) == 0);
        read_grads(&f, out);
        uf_clmath_ref_agem(g, gref, (size_t)P);
        double e = rel_err(out, g, P);
        CHECK_MSG(e < 1e-4, "agem (conflict %d) vs reference: %.3g", conflict, e);
        if (conflict) {
            double dot = 0;
            for (int64_t i = 0; i < P; i++) dot += (double)out[i] * gref[i];
            CHECK(dot > -1e-6);
        }
    }
    free(gref), free(g), free(out);
    fx_free(&f);
}

/* ---- SafeGrad ------------------------------------------------------------------------------- */
struct kl_ctx {
    const struct uf_mdraw *d;
    const float *theta_t;
};

/* L_a = (1/n) sum over the draw's response tokens of KL(softmax(z*) || softmax(z)), in double */
static double kl_loss(const float *theta, void *vctx) {
    struct kl_ctx *c = vctx;
    double s = 0;
    for (int k = 0; k < c->d->n; k++) {
        const struct uf_train_batch *b = &c->d->b[k];
        int64_t N = (int64_t)b->B * b->T;
        float *z = uf_malloc((size_t)(N * V) * sizeof *z), *zs = uf_malloc((size_t)(N * V) * sizeof *zs);
        ref_fwd(theta, b, z, NULL);
        ref_fwd(c->theta_t, b, zs, NULL);
        for (int64_t n = 0; n < N; n++) {
            if (b->mask[n] == 0) continue;
            const float *x = z + n * V, *y = zs + n * V;
            double mx = -INFINITY, my = -INFINITY, sx = 0, sy = 0;
            for (int v = 0; v < V; v++) mx = fmax(mx, x[v]), my = fmax(my, y[v]);
            for (int v = 0; v < V; v++) sx += exp(x[v] - mx), sy += exp(y[v] - my);
            for (int v = 0; v < V; v++) {
                double lq = y[v] - my - log(sy), lp = x[v] - mx - log(sx);
                s += exp(lq) * (lq - lp);
            }
        }
        free(z), free(zs);
    }
    return s / (double)c->d->n_masked;
}

/* g_a against the host KL loss (its value in the term, central finite differences); the
 * projection only when g_u . g_a < 0 (the plain-C A-GEM projection), g_u unchanged bit for bit
 * otherwise; + weight g_a; every = 3 keeps g_a (no draw, term 0) between recomputations */
static void test_safegrad(void) {
    struct fx f;
    fx_init(&f, 0);
    int64_t P = f.P;
    struct uf_method *m0 = fx_add(&f, "safegrad", "{\"data\":\"safe\",\"batch\":3,\"weight\":0}");
    struct uf_method *m1 = fx_add(&f, "safegrad", "{\"data\":\"safe\",\"batch\":3,\"weight\":0.7,\"every\":3}");
    f.tr.hp.micro_batch = 2; /* a draw of 3 rows in chunks of 2 and 1 */
    float *ga = uf_malloc((size_t)P * 4), *g = uf_malloc((size_t)P * 4), *out = uf_malloc((size_t)P * 4),
          *want = uf_malloc((size_t)P * 4);
    /* g_u = 0, weight 0.7: the result is 0.7 g_a */
    f.tr.step = 0;
    uf_rng_init(&f.tr.rng, 41);
    uf_tensor_fill(&f.tr.terms, 0.0f);
    uf_model_zero_grad(&f.model);
    CHECK(m1->ops->project(m1, &f.tr) == 0);
    read_grads(&f, ga);
    for (int64_t i = 0; i < P; i++) ga[i] /= 0.7f;
    float term = read_term(&f, m1->slot);
    uf_rng_init(&f.tr.rng, 41);
    struct uf_mdraw d;
    CHECK(uf_mdraw_make(&f.tr, &ds_safe, 3, &d) == 0);
    CHECK_EQ_INT(d.n, 2);
    struct kl_ctx ctx = {&d, f.theta_t};
    double L = kl_loss(f.theta, &ctx);
    CHECK_MSG(L > 0 && fabs(term - L) <= 1e-4 * L, "safegrad term %.7g vs host KL %.7g", term, L);
    check_fd("safegrad g_a", kl_loss, &ctx, f.theta, ga, P);
    uf_mdraw_free(&d);
    /* weight 0: the projection alone, against the plain-C reference */
    struct uf_rng r;
    uf_rng_init(&r, 42);
    for (int conflict = 0; conflict < 2; conflict++) {
        for (int64_t i = 0; i < P; i++)
            g[i] = (conflict ? -0.5f : 0.5f) * ga[i] + 0.01f * (float)uf_rng_normal(&r);
        uf_tensor_upload(uf_model_train_grads(&f.model), g);
        uf_rng_init(&f.tr.rng, 41); /* the same draw: the same g_a */
        CHECK(m0->ops->project(m0, &f.tr) == 0);
        read_grads(&f, out);
        double dot = 0;
        for (int64_t i = 0; i < P; i++) dot += (double)g[i] * ga[i];
        CHECK((dot < 0) == conflict);
        memcpy(want, g, (size_t)P * 4);
        uf_clmath_ref_agem(want, ga, (size_t)P);
        if (conflict) {
            CHECK_MSG(rel_err(out, want, P) < 1e-4, "safegrad projection vs reference: %.3g", rel_err(out, want, P));
            double after = 0;
            for (int64_t i = 0; i < P; i++) after += (double)out[i] * ga[i];
            CHECK_MSG(fabs(after) < 1e-4 * fabs(dot), "projected g_u . g_a = %.3g (was %.3g)", after, dot);
        } else {
            CHECK_MSG(memcmp(out, g, (size_t)P * 4) == 0, "safegrad changed a non-conflicting g_u");
        }
    }
    /* weight 0.7 with a conflict: projection + 0.7 g_a; at step 1 (every 3) the kept g_a, no draw */
    for (int64_t i = 0; i < P; i++) g[i] = -0.5f * ga[i] + 0.01f * (float)uf_rng_normal(&r);
    uf_tensor_upload(uf_model_train_grads(&f.model), g);
    f.tr.step = 1;
    uf_rng_init(&f.tr.rng, 7);
    struct uf_rng before = f.tr.rng;
    uf_tensor_fill(&f.tr.terms, 0.0f);
    CHECK(m1->ops->project(m1, &f.tr) == 0);
    read_grads(&f, out);
    memcpy(want, g, (size_t)P * 4);
    uf_clmath_ref_agem(want, ga, (size_t)P);
    for (int64_t i = 0; i < P; i++) want[i] += 0.7f * ga[i];
    CHECK_MSG(rel_err(out, want, P) < 1e-4, "safegrad weight 0.7: %.3g", rel_err(out, want, P));
    CHECK(memcmp(&before, &f.tr.rng, sizeof before) == 0 && read_term(&f, m1->slot) == 0.0f);
    /* g_a is exactly 0 at the teacher's own weights: g_u passes unchanged, bit for bit (a noise
     * g_a, however small, would still project g_u off its direction) */
    uf_model_load_params(&f.model, f.theta_t);
    f.tr.step = 0;
    uf_tensor_upload(uf_model_train_grads(&f.model), g);
    CHECK(m1->ops->project(m1, &f.tr) == 0);
    read_grads(&f, out);
    CHECK_MSG(memcmp(out, g, (size_t)P * 4) == 0, "safegrad at theta = theta* changed g_u: %.3g", rel_err(out, g, P));
    free(ga), free(g), free(out), free(want);
    fx_free(&f);
}

/* ---- EMA -------------------------------------------------------------------------------------- */
/* decay 0.5 over three steps with the hooks called as the loop calls them: theta_ema =
 * 0.125 theta* + 0.125 theta_1 + 0.25 theta_2 + 0.5 theta_3; with bias_correction
 * (0.125 theta_1 + 0.25 theta_2 + 0.5 theta_3) / 0.875 */
static void test_ema(void) {
    for (int bc = 0; bc < 2; bc++) {
        struct fx f;
        fx_init(&f, 0);
        int64_t P = f.P;
        struct uf_method *m = fx_add(&f, "ema", bc ? "{\"decay\":0.5,\"bias_correction\":true}" : "{\"decay\":0.5}");
        float *th[4], *out = uf_malloc((size_t)P * 4);
        th[0] = f.theta;
        struct uf_train_batch dummy;
        memset(&dummy, 0, sizeof dummy);
        for (int k = 0; k <= 3; k++) {
            if (k > 0) { /* the optimizer step k: new weights theta_k */
                perturb(&f.model, 70 + (uint64_t)k, 0.1f);
                th[k] = uf_malloc((size_t)P * 4);
                uf_model_save_params(&f.model, th[k]);
            }
            f.tr.step = k;
            if (k < 3) /* step k + 1 starts: its batch hooks, once per micro-batch */
                for (int mb = 0; mb < 2; mb++) CHECK(m->ops->batch(m, &f.tr, &dummy) == 0);
        }
        CHECK(m->ops->finish(m, &f.tr) == 0);
        uf_model_save_params(&f.model, out);
        double w[4] = {0.125, 0.125, 0.25, 0.5}, err = 0, mx = 0;
        for (int64_t i = 0; i < P; i++) {
            double e = 0;
            for (int k = bc; k <= 3; k++) e += w[k] * th[k][i];
            if (bc) e /= 0.875;
            err = fmax(err, fabs(out[i] - e)), mx = fmax(mx, fabs(e));
        }
        CHECK_MSG(err <= 1e-6 * mx, "ema (bias_correction %d): max error %.3g", bc, err);
        for (int k = 1; k <= 3; k++) free(th[k]);
        free(out);
        fx_free(&f);
    }
    /* decay outside [0, 1] (or 1 with bias_correction) is refused at init */
    struct fx f;
    fx_init(&f, 0);
    const char *bad[] = {"{\"decay\":1.5}", "{\"decay\":-0.1}", "{\"decay\":1,\"bias_correction\":true}"};
    for (int i = 0; i < 3; i++) {
        cJSON *c = method_cfg("ema", bad[i]);
        struct uf_method em = {.ops = uf_method_find("ema"), .cfg = c, .slot = 1};
        CHECK_MSG(em.ops->init(&em, &f.tr) != 0 && strstr(uf_error(), "decay"), "%s accepted", bad[i]);
        em.ops->free(&em);
        cJSON_Delete(c);
    }
    fx_free(&f);
}

/* ---- merges ----------------------------------------------------------------------------------- */
static void test_merges(void) {
    struct fx f;
    fx_init(&f, 0);
    int64_t P = f.P;
    float *safe = uf_malloc((size_t)P * 4), *ft = uf_malloc((size_t)P * 4), *base = uf_malloc((size_t)P * 4);
    float *out = uf_malloc((size_t)P * 4), *want = uf_malloc((size_t)P * 4);
    memcpy(safe, f.theta, (size_t)P * 4);
    struct uf_rng r;
    uf_rng_init(&r, 41);
    for (int64_t i = 0; i < P; i++) ft[i] = safe[i] + 0.1f * (float)uf_rng_normal(&r), base[i] = safe[i] + 0.1f * (float)uf_rng_normal(&r);
    struct uf_tensor t0;
    uf_tensor_init(&t0, &dev, "theta0", UF_F32, 1, (int64_t[]){P});
    uf_tensor_upload(&t0, base);
    struct {
        const char *name, *json;
        int theta0;
    } cases[] = {
        {"linear", "{\"a\":0}", 0},         {"linear", "{\"a\":1}", 1},
        {"linear", "{\"a\":0.3}", 1},
        {"task_arith", "{\"lambda_safe\":0,\"lambda_user\":0}", 1},
        {"task_arith", "{\"lambda_safe\":1,\"lambda_user\":1}", 0},
        {"task_arith", "{\"lambda_safe\":1.5,\"lambda_user\":0.5}", 1},
        {"task_arith", "{\"lambda_safe\":1,\"lambda_user\":0.3}", 0},
        {"magmax", "{\"lambda\":0.8}", 1},  {"magmax", "{\"lambda\":1}", 0},
        {"ties", "{\"density\":0.2}", 1},
        {"ties", "{\"density\":0.2,\"density_safe\":0.5,\"lambda_safe\":1.2,\"lambda_user\":0.7}", 1},
        {"ties", "{\"density\":0.3,\"lambda_user\":0.5}", 0},
    };
    for (size_t c = 0; c < UF_ARRAY_LEN(cases); c++) {
        uf_model_load_params(&f.model, ft);
        f.tr.theta0 = cases[c].theta0 ? &t0 : NULL;
        struct uf_method *m = fx_add(&f, cases[c].name, cases[c].json);
        CHECK(m->ops->finish(m, &f.tr) == 0);
        uf_model_save_params(&f.model, out);
        const float *b = cases[c].theta0 ? base : safe;
        double a = key_or(m, "a", 0), l = key_or(m, "lambda", 0);
        double ls = key_or(m, "lambda_safe", 1), lu = key_or(m, "lambda_user", 1);
        int exact = 0;
        if (!strcmp(cases[c].name, "linear")) {
            if (a == 0) memcpy(want, safe, (size_t)P * 4), exact = 1;
            else if (a == 1) memcpy(want, ft, (size_t)P * 4), exact = 1;
            else for (int64_t i = 0; i < P; i++) want[i] = (float)((1 - a) * safe[i] + a * ft[i]);
        } else if (!strcmp(cases[c].name, "task_arith")) {
            /* theta_0 + ls (theta_safe - theta_0) + lu (theta_ft - theta_safe), by hand */
            for (int64_t i = 0; i < P; i++)
                want[i] = (float)(b[i] + ls * ((double)safe[i] - b[i]) + lu * ((double)ft[i] - safe[i]));
            if (!cases[c].theta0 && ls == 1 && lu == 1) memcpy(want, ft, (size_t)P * 4);
        } else if (!strcmp(cases[c].name, "magmax")) {
            uf_clmath_ref_magmax(want, b, safe, ft, (float)l, (size_t)P);
        } else {
            uf_clmath_ref_ties(want, b, safe, ft, (float)key_or(m, "density_safe", 1),
                               (float)key_or(m, "density", 0.2), (float)ls, (float)lu, (size_t)P);
        }
        if (exact) CHECK_MSG(memcmp(out, want, (size_t)P * 4) == 0, "%s %s not exact", cases[c].name, cases[c].json);
        else CHECK_MSG(rel_err(out, want, P) < 1e-6, "%s %s: %.3g", cases[c].name, cases[c].json, rel_err(out, want, P));
        if (m->ops->free) m->ops->free(m);
        cJSON_Delete(f.cfgs[--f.tr.n_methods]);
    }
    /* merge identities with tau_user = 0 (theta_ft = theta_safe) and a known theta_0: task
     * arithmetic (lambda_safe 1, any lambda_user), TIES at its defaults (density_safe 1) and
     * MagMax / linear return theta_safe; task arithmetic is bit for bit */
    const char *ident[][2] = {{"task_arith", "{\"lambda_user\":0.37}"}, {"ties", "{}"},
                              {"ties", "{\"density\":0.1,\"lambda_user\":3}"},
                              {"magmax", "{\"lambda\":1}"}, {"linear", "{\"a\":0.6}"}};
    for (size_t c = 0; c < UF_ARRAY_LEN(ident); c++) {
        uf_model_load_params(&f.model, safe);
        f.tr.theta0 = &t0;
        struct uf_method *m = fx_add(&f, ident[c][0], ident[c][1]);
        CHECK(m->ops->finish(m, &f.tr) == 0);
        uf_model_save_params(&f.model, out);
        if (strcmp(ident[c][0], "magmax") && strcmp(ident[c][0], "linear"))
            CHECK_MSG(memcmp(out, safe, (size_t)P * 4) == 0, "%s %s: tau_user = 0 is not theta_safe bit for bit", ident[c][0], ident[c][1]);
        else
            CHECK_MSG(rel_err(out, safe, P) < 1e-6, "%s: tau_user = 0 gives %.3g from theta_safe", ident[c][0], rel_err(out, safe, P));
        if (m->ops->free) m->ops->free(m);
        cJSON_Delete(f.cfgs[--f.tr.n_methods]);
    }
    /* and the old inputs are gone: task arithmetic at lambda 1 / 1 is theta_ft, not
     * theta_ft + tau_safe (safety added twice) */
    uf_model_load_params(&f.model, ft);
    struct uf_method *m = fx_add(&f, "task_arith", "{\"lambda_safe\":1,\"lambda_user\":1}");
    CHECK(m->ops->finish(m, &f.tr) == 0);
    uf_model_save_params(&f.model, out);
    CHECK_MSG(rel_err(out, ft, P) < 1e-6, "task_arith 1/1: %.3g from theta_ft", rel_err(out, ft, P));
    cJSON_Delete(f.cfgs[--f.tr.n_methods]);
    f.tr.theta0 = NULL;
    uf_tensor_free(&t0);
    free(safe), free(ft), free(base), free(out), free(want);
    fx_free(&f);
}

/* ---- SafeLoRA and SafeMERGE ------------------------------------------------------------------- */
/* dense: V (out,in), B (out,r), A (r,in): P = V V^T / ||V||_F; PB; cos(P B A, B A) */
static double dense_safelora(const float *Vm, const float *Bm, const float *Am, int64_t out, int64_t in, int64_t r, double *PB) {
    double nv = 0;
    for (int64_t i = 0; i < out * in; i++) nv += (double)Vm[i] * Vm[i];
    nv = sqrt(nv);
    double *Pm = uf_calloc((size_t)(out * out), sizeof *Pm);
    for (int64_t a = 0; a < out; a++)
        for (int64_t b = 0; b < out; b++) {
            double s = 0;
            for (int64_t i = 0; i < in; i++) s += (double)Vm[a * in + i] * Vm[b * in + i];
            Pm[a * out + b] = s / nv;
        }
    for (int64_t a = 0; a < out; a++)
        for (int64_t j = 0; j < r; j++) {
            double s = 0;
            for (int64_t b = 0; b < out; b++) s += Pm[a * out + b] * Bm[b * r + j];
            PB[a * r + j] = s;
        }
    double xy = 0, xx = 0, yy = 0;
    for (int64_t a = 0; a < out; a++)
        for (int64_t i = 0; i < in; i++) {
            double x = 0, y = 0;
            for (int64_t j = 0; j < r; j++) x += PB[a * r + j] * Am[j * in + i], y += (double)Bm[a * r + j] * Am[j * in + i];
            xy += x * y, xx += x * x, yy += y * y;
        }
    free(Pm);
    return xy / sqrt(xx * yy);
}

static void lora_fixture(struct fx *f, float **lp, float **base, struct uf_tensor *t0) {
    fx_init(f, 1);
    int64_t n = f->model.lora_numel;
    *lp = uf_malloc((size_t)n * 4);
    struct uf_rng r;
    uf_rng_init(&r, 51);
    for (int64_t i = 0; i < n; i++) (*lp)[i] = 0.3f * (float)uf_rng_normal(&r);
    uf_model_lora_load(&f->model, *lp);
    *base = uf_malloc((size_t)f->P * 4);
    for (int64_t i = 0; i < f->P; i++) (*base)[i] = f->theta[i] + 0.05f * (float)uf_rng_normal(&r);
    uf_tensor_init(t0, &dev, "theta0", UF_F32, 1, (int64_t[]){f->P});
    uf_tensor_upload(t0, *base);
    f->tr.theta0 = t0;
}

static void test_safelora(void) {
    for (int variant = 0; variant < 2; variant++) { /* 0: safelora, 1: safemerge */
        struct fx f;
        float *lp, *base;
        struct uf_tensor t0;
        lora_fixture(&f, &lp, &base, &t0);
        struct uf_model *md = &f.model;
        int nm = 0;
        double cosv[64] = {0};
        /* dense cosines of every module, then a threshold in the middle */
        for (int i = 0; i + 1 < md->n_lora; i += 2) {
            const struct uf_lora_desc *A = &md->lora_descs[i], *B = &md->lora_descs[i + 1];
            const struct uf_param_desc *W = &md->descs[md->pidx[A->layer * 12 + A->kind]];
            float *Vm = uf_malloc((size_t)W->numel * 4);
            for (int64_t k = 0; k < W->numel; k++) Vm[k] = f.theta[W->offset + k] - base[W->offset + k];
            double *PB = uf_malloc((size_t)B->numel * sizeof *PB);
            cosv[nm++] = dense_safelora(Vm, lp + B->offset, lp + A->offset, W->rows, W->cols, 2, PB);
            float pbf[4096];
            double c2 = uf_safeproj_lowrank(Vm, lp + B->offset, lp + A->offset, W->rows, W->cols, 2, pbf);
            CHECK_NEAR(c2, cosv[nm - 1], 1e-9);
            double e = 0, s = 0;
            for (int64_t k = 0; k < B->numel; k++) e = fmax(e, fabs(pbf[k] - PB[k])), s = fmax(s, fabs(PB[k]));
            CHECK_MSG(e <= 1e-6 * s, "PB low-rank vs dense: %.3g", e / s);
            free(Vm), free(PB);
        }
        double sorted[64];
        memcpy(sorted, cosv, sizeof sorted);
        for (int a = 0; a < nm; a++)
            for (int b = a + 1; b < nm; b++)
                if (sorted[b] < sorted[a]) { double t = sorted[a]; sorted[a] = sorted[b]; sorted[b] = t; }
        double tau = 0.5 * (sorted[nm / 2 - 1] + sorted[nm / 2]);
        char json[512];
        /* SafeMERGE: a separately trained safety LoRA (here random, rank 3, alpha 6, saved in
         * PEFT layout); its dense update dW_s by uf_hf_lora_merge on zero weights */
        char sdir[] = "/tmp/uf_test_safety_lora_XXXXXX";
        float *dws = NULL;
        if (variant) {
            CHECK(mkdtemp(sdir) != NULL);
            int64_t sn = uf_ref_lora_numel(&cfg, 3, UF_LORA_ALL);
            float *sl = uf_malloc((size_t)sn * 4);
            struct uf_rng r2;
            uf_rng_init(&r2, 77);
            for (int64_t i = 0; i < sn; i++) sl[i] = 0.2f * (float)uf_rng_normal(&r2);
            CHECK(uf_hf_lora_save(sdir, &cfg, 3, 6.0f, UF_LORA_ALL, sl, NULL) == 0);
            struct uf_hf_lora hl;
            CHECK(uf_hf_lora_load(sdir, &cfg, &hl) == 0);
            dws = uf_calloc((size_t)f.P, 4);
            uf_hf_lora_merge(&cfg, dws, &hl);
            uf_hf_lora_free(&hl);
            free(sl);
        }
        snprintf(json, sizeof json, variant ? "{\"cos\":%.17g,\"w_ft\":0.8,\"safety_lora\":\"%s\"}" : "{\"tau\":%.17g}", tau, sdir);
        struct uf_method *m = fx_add(&f, variant ? "safemerge" : "safelora", json);
        CHECK(m->ops->finish(m, &f.tr) == 0);
        if (variant) {
            /* W = W_safe + w dW_f + (1 - w) dW_s where cos < tau, else W_safe + dW_f; dW_f = 2 B A */
            CHECK(md->lora_merged);
            float *want = uf_malloc((size_t)f.P * 4), *got = uf_malloc((size_t)f.P * 4);
            memcpy(want, f.theta, (size_t)f.P * 4);
            int nmerged = 0;
            for (int i = 0, k = 0; i + 1 < md->n_lora; i += 2, k++) {
                const struct uf_lora_desc *A = &md->lora_descs[i], *B = &md->lora_descs[i + 1];
                const struct uf_param_desc *W = &md->descs[md->pidx[A->layer * 12 + A->kind]];
                int take = cosv[k] < tau;
                nmerged += take;
                double wf = take ? 0.8 : 1.0;
                for (int64_t o = 0; o < W->rows; o++)
                    for (int64_t c = 0; c < W->cols; c++) {
                        double ba = 0;
                        for (int j = 0; j < 2; j++) ba += (double)lp[B->offset + o * 2 + j] * lp[A->offset + j * W->cols + c];
                        int64_t at = W->offset + o * W->cols + c;
                        want[at] = (float)(f.theta[at] + wf * 2.0 * ba + (take ? 0.2 * dws[at] : 0.0));
                    }
            }
            uf_model_save_params(md, got);
            CHECK_MSG(rel_err(got, want, f.P) < 1e-5, "safemerge: %.3g from the hand merge", rel_err(got, want, f.P));
            CHECK_EQ_INT(nmerged, nm / 2);
            char *rm = uf_sprintf("rm -rf %s", sdir);
            CHECK(system(rm) == 0);
            free(rm), free(want), free(got), free(dws), free(lp), free(base);
            uf_tensor_free(&t0);
            fx_free(&f);
            continue;
        }
        float *after = uf_malloc((size_t)md->lora_numel * 4);
        uf_model_lora_save(md, after);
        int changed = 0;
        for (int i = 0, k = 0; i + 1 < md->n_lora; i += 2, k++) {
            const struct uf_lora_desc *A = &md->lora_descs[i], *B = &md->lora_descs[i + 1];
            const struct uf_param_desc *W = &md->descs[md->pidx[A->layer * 12 + A->kind]];
            CHECK(memcmp(after + A->offset, lp + A->offset, (size_t)A->numel * 4) == 0); /* A untouched */
            int proj = variant ? cosv[k] < tau : cosv[k] <= tau;
            if (!proj) {
                CHECK(memcmp(after + B->offset, lp + B->offset, (size_t)B->numel * 4) == 0);
                continue;
            }
            changed++;
            if (variant) {
                for (int64_t j = 0; j < B->numel; j++) CHECK(after[B->offset + j] == lp[B->offset + j] * 0.8f);
            } else {
                float *Vm = uf_malloc((size_t)W->numel * 4);
                for (int64_t j = 0; j < W->numel; j++) Vm[j] = f.theta[W->offset + j] - base[W->offset + j];
                double *PB = uf_malloc((size_t)B->numel * sizeof *PB);
                dense_safelora(Vm, lp + B->offset, lp + A->offset, W->rows, W->cols, 2, PB);
                double e = 0, s = 0;
                for (int64_t j = 0; j < B->numel; j++) e = fmax(e, fabs(after[B->offset + j] - PB[j])), s = fmax(s, fabs(PB[j]));
                CHECK_MSG(e <= 1e-6 * s, "projected B vs dense P B: %.3g", e / s);
                free(Vm), free(PB);
            }
        }
        CHECK_EQ_INT(changed, nm / 2);
        free(after), free(lp), free(base);
        uf_tensor_free(&t0);
        fx_free(&f);
    }
    /* without theta_0 both refuse with a reason, at init (before training) */
    struct fx f;
    fx_init(&f, 1);
    CHECK(uf_method_find("safelora")->init(NULL, &f.tr) != 0 && strstr(uf_error(), "theta_0"));
    CHECK(uf_method_find("safemerge")->init(NULL, &f.tr) != 0 && strstr(uf_error(), "theta_0"));
    fx_free(&f);
    /* SafeMERGE without a safety LoRA refuses at init (it does not merge with the run's start) */
    float *lp, *base;
    struct uf_tensor t0;
    lora_fixture(&f, &lp, &base, &t0);
    struct uf_method sm = {.ops = uf_method_find("safemerge"), .cfg = NULL, .slot = 1};
    CHECK(sm.ops->init(&sm, &f.tr) != 0 && strstr(uf_error(), "safety_lora"));
    free(lp), free(base);
    uf_tensor_free(&t0);
    fx_free(&f);
}

/* ---- TokenSel (TOSS) ------------------------------------------------------------------------ */
/* theta* (the fixture's start weights) fine-tuned by the real loop (uf_trainer_run, no method,
 * constant lr, no clip) for `steps` steps on data, with the fixture's batch shape and seed: what
 * tokensel's references must be. Params into out. */
static void tokensel_reference(const struct uf_dataset *data, int steps, float lr, float *out) {
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &cfg, 1, 0) == 0);
    struct uf_train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lr = lr, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
    hp.batch = 2, hp.micro_batch = 2, hp.max_len = T, hp.seed = 5, hp.steps = steps;
    struct uf_trainer tr;
    uf_trainer_init(&tr, &dev, &m, &tok, "plain", &hp, data);
    CHECK_MSG(uf_trainer_run(&tr, NULL, "reference") == 0, "%s", uf_error());
    uf_model_save_params(&m, out);
    uf_trainer_free(&tr);
    uf_model_free(&m);
}

/* per target position of b: the reference model's CE under params where b's mask is set */
static void ref_token_ce(const float *params, const struct uf_train_batch *b, const float *mask, double *ce) {
    int64_t N = (int64_t)b->B * b->T;
    float *z = uf_malloc((size_t)N * V * sizeof *z);
    ref_fwd(params, b, z, NULL);
    for (int64_t n = 0; n < N; n++) {
        ce[n] = 0;
        if (mask[n] == 0) continue;
        const float *zn = z + n * V;
        double mx = zn[0], se = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, zn[v]);
        for (int v = 0; v < V; v++) se += exp(zn[v] - mx);
        ce[n] = mx + log(se) - zn[b->targets[n]];
    }
    free(z);
}

/* The weights tokensel puts on the user rows' response tokens (its batch hook on one batch of
 * every user row) against the scores s = CE_util - CE_deg computed here: both references trained
 * by the real loop, their CE by the plain-C reference model. weight mode: w = 1 - (s - s_min) /
 * (s_max - s_min); drop mode: exactly round(drop N) tokens at 0, the highest s, and the CE's
 * denominator less them; drop = 0 leaves the batch as it was; the model is theta* after init. */
static void test_tokensel(void) {
    int64_t P = uf_model_param_numel(&cfg);
    float *deg = uf_malloc((size_t)P * 4), *util = uf_malloc((size_t)P * 4), *now = uf_malloc((size_t)P * 4);
    tokensel_reference(&ds_safe, 3, 1e-2f, deg);
    tokensel_reference(&ds_user, 3, 1e-2f, util);
    /* (utility null: the user rows; method_cfg gives every dataset key the safety rows) */
    const char *cfgs[3] = {"{\"harmful\":\"safe\",\"utility\":null,\"ref_steps\":3,\"mode\":\"weight\"}",
                           "{\"harmful\":\"safe\",\"utility\":null,\"ref_steps\":3,\"drop\":0.25}",
                           "{\"harmful\":\"safe\",\"utility\":null,\"ref_steps\":3,\"drop\":0}"};
    for (int c = 0; c < 3; c++) {
        struct fx f;
        fx_init(&f, 0);
        struct uf_method *m = fx_add(&f, "tokensel", cfgs[c]);
        uf_model_save_params(&f.model, now);
        CHECK_MSG(memcmp(now, f.theta, (size_t)P * 4) == 0, "tokensel init left the weights changed (%s)", cfgs[c]);
        int64_t rows[5] = {0, 1, 2, 3, 4};
        struct uf_train_batch b;
        CHECK(uf_trainer_make_batch(&f.tr, &ds_user, rows, 5, &b) == 0);
        int64_t N = (int64_t)b.B * b.T, n0 = b.n_masked;
        float *mask0 = uf_malloc((size_t)N * sizeof *mask0);
        memcpy(mask0, b.mask, (size_t)N * sizeof *mask0);
        CHECK_MSG(m->ops->batch(m, &f.tr, &b) == 0, "%s", uf_error());
        double *cd = uf_malloc((size_t)N * sizeof *cd), *cu = uf_malloc((size_t)N * sizeof *cu);
        ref_token_ce(deg, &b, mask0, cd);
        ref_token_ce(util, &b, mask0, cu);
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t n = 0; n < N; n++)
            if (mask0[n] != 0) lo = fmin(lo, cu[n] - cd[n]), hi = fmax(hi, cu[n] - cd[n]);
        CHECK_MSG(hi - lo > 1e-2, "tokensel: scores span only %.3g (references not trained?)", hi - lo);
        if (c == 0) { /* weight mode */
            double err = 0;
            for (int64_t n = 0; n < N; n++) {
                double want = mask0[n] != 0 ? 1 - (cu[n] - cd[n] - lo) / (hi - lo) : 0;
                err = fmax(err, fabs(b.mask[n] - want));
                if (getenv("TS_DEBUG") && mask0[n] != 0) fprintf(stderr, "n %lld w %g want %g cu %g cd %g\n", (long long)n, b.mask[n], want, cu[n], cd[n]);
            }
            CHECK_MSG(err < 1e-3, "tokensel weight mode: max error %.3g against the reference scores", err);
            CHECK(b.n_masked == n0);
        } else if (c == 1) { /* drop 0.25 */
            int64_t k = llround(0.25 * (double)n0), zeros = 0;
            double min_dropped = INFINITY, max_kept = -INFINITY;
            for (int64_t n = 0; n < N; n++) {
                if (mask0[n] == 0) {
                    CHECK(b.mask[n] == 0);
                    continue;
                }
                CHECK(b.mask[n] == 0 || b.mask[n] == 1);
                double s = cu[n] - cd[n];
                if (b.mask[n] == 0) zeros++, min_dropped = fmin(min_dropped, s);
                else max_kept = fmax(max_kept, s);
            }
            CHECK_MSG(k > 0 && zeros == k && b.n_masked == n0 - k, "tokensel drop 0.25 of %lld: %lld dropped, "
                      "n_masked %lld", (long long)n0, (long long)zeros, (long long)b.n_masked);
            CHECK_MSG(min_dropped >= max_kept - 1e-4, "tokensel dropped a score %.5g below a kept %.5g",
                      min_dropped, max_kept);
        } else { /* drop 0: the batch as it was */
            CHECK(memcmp(b.mask, mask0, (size_t)N * sizeof *mask0) == 0 && b.n_masked == n0);
        }
        /* rows of another dataset (Lisa's alignment rows) are left alone */
        struct uf_train_batch o;
        CHECK(uf_trainer_make_batch(&f.tr, &ds_safe, rows, 4, &o) == 0);
        float *om = uf_malloc((size_t)o.B * o.T * sizeof *om);
        memcpy(om, o.mask, (size_t)o.B * o.T * sizeof *om);
        CHECK(m->ops->batch(m, &f.tr, &o) == 0 && memcmp(om, o.mask, (size_t)o.B * o.T * sizeof *om) == 0);
        free(om);
        uf_train_batch_free(&o);
        free(cd), free(cu), free(mask0);
        uf_train_batch_free(&b);
        fx_free(&f);
    }
    free(deg), free(util), free(now);
}

/* ---- SafeInstr ---------------------------------------------------------------------------------- */
static void test_safeinstr(void) {
    struct fx f;
    fx_init(&f, 0);
    fx_add(&f, "safeinstr", "{\"data\":\"safe\",\"ratio\":0.4}"); /* round(0.4 * 5) = 2 */
    CHECK_EQ_INT(f.tr.data->n, 7);
    int safety = 0;
    for (int64_t i = 0; i < f.tr.data->n; i++) safety += f.tr.data->rows[i].kind == UF_KIND_HARMFUL;
    CHECK_EQ_INT(safety, 2);
    fx_free(&f);
}

/* ---- the real loop: plain fine-tuning reproduced bit for bit -------------------------------- */
/* Trains 6 steps (batch 2 in micro-batches of 1) with the methods of `list` (JSON, "safe" /
 * "user" replaced by dataset nodes; NULL = none) through uf_trainer_run; final params into out. */
static struct uf_tensor *loop_theta0; /* set: the run knows theta_0 */
static int loop_lora;
static int loop_clip_on, loop_steps = 6;   /* hp.clip_on; steps */
static float loop_clip = 1.0f;             /* hp.clip */
static double loop_share;                  /* out: tr.clip_share */
static float *loop_grads;                  /* out when set: the last step's final gradient */
static void run_loop(const char *list, float *out, int64_t *data_rows) {
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &cfg, 1, 0) == 0);
    if (loop_lora) {
        struct uf_lora_config lc = {.rank = 2, .alpha = 4, .dropout = 0.1f, .targets = UF_LORA_ALL};
        CHECK(uf_model_lora_init(&m, &lc, 3) == 0);
    }
    struct uf_train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lr = 1e-2f, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f, hp.clip = loop_clip;
    hp.batch = 2, hp.micro_batch = 1, hp.max_len = T, hp.seed = 5, hp.steps = loop_steps;
    hp.clip_on = loop_clip_on;
    struct uf_trainer tr;
    uf_trainer_init(&tr, &dev, &m, &tok, "plain", &hp, &ds_user);
    tr.theta0 = loop_theta0;
    cJSON *given = cJSON_Parse(list ? list : "[]"), *l = cJSON_CreateArray();
    CHECK(given != NULL);
    const cJSON *it;
    cJSON_ArrayForEach(it, given) { /* each method's full table: the schema's defaults, then these keys */
        char *one = cJSON_PrintUnformatted(it);
        cJSON_AddItemToArray(l, method_cfg(cJSON_GetObjectItem(it, "type")->valuestring, one));
        free(one);
    }
    cJSON_Delete(given);
    cJSON_ArrayForEach(it, l) {
        const struct uf_method_ops *ops = uf_method_find(cJSON_GetObjectItem(it, "type")->valuestring);
        CHECK(ops != NULL && uf_trainer_add_method(&tr, ops, it) == 0);
    }
    CHECK_MSG(uf_trainer_run(&tr, NULL, "test") == 0, "%s", uf_error());
    if (data_rows) *data_rows = tr.data->n;
    loop_share = tr.clip_share;
    if (loop_grads) uf_tensor_download(uf_model_train_grads(&m), loop_grads);
    uf_model_save_params(&m, out);
    uf_trainer_free(&tr);
    cJSON_Delete(l);
    uf_model_free(&m);
}

static void test_bit_identical(void) {
    int64_t P = uf_model_param_numel(&cfg);
    float *a = uf_malloc((size_t)P * 4), *b = uf_malloc((size_t)P * 4), *c = uf_malloc((size_t)P * 4);
    char dir[] = "/tmp/uf_test_methods_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("UNFORGET_CACHE_DIR", dir, 1);
    run_loop(NULL, a, NULL);
    run_loop("[{\"type\":\"der\",\"buffer\":\"safe\",\"alpha\":0},"
             "{\"type\":\"ewc\",\"data\":\"safe\",\"samples\":2,\"lambda\":0}]", b, NULL);
    CHECK_MSG(memcmp(a, b, (size_t)P * 4) == 0, "DER alpha=0 + EWC lambda=0 differs from plain fine-tuning");
    run_loop("[{\"type\":\"refresh\",\"buffer\":\"safe\",\"alpha\":0,\"beta\":0,\"delta\":0}]", c, NULL);
    CHECK_MSG(memcmp(a, c, (size_t)P * 4) == 0, "Refresh with nothing to do differs from plain fine-tuning");
    run_loop("[{\"type\":\"der\",\"buffer\":\"safe\",\"alpha\":0.5}]", c, NULL);
    CHECK(memcmp(a, c, (size_t)P * 4) != 0); /* and a method that does something changes the result */
    float *start = uf_malloc((size_t)P * 4);
    struct uf_model m0;
    CHECK(uf_model_init(&m0, &dev, &cfg, 1, 0) == 0);
    uf_model_save_params(&m0, start);
    uf_model_free(&m0);
    int moved = 0;
    for (int64_t i = 0; i < P; i++) moved += a[i] != start[i];
    CHECK(moved > P / 2); /* the runs did train */
    /* merges through the loop use the START weights as theta_safe: linear a = 0 gives them back,
     * a = 1 the plain fine-tuned weights, bit for bit */
    run_loop("[{\"type\":\"linear\",\"a\":0}]", c, NULL);
    CHECK_MSG(memcmp(c, start, (size_t)P * 4) == 0, "linear a=0 through the loop is not theta_safe");
    run_loop("[{\"type\":\"linear\",\"a\":1}]", c, NULL);
    CHECK_MSG(memcmp(c, a, (size_t)P * 4) == 0, "linear a=1 through the loop is not theta_ft");
    /* EMA through the loop: decay 0 is plain fine-tuning, decay 1 the start weights, bit for bit */
    run_loop("[{\"type\":\"ema\",\"decay\":0}]", c, NULL);
    CHECK_MSG(memcmp(c, a, (size_t)P * 4) == 0, "ema decay=0 through the loop is not plain fine-tuning");
    run_loop("[{\"type\":\"ema\",\"decay\":1}]", c, NULL);
    CHECK_MSG(memcmp(c, start, (size_t)P * 4) == 0, "ema decay=1 through the loop is not theta*");
    run_loop("[{\"type\":\"ema\",\"decay\":0.5}]", c, NULL);
    CHECK(memcmp(c, a, (size_t)P * 4) != 0 && memcmp(c, start, (size_t)P * 4) != 0);
    /* TokenSel: drop = 0 is plain fine-tuning bit for bit (its references trained and undone in
     * init); dropping tokens changes the result */
    run_loop("[{\"type\":\"tokensel\",\"harmful\":\"safe\",\"ref_steps\":2,\"drop\":0}]", c, NULL);
    CHECK_MSG(memcmp(c, a, (size_t)P * 4) == 0, "tokensel drop=0 through the loop is not plain fine-tuning");
    run_loop("[{\"type\":\"tokensel\",\"harmful\":\"safe\",\"ref_steps\":2,\"drop\":0.5}]", c, NULL);
    CHECK(memcmp(c, a, (size_t)P * 4) != 0);
    /* every method through the real loop (SafeInstr changes tr->data: freed correctly) */
    int64_t rows = 0;
    run_loop("[{\"type\":\"safeinstr\",\"data\":\"safe\",\"ratio\":0.4},{\"type\":\"lisa\",\"data\":\"safe\","
             "\"align_steps\":2,\"user_steps\":2},{\"type\":\"lwf\",\"beta\":1},{\"type\":\"agem\",\"buffer\":\"safe\"},"
             "{\"type\":\"l2sp\"},{\"type\":\"magmax\"}]", c, &rows);
    CHECK_EQ_INT(rows, 7);
    run_loop("[{\"type\":\"refresh\",\"buffer\":\"safe\"},{\"type\":\"ewc\",\"data\":\"safe\",\"samples\":2},"
             "{\"type\":\"ties\"}]", c, NULL);
    run_loop("[{\"type\":\"derpp\",\"buffer\":\"safe\",\"topk\":3},{\"type\":\"er\",\"buffer\":\"safe\"},"
             "{\"type\":\"linear\"}]", c, NULL);
    run_loop("[{\"type\":\"der\",\"buffer\":\"safe\"},{\"type\":\"safegrad\",\"data\":\"safe\",\"every\":2},"
             "{\"type\":\"ema\",\"decay\":0.9}]", c, NULL);
    for (int64_t i = 0; i < P; i++) CHECK(isfinite(c[i]));
    /* under LoRA: replay, penalties and A-GEM on the adapters, SafeLoRA with a known theta_0,
     * and a merge (the adapters folded into the base) */
    struct uf_tensor t0;
    uf_tensor_init(&t0, &dev, "theta0", UF_F32, 1, (int64_t[]){P});
    for (int64_t i = 0; i < P; i++) b[i] = start[i] * 0.9f;
    uf_tensor_upload(&t0, b);
    loop_theta0 = &t0, loop_lora = 1;
    run_loop("[{\"type\":\"der\",\"buffer\":\"safe\"},{\"type\":\"ewc\",\"data\":\"safe\",\"samples\":2},"
             "{\"type\":\"lwf\"},{\"type\":\"agem\",\"buffer\":\"safe\"},{\"type\":\"safelora\",\"tau\":0.9}]", c, NULL);
    CHECK(memcmp(c, start, (size_t)P * 4) == 0); /* the base is untouched (SafeLoRA edits B only) */
    run_loop("[{\"type\":\"safegrad\",\"data\":\"safe\"},{\"type\":\"ema\"}]", c, NULL);
    CHECK(memcmp(c, start, (size_t)P * 4) == 0); /* SafeGrad and EMA on the adapters only */
    /* TokenSel under LoRA with dropout: drop = 0 leaves the last step's adapter gradient as plain
     * LoRA fine-tuning's, bit for bit (the dropout stream is restored after the references) */
    {
        int64_t nl = uf_lora_numel(&cfg, 2, UF_LORA_ALL);
        float *g0 = uf_malloc((size_t)P * 4), *g1 = uf_malloc((size_t)P * 4);
        loop_grads = g0, run_loop(NULL, c, NULL);
        loop_grads = g1, run_loop("[{\"type\":\"tokensel\",\"harmful\":\"safe\",\"ref_steps\":2,\"drop\":0}]", c, NULL);
        loop_grads = NULL;
        CHECK_MSG(memcmp(g0, g1, (size_t)nl * 4) == 0, "tokensel drop=0 under LoRA is not plain LoRA fine-tuning");
        free(g0), free(g1);
    }
    run_loop("[{\"type\":\"derpp\",\"buffer\":\"safe\"},{\"type\":\"task_arith\",\"lambda_user\":0.5}]", c, NULL);
    int changed = 0;
    for (int64_t i = 0; i < P; i++) {
        changed += c[i] != start[i];
        CHECK(isfinite(c[i]));
    }
    CHECK(changed > 0); /* merged: half the adapters' update is in the base now */
    loop_theta0 = NULL, loop_lora = 0;
    uf_tensor_free(&t0);
    char *rm = uf_sprintf("rm -rf %s", dir);
    CHECK(system(rm) == 0);
    free(rm);
    unsetenv("UNFORGET_CACHE_DIR");
    free(a), free(b), free(c), free(start);
}

/* ---- clip_on = "task" | "total" ------------------------------------------------------------- */
static void test_clip_on(void) {
    int64_t P = uf_model_param_numel(&cfg);
    float *a = uf_malloc((size_t)P * 4), *b = uf_malloc((size_t)P * 4);
    /* without methods the task gradient is the whole gradient: "task" = "total" bit for bit */
    loop_clip = 0.05f; /* clips most steps */
    run_loop(NULL, a, NULL);
    double share_total = loop_share;
    loop_clip_on = 1;
    run_loop(NULL, b, NULL);
    CHECK_MSG(memcmp(a, b, (size_t)P * 4) == 0, "clip_on task without methods differs from total");
    CHECK_MSG(loop_share == share_total && share_total > 0, "clip shares %g %g", loop_share, share_total);
    /* shares at the extremes: every step / no step clipped; clip 0: none */
    loop_clip = 1e-7f;
    run_loop(NULL, b, NULL);
    CHECK_NEAR(loop_share, 1.0, 0);
    loop_clip = 1e9f;
    run_loop(NULL, b, NULL);
    CHECK_NEAR(loop_share, 0.0, 0);
    loop_clip = 0;
    run_loop(NULL, b, NULL);
    CHECK(isnan(loop_share));
    /* "task" with ER (a gradient already at the start weights): one step's final gradient is
     * clip(g_task) + g_er, with g_task (no method) and g_task + g_er (ER) from unclipped runs */
    float *g_task = uf_malloc((size_t)P * 4), *g_sum = uf_malloc((size_t)P * 4), *g = uf_malloc((size_t)P * 4);
    const char *er = "[{\"type\":\"er\",\"buffer\":\"safe\",\"weight\":2}]";
    loop_steps = 1, loop_clip_on = 0, loop_clip = 0;
    loop_grads = g_task, run_loop(NULL, b, NULL);
    loop_grads = g_sum, run_loop(er, b, NULL);
    double nt = 0, ne = 0;
    for (int64_t i = 0; i < P; i++) nt += (double)g_task[i] * g_task[i], ne += ((double)g_sum[i] - g_task[i]) * (g_sum[i] - g_task[i]);
    CHECK(ne > 0);
    loop_clip = (float)(0.3 * sqrt(nt)), loop_clip_on = 1;
    loop_grads = g, run_loop(er, b, NULL);
    float c = uf_ref_clip_factor((float)nt, loop_clip);
    CHECK(c < 0.31f && c > 0.29f);
    for (int64_t i = 0; i < P; i++) a[i] = c * g_task[i] + (g_sum[i] - g_task[i]);
    CHECK_MSG(rel_err(g, a, P) < 1e-5, "clip_on task: %.3g from clip(g_task) + g_er", rel_err(g, a, P));
    CHECK_NEAR(loop_share, 1.0, 0);
    /* and "total" leaves the gradient whole (AdamW clips it): g = g_task + g_er */
    loop_clip_on = 0;
    run_loop(er, b, NULL);
    CHECK_MSG(rel_err(g, g_sum, P) < 1e-6, "clip_on total changed the gradient: %.3g", rel_err(g, g_sum, P));
    loop_grads = NULL, loop_steps = 6, loop_clip = 1.0f, loop_clip_on = 0;
    free(a), free(b), free(g_task), free(g_sum), free(g);
    /* Refresh recomputes the step's gradient: it refuses clip_on = "task" */
    struct fx f;
    fx_init(&f, 0);
    f.tr.hp.clip = 1.0f, f.tr.hp.clip_on = 1;
    cJSON *rc = cJSON_Parse("{\"type\":\"refresh\"}");
    struct uf_method rm = {.ops = uf_method_find("refresh"), .cfg = rc, .slot = 1};
    CHECK(rm.ops->init(&rm, &f.tr) != 0 && strstr(uf_error(), "clip_on"));
    if (rm.ops->free) rm.ops->free(&rm);
    cJSON_Delete(rc);
    fx_free(&f);
}

/* Refresh: F = the mean over the Fisher rows of squared per-example gradients of the summed CE
 * (reference model), and the unlearning step(s) equal to the plain-C reference per tensor
 * (uf_clmath_ref_refresh_step with that F and the noise keyed by (seed, step, j)):
 *   theta_k += delta / (1 + c F_k) (||theta_k|| / ||g_k|| g_k + sigma xi_k);
 * variants: no noise; noise; F normalised with two unlearning steps (the second at the reference
 * gradient of the first step's weights). Then the relearn gradient is the reference gradient at
 * the unlearned weights. */
static void test_refresh_unlearn(void) {
    char dir[] = "/tmp/uf_test_methods_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("UNFORGET_CACHE_DIR", dir, 1);
    const char *cases[3] = {
        "{\"buffer\":\"safe\",\"data\":\"safe\",\"samples\":3,\"alpha\":0,\"beta\":0,\"delta\":0.02,\"noise\":0}",
        "{\"buffer\":\"safe\",\"data\":\"safe\",\"samples\":3,\"alpha\":0,\"beta\":0,\"delta\":0.02,\"noise\":0.5}",
        ("{\"buffer\":\"safe\",\"data\":\"safe\",\"samples\":3,\"alpha\":0,\"beta\":0,\"delta\":0.01,\"noise\":0.3,"
         "\"normalize\":true,\"unlearn_steps\":2}")};
    for (int c = 0; c < 3; c++) {
        struct fx f;
        fx_init(&f, 0);
        struct uf_method *m = fx_add(&f, "refresh", cases[c]);
        int64_t P = f.P;
        float *Fr = uf_calloc((size_t)P, 4), *gk = uf_malloc((size_t)P * 4), *g = uf_malloc((size_t)P * 4);
        float *p = uf_malloc((size_t)P * 4), *want = uf_malloc((size_t)P * 4);
        /* the reference Fisher: refresh.c's seeded choice of 3 safety rows */
        int64_t rows[3];
        uf_sample_indices(ds_safe.n, 3, f.tr.hp.seed ^ 0x52465348ull, 0, rows, NULL);
        for (int s = 0; s < 3; s++) {
            struct uf_train_batch b;
            CHECK(uf_trainer_make_batch(&f.tr, &ds_safe, rows + s, 1, &b) == 0);
            struct uf_ref_batch rb = {b.B, b.T, b.tokens, b.targets, b.mask, b.lengths};
            struct uf_ref_result res = {0};
            res.grad = gk;
            CHECK(uf_ref_model_run(&cfg, f.theta, NULL, &rb, NULL, NULL, &res) == 0);
            for (int64_t i = 0; i < P; i++) { /* the token mean's gradient times the tokens: the sum's */
                double gs = (double)gk[i] * (double)b.n_masked;
                Fr[i] += (float)(gs * gs / 3.0);
            }
            uf_train_batch_free(&b);
        }
        double mean = 0;
        for (int64_t i = 0; i < P; i++) mean += Fr[i];
        mean /= (double)P;
        if (c == 2)
            for (int64_t i = 0; i < P; i++) Fr[i] = (float)(Fr[i] / mean);
        /* c F of order 1 where F is large: the Fisher shapes the step */
        double cscale = c == 2 ? 3.0 : 3.0 / mean;
        cJSON_ReplaceItemInObject((cJSON *)m->cfg, "fisher_scale", cJSON_CreateNumber(cscale));
        /* one step's task batch, through the hooks as the loop calls them */
        f.tr.step = 4;
        uf_model_zero_grad(&f.model);
        struct uf_train_batch b;
        CHECK(uf_trainer_make_batch(&f.tr, &ds_user, (int64_t[]){1, 2}, 2, &b) == 0);
        struct uf_model_batch mb;
        uf_mbatch(&b, 1, &mb);
        CHECK(uf_model_forward(&f.model, &mb) == 0);
        CHECK(m->ops->task_loss(m, &f.tr, &b) == 0);
        CHECK(uf_model_backward(&f.model) == 0);
        read_grads(&f, g);
        CHECK(m->ops->extra(m, &f.tr) == 0);
        uf_model_save_params(&f.model, p);
        /* the reference: each unlearning step over every parameter tensor */
        memcpy(want, f.theta, (size_t)P * 4);
        double delta = key_or(m, "delta", 0), sigma = key_or(m, "noise", 0);
        struct uf_ref_batch rb = {b.B, b.T, b.tokens, b.targets, b.mask, b.lengths};
        int steps = c == 2 ? 2 : 1;
        for (int j = 0; j < steps; j++) {
            if (j > 0) { /* the task gradient at the weights of the first step */
                struct uf_ref_result res = {0};
                res.grad = g;
                CHECK(uf_ref_model_run(&cfg, want, NULL, &rb, NULL, NULL, &res) == 0);
            }
            uint64_t key[3] = {f.tr.hp.seed, 4, (uint64_t)j};
            uint64_t seed = uf_hash64(key, sizeof key, uf_hash_str("refresh-noise", UF_HASH_SEED));
            for (int k = 0; k < f.model.n_params; k++) {
                size_t o = f.model.pv[k].offset, n = (size_t)f.model.pv[k].numel;
                uf_clmath_ref_refresh_step(want + o, g + o, Fr + o, n, (float)delta, (float)cscale, (float)sigma, seed, o);
            }
        }
        double err = 0, mx = 0, nofisher = 0;
        for (int64_t i = 0; i < P; i++) err = fmax(err, fabs(p[i] - want[i])), mx = fmax(mx, fabs(want[i] - f.theta[i]));
        CHECK_MSG(mx > 0 && err <= 1e-5 * mx, "refresh case %d: max err %.3g (step size %.3g)", c, err, mx);
        if (c == 0) { /* the Fisher matters: without it (F = 0) the step differs by far more than err */
            memcpy(p, f.theta, (size_t)P * 4);
            float *z = uf_calloc((size_t)P, 4);
            uint64_t key[3] = {f.tr.hp.seed, 4, 0};
            for (int k = 0; k < f.model.n_params; k++) {
                size_t o = f.model.pv[k].offset;
                uf_clmath_ref_refresh_step(p + o, g + o, z + o, (size_t)f.model.pv[k].numel, (float)delta, 0, 0,
                                           uf_hash64(key, sizeof key, UF_HASH_SEED), o);
            }
            for (int64_t i = 0; i < P; i++) nofisher = fmax(nofisher, fabs(p[i] - want[i]));
            CHECK_MSG(nofisher > 100 * err, "F = 0 differs by %.3g only (err %.3g)", nofisher, err);
            free(z);
        }
        /* the relearn gradient: the reference at the unlearned weights */
        float *gr = uf_malloc((size_t)P * 4), *gd = uf_malloc((size_t)P * 4);
        uf_model_save_params(&f.model, p);
        struct uf_ref_result res = {0};
        res.grad = gr;
        CHECK(uf_ref_model_run(&cfg, p, NULL, &rb, NULL, NULL, &res) == 0);
        read_grads(&f, gd);
        CHECK_MSG(rel_err(gd, gr, P) < 5e-5, "relearn gradient vs reference: %.3g", rel_err(gd, gr, P));
        free(gr), free(gd), free(Fr), free(gk), free(g), free(p), free(want);
        uf_train_batch_free(&b);
        fx_free(&f);
    }
    char *rm = uf_sprintf("rm -rf %s", dir);
    CHECK(system(rm) == 0);
    free(rm);
    unsetenv("UNFORGET_CACHE_DIR");
}

/* ---- composition ------------------------------------------------------------------------------ */
static void test_composition(void) {
    char dir[] = "/tmp/uf_test_methods_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("UNFORGET_CACHE_DIR", dir, 1);
    const char *names[3] = {"der", "ewc", "l2sp"};
    const char *jsons[3] = {"{\"buffer\":\"safe\",\"alpha\":0.5}", "{\"data\":\"safe\",\"samples\":2,\"lambda\":30}", "{\"lambda\":0.2}"};
    struct fx f;
    fx_init(&f, 0);
    int64_t P = f.P;
    perturb(&f.model, 9, 0.01f); /* away from the anchor so the penalties are not 0 */
    float *sum = uf_calloc((size_t)P, 4), *g = uf_malloc((size_t)P * 4), *all = uf_malloc((size_t)P * 4);
    for (int k = 0; k < 3; k++) fx_add(&f, names[k], jsons[k]);
    float terms_alone[3];
    for (int k = 0; k < 3; k++) { /* each alone */
        struct uf_method *m = &f.meth[k];
        uf_rng_init(&f.tr.rng, 61);
        uf_tensor_fill(&f.tr.terms, 0.0f);
        uf_model_zero_grad(&f.model);
        if (m->ops->extra) CHECK(m->ops->extra(m, &f.tr) == 0);
        if (m->ops->grad) CHECK(m->ops->grad(m, &f.tr) == 0);
        read_grads(&f, g);
        for (int64_t i = 0; i < P; i++) sum[i] += g[i];
        terms_alone[k] = read_term(&f, m->slot);
    }
    uf_rng_init(&f.tr.rng, 61);
    uf_tensor_fill(&f.tr.terms, 0.0f);
    uf_model_zero_grad(&f.model);
    for (int k = 0; k < 3; k++)
        if (f.meth[k].ops->extra) CHECK(f.meth[k].ops->extra(&f.meth[k], &f.tr) == 0);
    for (int k = 0; k < 3; k++)
        if (f.meth[k].ops->grad) CHECK(f.meth[k].ops->grad(&f.meth[k], &f.tr) == 0);
    read_grads(&f, all);
    CHECK_MSG(rel_err(all, sum, P) < 1e-5, "composed gradient vs sum of each: %.3g", rel_err(all, sum, P));
    for (int k = 0; k < 3; k++) {
        CHECK(terms_alone[k] > 0);
        CHECK_NEAR(read_term(&f, k + 1), terms_alone[k], 1e-6 * terms_alone[k]); /* each in its own slot */
    }
    char *rm = uf_sprintf("rm -rf %s", dir);
    CHECK(system(rm) == 0);
    free(rm);
    unsetenv("UNFORGET_CACHE_DIR");
    free(sum), free(g), free(all);
    fx_free(&f);
}


/* A multi-turn chat row (data.h's "messages" field) trains on every assistant turn: the batch is
 * the template's rendering of the whole conversation, with the targets of both answers masked. */
static void test_multi_turn_row(void) {
    struct fx f;
    fx_init(&f, 0);
    struct uf_dataset d;
    uf_dataset_init(&d, "chat");
    const char *conv = "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"},"
                       "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]";
    struct uf_example *ex = uf_dataset_push(&d, "c", "d", NULL, "task", NULL, UF_KIND_TASK);
    uf_example_set_field(ex, "messages", conv);
    struct uf_chat_msg *m;
    int nm;
    CHECK(uf_chat_msgs_parse(conv, &m, &nm) == 0);
    struct uf_chat_tokens ct;
    CHECK(uf_template_render_chat(&tok, UF_TMPL_LLAMA2, m, nm, 0, &ct) == 0);
    uf_chat_msgs_free(m, nm);
    struct uf_train_batch b;
    f.tr.template_name = "llama-2"; /* shorter than plain's markup: fits in T */
    CHECK(uf_trainer_make_batch(&f.tr, &d, (int64_t[]){0}, 1, &b) == 0);
    int len = ct.n - 1 < T ? ct.n - 1 : T; /* the batch keeps the first T + 1 tokens */
    int same = b.lengths[0] == len, answers = 0;
    for (int t = 0; same && t < len; t++) {
        same = b.tokens[t] == ct.ids[t] && b.targets[t] == ct.ids[t + 1] &&
               (b.mask[t] != 0) == (ct.mask[t + 1] != 0);
        answers += t > 0 && b.mask[t] != 0 && b.mask[t - 1] == 0; /* starts of masked runs */
    }
    CHECK_MSG(same, "batch (%d tokens) != rendering (%d tokens)", b.lengths[0], ct.n);
    CHECK_EQ_INT(answers, 2);
    uf_chat_tokens_free(&ct);
    uf_train_batch_free(&b);
    uf_dataset_free(&d);
    fx_free(&f);
}

/* ---- memory plan: each method's device state (traits) == what its hooks allocate --------------- */
/* For full fine-tuning, LoRA, and LoRA over a bf16 base: the device bytes a method holds after its
 * init hook, plus what its finish hook adds at its peak, against the plan's method state
 * (uf_methods_memplan + uf_memplan_compute). The model's activations are reserved first at the
 * plan's micro_batch x max_len, so a hook's forward passes add none. */
static void test_memplan_state(void) {
    char dir[] = "/tmp/uf_test_methods_plan_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    setenv("UNFORGET_CACHE_DIR", dir, 1);
    for (int variant = 0; variant < 3; variant++) {
        int lora = variant > 0, bf16 = variant == 2;
        for (int i = 0; uf_method_registry[i]; i++)
            for (int alt = 0; alt < 2; alt++) {
                /* alt: the variants with other state, EWC's merged Fisher (LoRA), LwF on hidden states */
                const struct uf_method_ops *ops = uf_method_registry[i];
                int ewc = ops == uf_method_find("ewc"), lwf = ops == uf_method_find("lwf");
                if (alt && !((ewc && lora) || lwf)) continue;
                if ((ops->needs_lora && !lora) || (ops->needs_f32_base && bf16)) continue;
                struct uf_model m;
                CHECK(uf_model_init(&m, &dev, &cfg, 1, bf16 ? UF_MODEL_BF16_BASE : 0) == 0);
                struct uf_lora_config lc = {.rank = 2, .alpha = 4, .dropout = 0, .targets = UF_LORA_ALL};
                if (lora) CHECK(uf_model_lora_init(&m, &lc, 3) == 0);
                struct uf_tensor theta0;
                uf_tensor_init(&theta0, &dev, "theta0", UF_F32, 1, (int64_t[]){m.numel});
                if (bf16) uf_tensor_fill(&theta0, 0.0f); /* (only methods with an f32 base read it) */
                else uf_tensor_copy(&theta0, &m.params);
                struct uf_train_hparams hp;
                memset(&hp, 0, sizeof hp);
                hp.lr = 1e-2f, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f;
                hp.batch = 2, hp.micro_batch = 2, hp.max_len = T, hp.seed = 5, hp.steps = 1;
                struct uf_trainer tr;
                uf_trainer_init(&tr, &dev, &m, &tok, "plain", &hp, &ds_user);
                tr.theta0 = &theta0;
                /* reserve the activations at micro_batch x max_len rows */
                int32_t ids[2 * T], tg[2 * T];
                for (int k = 0; k < 2 * T; k++) ids[k] = k % V, tg[k] = (k * 3) % V;
                struct uf_model_batch bt = {2, T, ids, tg, NULL, NULL, 0};
                CHECK(uf_model_forward(&m, &bt) == 0 && uf_model_backward(&m) == 0);
                char sjs[160] = "{}";
                if (ewc) snprintf(sjs, sizeof sjs, alt ? "{\"samples\":2,\"space\":\"merged\"}" : "{\"samples\":2}");
                if (lwf && alt) snprintf(sjs, sizeof sjs, "{\"target\":\"hidden\"}");
                if (ops == uf_method_find("tokensel")) snprintf(sjs, sizeof sjs, "{\"ref_steps\":2}");
                if (ops == uf_method_find("safemerge")) {
                    static char sdir[] = "/tmp/uf_test_plan_safety_XXXXXX";
                    static int made;
                    if (!made) { /* a safety LoRA in PEFT layout, zeros (only its memory matters here) */
                        CHECK(mkdtemp(sdir) != NULL);
                        float *z = uf_calloc((size_t)uf_ref_lora_numel(&cfg, 2, UF_LORA_ALL), 4);
                        CHECK(uf_hf_lora_save(sdir, &cfg, 2, 4.0f, UF_LORA_ALL, z, NULL) == 0);
                        free(z);
                        made = 1;
                    }
                    snprintf(sjs, sizeof sjs, "{\"safety_lora\":\"%s\"}", sdir);
                }
                cJSON *c = method_cfg(ops->name, sjs);
                size_t live0 = dev.bytes_live;
                CHECK(uf_trainer_add_method(&tr, ops, c) == 0);
                struct uf_method *me = &tr.methods[0];
                if (ops->init) CHECK_MSG(ops->init(me, &tr) == 0, "%s init: %s", ops->name, uf_error());
                size_t held = dev.bytes_live - live0;
                dev.bytes_peak = dev.bytes_live;
                if (ops->finish) CHECK_MSG(ops->finish(me, &tr) == 0, "%s finish: %s", ops->name, uf_error());
                size_t at_finish = dev.bytes_peak - (live0 + held);
                struct uf_memplan_in in;
                memset(&in, 0, sizeof in);
                in.cfg = cfg;
                in.lora_rank = lora ? lc.rank : 0;
                in.lora_targets = lc.targets;
                in.bf16_base = bf16;
                in.micro_batch = 2, in.max_len = T;
                struct uf_plan_method pm = {.type = ops->name, .cfg = c};
                struct uf_memplan p;
                CHECK(uf_methods_memplan(&pm, 1, &in) == 0 && uf_memplan_compute(&in, &p) == 0);
                CHECK_MSG(held + at_finish == p.method_state,
                          "%s %s (lora %d, bf16 %d): holds %zu + %zu at finish, plan %zu (teacher %zu, anchor %zu)",
                          ops->name, sjs, lora, bf16, held, at_finish, p.method_state, p.teacher, p.anchor);
                uf_trainer_free(&tr);
                cJSON_Delete(c);
                uf_tensor_free(&theta0);
                uf_model_free(&m);
            }
    }
}

int main(void) {
    uf_device_init(&dev, NULL);
    make_data();
    uf_model_config_defaults(&cfg, UF_FAMILY_LLAMA, V, D, L, H, KV, F, T);
    UF_RUN(test_der_grad);
    UF_RUN(test_lwf_grad);
    UF_RUN(test_l2sp_grad);
    UF_RUN(test_lisa);
    UF_RUN(test_er_derpp);
    UF_RUN(test_ewc);
    UF_RUN(test_agem);
    UF_RUN(test_safegrad);
    UF_RUN(test_ema);
    UF_RUN(test_merges);
    UF_RUN(test_clip_on);
    UF_RUN(test_safelora);
    UF_RUN(test_safeinstr);
    UF_RUN(test_tokensel);
    UF_RUN(test_refresh_unlearn);
    UF_RUN(test_bit_identical);
    UF_RUN(test_composition);
    UF_RUN(test_multi_turn_row);
    UF_RUN(test_memplan_state);
    fprintf(stderr, "worst finite-difference error (relative to |g|): %.3g\n", worst_fd);
    uf_dataset_free(&ds_user);
    uf_dataset_free(&ds_safe);
    uf_tokenizer_free(&tok);
    char *rm = uf_sprintf("rm -rf %s", tmpdir);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    free(rm), free(spec_user), free(spec_safe), free(safe_path);
    uf_device_free(&dev);
    return uf_test_summary();
}
