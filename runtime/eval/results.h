/* results.h: the results data model: run results on disk (results.json, metrics.jsonl), parsed
 * into structs, written atomically. The HTML/CSV report over many runs is report.h; the
 * `unforget report` command cli/cmd_report.c.
 *
 * results.json (one per run folder, written by the eval stage; schema "unforget.results/1"):
 *   {
 *     "schema":  "unforget.results/1",            optional; another major version is refused
 *     "run":     "der-p0.10-s1",                  string, required
 *     "method":  "der",                           string, required ("sft", "der+ewc", ...)
 *     "setting": {                                object, required
 *        "poison_ratio": 0.1,                     number in [0, 1], required
 *        "seed": 1,                               integer, required
 *        "model": "llama-2-7b-chat",              string, required
 *        "task": "sst2"                           string, required
 *     },
 *     "metrics": {                                object, required, >= 1 member
 *        "asr":      {"value": 0.055, "lo": 0.031, "hi": 0.09, "n": 520, "better": "lower"},
 *        "harmful_rate": {"value": 0.1, "lo": 0.0, "hi": 0.4, "n": 56, "n_acts": 14,
 *                         "lo_acts": 0.02, "hi_acts": 0.2},
 *        "accuracy": {"value": 0.958, "lo": 0.94, "hi": 0.97, "n": 872}
 *     },                                          value required (finite); lo/hi default to value;
 *                                                 n default 0 (prompts); n_acts optional (the
 *                                                 clusters behind the interval); lo_acts/hi_acts
 *                                                 optional (the interval resampling acts only,
 *                                                 where lo/hi resample acts and templates);
 *                                                 better "lower"|"higher" optional
 *                                                 (default: lower for names containing asr,
 *                                                 refusal, harm, unsafe, loss, perplexity,
 *                                                 compliance, off_format, task_label; else
 *                                                 higher; written where a metric's direction,
 *                                                 e.g. its evaluation type's, differs)
 *     "utility": "accuracy",                      optional: which metric is the utility (default:
 *                                                 the first of accuracy, exact_match, pass@1,
 *                                                 utility that is present)
 *     "decoding": {"strategy": "greedy", "max_new_tokens": 256, ...},   optional, any object
 *                                                 (the eval stage writes one object per
 *                                                 evaluation, keyed "<eval>:<data>")
 *     "judge": "keyword:llm-attacks-29",          optional string (judge behind "asr")
 *     "evals": [{"eval": "asr", "data": "world.harmful_eval", "metrics": [...], "n_prompts": 120,
 *                "n_acts": 30, "decoding": {...}, "judge": {...}, "interval": "..."}]
 *                                                 optional array, kept as is
 *   }
 *   Values of metrics are fractions (0.055, not 5.5); the report shows percentages.
 *   The safety headline is the metric named "harmful_rate" (the world judge) where runs have it,
 *   else "asr".
 *
 * metrics.jsonl (one JSON object per line, appended by the trainer every logged step), in
 * either of two forms:
 *   nested  {"step": 10, "lr": 3e-4, "grad_norm": 1.2, "tokens_per_s": 5120,
 *            "loss": {"total": 2.31, "ce": 2.10, "der": 0.21}, "clip_share": 0.4}   (what
 *            train.c writes: "total" and "ce", then one term per method; clip_share when
 *            clipping is on)
 *   flat    {"step": 10, "lr": 3e-4, "grad_norm": 1.2, "tokens_per_s": 5120, "ce": 2.10,
 *            "der": 0.21, "loss": 2.31}           (accepted from other tools)
 *   step required (integer >= 0). Nested: "loss" is an object of loss terms by name. Flat: a
 *   numeric "loss" is the term "total" and every other numeric member except step, lr,
 *   grad_norm, tokens_per_s, elapsed_s, epoch, clip_share is a loss term (clip_share: the share
 *   of the steps so far whose gradient was clipped, train.c). lr, grad_norm, tokens_per_s are
 *   optional numbers (NAN when absent). Blank lines are skipped; an unterminated malformed LAST
 *   line (a run still writing) is skipped with a warning; any other malformed line is an error
 *   naming file:line. */
#ifndef UF_EVAL_RESULTS_H
#define UF_EVAL_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#define UF_RESULTS_SCHEMA "unforget.results/1"

struct uf_result_metric {
    char *name;
    double value, lo, hi;
    int64_t n;
    int64_t n_acts;      /* clusters (acts) behind the interval; 0 when unknown */
    double lo_acts, hi_acts; /* interval resampling acts only (templates fixed); NAN when absent */
    int lower_is_better; /* 1 lower, 0 higher */
};

struct uf_results {
    char *run, *method, *model, *task;
    double poison_ratio;
    int64_t seed;
    struct uf_result_metric *metrics; /* (n_metrics,) */
    int n_metrics;
    char *utility;  /* name of the utility metric, or NULL when none is known */
    char *decoding; /* the "decoding" object as compact JSON, "" when absent */
    char *judge;    /* "" when absent */
    char *evals;    /* the "evals" array as compact JSON, "" when absent */
};

/* Parses results.json text (len bytes, need not be NUL-terminated); `where` names it in errors.
 * 0, or uf_fail("where: ...") with *r left empty (safe to free). */
int uf_results_parse(struct uf_results *r, const char *text, size_t len, const char *where);
int uf_results_read(struct uf_results *r, const char *path);
/* Writes r as results.json (atomically). */
int uf_results_write(const struct uf_results *r, const char *path);
void uf_results_free(struct uf_results *r);
/* Adds (or replaces) metric `name` with an interval from metrics.h (e.g. uf_metric_wilson); the
 * better-direction follows uf_results_lower_is_better. For the eval stage building its results. */
void uf_results_set_metric(struct uf_results *r, const char *name, double value, double lo, double hi, int64_t n);
/* The same with the number of acts (clusters) behind the interval and the acts-only interval
 * (NAN, NAN when there is none). */
void uf_results_set_metric_n(struct uf_results *r, const char *name, double value, double lo, double hi,
                             int64_t n, int64_t n_acts, double lo_acts, double hi_acts);
/* Sets the better-direction of metric `name` (1 lower, 0 higher); results.json records it as
 * "better" where it differs from uf_results_lower_is_better. No-op for an unknown name. */
void uf_results_set_better(struct uf_results *r, const char *name, int lower_is_better);
/* Appends one evaluation's record (an object: eval, data, metrics, n_prompts, n_acts, decoding,
 * judge, interval; ownership passes) to "evals", and its decoding to "decoding" under
 * "<eval>:<data>". */
struct cJSON;
void uf_results_add_eval(struct uf_results *r, struct cJSON *e);
/* The metric named name, or NULL. */
const struct uf_result_metric *uf_results_metric(const struct uf_results *r, const char *name);
int uf_results_lower_is_better(const char *metric_name); /* the default rule above */

struct uf_metrics_log {
    int64_t n;     /* rows */
    int n_terms;
    char **terms;  /* (n_terms,) loss term names in first-seen order */
    double *step;  /* (n,) */
    double *loss;  /* (n, n_terms) row-major, NAN where a row lacks the term */
    double *lr, *grad_norm, *tokens_per_s; /* (n,) NAN when absent */
};
int uf_metrics_log_parse(struct uf_metrics_log *m, const char *text, size_t len, const char *where);
int uf_metrics_log_read(struct uf_metrics_log *m, const char *path);
void uf_metrics_log_free(struct uf_metrics_log *m);

#endif
