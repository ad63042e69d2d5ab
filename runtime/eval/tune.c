/* tune.c: the selection rule of `unforget tune`, a run's metrics split into test and validation,
 * and the choice of a setting per method (see tune.h). */
#include "eval/tune.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/util.h"

#define TIE 1e-9 /* objectives and bounds closer than this are equal (values are fractions) */

/* ---- the rule ------------------------------------------------------------------------------- */
static const char *skip_ws(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    return s;
}

/* a word of letters at s equal to w (case-insensitive), followed by a non-letter */
static int word_is(const char *s, const char *w) {
    size_t n = strlen(w);
    if (strncasecmp(s, w, n) != 0) return 0;
    return !isalpha((unsigned char)s[n]) && s[n] != '_';
}

/* a metric name: up to whitespace, a comparison, a comma or the end */
static const char *read_metric(const char *s, char *out, size_t cap) {
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n]) && !strchr("<>=,", s[n])) n++;
    if (n == 0 || n >= cap) return NULL;
    memcpy(out, s, n);
    out[n] = 0;
    return s + n;
}

static const char *read_number(const char *s, double *out) {
    char *end = NULL;
    if (!(*s == '-' || *s == '+' || *s == '.' || isdigit((unsigned char)*s))) return NULL;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v)) return NULL;
    *out = v;
    return end;
}

int uf_tune_rule_parse(const char *text, struct uf_tune_rule *r) {
    memset(r, 0, sizeof *r);
    const char *s = skip_ws(text), *e, *want = "'min' or 'max'";
    if (word_is(s, "min")) r->maximize = 0;
    else if (word_is(s, "max")) r->maximize = 1;
    else goto bad;
    s = skip_ws(s + 3);
    want = "a metric name (e.g. harmful_rate)";
    if (!(e = read_metric(s, r->metric, sizeof r->metric))) goto bad;
    s = skip_ws(e);
    if (!*s) return 0;
    want = "'where' and conditions (or the end)";
    if (word_is(s, "where")) s += 5;
    else if (word_is(s, "if")) s += 2;
    else goto bad;
    for (;;) {
        s = skip_ws(s);
        if (r->n_conds == UF_TUNE_MAX_CONDS)
            return uf_fail("rule \"%s\": at most %d conditions", text, UF_TUNE_MAX_CONDS);
        struct uf_tune_cond *c = &r->conds[r->n_conds];
        want = "a metric name (e.g. utility)";
        if (!(e = read_metric(s, c->metric, sizeof c->metric))) goto bad;
        s = skip_ws(e);
        want = "'>=' or '<='";
        if (s[0] == '>' && s[1] == '=') c->at_most = 0;
        else if (s[0] == '<' && s[1] == '=') c->at_most = 1;
        else goto bad;
        s = skip_ws(s + 2);
        want = "a bound: a number (percent) or ref, ref - N, ref + N";
        if (strncasecmp(s, "ref", 3) == 0 && !isalnum((unsigned char)s[3]) && s[3] != '_') {
            c->vs_ref = 1;
            s = skip_ws(s + 3);
            if (*s == '+' || *s == '-') {
                int neg = *s == '-';
                double v;
                s = skip_ws(s + 1);
                if (!(*s == '.' || isdigit((unsigned char)*s)) || !(e = read_number(s, &v))) goto bad;
                s = e;
                c->offset = (neg ? -v : v) / 100.0;
            }
        } else {
            double v;
            if (!(e = read_number(s, &v))) goto bad;
            s = e;
            c->offset = v / 100.0;
        }
        r->n_conds++;
        s = skip_ws(s);
        if (!*s) return 0;
        want = "'and', ',' or the end";
        if (*s == ',') s++;
        else if (word_is(s, "and")) s += 3;
        else goto bad;
    }
bad:
    return uf_fail("rule \"%s\": expected %s at \"%s\" (syntax: min|max METRIC [where METRIC >=|<= "
                   "ref[ +|- N] | N [and ...]], numbers in percent)",
                   text, want, *s ? s : "the end");
}

/* a percent with the fewest digits that read back as the same number */
static void fmt_pct(char *buf, size_t cap, double frac) {
    double v = frac * 100.0;
    for (int prec = 0; prec <= 12; prec++) {
        snprintf(buf, cap, "%.*f", prec, v);
        if (fabs(strtod(buf, NULL) - v) <= 1e-9 * (fabs(v) > 1 ? fabs(v) : 1)) return;
    }
}

void uf_tune_rule_format(const struct uf_tune_rule *r, char *buf, size_t cap) {
    size_t l = (size_t)snprintf(buf, cap, "%s %s", r->maximize ? "max" : "min", r->metric);
    for (int i = 0; i < r->n_conds && l < cap; i++) {
        const struct uf_tune_cond *c = &r->conds[i];
        char num[48];
        fmt_pct(num, sizeof num, fabs(c->offset));
        l += (size_t)snprintf(buf + l, cap - l, "%s %s %s ", i ? " and" : " where", c->metric, c->at_most ? "<=" : ">=");
        if (l >= cap) break;
        if (!c->vs_ref) {
            fmt_pct(num, sizeof num, c->offset);
            l += (size_t)snprintf(buf + l, cap - l, "%s", num);
        } else if (c->offset == 0) {
            l += (size_t)snprintf(buf + l, cap - l, "ref");
        } else {
            l += (size_t)snprintf(buf + l, cap - l, "ref %c %s", c->offset < 0 ? '-' : '+', num);
        }
    }
}

int uf_tune_rule_uses_ref(const struct uf_tune_rule *r) {
    for (int i = 0; i < r->n_conds; i++)
        if (r->conds[i].vs_ref) return 1;
    return 0;
}

/* ---- metrics of a run -------------------------------------------------------------------------- */
double uf_tune_metrics_get(const struct uf_tune_metrics *m, const char *name, const char *utility) {
    if (utility && strcmp(name, "utility") == 0) {
        double v = uf_tune_metrics_get(m, utility, NULL);
        if (!isnan(v)) return v;
    }
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0) return m->values[i];
    return NAN;
}

void uf_tune_metrics_free(struct uf_tune_metrics *m) {
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->values);
    memset(m, 0, sizeof *m);
}

/* adds name[0, len) = v unless present: the first evaluation's value wins (its name is the plain one) */
static void metrics_put(struct uf_tune_metrics *m, const char *name, size_t len, double v) {
    for (int i = 0; i < m->n; i++)
        if (strlen(m->names[i]) == len && strncmp(m->names[i], name, len) == 0) return;
    m->names = uf_realloc(m->names, (size_t)(m->n + 1) * sizeof *m->names);
    m->values = uf_realloc(m->values, (size_t)(m->n + 1) * sizeof *m->values);
    m->names[m->n] = uf_strndup(name, len);
    m->values[m->n++] = v;
}

int uf_tune_split_metrics(const struct uf_results *r, int n_test, int n_val, struct uf_tune_metrics *test,
                          struct uf_tune_metrics *val) {
    memset(test, 0, sizeof *test);
    memset(val, 0, sizeof *val);
    cJSON *evals = r->evals && r->evals[0] ? cJSON_Parse(r->evals) : NULL;
    int ne = cJSON_IsArray(evals) ? cJSON_GetArraySize(evals) : 0;
    if (ne != n_test + n_val) {
        cJSON_Delete(evals);
        return uf_fail("run %s: results.json lists %d evaluations; the study has %d (%d test, then %d validation): "
                       "made by another recipe? remove the run folder to redo it",
                       r->run, ne, n_test + n_val, n_test, n_val);
    }
    unsigned char *in_eval = uf_calloc((size_t)r->n_metrics + 1, 1);
    int rc = 0;
    for (int i = 0; i < ne && rc == 0; i++) {
        const cJSON *e = cJSON_GetArrayItem(evals, i);
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(e, "metrics"), *x;
        const char *dn = cJSON_IsString(data) ? data->valuestring : "";
        cJSON_ArrayForEach(x, names) {
            if (!cJSON_IsString(x)) continue;
            const char *nm = x->valuestring;
            const struct uf_result_metric *m = uf_results_metric(r, nm);
            if (!m) {
                rc = uf_fail("run %s: evaluation %d lists metric %s, which results.json lacks", r->run, i + 1, nm);
                break;
            }
            in_eval[m - r->metrics] = 1;
            size_t len = strlen(nm), dl = strlen(dn);
            if (dl && len > dl + 1 && nm[len - dl - 1] == ':' && strcmp(nm + len - dl, dn) == 0) len -= dl + 1;
            metrics_put(i < n_test ? test : val, nm, len, m->value);
        }
    }
    for (int i = 0; i < r->n_metrics && rc == 0; i++) {
        if (in_eval[i]) continue;
        size_t len = strlen(r->metrics[i].name);
        metrics_put(test, r->metrics[i].name, len, r->metrics[i].value);
        metrics_put(val, r->metrics[i].name, len, r->metrics[i].value);
    }
    free(in_eval);
    cJSON_Delete(evals);
    if (rc) {
        uf_tune_metrics_free(test);
        uf_tune_metrics_free(val);
    }
    return rc;
}

/* ---- the choice ------------------------------------------------------------------------------------ */
double uf_tune_bound(const struct uf_tune_rule *r, int i, double ref_value) {
    const struct uf_tune_cond *c = &r->conds[i];
    return c->vs_ref ? ref_value + c->offset : c->offset;
}

/* -1, 0, 1: a's knobs before, equal to, after b's */
static int knob_cmp(const struct uf_tune_cand *a, const struct uf_tune_cand *b) {
    int n = a->n_knobs < b->n_knobs ? a->n_knobs : b->n_knobs;
    for (int k = 0; k < n; k++)
        if (a->knobs[k] != b->knobs[k]) return a->knobs[k] < b->knobs[k] ? -1 : 1;
    return 0;
}

/* 1 when a is better than b under the rule */
static int better(const struct uf_tune_rule *r, const struct uf_tune_cand *a, const struct uf_tune_cand *b,
                  int by_shortfall) {
    if (by_shortfall && fabs(a->shortfall - b->shortfall) > TIE) return a->shortfall < b->shortfall;
    if (fabs(a->objective - b->objective) > TIE) return r->maximize ? a->objective > b->objective
                                                                    : a->objective < b->objective;
    return knob_cmp(a, b) < 0;
}

int uf_tune_select(const struct uf_tune_rule *r, const double *ref, struct uf_tune_cand *cands, int n) {
    if (n < 1) return uf_fail("tune: no setting to choose from");
    int any = 0;
    for (int i = 0; i < n; i++) {
        struct uf_tune_cand *c = &cands[i];
        if (isnan(c->objective)) return uf_fail("tune: setting %d has no validation value of %s", i + 1, r->metric);
        c->meets = 1;
        c->shortfall = 0;
        for (int j = 0; j < r->n_conds; j++) {
            double b = uf_tune_bound(r, j, ref ? ref[j] : NAN);
            if (isnan(b)) return uf_fail("tune: the reference has no validation value of %s", r->conds[j].metric);
            if (isnan(c->cond[j]))
                return uf_fail("tune: setting %d has no validation value of %s", i + 1, r->conds[j].metric);
            double miss = r->conds[j].at_most ? c->cond[j] - b : b - c->cond[j];
            if (miss > TIE) {
                c->meets = 0;
                c->shortfall += miss;
            }
        }
        any |= c->meets;
    }
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (any && !cands[i].meets) continue;
        if (best < 0 || better(r, &cands[i], &cands[best], !any)) best = i;
    }
    return best;
}
