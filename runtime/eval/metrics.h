/* metrics.h: answer extraction for the utility tasks, match metrics, and intervals.
 *
 * Extraction (from a free-form generation):
 *   SST-2   the first occurrence of "positive" or "negative" as a whole word (case-insensitive;
 *           the characters before and after must not be letters, digits or '_'); neither ->
 *           invalid (counted wrong by accuracy).
 *   GSM8K   the final number: the first number after the last "####"; else after the last
 *           "final answer" (case-insensitive); else after the last "the answer is"; else the last
 *           number in the text. Numbers: optional '-' sign (only when not glued to a preceding
 *           letter/digit: "5-3" is 5 and 3), optional '$' before or after the sign, thousands
 *           commas (a comma counts only when exactly three digits follow it: "1,234" is 1234,
 *           "1,2,3" is three numbers), decimals ("3.50"; a sentence-final '.' is not part of it),
 *           ".5". The result is normalised ("1,234.50" -> "1234.5", "-0" -> "0", "7.0" -> "7")
 *           so that exact match compares values written differently.
 * Metrics: exact match (after trimming white space, optionally case-folded), contains.
 * Intervals (95% unless told): Wilson score interval for a proportion k/n; percentile bootstrap
 * (seeded, uf_rng) for a mean; mean and sample standard deviation across seeds.
 * Not here: judges (judge.h), code execution (passk.h), the results file (report.h). */
#ifndef UF_EVAL_METRICS_H
#define UF_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- extraction ----------------------------------------------------------------------------- */
enum uf_sst2_label { UF_SST2_INVALID = -1, UF_SST2_NEGATIVE = 0, UF_SST2_POSITIVE = 1 };
enum uf_sst2_label uf_metric_sst2_label(const char *text);

#define UF_NUMBER_MAX 64 /* longest normalised number kept (longer numbers are truncated: invalid) */
/* Writes the normalised final number into out (cap >= UF_NUMBER_MAX) and returns 1; returns 0
 * and writes "" when the text has no number. */
int uf_metric_gsm8k_answer(const char *text, char *out, size_t cap);
/* Normalises one number as written ("$1,234.50" -> "1234.5"); 1 ok, 0 when s is not a number. */
int uf_metric_number_normalize(const char *s, char *out, size_t cap);

/* 1 when a and b are equal after trimming white space (ignore_case: ASCII case-folded). */
int uf_metric_exact_match(const char *a, const char *b, int ignore_case);
/* 1 when needle occurs in text (ignore_case: ASCII case-folded); an empty needle never matches. */
int uf_metric_contains(const char *text, const char *needle, int ignore_case);

/* ---- intervals ---------------------------------------------------------------------------- */
#define UF_Z95 1.959963984540054 /* two-sided 95% standard-normal quantile */

struct uf_interval {
    double value; /* point estimate (k/n, or the mean) */
    double lo, hi;
    int64_t n;    /* sample size behind it */
};
/* Wilson score interval for k successes out of n (0 <= k <= n); n == 0 gives value NAN, [0, 1]. */
struct uf_interval uf_metric_wilson(int64_t k, int64_t n, double z);
/* Percentile bootstrap for the mean of x (n values): n_boot resamples (>= 1) drawn with uf_rng
 * seeded by seed; [lo, hi] = the (1-conf)/2 and (1+conf)/2 empirical quantiles (linear
 * interpolation between order statistics). 0, or uf_fail when n < 1 or a value is not finite. */
int uf_metric_bootstrap_mean(const double *x, int64_t n, int n_boot, uint64_t seed, double conf,
                             struct uf_interval *out);

/* Cluster (pigeonhole) bootstrap for the mean of x when rows cluster: each resample draws the
 * na clusters of ca (ids 0..na-1, e.g. acts) with replacement and, when ct != NULL,
 * independently the nt clusters of ct (e.g. templates); row i gets weight
 * count_a(ca[i]) * count_t(ct[i]) and the replicate is the weighted mean (a replicate with zero
 * total weight is redrawn; ids that no row carries are allowed but waste draws). With every row
 * its own cluster and ct NULL this is the ordinary bootstrap. value = the plain mean; [lo, hi]
 * the percentile interval, widened to contain the value. 0, or uf_fail for n < 1, a non-finite
 * value, a negative id, n_boot < 1 or conf outside (0, 1). */
int uf_metric_cluster_bootstrap(const double *x, const int *ca, const int *ct, int64_t n, int n_boot,
                                uint64_t seed, double conf, struct uf_interval *out);

/* ---- across seeds ----------------------------------------------------------------------------- */
struct uf_seed_stats {
    double mean, sd; /* sd: sample standard deviation (n-1); 0 when n == 1 */
    double min, max;
    int n;
};
struct uf_seed_stats uf_metric_seed_stats(const double *x, int n); /* n == 0: all NAN */
/* "mean ± sd" with the values multiplied by scale (100 for percent), `digits` decimals; a single
 * seed prints just the mean. Returns out. */
char *uf_metric_format_pm(char *out, size_t cap, struct uf_seed_stats s, double scale, int digits);

#endif
