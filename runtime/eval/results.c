/* results.c: see results.h (results.json and metrics.jsonl: parse, write, free). */
#include "eval/results.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- results.json ------------------------------------------------------------------------------ */
int uf_results_lower_is_better(const char *name) {
    static const char *const lower[] = {"asr", "refusal", "harm", "unsafe", "loss", "perplexity",
                                        "compliance", "off_format", "task_label"};
    char low[256];
    size_t i = 0;
    for (; name[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = 0;
    for (size_t k = 0; k < UF_ARRAY_LEN(lower); k++)
        if (strstr(low, lower[k])) return 1;
    return 0;
}

void uf_results_free(struct uf_results *r) {
    free(r->run);
    free(r->method);
    free(r->model);
    free(r->task);
    for (int i = 0; i < r->n_metrics; i++) free(r->metrics[i].name);
    free(r->metrics);
    free(r->utility);
    free(r->decoding);
    free(r->judge);
    free(r->evals);
    memset(r, 0, sizeof *r);
}

static int get_string(const cJSON *obj, const char *key, const char *where, int required, char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        if (required) return uf_fail("%s: missing \"%s\" (a string)", where, key);
        *out = uf_strdup("");
        return 0;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return uf_fail("%s: \"%s\" must be a string", where, key);
    if (required && !it->valuestring[0]) return uf_fail("%s: \"%s\" is empty", where, key);
    *out = uf_strdup(it->valuestring);
    return 0;
}

static int get_number(const cJSON *obj, const char *key, const char *where, int required, double def,
                      double *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        if (required) return uf_fail("%s: missing \"%s\" (a number)", where, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return uf_fail("%s: \"%s\" must be a finite number", where, key);
    *out = it->valuedouble;
    return 0;
}

static int is_integral(double v, double lo, double hi) { return v >= lo && v <= hi && floor(v) == v; }

static int results_from_json(struct uf_results *r, const cJSON *root, const char *where) {
    char ctx[512];
    if (!cJSON_IsObject(root)) return uf_fail("%s: the top level must be a JSON object", where);
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    if (schema && !(cJSON_IsString(schema) && strcmp(schema->valuestring, UF_RESULTS_SCHEMA) == 0))
        return uf_fail("%s: \"schema\" must be \"%s\" (this unforget reads only that version)", where,
                       UF_RESULTS_SCHEMA);
    if (get_string(root, "run", where, 1, &r->run) || get_string(root, "method", where, 1, &r->method))
        return -1;
    const cJSON *set = cJSON_GetObjectItemCaseSensitive(root, "setting");
    if (!cJSON_IsObject(set))
        return uf_fail("%s: missing \"setting\" (an object with poison_ratio, seed, model, task)", where);
    snprintf(ctx, sizeof ctx, "%s: setting", where);
    double seed = 0;
    if (get_number(set, "poison_ratio", ctx, 1, 0, &r->poison_ratio) || get_number(set, "seed", ctx, 1, 0, &seed) ||
        get_string(set, "model", ctx, 1, &r->model) || get_string(set, "task", ctx, 1, &r->task))
        return -1;
    if (r->poison_ratio < 0 || r->poison_ratio > 1)
        return uf_fail("%s: poison_ratio = %g; must lie in [0, 1]", ctx, r->poison_ratio);
    if (!is_integral(seed, -9.0e15, 9.0e15)) return uf_fail("%s: seed = %g; must be an integer", ctx, seed);
    r->seed = (int64_t)seed;

    const cJSON *mets = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (!cJSON_IsObject(mets) || !mets->child)
        return uf_fail("%s: missing \"metrics\" (an object of {\"value\", \"lo\", \"hi\", \"n\"} by name)", where);
    int count = cJSON_GetArraySize(mets);
    r->metrics = uf_calloc((size_t)count, sizeof *r->metrics);
    const cJSON *m;
    cJSON_ArrayForEach(m, mets) {
        const char *name = m->string ? m->string : "";
        snprintf(ctx, sizeof ctx, "%s: metrics.%.200s", where, name);
        if (!name[0]) return uf_fail("%s: a metric has an empty name", where);
        if (uf_results_metric(r, name)) return uf_fail("%s: metric \"%s\" appears twice", where, name);
        if (!cJSON_IsObject(m)) return uf_fail("%s: must be an object {\"value\": x, \"lo\", \"hi\", \"n\"}", ctx);
        struct uf_result_metric *o = &r->metrics[r->n_metrics];
        double n = 0;
        if (get_number(m, "value", ctx, 1, 0, &o->value)) return -1;
        if (get_number(m, "lo", ctx, 0, o->value, &o->lo) || get_number(m, "hi", ctx, 0, o->value, &o->hi) ||
            get_number(m, "n", ctx, 0, 0, &n))
            return -1;
        if (!is_integral(n, 0, 9.0e15)) return uf_fail("%s: n = %g; must be a non-negative integer", ctx, n);
        double n_acts = 0;
        if (get_number(m, "n_acts", ctx, 0, 0, &n_acts)) return -1;
        if (!is_integral(n_acts, 0, 9.0e15)) return uf_fail("%s: n_acts = %g; must be a non-negative integer", ctx, n_acts);
        o->n_acts = (int64_t)n_acts;
        if (get_number(m, "lo_acts", ctx, 0, NAN, &o->lo_acts) || get_number(m, "hi_acts", ctx, 0, NAN, &o->hi_acts))
            return -1;
        if (o->lo > o->value || o->hi < o->value)
            return uf_fail("%s: the interval [%g, %g] does not contain the value %g", ctx, o->lo, o->hi, o->value);
        o->n = (int64_t)n;
        o->lower_is_better = uf_results_lower_is_better(name);
        const cJSON *better = cJSON_GetObjectItemCaseSensitive(m, "better");
        if (better) {
            if (cJSON_IsString(better) && strcmp(better->valuestring, "lower") == 0) o->lower_is_better = 1;
            else if (cJSON_IsString(better) && strcmp(better->valuestring, "higher") == 0) o->lower_is_better = 0;
            else return uf_fail("%s: \"better\" must be \"lower\" or \"higher\"", ctx);
        }
        o->name = uf_strdup(name);
        r->n_metrics++;
    }

    const cJSON *util = cJSON_GetObjectItemCaseSensitive(root, "utility");
    if (util && !cJSON_IsNull(util)) {
        if (!cJSON_IsString(util)) return uf_fail("%s: \"utility\" must be a string naming a metric", where);
        if (!uf_results_metric(r, util->valuestring))
            return uf_fail("%s: \"utility\" names \"%s\", which is not in \"metrics\"", where, util->valuestring);
        r->utility = uf_strdup(util->valuestring);
    } else {
        static const char *const known[] = {"accuracy", "exact_match", "pass@1", "utility"};
        for (size_t k = 0; k < UF_ARRAY_LEN(known) && !r->utility; k++)
            if (uf_results_metric(r, known[k])) r->utility = uf_strdup(known[k]);
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoding");
    if (dec && !cJSON_IsNull(dec)) {
        if (!cJSON_IsObject(dec)) return uf_fail("%s: \"decoding\" must be an object", where);
        char *s = cJSON_PrintUnformatted(dec);
        if (!s) uf_fatal(1, "%s: out of memory printing \"decoding\"", where);
        r->decoding = uf_strdup(s);
        cJSON_free(s);
    } else {
        r->decoding = uf_strdup("");
    }
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "evals");
    if (ev && !cJSON_IsNull(ev)) {
        if (!cJSON_IsArray(ev)) return uf_fail("%s: \"evals\" must be an array", where);
        char *s = cJSON_PrintUnformatted(ev);
        if (!s) uf_fatal(1, "%s: out of memory printing \"evals\"", where);
        r->evals = uf_strdup(s);
        cJSON_free(s);
    } else {
        r->evals = uf_strdup("");
    }
    return get_string(root, "judge", where, 0, &r->judge);
}

int uf_results_parse(struct uf_results *r, const char *text, size_t len, const char *where) {
    memset(r, 0, sizeof *r);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long off = e && e >= text && e <= text + len ? (long)(e - text) : -1;
        return uf_fail("%s: not valid JSON (near byte %ld)", where, off);
    }
    int rc = results_from_json(r, root, where);
    cJSON_Delete(root);
    if (rc) uf_results_free(r);
    return rc;
}

int uf_results_read(struct uf_results *r, const char *path) {
    memset(r, 0, sizeof *r);
    size_t size;
    char *text = uf_file_read(path, &size);
    if (!text) return -1;
    int rc = uf_results_parse(r, text, size, path);
    free(text);
    return rc;
}

void uf_results_set_metric(struct uf_results *r, const char *name, double value, double lo, double hi, int64_t n) {
    uf_results_set_metric_n(r, name, value, lo, hi, n, 0, NAN, NAN);
}

void uf_results_add_eval(struct uf_results *r, cJSON *e) {
    cJSON *arr = r->evals && r->evals[0] ? cJSON_Parse(r->evals) : NULL;
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        arr = cJSON_CreateArray();
    }
    cJSON *dec = r->decoding && r->decoding[0] ? cJSON_Parse(r->decoding) : NULL;
    if (!cJSON_IsObject(dec)) {
        cJSON_Delete(dec);
        dec = cJSON_CreateObject();
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "decoding");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "eval"), *da = cJSON_GetObjectItemCaseSensitive(e, "data");
    if (d) {
        char key[256];
        snprintf(key, sizeof key, "%s:%s", cJSON_IsString(ev) ? ev->valuestring : "?",
                 cJSON_IsString(da) ? da->valuestring : "?");
        cJSON_DeleteItemFromObjectCaseSensitive(dec, key);
        cJSON_AddItemToObject(dec, key, cJSON_Duplicate(d, 1));
    }
    cJSON_AddItemToArray(arr, e);
    char *s = cJSON_PrintUnformatted(arr), *t = cJSON_PrintUnformatted(dec);
    if (!s || !t) uf_fatal(1, "out of memory printing results");
    free(r->evals);
    free(r->decoding);
    r->evals = uf_strdup(s);
    r->decoding = uf_strdup(t);
    cJSON_free(s);
    cJSON_free(t);
    cJSON_Delete(arr);
    cJSON_Delete(dec);
}

void uf_results_set_metric_n(struct uf_results *r, const char *name, double value, double lo, double hi,
                             int64_t n, int64_t n_acts, double lo_acts, double hi_acts) {
    struct uf_result_metric *m = (struct uf_result_metric *)uf_results_metric(r, name);
    if (!m) {
        r->metrics = uf_realloc(r->metrics, (size_t)(r->n_metrics + 1) * sizeof *r->metrics);
        m = &r->metrics[r->n_metrics++];
        m->name = uf_strdup(name);
    }
    m->value = value;
    m->lo = lo;
    m->hi = hi;
    m->n = n;
    m->n_acts = n_acts;
    m->lo_acts = lo_acts;
    m->hi_acts = hi_acts;
    m->lower_is_better = uf_results_lower_is_better(name);
}

void uf_results_set_better(struct uf_results *r, const char *name, int lower_is_better) {
    for (int i = 0; i < r->n_metrics; i++)
        if (r->metrics[i].name && strcmp(r->metrics[i].name, name) == 0) r->metrics[i].lower_is_better = lower_is_better;
}

const struct uf_result_metric *uf_results_metric(const struct uf_results *r, const char *name) {
    for (int i = 0; i < r->n_metrics; i++)
        if (r->metrics[i].name && strcmp(r->metrics[i].name, name) == 0) return &r->metrics[i];
    return NULL;
}

int uf_results_write(const struct uf_results *r, const char *path) {
    cJSON *root = cJSON_CreateObject(), *set = cJSON_CreateObject(), *mets = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", UF_RESULTS_SCHEMA);
    cJSON_AddStringToObject(root, "run", r->run ? r->run : "");
    cJSON_AddStringToObject(root, "method", r->method ? r->method : "");
    cJSON_AddNumberToObject(set, "poison_ratio", r->poison_ratio);
    cJSON_AddNumberToObject(set, "seed", (double)r->seed);
    cJSON_AddStringToObject(set, "model", r->model ? r->model : "");
    cJSON_AddStringToObject(set, "task", r->task ? r->task : "");
    cJSON_AddItemToObject(root, "setting", set);
    for (int i = 0; i < r->n_metrics; i++) {
        const struct uf_result_metric *m = &r->metrics[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "value", m->value);
        cJSON_AddNumberToObject(o, "lo", m->lo);
        cJSON_AddNumberToObject(o, "hi", m->hi);
        cJSON_AddNumberToObject(o, "n", (double)m->n);
        if (m->n_acts > 0) cJSON_AddNumberToObject(o, "n_acts", (double)m->n_acts);
        if (isfinite(m->lo_acts) && isfinite(m->hi_acts)) {
            cJSON_AddNumberToObject(o, "lo_acts", m->lo_acts);
            cJSON_AddNumberToObject(o, "hi_acts", m->hi_acts);
        }
        if (m->lower_is_better != uf_results_lower_is_better(m->name))
            cJSON_AddStringToObject(o, "better", m->lower_is_better ? "lower" : "higher");
        cJSON_AddItemToObject(mets, m->name, o);
    }
    cJSON_AddItemToObject(root, "metrics", mets);
    if (r->utility) cJSON_AddStringToObject(root, "utility", r->utility);
    if (r->decoding && r->decoding[0]) {
        cJSON *d = cJSON_Parse(r->decoding);
        if (!d || !cJSON_IsObject(d)) {
            cJSON_Delete(d);
            cJSON_Delete(root);
            return uf_fail("%s: decoding \"%s\" is not a JSON object", path, r->decoding);
        }
        cJSON_AddItemToObject(root, "decoding", d);
    }
    if (r->judge && r->judge[0]) cJSON_AddStringToObject(root, "judge", r->judge);
    if (r->evals && r->evals[0]) {
        cJSON *e = cJSON_Parse(r->evals);
        if (!e || !cJSON_IsArray(e)) {
            cJSON_Delete(e);
            cJSON_Delete(root);
            return uf_fail("%s: evals is not a JSON array", path);
        }
        cJSON_AddItemToObject(root, "evals", e);
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) uf_fatal(1, "%s: out of memory printing results", path);
    int rc = uf_file_write_atomic(path, s, strlen(s));
    cJSON_free(s);
    return rc;
}

/* ---- metrics.jsonl ------------------------------------------------------------------------------ */
void uf_metrics_log_free(struct uf_metrics_log *m) {
    for (int i = 0; i < m->n_terms; i++) free(m->terms[i]);
    free(m->terms);
    free(m->step);
    free(m->loss);
    free(m->lr);
    free(m->grad_norm);
    free(m->tokens_per_s);
    memset(m, 0, sizeof *m);
}

struct loss_entry {
    int64_t row;
    int term;
    double v;
};

static int term_index(struct uf_metrics_log *m, const char *name) {
    for (int i = 0; i < m->n_terms; i++)
        if (strcmp(m->terms[i], name) == 0) return i;
    m->terms = uf_realloc(m->terms, (size_t)(m->n_terms + 1) * sizeof *m->terms);
    m->terms[m->n_terms] = uf_strdup(name);
    return m->n_terms++;
}

/* Members of a metrics line that are not loss terms. */
static int is_log_field(const char *k) {
    static const char *const fields[] = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "epoch", "clip_share"};
    for (size_t i = 0; i < UF_ARRAY_LEN(fields); i++)
        if (strcmp(k, fields[i]) == 0) return 1;
    return 0;
}

static double opt_number(const cJSON *o, const char *key, int *bad) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!it || cJSON_IsNull(it)) return NAN;
    if (!cJSON_IsNumber(it)) {
        *bad = 1;
        return NAN;
    }
    return it->valuedouble;
}

int uf_metrics_log_parse(struct uf_metrics_log *m, const char *text, size_t len, const char *where) {
    memset(m, 0, sizeof *m);
    struct loss_entry *ents = NULL;
    size_t n_ents = 0, cap_ents = 0;
    int64_t cap = 0;
    int rc = 0;
    size_t pos = 0;
    for (int64_t line = 1; pos < len; line++) {
        size_t e = pos;
        while (e < len && text[e] != '\n') e++;
        int terminated = e < len;
        size_t b = pos, t = e;
        pos = terminated ? e + 1 : e;
        while (b < t && isspace((unsigned char)text[b])) b++;
        while (t > b && isspace((unsigned char)text[t - 1])) t--;
        if (b == t) continue;
        cJSON *o = cJSON_ParseWithLength(text + b, t - b);
        int bad = 0;
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (!terminated) {
                uf_log(1, "%s:%lld: skipping an unfinished last line (a run still writing?)\n", where,
                       (long long)line);
                break;
            }
            rc = uf_fail("%s:%lld: not a JSON object; each line must be {\"step\": N, \"loss\": {...}, ...}",
                         where, (long long)line);
            goto fail;
        }
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (!cJSON_IsNumber(st) || !is_integral(st->valuedouble, 0, 9.0e15)) {
            cJSON_Delete(o);
            rc = uf_fail("%s:%lld: \"step\" must be a non-negative integer", where, (long long)line);
            goto fail;
        }
        if (m->n == cap) {
            cap = cap ? cap * 2 : 64;
            m->step = uf_realloc(m->step, (size_t)cap * sizeof *m->step);
            m->lr = uf_realloc(m->lr, (size_t)cap * sizeof *m->lr);
            m->grad_norm = uf_realloc(m->grad_norm, (size_t)cap * sizeof *m->grad_norm);
            m->tokens_per_s = uf_realloc(m->tokens_per_s, (size_t)cap * sizeof *m->tokens_per_s);
        }
        int64_t row = m->n;
        m->step[row] = st->valuedouble;
        m->lr[row] = opt_number(o, "lr", &bad);
        m->grad_norm[row] = opt_number(o, "grad_norm", &bad);
        m->tokens_per_s[row] = opt_number(o, "tokens_per_s", &bad);
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(o, "loss");
        const cJSON *it;
        if (cJSON_IsNumber(loss) || !loss || cJSON_IsNull(loss)) {
            /* flat form (runtime/train/train.c): "loss" is the total, other numeric members are terms */
            if (cJSON_IsNumber(loss)) {
                if (n_ents == cap_ents) ents = uf_realloc(ents, (cap_ents = cap_ents ? cap_ents * 2 : 256) * sizeof *ents);
                ents[n_ents++] = (struct loss_entry){row, term_index(m, "total"), loss->valuedouble};
            }
            cJSON_ArrayForEach(it, o) {
                if (!cJSON_IsNumber(it) || !it->string || !it->string[0] || is_log_field(it->string)) continue;
                if (n_ents == cap_ents) ents = uf_realloc(ents, (cap_ents = cap_ents ? cap_ents * 2 : 256) * sizeof *ents);
                ents[n_ents++] = (struct loss_entry){row, term_index(m, it->string), it->valuedouble};
            }
        } else if (cJSON_IsObject(loss)) {
            cJSON_ArrayForEach(it, loss) {
                if (cJSON_IsNull(it)) continue;
                if (!cJSON_IsNumber(it) || !it->string || !it->string[0]) {
                    bad = 1;
                    break;
                }
                if (n_ents == cap_ents) ents = uf_realloc(ents, (cap_ents = cap_ents ? cap_ents * 2 : 256) * sizeof *ents);
                ents[n_ents++] = (struct loss_entry){row, term_index(m, it->string), it->valuedouble};
            }
        } else if (loss && !cJSON_IsNull(loss)) {
            bad = 1;
        }
        cJSON_Delete(o);
        if (bad) {
            rc = uf_fail("%s:%lld: \"loss\" must be a number or an object of numbers, and lr, grad_norm, "
                         "tokens_per_s numbers", where, (long long)line);
            goto fail;
        }
        m->n++;
    }
    if (m->n_terms > 0 && m->n > 0) {
        size_t cells = (size_t)m->n * (size_t)m->n_terms;
        m->loss = uf_malloc(cells * sizeof *m->loss);
        for (size_t i = 0; i < cells; i++) m->loss[i] = NAN;
        for (size_t i = 0; i < n_ents; i++) m->loss[(size_t)ents[i].row * (size_t)m->n_terms + (size_t)ents[i].term] = ents[i].v;
    }
    free(ents);
    return 0;
fail:
    free(ents);
    uf_metrics_log_free(m);
    return rc;
}

int uf_metrics_log_read(struct uf_metrics_log *m, const char *path) {
    memset(m, 0, sizeof *m);
    size_t size;
    char *text = uf_file_read(path, &size);
    if (!text) return -1;
    int rc = uf_metrics_log_parse(m, text, size, path);
    free(text);
    return rc;
}
