/* test_ref_model_host.c: the reference model (ref_model.h) against finite differences.
 *
 * For each family (llama; mistral with a sliding window of 3 < T; gemma with head_dim 6 != D/H,
 * MQA and tied embeddings; llama3 with rope scaling whose three bands all occur), full fine-tuning
 * and LoRA, without and with external gradients at the logits and hidden states, on a padded batch
 * (B = 2, T = 7, lengths 7 and 4, some masked targets): the gradient of a random subset of the
 * elements of EVERY parameter tensor (and every LoRA tensor) is compared with central finite
 * differences of the objective J (computed in double inside the model). Parameters are f32, so a
 * perturbed value p +- h is rounded to f32 and the difference quotient uses the actual f32
 * values. Bound: |fd - g| <= 1e-7 + 1e-5 |g| (g is an f32-rounded double: ~6e-8 relative; the
 * difference quotient with h = 1e-5 has an O(h^2) truncation error and a rounding error of about
 * 1e-16 |J| / h ~ 1e-10; observed errors stay below 3% of the bound).
 *
 * Also: padding tokens do not influence the valid rows, a sequence alone gives the same logits as
 * in the batch, the window changes the result, forward-only equals forward+backward, bad input
 * is an error.
 *
 * Mode `--dump DIR`: writes for each case DIR/<case>/ config.txt and raw little-endian arrays
 * (params.f32, lora.f32, tokens.i32, targets.i32, mask.f32, lengths.i32, g_logits.f32,
 * g_hidden.f32, logits.f32, hidden.f32, grad.f32, lora_grad.f32, loss.txt) for tests/ref_torch.py. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_model.h"
#include "uf_test.h"
#include "core/util.h"

#define FD_H 1e-5
#define FD_ABS 1e-7
#define FD_REL 1e-5
#define PER_TENSOR 6 /* random elements checked per parameter tensor */

enum { B = 2, T = 7 };

struct tcase {
    const char *name;
    struct uf_model_config c;
    int lora_rank;     /* 0 = full fine-tuning */
    float lora_alpha;
    int ext;           /* external gradients on */
};

static void make_config(struct tcase *k, const char *name, enum uf_family f) {
    memset(k, 0, sizeof *k);
    k->name = name;
    uf_model_config_defaults(&k->c, f, 37, 16, 2, 4, 2, 24, 16);
    if (f == UF_FAMILY_MISTRAL) k->c.sliding_window = 3;
    if (f == UF_FAMILY_GEMMA) {
        k->c.n_kv_heads = 1;
        k->c.head_dim = 6;
    }
    if (f == UF_FAMILY_LLAMA3) { /* hd 8: inv_freq 1, .32, .1, .03 -> high, medium, low, low */
        k->c.n_heads = 2;
        k->c.n_kv_heads = 1;
        k->c.head_dim = 8;
        k->c.rope_theta = 100.0f;
        k->c.rope_original_max_pos = 32;
    }
}

/* the test data of one case: parameters, LoRA, batch, external gradients */
struct tdata {
    int64_t P, PL;
    float *params, *lora;
    int32_t tokens[B * T], targets[B * T], lengths[B];
    float mask[B * T];
    float *g_logits, *g_hidden;
};

static void make_data(const struct tcase *k, struct tdata *d, uint64_t seed) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    const struct uf_model_config *c = &k->c;
    d->P = uf_model_param_numel(c);
    d->params = uf_calloc((size_t)d->P, sizeof(float));
    int np = uf_model_param_descs(c, NULL);
    struct uf_param_desc *pd = uf_calloc((size_t)np, sizeof *pd);
    uf_model_param_descs(c, pd);
    for (int i = 0; i < np; i++) {
        int norm = pd[i].kind == UF_P_ATTN_NORM || pd[i].kind == UF_P_MLP_NORM ||
                   pd[i].kind == UF_P_FINAL_NORM;
        double base = norm && !c->norm_plus_one ? 1.0 : 0.0;
        double s = norm ? 0.2 : pd[i].kind == UF_P_EMBED ? 1.0 : 1.0 / sqrt((double)pd[i].cols);
        for (int64_t j = 0; j < pd[i].numel; j++)
            d->params[pd[i].offset + j] = (float)(base + s * uf_rng_normal(&r));
    }
    free(pd);
    d->PL = 0;
    d->lora = NULL;
    if (k->lora_rank) {
        d->PL = uf_ref_lora_numel(c, k->lora_rank, UF_LORA_ALL);
        d->lora = uf_calloc((size_t)d->PL, sizeof(float));
        for (int64_t j = 0; j < d->PL; j++) d->lora[j] = (float)(0.3 * uf_rng_normal(&r)); /* B != 0 */
    }
    d->lengths[0] = 7;
    d->lengths[1] = 4;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int n = b * T + t;
            d->tokens[n] = (int32_t)uf_rng_below(&r, (uint64_t)c->vocab);
            int on = t < d->lengths[b] && t != 2; /* padding and one prompt token are masked */
            d->mask[n] = on ? 1.0f : 0.0f;
            d->targets[n] = on ? (int32_t)uf_rng_below(&r, (uint64_t)c->vocab) : -100;
        }
    d->g_logits = d->g_hidden = NULL;
    if (k->ext) {
        d->g_logits = uf_calloc((size_t)B * T * c->vocab, sizeof(float));
        d->g_hidden = uf_calloc((size_t)B * T * c->d_model, sizeof(float));
        for (int i = 0; i < B * T * c->vocab; i++) d->g_logits[i] = (float)(0.05 * uf_rng_normal(&r));
        for (int i = 0; i < B * T * c->d_model; i++) d->g_hidden[i] = (float)(0.1 * uf_rng_normal(&r));
    }
}

static void free_data(struct tdata *d) {
    free(d->params);
    free(d->lora);
    free(d->g_logits);
    free(d->g_hidden);
}

static struct uf_ref_batch batch_of(struct tdata *d) {
    struct uf_ref_batch bt = {B, T, d->tokens, d->targets, d->mask, d->lengths};
    return bt;
}

static double objective(const struct tcase *k, struct tdata *d) {
    struct uf_ref_lora lo = {k->lora_rank, k->lora_alpha, UF_LORA_ALL, d->lora};
    struct uf_ref_batch bt = batch_of(d);
    struct uf_ref_result res = {0};
    int rc = uf_ref_model_run(&k->c, d->params, k->lora_rank ? &lo : NULL, &bt, d->g_logits,
                              d->g_hidden, &res);
    CHECK_MSG(rc == 0, "%s", uf_error());
    return res.objective;
}

/* fd of J with respect to the f32 value v[j] */
static double fd(const struct tcase *k, struct tdata *d, float *v, int64_t j) {
    float keep = v[j];
    float hi = (float)(keep + FD_H), lo = (float)(keep - FD_H);
    v[j] = hi;
    double jp = objective(k, d);
    v[j] = lo;
    double jm = objective(k, d);
    v[j] = keep;
    return (jp - jm) / ((double)hi - (double)lo);
}

static double check_elem(const struct tcase *k, struct tdata *d, float *v, int64_t j, float g,
                         const char *tensor, int64_t local) {
    double f = fd(k, d, v, j);
    double err = fabs(f - g);
    CHECK_MSG(err <= FD_ABS + FD_REL * fabs(g), "%s: %s[%lld]: analytic %.9g, finite difference %.9g",
              k->name, tensor, (long long)local, g, f);
    return err / (FD_ABS + FD_REL * fabs(g)); /* <= 1 passes */
}

static void run_fd_case(const struct tcase *k, uint64_t seed) {
    struct tdata d;
    make_data(k, &d, seed);
    const struct uf_model_config *c = &k->c;
    struct uf_ref_lora lo = {k->lora_rank, k->lora_alpha, UF_LORA_ALL, d.lora};
    struct uf_ref_batch bt = batch_of(&d);
    float *grad = uf_calloc((size_t)d.P, sizeof(float));
    float *lgrad = d.PL ? uf_calloc((size_t)d.PL, sizeof(float)) : NULL;
    struct uf_ref_result res = {0};
    res.grad = grad;
    res.lora_grad = lgrad;
    int rc = uf_ref_model_run(c, d.params, k->lora_rank ? &lo : NULL, &bt, d.g_logits, d.g_hidden, &res);
    CHECK_MSG(rc == 0, "%s", uf_error());
    CHECK(isfinite(res.loss) && res.loss > 0);
    if (!k->ext) CHECK(res.objective == res.loss);
    struct uf_rng r;
    uf_rng_init(&r, seed + 99);
    double worst = 0;
    int checked = 0, nonzero = 0;
    int np = uf_model_param_descs(c, NULL);
    struct uf_param_desc *pd = uf_calloc((size_t)np, sizeof *pd);
    uf_model_param_descs(c, pd);
    for (int i = 0; i < np; i++)
        for (int e = 0; e < PER_TENSOR; e++) {
            int64_t j;
            if (pd[i].kind == UF_P_EMBED && e % 2 == 0) /* a row of a token in the batch */
                j = (int64_t)d.tokens[uf_rng_below(&r, B * T)] * pd[i].cols +
                    (int64_t)uf_rng_below(&r, (uint64_t)pd[i].cols);
            else
                j = (int64_t)uf_rng_below(&r, (uint64_t)pd[i].numel);
            float g = grad[pd[i].offset + j];
            worst = fmax(worst, check_elem(k, &d, d.params, pd[i].offset + j, g, pd[i].name, j));
            checked++;
            nonzero += g != 0;
        }
    free(pd);
    if (d.PL) {
        int nl = uf_ref_lora_descs(c, k->lora_rank, UF_LORA_ALL, NULL);
        struct uf_ref_lora_desc *ld = uf_calloc((size_t)nl, sizeof *ld);
        uf_ref_lora_descs(c, k->lora_rank, UF_LORA_ALL, ld);
        for (int i = 0; i < nl; i++)
            for (int e = 0; e < PER_TENSOR; e++) {
                int64_t j = (int64_t)uf_rng_below(&r, (uint64_t)ld[i].numel);
                float g = lgrad[ld[i].offset + j];
                worst = fmax(worst, check_elem(k, &d, d.lora, ld[i].offset + j, g, ld[i].name, j));
                checked++;
                nonzero += g != 0;
            }
        free(ld);
    }
    CHECK_MSG(nonzero > checked * 3 / 4, "%s: only %d of %d checked gradients are nonzero", k->name,
              nonzero, checked);
    fprintf(stderr, "  %-26s loss %.6f, %d elements, worst err / bound %.3g\n", k->name, res.loss,
            checked, worst);
    free(grad);
    free(lgrad);
    free_data(&d);
}

static void test_fd_all(void) {
    static const char *names[] = {"llama", "mistral", "gemma", "llama3"};
    for (int f = 0; f < 4; f++)
        for (int mode = 0; mode < 4; mode++) { /* bit 0: LoRA, bit 1: external gradients */
            struct tcase k;
            char name[64];
            snprintf(name, sizeof name, "%s%s%s", names[f], mode & 1 ? "+lora" : "",
                     mode & 2 ? "+ext" : "");
            make_config(&k, name, (enum uf_family)f);
            if (mode & 1) {
                k.lora_rank = 2;
                k.lora_alpha = 5.0f;
            }
            k.ext = (mode & 2) != 0;
            run_fd_case(&k, 100 + (uint64_t)(f * 4 + mode));
        }
}

/* run and return logits (B, T, V) */
static float *logits_of(const struct tcase *k, struct tdata *d, const struct uf_ref_batch *bt,
                        double *loss) {
    float *lg = uf_calloc((size_t)bt->B * bt->T * k->c.vocab, sizeof(float));
    struct uf_ref_result res = {0};
    res.logits = lg;
    struct uf_ref_lora lo = {k->lora_rank, k->lora_alpha, UF_LORA_ALL, d->lora};
    int rc = uf_ref_model_run(&k->c, d->params, k->lora_rank ? &lo : NULL, bt, NULL, NULL, &res);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (loss) *loss = res.loss;
    return lg;
}

static void test_padding_and_batch(void) {
    for (int f = 0; f < 4; f++) {
        struct tcase k;
        make_config(&k, "pad", (enum uf_family)f);
        struct tdata d;
        make_data(&k, &d, 7 + (uint64_t)f);
        int V = k.c.vocab;
        struct uf_ref_batch bt = batch_of(&d);
        double l1, l2;
        float *a = logits_of(&k, &d, &bt, &l1);
        for (int t = d.lengths[1]; t < T; t++) d.tokens[T + t] = (d.tokens[T + t] + 5) % V;
        float *b = logits_of(&k, &d, &bt, &l2);
        CHECK(l1 == l2);
        for (int bb = 0; bb < B; bb++)
            for (int t = 0; t < d.lengths[bb]; t++)
                for (int v = 0; v < V; v++)
                    CHECK(a[((size_t)bb * T + t) * V + v] == b[((size_t)bb * T + t) * V + v]);
        /* sequence 1 alone, as a batch of one of length 4 and T = 4 */
        struct uf_ref_batch one = {1, 4, d.tokens + T, d.targets + T, d.mask + T, d.lengths + 1};
        float *c1 = logits_of(&k, &d, &one, NULL);
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < V; v++)
                CHECK_NEAR(c1[(size_t)t * V + v], b[((size_t)T + t) * V + v], 1e-6);
        free(a);
        free(b);
        free(c1);
        free_data(&d);
    }
}

static void test_window_and_forward_only(void) {
    struct tcase k;
    make_config(&k, "mistral", UF_FAMILY_MISTRAL);
    struct tdata d;
    make_data(&k, &d, 3);
    struct uf_ref_batch bt = batch_of(&d);
    int V = k.c.vocab;
    double lw, lf;
    float *w = logits_of(&k, &d, &bt, &lw);
    k.c.sliding_window = 0;
    float *full = logits_of(&k, &d, &bt, &lf);
    /* rows t < window see the same keys; row 6 of sequence 0 does not */
    for (int t = 0; t < 3; t++) CHECK(w[(size_t)t * V] == full[(size_t)t * V]);
    CHECK(w[(size_t)6 * V] != full[(size_t)6 * V]);
    CHECK(lw != lf);
    /* forward + backward gives the same forward results as forward only */
    k.c.sliding_window = 3;
    float *grad = uf_calloc((size_t)d.P, sizeof(float));
    float *lg = uf_calloc((size_t)B * T * V, sizeof(float));
    struct uf_ref_result res = {0};
    res.grad = grad;
    res.logits = lg;
    CHECK(uf_ref_model_run(&k.c, d.params, NULL, &bt, NULL, NULL, &res) == 0);
    CHECK(res.loss == lw);
    CHECK(memcmp(lg, w, (size_t)B * T * V * sizeof(float)) == 0);
    free(grad);
    free(lg);
    free(w);
    free(full);
    free_data(&d);
}

static void test_bad_input(void) {
    struct tcase k;
    make_config(&k, "llama", UF_FAMILY_LLAMA);
    struct tdata d;
    make_data(&k, &d, 5);
    struct uf_ref_batch bt = batch_of(&d);
    struct uf_ref_result res = {0};
    d.tokens[3] = 37;
    CHECK(uf_ref_model_run(&k.c, d.params, NULL, &bt, NULL, NULL, &res) == -1);
    CHECK(strstr(uf_error(), "tokens[0][3] = 37") != NULL);
    d.tokens[3] = 1;
    d.targets[T + 1] = -1;
    CHECK(uf_ref_model_run(&k.c, d.params, NULL, &bt, NULL, NULL, &res) == -1);
    CHECK(strstr(uf_error(), "targets[1][1]") != NULL);
    d.targets[T + 1] = 0;
    d.lengths[1] = 8;
    CHECK(uf_ref_model_run(&k.c, d.params, NULL, &bt, NULL, NULL, &res) == -1);
    CHECK(strstr(uf_error(), "lengths[1] = 8") != NULL);
    d.lengths[1] = 4;
    CHECK(uf_ref_model_run(&k.c, d.params, NULL, &bt, NULL, NULL, &res) == 0);
    res.lora_grad = d.params;
    CHECK(uf_ref_model_run(&k.c, d.params, NULL, &bt, NULL, NULL, &res) == -1);
    /* the LoRA layout: PEFT names and shapes */
    struct uf_ref_lora_desc ld[28];
    CHECK_EQ_INT(uf_ref_lora_descs(&k.c, 4, UF_LORA_ALL, ld), 28);
    CHECK_STR(ld[0].name, "model.layers.0.self_attn.q_proj.lora_A.weight");
    CHECK_EQ_INT(ld[0].rows, 4);
    CHECK_EQ_INT(ld[0].cols, 16);
    CHECK_STR(ld[3].name, "model.layers.0.self_attn.k_proj.lora_B.weight");
    CHECK_EQ_INT(ld[3].rows, 8);
    CHECK_EQ_INT(ld[3].offset, 4 * 16 + 16 * 4 + 4 * 16);
    CHECK_STR(ld[27].name, "model.layers.1.mlp.down_proj.lora_B.weight");
    CHECK_EQ_INT(uf_ref_lora_numel(&k.c, 4, UF_LORA_TARGET(UF_P_Q)), 2 * (4 * 16 + 16 * 4));
    free_data(&d);
}

/* ---- --dump DIR for tests/ref_torch.py ---- */
static int write_raw(const char *dir, const char *name, const void *p, size_t bytes) {
    char *path = uf_sprintf("%s/%s", dir, name);
    int rc = uf_file_write_atomic(path, p ? p : "", p ? bytes : 0);
    free(path);
    return rc;
}

static int dump_case(const char *root, const struct tcase *k, uint64_t seed) {
    struct tdata d;
    make_data(k, &d, seed);
    const struct uf_model_config *c = &k->c;
    char *dir = uf_sprintf("%s/%s", root, k->name);
    int rc = uf_mkdir_p(dir);
    size_t NV = (size_t)B * T * c->vocab, ND = (size_t)B * T * c->d_model;
    float *logits = uf_calloc(NV, sizeof(float)), *hidden = uf_calloc(ND, sizeof(float));
    float *grad = uf_calloc((size_t)d.P, sizeof(float));
    float *lgrad = d.PL ? uf_calloc((size_t)d.PL, sizeof(float)) : NULL;
    struct uf_ref_lora lo = {k->lora_rank, k->lora_alpha, UF_LORA_ALL, d.lora};
    struct uf_ref_batch bt = batch_of(&d);
    struct uf_ref_result res = {0, 0, logits, hidden, grad, lgrad};
    if (!rc) rc = uf_ref_model_run(c, d.params, k->lora_rank ? &lo : NULL, &bt, d.g_logits, d.g_hidden, &res);
    char *cfg = uf_sprintf(
        "family %s\nvocab %d\nd_model %d\nn_layers %d\nn_heads %d\nn_kv_heads %d\nhead_dim %d\n"
        "d_ff %d\nnorm_eps %.9g\nrope_theta %.9g\nrope_factor %.9g\nrope_low_freq_factor %.9g\n"
        "rope_high_freq_factor %.9g\nrope_original_max_pos %d\nsliding_window %d\nact %s\n"
        "norm_plus_one %d\nembed_scale %d\ntied_embeddings %d\nlora_rank %d\nlora_alpha %.9g\n"
        "B %d\nT %d\next %d\n",
        uf_family_name(c->family), c->vocab, c->d_model, c->n_layers, c->n_heads, c->n_kv_heads,
        c->head_dim, c->d_ff, c->norm_eps, c->rope_theta, c->rope_factor, c->rope_low_freq_factor,
        c->rope_high_freq_factor, c->rope_original_max_pos, c->sliding_window,
        c->act == UF_ACT_SILU ? "silu" : "gelu_tanh", c->norm_plus_one, c->embed_scale,
        c->tied_embeddings, k->lora_rank, k->lora_alpha, B, T, k->ext);
    char *loss = uf_sprintf("%.17g %.17g\n", res.loss, res.objective);
    if (!rc) rc = write_raw(dir, "config.txt", cfg, strlen(cfg));
    if (!rc) rc = write_raw(dir, "loss.txt", loss, strlen(loss));
    if (!rc) rc = write_raw(dir, "params.f32", d.params, (size_t)d.P * 4);
    if (!rc) rc = write_raw(dir, "lora.f32", d.lora, (size_t)d.PL * 4);
    if (!rc) rc = write_raw(dir, "tokens.i32", d.tokens, sizeof d.tokens);
    if (!rc) rc = write_raw(dir, "targets.i32", d.targets, sizeof d.targets);
    if (!rc) rc = write_raw(dir, "mask.f32", d.mask, sizeof d.mask);
    if (!rc) rc = write_raw(dir, "lengths.i32", d.lengths, sizeof d.lengths);
    if (!rc) rc = write_raw(dir, "g_logits.f32", d.g_logits, d.g_logits ? NV * 4 : 0);
    if (!rc) rc = write_raw(dir, "g_hidden.f32", d.g_hidden, d.g_hidden ? ND * 4 : 0);
    if (!rc) rc = write_raw(dir, "logits.f32", logits, NV * 4);
    if (!rc) rc = write_raw(dir, "hidden.f32", hidden, ND * 4);
    if (!rc) rc = write_raw(dir, "grad.f32", grad, (size_t)d.P * 4);
    if (!rc) rc = write_raw(dir, "lora_grad.f32", lgrad, (size_t)d.PL * 4);
    free(cfg); free(loss); free(dir); free(logits); free(hidden); free(grad); free(lgrad);
    free_data(&d);
    return rc;
}

static int dump_all(const char *root) {
    static const char *names[] = {"llama", "mistral", "gemma", "llama3"};
    for (int f = 0; f < 4; f++)
        for (int mode = 0; mode < 4; mode++) {
            struct tcase k;
            char *name = uf_sprintf("%s%s%s", names[f], mode & 1 ? "_lora" : "", mode & 2 ? "_ext" : "");
            make_config(&k, name, (enum uf_family)f);
            if (mode & 1) {
                k.lora_rank = 2;
                k.lora_alpha = 5.0f;
            }
            k.ext = (mode & 2) != 0;
            int rc = dump_case(root, &k, 500 + (uint64_t)(f * 4 + mode));
            free(name);
            if (rc) return rc;
        }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) {
        if (dump_all(argv[2])) {
            fprintf(stderr, "test_ref_model_host --dump: %s\n", uf_error());
            return 1;
        }
        return 0;
    }
    UF_RUN(test_fd_all);
    UF_RUN(test_padding_and_batch);
    UF_RUN(test_window_and_forward_only);
    UF_RUN(test_bad_input);
    return uf_test_summary();
}
