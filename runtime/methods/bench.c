/* methods/bench.c: `unforget bench --method NAME` (uf_methods_bench, methods.h): the cost of a
 * continual-learning method relative to plain fine-tuning on the same model, data and steps.
 * Data: synthetic rows of random lower-case words (user rows and a safety buffer of 64 rows
 * each, responses long enough to fill the sequence), a small BPE tokenizer trained on them,
 * written to a temporary folder and read back as the plan's dataset nodes. Each variant (plain,
 * then with the method at its recipe defaults) builds a fresh model, runs the init hooks
 * (timed), `warmup` untimed and `steps` timed optimizer steps (after one untimed plain
 * variant that creates the device's shared lazy buffers) in train.h's hook order (each
 * ending in a device sync), then the finish hooks (timed). Memory: the device peak above what
 * was live before the variant started. Merges, SafeLoRA and SafeMERGE get a synthetic theta_0
 * (the start weights scaled by 0.9). Host tokenization of each batch is part of both variants'
 * step time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "methods/methods.h"
#include "data/derta.h"
#include "model/optim.h"
#include "formats/tokenizer.h"
#include "methods/common.h"

struct bench_result {
    double t_init, t_step, t_best, t_finish;
    size_t peak, live; /* above the base: the peak, and what is held after the last step */
};

static char *random_text(struct uf_rng *r, int chars) {
    char *s = uf_malloc((size_t)chars + 1);
    int n = 0;
    while (n < chars) {
        int w = 2 + (int)uf_rng_below(r, 7);
        for (int i = 0; i < w && n < chars; i++) s[n++] = (char)('a' + uf_rng_below(r, 26));
        if (n < chars) s[n++] = ' ';
    }
    s[n] = 0;
    return s;
}

static void make_rows(struct uf_dataset *d, struct uf_rng *r, int n, int resp_chars, enum uf_example_kind kind) {
    for (int i = 0; i < n; i++) {
        char *p = random_text(r, 8), *q = random_text(r, resp_chars);
        uf_dataset_push(d, p, q, NULL, "bench", NULL, kind);
        free(p), free(q);
    }
}

/* A small BPE tokenizer for the bench rows: the first 32 responses of d and the plain template's
 * markers (so both compress), plus `extra` (a text the rows use, or NULL); fails when it needs
 * more vocabulary than the model has. 0 or uf_fail. */
static int bench_tokenizer(struct uf_tokenizer *tok, const struct uf_dataset *d, const char *extra,
                           const struct uf_model_config *c) {
    const char *texts[64];
    for (int i = 0; i < 32; i++) texts[i] = d->rows[i].response;
    for (int i = 32; i < 64; i++) texts[i] = "### Instruction:\n\n\n### Response:\n";
    if (extra) texts[63] = extra;
    memset(tok, 0, sizeof *tok);
    int rc = uf_tokenizer_train(tok, texts, NULL, 64, UF_MIN(400, c->vocab));
    if (rc == 0 && tok->n_vocab > c->vocab)
        rc = uf_fail("the bench tokenizer needs a vocabulary of %d, the model has %d", tok->n_vocab, c->vocab);
    return rc;
}

static int run_variant(struct uf_device *d, const struct uf_model_config *c, int lora, int B, int T,
                       int steps, int warmup, const struct uf_tokenizer *tok,
                       const struct uf_dataset *data, const struct uf_method_ops *ops, const cJSON *cfg,
                       struct bench_result *res) {
    memset(res, 0, sizeof *res);
    d->bytes_peak = d->bytes_live;
    size_t base = d->bytes_live;
    struct uf_model m;
    if (uf_model_init(&m, d, c, 1, 0)) return -1;
    if (lora) {
        struct uf_lora_config lc = {lora, 2.0f * lora, 0.0f, UF_LORA_ALL};
        if (uf_model_lora_init(&m, &lc, 2)) return uf_model_free(&m), -1;
    }
    struct uf_tensor theta0;
    uf_tensor_init(&theta0, d, "bench.theta0", UF_F32, 1, (int64_t[]){m.numel});
    uf_tensor_copy(&theta0, &m.params);
    uf_tensor_scale(&theta0, 0.9f);
    struct uf_train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lr = 1e-4f, hp.beta1 = 0.9f, hp.beta2 = 0.999f, hp.eps = 1e-8f, hp.clip = 1.0f;
    hp.batch = B, hp.micro_batch = B, hp.max_len = T, hp.seed = 1;
    hp.steps = warmup + steps;
    struct uf_trainer tr;
    uf_trainer_init(&tr, d, &m, tok, "plain", &hp, data);
    tr.theta0 = &theta0;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.lr = hp.lr, oc.total_steps = (int)hp.steps;
    struct uf_optim o;
    int rc = ops ? uf_trainer_add_method(&tr, ops, cfg) : 0;
    double t0 = uf_time_now();
    for (int i = 0; i < tr.n_methods && rc == 0; i++)
        if (tr.methods[i].ops->init) rc = tr.methods[i].ops->init(&tr.methods[i], &tr);
    uf_device_finish(d);
    res->t_init = uf_time_now() - t0;
    if (rc == 0) rc = uf_optim_init(&o, &m, &oc);
    if (rc) {
        uf_trainer_free(&tr), uf_tensor_free(&theta0), uf_model_free(&m);
        return -1;
    }
    struct uf_epoch_iter it;
    uf_epoch_iter_init(&it, tr.data->n, 1, 1);
    int64_t *idx = uf_calloc((size_t)B, sizeof *idx);
    double t_steps = 0;
    res->t_best = INFINITY;
    for (int s = 0; s < warmup + steps && rc == 0; s++) {
        uf_device_finish(d);
        double ts = uf_time_now();
        tr.step = s;
        uf_model_zero_grad(&m);
        uf_tensor_fill(&tr.terms, 0.0f);
        uf_epoch_iter_next_full(&it, idx, B);
        struct uf_train_batch b;
        rc = uf_trainer_make_batch(&tr, tr.data, idx, B, &b);
        if (rc == 0 && b.n_masked == 0) rc = uf_fail("bench: a batch has no response tokens (seq too short)");
        for (int i = 0; i < tr.n_methods && rc == 0; i++)
            if (tr.methods[i].ops->batch) rc = tr.methods[i].ops->batch(&tr.methods[i], &tr, &b);
        if (rc) break;
        tr.step_masked = b.n_masked;
        tr.step_tokens = 0;
        for (int r = 0; r < b.B; r++) tr.step_tokens += b.lengths[r];
        struct uf_model_batch mb;
        uf_mbatch(&b, 1, &mb);
        rc = uf_model_forward(&m, &mb);
        for (int i = 0; i < tr.n_methods && rc == 0; i++)
            if (tr.methods[i].ops->task_loss) rc = tr.methods[i].ops->task_loss(&tr.methods[i], &tr, &b);
        if (rc == 0) rc = uf_model_backward(&m);
        uf_train_batch_free(&b);
#define HOOK(h)                                                                                \
    for (int i = 0; i < tr.n_methods && rc == 0; i++)                                          \
        if (tr.methods[i].ops->h) rc = tr.methods[i].ops->h(&tr.methods[i], &tr);
        HOOK(extra)
        HOOK(grad)
        HOOK(project)
        if (rc) break;
        uf_optim_step(&o, 1.0f);
        uf_device_finish(d);
        if (s >= warmup) {
            double dt = uf_time_now() - ts;
            t_steps += dt;
            res->t_best = fmin(res->t_best, dt);
        }
    }
    free(idx);
    uf_epoch_iter_free(&it);
    res->live = d->bytes_live > base ? d->bytes_live - base : 0;
    if (rc == 0) {
        t0 = uf_time_now();
        HOOK(finish)
#undef HOOK
        uf_device_finish(d);
        res->t_finish = uf_time_now() - t0;
    }
    res->t_step = t_steps / (steps > 0 ? steps : 1);
    res->peak = d->bytes_peak > base ? d->bytes_peak - base : 0;
    uf_optim_free(&o);
    uf_trainer_free(&tr);
    uf_tensor_free(&theta0);
    uf_model_free(&m);
    return rc ? -1 : 0;
}

/* Plain steps on plain_data, then steps with the method (ops, cfg; NULL: plain) on with_data. A
 * first, untimed plain run allocates the device's lazily created shared buffers (scratch, GEMM
 * packing) so that neither measured variant is charged for them. 0 or uf_fail. */
static int time_plain_and_with(struct uf_device *d, const struct uf_model_config *c, int lora, int B, int T,
                               int steps, int warmup, const struct uf_tokenizer *tok,
                               const struct uf_dataset *plain_data, const struct uf_dataset *with_data,
                               const struct uf_method_ops *ops, const cJSON *cfg, struct bench_result *plain,
                               struct bench_result *with) {
    int rc = run_variant(d, c, lora, B, T, 0, 1, tok, plain_data, NULL, NULL, plain);
    if (rc == 0) rc = run_variant(d, c, lora, B, T, steps, warmup, tok, plain_data, NULL, NULL, plain);
    if (rc == 0) rc = run_variant(d, c, lora, B, T, steps, warmup, tok, with_data, ops, cfg, with);
    return rc;
}

int uf_methods_bench(struct uf_device *d, const struct uf_model_config *c, int lora, int B, int T,
                     int steps, int warmup, const struct uf_plan_method *pm, const char *buffer_path,
                     FILE *out) {
    const char *method = pm->type;
    const struct uf_method_ops *ops = uf_method_find(method);
    char why[256];
    if (!ops || uf_methods_check(pm, 1, lora > 0, why, sizeof why)) {
        fprintf(stderr, "unforget bench: --method %s: %s\n", method, ops ? why : "unknown method");
        return 2;
    }
    struct uf_rng r;
    uf_rng_init(&r, 7);
    struct uf_dataset user, safe;
    uf_dataset_init(&user, "bench.user");
    uf_dataset_init(&safe, "bench.safety");
    make_rows(&user, &r, 64, 6 * T, UF_KIND_TASK);
    make_rows(&safe, &r, 64, 6 * T, UF_KIND_HARMFUL);
    struct uf_tokenizer tok;
    int rc = bench_tokenizer(&tok, &user, NULL, c);
    if (rc == 0) rc = uf_dataset_write_jsonl(&safe, buffer_path);
    struct bench_result plain, with;
    if (rc == 0) {
        rc = time_plain_and_with(d, c, lora, B, T, steps, warmup, &tok, &user, &user, ops, pm->cfg, &plain,
                                 &with);
    }
    if (rc == 0) {
        const double MiB = 1024.0 * 1024.0;
        fprintf(out, "method %s (recipe defaults) vs plain fine-tuning, %d timed steps of batch %d x seq %d%s:\n",
                method, steps, B, T, lora ? " (LoRA)" : "");
        fprintf(out, "  step (mean): %.2f ms vs %.2f ms  (x%.2f)\n", 1e3 * with.t_step, 1e3 * plain.t_step,
                with.t_step / fmax(plain.t_step, 1e-12));
        fprintf(out, "  step (best): %.2f ms vs %.2f ms  (x%.2f, %+.2f ms)\n", 1e3 * with.t_best,
                1e3 * plain.t_best, with.t_best / fmax(plain.t_best, 1e-12), 1e3 * (with.t_best - plain.t_best));
        fprintf(out, "  init:   %.1f ms   finish: %.1f ms\n", 1e3 * with.t_init, 1e3 * with.t_finish);
        fprintf(out, "  memory: held after training %.2f MiB vs %.2f MiB  (%+.2f MiB); device peak %.2f MiB vs %.2f MiB  (%+.2f MiB)\n",
                with.live / MiB, plain.live / MiB, ((double)with.live - (double)plain.live) / MiB,
                with.peak / MiB, plain.peak / MiB, ((double)with.peak - (double)plain.peak) / MiB);
    } else {
        fprintf(stderr, "unforget bench: --method %s: %s\n", method, uf_error());
    }
    unlink(buffer_path);
    if (tok.n_vocab) uf_tokenizer_free(&tok);
    uf_dataset_free(&user);
    uf_dataset_free(&safe);
    return rc ? 1 : 0;
}

/* `unforget bench --method derta`: DeRTa is an option of the alignment stage (data/derta.h), not a
 * method of the run, so its cost is in the rows it trains, not in hooks: 64 synthetic harmful rows
 * (request -> a short refusal) and their harmful responses (long enough to fill the sequence), the
 * DeRTa rows built from them (prefix + RTO, weight 1; timed), and plain fine-tuning steps timed on
 * each set as run_variant does; an epoch is ceil(rows / B) steps. */
int uf_derta_bench(struct uf_device *d, const struct uf_model_config *c, int lora, int B, int T, int steps,
                   int warmup, FILE *out) {
    enum { N = 64 };
    struct uf_rng r;
    uf_rng_init(&r, 7);
    struct uf_dataset align, resp, built;
    uf_dataset_init(&align, "bench.alignment");
    uf_dataset_init(&resp, "bench.harmful_responses");
    memset(&built, 0, sizeof built);
    const char *refusal = "I cannot help with that request.";
    for (int i = 0; i < N; i++) {
        char *words = random_text(&r, 8), *q = random_text(&r, 6 * T);
        char *prompt = uf_sprintf("request %d: %s", i, words); /* distinct: responses match by prompt */
        uf_dataset_push(&align, prompt, refusal, NULL, "bench", NULL, UF_KIND_HARMFUL);
        uf_dataset_push(&resp, prompt, q, NULL, "bench", NULL, UF_KIND_HARMFUL);
        free(words), free(q), free(prompt);
    }
    struct uf_tokenizer tok;
    int rc = bench_tokenizer(&tok, &resp, refusal, c);
    struct uf_derta_opts o = {.prefix = 1, .rto = 1, .rto_weight = 1.0, .seed = 1};
    struct uf_derta_info info;
    memset(&info, 0, sizeof info);
    double t_build = 0;
    if (rc == 0) {
        double t0 = uf_time_now();
        rc = uf_derta_build(&tok, &align, &resp, &o, &built, &info);
        t_build = uf_time_now() - t0;
    }
    struct bench_result plain, with;
    if (rc == 0)
        rc = time_plain_and_with(d, c, lora, B, T, steps, warmup, &tok, &align, &built, NULL, NULL, &plain, &with);
    if (rc == 0) {
        int64_t e0 = (align.n + B - 1) / B, e1 = (built.n + B - 1) / B;
        fprintf(out, "derta (alignment stage option: prefix + RTO, weight 1) vs plain alignment rows, %d timed steps "
                     "of batch %d x seq %d%s:\n", steps, B, T, lora ? " (LoRA)" : "");
        fprintf(out, "  rows: %lld -> %lld  (x%.2f: %lld RTO rows; prefix mean %.1f of %.1f response tokens); "
                     "build %.2f ms\n", (long long)align.n, (long long)built.n, (double)built.n / (double)align.n,
                (long long)info.rto_rows, info.matched ? (double)info.prefix_tokens / (double)info.matched : 0.0,
                info.matched ? (double)info.response_tokens / (double)info.matched : 0.0, 1e3 * t_build);
        fprintf(out, "  step (mean): %.2f ms vs %.2f ms  (x%.2f)\n", 1e3 * with.t_step,
                1e3 * plain.t_step, with.t_step / fmax(plain.t_step, 1e-12));
        fprintf(out, "  step (best): %.2f ms vs %.2f ms  (x%.2f)\n", 1e3 * with.t_best, 1e3 * plain.t_best,
                with.t_best / fmax(plain.t_best, 1e-12));
        fprintf(out, "  epoch (mean steps): %lld steps %.1f ms vs %lld steps %.1f ms  (x%.2f)\n", (long long)e1,
                1e3 * (double)e1 * with.t_step, (long long)e0, 1e3 * (double)e0 * plain.t_step,
                ((double)e1 * with.t_step) / fmax((double)e0 * plain.t_step, 1e-12));
    } else {
        fprintf(stderr, "unforget bench: --method derta: %s\n", uf_error());
    }
    if (tok.n_vocab) uf_tokenizer_free(&tok);
    uf_dataset_free(&align);
    uf_dataset_free(&resp);
    uf_dataset_free(&built);
    return rc ? 1 : 0;
}
