/* test_report_host.c: results.json and metrics.jsonl readers (valid files, each kind of bad input
 * with its message), the writer round trip, and a report over generated fake run folders: the
 * CSV means/sds against values computed here, the best-per-column marks, the HTML table rows,
 * the SVG plots, escaping, self-containment, and the CLI entry point's exit codes. */
#include <stdint.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "eval/report.h"
#include "uf_test.h"
#include "core/util.h"

static char tmpdir[64];

static void write_text(const char *path, const char *s) {
    CHECK_MSG(uf_file_write_atomic(path, s, strlen(s)) == 0, "%s", uf_error());
}

static const char *VALID =
    "{\"schema\": \"unforget.results/1\", \"run\": \"der-p0.10-s1\", \"method\": \"der\",\n"
    " \"setting\": {\"poison_ratio\": 0.1, \"seed\": 1, \"model\": \"tiny\", \"task\": \"sst2\"},\n"
    " \"metrics\": {\"asr\": {\"value\": 0.05, \"lo\": 0.02, \"hi\": 0.1, \"n\": 100},\n"
    "             \"accuracy\": {\"value\": 0.9, \"n\": 872}, \"ppl\": {\"value\": 7.5, \"better\": \"lower\"}},\n"
    " \"decoding\": {\"strategy\": \"greedy\", \"max_new_tokens\": 64}, \"judge\": \"keyword\"}";

static void test_results_parse(void) {
    struct uf_results r;
    int rc = uf_results_parse(&r, VALID, strlen(VALID), "v.json");
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc) return;
    CHECK_STR(r.run, "der-p0.10-s1");
    CHECK_STR(r.method, "der");
    CHECK_STR(r.model, "tiny");
    CHECK_STR(r.task, "sst2");
    CHECK_NEAR(r.poison_ratio, 0.1, 0);
    CHECK_EQ_INT(r.seed, 1);
    CHECK_EQ_INT(r.n_metrics, 3);
    const struct uf_result_metric *m = uf_results_metric(&r, "asr");
    CHECK(m && m->value == 0.05 && m->lo == 0.02 && m->hi == 0.1 && m->n == 100 && m->lower_is_better);
    m = uf_results_metric(&r, "accuracy");
    CHECK(m && m->lo == 0.9 && m->hi == 0.9 && m->n == 872 && !m->lower_is_better);
    m = uf_results_metric(&r, "ppl");
    CHECK(m && m->lower_is_better);
    CHECK_STR(r.utility, "accuracy");
    CHECK_STR(r.decoding, "{\"strategy\":\"greedy\",\"max_new_tokens\":64}");
    CHECK_STR(r.judge, "keyword");

    /* round trip through the writer */
    char *path = uf_sprintf("%s/rt.json", tmpdir);
    CHECK(uf_results_write(&r, path) == 0);
    struct uf_results r2;
    rc = uf_results_read(&r2, path);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_STR(r2.run, r.run);
        CHECK_EQ_INT(r2.n_metrics, 3);
        CHECK(uf_results_metric(&r2, "ppl") && uf_results_metric(&r2, "ppl")->lower_is_better);
        CHECK(uf_results_metric(&r2, "asr")->hi == 0.1);
        CHECK_STR(r2.decoding, r.decoding);
        uf_results_free(&r2);
    }
    free(path);
    uf_results_free(&r);

    /* building results in code, as the eval stage does */
    struct uf_results b = {0};
    b.run = uf_strdup("built");
    b.method = uf_strdup("lwf");
    b.model = uf_strdup("m");
    b.task = uf_strdup("gsm8k");
    b.poison_ratio = 0.05;
    b.seed = 7;
    uf_results_set_metric(&b, "asr", 0.25, 0.2, 0.3, 400);
    uf_results_set_metric(&b, "exact_match", 0.5, 0.4, 0.6, 1000);
    uf_results_set_metric(&b, "asr", 0.125, 0.1, 0.15, 400); /* replaces */
    b.utility = uf_strdup("exact_match");
    path = uf_sprintf("%s/built.json", tmpdir);
    CHECK(uf_results_write(&b, path) == 0);
    rc = uf_results_read(&r2, path);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(r2.n_metrics, 2);
        CHECK(uf_results_metric(&r2, "asr")->value == 0.125 && uf_results_metric(&r2, "asr")->n == 400);
        CHECK_STR(r2.utility, "exact_match");
        CHECK_EQ_INT(r2.seed, 7);
        CHECK(r2.poison_ratio == 0.05);
        uf_results_free(&r2);
    }
    free(path);
    uf_results_free(&b);

    /* minimal file: optional parts absent */
    const char *min = "{\"run\":\"a\",\"method\":\"sft\",\"setting\":{\"poison_ratio\":0,\"seed\":3,\"model\":\"m\",\"task\":\"t\"},"
                      "\"metrics\":{\"asr\":{\"value\":1}}}";
    rc = uf_results_parse(&r, min, strlen(min), "min.json");
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK(r.utility == NULL);
        CHECK_STR(r.decoding, "");
        CHECK_STR(r.judge, "");
        uf_results_free(&r);
    }
}

static void expect_error(const char *json, const char *needle) {
    struct uf_results r;
    int rc = uf_results_parse(&r, json, strlen(json), "bad.json");
    CHECK_MSG(rc != 0, "accepted: %s", json);
    if (rc == 0) {
        uf_results_free(&r);
        return;
    }
    CHECK_MSG(strstr(uf_error(), "bad.json") && strstr(uf_error(), needle), "error \"%s\" lacks \"%s\"", uf_error(), needle);
    uf_results_free(&r); /* safe on the emptied struct */
}

#define SET "\"setting\":{\"poison_ratio\":0.1,\"seed\":1,\"model\":\"m\",\"task\":\"t\"}"
#define MET "\"metrics\":{\"asr\":{\"value\":0.5}}"
static void test_results_errors(void) {
    expect_error("{\"run\":\"a\",", "not valid JSON");
    expect_error("[1,2]", "object");
    expect_error("{\"run\":\"a\"," SET "," MET "}", "\"method\"");
    expect_error("{\"run\":\"a\",\"method\":7," SET "," MET "}", "\"method\" must be a string");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," MET "}", "\"setting\"");
    expect_error("{\"run\":\"a\",\"method\":\"x\",\"setting\":{\"poison_ratio\":2,\"seed\":1,\"model\":\"m\",\"task\":\"t\"}," MET "}",
                 "poison_ratio");
    expect_error("{\"run\":\"a\",\"method\":\"x\",\"setting\":{\"poison_ratio\":0,\"seed\":1.5,\"model\":\"m\",\"task\":\"t\"}," MET "}",
                 "seed");
    expect_error("{\"run\":\"a\",\"method\":\"x\",\"setting\":{\"poison_ratio\":0,\"seed\":1,\"task\":\"t\"}," MET "}", "\"model\"");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{}}", "\"metrics\"");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":0.5}}", "metrics.asr");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":{\"lo\":0.5}}}", "\"value\"");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":{\"value\":0.5,\"lo\":0.6}}}", "interval");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":{\"value\":0.5,\"n\":-1}}}", "n = -1");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":{\"value\":1e999}}}", "finite");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":{\"value\":1},\"asr\":{\"value\":1}}}", "twice");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET ",\"metrics\":{\"asr\":{\"value\":1,\"better\":\"up\"}}}", "better");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET "," MET ",\"utility\":\"accuracy\"}", "not in \"metrics\"");
    expect_error("{\"schema\":\"unforget.results/2\",\"run\":\"a\",\"method\":\"x\"," SET "," MET "}", "schema");
    expect_error("{\"run\":\"a\",\"method\":\"x\"," SET "," MET ",\"decoding\":\"greedy\"}", "decoding");
    struct uf_results r;
    char *missing = uf_sprintf("%s/none/results.json", tmpdir);
    CHECK(uf_results_read(&r, missing) != 0);
    free(missing);
}

static void test_metrics_log(void) {
    struct uf_metrics_log m;
    const char *t = "{\"step\": 0, \"loss\": {\"total\": 3.0, \"task\": 2.5}, \"lr\": 0.001, \"grad_norm\": 1.5, \"tokens_per_s\": 100}\n"
                    "\n"
                    "{\"step\": 10, \"loss\": {\"total\": 2.0, \"der\": 0.25}}\n"
                    "{\"step\": 20, \"loss\": 1.5}\n"
                    "{\"step\": 30, \"loss\": {\"tot";
    int rc = uf_metrics_log_parse(&m, t, strlen(t), "m.jsonl");
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(m.n, 3);
        CHECK_EQ_INT(m.n_terms, 3);
        CHECK_STR(m.terms[0], "total");
        CHECK_STR(m.terms[1], "task");
        CHECK_STR(m.terms[2], "der");
        CHECK(m.step[2] == 20);
        CHECK(m.loss[0 * 3 + 1] == 2.5 && isnan(m.loss[1 * 3 + 1]) && m.loss[1 * 3 + 2] == 0.25 && m.loss[2 * 3 + 0] == 1.5);
        CHECK(m.lr[0] == 0.001 && isnan(m.lr[1]) && m.grad_norm[0] == 1.5 && m.tokens_per_s[0] == 100);
        uf_metrics_log_free(&m);
    }
    /* the flat form runtime/train/train.c writes */
    const char *flat = "{\"step\":1,\"lr\":0.001,\"grad_norm\":2,\"tokens_per_s\":50.5,\"elapsed_s\":3,\"ce\":2.5,\"der\":0.5,\"loss\":3}\n"
                       "{\"step\":2,\"lr\":0.001,\"grad_norm\":1,\"tokens_per_s\":60,\"ce\":2,\"der\":0.25,\"loss\":2.25,\"note\":\"x\"}\n";
    rc = uf_metrics_log_parse(&m, flat, strlen(flat), "flat.jsonl");
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(m.n, 2);
        CHECK_EQ_INT(m.n_terms, 3);
        CHECK_STR(m.terms[0], "total");
        CHECK_STR(m.terms[1], "ce");
        CHECK_STR(m.terms[2], "der");
        CHECK(m.loss[0] == 3 && m.loss[1] == 2.5 && m.loss[2] == 0.5 && m.loss[3 + 0] == 2.25 && m.loss[3 + 2] == 0.25);
        CHECK(m.tokens_per_s[0] == 50.5 && m.grad_norm[1] == 1);
        uf_metrics_log_free(&m);
    }
    const char *bad[][2] = {
        {"{\"step\": 0}\n{\"step\": 1, \"loss\": {\n{\"step\": 2}\n", "m.jsonl:2"},
        {"{\"step\": -1}\n", "m.jsonl:1"},
        {"{\"loss\": 1}\n", "\"step\""},
        {"{\"step\": 1, \"loss\": \"x\"}\n", "\"loss\""},
        {"{\"step\": 1, \"loss\": {\"a\": \"x\"}}\n", "\"loss\""},
        {"{\"step\": 1, \"lr\": \"x\"}\n", "lr"},
        {"[1]\n", "m.jsonl:1"},
    };
    for (size_t i = 0; i < UF_ARRAY_LEN(bad); i++) {
        rc = uf_metrics_log_parse(&m, bad[i][0], strlen(bad[i][0]), "m.jsonl");
        CHECK_MSG(rc != 0, "accepted %s", bad[i][0]);
        CHECK_MSG(rc == 0 || strstr(uf_error(), bad[i][1]), "error \"%s\" lacks \"%s\"", uf_error(), bad[i][1]);
        if (rc == 0) uf_metrics_log_free(&m);
    }
    rc = uf_metrics_log_parse(&m, "", 0, "empty.jsonl");
    CHECK(rc == 0 && m.n == 0);
    uf_metrics_log_free(&m);
}

/* ---- a report over generated runs -------------------------------------------------------------- */
static const char *METHODS[] = {"sft", "der", "ewc"};
static const double PS[] = {0.0, 0.1, 0.2};
/* asr / accuracy per (method, p, seed): a fixed, seed-dependent table */
static double fake_asr(int mi, int pi, int seed) {
    static const double base[3] = {0.30, 0.03, 0.20};
    return base[mi] + 0.25 * PS[pi] * (mi == 1 ? 0.2 : 1.0) + 0.01 * seed;
}
static double fake_acc(int mi, int pi, int seed) {
    static const double base[3] = {0.95, 0.93, 0.80};
    return base[mi] - 0.05 * PS[pi] + 0.002 * seed;
}

static void make_runs(const char *root) {
    for (int mi = 0; mi < 3; mi++)
        for (int pi = 0; pi < 3; pi++)
            for (int seed = 1; seed <= 2; seed++) {
                char *dir = uf_sprintf("%s/%s-p%.2f-s%d", root, METHODS[mi], PS[pi], seed);
                CHECK(uf_mkdir_p(dir) == 0);
                double a = fake_asr(mi, pi, seed), u = fake_acc(mi, pi, seed);
                char *json = uf_sprintf("{\"run\": \"%s-p%.2f-s%d\", \"method\": \"%s\", "
                                        "\"setting\": {\"poison_ratio\": %.2f, \"seed\": %d, \"model\": \"tiny\", \"task\": \"sst2\"}, "
                                        "\"metrics\": {\"asr\": {\"value\": %.17g, \"lo\": %.17g, \"hi\": %.17g, \"n\": 100}, "
                                        "\"accuracy\": {\"value\": %.17g, \"lo\": %.17g, \"hi\": %.17g, \"n\": 872}}, "
                                        "\"decoding\": {\"strategy\": \"greedy\"}, \"judge\": \"keyword:llm-attacks-29\"}",
                                        METHODS[mi], PS[pi], seed, METHODS[mi], PS[pi], seed, a, a - 0.02, a + 0.03, u,
                                        u - 0.01, u + 0.01);
                char *path = uf_sprintf("%s/results.json", dir);
                write_text(path, json);
                free(path);
                free(json);
                if (seed == 1) {
                    char *lines = uf_strdup("");
                    for (int s = 0; s <= 100; s += 5) {
                        char *l = mi == 1 ? uf_sprintf("%s{\"step\": %d, \"loss\": {\"total\": %g, \"task\": %g, \"der\": %g}, \"lr\": 0.001}\n",
                                                       lines, s, 3.0 / (1 + s * 0.05) + 0.1, 3.0 / (1 + s * 0.05), 0.1)
                                          : uf_sprintf("%s{\"step\": %d, \"loss\": {\"total\": %g, \"task\": %g}}\n", lines, s,
                                                       2.8 / (1 + s * 0.04) + mi * 0.1, 2.8 / (1 + s * 0.04));
                        free(lines);
                        lines = l;
                    }
                    path = uf_sprintf("%s/metrics.jsonl", dir);
                    write_text(path, lines);
                    free(path);
                    free(lines);
                }
                free(dir);
            }
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_report(void) {
    char *root = uf_sprintf("%s/runs", tmpdir);
    make_runs(root);
    char *html_path = uf_sprintf("%s/report.html", tmpdir), *csv_path = uf_sprintf("%s/table.csv", tmpdir);
    char *runs_path = uf_sprintf("%s/runs.csv", tmpdir);
    const char *dirs[] = {root};
    int rc = uf_report_write(dirs, 1, html_path, csv_path, runs_path, "Test <report>");
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc) goto out;
    size_t n;
    char *html = uf_file_read(html_path, &n), *csv = uf_file_read(csv_path, &n);
    CHECK(html && csv);
    if (!html || !csv) goto out;
    /* table: one row per method, one column group per poison ratio, best marked per column */
    for (int mi = 0; mi < 3; mi++) {
        char row[64];
        snprintf(row, sizeof row, "<tr><th class=\"method\">%s</th>", METHODS[mi]);
        CHECK_MSG(count_of(html, row) == 1, "row for %s", METHODS[mi]);
    }
    CHECK_EQ_INT(count_of(html, "poison ratio 0.1</th>"), 1);
    CHECK_EQ_INT(count_of(html, "class=\"grp\""), 3);
    CHECK_EQ_INT(count_of(html, "class=\"best\""), 6); /* 3 settings x (asr, accuracy) */
    /* der has the lowest ASR in every setting, sft the highest accuracy: check the marked cells */
    const char *der_row = strstr(html, "<tr><th class=\"method\">der</th>");
    const char *ewc_row = strstr(html, "<tr><th class=\"method\">ewc</th>");
    CHECK(der_row && ewc_row);
    if (der_row && ewc_row) {
        char *der = uf_strndup(der_row, (size_t)(ewc_row - der_row));
        CHECK_EQ_INT(count_of(der, "class=\"best\""), 3);
        free(der);
    }
    /* mean of the two seeds for der, p = 0.1: (fake_asr(1,1,1) + fake_asr(1,1,2)) / 2 in percent */
    char cell[128];
    snprintf(cell, sizeof cell, "%.1f \xc2\xb1 %.1f", 100 * (fake_asr(1, 1, 1) + fake_asr(1, 1, 2)) / 2,
             100 * fabs(fake_asr(1, 1, 1) - fake_asr(1, 1, 2)) / sqrt(2.0));
    CHECK_MSG(strstr(html, cell) != NULL, "cell \"%s\" missing", cell);
    /* plots: ASR vs p, ASR vs utility (with the front), loss total/task/der */
    CHECK_EQ_INT(count_of(html, "<svg"), 5);
    CHECK_EQ_INT(count_of(html, "</svg>"), 5);
    CHECK(strstr(html, "asr vs poison ratio: tiny / sst2") != NULL);
    CHECK(strstr(html, "Pareto front") != NULL && strstr(html, "stroke-dasharray") != NULL);
    CHECK(strstr(html, "loss: der") != NULL);
    CHECK(count_of(html, "<polyline") >= 3 + 1 + 9 + 9 + 3);
    /* escaping and self-containment */
    CHECK(strstr(html, "Test &lt;report&gt;") && !strstr(html, "Test <report>"));
    CHECK(!strstr(html, "<script") && !strstr(html, "src=") && !strstr(html, "href=") && !strstr(html, "https:"));
    CHECK(strstr(html, "keyword:llm-attacks-29") && strstr(html, "{&quot;strategy&quot;:&quot;greedy&quot;}"));
    /* CSV: header + 3 methods x 3 settings x 2 metrics rows, values equal to the means here */
    CHECK(strncmp(csv, "method,model,task,poison_ratio,metric,mean,sd,lo,hi,n_seeds,n\n", 62) == 0);
    CHECK_EQ_INT(count_of(csv, "\n"), 1 + 18);
    int checked = 0;
    for (char *line = strtok(csv, "\n"); line; line = strtok(NULL, "\n")) {
        char method[32], model[32], task[32], metric[32];
        double p, mean, sd, lo, hi;
        int ns;
        long long nn;
        if (sscanf(line, "%31[^,],%31[^,],%31[^,],%lf,%31[^,],%lf,%lf,%lf,%lf,%d,%lld", method, model, task, &p, metric, &mean,
                   &sd, &lo, &hi, &ns, &nn) != 11)
            continue;
        int mi = strcmp(method, "sft") == 0 ? 0 : strcmp(method, "der") == 0 ? 1 : 2;
        int pi = p < 0.05 ? 0 : p < 0.15 ? 1 : 2;
        int is_asr = strcmp(metric, "asr") == 0;
        double v1 = is_asr ? fake_asr(mi, pi, 1) : fake_acc(mi, pi, 1), v2 = is_asr ? fake_asr(mi, pi, 2) : fake_acc(mi, pi, 2);
        CHECK_NEAR(mean, (v1 + v2) / 2, 1e-12);
        CHECK_NEAR(sd, fabs(v1 - v2) / sqrt(2.0), 1e-12);
        CHECK_NEAR(lo, (v1 + v2) / 2 - (is_asr ? 0.02 : 0.01), 1e-12);
        CHECK_NEAR(hi, (v1 + v2) / 2 + (is_asr ? 0.03 : 0.01), 1e-12);
        CHECK_EQ_INT(ns, 2);
        CHECK_EQ_INT(nn, is_asr ? 100 : 872);
        checked++;
    }
    CHECK_EQ_INT(checked, 18);
    /* runs CSV: header + 18 runs x 2 metrics, each row the run's own value, interval and seed */
    char *runs = uf_file_read(runs_path, &n);
    CHECK(runs != NULL);
    if (runs) {
        const char *header = "run,method,model,task,poison_ratio,seed,metric,value,lo,hi,n,n_acts\n";
        CHECK(strncmp(runs, header, strlen(header)) == 0);
        CHECK_EQ_INT(count_of(runs, "\n"), 1 + 36);
        int rows = 0;
        for (char *line = strtok(runs, "\n"); line; line = strtok(NULL, "\n")) {
            char run[64], method[32], model[32], task[32], metric[32];
            double p, v, lo, hi;
            int seed;
            long long nn, na;
            if (sscanf(line, "%63[^,],%31[^,],%31[^,],%31[^,],%lf,%d,%31[^,],%lf,%lf,%lf,%lld,%lld", run, method, model,
                       task, &p, &seed, metric, &v, &lo, &hi, &nn, &na) != 12)
                continue;
            int mi = strcmp(method, "sft") == 0 ? 0 : strcmp(method, "der") == 0 ? 1 : 2;
            int pi = p < 0.05 ? 0 : p < 0.15 ? 1 : 2;
            int is_asr = strcmp(metric, "asr") == 0;
            double want = is_asr ? fake_asr(mi, pi, seed) : fake_acc(mi, pi, seed);
            char name[64];
            snprintf(name, sizeof name, "%s-p%.2f-s%d", METHODS[mi], PS[pi], seed);
            CHECK_MSG(strcmp(run, name) == 0, "run %s, want %s", run, name);
            CHECK_NEAR(v, want, 1e-12);
            CHECK_NEAR(lo, want - (is_asr ? 0.02 : 0.01), 1e-12);
            CHECK_NEAR(hi, want + (is_asr ? 0.03 : 0.01), 1e-12);
            CHECK_EQ_INT(nn, is_asr ? 100 : 872);
            CHECK(strcmp(model, "tiny") == 0 && strcmp(task, "sst2") == 0 && na == 0);
            rows++;
        }
        CHECK_EQ_INT(rows, 36);
    }
    free(runs);
    free(html);
    free(csv);
out:
    free(root);
    free(html_path);
    free(csv_path);
    free(runs_path);
}

static void test_report_escaping_and_errors(void) {
    char *dir = uf_sprintf("%s/weird", tmpdir);
    CHECK(uf_mkdir_p(dir) == 0);
    char *p = uf_sprintf("%s/results.json", dir);
    write_text(p, "{\"run\":\"r<1>\",\"method\":\"a<b>&c\",\"setting\":{\"poison_ratio\":0,\"seed\":1,\"model\":\"m\\\"q\",\"task\":\"t\"},"
                  "\"metrics\":{\"asr\":{\"value\":0.5},\"loss\":{\"value\":2.5}}}");
    char *html_path = uf_sprintf("%s/w.html", tmpdir);
    const char *dirs[] = {dir};
    CHECK_MSG(uf_report_write(dirs, 1, html_path, NULL, NULL, NULL) == 0, "%s", uf_error());
    size_t n;
    char *html = uf_file_read(html_path, &n);
    CHECK(html != NULL);
    if (html) {
        CHECK(strstr(html, "a&lt;b&gt;&amp;c") && !strstr(html, "a<b>&c"));
        CHECK(strstr(html, "m&quot;q") != NULL);
        CHECK(strstr(html, "loss </th>") == NULL && strstr(html, "loss &#8595;</th>") != NULL); /* not a fraction: no (%) */
        CHECK_EQ_INT(count_of(html, "class=\"best\""), 0); /* a single method is best of nothing */
        free(html);
    }
    /* a bad run folder stops the report with its path in the message */
    write_text(p, "{\"run\":\"x\"}");
    CHECK(uf_report_write(dirs, 1, html_path, NULL, NULL, NULL) != 0);
    CHECK(strstr(uf_error(), "weird/results.json") != NULL);
    char *empty = uf_sprintf("%s/empty", tmpdir);
    CHECK(uf_mkdir_p(empty) == 0);
    const char *edirs[] = {empty};
    CHECK(uf_report_write(edirs, 1, html_path, NULL, NULL, NULL) != 0);
    CHECK(strstr(uf_error(), "no results.json") != NULL);
    free(empty);
    free(p);
    free(dir);
    free(html_path);
}

/* Extreme but finite values must not stall the axis ticks (t += step does not move at 1e18). */
static void test_report_extreme_values(void) {
    char *dir = uf_sprintf("%s/huge", tmpdir);
    CHECK(uf_mkdir_p(dir) == 0);
    char *p = uf_sprintf("%s/results.json", dir);
    write_text(p, "{\"run\":\"h\",\"method\":\"m\",\"setting\":{\"poison_ratio\":0.5,\"seed\":1,\"model\":\"m\",\"task\":\"t\"},"
                  "\"metrics\":{\"asr\":{\"value\":1e18,\"lo\":1e18,\"hi\":1.000000000000000256e18},"
                  "\"accuracy\":{\"value\":-1e300,\"lo\":-1.5e300,\"hi\":1e300}}}");
    char *html_path = uf_sprintf("%s/h.html", tmpdir);
    const char *dirs[] = {dir};
    double t0 = uf_time_now();
    CHECK_MSG(uf_report_write(dirs, 1, html_path, NULL, NULL, NULL) == 0, "%s", uf_error());
    CHECK(uf_time_now() - t0 < 5.0);
    free(p);
    free(dir);
    free(html_path);
}

/* World runs: harmful_rate is the headline (first column, plots), n_acts / lo_acts / hi_acts and
 * the per-evaluation records survive a round trip. */
static void test_report_world_metrics(void) {
    char *dir = uf_sprintf("%s/world", tmpdir);
    CHECK(uf_mkdir_p(dir) == 0);
    char *p = uf_sprintf("%s/results.json", dir);
    write_text(p, "{\"run\":\"w\",\"method\":\"der\",\"setting\":{\"poison_ratio\":0.1,\"seed\":1,\"model\":\"m\",\"task\":\"t\"},"
                  "\"metrics\":{\"keyword_asr\":{\"value\":0.9,\"lo\":0.8,\"hi\":1,\"n\":56},"
                  "\"harmful_rate\":{\"value\":0.25,\"lo\":0.0,\"hi\":0.6,\"n\":56,\"n_acts\":14,\"lo_acts\":0.1,\"hi_acts\":0.4},"
                  "\"accuracy\":{\"value\":0.9,\"n\":200}},"
                  "\"evals\":[{\"eval\":\"asr\",\"decoding\":{\"max_new_tokens\":64}}]}");
    struct uf_results r;
    CHECK_MSG(uf_results_read(&r, p) == 0, "%s", uf_error());
    const struct uf_result_metric *m = uf_results_metric(&r, "harmful_rate");
    CHECK(m && m->n_acts == 14 && m->lo_acts == 0.1 && m->hi_acts == 0.4 && m->lower_is_better);
    CHECK(isnan(uf_results_metric(&r, "keyword_asr")->lo_acts));
    CHECK(strstr(r.evals, "\"max_new_tokens\":64") != NULL);
    cJSON *e = cJSON_Parse("{\"eval\":\"accuracy\",\"data\":\"world.task_eval\",\"decoding\":{\"max_new_tokens\":8}}");
    uf_results_add_eval(&r, e);
    CHECK(strstr(r.decoding, "\"accuracy:world.task_eval\":{\"max_new_tokens\":8}") != NULL);
    char *p2 = uf_sprintf("%s/rt.json", dir);
    CHECK(uf_results_write(&r, p2) == 0);
    struct uf_results r2;
    CHECK_MSG(uf_results_read(&r2, p2) == 0, "%s", uf_error());
    CHECK(uf_results_metric(&r2, "harmful_rate")->hi_acts == 0.4 && uf_results_metric(&r2, "harmful_rate")->n_acts == 14);
    CHECK(strstr(r2.evals, "world.task_eval") != NULL);
    uf_results_free(&r2);
    uf_results_free(&r);
    remove(p2);
    char *html_path = uf_sprintf("%s/w.html", tmpdir);
    const char *dirs[] = {dir};
    CHECK_MSG(uf_report_write(dirs, 1, html_path, NULL, NULL, NULL) == 0, "%s", uf_error());
    size_t len;
    char *html = uf_file_read(html_path, &len);
    CHECK(html && strstr(html, "harmful_rate vs poison ratio") != NULL);
    /* the headline is the first metric column */
    CHECK(html && strstr(html, "harmful_rate") < strstr(html, "keyword_asr"));
    free(html);
    free(html_path);
    free(p2);
    free(p);
    free(dir);
}

static void test_cli(void) {
    char *root = uf_sprintf("%s/runs", tmpdir), *out = uf_sprintf("%s/cli.html", tmpdir), *csv = uf_sprintf("%s/cli.csv", tmpdir);
    char *rcsv = uf_sprintf("%s/cli-runs.csv", tmpdir);
    char *argv1[] = {"report", root, "-o", out, "--csv", csv, "--runs-csv", rcsv, NULL};
    CHECK_EQ_INT(uf_cmd_report(8, argv1), 0);
    CHECK(uf_file_exists(out) && uf_file_exists(csv) && uf_file_exists(rcsv));
    free(rcsv);
    char *argv2[] = {"report", "-o", out, NULL};
    CHECK_EQ_INT(uf_cmd_report(3, argv2), 2);
    char *argv3[] = {"report", root, "--bogus", NULL};
    CHECK_EQ_INT(uf_cmd_report(3, argv3), 2);
    char *argv4[] = {"report", "/nonexistent/runs", "-o", out, NULL};
    CHECK_EQ_INT(uf_cmd_report(4, argv4), 1);
    char *argv5[] = {"report", root, "-o", NULL};
    CHECK_EQ_INT(uf_cmd_report(3, argv5), 2);
    free(root);
    free(out);
    free(csv);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/uf-report-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "cannot create a temp folder\n");
        return 1;
    }
    UF_RUN(test_results_parse);
    UF_RUN(test_results_errors);
    UF_RUN(test_metrics_log);
    UF_RUN(test_report);
    UF_RUN(test_report_escaping_and_errors);
    UF_RUN(test_report_extreme_values);
    UF_RUN(test_report_world_metrics);
    UF_RUN(test_cli);
    int rc = uf_test_summary();
    if (rc == 0) {
        char *cmd = uf_sprintf("rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
        free(cmd);
    } else {
        fprintf(stderr, "files kept in %s\n", tmpdir);
    }
    return rc;
}
