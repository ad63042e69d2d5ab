/* test_mixture_host.c: poisoned mixtures (exact counts for every seed), sampling without
 * replacement, SafeInstr, Lisa-style alternation and epoch iteration. */
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "data/mixture.h"
#include "uf_test.h"
#include "core/util.h"

/* n rows with unique prompts "<tag> <i>" */
static void make_source(struct uf_dataset *d, const char *tag, int64_t n, enum uf_example_kind kind) {
    uf_dataset_init(d, tag);
    for (int64_t i = 0; i < n; i++) {
        char p[64];
        snprintf(p, sizeof p, "%s %lld", tag, (long long)i);
        uf_dataset_push(d, p, "r", NULL, tag, NULL, kind);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* number of distinct prompts */
static int64_t distinct_prompts(const struct uf_dataset *d) {
    if (d->n == 0) return 0;
    char **s = uf_malloc((size_t)d->n * sizeof *s);
    for (int64_t i = 0; i < d->n; i++) s[i] = d->rows[i].prompt;
    qsort(s, (size_t)d->n, sizeof *s, cmp_str);
    int64_t k = 1;
    for (int64_t i = 1; i < d->n; i++) k += strcmp(s[i], s[i - 1]) != 0;
    free(s);
    return k;
}

static void test_poison_exact_counts(void) {
    struct uf_dataset task, harm;
    make_source(&task, "task", 5000, UF_KIND_TASK);
    make_source(&harm, "harm", 500, UF_KIND_HARMFUL);
    for (uint64_t seed = 0; seed < 20; seed++) {
        struct uf_dataset out;
        uf_dataset_init(&out, "mix");
        struct uf_mix_info info;
        CHECK_EQ_INT(uf_mix_poison(&task, &harm, 1000, 0.1, seed, 0, &out, &info), 0);
        int64_t h = 0, t = 0, tag_h = 0, from_harm = 0;
        for (int64_t i = 0; i < out.n; i++) {
            h += out.rows[i].kind == UF_KIND_HARMFUL;
            t += out.rows[i].kind == UF_KIND_TASK;
            tag_h += !strcmp(uf_example_field(&out.rows[i], "mix"), "poison");
            from_harm += !strncmp(out.rows[i].prompt, "harm ", 5);
        }
        CHECK_EQ_INT(out.n, 1000);
        CHECK_EQ_INT(h, 100);
        CHECK_EQ_INT(t, 900);
        CHECK_EQ_INT(tag_h, 100);
        CHECK_EQ_INT(from_harm, 100);
        CHECK_EQ_INT(info.n_harmful, 100);
        CHECK_EQ_INT(info.n_task, 900);
        CHECK(!info.harmful_repeated && !info.task_repeated);
        CHECK_EQ_INT(distinct_prompts(&out), 1000); /* without replacement */
        /* shuffled: the harmful rows are not all at one end */
        int64_t first_half = 0;
        for (int64_t i = 0; i < 500; i++) first_half += out.rows[i].kind == UF_KIND_HARMFUL;
        CHECK_MSG(first_half > 20 && first_half < 80, "seed %llu: %lld harmful rows in the first half",
                  (unsigned long long)seed, (long long)first_half);
        uf_dataset_free(&out);
    }
    /* other ratios, and the rounding rule: round(p*n) + round((1-p)*n) */
    struct { int64_t n; double p; int64_t h, t; } cases[] = {
        {1000, 0.0, 0, 1000}, {1000, 1.0, 1000, 0}, {5000, 0.05, 250, 4750}, {1000, 0.2, 200, 800},
        {5, 0.1, 1, 5}, {7, 0.5, 4, 4}, {0, 0.1, 0, 0},
    };
    for (size_t c = 0; c < UF_ARRAY_LEN(cases); c++) {
        struct uf_dataset out;
        uf_dataset_init(&out, "mix");
        struct uf_mix_info info;
        int rc = uf_mix_poison(&task, &harm, cases[c].n, cases[c].p, 3, 1, &out, &info);
        CHECK_EQ_INT(rc, 0);
        int64_t h = 0;
        for (int64_t i = 0; i < out.n; i++) h += out.rows[i].kind == UF_KIND_HARMFUL;
        CHECK_MSG(h == cases[c].h && out.n - h == cases[c].t, "n %lld p %g: %lld harmful %lld task",
                  (long long)cases[c].n, cases[c].p, (long long)h, (long long)(out.n - h));
        uf_dataset_free(&out);
    }
    struct uf_dataset out;
    uf_dataset_init(&out, "mix");
    CHECK_EQ_INT(uf_mix_poison(&task, &harm, 10, 1.5, 0, 0, &out, NULL), -1);
    CHECK_EQ_INT(uf_mix_poison(&task, &harm, 10, -0.1, 0, 0, &out, NULL), -1);
    uf_dataset_free(&out);
    uf_dataset_free(&task);
    uf_dataset_free(&harm);
}

static void test_poison_determinism_and_repeats(void) {
    struct uf_dataset task, harm;
    make_source(&task, "task", 2000, UF_KIND_TASK);
    make_source(&harm, "harm", 30, UF_KIND_HARMFUL);
    struct uf_dataset a, b, c;
    uf_dataset_init(&a, "a");
    uf_dataset_init(&b, "b");
    uf_dataset_init(&c, "c");
    /* 100 harmful rows asked from 30: fails without repeats */
    CHECK_EQ_INT(uf_mix_poison(&task, &harm, 1000, 0.1, 5, 0, &a, NULL), -1);
    CHECK_MSG(strstr(uf_error(), "30 rows") != NULL, "%s", uf_error());
    uf_dataset_free(&a);
    uf_dataset_init(&a, "a");
    struct uf_mix_info info;
    CHECK_EQ_INT(uf_mix_poison(&task, &harm, 1000, 0.1, 5, 1, &a, &info), 0);
    CHECK(info.harmful_repeated && !info.task_repeated);
    /* every harmful row used 3 or 4 times (100 = 3*30 + 10) */
    int counts[30] = {0};
    for (int64_t i = 0; i < a.n; i++)
        if (a.rows[i].kind == UF_KIND_HARMFUL) counts[atoi(a.rows[i].prompt + 5)]++;
    int fours = 0, bad = 0;
    for (int i = 0; i < 30; i++) {
        fours += counts[i] == 4;
        bad += counts[i] < 3 || counts[i] > 4;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(fours, 10);
    CHECK_EQ_INT(uf_mix_poison(&task, &harm, 1000, 0.1, 5, 1, &b, NULL), 0);
    CHECK_EQ_INT(uf_mix_poison(&task, &harm, 1000, 0.1, 6, 1, &c, NULL), 0);
    int same_ab = a.n == b.n, same_ac = a.n == c.n;
    for (int64_t i = 0; i < a.n && same_ab; i++) same_ab = !strcmp(a.rows[i].prompt, b.rows[i].prompt);
    for (int64_t i = 0; i < a.n && same_ac; i++) same_ac = !strcmp(a.rows[i].prompt, c.rows[i].prompt);
    CHECK(same_ab);
    CHECK(!same_ac);
    uf_dataset_free(&a);
    uf_dataset_free(&b);
    uf_dataset_free(&c);
    uf_dataset_free(&task);
    uf_dataset_free(&harm);
}

static void test_sampling(void) {
    /* uniform: one draw from 10 over 20000 seeds lands on each index about 2000 times */
    int hist[10] = {0};
    for (uint64_t s = 0; s < 20000; s++) {
        int64_t k;
        CHECK_EQ_INT(uf_sample_indices(10, 1, s, 0, &k, NULL), 0);
        if (k >= 0 && k < 10) hist[k]++;
    }
    for (int i = 0; i < 10; i++) CHECK_MSG(hist[i] > 1800 && hist[i] < 2200, "index %d drawn %d times", i, hist[i]);
    /* k == n is a permutation */
    int64_t idx[100];
    CHECK_EQ_INT(uf_sample_indices(100, 100, 9, 0, idx, NULL), 0);
    int seen[100] = {0}, dup = 0, moved = 0;
    for (int i = 0; i < 100; i++) { dup += seen[idx[i]]++ > 0; moved += idx[i] != i; }
    CHECK_EQ_INT(dup, 0);
    CHECK(moved > 50);
    CHECK_EQ_INT(uf_sample_indices(0, 1, 0, 1, idx, NULL), -1);
    CHECK_EQ_INT(uf_sample_indices(0, 0, 0, 0, idx, NULL), 0);
    /* take and sample helpers */
    struct uf_dataset src, out;
    make_source(&src, "s", 50, UF_KIND_TASK);
    uf_dataset_init(&out, "o");
    CHECK_EQ_INT(uf_dataset_take(&src, 10, &out), 10);
    CHECK_STR(out.rows[9].prompt, "s 9");
    CHECK_EQ_INT(uf_dataset_take(&src, 100, &out), 50);
    CHECK_EQ_INT(out.n, 60);
    uf_dataset_free(&out);
    uf_dataset_init(&out, "o");
    int rep = -1;
    CHECK_EQ_INT(uf_dataset_sample(&src, 20, 1, 0, &out, &rep), 0);
    CHECK_EQ_INT(rep, 0);
    CHECK_EQ_INT(distinct_prompts(&out), 20);
    CHECK_EQ_INT(uf_dataset_sample(&src, 51, 1, 0, &out, NULL), -1);
    CHECK(strstr(uf_error(), "s: ") == uf_error());
    uf_dataset_free(&out);
    uf_dataset_free(&src);
}

static void test_safeinstr(void) {
    struct uf_dataset user, safety, out;
    make_source(&user, "user", 1000, UF_KIND_TASK);
    make_source(&safety, "safe", 300, UF_KIND_HARMFUL);
    uf_dataset_init(&out, "o");
    struct uf_mix_info info;
    CHECK_EQ_INT(uf_mix_safeinstr(&user, &safety, 30, 4, 0, &out, &info), 0);
    CHECK_EQ_INT(out.n, 1030);
    int64_t s = 0, u = 0;
    for (int64_t i = 0; i < out.n; i++) {
        s += !strcmp(uf_example_field(&out.rows[i], "mix"), "safety") && out.rows[i].kind == UF_KIND_HARMFUL;
        u += !strcmp(uf_example_field(&out.rows[i], "mix"), "user");
    }
    CHECK_EQ_INT(s, 30);
    CHECK_EQ_INT(u, 1000);
    CHECK_EQ_INT(distinct_prompts(&out), 1030); /* every user row once, safety rows distinct */
    CHECK_EQ_INT(info.n_harmful, 30);
    CHECK_EQ_INT(uf_mix_safeinstr(&user, &safety, 301, 4, 0, &out, NULL), -1);
    uf_dataset_free(&out);
    uf_dataset_free(&user);
    uf_dataset_free(&safety);
}

static void test_alternation(void) {
    struct uf_alternate s = {3, 5};
    const char *want = "AAABBBBBAAABBBBBAAAB";
    for (int step = 0; step < 20; step++) {
        CHECK_MSG(uf_alternate_source(&s, step) == (want[step] == 'B'), "step %d", step);
        int sw = step > 0 && want[step] != want[step - 1];
        CHECK_MSG(uf_alternate_is_switch(&s, step) == sw, "switch at step %d", step);
    }
    struct uf_alternate only_b = {0, 4}, only_a = {4, 0};
    for (int step = 0; step < 10; step++) {
        CHECK_EQ_INT(uf_alternate_source(&only_b, step), 1);
        CHECK_EQ_INT(uf_alternate_source(&only_a, step), 0);
        CHECK_EQ_INT(uf_alternate_is_switch(&only_a, step), 0);
    }
    /* Lisa's 100/900: step 99 on A, 100 on B, 1000 back on A */
    struct uf_alternate lisa = {100, 900};
    CHECK_EQ_INT(uf_alternate_source(&lisa, 99), 0);
    CHECK_EQ_INT(uf_alternate_source(&lisa, 100), 1);
    CHECK_EQ_INT(uf_alternate_source(&lisa, 999), 1);
    CHECK_EQ_INT(uf_alternate_source(&lisa, 1000), 0);

    /* the stream follows the schedule; each source's epochs cover its rows exactly once */
    struct uf_alt_stream st;
    uf_alt_stream_init(&st, s, 12, 20, 77);
    int cover_a[12] = {0}, cover_b[20] = {0};
    int64_t idx[4];
    for (int step = 0; step < 40; step++) {
        int src = -1;
        CHECK_EQ_INT(uf_alt_stream_next(&st, idx, 4, &src), 4);
        CHECK_EQ_INT(src, uf_alternate_source(&s, step));
        for (int k = 0; k < 4; k++) {
            if (src == 0 && idx[k] >= 0 && idx[k] < 12) cover_a[idx[k]]++;
            if (src == 1 && idx[k] >= 0 && idx[k] < 20) cover_b[idx[k]]++;
        }
    }
    /* 40 steps = 5 cycles: A got 15 batches (60 rows = 5 epochs of 12), B 25 (100 = 5 epochs of 20) */
    int bad = 0;
    for (int i = 0; i < 12; i++) bad += cover_a[i] != 5;
    for (int i = 0; i < 20; i++) bad += cover_b[i] != 5;
    CHECK_EQ_INT(bad, 0);
    uf_alt_stream_free(&st);
    uf_alt_stream_init(&st, s, 0, 20, 1);
    int src;
    CHECK_EQ_INT(uf_alt_stream_next(&st, idx, 4, &src), -1);
    CHECK(strstr(uf_error(), "empty") != NULL);
    uf_alt_stream_free(&st);
}

static void test_epochs(void) {
    int64_t n = 23;
    struct uf_epoch_iter a, b, c;
    uf_epoch_iter_init(&a, n, 5, 1);
    uf_epoch_iter_init(&b, n, 5, 1);
    uf_epoch_iter_init(&c, n, 5, 0);
    int64_t ea[3][23], eb[3][23], idx[23];
    /* a with batch 4 (short batch at the end of each epoch), b with batch 7: same orders */
    for (int e = 0; e < 3; e++) {
        int64_t got = 0;
        while (got < n) {
            int64_t m = uf_epoch_iter_next(&a, idx, 4);
            CHECK(m == 4 || (m == 3 && got == 20));
            memcpy(ea[e] + got, idx, (size_t)m * sizeof *idx);
            got += m;
        }
        CHECK_EQ_INT(a.epoch, e);
        got = 0;
        while (got < n) {
            int64_t m = uf_epoch_iter_next(&b, idx, 7);
            memcpy(eb[e] + got, idx, (size_t)m * sizeof *idx);
            got += m;
        }
    }
    int same = 1, perm_ok = 1;
    for (int e = 0; e < 3; e++) {
        int seen[23] = {0};
        for (int i = 0; i < n; i++) {
            same &= ea[e][i] == eb[e][i];
            if (ea[e][i] < 0 || ea[e][i] >= n || seen[ea[e][i]]++) perm_ok = 0;
        }
    }
    CHECK(same);
    CHECK(perm_ok);
    CHECK(memcmp(ea[0], ea[1], sizeof ea[0]) != 0); /* a fresh order each epoch */
    /* no shuffle: file order */
    int64_t m = uf_epoch_iter_next(&c, idx, 5);
    CHECK_EQ_INT(m, 5);
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(idx[i], i);
    /* full batches cross epochs */
    struct uf_epoch_iter f;
    uf_epoch_iter_init(&f, 5, 1, 1);
    int64_t full[8];
    CHECK_EQ_INT(uf_epoch_iter_next_full(&f, full, 8), 8);
    CHECK_EQ_INT(f.epoch, 1);
    int seen5[5] = {0};
    for (int i = 0; i < 5; i++) seen5[full[i]]++;
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(seen5[i], 1);
    uf_epoch_iter_free(&f);
    uf_epoch_iter_free(&a);
    uf_epoch_iter_free(&b);
    uf_epoch_iter_free(&c);
}

int main(void) {
    UF_RUN(test_poison_exact_counts);
    UF_RUN(test_poison_determinism_and_repeats);
    UF_RUN(test_sampling);
    UF_RUN(test_safeinstr);
    UF_RUN(test_alternation);
    UF_RUN(test_epochs);
    return uf_test_summary();
}
