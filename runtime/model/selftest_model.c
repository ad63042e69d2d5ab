/* selftest_model.c: the model-level cases of `unforget selftest --full` (selftest_model.h): one
 * tiny training step and one KV-cache generation, each against the plain-C reference model, so
 * that a strict device (oclgrind: race and API checks) runs the engine end to end on shapes it
 * can interpret in seconds. */
#include "model/selftest_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/generate.h"
#include "model/model.h"
#include "model/optim.h"
#include "ops/selftest.h"
#include "ref/ref_model.h"
#include "core/util.h"

/* D 32, 1 layer, 4 heads (GQA 2 kv), d_ff 48, vocab 37: every kernel family in a few ms */
static void tiny_config(struct uf_model_config *c) {
    uf_model_config_defaults(c, UF_FAMILY_LLAMA, 37, 32, 1, 4, 2, 48, 32);
}

static float *random_params(const struct uf_model_config *c, uint64_t seed) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    int n = uf_model_param_descs(c, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_model_param_descs(c, d);
    float *p = uf_malloc((size_t)uf_model_param_numel(c) * sizeof *p);
    for (int i = 0; i < n; i++) {
        int norm = d[i].kind == UF_P_ATTN_NORM || d[i].kind == UF_P_MLP_NORM ||
                   d[i].kind == UF_P_FINAL_NORM;
        double sd = d[i].kind == UF_P_EMBED ? 1.0 : 1.0 / sqrt((double)d[i].cols);
        for (int64_t j = 0; j < d[i].numel; j++)
            p[d[i].offset + j] = norm ? (float)(1.0 + 0.1 * uf_rng_normal(&r))
                                      : (float)(sd * uf_rng_normal(&r));
    }
    free(d);
    return p;
}

/* Forward + backward of 2 right-padded sequences (lengths 9 and 6) vs uf_ref_model_run: loss,
 * logits and every parameter gradient; then one AdamW step must move the parameters. */
static double case_train_step(struct uf_device *d) {
    enum { B = 2, T = 9 };
    struct uf_model_config c;
    tiny_config(&c);
    int V = c.vocab;
    float *P = random_params(&c, 21);
    int32_t tok[B * T], tgt[B * T], lens[B] = {9, 6};
    float mask[B * T];
    struct uf_rng r;
    uf_rng_init(&r, 22);
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)uf_rng_below(&r, (uint64_t)V);
        tgt[i] = (int32_t)uf_rng_below(&r, (uint64_t)V);
        mask[i] = (i % T) < lens[i / T] ? 1.0f : 0.0f;
    }
    struct uf_model m;
    if (uf_model_init(&m, d, &c, 1, 0) != 0) uf_fatal(1, "selftest: %s", uf_error());
    uf_model_load_params(&m, P);
    struct uf_model_batch mb = {B, T, tok, tgt, mask, lens, 0};
    uf_model_zero_grad(&m);
    if (uf_model_forward(&m, &mb) != 0 || uf_model_backward(&m) != 0)
        uf_fatal(1, "selftest: %s", uf_error());
    float loss = uf_model_read_loss(&m);
    int64_t Pn = m.numel;
    float *logits = uf_malloc((size_t)B * T * V * sizeof *logits), *g = uf_malloc((size_t)Pn * 4);
    uf_tensor_download(&m.logits, logits);
    uf_model_save_grads(&m, g);

    struct uf_ref_batch rb = {B, T, tok, tgt, mask, lens};
    struct uf_ref_result res = {0};
    res.logits = uf_malloc((size_t)B * T * V * sizeof(float));
    res.grad = uf_malloc((size_t)Pn * sizeof(float));
    if (uf_ref_model_run(&c, P, NULL, &rb, NULL, NULL, &res) != 0)
        uf_fatal(1, "selftest: %s", uf_error());
    double err = fabs(loss - res.loss) / fabs(res.loss);
    err = fmax(err, uf_max_rel_err(logits, res.logits, (size_t)B * T * V));
    for (int i = 0; i < m.n_params; i++)
        err = fmax(err, uf_max_rel_err(g + m.descs[i].offset, res.grad + m.descs[i].offset,
                                       (size_t)m.descs[i].numel));

    struct uf_optim o;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.lr = 1e-2f;
    if (uf_optim_init(&o, &m, &oc) != 0) uf_fatal(1, "selftest: %s", uf_error());
    uf_optim_step(&o, 1.0f);
    float *after = uf_malloc((size_t)Pn * sizeof *after);
    uf_model_save_params(&m, after);
    int moved = 0, finite = 1;
    for (int64_t i = 0; i < Pn; i++) {
        moved += after[i] != P[i];
        finite &= isfinite(after[i]) != 0;
    }
    if (!finite || moved < Pn / 2) err = INFINITY; /* AdamW moves every parameter with g != 0 */
    uf_optim_free(&o);
    uf_model_free(&m);
    free(P), free(logits), free(g), free(after), free(res.logits), free(res.grad);
    return err;
}

/* KV-cache decoding: prefill of two prompts (4 and 2 tokens), then one token per sequence per
 * step; every row's logits vs the reference's full forward (absolute error over logits of O(1),
 * reported relative to max |logit|). */
static double case_generation(struct uf_device *d) {
    enum { B = 2, T = 7 };
    struct uf_model_config c;
    tiny_config(&c);
    int V = c.vocab;
    float *P = random_params(&c, 23);
    int32_t tok[B * T], lens[B] = {7, 5}, plen[B] = {4, 2};
    struct uf_rng r;
    uf_rng_init(&r, 24);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)uf_rng_below(&r, (uint64_t)V);
    float *want = uf_malloc((size_t)B * T * V * sizeof *want);
    float *mask = uf_calloc((size_t)B * T, sizeof *mask);
    struct uf_ref_batch rb = {.B = B, .T = T, .tokens = tok, .targets = tok, .loss_mask = mask,
                              .lengths = lens};
    struct uf_ref_result res = {.logits = want};
    if (uf_ref_model_run(&c, P, NULL, &rb, NULL, NULL, &res) != 0)
        uf_fatal(1, "selftest: %s", uf_error());
    struct uf_tensor pt;
    uf_tensor_init(&pt, d, "params", UF_F32, 1, (int64_t[]){uf_model_param_numel(&c)});
    uf_tensor_upload(&pt, P);
    struct uf_gen g;
    if (uf_gen_init(&g, d, &c, &pt, B, 8, 8) != 0) uf_fatal(1, "selftest: %s", uf_error());
    const int32_t *prompts[B] = {tok, tok + T};
    float *lg = uf_malloc((size_t)B * V * sizeof *lg), *got = uf_malloc((size_t)B * V * 4),
          *ref = uf_malloc((size_t)B * V * 4);
    if (uf_gen_prefill(&g, B, prompts, plen, lg) != 0) uf_fatal(1, "selftest: %s", uf_error());
    double err = 0;
    for (int b = 0; b < B; b++) {
        memcpy(got, lg + (size_t)b * V, (size_t)V * 4);
        memcpy(ref, want + ((size_t)b * T + plen[b] - 1) * V, (size_t)V * 4);
        err = fmax(err, uf_max_rel_err(got, ref, (size_t)V));
    }
    for (int step = 0;; step++) {
        int32_t t[B], ps[B], sq[B], rows[B];
        int n = 0;
        for (int b = 0; b < B; b++) {
            int i = plen[b] + step;
            if (i >= lens[b]) continue;
            t[n] = tok[b * T + i], ps[n] = i, sq[n] = b, rows[n] = n;
            n++;
        }
        if (n == 0) break;
        if (uf_gen_forward(&g, n, t, ps, sq, n, rows, lg) != 0)
            uf_fatal(1, "selftest: %s", uf_error());
        for (int k = 0; k < n; k++)
            err = fmax(err, uf_max_rel_err(lg + (size_t)k * V,
                                           want + ((size_t)sq[k] * T + ps[k]) * V, (size_t)V));
    }
    uf_gen_free(&g);
    uf_tensor_free(&pt);
    free(P), free(want), free(mask), free(lg), free(got), free(ref);
    return err;
}

int uf_selftest_model_run(struct uf_device *d, FILE *out) {
    static const struct {
        const char *name;
        double (*fn)(struct uf_device *);
        double bound;
    } cases[] = {
        {"tiny model: loss, grads vs ref, AdamW", case_train_step, 1e-4},
        {"KV-cache generation vs full forward", case_generation, 1e-4},
    };
    int failures = 0;
    for (size_t i = 0; i < UF_ARRAY_LEN(cases); i++) {
        double t0 = uf_time_now();
        double err = cases[i].fn(d);
        failures += uf_selftest_case(out, cases[i].name, err, cases[i].bound, uf_time_now() - t0);
    }
    return failures;
}
