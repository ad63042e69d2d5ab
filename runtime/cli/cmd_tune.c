/* cmd_tune.c: `unforget tune RECIPE.lua [--rule RULE] [--report FILE] [sweep options]`: the runs
 * of the recipe's uf.tune studies as a sweep (cmd_sweep.c: skips finished runs, local jobs,
 * devices, Slurm), then, once every run of a study has its results.json, one setting per method
 * chosen by the rule on the validation metrics (eval/tune.h), reported with the test metrics of
 * the same runs: a table on stdout, OUT/tune.json and OUT/tune.csv (atomic writes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/rundir.h"
#include "core/util.h"
#include "eval/report.h"
#include "eval/results.h"
#include "eval/tune.h"
#include "recipe.h"

static void usage(void) {
    printf("usage: unforget tune RECIPE.lua [--rule RULE] [--report FILE] [--out DIR] [--set key=value ...]\n"
           "                     [--jobs N] [--devices SEL,...|all] [--slurm FILE [--submit] ...]\n\n"
           "Runs every run of the recipe's uf.tune studies as `unforget sweep` does (finished runs are\n"
           "skipped; every sweep option works: --jobs, --devices, --dry-run, --status, --slurm ...),\n"
           "then, when every run of a study is done, chooses one setting per method by the rule on the\n"
           "VALIDATION metrics and reports the chosen settings' TEST metrics (same runs): a table here,\n"
           "OUT/tune.json (grid, rule, every setting's validation and test numbers, the choice and why)\n"
           "and OUT/tune.csv (long form). After a Slurm sweep, run it again (without --slurm) once the\n"
           "jobs are done.\n\n"
           "  --rule RULE    overrides the studies' rules (default \"%s\"):\n"
           "                 min|max METRIC [where METRIC >=|<= BOUND [and ...]], BOUND = N | ref | ref - N\n"
           "                 | ref + N; numbers in percent; METRIC: a validation metric of results.json or\n"
           "                 utility; ref: the study's reference method's value (README: Tuning)\n"
           "  --report FILE  also the HTML report (unforget report) over the chosen settings' runs\n"
           "  --out DIR      output folder (default runs), as for sweep\n",
           UF_TUNE_DEFAULT_RULE);
}

/* ---- one study: settings, their runs' metrics, the choice ------------------------------------- */
struct run_metrics {
    struct uf_tune_metrics test, val;
    char *utility; /* the run's utility metric name, NULL when none */
};

struct setting {
    int method;
    const char *label;          /* "" when the method has no knobs */
    const double *values;       /* (n_knobs) */
    int n_runs, *runs;          /* indices into the study's runs (one per seed) */
    struct uf_tune_cand cand;
};

static double pct(double v) { return v * 100.0; }

/* mean and sample sd over the runs of s of metric name (split: 0 test, 1 val); n: runs with it */
static void mean_sd(const struct setting *s, const struct run_metrics *rm, int split, const char *name,
                    double *mean, double *sd, int *n) {
    double sum = 0, sq = 0;
    int k = 0;
    for (int i = 0; i < s->n_runs; i++) {
        const struct run_metrics *r = &rm[s->runs[i]];
        double v = uf_tune_metrics_get(split ? &r->val : &r->test, name, r->utility);
        if (isnan(v)) continue;
        sum += v;
        sq += v * v;
        k++;
    }
    *n = k;
    *mean = k ? sum / k : NAN;
    *sd = k > 1 ? sqrt(fmax(0, (sq - sum * sum / k) / (k - 1))) : 0;
}

static double mean_of(const struct setting *s, const struct run_metrics *rm, int split, const char *name) {
    double m, sd;
    int n;
    mean_sd(s, rm, split, name, &m, &sd, &n);
    return n == s->n_runs ? m : NAN; /* every seed must have it */
}

/* {metric: {"mean", "sd", "n_seeds"}} over every metric the setting's first run has in split */
static cJSON *metrics_json(const struct setting *s, const struct run_metrics *rm, int split) {
    cJSON *o = cJSON_CreateObject();
    const struct uf_tune_metrics *first = split ? &rm[s->runs[0]].val : &rm[s->runs[0]].test;
    for (int i = 0; i < first->n; i++) {
        double m, sd;
        int n;
        mean_sd(s, rm, split, first->names[i], &m, &sd, &n);
        cJSON *x = cJSON_AddObjectToObject(o, first->names[i]);
        cJSON_AddNumberToObject(x, "mean", m);
        cJSON_AddNumberToObject(x, "sd", sd);
        cJSON_AddNumberToObject(x, "n_seeds", n);
    }
    return o;
}

static void csv_rows(FILE *f, const char *study, const char *method, const struct setting *s,
                     const struct run_metrics *rm, int chosen) {
    for (int split = 1; split >= 0; split--) {
        const struct uf_tune_metrics *first = split ? &rm[s->runs[0]].val : &rm[s->runs[0]].test;
        for (int i = 0; i < first->n; i++) {
            double m, sd;
            int n;
            mean_sd(s, rm, split, first->names[i], &m, &sd, &n);
            fprintf(f, "%s,%s,\"%s\",%d,%d,%s,%s,%.6g,%.6g,%d\n", study, method, s->label, chosen, s->cand.meets,
                    split ? "val" : "test", first->names[i], m, sd, n);
        }
    }
}

/* the rule's metric i (0 objective, 1.. conditions) */
static const char *rule_metric(const struct uf_tune_rule *r, int i) {
    return i == 0 ? r->metric : r->conds[i - 1].metric;
}

/* " (accuracy)" after "utility": the metric it stands for (three %s) */
#define UTIL_NOTE(name)                                                                             \
    strcmp(name, "utility") == 0 && utility ? " (" : "", strcmp(name, "utility") == 0 && utility ? utility : "", \
        strcmp(name, "utility") == 0 && utility ? ")" : ""

struct study_out {
    cJSON *json;
    char **chosen_runs; /* run names of the chosen settings (every seed) */
    int n_chosen;
};

static int study_select(const struct uf_plan_tune *st, const char *out, const char *rule_text, FILE *csv,
                        struct study_out *so) {
    struct uf_tune_rule rule;
    if (uf_tune_rule_parse(rule_text, &rule)) return uf_fail_prefix("tune %s", st->name);
    char canon[512];
    uf_tune_rule_format(&rule, canon, sizeof canon);
    int rc = 0, n_set = 0;
    struct run_metrics *rm = uf_calloc((size_t)st->n_runs + 1, sizeof *rm);
    struct setting *sets = uf_calloc((size_t)st->n_runs + 1, sizeof *sets);
    for (int i = 0; i < st->n_runs && rc == 0; i++) {
        struct uf_results res;
        memset(&res, 0, sizeof res);
        char *path = uf_sprintf("%s/%s/results.json", out, st->runs[i].run);
        rc = uf_results_read(&res, path);
        if (rc == 0) rc = uf_tune_split_metrics(&res, st->n_test, st->n_val, &rm[i].test, &rm[i].val);
        if (rc == 0 && res.utility) rm[i].utility = uf_strdup(res.utility);
        uf_results_free(&res);
        free(path);
        /* group runs into settings (same method and setting, one run per seed) */
        const struct uf_plan_tune_run *r = &st->runs[i];
        int s = 0;
        while (s < n_set && !(sets[s].method == r->method && strcmp(sets[s].label, r->setting) == 0)) s++;
        if (s == n_set) {
            sets[n_set].method = r->method;
            sets[n_set].label = r->setting;
            sets[n_set].values = r->values;
            sets[n_set].runs = uf_calloc((size_t)st->n_runs, sizeof(int));
            n_set++;
        }
        sets[s].runs[sets[s].n_runs++] = i;
    }
    if (rc) goto done;
    /* every setting's validation values of the rule's metrics */
    for (int s = 0; s < n_set; s++) {
        struct uf_tune_cand *c = &sets[s].cand;
        c->n_knobs = st->methods[sets[s].method].n_knobs;
        c->knobs = sets[s].values;
        for (int i = 0; i <= rule.n_conds; i++) {
            double v = mean_of(&sets[s], rm, 1, rule_metric(&rule, i));
            if (isnan(v)) {
                const struct uf_tune_metrics *vm = &rm[sets[s].runs[0]].val;
                char list[1024] = "";
                size_t l = 0;
                for (int k = 0; k < vm->n && l < sizeof list; k++)
                    l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", k ? ", " : "", vm->names[k]);
                rc = uf_fail("tune %s: run %s has no validation metric '%s'; it has: %s%s", st->name,
                             st->runs[sets[s].runs[0]].run, rule_metric(&rule, i), list,
                             rm[sets[s].runs[0]].utility ? "; utility" : "");
                goto done;
            }
            if (i == 0) c->objective = v;
            else c->cond[i - 1] = v;
        }
    }
    /* the reference */
    double ref[UF_TUNE_MAX_CONDS];
    int ref_set = -1;
    for (int s = 0; s < n_set; s++)
        if (st->reference[0] && strcmp(st->methods[sets[s].method].name, st->reference) == 0) ref_set = s;
    for (int i = 0; i < rule.n_conds; i++) ref[i] = ref_set >= 0 ? sets[ref_set].cand.cond[i] : NAN;
    if (uf_tune_rule_uses_ref(&rule) && ref_set < 0) {
        rc = uf_fail("tune %s: the rule \"%s\" reads ref, and the study has no reference method (uf.tune's "
                     "reference)", st->name, canon);
        goto done;
    }
    const char *utility = rm[0].utility;
    cJSON *sj = cJSON_CreateObject();
    so->json = sj;
    cJSON_AddStringToObject(sj, "name", st->name);
    cJSON_AddStringToObject(sj, "rule", canon);
    cJSON_AddStringToObject(sj, "reference", st->reference);
    if (utility) cJSON_AddStringToObject(sj, "utility", utility);
    cJSON_AddNumberToObject(sj, "n_test_evals", st->n_test);
    cJSON_AddNumberToObject(sj, "n_val_evals", st->n_val);
    if (ref_set >= 0) {
        cJSON *rv = cJSON_AddObjectToObject(sj, "reference_val");
        for (int i = 0; i < rule.n_conds; i++) cJSON_AddNumberToObject(rv, rule.conds[i].metric, ref[i]);
    }
    cJSON *bounds = cJSON_AddArrayToObject(sj, "bounds");
    for (int i = 0; i < rule.n_conds; i++) {
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "metric", rule.conds[i].metric);
        cJSON_AddStringToObject(b, "op", rule.conds[i].at_most ? "<=" : ">=");
        cJSON_AddNumberToObject(b, "value", uf_tune_bound(&rule, i, ref[i]));
        cJSON_AddItemToArray(bounds, b);
    }
    cJSON *methods = cJSON_AddArrayToObject(sj, "methods");

    /* the tables: every setting's validation values, then the chosen settings' test values */
    printf("\ntune %s: rule \"%s\"", st->name, canon);
    if (ref_set >= 0 && rule.n_conds) printf("; reference %s", st->reference);
    printf("\n");
    for (int i = 0; i < rule.n_conds; i++)
        printf("  bound: validation %s %s %.2f%%%s\n", rule.conds[i].metric, rule.conds[i].at_most ? "<=" : ">=",
               pct(uf_tune_bound(&rule, i, ref[i])),
               rule.conds[i].vs_ref ? "" : " (absolute)");
    printf("\n| method | setting | seeds |");
    for (int i = 0; i <= rule.n_conds; i++) printf(" val %s%s%s%s |", rule_metric(&rule, i), UTIL_NOTE(rule_metric(&rule, i)));
    printf(" meets rule | chosen |\n|---|---|---|");
    for (int i = 0; i <= rule.n_conds; i++) printf("---|");
    printf("---|---|\n");
    int *chosen = uf_calloc((size_t)st->n_methods, sizeof *chosen);
    for (int m = 0; m < st->n_methods && rc == 0; m++) {
        /* the method's settings, contiguous in declaration order */
        int first = -1, n = 0;
        for (int s = 0; s < n_set; s++)
            if (sets[s].method == m) {
                if (first < 0) first = s;
                n++;
            }
        chosen[m] = -1;
        if (n == 0) continue;
        struct uf_tune_cand *cands = uf_calloc((size_t)n, sizeof *cands);
        for (int k = 0; k < n; k++) cands[k] = sets[first + k].cand;
        int best = uf_tune_select(&rule, ref, cands, n);
        for (int k = 0; k < n; k++) sets[first + k].cand = cands[k];
        free(cands);
        if (best < 0) {
            rc = uf_fail_prefix("tune %s: method %s", st->name, st->methods[m].name);
            break;
        }
        chosen[m] = first + best;
    }
    for (int m = 0; m < st->n_methods && rc == 0; m++) {
        const struct uf_plan_tune_method *pm = &st->methods[m];
        int n_meet = 0, n = 0, tied = 0;
        const struct setting *c = chosen[m] >= 0 ? &sets[chosen[m]] : NULL;
        if (!c) continue;
        for (int s = 0; s < n_set; s++) {
            if (sets[s].method != m) continue;
            n++;
            n_meet += sets[s].cand.meets;
            if (s != chosen[m] && sets[s].cand.meets == c->cand.meets &&
                fabs(sets[s].cand.objective - c->cand.objective) <= 1e-9)
                tied++;
            printf("| %s | %s | %d |", pm->name, sets[s].label[0] ? sets[s].label : "-", sets[s].n_runs);
            printf(" %.1f |", pct(sets[s].cand.objective));
            for (int i = 0; i < rule.n_conds; i++) printf(" %.1f |", pct(sets[s].cand.cond[i]));
            printf(" %s | %s |\n", sets[s].cand.meets ? "yes" : "no", s == chosen[m] ? "**chosen**" : "");
        }
        /* why, in words */
        char why[1024];
        size_t wl = 0;
        const char *dir = rule.maximize ? "highest" : "lowest";
        if (n == 1)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "the only setting");
        else if (n_meet > 0)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s validation %s (%.2f%%) of the %d of %d settings "
                                   "that meet the rule", dir, rule.metric, pct(c->cand.objective), n_meet, n);
        else
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "no setting meets the rule; the smallest shortfall "
                                   "(%.2f points), then the %s validation %s (%.2f%%)",
                                   pct(c->cand.shortfall), dir, rule.metric, pct(c->cand.objective));
        if (tied && wl < sizeof why)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "; tied with %d other setting(s): the smaller knob "
                                   "values win", tied);
        for (int i = 0; i < rule.n_conds && wl < sizeof why; i++)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, "; validation %s %.2f%% %s %.2f%%", rule.conds[i].metric,
                                   pct(c->cand.cond[i]), rule.conds[i].at_most ? "<=" : ">=",
                                   pct(uf_tune_bound(&rule, i, ref[i])));
        cJSON *mj = cJSON_CreateObject();
        cJSON_AddStringToObject(mj, "method", pm->name);
        cJSON *grid = cJSON_AddObjectToObject(mj, "grid");
        for (int k = 0; k < pm->n_knobs; k++)
            cJSON_AddItemToObject(grid, pm->knobs[k], cJSON_CreateDoubleArray(pm->values[k], pm->n_values[k]));
        cJSON_AddStringToObject(mj, "selected", c->label);
        cJSON *sv = cJSON_AddObjectToObject(mj, "selected_values");
        for (int k = 0; k < pm->n_knobs; k++) cJSON_AddNumberToObject(sv, pm->knobs[k], c->values[k]);
        cJSON_AddBoolToObject(mj, "meets_rule", c->cand.meets);
        cJSON_AddStringToObject(mj, "why", why);
        cJSON *runs = cJSON_AddArrayToObject(mj, "runs");
        for (int i = 0; i < c->n_runs; i++) {
            cJSON_AddItemToArray(runs, cJSON_CreateString(st->runs[c->runs[i]].run));
            so->chosen_runs = uf_realloc(so->chosen_runs, (size_t)(so->n_chosen + 1) * sizeof *so->chosen_runs);
            so->chosen_runs[so->n_chosen++] = uf_sprintf("%s/%s", out, st->runs[c->runs[i]].run);
        }
        cJSON_AddItemToObject(mj, "test", metrics_json(c, rm, 0));
        cJSON *cl = cJSON_AddArrayToObject(mj, "candidates");
        for (int s = 0; s < n_set; s++) {
            if (sets[s].method != m) continue;
            const struct setting *x = &sets[s];
            cJSON *cj = cJSON_CreateObject();
            cJSON_AddStringToObject(cj, "setting", x->label);
            cJSON *vv = cJSON_AddObjectToObject(cj, "values");
            for (int k = 0; k < pm->n_knobs; k++) cJSON_AddNumberToObject(vv, pm->knobs[k], x->values[k]);
            cJSON *xr = cJSON_AddArrayToObject(cj, "runs");
            for (int i = 0; i < x->n_runs; i++) cJSON_AddItemToArray(xr, cJSON_CreateString(st->runs[x->runs[i]].run));
            cJSON *rv = cJSON_AddObjectToObject(cj, "rule_val"); /* the values the rule read */
            for (int i = 0; i <= rule.n_conds; i++)
                cJSON_AddNumberToObject(rv, rule_metric(&rule, i), i ? x->cand.cond[i - 1] : x->cand.objective);
            cJSON_AddBoolToObject(cj, "meets_rule", x->cand.meets);
            cJSON_AddNumberToObject(cj, "shortfall", x->cand.shortfall);
            cJSON_AddBoolToObject(cj, "chosen", s == chosen[m]);
            cJSON_AddItemToObject(cj, "val", metrics_json(x, rm, 1));
            cJSON_AddItemToObject(cj, "test", metrics_json(x, rm, 0));
            cJSON_AddItemToArray(cl, cj);
            if (csv) csv_rows(csv, st->name, pm->name, x, rm, s == chosen[m]);
        }
        cJSON_AddItemToArray(methods, mj);
    }
    if (rc == 0) {
        /* the chosen settings' test numbers: the rule's metrics, then clip_share when present */
        const char *show[UF_TUNE_MAX_CONDS + 2];
        int ns = 0;
        for (int i = 0; i <= rule.n_conds; i++) {
            const char *nm = rule_metric(&rule, i);
            int dup = 0;
            for (int k = 0; k < ns; k++) dup |= strcmp(show[k], nm) == 0;
            if (!dup) show[ns++] = nm;
        }
        int has_clip = 0;
        for (int k = 0; k < ns; k++) has_clip |= strcmp(show[k], "clip_share") == 0;
        if (!has_clip && !isnan(uf_tune_metrics_get(&rm[0].test, "clip_share", NULL))) show[ns++] = "clip_share";
        printf("\nchosen settings, TEST metrics (mean%s over seeds):\n\n| method | setting | meets rule |",
               st->n_runs > n_set ? " ± sd" : "");
        for (int k = 0; k < ns; k++) printf(" %s%s%s%s |", show[k], UTIL_NOTE(show[k]));
        printf("\n|---|---|---|");
        for (int k = 0; k < ns; k++) printf("---|");
        printf("\n");
        for (int m = 0; m < st->n_methods; m++) {
            if (chosen[m] < 0) continue;
            const struct setting *c = &sets[chosen[m]];
            printf("| %s | %s | %s |", st->methods[m].name, c->label[0] ? c->label : "-", c->cand.meets ? "yes" : "no");
            for (int k = 0; k < ns; k++) {
                double mean, sd;
                int n;
                mean_sd(c, rm, 0, show[k], &mean, &sd, &n);
                if (n > 1) printf(" %.1f ± %.1f |", pct(mean), pct(sd));
                else printf(" %.1f |", pct(mean));
            }
            printf("\n");
        }
    }
    free(chosen);
done:
    for (int i = 0; i < st->n_runs; i++) {
        uf_tune_metrics_free(&rm[i].test);
        uf_tune_metrics_free(&rm[i].val);
        free(rm[i].utility);
    }
    free(rm);
    for (int s = 0; s < n_set; s++) free(sets[s].runs);
    free(sets);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------- */
int uf_cmd_tune(int argc, char **argv) {
    const char *recipe = NULL, *out = "runs", *rule = NULL, *report = NULL;
    int nsets = 0, no_select = 0, slurm = 0, rc = 0;
    char **sets = uf_calloc((size_t)argc + 1, sizeof *sets);
    char **sargv = uf_calloc((size_t)argc + 2, sizeof *sargv);
    int sargc = 0;
    sargv[sargc++] = "sweep";
    /* the sweep options that take a value (passed through as they are) */
    static const char *const valued[] = {"--jobs", "--devices", "--slurm", "--partition", "--account", "--time",
                                         "--mem", "--gres", "--cpus-per-task", "--gpus-per-task",
                                         "--array-limit", "--sbatch"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            goto done;
        }
        if (strcmp(a, "--rule") == 0 || strcmp(a, "--report") == 0 || strcmp(a, "--out") == 0 ||
            strcmp(a, "--set") == 0) {
            if (!has) {
                fprintf(stderr, "unforget tune: %s needs a value (see --help)\n", a);
                rc = 2;
                goto done;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--rule") == 0) rule = v;
            else if (strcmp(a, "--report") == 0) report = v;
            else {
                if (strcmp(a, "--out") == 0) out = v;
                else sets[nsets++] = (char *)v;
                sargv[sargc++] = (char *)a;
                sargv[sargc++] = (char *)v;
            }
            continue;
        }
        int val = 0;
        for (size_t k = 0; k < UF_ARRAY_LEN(valued); k++) val |= strcmp(a, valued[k]) == 0;
        if (val) {
            if (!has) {
                fprintf(stderr, "unforget tune: %s needs a value (see --help)\n", a);
                rc = 2;
                goto done;
            }
            slurm |= strcmp(a, "--slurm") == 0;
            sargv[sargc++] = (char *)a;
            sargv[sargc++] = argv[++i];
            continue;
        }
        if (strcmp(a, "--dry-run") == 0 || strcmp(a, "--status") == 0) no_select = 1;
        if (a[0] != '-' && !recipe) recipe = a;
        sargv[sargc++] = (char *)a;
    }
    if (!recipe) {
        fprintf(stderr, "unforget tune: usage: unforget tune RECIPE.lua [--rule RULE] [sweep options] (see --help)\n");
        rc = 2;
        goto done;
    }
    struct uf_tune_rule parsed;
    if (rule && uf_tune_rule_parse(rule, &parsed)) {
        fprintf(stderr, "unforget tune: --rule: %s\n", uf_error());
        rc = 2;
        goto done;
    }
    struct uf_plan plan;
    if (uf_recipe_plan(recipe, nsets, sets, &plan)) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        rc = 1;
        goto done;
    }
    if (plan.n_tunes == 0) {
        fprintf(stderr, "unforget tune: %s declares no uf.tune study (use unforget sweep for a plain grid)\n", recipe);
        rc = 1;
        goto free_plan;
    }
    for (int t = 0; t < plan.n_tunes && !rule; t++)
        if (uf_tune_rule_parse(plan.tunes[t].rule, &parsed)) {
            fprintf(stderr, "unforget: error: %s: uf.tune %s: %s\n", recipe, plan.tunes[t].name, uf_error());
            rc = 1;
            goto free_plan;
        }
    rc = uf_cmd_sweep(sargc, sargv);
    fflush(stdout);
    if (no_select || rc == 2) goto free_plan;
    int total = 0, missing = 0;
    for (int t = 0; t < plan.n_tunes; t++)
        for (int i = 0; i < plan.tunes[t].n_runs; i++) {
            total++;
            missing += !uf_rundir_done(out, plan.tunes[t].runs[i].run);
        }
    if (missing) {
        if (slurm && rc == 0)
            printf("tune: %d of %d run(s) not done yet; when the jobs have finished (unforget status %s), run "
                   "`unforget tune %s --out %s` again (without --slurm) to choose\n", missing, total, out, recipe, out);
        else
            fprintf(stderr, "unforget tune: %d of %d run(s) have no results.json (see above / unforget status %s); "
                            "run the same command again to resume them\n", missing, total, out);
        if (!(slurm && rc == 0)) rc = 1;
        goto free_plan;
    }
    if (rc) fprintf(stderr, "unforget tune: the sweep reported a failure, yet every run of the studies is done; choosing\n");
    rc = 0;
    char *csv_path = uf_sprintf("%s/tune.csv", out), *csv_text = NULL;
    size_t csv_len = 0;
    FILE *csv = open_memstream(&csv_text, &csv_len); /* written atomically at the end */
    if (!csv) uf_fatal(1, "out of memory (open_memstream)");
    fprintf(csv, "study,method,setting,chosen,meets_rule,split,metric,mean,sd,n_seeds\n");
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "unforget.tune/1");
    cJSON_AddStringToObject(root, "recipe", recipe);
    cJSON_AddStringToObject(root, "out", out);
    cJSON_AddItemToObject(root, "sets", cJSON_CreateStringArray((const char *const *)sets, nsets));
    cJSON *studies = cJSON_AddArrayToObject(root, "studies");
    struct study_out so = {0};
    for (int t = 0; t < plan.n_tunes && rc == 0; t++) {
        so.json = NULL;
        if (study_select(&plan.tunes[t], out, rule ? rule : plan.tunes[t].rule, csv, &so)) {
            fprintf(stderr, "unforget: error: %s\n", uf_error());
            rc = 1;
        }
        if (so.json) cJSON_AddItemToArray(studies, so.json);
    }
    fclose(csv);
    if (rc == 0 && uf_file_write_atomic(csv_path, csv_text, csv_len)) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        rc = 1;
    }
    free(csv_text);
    if (rc == 0) {
        char *text = cJSON_Print(root);
        char *path = uf_sprintf("%s/tune.json", out);
        if (uf_file_write_atomic(path, text, strlen(text))) {
            fprintf(stderr, "unforget: error: %s\n", uf_error());
            rc = 1;
        } else {
            printf("\nwrote %s and %s\n", path, csv_path);
        }
        free(path);
        free(text);
    }
    if (rc == 0 && report) {
        if (uf_report_write((const char *const *)so.chosen_runs, so.n_chosen, report, NULL, NULL, "unforget tune: chosen settings")) {
            fprintf(stderr, "unforget: error: %s\n", uf_error());
            rc = 1;
        } else {
            printf("wrote %s\n", report);
        }
    }
    for (int i = 0; i < so.n_chosen; i++) free(so.chosen_runs[i]);
    free(so.chosen_runs);
    cJSON_Delete(root);
    free(csv_path);
free_plan:
    uf_plan_free(&plan);
done:
    free(sets);
    free(sargv);
    return rc;
}
