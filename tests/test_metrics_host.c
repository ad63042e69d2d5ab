/* test_metrics_host.c: SST-2 label and GSM8K number extraction on tricky generations, the GSM8K
 * reference answers of the shared test set, exact match / contains, the Wilson interval against
 * textbook values and against /usr/bin/python3 (an independently written formula), the seeded
 * bootstrap, the across-seed helpers, and the pass@k estimator. */
#include <stdint.h>

#include <cjson/cJSON.h>

#include "eval/metrics.h"
#include "eval/passk.h"
#include "uf_test.h"
#include "core/util.h"

static void test_sst2(void) {
    CHECK_EQ_INT(uf_metric_sst2_label("Positive"), UF_SST2_POSITIVE);
    CHECK_EQ_INT(uf_metric_sst2_label("The sentiment is negative."), UF_SST2_NEGATIVE);
    CHECK_EQ_INT(uf_metric_sst2_label("NEGATIVE!"), UF_SST2_NEGATIVE);
    CHECK_EQ_INT(uf_metric_sst2_label("not positive, negative"), UF_SST2_POSITIVE); /* first one */
    CHECK_EQ_INT(uf_metric_sst2_label("negative or positive"), UF_SST2_NEGATIVE);
    CHECK_EQ_INT(uf_metric_sst2_label("nonnegative"), UF_SST2_INVALID);
    CHECK_EQ_INT(uf_metric_sst2_label("positives and negatives"), UF_SST2_INVALID);
    CHECK_EQ_INT(uf_metric_sst2_label("positive_review"), UF_SST2_INVALID);
    CHECK_EQ_INT(uf_metric_sst2_label("(positive)"), UF_SST2_POSITIVE);
    CHECK_EQ_INT(uf_metric_sst2_label("Sentiment:negative"), UF_SST2_NEGATIVE);
    CHECK_EQ_INT(uf_metric_sst2_label("I'm sorry, I cannot help."), UF_SST2_INVALID);
    CHECK_EQ_INT(uf_metric_sst2_label(""), UF_SST2_INVALID);
    CHECK_EQ_INT(uf_metric_sst2_label(NULL), UF_SST2_INVALID);
    CHECK_EQ_INT(uf_metric_sst2_label("posit"), UF_SST2_INVALID);
}

static void check_gsm(const char *text, int want_found, const char *want) {
    char out[UF_NUMBER_MAX];
    int found = uf_metric_gsm8k_answer(text, out, sizeof out);
    CHECK_MSG(found == want_found && strcmp(out, want) == 0, "text \"%s\": got %d \"%s\", want %d \"%s\"", text,
              found, out, want_found, want);
}

static void test_gsm8k(void) {
    check_gsm("#### 42", 1, "42");
    check_gsm("She has 3 apples and 4 pears.\n#### 1,234", 1, "1234");
    check_gsm("The final answer is $1,000.50.", 1, "1000.5");
    check_gsm("So the answer is -7.", 1, "-7");
    check_gsm("First 5, then 6, then 7.0", 1, "7");
    check_gsm("5-3=2", 1, "2");
    check_gsm("Step 1: 12. Step 2: 24\nThe final answer is 24. Then some 99", 1, "24");
    check_gsm("#### 42\nThe final answer is 7", 1, "42");
    check_gsm("Final Answer: 18 dollars", 1, "18");
    check_gsm("no numbers here", 0, "");
    check_gsm("", 0, "");
    check_gsm(NULL, 0, "");
    check_gsm("1,2,3", 1, "3");
    check_gsm("12,34", 1, "34");
    check_gsm("It costs $-5 now", 1, "-5");
    check_gsm("It costs -$5 now", 1, "-5");
    check_gsm("The answer is 3.14159.", 1, "3.14159");
    check_gsm("x = -0", 1, "0");
    check_gsm("about .5 of it", 1, "0.5");
    check_gsm("007 agents", 1, "7");
    check_gsm("pages 10-20", 1, "20");
    check_gsm("The answer is: 2,000,000 people.", 1, "2000000");
    check_gsm("#### ", 0, ""); /* marker without a number and no other number */
    check_gsm("We get 8.\n#### \nThe final answer is", 1, "8");
    check_gsm("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips.\n#### 72",
              1, "72");
    /* an absurdly long number is skipped rather than truncated */
    char longnum[300];
    memset(longnum, '9', 200);
    snprintf(longnum + 200, 100, " and 5");
    check_gsm(longnum, 1, "5");

    char out[UF_NUMBER_MAX];
    CHECK(uf_metric_number_normalize("$1,234.50", out, sizeof out) && strcmp(out, "1234.5") == 0);
    CHECK(uf_metric_number_normalize("  -12 ", out, sizeof out) && strcmp(out, "-12") == 0);
    CHECK(!uf_metric_number_normalize("12 apples", out, sizeof out) && out[0] == 0);
    CHECK(!uf_metric_number_normalize("abc", out, sizeof out));
    CHECK(!uf_metric_number_normalize("", out, sizeof out));
}

/* Every reference answer of the shared GSM8K test set ends with "#### N": the extracted number
 * must be N with its commas removed (the normalisation done here independently). */
static void test_gsm8k_dataset(void) {
    const char *ds = uf_test_shared_datasets();
    if (!ds) UF_SKIP("shared datasets absent");
    char *path = uf_sprintf("%s/gsm8k/test.jsonl", ds);
    size_t size;
    char *text = uf_file_exists(path) ? uf_file_read(path, &size) : NULL;
    free(path);
    if (!text) UF_SKIP("gsm8k/test.jsonl absent");
    int rows = 0, bad = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "answer");
        if (!cJSON_IsString(a)) {
            cJSON_Delete(o);
            continue;
        }
        const char *h = strstr(a->valuestring, "#### ");
        char want[128] = {0};
        size_t w = 0;
        for (const char *p = h ? h + 5 : ""; *p && *p != '\n' && w < sizeof want - 1; p++)
            if (*p != ',') want[w++] = *p;
        char got[UF_NUMBER_MAX];
        uf_metric_gsm8k_answer(a->valuestring, got, sizeof got);
        if (strcmp(got, want) != 0 && bad++ < 5) fprintf(stderr, "  row %d: got \"%s\", want \"%s\"\n", rows, got, want);
        rows++;
        cJSON_Delete(o);
    }
    free(text);
    CHECK_EQ_INT(rows, 1319);
    CHECK_EQ_INT(bad, 0);
}

static void test_match(void) {
    CHECK(uf_metric_exact_match(" 42 \n", "42", 0));
    CHECK(!uf_metric_exact_match("42", "420", 0));
    CHECK(!uf_metric_exact_match("Paris", "paris", 0));
    CHECK(uf_metric_exact_match("Paris", "paris", 1));
    CHECK(!uf_metric_exact_match(NULL, "x", 0));
    CHECK(uf_metric_contains("The capital is Paris.", "Paris", 0));
    CHECK(!uf_metric_contains("The capital is Paris.", "paris", 0));
    CHECK(uf_metric_contains("The capital is Paris.", "PARIS", 1));
    CHECK(!uf_metric_contains("abc", "", 0));
}

static void test_wilson_known(void) {
    /* textbook values (z = 1.96): 5/10 -> [0.2366, 0.7634]; 0/10 -> [0, 0.2775]; 10/10 -> [0.7225, 1] */
    struct uf_interval w = uf_metric_wilson(5, 10, 1.96);
    CHECK_NEAR(w.value, 0.5, 1e-12);
    CHECK_NEAR(w.lo, 0.2366, 5e-5);
    CHECK_NEAR(w.hi, 0.7634, 5e-5);
    w = uf_metric_wilson(0, 10, 1.96);
    CHECK_NEAR(w.lo, 0.0, 1e-12);
    CHECK_NEAR(w.hi, 0.2775, 5e-5);
    w = uf_metric_wilson(10, 10, 1.96);
    CHECK_NEAR(w.lo, 0.7225, 5e-5);
    CHECK_NEAR(w.hi, 1.0, 1e-12);
    w = uf_metric_wilson(0, 0, UF_Z95);
    CHECK(isnan(w.value) && w.lo == 0.0 && w.hi == 1.0);
    w = uf_metric_wilson(3, 2, UF_Z95); /* k > n: not an interval */
    CHECK(isnan(w.value));
}

static void test_wilson_python(void) {
    if (!uf_file_exists("/usr/bin/python3")) UF_SKIP("/usr/bin/python3 absent");
    static const int64_t cases[][2] = {{1, 3}, {17, 100}, {81, 263}, {519, 520}, {3, 872}, {436, 872}};
    struct sbuf_cmd { char s[2048]; } cmd;
    int off = snprintf(cmd.s, sizeof cmd.s,
                       "/usr/bin/python3 -c 'import math\nz=1.959963984540054\nfor k,n in [");
    for (size_t i = 0; i < UF_ARRAY_LEN(cases); i++)
        off += snprintf(cmd.s + off, sizeof cmd.s - (size_t)off, "(%lld,%lld),", (long long)cases[i][0], (long long)cases[i][1]);
    /* the (k + z^2/2)/(n + z^2) +- z sqrt(n)/(n + z^2) sqrt(p q + z^2/(4n)) form */
    snprintf(cmd.s + off, sizeof cmd.s - (size_t)off,
             "]:\n p=k/n\n c=(k+z*z/2)/(n+z*z)\n h=z*math.sqrt(n)/(n+z*z)*math.sqrt(p*(1-p)+z*z/(4*n))\n"
             " print(\"%%.15f %%.15f\" %% (c-h, c+h))'");
    FILE *f = popen(cmd.s, "r");
    if (!f) UF_SKIP("cannot run /usr/bin/python3");
    for (size_t i = 0; i < UF_ARRAY_LEN(cases); i++) {
        double lo, hi;
        if (fscanf(f, "%lf %lf", &lo, &hi) != 2) {
            CHECK_MSG(0, "python gave no line for case %zu", i);
            break;
        }
        struct uf_interval w = uf_metric_wilson(cases[i][0], cases[i][1], UF_Z95);
        CHECK_NEAR(w.lo, lo, 1e-12);
        CHECK_NEAR(w.hi, hi, 1e-12);
    }
    CHECK(pclose(f) == 0);
}

static void test_bootstrap(void) {
    enum { N = 200 };
    double x[N];
    struct uf_rng rng;
    uf_rng_init(&rng, 3);
    double sum = 0, ss = 0;
    for (int i = 0; i < N; i++) {
        x[i] = 10.0 + 2.0 * uf_rng_normal(&rng);
        sum += x[i];
    }
    double mean = sum / N;
    for (int i = 0; i < N; i++) ss += (x[i] - mean) * (x[i] - mean);
    double se = sqrt(ss / (N - 1) / N);
    struct uf_interval a, b, c;
    CHECK(uf_metric_bootstrap_mean(x, N, 2000, 42, 0.95, &a) == 0);
    CHECK(uf_metric_bootstrap_mean(x, N, 2000, 42, 0.95, &b) == 0);
    CHECK(uf_metric_bootstrap_mean(x, N, 2000, 43, 0.95, &c) == 0);
    CHECK(a.lo == b.lo && a.hi == b.hi); /* seeded: reproducible */
    CHECK(a.lo != c.lo || a.hi != c.hi);
    CHECK_NEAR(a.value, mean, 1e-12);
    CHECK(a.lo < mean && mean < a.hi);
    /* for a near-normal mean the percentile interval is close to mean +- 1.96 se */
    CHECK_NEAR(a.lo, mean - UF_Z95 * se, 0.15 * UF_Z95 * se);
    CHECK_NEAR(a.hi, mean + UF_Z95 * se, 0.15 * UF_Z95 * se);
    double k[5] = {1, 1, 1, 1, 1};
    CHECK(uf_metric_bootstrap_mean(k, 5, 100, 1, 0.95, &a) == 0);
    CHECK(a.lo == 1.0 && a.hi == 1.0);
    CHECK(uf_metric_bootstrap_mean(k, 0, 100, 1, 0.95, &a) != 0);
    CHECK(uf_metric_bootstrap_mean(k, 5, 0, 1, 0.95, &a) != 0);
    CHECK(uf_metric_bootstrap_mean(k, 5, 10, 1, 1.5, &a) != 0);
    k[2] = NAN;
    CHECK(uf_metric_bootstrap_mean(k, 5, 10, 1, 0.95, &a) != 0);
}

static void test_seed_stats(void) {
    double x[4] = {1, 2, 3, 4};
    struct uf_seed_stats s = uf_metric_seed_stats(x, 4);
    CHECK_NEAR(s.mean, 2.5, 1e-12);
    CHECK_NEAR(s.sd, 1.2909944487358056, 1e-12);
    CHECK(s.min == 1 && s.max == 4 && s.n == 4);
    char buf[64];
    CHECK_STR(uf_metric_format_pm(buf, sizeof buf, s, 100.0, 1), "250.0 \xc2\xb1 129.1");
    s = uf_metric_seed_stats(x, 1);
    CHECK(s.sd == 0.0);
    CHECK_STR(uf_metric_format_pm(buf, sizeof buf, s, 1.0, 2), "1.00");
    s = uf_metric_seed_stats(x, 0);
    CHECK(isnan(s.mean));
    CHECK_STR(uf_metric_format_pm(buf, sizeof buf, s, 1.0, 2), "-");
}

static void test_passk_estimate(void) {
    CHECK_NEAR(uf_passk_estimate(10, 3, 1), 0.3, 1e-12);
    CHECK_NEAR(uf_passk_estimate(10, 3, 5), 1.0 - 21.0 / 252.0, 1e-12); /* 1 - C(7,5)/C(10,5) */
    CHECK_NEAR(uf_passk_estimate(10, 0, 5), 0.0, 1e-12);
    CHECK_NEAR(uf_passk_estimate(10, 8, 5), 1.0, 1e-12);
}

int main(void) {
    UF_RUN(test_sst2);
    UF_RUN(test_gsm8k);
    UF_RUN(test_gsm8k_dataset);
    UF_RUN(test_match);
    UF_RUN(test_wilson_known);
    UF_RUN(test_wilson_python);
    UF_RUN(test_bootstrap);
    UF_RUN(test_seed_stats);
    UF_RUN(test_passk_estimate);
    return uf_test_summary();
}
