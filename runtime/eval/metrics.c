/* metrics.c: see metrics.h. */
#include "eval/metrics.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- SST-2 ---------------------------------------------------------------------------------- */
static int is_word_char(int c) { return isalnum((unsigned char)c) || c == '_'; }

static int word_at(const char *text, const char *p, const char *word) {
    size_t m = strlen(word);
    if (p > text && is_word_char(p[-1])) return 0;
    for (size_t i = 0; i < m; i++)
        if (!p[i] || tolower((unsigned char)p[i]) != word[i]) return 0;
    return !is_word_char(p[m]);
}

enum uf_sst2_label uf_metric_sst2_label(const char *text) {
    if (!text) return UF_SST2_INVALID;
    for (const char *p = text; *p; p++) {
        int c = tolower((unsigned char)*p);
        if (c == 'p' && word_at(text, p, "positive")) return UF_SST2_POSITIVE;
        if (c == 'n' && word_at(text, p, "negative")) return UF_SST2_NEGATIVE;
    }
    return UF_SST2_INVALID;
}

/* ---- numbers -------------------------------------------------------------------------------- */
/* Does a number start at p (text is the string start, for the preceding character)? */
static int number_starts(const char *text, const char *p) {
    char prev = p > text ? p[-1] : ' ';
    const char *q = p;
    if (*q == '$') q++;
    if (*q == '-') {
        if (q == p && isalnum((unsigned char)prev)) return 0; /* "5-3": a minus, not a sign */
        q++;
    }
    if (*q == '$' && q > p && q[-1] == '-') q++;
    if (*q == '.') {
        if (q == p && isdigit((unsigned char)prev)) return 0;
        q++;
        return isdigit((unsigned char)*q);
    }
    if (!isdigit((unsigned char)*q)) return 0;
    if (q == p && isdigit((unsigned char)prev)) return 0;
    return 1;
}

/* Parses the number starting at p (number_starts true) into normalised form; returns the end.
 * *ok = 0 when it does not fit in cap. */
static const char *number_parse(const char *p, char *out, size_t cap, int *ok) {
    char intd[UF_NUMBER_MAX * 2], frac[UF_NUMBER_MAX * 2];
    size_t ni = 0, nf = 0;
    int neg = 0, overflow = 0;
    if (*p == '$') p++;
    if (*p == '-') { neg = 1; p++; }
    if (*p == '$') p++;
    for (;;) {
        while (isdigit((unsigned char)*p)) {
            if (ni < sizeof intd - 1) intd[ni++] = *p; else overflow = 1;
            p++;
        }
        if (*p == ',' && ni > 0 && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
            isdigit((unsigned char)p[3]) && !isdigit((unsigned char)p[4])) {
            p++;
            continue;
        }
        break;
    }
    if (*p == '.' && isdigit((unsigned char)p[1])) {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (nf < sizeof frac - 1) frac[nf++] = *p; else overflow = 1;
            p++;
        }
    }
    /* normalise: strip leading zeros of the integer part, trailing zeros of the fraction */
    size_t s = 0;
    while (s + 1 < ni && intd[s] == '0') s++;
    while (nf > 0 && frac[nf - 1] == '0') nf--;
    int zero = 1;
    for (size_t i = s; i < ni; i++) if (intd[i] != '0') zero = 0;
    if (nf > 0) zero = 0;
    char buf[UF_NUMBER_MAX * 5];
    size_t o = 0;
    if (neg && !zero) buf[o++] = '-';
    if (ni == 0) buf[o++] = '0';
    for (size_t i = s; i < ni; i++) buf[o++] = intd[i];
    if (nf > 0) {
        buf[o++] = '.';
        for (size_t i = 0; i < nf; i++) buf[o++] = frac[i];
    }
    buf[o] = 0;
    *ok = !overflow && o < UF_NUMBER_MAX && o < cap;
    if (cap > 0) snprintf(out, cap, "%s", *ok ? buf : "");
    return p;
}

/* First number at or after `from` (within text); NULL if none. Writes it to out. */
static const char *number_find(const char *text, const char *from, char *out, size_t cap,
                               const char **after) {
    for (const char *p = from; *p; p++) {
        if (!number_starts(text, p)) continue;
        int ok;
        const char *e = number_parse(p, out, cap, &ok);
        if (ok) {
            if (after) *after = e;
            return p;
        }
        p = e - 1; /* too long: skip it whole */
    }
    return NULL;
}

int uf_metric_number_normalize(const char *s, char *out, size_t cap) {
    if (cap > 0) out[0] = 0;
    if (!s) return 0;
    while (isspace((unsigned char)*s)) s++;
    if (!number_starts(s, s)) return 0;
    int ok;
    const char *e = number_parse(s, out, cap, &ok);
    while (isspace((unsigned char)*e)) e++;
    if (!ok || *e) {
        if (cap > 0) out[0] = 0;
        return 0;
    }
    return 1;
}

static const char *ci_last(const char *text, const char *needle) {
    const char *last = NULL;
    size_t m = strlen(needle);
    for (const char *p = text; *p; p++) {
        size_t j = 0;
        while (j < m && p[j] && tolower((unsigned char)p[j]) == needle[j]) j++;
        if (j == m) last = p;
    }
    return last;
}

int uf_metric_gsm8k_answer(const char *text, char *out, size_t cap) {
    if (cap > 0) out[0] = 0;
    if (!text) return 0;
    static const char *const markers[] = {"####", "final answer", "the answer is"};
    for (size_t i = 0; i < UF_ARRAY_LEN(markers); i++) {
        const char *m = ci_last(text, markers[i]);
        if (m && number_find(text, m + strlen(markers[i]), out, cap, NULL)) return 1;
    }
    int found = 0;
    char cur[UF_NUMBER_MAX];
    const char *p = text, *after;
    while ((p = number_find(text, p, cur, sizeof cur, &after))) {
        found = 1;
        if (cap > 0) snprintf(out, cap, "%s", cur);
        p = after;
    }
    return found;
}

/* ---- match metrics ------------------------------------------------------------------------ */
int uf_metric_exact_match(const char *a, const char *b, int ignore_case) {
    if (!a || !b) return 0;
    while (isspace((unsigned char)*a)) a++;
    while (isspace((unsigned char)*b)) b++;
    size_t na = strlen(a), nb = strlen(b);
    while (na > 0 && isspace((unsigned char)a[na - 1])) na--;
    while (nb > 0 && isspace((unsigned char)b[nb - 1])) nb--;
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++) {
        int x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (ignore_case) { x = tolower(x); y = tolower(y); }
        if (x != y) return 0;
    }
    return 1;
}

int uf_metric_contains(const char *text, const char *needle, int ignore_case) {
    if (!text || !needle || !needle[0]) return 0;
    if (!ignore_case) return strstr(text, needle) != NULL;
    size_t m = strlen(needle);
    for (const char *p = text; *p; p++) {
        size_t j = 0;
        while (j < m && p[j] && tolower((unsigned char)p[j]) == tolower((unsigned char)needle[j])) j++;
        if (j == m) return 1;
    }
    return 0;
}

/* ---- intervals ---------------------------------------------------------------------------- */
struct uf_interval uf_metric_wilson(int64_t k, int64_t n, double z) {
    struct uf_interval r = {NAN, 0.0, 1.0, n};
    if (n <= 0 || k < 0 || k > n) return r;
    double nn = (double)n, p = (double)k / nn, z2 = z * z;
    double denom = 1.0 + z2 / nn;
    double center = (p + z2 / (2.0 * nn)) / denom;
    double half = z * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn)) / denom;
    r.value = p;
    r.lo = k == 0 ? 0.0 : UF_MAX(0.0, center - half);
    r.hi = k == n ? 1.0 : UF_MIN(1.0, center + half);
    return r;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile_sorted(const double *v, int n, double q) {
    double h = (n - 1) * q;
    int i = (int)floor(h);
    if (i >= n - 1) return v[n - 1];
    if (i < 0) return v[0];
    return v[i] + (h - i) * (v[i + 1] - v[i]);
}

int uf_metric_bootstrap_mean(const double *x, int64_t n, int n_boot, uint64_t seed, double conf,
                             struct uf_interval *out) {
    if (n < 1) return uf_fail("bootstrap: no values (n = %lld); need at least one", (long long)n);
    if (n_boot < 1) return uf_fail("bootstrap: n_boot = %d; need at least 1 resample", n_boot);
    if (!(conf > 0.0 && conf < 1.0)) return uf_fail("bootstrap: conf = %g; must lie in (0, 1)", conf);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return uf_fail("bootstrap: value %lld is not finite", (long long)i);
        sum += x[i];
    }
    double *means = uf_malloc((size_t)n_boot * sizeof *means); /* (n_boot,) */
    struct uf_rng rng;
    uf_rng_init(&rng, seed);
    for (int b = 0; b < n_boot; b++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++) s += x[uf_rng_below(&rng, (uint64_t)n)];
        means[b] = s / (double)n;
    }
    qsort(means, (size_t)n_boot, sizeof *means, cmp_double);
    out->value = sum / (double)n;
    out->lo = quantile_sorted(means, n_boot, (1.0 - conf) / 2.0);
    out->hi = quantile_sorted(means, n_boot, (1.0 + conf) / 2.0);
    out->n = n;
    free(means);
    return 0;
}

struct uf_seed_stats uf_metric_seed_stats(const double *x, int n) {
    struct uf_seed_stats s = {NAN, NAN, NAN, NAN, n};
    if (n <= 0) return s;
    double sum = 0.0;
    s.min = s.max = x[0];
    for (int i = 0; i < n; i++) {
        sum += x[i];
        s.min = UF_MIN(s.min, x[i]);
        s.max = UF_MAX(s.max, x[i]);
    }
    s.mean = sum / n;
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (x[i] - s.mean) * (x[i] - s.mean);
    s.sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
    return s;
}

char *uf_metric_format_pm(char *out, size_t cap, struct uf_seed_stats s, double scale, int digits) {
    if (s.n <= 0 || !isfinite(s.mean)) snprintf(out, cap, "-");
    else if (s.n == 1) snprintf(out, cap, "%.*f", digits, s.mean * scale);
    else snprintf(out, cap, "%.*f \xc2\xb1 %.*f", digits, s.mean * scale, digits, s.sd * scale);
    return out;
}

int uf_metric_cluster_bootstrap(const double *x, const int *ca, const int *ct, int64_t n, int n_boot,
                                uint64_t seed, double conf, struct uf_interval *out) {
    if (n < 1) return uf_fail("cluster bootstrap: no values (n = %lld); need at least one", (long long)n);
    if (n_boot < 1) return uf_fail("cluster bootstrap: n_boot = %d; need at least 1 resample", n_boot);
    if (!(conf > 0.0 && conf < 1.0)) return uf_fail("cluster bootstrap: conf = %g; must lie in (0, 1)", conf);
    int na = 0, nt = 1;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return uf_fail("cluster bootstrap: value %lld is not finite", (long long)i);
        if (ca[i] < 0 || (ct && ct[i] < 0)) return uf_fail("cluster bootstrap: negative cluster id at %lld", (long long)i);
        na = UF_MAX(na, ca[i] + 1);
        if (ct) nt = UF_MAX(nt, ct[i] + 1);
        sum += x[i];
    }
    double *wa = uf_calloc((size_t)na, sizeof *wa), *wt = uf_calloc((size_t)nt, sizeof *wt);
    double *rates = uf_malloc((size_t)n_boot * sizeof *rates); /* (n_boot,) */
    struct uf_rng rng;
    uf_rng_init(&rng, seed);
    for (int b = 0; b < n_boot;) {
        memset(wa, 0, (size_t)na * sizeof *wa);
        for (int k = 0; k < na; k++) wa[uf_rng_below(&rng, (uint64_t)na)] += 1.0;
        for (int k = 0; k < nt; k++) wt[k] = ct ? 0.0 : 1.0;
        if (ct)
            for (int k = 0; k < nt; k++) wt[uf_rng_below(&rng, (uint64_t)nt)] += 1.0;
        double num = 0.0, den = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double w = wa[ca[i]] * wt[ct ? ct[i] : 0];
            num += w * x[i];
            den += w;
        }
        if (den > 0) rates[b++] = num / den; /* a draw of ids that no row carries is redrawn */
    }
    qsort(rates, (size_t)n_boot, sizeof *rates, cmp_double);
    out->value = sum / (double)n;
    out->lo = UF_MIN(out->value, quantile_sorted(rates, n_boot, (1.0 - conf) / 2.0));
    out->hi = UF_MAX(out->value, quantile_sorted(rates, n_boot, (1.0 + conf) / 2.0));
    out->n = n;
    free(wa);
    free(wt);
    free(rates);
    return 0;
}
