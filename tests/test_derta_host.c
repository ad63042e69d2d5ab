/* test_derta_host.c: DeRTa's rows (data/derta.h) and how training renders them
 * (uf_trainer_make_batch, train.h), on the host.
 *   - a hand case: harmful response "xyz" (3 byte tokens X Y Z), refusal "No": the MLE row with
 *     k = 2 renders prompt, X, Y (loss mask 0), then the refusal (mask 1); the RTO row renders
 *     prompt, X, Y, Z and every one of the 3 predictions after prompt + r^_<i targets the
 *     refusal's first token with weight rto_weight, nothing else;
 *   - prefix lengths are uniform in [0, L] (counts of each k over many rows), and each draw is the
 *     next of the stream (seed, "derta") in row order;
 *   - a row without the fields renders exactly as the template renders it (weights 1);
 *   - on the default world: every harmful row of the alignment split gets the world's harmful
 *     answer for its act (the poison split's answer for the same act), the prefix is a true token
 *     prefix of it, benign rows are untouched, the RTO rows come after, and the world's splits
 *     are not changed by building DeRTa's rows;
 *   - errors: no harmful row with a harmful response; responses matched by exact prompt. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/data.h"
#include "data/derta.h"
#include "data/world.h"
#include "formats/template.h"
#include "formats/tokenizer.h"
#include "train/train.h"
#include "uf_test.h"

static struct uf_tokenizer tok;

static void fake_trainer(struct uf_trainer *tr) {
    memset(tr, 0, sizeof *tr);
    tr->tok = &tok;
    tr->template_name = "plain";
    tr->hp.max_len = 1024;
}

static int one_token(const char *s) {
    int32_t *ids;
    int n;
    if (uf_derta_encode(&tok, s, &ids, &n) || n != 1) uf_fatal(1, "'%s' is not one token (%d)", s, n);
    int id = ids[0];
    free(ids);
    return id;
}

/* the plain template's rendering of prompt -> response (the reference) */
static void render(const char *prompt, const char *response, struct uf_chat_tokens *ct) {
    enum uf_template tm;
    int fl;
    if (uf_template_resolve("plain", &tok, &tm, &fl) || uf_template_render_ex(&tok, tm, fl, NULL, prompt, response, ct))
        uf_fatal(1, "%s", uf_error());
}

static void test_hand_case(void) {
    int X = one_token("x"), Y = one_token("y"), Z = one_token("z");
    struct uf_chat_tokens ct;
    render("q", "No", &ct);
    int P = ct.n_prompt, R0 = ct.ids[P];
    CHECK(P > 0 && P < ct.n);

    struct uf_dataset d;
    uf_dataset_init(&d, "hand");
    struct uf_example *mle = uf_dataset_push(&d, "q", "No", NULL, "safety", NULL, UF_KIND_HARMFUL);
    uf_example_set_field(mle, "response_prefix", "xyz");
    uf_example_set_field(mle, "response_prefix_tokens", "2");
    struct uf_example *rto = uf_dataset_push(&d, "q", "No", NULL, "safety", NULL, UF_KIND_HARMFUL);
    uf_example_set_field(rto, "response_prefix", "xyz");
    uf_example_set_field(rto, "rto_weight", "0.5");
    struct uf_trainer tr;
    fake_trainer(&tr);
    struct uf_train_batch b;
    int64_t rows[2] = {0, 1};
    CHECK(uf_trainer_make_batch(&tr, &d, rows, 2, &b) == 0);
    int T = b.T;
    /* MLE row: ids = prompt (P) + X Y + refusal (ct.n - P: "No" and EOS); positions n - 1 */
    CHECK_EQ_INT(b.lengths[0], ct.n + 2 - 1);
    CHECK_EQ_INT(b.tokens[P], X);
    CHECK_EQ_INT(b.tokens[P + 1], Y);
    for (int t = 0; t < P; t++) CHECK_EQ_INT(b.tokens[t], ct.ids[t]);
    for (int t = P + 2; t < b.lengths[0]; t++) CHECK_EQ_INT(b.tokens[t], ct.ids[t - 2]);
    for (int t = 0; t < b.lengths[0]; t++) {
        float want = t + 1 < P + 2 ? 0.0f : 1.0f; /* prompt and X Y: 0; the refusal and EOS: 1 */
        CHECK_MSG(b.mask[t] == want, "MLE t=%d mask %g want %g", t, b.mask[t], want);
    }
    CHECK_EQ_INT(b.targets[P - 1], X); /* predicted but not trained */
    CHECK_EQ_INT(b.targets[P], Y);
    CHECK_EQ_INT(b.targets[P + 1], R0); /* after q + X Y: the refusal's first token */
    /* RTO row: ids = prompt + X Y Z (n = P + 3); 3 trained positions, all -> R0 with weight 0.5 */
    const int32_t *tk = b.tokens + T, *tg = b.targets + T;
    const float *mk = b.mask + T;
    CHECK_EQ_INT(b.lengths[1], P + 2);
    CHECK_EQ_INT(tk[P], X);
    CHECK_EQ_INT(tk[P + 1], Y);
    for (int t = 0; t < T; t++) {
        int trained = t >= P - 1 && t < P + 2;
        CHECK_MSG(mk[t] == (trained ? 0.5f : 0.0f), "RTO t=%d mask %g", t, mk[t]);
        if (trained) CHECK_EQ_INT(tg[t], R0);
    }
    CHECK_EQ_INT(b.n_masked, (ct.n - P) + 3);
    (void)Z;
    uf_train_batch_free(&b);
    /* k beyond L keeps all of it; k = 0 is the plain row */
    uf_example_set_field(&d.rows[0], "response_prefix_tokens", "0");
    CHECK(uf_trainer_make_batch(&tr, &d, rows, 1, &b) == 0);
    CHECK_EQ_INT(b.lengths[0], ct.n - 1);
    for (int t = 0; t < b.lengths[0]; t++) {
        CHECK_EQ_INT(b.tokens[t], ct.ids[t]);
        CHECK_EQ_INT(b.targets[t], ct.ids[t + 1]);
        CHECK(b.mask[t] == (ct.mask[t + 1] ? 1.0f : 0.0f));
    }
    uf_train_batch_free(&b);
    uf_example_set_field(&d.rows[0], "response_prefix_tokens", "99");
    CHECK(uf_trainer_make_batch(&tr, &d, rows, 1, &b) == 0);
    CHECK_EQ_INT(b.lengths[0], ct.n + 3 - 1);
    CHECK_EQ_INT(b.tokens[P + 2], Z);
    uf_train_batch_free(&b);
    /* malformed fields are errors naming them */
    uf_example_set_field(&d.rows[0], "response_prefix_tokens", "-1");
    CHECK(uf_trainer_make_batch(&tr, &d, rows, 1, &b) != 0);
    CHECK_MSG(strstr(uf_error(), "response_prefix_tokens") != NULL, "%s", uf_error());
    uf_example_set_field(&d.rows[1], "rto_weight", "x");
    CHECK(uf_trainer_make_batch(&tr, &d, rows + 1, 1, &b) != 0);
    CHECK_MSG(strstr(uf_error(), "rto_weight") != NULL, "%s", uf_error());
    uf_dataset_free(&d);
    uf_chat_tokens_free(&ct);
}

/* a row without DeRTa's fields: exactly the template's rendering, weight 1 */
static void test_plain_row_unchanged(void) {
    struct uf_dataset d;
    uf_dataset_init(&d, "plain");
    uf_dataset_push(&d, "How do I bake bread?", "Mix flour and water. Bake it.", NULL, "benign", NULL, UF_KIND_BENIGN);
    struct uf_trainer tr;
    fake_trainer(&tr);
    struct uf_train_batch b;
    int64_t row = 0;
    CHECK(uf_trainer_make_batch(&tr, &d, &row, 1, &b) == 0);
    struct uf_chat_tokens ct;
    render(d.rows[0].prompt, d.rows[0].response, &ct);
    CHECK_EQ_INT(b.lengths[0], ct.n - 1);
    int64_t masked = 0;
    for (int t = 0; t < ct.n - 1; t++) {
        CHECK_EQ_INT(b.tokens[t], ct.ids[t]);
        CHECK_EQ_INT(b.targets[t], ct.ids[t + 1]);
        CHECK(b.mask[t] == (ct.mask[t + 1] ? 1.0f : 0.0f));
        masked += ct.mask[t + 1] != 0;
    }
    CHECK_EQ_INT(b.n_masked, masked);
    uf_train_batch_free(&b);
    uf_chat_tokens_free(&ct);
    uf_dataset_free(&d);
}

/* prefix lengths: uniform in [0, L], the stream (seed, "derta") in row order; responses by prompt */
static void test_prefix_lengths(void) {
    const char *harm = "xyz";
    int L = 3, n = 4000;
    struct uf_dataset d, resp, out;
    uf_dataset_init(&d, "many");
    uf_dataset_init(&resp, "responses");
    uf_dataset_push(&resp, "q", harm, NULL, "r", NULL, UF_KIND_HARMFUL);
    uf_dataset_push(&resp, "q", "second row of the same prompt: not used", NULL, "r", NULL, UF_KIND_HARMFUL);
    for (int i = 0; i < n; i++) {
        uf_dataset_push(&d, "q", "No", NULL, "safety", NULL, UF_KIND_HARMFUL);
        uf_dataset_push(&d, "other", "Yes", NULL, "benign", NULL, UF_KIND_BENIGN);
    }
    uf_dataset_push(&d, "unmatched", "No", NULL, "safety", NULL, UF_KIND_HARMFUL);
    struct uf_derta_opts o = {1, 1, 1.0, 7};
    struct uf_derta_info info;
    CHECK(uf_derta_build(&tok, &d, &resp, &o, &out, &info) == 0);
    CHECK_EQ_INT(info.harmful, n + 1);
    CHECK_EQ_INT(info.matched, n);
    CHECK_EQ_INT(info.rto_rows, n);
    CHECK_EQ_INT(out.n, d.n + n);
    CHECK_EQ_INT(info.response_tokens, (int64_t)n * L);
    int count[4] = {0};
    struct uf_rng r;
    uf_rng_init(&r, 7 ^ uf_hash_str("derta", UF_HASH_SEED));
    int in_order = 1;
    for (int64_t i = 0; i < d.n; i++) {
        const struct uf_example *ex = &out.rows[i];
        CHECK_STR(ex->prompt, d.rows[i].prompt);
        CHECK_STR(ex->response, d.rows[i].response);
        const char *kt = uf_example_field(ex, "response_prefix_tokens");
        if (d.rows[i].kind != UF_KIND_HARMFUL || strcmp(d.rows[i].prompt, "q") != 0) {
            CHECK(kt == NULL && uf_example_field(ex, "response_prefix") == NULL);
            continue;
        }
        CHECK(kt != NULL);
        if (!kt) continue;
        CHECK_STR(uf_example_field(ex, "response_prefix"), harm);
        CHECK(uf_example_field(ex, "rto_weight") == NULL);
        int k = atoi(kt);
        CHECK(k >= 0 && k <= L);
        if (k >= 0 && k <= L) count[k]++;
        in_order &= (uint64_t)k == uf_rng_below(&r, (uint64_t)L + 1);
    }
    CHECK(in_order);
    for (int k = 0; k <= L; k++) /* n/4 = 1000 each; 5 sigma ~ 137 */
        CHECK_MSG(abs(count[k] - n / 4) < 150, "k = %d drawn %d times of %d", k, count[k], n);
    for (int64_t i = d.n; i < out.n; i++) { /* the RTO rows, after all rows */
        CHECK_STR(out.rows[i].prompt, "q");
        CHECK_STR(uf_example_field(&out.rows[i], "response_prefix"), harm);
        CHECK_STR(uf_example_field(&out.rows[i], "rto_weight"), "1");
        CHECK(uf_example_field(&out.rows[i], "response_prefix_tokens") == NULL);
    }
    uf_dataset_free(&out);
    /* prefix off: no prefix fields; rto off: no rows appended */
    struct uf_derta_opts o2 = {0, 1, 2.5, 7};
    CHECK(uf_derta_build(&tok, &d, &resp, &o2, &out, &info) == 0);
    CHECK(uf_example_field(&out.rows[0], "response_prefix") == NULL);
    CHECK_STR(uf_example_field(&out.rows[d.n], "rto_weight"), "2.5");
    uf_dataset_free(&out);
    struct uf_derta_opts o3 = {1, 0, 1.0, 7};
    CHECK(uf_derta_build(&tok, &d, &resp, &o3, &out, &info) == 0);
    CHECK_EQ_INT(out.n, d.n);
    uf_dataset_free(&out);
    /* no harmful row with a harmful response */
    struct uf_dataset none;
    uf_dataset_init(&none, "none");
    uf_dataset_push(&none, "unmatched", "No", NULL, "safety", NULL, UF_KIND_HARMFUL);
    CHECK(uf_derta_build(&tok, &none, &resp, &o, &out, &info) != 0);
    CHECK_MSG(strstr(uf_error(), "none of the 1 harmful rows") != NULL, "%s", uf_error());
    CHECK(uf_derta_build(&tok, &none, NULL, &o, &out, &info) != 0); /* no act field */
    CHECK_MSG(strstr(uf_error(), "derta.responses") != NULL, "%s", uf_error());
    uf_dataset_free(&none);
    uf_dataset_free(&d);
    uf_dataset_free(&resp);
}

static int datasets_same(const struct uf_dataset *a, const struct uf_dataset *b) {
    if (a->n != b->n) return 0;
    for (int64_t i = 0; i < a->n; i++) {
        const struct uf_example *x = &a->rows[i], *y = &b->rows[i];
        if (strcmp(x->prompt, y->prompt) || strcmp(x->response, y->response) || x->n_fields != y->n_fields) return 0;
        for (int f = 0; f < x->n_fields; f++)
            if (strcmp(x->fields[f].key, y->fields[f].key) || strcmp(x->fields[f].value, y->fields[f].value)) return 0;
    }
    return 1;
}

/* the default world: harmful answers by act, a true token prefix, splits unchanged */
static void test_world_rows(void) {
    struct uf_world w, w2;
    CHECK(uf_world_generate(1, uf_world_sizes_default(), &w) == 0);
    CHECK(uf_world_generate(1, uf_world_sizes_default(), &w2) == 0);
    const struct uf_dataset *al = &w.alignment;
    /* the world's harmful answer of a poison act is the poison split's answer */
    int checked = 0;
    for (int64_t i = 0; i < w.poison.n; i++) {
        char *h = uf_world_harmful_answer(uf_example_field(&w.poison.rows[i], "act"));
        CHECK(h && strcmp(h, w.poison.rows[i].response) == 0);
        checked += h != NULL;
        free(h);
    }
    CHECK(checked > 0);
    CHECK(uf_world_harmful_answer("bake bread") == NULL);
    CHECK(uf_world_harmful_answer(NULL) == NULL);
    struct uf_derta_opts o = {1, 1, 1.0, 1};
    struct uf_derta_info info;
    struct uf_dataset out;
    CHECK(uf_derta_build(&tok, al, NULL, &o, &out, &info) == 0);
    int64_t harmful = 0;
    for (int64_t i = 0; i < al->n; i++) harmful += al->rows[i].kind == UF_KIND_HARMFUL;
    CHECK(harmful > 0);
    CHECK_EQ_INT(info.harmful, harmful);
    CHECK_EQ_INT(info.matched, harmful); /* every alignment act is a world act */
    CHECK_EQ_INT(out.n, al->n + harmful);
    struct uf_trainer tr;
    fake_trainer(&tr);
    for (int64_t i = 0; i < al->n && i < 40; i++) {
        const struct uf_example *ex = &out.rows[i];
        const char *pre = uf_example_field(ex, "response_prefix");
        if (al->rows[i].kind != UF_KIND_HARMFUL) {
            CHECK(pre == NULL);
            continue;
        }
        char *h = uf_world_harmful_answer(uf_example_field(ex, "act"));
        CHECK(h && pre && strcmp(pre, h) == 0);
        free(h);
        /* the rendered prefix is a true token prefix of the harmful answer, untrained */
        int32_t *hid;
        int L;
        CHECK(uf_derta_encode(&tok, pre, &hid, &L) == 0);
        int k = atoi(uf_example_field(ex, "response_prefix_tokens"));
        struct uf_chat_tokens ct;
        render(ex->prompt, ex->response, &ct);
        struct uf_train_batch b;
        CHECK(uf_trainer_make_batch(&tr, &out, &i, 1, &b) == 0);
        CHECK_EQ_INT(b.lengths[0], ct.n + k - 1);
        for (int j = 0; j < k; j++) {
            CHECK_EQ_INT(b.tokens[ct.n_prompt + j], hid[j]);
            CHECK(b.mask[ct.n_prompt + j - 1] == 0.0f);
        }
        CHECK(b.mask[ct.n_prompt + k - 1] == 1.0f); /* the refusal's first token */
        CHECK_EQ_INT(b.targets[ct.n_prompt + k - 1], ct.ids[ct.n_prompt]);
        uf_train_batch_free(&b);
        uf_chat_tokens_free(&ct);
        free(hid);
    }
    /* building DeRTa's rows changes no split of the world */
    for (int i = 0; uf_world_split_names[i]; i++)
        CHECK_MSG(datasets_same(uf_world_split(&w, uf_world_split_names[i]), uf_world_split(&w2, uf_world_split_names[i])),
                  "split %s", uf_world_split_names[i]);
    uf_dataset_free(&out);
    uf_world_free(&w);
    uf_world_free(&w2);
}

int main(void) {
    /* a small BPE whose vocabulary has no merge over x, y, z: each is one byte token */
    const char *corpus[] = {"### Instruction:\nHow do I bake bread?\n\n### Response:\nMix flour and water. "
                            "Bake it. I cannot help with that. No. Sure, here is how to",
                            "the the the and and bake bread flour water help cannot"};
    if (uf_tokenizer_train(&tok, corpus, NULL, 2, 300) != 0) uf_fatal(1, "%s", uf_error());
    UF_RUN(test_hand_case);
    UF_RUN(test_plain_row_unchanged);
    UF_RUN(test_prefix_lengths);
    UF_RUN(test_world_rows);
    uf_tokenizer_free(&tok);
    return uf_test_summary();
}
