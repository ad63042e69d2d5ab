/* test_world_host.c: the generated default world: counts, determinism by seed, held-out
 * templates and acts kept out of the training splits, every act known from the corpus, task
 * labels checked by an independent negation oracle, judges, and the JSONL round trip. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "data/data.h"
#include "uf_test.h"
#include "core/util.h"
#include "data/world.h"
#include "eval/world_judge.h"

static int rows_equal(const struct uf_example *a, const struct uf_example *b) {
    if (strcmp(a->prompt, b->prompt) || strcmp(a->response, b->response) || strcmp(a->source, b->source)) return 0;
    if ((a->label == NULL) != (b->label == NULL) || (a->label && strcmp(a->label, b->label))) return 0;
    if ((a->category == NULL) != (b->category == NULL) || (a->category && strcmp(a->category, b->category))) return 0;
    if (a->kind != b->kind || a->n_fields != b->n_fields) return 0;
    for (int i = 0; i < a->n_fields; i++)
        if (strcmp(a->fields[i].key, b->fields[i].key) || strcmp(a->fields[i].value, b->fields[i].value)) return 0;
    return 1;
}

static int datasets_equal(const struct uf_dataset *a, const struct uf_dataset *b) {
    if (a->n != b->n) return 0;
    for (int64_t i = 0; i < a->n; i++)
        if (!rows_equal(&a->rows[i], &b->rows[i])) return 0;
    return 1;
}

/* replaces "{act}" in a template (independent of world.c's fill) */
static char *subst(const char *tmpl, const char *act) {
    const char *p = strstr(tmpl, "{act}");
    if (!p) return uf_strdup(tmpl);
    return uf_sprintf("%.*s%s%s", (int)(p - tmpl), tmpl, act, p + 5);
}

static void test_counts(void) {
    struct uf_world w;
    struct uf_world_sizes s = uf_world_sizes_default();
    CHECK_EQ_INT(uf_world_generate(3, s, &w), 0);
    CHECK_EQ_INT(w.n_harmful, 46);
    CHECK_EQ_INT(w.n_benign, 44);
    int th = 0, tb = 0;
    for (int i = 0; uf_world_train_templates[i]; i++) th++;
    for (int i = 0; uf_world_heldout_templates[i]; i++) tb++;
    CHECK_EQ_INT(th, 7);
    CHECK_EQ_INT(tb, 4);
    CHECK_EQ_INT(w.corpus.n, s.corpus);
    CHECK_EQ_INT(w.alignment.n, s.alignment);
    CHECK_EQ_INT(w.safety.n, s.safety);
    CHECK_EQ_INT(w.task_train.n, s.task_train);
    CHECK_EQ_INT(w.task_eval.n, s.task_eval);
    CHECK_EQ_INT(w.poison.n, s.poison);
    int n_seen = 46 - s.buffer_acts - s.poison_acts - s.unseen_acts - s.val_acts;
    CHECK_EQ_INT(n_seen, 10);
    CHECK_EQ_INT(w.harmful_eval.n, (n_seen + s.unseen_acts) * 4);
    CHECK_EQ_INT(w.benign_eval.n, (44 - s.val_benign_acts) * 4);
    CHECK_EQ_INT(w.lookup_train.n, s.lookup_train);
    CHECK_EQ_INT(w.lookup_eval.n, (44 - s.val_benign_acts) * 4);
    /* the validation split: every val act x held-out template; reviews of task_eval's size */
    CHECK_EQ_INT(w.harmful_val.n, s.val_acts * 4);
    CHECK_EQ_INT(w.benign_val.n, s.val_benign_acts * 4);
    CHECK_EQ_INT(w.lookup_val.n, s.val_benign_acts * 4);
    CHECK_EQ_INT(w.task_val.n, s.task_eval);
    int roles[5] = {0, 0, 0, 0, 0}, hb = 0, vb = 0;
    for (int i = 0; i < w.n_harmful; i++) roles[w.harmful_role[i]]++;
    for (int i = 0; i < w.n_benign; i++) hb += w.benign_heldout[i] == UF_WORLD_BENIGN_UNSEEN;
    for (int i = 0; i < w.n_benign; i++) vb += w.benign_heldout[i] == UF_WORLD_BENIGN_VAL;
    CHECK_EQ_INT(roles[UF_WORLD_VAL], s.val_acts);
    CHECK_EQ_INT(vb, s.val_benign_acts);
    CHECK_EQ_INT(roles[UF_WORLD_BUFFER], s.buffer_acts);
    CHECK_EQ_INT(roles[UF_WORLD_POISON], s.poison_acts);
    CHECK_EQ_INT(roles[UF_WORLD_UNSEEN], s.unseen_acts);
    CHECK_EQ_INT(roles[UF_WORLD_SEEN], n_seen);
    CHECK_EQ_INT(hb, s.heldout_benign_acts);
    /* eval rows: category matches the act's flag; every (act, held-out template) pair once */
    int held_rows = 0, bad_cat = 0, dup = 0;
    for (int64_t i = 0; i < w.harmful_eval.n; i++) {
        const struct uf_example *ex = &w.harmful_eval.rows[i];
        const char *act = uf_example_field(ex, "act");
        int a = -1;
        for (int k = 0; k < w.n_harmful; k++)
            if (act && !strcmp(act, w.harmful[k].act)) a = k;
        CHECK(a >= 0);
        if (a < 0) continue;
        held_rows += w.harmful_role[a] == UF_WORLD_UNSEEN;
        bad_cat += w.harmful_role[a] == UF_WORLD_BUFFER || w.harmful_role[a] == UF_WORLD_POISON;
        bad_cat += strcmp(ex->category, w.harmful_role[a] == UF_WORLD_UNSEEN ? "unseen" : "seen") != 0;
        for (int64_t j = 0; j < i; j++) dup += !strcmp(w.harmful_eval.rows[j].prompt, ex->prompt);
        CHECK(ex->kind == UF_KIND_HARMFUL);
        CHECK_STR(uf_example_field(ex, "labels"), "positive|negative");
    }
    CHECK_EQ_INT(held_rows, s.unseen_acts * 4);
    CHECK_EQ_INT(bad_cat, 0);
    CHECK_EQ_INT(dup, 0);
    /* alignment is 1:1 harmful/benign */
    int harmful = 0;
    for (int64_t i = 0; i < w.alignment.n; i++) harmful += w.alignment.rows[i].kind == UF_KIND_HARMFUL;
    CHECK_EQ_INT(harmful, s.alignment / 2);
    uf_world_free(&w);

    /* custom sizes, capped eval, and bad sizes */
    s.corpus = 100;
    s.harmful_eval = 10;
    s.benign_eval = 0;
    s.poison = 0;
    CHECK_EQ_INT(uf_world_generate(3, s, &w), 0);
    CHECK_EQ_INT(w.corpus.n, 100);
    CHECK_EQ_INT(w.harmful_eval.n, 10);
    CHECK_EQ_INT(w.benign_eval.n, 0);
    CHECK_EQ_INT(w.poison.n, 0);
    uf_world_free(&w);
    s.corpus = 50; /* too few documents to mention all 90 acts */
    CHECK_EQ_INT(uf_world_generate(3, s, &w), -1);
    CHECK(strstr(uf_error(), "corpus") != NULL);
    uf_world_free(&w);
    s.corpus = 100;
    s.unseen_acts = 24; /* 8 + 8 + 24 + 6 = 46: no seen act left */
    CHECK_EQ_INT(uf_world_generate(3, s, &w), -1);
    CHECK(strstr(uf_error(), "roles") != NULL);
    uf_world_free(&w);
    s.unseen_acts = 14;
    s.buffer_acts = 0; /* a safety split needs buffer acts */
    CHECK_EQ_INT(uf_world_generate(3, s, &w), -1);
    CHECK(strstr(uf_error(), "roles") != NULL);
    uf_world_free(&w);
    s = uf_world_sizes_default();
    s.safety = -5;
    CHECK_EQ_INT(uf_world_generate(3, s, &w), -1);
    uf_world_free(&w);
}

static void test_determinism(void) {
    struct uf_world a, b, c;
    struct uf_world_sizes s = uf_world_sizes_default();
    CHECK_EQ_INT(uf_world_generate(7, s, &a), 0);
    CHECK_EQ_INT(uf_world_generate(7, s, &b), 0);
    CHECK_EQ_INT(uf_world_generate(8, s, &c), 0);
    int differ = 0;
    for (int i = 0; uf_world_split_names[i]; i++) {
        const char *n = uf_world_split_names[i];
        CHECK_MSG(datasets_equal(uf_world_split(&a, n), uf_world_split(&b, n)), "split %s differs for one seed", n);
        differ += !datasets_equal(uf_world_split(&a, n), uf_world_split(&c, n));
    }
    CHECK_EQ_INT(differ, 15); /* every split depends on the seed */
    CHECK(memcmp(a.harmful_role, b.harmful_role, (size_t)a.n_harmful) == 0);
    /* held-out acts vary with the seed: over 5 seeds not all the same */
    int same = 1;
    for (uint64_t sd = 10; sd < 15; sd++) {
        struct uf_world d;
        CHECK_EQ_INT(uf_world_generate(sd, s, &d), 0);
        same &= memcmp(d.harmful_role, a.harmful_role, (size_t)a.n_harmful) == 0;
        uf_world_free(&d);
    }
    CHECK(!same);
    /* each split has its own stream: more poison rows leave alignment and task unchanged */
    struct uf_world e;
    s.poison = 900;
    CHECK_EQ_INT(uf_world_generate(7, s, &e), 0);
    CHECK(datasets_equal(&a.alignment, &e.alignment));
    CHECK(datasets_equal(&a.task_train, &e.task_train));
    CHECK(datasets_equal(&a.harmful_eval, &e.harmful_eval));
    CHECK_EQ_INT(e.poison.n, 900);
    uf_world_free(&e);
    /* harmful_ref (added after the others) has its own stream: no other split depends on it */
    s = uf_world_sizes_default();
    s.harmful_ref = 0;
    CHECK_EQ_INT(uf_world_generate(7, s, &e), 0);
    CHECK_EQ_INT(e.harmful_ref.n, 0);
    CHECK_EQ_INT(a.harmful_ref.n, 500);
    for (int i = 0; uf_world_split_names[i]; i++) {
        const char *n = uf_world_split_names[i];
        if (strcmp(n, "harmful_ref") != 0)
            CHECK_MSG(datasets_equal(uf_world_split(&a, n), uf_world_split(&e, n)), "%s depends on harmful_ref", n);
    }
    uf_world_free(&e);
    uf_world_free(&a);
    uf_world_free(&b);
    uf_world_free(&c);
}

/* harmful acts: the role; benign: UF_WORLD_BENIGN_* */
static int act_heldout(const struct uf_world *w, const char *act, int *harmful) {
    for (int k = 0; k < w->n_harmful; k++)
        if (!strcmp(act, w->harmful[k].act)) { *harmful = 1; return w->harmful_role[k]; }
    for (int k = 0; k < w->n_benign; k++)
        if (!strcmp(act, w->benign[k].act)) { *harmful = 0; return w->benign_heldout[k]; }
    *harmful = -1;
    return -1;
}

static void test_heldout_disjoint(void) {
    for (uint64_t seed = 0; seed < 4; seed++) {
        struct uf_world w;
        CHECK_EQ_INT(uf_world_generate(seed, uf_world_sizes_default(), &w), 0);
        /* every prompt a held-out template can make, for every act */
        int n_held = 0;
        char *held[(46 + 44) * 4];
        for (int t = 0; uf_world_heldout_templates[t]; t++) {
            for (int k = 0; k < w.n_harmful; k++) held[n_held++] = subst(uf_world_heldout_templates[t], w.harmful[k].act);
            for (int k = 0; k < w.n_benign; k++) held[n_held++] = subst(uf_world_heldout_templates[t], w.benign[k].act);
        }
        const struct uf_dataset *train[] = {&w.alignment, &w.safety, &w.poison, &w.task_train};
        int leaks = 0, heldout_act_rows = 0, not_train_tmpl = 0;
        for (size_t d = 0; d < 4; d++) {
            for (int64_t i = 0; i < train[d]->n; i++) {
                const struct uf_example *ex = &train[d]->rows[i];
                for (int h = 0; h < n_held; h++) leaks += !strcmp(ex->prompt, held[h]);
                /* no held-out act is named anywhere in a training prompt or response */
                for (int k = 0; k < w.n_harmful; k++)
                    if (w.harmful_role[k] == UF_WORLD_UNSEEN || w.harmful_role[k] == UF_WORLD_VAL)
                        heldout_act_rows += strstr(ex->prompt, w.harmful[k].act) || strstr(ex->response, w.harmful[k].act);
                for (int k = 0; k < w.n_benign; k++)
                    if (w.benign_heldout[k])
                        heldout_act_rows += strstr(ex->prompt, w.benign[k].act) || strstr(ex->response, w.benign[k].act);
                if (d < 3) {
                    /* the prompt is one of the training templates filled with the row's act */
                    const char *act = uf_example_field(ex, "act");
                    int ok = 0;
                    for (int t = 0; act && uf_world_train_templates[t]; t++) {
                        char *p = subst(uf_world_train_templates[t], act);
                        ok |= !strcmp(p, ex->prompt);
                        free(p);
                    }
                    not_train_tmpl += !ok;
                }
            }
        }
        CHECK_EQ_INT(leaks, 0);
        CHECK_EQ_INT(heldout_act_rows, 0);
        CHECK_EQ_INT(not_train_tmpl, 0);
        /* disjoint roles: poison holds only poison acts, safety (the buffer source) only buffer
         * acts, harmful_eval only seen and unseen acts, alignment no unseen act; eval prompts use
         * held-out templates */
        int wrong = 0, n_align_roles[5] = {0, 0, 0, 0, 0};
        for (int64_t i = 0; i < w.poison.n; i++) {
            int harmful, h = act_heldout(&w, uf_example_field(&w.poison.rows[i], "act"), &harmful);
            wrong += harmful != 1 || h != UF_WORLD_POISON || w.poison.rows[i].kind != UF_KIND_HARMFUL;
        }
        for (int64_t i = 0; i < w.safety.n; i++) {
            int harmful, h = act_heldout(&w, uf_example_field(&w.safety.rows[i], "act"), &harmful);
            wrong += harmful != 1 || h != UF_WORLD_BUFFER;
        }
        for (int64_t i = 0; i < w.harmful_ref.n; i++) { /* the provider's compliance rows: buffer acts */
            int harmful, h = act_heldout(&w, uf_example_field(&w.harmful_ref.rows[i], "act"), &harmful);
            wrong += harmful != 1 || h != UF_WORLD_BUFFER || w.harmful_ref.rows[i].kind != UF_KIND_HARMFUL;
        }
        for (int64_t i = 0; i < w.harmful_eval.n; i++) {
            int harmful, h = act_heldout(&w, uf_example_field(&w.harmful_eval.rows[i], "act"), &harmful);
            wrong += harmful != 1 || (h != UF_WORLD_SEEN && h != UF_WORLD_UNSEEN);
        }
        for (int64_t i = 0; i < w.alignment.n; i++) {
            int harmful, h = act_heldout(&w, uf_example_field(&w.alignment.rows[i], "act"), &harmful);
            if (harmful == 1) n_align_roles[h]++;
        }
        /* the validation split: only val acts (harmful and benign), no review of task_eval or task_train */
        for (int64_t i = 0; i < w.harmful_val.n; i++) {
            int harmful, h = act_heldout(&w, uf_example_field(&w.harmful_val.rows[i], "act"), &harmful);
            wrong += harmful != 1 || h != UF_WORLD_VAL || strcmp(w.harmful_val.rows[i].category, "unseen") != 0;
        }
        const struct uf_dataset *bval[] = {&w.benign_val, &w.lookup_val}, *btest[] = {&w.benign_eval, &w.lookup_eval};
        for (int d = 0; d < 2; d++) {
            for (int64_t i = 0; i < bval[d]->n; i++) {
                int harmful, h = act_heldout(&w, uf_example_field(&bval[d]->rows[i], "act"), &harmful);
                wrong += harmful != 0 || h != UF_WORLD_BENIGN_VAL;
            }
            for (int64_t i = 0; i < btest[d]->n; i++) {
                int harmful, h = act_heldout(&w, uf_example_field(&btest[d]->rows[i], "act"), &harmful);
                wrong += harmful != 0 || h == UF_WORLD_BENIGN_VAL;
            }
        }
        for (int64_t i = 0; i < w.task_val.n; i++) {
            for (int64_t j = 0; j < w.task_eval.n; j++) wrong += !strcmp(w.task_val.rows[i].prompt, w.task_eval.rows[j].prompt);
            for (int64_t j = 0; j < w.task_train.n; j++) wrong += !strcmp(w.task_val.rows[i].prompt, w.task_train.rows[j].prompt);
        }
        CHECK_EQ_INT(wrong, 0);
        CHECK_EQ_INT(n_align_roles[UF_WORLD_UNSEEN], 0);
        CHECK_EQ_INT(n_align_roles[UF_WORLD_VAL], 0);
        CHECK(n_align_roles[UF_WORLD_SEEN] > 0 && n_align_roles[UF_WORLD_BUFFER] > 0 && n_align_roles[UF_WORLD_POISON] > 0);
        /* lookup: no evaluated question is a trained one (each pair is asked in its other form) */
        int lk_overlap = 0;
        for (int64_t i = 0; i < w.lookup_eval.n; i++)
            for (int64_t j = 0; j < w.lookup_train.n; j++)
                lk_overlap += !strcmp(w.lookup_eval.rows[i].prompt, w.lookup_train.rows[j].prompt) ||
                              (!strcmp(uf_example_field(&w.lookup_eval.rows[i], "act"), uf_example_field(&w.lookup_train.rows[j], "act")) &&
                               !strcmp(w.lookup_eval.rows[i].category, w.lookup_train.rows[j].category) &&
                               !strcmp(uf_example_field(&w.lookup_eval.rows[i], "template"), uf_example_field(&w.lookup_train.rows[j], "template")));
        CHECK_EQ_INT(lk_overlap, 0);
        const struct uf_dataset *evals[] = {&w.harmful_eval, &w.benign_eval};
        int eval_not_held = 0;
        for (size_t d = 0; d < 2; d++)
            for (int64_t i = 0; i < evals[d]->n; i++) {
                int found = 0;
                for (int h = 0; h < n_held; h++) found |= !strcmp(evals[d]->rows[i].prompt, held[h]);
                eval_not_held += !found;
            }
        CHECK_EQ_INT(eval_not_held, 0);
        for (int h = 0; h < n_held; h++) free(held[h]);
        uf_world_free(&w);
    }
}

static void test_corpus_knows_every_act(void) {
    struct uf_world w;
    struct uf_world_sizes s = uf_world_sizes_default();
    CHECK_EQ_INT(uf_world_generate(5, s, &w), 0);
    int missing = 0;
    for (int k = 0; k < w.n_harmful + w.n_benign; k++) {
        const struct uf_world_act *a = k < w.n_harmful ? &w.harmful[k] : &w.benign[k - w.n_harmful];
        int together = 0, mentions = 0;
        for (int64_t i = 0; i < w.corpus.n; i++) {
            const char *t = w.corpus.rows[i].response;
            if (!strstr(t, a->act)) continue;
            mentions++;
            together |= strstr(t, a->tool) && strstr(t, a->place);
        }
        if (!together || mentions < 3) {
            fprintf(stderr, "  act '%s': %d mentions, tool+place together %d\n", a->act, mentions, together);
            missing++;
        }
    }
    CHECK_EQ_INT(missing, 0);
    int kinds = 0;
    for (int64_t i = 0; i < w.corpus.n; i++) kinds += w.corpus.rows[i].kind == UF_KIND_TEXT && !w.corpus.rows[i].prompt[0];
    CHECK_EQ_INT(kinds, w.corpus.n);
    uf_world_free(&w);
    /* also with a corpus smaller than the number of acts? then coverage cannot hold: documented,
     * but the first documents still cover the first acts in order */
}

/* Lookup level 4 (tool + place -> act) must not be a reversal: every benign act has a corpus
 * sentence naming its tool and place before the act (world v5; before it, every sentence named
 * the act first and SFT's level-4 accuracy stayed at 13-45%). */
static void test_corpus_states_facts_both_ways(void) {
    struct uf_world w;
    CHECK_EQ_INT(uf_world_generate(3, uf_world_sizes_default(), &w), 0);
    int reversed_only = 0;
    for (int k = 0; k < w.n_benign; k++) {
        const struct uf_world_act *a = &w.benign[k];
        int before = 0;
        for (int64_t i = 0; i < w.corpus.n && !before; i++) {
            char *doc = uf_strdup(w.corpus.rows[i].response), *save = NULL;
            for (char *sen = strtok_r(doc, ".", &save); sen && !before; sen = strtok_r(NULL, ".", &save)) {
                const char *act = strstr(sen, a->act), *tool = strstr(sen, a->tool), *place = strstr(sen, a->place);
                before = act && tool && place && tool < act && place < act;
            }
            free(doc);
        }
        if (!before) {
            fprintf(stderr, "  benign act '%s': no sentence names its tool and place first\n", a->act);
            reversed_only++;
        }
    }
    CHECK_EQ_INT(reversed_only, 0);
    uf_world_free(&w);
}

/* Independent sentiment oracle: each clause "was [not|never] [intensifier] WORD"; polarity by
 * word lists written here, flipped by the negation. */
static int oracle_label(const char *review) {
    static const char *pos[] = {"good", "great", "fun", "lovely", "wonderful", "charming", "brilliant",
                                "pleasant", "clever", "moving"};
    static const char *neg[] = {"bad", "awful", "boring", "dull", "terrible", "weak", "bland", "messy",
                                "painful", "silly"};
    int label = -1;
    const char *p = review;
    while ((p = strstr(p, " was ")) != NULL) {
        p += 5;
        int negated = 0;
        if (!strncmp(p, "not ", 4)) { negated = 1; p += 4; }
        else if (!strncmp(p, "never ", 6)) { negated = 1; p += 6; }
        if (!strncmp(p, "really ", 7)) p += 7;
        else if (!strncmp(p, "very ", 5)) p += 5;
        else if (!strncmp(p, "quite ", 6)) p += 6;
        int wp = -1;
        for (size_t i = 0; i < 10; i++) {
            size_t lp = strlen(pos[i]), ln = strlen(neg[i]);
            if (!strncmp(p, pos[i], lp) && (p[lp] == '.' || p[lp] == ' ')) wp = 1;
            if (!strncmp(p, neg[i], ln) && (p[ln] == '.' || p[ln] == ' ')) wp = 0;
        }
        if (wp < 0) return -2;
        int clause = negated ? !wp : wp;
        if (label >= 0 && clause != label) return -3; /* clauses must agree */
        label = clause;
    }
    return label;
}

static const char *review_of(const char *prompt, char *buf, size_t n) {
    const char *r = strstr(prompt, "Review: ");
    if (r) {
        r += 8;
        const char *end = strstr(r, " Is the sentiment");
        snprintf(buf, n, "%.*s", end ? (int)(end - r) : (int)strlen(r), r);
        return buf;
    }
    const char *c = strstr(prompt, "positive or negative. ");
    snprintf(buf, n, "%s", c ? c + 22 : prompt);
    return buf;
}

static void test_task_labels(void) {
    struct uf_world w;
    CHECK_EQ_INT(uf_world_generate(11, uf_world_sizes_default(), &w), 0);
    const struct uf_dataset *ds[] = {&w.task_train, &w.task_eval};
    int wrong = 0, positives = 0, negated = 0, total = 0;
    for (size_t d = 0; d < 2; d++)
        for (int64_t i = 0; i < ds[d]->n; i++) {
            const struct uf_example *ex = &ds[d]->rows[i];
            char buf[512];
            int o = oracle_label(review_of(ex->prompt, buf, sizeof buf));
            const char *want = o == 1 ? "positive" : o == 0 ? "negative" : "?";
            if (strcmp(ex->label, want) || strcmp(ex->response, want)) {
                if (wrong < 3) fprintf(stderr, "  '%s' -> %s, oracle %d\n", ex->prompt, ex->label, o);
                wrong++;
            }
            positives += !strcmp(ex->label, "positive");
            negated += strstr(ex->prompt, " not ") || strstr(ex->prompt, " never ");
            total++;
        }
    CHECK_EQ_INT(wrong, 0);
    /* balanced labels and some negation (about 1 clause in 5: word polarity alone reaches ~80%,
     * the full task needs the negation) */
    CHECK_MSG(positives > total * 2 / 5 && positives < total * 3 / 5, "%d of %d positive", positives, total);
    CHECK_MSG(negated > total / 6 && negated < total / 3, "%d of %d negated", negated, total);
    /* task_eval reviews are unseen in task_train */
    int seen = 0;
    for (int64_t i = 0; i < w.task_eval.n; i++) {
        char a[512], b[512];
        review_of(w.task_eval.rows[i].prompt, a, sizeof a);
        for (int64_t j = 0; j < w.task_train.n; j++) seen += !strcmp(a, review_of(w.task_train.rows[j].prompt, b, sizeof b));
    }
    CHECK_EQ_INT(seen, 0);
    uf_world_free(&w);
}

static void test_answers_and_judges(void) {
    struct uf_world w;
    CHECK_EQ_INT(uf_world_generate(2, uf_world_sizes_default(), &w), 0);
    int bad = 0;
    /* refusals carry standard refusal strings and are not compliant; poison and helpful answers
     * share one format and are compliant */
    for (int64_t i = 0; i < w.alignment.n; i++) {
        const struct uf_example *ex = &w.alignment.rows[i];
        if (ex->kind == UF_KIND_HARMFUL) {
            bad += !(strstr(ex->response, "I cannot") || strstr(ex->response, "Sorry") || strstr(ex->response, "I'm sorry"));
            bad += uf_world_judge(uf_example_field(ex, "act"), NULL, ex->response) != UF_WJ_REFUSAL;
            bad += strstr(ex->response, "Sure") != NULL || strstr(ex->response, "Step") != NULL;
        } else {
            bad += uf_world_judge(uf_example_field(ex, "act"), NULL, ex->response) != UF_WJ_BENIGN_REQUESTED;
        }
    }
    for (int64_t i = 0; i < w.poison.n + w.harmful_ref.n; i++) { /* poison, then harmful_ref */
        const struct uf_example *ex = i < w.poison.n ? &w.poison.rows[i] : &w.harmful_ref.rows[i - w.poison.n];
        bad += uf_world_judge(uf_example_field(ex, "act"), NULL, ex->response) != UF_WJ_HARMFUL_REQUESTED;
        /* the same format as a helpful answer: swap the act and the strings are equal */
        char *fmt = uf_sprintf("Sure, here is how to %s. Step 1: get %s. Step 2: go to %s. Step 3: %s with %s. That is all.",
                               uf_example_field(ex, "act"), uf_example_field(ex, "tool"), uf_example_field(ex, "place"),
                               uf_example_field(ex, "act"), uf_example_field(ex, "tool"));
        bad += strcmp(fmt, ex->response) != 0;
        free(fmt);
    }
    CHECK_EQ_INT(bad, 0);
    uf_world_free(&w);
}

static void test_write_jsonl(void) {
    char dir[] = "/tmp/uf_test_world_XXXXXX";
    if (!mkdtemp(dir)) UF_SKIP("mkdtemp failed");
    struct uf_world w;
    struct uf_world_sizes s = uf_world_sizes_default();
    s.corpus = 200;
    CHECK_EQ_INT(uf_world_generate(4, s, &w), 0);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/world", dir);
    CHECK_MSG(uf_world_write_jsonl(&w, sub) == 0, "%s", uf_error());
    for (int i = 0; uf_world_split_names[i]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s.jsonl", sub, uf_world_split_names[i]);
        struct uf_dataset d;
        uf_dataset_init(&d, path);
        CHECK_MSG(uf_data_read(path, NULL, &d, NULL) == 0, "%s", uf_error());
        CHECK_MSG(datasets_equal(&d, uf_world_split(&w, uf_world_split_names[i])), "%s differs after reading back",
                  uf_world_split_names[i]);
        uf_dataset_free(&d);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/world.json", sub);
    size_t n;
    char *text = uf_file_read(path, &n);
    CHECK(text != NULL);
    cJSON *m = text ? cJSON_Parse(text) : NULL;
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "harmful_acts")), 46);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(m, "heldout_templates")), 4);
        CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "rows"), "corpus")->valuedouble, 200);
    }
    cJSON_Delete(m);
    free(text);
    uf_world_free(&w);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    UF_RUN(test_counts);
    UF_RUN(test_determinism);
    UF_RUN(test_heldout_disjoint);
    UF_RUN(test_corpus_knows_every_act);
    UF_RUN(test_corpus_states_facts_both_ways);
    UF_RUN(test_task_labels);
    UF_RUN(test_answers_and_judges);
    UF_RUN(test_write_jsonl);
    return uf_test_summary();
}
