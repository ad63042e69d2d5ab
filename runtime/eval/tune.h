/* tune.h: the selection of `unforget tune` (cli/cmd_tune.c): a rule over validation metrics, the
 * split of a run's results.json into its test and validation metrics, and the choice of one
 * setting per method. Plain host code over numbers; what reads the files is cmd_tune.c.
 *
 * A rule (README: Tuning):
 *   RULE  := ("min" | "max") METRIC [ ("where" | "if") COND { ("and" | ",") COND } ]
 *   COND  := METRIC (">=" | "<=") BOUND
 *   BOUND := NUMBER | "ref" [ ("+" | "-") NUMBER ]
 * METRIC is a metric name of results.json (harmful_rate, accuracy, over_refusal, lookup, asr,
 * clip_share, ...) read on the VALIDATION evaluations, or "utility" (the run's utility metric:
 * results.json "utility", else the first of accuracy, exact_match, pass@1). Numbers are percent,
 * the report's unit: "ref - 2" is 2 points below the reference method's validation value of the
 * same metric, "90" is 90%. The default: "min harmful_rate where utility >= ref - 2".
 *
 * The choice per method: among the settings that meet every condition, the best objective (mean
 * over seeds of the validation metric); objectives within 1e-9 tie and the smaller knob values
 * win (knobs compared in alphabetical order of their names, values numerically), then the earlier
 * setting. When no setting meets the conditions, the one with the smallest total shortfall (sum
 * over conditions of how far it misses the bound) is chosen, and marked as not meeting the rule. */
#ifndef UF_EVAL_TUNE_H
#define UF_EVAL_TUNE_H

#include "eval/results.h"

#define UF_TUNE_MAX_CONDS 8
#define UF_TUNE_DEFAULT_RULE "min harmful_rate where utility >= ref - 2"

struct uf_tune_cond {
    char metric[96];
    int at_most;   /* 1: METRIC <= BOUND, 0: METRIC >= BOUND */
    int vs_ref;    /* 1: BOUND = reference's value + offset */
    double offset; /* a fraction (the rule's percent / 100) */
};

struct uf_tune_rule {
    int maximize;
    char metric[96];
    int n_conds;
    struct uf_tune_cond conds[UF_TUNE_MAX_CONDS];
};

/* Parses text into r. 0, or uf_fail naming the rule and what was expected where. */
int uf_tune_rule_parse(const char *text, struct uf_tune_rule *r);
/* The rule in its canonical form ("min harmful_rate where utility >= ref - 2") into buf. */
void uf_tune_rule_format(const struct uf_tune_rule *r, char *buf, size_t cap);
/* 1 when some condition reads the reference */
int uf_tune_rule_uses_ref(const struct uf_tune_rule *r);

/* Metric values by name. */
struct uf_tune_metrics {
    int n;
    char **names;   /* (n) */
    double *values; /* (n) */
};
/* The value of name ("utility" -> utility when not NULL), or NAN when absent. */
double uf_tune_metrics_get(const struct uf_tune_metrics *m, const char *name, const char *utility);
void uf_tune_metrics_free(struct uf_tune_metrics *m);

/* Splits a run's metrics: the metrics of evaluations [0, n_test) of its "evals" array into test,
 * those of [n_test, n_test + n_val) into val, each without the ":DATA" suffix evaluate.c appends
 * to a name already taken; metrics of no evaluation (clip_share) into both. 0, or uf_fail when
 * the results do not have n_test + n_val evaluations. */
int uf_tune_split_metrics(const struct uf_results *r, int n_test, int n_val, struct uf_tune_metrics *test,
                          struct uf_tune_metrics *val);

/* One setting of a method. The caller fills knobs, objective and cond; select fills the rest. */
struct uf_tune_cand {
    int n_knobs;
    const double *knobs; /* (n_knobs) the setting's values, knobs in alphabetical order */
    double objective;    /* validation value of the rule's metric (fraction; mean over seeds) */
    double cond[UF_TUNE_MAX_CONDS]; /* validation value of each condition's metric */
    int meets;           /* out: every condition holds */
    double shortfall;    /* out: sum over conditions of how far the value misses its bound */
};

/* The bound of condition i (a fraction), given the reference's value of its metric (ref_value;
 * NAN when there is no reference). NAN when it needs a missing reference value. */
double uf_tune_bound(const struct uf_tune_rule *r, int i, double ref_value);
/* Chooses among cands (n >= 1) by the rule; ref: (r->n_conds) the reference's validation value of
 * each condition's metric (NAN where none). Returns the chosen index, or -1 when a value the rule
 * needs is NAN (uf_fail names which). */
int uf_tune_select(const struct uf_tune_rule *r, const double *ref, struct uf_tune_cand *cands, int n);

#endif
