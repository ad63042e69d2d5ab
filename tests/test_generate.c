/* test_generate.c: the KV-cache inference path (runtime/model/generate.c, opencl/decode.cl) against the
 * plain-C reference model (runtime/ref/ref_model.h, double inside) on tiny random models of every
 * family (GQA, Mistral with a sliding window smaller than the sequences, Gemma, llama3 RoPE):
 *   - incremental decoding: prefill of prompts of different lengths in one batch, then one token
 *     per sequence per step (teacher-forced); the logits of every position must equal the
 *     reference's full-sequence forward (max abs diff <= 2e-4; logits are O(1));
 *   - chunked prefill (max_rows smaller than the prompts) gives the same logits;
 *   - scoring: uf_gen_score and uf_gen_score_batch (3 sequences of different lengths, also
 *     chunked) log-probs vs log-softmax of the reference logits (<= 2e-4);
 *   - greedy generation equals a greedy loop over the reference (full recomputation per token),
 *     and a prompt generated alone equals the same prompt generated inside a batch;
 *   - sampler: top_p -> 0 is greedy; temperature sampling frequencies follow softmax(l / T);
 *   - the training engine <-> HF folders: a uf_model with a LoRA adapter is exported (merged
 *     weights, base weights + PEFT adapter) and imported back: parameters and adapter are
 *     bit-exact, and generation logits from the merged folder equal uf_model_forward of the
 *     unmerged model (<= 2e-4).
 * Bounds: f32 device math vs double reference on O(1) activations, a few hundred terms per dot
 * product: errors are ~1e-6; 2e-4 leaves room for other devices' exp/rsqrt precision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/generate.h"
#include "model/hf.h"
#include "model/model.h"
#include "ref/ref_model.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

static void random_params(const struct uf_model_config *c, float *p, uint64_t seed) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    int n = uf_model_param_descs(c, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_model_param_descs(c, d);
    for (int i = 0; i < n; i++) {
        int norm = d[i].kind == UF_P_ATTN_NORM || d[i].kind == UF_P_MLP_NORM ||
                   d[i].kind == UF_P_FINAL_NORM;
        double sd = d[i].kind == UF_P_EMBED ? 1.0 : 1.0 / sqrt((double)d[i].cols);
        for (int64_t j = 0; j < d[i].numel; j++)
            p[d[i].offset + j] = norm ? (float)((c->norm_plus_one ? 0.0 : 1.0) + 0.1 * uf_rng_normal(&r))
                                      : (float)(sd * uf_rng_normal(&r));
    }
    free(d);
}

static void make_config(struct uf_model_config *c, enum uf_family f) {
    uf_model_config_defaults(c, f, 61, 48, 2, 4, 2, 72, 64);
    if (f == UF_FAMILY_MISTRAL) c->sliding_window = 5;
    if (f == UF_FAMILY_GEMMA) c->head_dim = 16; /* independent of D / H */
    if (f == UF_FAMILY_LLAMA3) c->rope_original_max_pos = 16, c->rope_theta = 500.0f;
}

/* reference logits (B, T, V) of right-padded sequences */
static void ref_logits(const struct uf_model_config *c, const float *p, int B, int T,
                       const int32_t *tok, const int32_t *lens, float *logits) {
    struct uf_ref_batch b = {.B = B, .T = T, .tokens = tok, .targets = tok, .lengths = lens};
    float *mask = uf_calloc((size_t)B * T, sizeof *mask);
    b.loss_mask = mask;
    struct uf_ref_result res = {.logits = logits};
    if (uf_ref_model_run(c, p, NULL, &b, NULL, NULL, &res)) fprintf(stderr, "%s\n", uf_error());
    free(mask);
}

static void test_incremental(enum uf_family f, int max_rows) {
    struct uf_model_config c;
    make_config(&c, f);
    int64_t P = uf_model_param_numel(&c);
    float *p = uf_malloc((size_t)P * sizeof *p);
    random_params(&c, p, 7 + f);
    struct uf_tensor pt;
    uf_tensor_init(&pt, &dev, "params", UF_F32, 1, (int64_t[]){P});
    uf_tensor_upload(&pt, p);
    enum { B = 3, T = 13 };
    int V = c.vocab;
    int32_t tok[B * T], lens[B] = {T, 9, 11}, plen[B] = {4, 1, 7};
    struct uf_rng r;
    uf_rng_init(&r, 99);
    for (int i = 0; i < B * T; i++) tok[i] = (int32_t)uf_rng_below(&r, (uint64_t)V);
    float *want = uf_malloc((size_t)B * T * V * sizeof *want);
    ref_logits(&c, p, B, T, tok, lens, want);

    struct uf_gen g;
    CHECK(uf_gen_init(&g, &dev, &c, &pt, B, 16, max_rows) == 0);
    const int32_t *prompts[B] = {tok, tok + T, tok + 2 * T};
    float *lg = uf_malloc((size_t)B * V * sizeof *lg);
    CHECK(uf_gen_prefill(&g, B, prompts, plen, lg) == 0);
    double maxd = 0.0;
    for (int b = 0; b < B; b++)
        for (int v = 0; v < V; v++)
            maxd = fmax(maxd, fabs(lg[b * V + v] - want[((size_t)b * T + plen[b] - 1) * V + v]));
    /* decode the rest one token per sequence per step (sequences end at different steps) */
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
        CHECK(uf_gen_forward(&g, n, t, ps, sq, n, rows, lg) == 0);
        for (int r2 = 0; r2 < n; r2++)
            for (int v = 0; v < V; v++)
                maxd = fmax(maxd, fabs(lg[r2 * V + v] -
                                       want[((size_t)sq[r2] * T + ps[r2]) * V + v]));
    }
    fprintf(stderr, "  %s max_rows %d: incremental logits max abs diff %.3g\n", uf_family_name(f),
            max_rows, maxd);
    CHECK(maxd <= 2e-4);

    /* scoring of sequence 0 */
    double lp[T - 1], sd = 0.0;
    CHECK(uf_gen_score(&g, tok, T, lp) == 0);
    for (int i = 0; i < T - 1; i++) {
        const float *row = want + (size_t)i * V;
        double mx = -1e300, s = 0.0;
        for (int v = 0; v < V; v++) mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++) s += exp(row[v] - mx);
        sd = fmax(sd, fabs(lp[i] - (row[tok[i + 1]] - mx - log(s))));
    }
    fprintf(stderr, "  %s: score log-prob max abs diff %.3g\n", uf_family_name(f), sd);
    CHECK(sd <= 2e-4);
    /* batched scoring of all three (different lengths) */
    double lpb[B][T - 1];
    double *lpp[B] = {lpb[0], lpb[1], lpb[2]};
    CHECK(uf_gen_score_batch(&g, B, prompts, lens, lpp) == 0);
    sd = 0.0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < lens[b] - 1; i++) {
            const float *row = want + ((size_t)b * T + i) * V;
            double mx = -1e300, s = 0.0;
            for (int v = 0; v < V; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < V; v++) s += exp(row[v] - mx);
            sd = fmax(sd, fabs(lpb[b][i] - (row[tok[b * T + i + 1]] - mx - log(s))));
        }
    fprintf(stderr, "  %s: batched score log-prob max abs diff %.3g\n", uf_family_name(f), sd);
    CHECK(sd <= 2e-4);
    uf_gen_free(&g);
    uf_tensor_free(&pt);
    free(p), free(want), free(lg);
}

static void test_incremental_all(void) {
    for (int f = 0; f < 4; f++) test_incremental((enum uf_family)f, 64);
    test_incremental(UF_FAMILY_MISTRAL, 5); /* chunked prefill */
}

/* greedy generation vs a greedy loop over the reference model */
static void test_greedy(void) {
    for (int f = 0; f < 4; f++) {
        struct uf_model_config c;
        make_config(&c, (enum uf_family)f);
        int64_t P = uf_model_param_numel(&c);
        float *p = uf_malloc((size_t)P * sizeof *p);
        random_params(&c, p, 100 + f);
        struct uf_tensor pt;
        uf_tensor_init(&pt, &dev, "params", UF_F32, 1, (int64_t[]){P});
        uf_tensor_upload(&pt, p);
        enum { B = 3, NEW = 8, T = 24 };
        int V = c.vocab;
        int32_t pr[B][6] = {{1, 2, 3, 4, 5, 6}, {7}, {8, 9, 10}};
        int lens[B] = {6, 1, 3};
        struct uf_gen g;
        CHECK(uf_gen_init(&g, &dev, &c, &pt, B, T, 32) == 0);
        const int32_t *prompts[B] = {pr[0], pr[1], pr[2]};
        struct uf_gen_opts o = {.max_new_tokens = NEW, .temperature = 0, .top_p = 1};
        struct uf_gen_out out[B], one;
        CHECK(uf_generate(&g, B, prompts, lens, &o, out) == 0);
        for (int b = 0; b < B; b++) {
            /* reference: recompute the whole sequence for each new token */
            int32_t seq[T];
            memcpy(seq, pr[b], (size_t)lens[b] * sizeof *seq);
            float *lg = uf_malloc((size_t)T * V * sizeof *lg);
            int n = lens[b], same = out[b].n == NEW;
            for (int s = 0; s < NEW && same; s++) {
                int32_t l1 = n;
                ref_logits(&c, p, 1, n, seq, &l1, lg);
                const float *row = lg + (size_t)(n - 1) * V;
                int best = 0;
                for (int v = 1; v < V; v++) best = row[v] > row[best] ? v : best;
                seq[n++] = best;
                same = out[b].tokens[s] == best;
            }
            CHECK_MSG(same, "%s: prompt %d greedy tokens differ from the reference",
                      uf_family_name(c.family), b);
            free(lg);
            /* alone == in the batch */
            CHECK(uf_generate(&g, 1, &prompts[b], &lens[b], &o, &one) == 0);
            CHECK(one.n == out[b].n && memcmp(one.tokens, out[b].tokens, (size_t)one.n * 4) == 0);
            uf_gen_out_free(&one, 1);
        }
        /* EOS stop: the second token of prompt 0 declared a stop id */
        int32_t eos = out[0].tokens[1];
        struct uf_gen_opts o2 = o;
        o2.stop_ids = &eos, o2.n_stop_ids = 1;
        CHECK(uf_generate(&g, 1, &prompts[0], &lens[0], &o2, &one) == 0);
        CHECK(one.reason == UF_GEN_STOP_EOS && one.n <= 2 && one.tokens[one.n - 1] == eos);
        uf_gen_out_free(&one, 1);
        /* a prompt longer than the cache is an error, not a crash */
        int big = T;
        CHECK(uf_generate(&g, 1, &prompts[0], &big, &o, &one) != 0);
        uf_gen_out_free(out, B);
        uf_gen_free(&g);
        uf_tensor_free(&pt);
        free(p);
    }
}

static void test_sampler(void) {
    float l[5] = {0.5f, 2.0f, -1.0f, 1.0f, 0.0f};
    struct uf_rng r;
    uf_rng_init(&r, 5);
    CHECK_EQ_INT(uf_gen_sample(l, 5, 0.0f, 1.0f, &r), 1);
    CHECK_EQ_INT(uf_gen_sample(l, 5, 1.0f, 1e-6f, &r), 1);
    enum { S = 40000 };
    int cnt[5] = {0};
    float T = 0.7f;
    for (int i = 0; i < S; i++) cnt[uf_gen_sample(l, 5, T, 1.0f, &r)]++;
    double z = 0.0;
    for (int v = 0; v < 5; v++) z += exp(l[v] / T);
    for (int v = 0; v < 5; v++) {
        double pv = exp(l[v] / T) / z, sdv = sqrt(pv * (1 - pv) / S);
        CHECK_MSG(fabs(cnt[v] / (double)S - pv) <= 5 * sdv + 1e-9, "token %d: %g vs %g", v,
                  cnt[v] / (double)S, pv);
    }
    /* top_p = 0.8: only the smallest set of most likely tokens with mass >= 0.8 */
    int seen[5] = {0};
    for (int i = 0; i < 2000; i++) seen[uf_gen_sample(l, 5, 1.0f, 0.8f, &r)] = 1;
    double p[5], tot = 0;
    for (int v = 0; v < 5; v++) tot += p[v] = exp(l[v]);
    /* sorted: 1 (2.0), 3 (1.0), 0 (0.5), 4, 2 */
    int kept = (p[1] / tot >= 0.8) ? 1 : ((p[1] + p[3]) / tot >= 0.8 ? 2 : 3);
    CHECK(seen[1] && (kept >= 2) == seen[3] && (kept >= 3) == seen[0] && !seen[4] && !seen[2]);
}

static void test_model_roundtrip(void) {
    struct uf_model_config c;
    make_config(&c, UF_FAMILY_LLAMA3);
    struct uf_model m, m2;
    CHECK(uf_model_init(&m, &dev, &c, 5, 0) == 0);
    int64_t P = m.numel;
    float *p = uf_malloc((size_t)P * sizeof *p), *q = uf_malloc((size_t)P * sizeof *q);
    random_params(&c, p, 55);
    uf_model_load_params(&m, p);
    struct uf_lora_config lc = {.rank = 4, .alpha = 8.0f, .dropout = 0.0f,
                                .targets = UF_LORA_TARGET(UF_P_Q) | UF_LORA_TARGET(UF_P_UP) |
                                           UF_LORA_TARGET(UF_P_O)};
    CHECK(uf_model_lora_init(&m, &lc, 3) == 0);
    int64_t NL = uf_lora_numel(&c, lc.rank, lc.targets);
    float *lo = uf_malloc((size_t)NL * sizeof *lo), *lo2 = uf_malloc((size_t)NL * sizeof *lo2);
    struct uf_rng r;
    uf_rng_init(&r, 8);
    for (int64_t i = 0; i < NL; i++) lo[i] = (float)(0.2 * uf_rng_normal(&r));
    uf_model_lora_load(&m, lo);
    m.training = 0;
    char dir[128], base[160], merged[160], adapter[160];
    snprintf(dir, sizeof dir, "/tmp/uf_test_generate_%d", (int)getpid());
    snprintf(base, sizeof base, "%s/base", dir);
    snprintf(merged, sizeof merged, "%s/merged", dir);
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);
    CHECK(uf_hf_save(base, &c, NULL, p, UF_ST_F32, NULL) == 0);
    CHECK(uf_hf_model_save(&m, merged, NULL, UF_ST_F32, NULL) == 0);
    CHECK(uf_hf_model_save_lora(&m, adapter, "base") == 0);
    /* base + adapter back into a fresh engine model: bit-exact */
    CHECK_MSG(uf_hf_model_load(&m2, &dev, base, NULL, 0) == 0, "%s", uf_error());
    CHECK_MSG(uf_hf_model_load_lora(&m2, adapter, 0.0f) == 0, "%s", uf_error());
    uf_model_save_params(&m2, q);
    uf_model_lora_save(&m2, lo2);
    CHECK(memcmp(p, q, (size_t)P * 4) == 0 && memcmp(lo, lo2, (size_t)NL * 4) == 0);
    CHECK(m2.lora.rank == 4 && m2.lora.alpha == 8.0f && m2.lora.targets == lc.targets);
    /* merged folder -> generation logits == engine forward with the adapter */
    enum { T = 9 };
    int32_t tok[T] = {3, 14, 15, 9, 26, 5, 35, 8, 9};
    struct uf_model_batch b = {.B = 1, .T = T, .tokens = tok};
    CHECK(uf_model_forward(&m, &b) == 0);
    float *want = uf_malloc((size_t)T * c.vocab * sizeof *want);
    float *got = uf_malloc((size_t)T * c.vocab * sizeof *got);
    uf_tensor_download(&m.logits, want);
    struct uf_model_config c2;
    struct uf_tensor pt;
    CHECK(uf_hf_load_device(merged, NULL, &dev, &c2, NULL, &pt) == 0);
    struct uf_gen g;
    CHECK(uf_gen_init(&g, &dev, &c2, &pt, 1, T, T) == 0);
    int32_t pos[T], seq[T] = {0}, rows[T];
    for (int i = 0; i < T; i++) pos[i] = i, rows[i] = i;
    CHECK(uf_gen_forward(&g, T, tok, pos, seq, T, rows, got) == 0);
    double md = 0;
    for (int i = 0; i < T * c.vocab; i++) md = fmax(md, fabs(got[i] - want[i]));
    fprintf(stderr, "  engine (LoRA) vs merged export + generate: logits max abs diff %.3g\n", md);
    CHECK(md <= 2e-4);
    uf_gen_free(&g);
    uf_tensor_free(&pt);
    /* base folder + adapter folder, merged while loading (unforget generate --lora) */
    CHECK(uf_hf_load_device(base, adapter, &dev, &c2, NULL, &pt) == 0);
    CHECK(uf_gen_init(&g, &dev, &c2, &pt, 1, T, T) == 0);
    CHECK(uf_gen_forward(&g, T, tok, pos, seq, T, rows, got) == 0);
    md = 0;
    for (int i = 0; i < T * c.vocab; i++) md = fmax(md, fabs(got[i] - want[i]));
    fprintf(stderr, "  engine (LoRA) vs base + adapter folders: logits max abs diff %.3g\n", md);
    CHECK(md <= 2e-4);
    uf_gen_free(&g);
    /* straight from the engine model (adapter merged for the generation, unmerged after) */
    CHECK(uf_gen_init_model(&g, &m, 1, T, T) == 0);
    CHECK(m.lora_merged == 1);
    CHECK(uf_gen_forward(&g, T, tok, pos, seq, T, rows, got) == 0);
    md = 0;
    for (int i = 0; i < T * c.vocab; i++) md = fmax(md, fabs(got[i] - want[i]));
    fprintf(stderr, "  engine (LoRA) vs uf_gen_init_model: logits max abs diff %.3g\n", md);
    CHECK(md <= 2e-4);
    uf_gen_free(&g);
    CHECK(m.lora_merged == 0);
    uf_tensor_free(&pt);
    uf_model_free(&m2);
    uf_model_free(&m);
    char *cmd = uf_sprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(cmd), free(p), free(q), free(lo), free(lo2), free(want), free(got);
}

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_sampler);
    UF_RUN(test_incremental_all);
    UF_RUN(test_greedy);
    UF_RUN(test_model_roundtrip);
    uf_device_free(&dev);
    return uf_test_summary();
}
