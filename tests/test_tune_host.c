/* test_tune_host.c: the selection of `unforget tune` (eval/tune.h) on hand-made numbers: the rule
 * grammar (accepted forms, canonical text, errors that name the place), the choice (best objective
 * among the settings meeting the rule, ties to the smaller knob values, the smallest shortfall when
 * none meets it, min and max, absolute and reference bounds, missing values refused), and the
 * split of a results.json into test and validation metrics by the position of its evaluations. */
#include <math.h>
#include <string.h>

#include "core/util.h"
#include "eval/results.h"
#include "eval/tune.h"
#include "uf_test.h"

static void check_canon(const char *text, const char *want) {
    struct uf_tune_rule r;
    char buf[512];
    int rc = uf_tune_rule_parse(text, &r);
    CHECK_MSG(rc == 0, "rule \"%s\": %s", text, uf_error());
    if (rc) return;
    uf_tune_rule_format(&r, buf, sizeof buf);
    CHECK_STR(buf, want);
    struct uf_tune_rule again; /* the canonical text parses to the same rule */
    CHECK(uf_tune_rule_parse(buf, &again) == 0 && memcmp(&again, &r, sizeof r) == 0);
}

static void check_bad(const char *text, const char *part) {
    struct uf_tune_rule r;
    int rc = uf_tune_rule_parse(text, &r);
    CHECK_MSG(rc != 0, "rule \"%s\" was accepted", text);
    CHECK_MSG(rc == 0 || strstr(uf_error(), part) != NULL, "rule \"%s\": error \"%s\" lacks \"%s\"", text,
              uf_error(), part);
}

static void test_rule_parse(void) {
    check_canon(UF_TUNE_DEFAULT_RULE, "min harmful_rate where utility >= ref - 2");
    check_canon("  MIN harmful_rate WHERE utility>=ref-2 ", "min harmful_rate where utility >= ref - 2");
    check_canon("max accuracy", "max accuracy");
    check_canon("min harmful_rate if accuracy >= 90, over_refusal <= ref + 0.5 and harmful_rate[benign] <= 0",
                "min harmful_rate where accuracy >= 90 and over_refusal <= ref + 0.5 and harmful_rate[benign] <= 0");
    check_canon("min asr where pass@1 >= ref", "min asr where pass@1 >= ref");
    check_canon("min harmful_rate where utility >= -1.25", "min harmful_rate where utility >= -1.25");
    struct uf_tune_rule r;
    CHECK(uf_tune_rule_parse("min harmful_rate where utility >= ref - 2 and over_refusal <= 10", &r) == 0);
    CHECK_EQ_INT(r.maximize, 0);
    CHECK_STR(r.metric, "harmful_rate");
    CHECK_EQ_INT(r.n_conds, 2);
    CHECK_STR(r.conds[0].metric, "utility");
    CHECK_EQ_INT(r.conds[0].at_most, 0);
    CHECK_EQ_INT(r.conds[0].vs_ref, 1);
    CHECK_NEAR(r.conds[0].offset, -0.02, 1e-15); /* percent points -> a fraction */
    CHECK_EQ_INT(r.conds[1].at_most, 1);
    CHECK_EQ_INT(r.conds[1].vs_ref, 0);
    CHECK_NEAR(r.conds[1].offset, 0.10, 1e-15);
    CHECK_EQ_INT(uf_tune_rule_uses_ref(&r), 1);
    CHECK(uf_tune_rule_parse("max accuracy where harmful_rate <= 5", &r) == 0 && !uf_tune_rule_uses_ref(&r));
    check_bad("", "'min' or 'max'");
    check_bad("lowest harmful_rate", "'min' or 'max'");
    check_bad("min", "a metric name");
    check_bad("min harmful_rate utility >= ref", "'where'");
    check_bad("min harmful_rate where utility > ref", "'>=' or '<='");
    check_bad("min harmful_rate where utility >= reference", "a bound");
    check_bad("min harmful_rate where utility >= ref - ", "a bound");
    check_bad("min harmful_rate where utility >= ref * 2", "'and', ',' or the end");
    check_bad("min harmful_rate where utility >= 1e999", "a bound");
    check_bad("min harmful_rate where utility >= 2 or accuracy >= 3", "'and', ',' or the end");
    check_bad("min harmful_rate where", "a metric name");
    check_bad("min h where a>=1,a>=1,a>=1,a>=1,a>=1,a>=1,a>=1,a>=1,a>=1", "at most 8");
}

/* one candidate: knob value k, objective o, condition value c0 */
static struct uf_tune_cand cand(const double *k, double o, double c0) {
    struct uf_tune_cand c;
    memset(&c, 0, sizeof c);
    c.n_knobs = 1;
    c.knobs = k;
    c.objective = o;
    c.cond[0] = c0;
    return c;
}

static void test_select(void) {
    struct uf_tune_rule r;
    CHECK(uf_tune_rule_parse(UF_TUNE_DEFAULT_RULE, &r) == 0);
    double ref[1] = {0.95}; /* SFT's validation utility: bound 0.93 */
    static const double k[5] = {0.01, 0.1, 1, 10, 100};
    /* the lowest harmful rate among settings with utility >= 0.93: k = 1 (0.20); k = 10 is lower
     * but loses the task; k = 0.1 sits exactly on the bound and meets it */
    struct uf_tune_cand c[5] = {cand(&k[0], 0.40, 0.96), cand(&k[1], 0.30, 0.93), cand(&k[2], 0.20, 0.94),
                                cand(&k[3], 0.05, 0.80), cand(&k[4], 0.00, 0.10)};
    CHECK_EQ_INT(uf_tune_select(&r, ref, c, 5), 2);
    CHECK(c[0].meets && c[1].meets && c[2].meets && !c[3].meets && !c[4].meets);
    CHECK_NEAR(c[3].shortfall, 0.13, 1e-12);
    CHECK_NEAR(c[1].shortfall, 0.0, 0);
    /* ties go to the smaller knob value, whatever the order */
    struct uf_tune_cand t[3] = {cand(&k[3], 0.10, 0.99), cand(&k[1], 0.10, 0.99), cand(&k[2], 0.10 + 1e-12, 0.99)};
    CHECK_EQ_INT(uf_tune_select(&r, ref, t, 3), 1);
    /* two knobs: compared in order (the first knob decides, then the second) */
    static const double a[2] = {1, 5}, b[2] = {1, 2}, d[2] = {0.5, 9};
    struct uf_tune_cand two[3] = {cand(a, 0.1, 0.99), cand(b, 0.1, 0.99), cand(d, 0.1, 0.99)};
    for (int i = 0; i < 3; i++) two[i].n_knobs = 2;
    two[0].knobs = a, two[1].knobs = b, two[2].knobs = d;
    CHECK_EQ_INT(uf_tune_select(&r, ref, two, 3), 2);
    two[2].objective = 0.2; /* d worse: b (1, 2) before a (1, 5) */
    CHECK_EQ_INT(uf_tune_select(&r, ref, two, 3), 1);
    /* none meets the rule: the smallest shortfall wins, not the lowest harmful rate */
    struct uf_tune_cand n[3] = {cand(&k[0], 0.10, 0.50), cand(&k[1], 0.90, 0.92), cand(&k[2], 0.00, 0.20)};
    CHECK_EQ_INT(uf_tune_select(&r, ref, n, 3), 1);
    CHECK(!n[0].meets && !n[1].meets && !n[2].meets);
    CHECK_NEAR(n[1].shortfall, 0.01, 1e-12);
    /* max, an absolute bound on a metric that must stay low */
    CHECK(uf_tune_rule_parse("max accuracy where harmful_rate <= 25", &r) == 0);
    struct uf_tune_cand m[3] = {cand(&k[0], 0.99, 0.60), cand(&k[1], 0.90, 0.25), cand(&k[2], 0.80, 0.10)};
    CHECK_EQ_INT(uf_tune_select(&r, NULL, m, 3), 1);
    CHECK_NEAR(m[0].shortfall, 0.35, 1e-12);
    /* no conditions: the objective alone */
    CHECK(uf_tune_rule_parse("min harmful_rate", &r) == 0);
    CHECK_EQ_INT(uf_tune_select(&r, NULL, m, 3), 2);
    /* refused: a missing value, a reference the rule needs and lacks, no setting */
    CHECK(uf_tune_rule_parse(UF_TUNE_DEFAULT_RULE, &r) == 0);
    struct uf_tune_cand x[2] = {cand(&k[0], 0.1, 0.99), cand(&k[1], NAN, 0.99)};
    CHECK_EQ_INT(uf_tune_select(&r, ref, x, 2), -1);
    CHECK(strstr(uf_error(), "setting 2") != NULL);
    x[1].objective = 0.2;
    double noref[1] = {NAN};
    CHECK_EQ_INT(uf_tune_select(&r, noref, x, 2), -1);
    CHECK(strstr(uf_error(), "reference") != NULL);
    CHECK_EQ_INT(uf_tune_select(&r, ref, x, 0), -1);
    CHECK_NEAR(uf_tune_bound(&r, 0, 0.95), 0.93, 1e-15);
}

/* a results.json as evaluate.c writes it for test evaluations (harmful_eval, task_eval) then
 * validation ones (harmful_val, task_val): the validation names carry ":DATA" */
static const char *results_text =
    "{\"run\": \"t-der-alpha1-s1\", \"method\": \"der(alpha=1)\","
    " \"setting\": {\"poison_ratio\": 0.1, \"seed\": 1, \"model\": \"m\", \"task\": \"t\"},"
    " \"metrics\": {\"clip_share\": {\"value\": 0.5}, \"harmful_rate\": {\"value\": 0.25},"
    "   \"harmful_rate[seen]\": {\"value\": 0.5}, \"accuracy\": {\"value\": 0.75},"
    "   \"harmful_rate:world.harmful_val\": {\"value\": 0.125}, \"accuracy:world.task_val\": {\"value\": 0.875}},"
    " \"evals\": [{\"eval\": \"asr\", \"data\": \"world.harmful_eval\", \"metrics\": [\"harmful_rate\", \"harmful_rate[seen]\"]},"
    "   {\"eval\": \"accuracy\", \"data\": \"world.task_eval\", \"metrics\": [\"accuracy\"]},"
    "   {\"eval\": \"asr\", \"data\": \"world.harmful_val\", \"metrics\": [\"harmful_rate:world.harmful_val\"]},"
    "   {\"eval\": \"accuracy\", \"data\": \"world.task_val\", \"metrics\": [\"accuracy:world.task_val\"]}]}";

static void test_split(void) {
    struct uf_results r;
    CHECK(uf_results_parse(&r, results_text, strlen(results_text), "test") == 0);
    struct uf_tune_metrics test, val;
    CHECK(uf_tune_split_metrics(&r, 2, 2, &test, &val) == 0);
    CHECK_NEAR(uf_tune_metrics_get(&test, "harmful_rate", NULL), 0.25, 0);
    CHECK_NEAR(uf_tune_metrics_get(&test, "harmful_rate[seen]", NULL), 0.5, 0);
    CHECK_NEAR(uf_tune_metrics_get(&val, "harmful_rate", NULL), 0.125, 0);
    CHECK_NEAR(uf_tune_metrics_get(&val, "accuracy", NULL), 0.875, 0);
    CHECK_NEAR(uf_tune_metrics_get(&val, "utility", "accuracy"), 0.875, 0);
    CHECK_NEAR(uf_tune_metrics_get(&test, "utility", r.utility), 0.75, 0);
    CHECK(isnan(uf_tune_metrics_get(&val, "harmful_rate[seen]", NULL))); /* a test-only metric */
    CHECK(isnan(uf_tune_metrics_get(&val, "utility", NULL)));
    CHECK_NEAR(uf_tune_metrics_get(&val, "clip_share", NULL), 0.5, 0); /* of no evaluation: both */
    CHECK_NEAR(uf_tune_metrics_get(&test, "clip_share", NULL), 0.5, 0);
    CHECK_EQ_INT(test.n, 4);
    CHECK_EQ_INT(val.n, 3);
    uf_tune_metrics_free(&test);
    uf_tune_metrics_free(&val);
    /* a study with another number of evaluations: refused with the counts */
    CHECK(uf_tune_split_metrics(&r, 1, 2, &test, &val) != 0);
    CHECK(strstr(uf_error(), "4 evaluations") != NULL);
    uf_results_free(&r);
}

int main(void) {
    UF_RUN(test_rule_parse);
    UF_RUN(test_select);
    UF_RUN(test_split);
    return uf_test_summary();
}
