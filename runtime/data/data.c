/* data.c: see data.h. Sections: dataset, byte source (file | memory, optional zstd), rows and
 * field mapping, JSONL, JSON array, CSV/TSV, writer, adapters. */
#include "data/data.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <zstd.h>

#include "core/util.h"

// ----------------------------------------------------------------------------
// dataset

static const char *const kind_names[] = {"task", "benign", "harmful", "text"};

const char *uf_example_kind_name(enum uf_example_kind k) {
    return (unsigned)k < UF_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

int uf_example_kind_parse(const char *s, enum uf_example_kind *out) {
    for (size_t i = 0; i < UF_ARRAY_LEN(kind_names); i++)
        if (strcmp(s, kind_names[i]) == 0) { *out = (enum uf_example_kind)i; return 0; }
    return -1;
}

const char *uf_example_field(const struct uf_example *ex, const char *key) {
    for (int i = 0; i < ex->n_fields; i++)
        if (strcmp(ex->fields[i].key, key) == 0) return ex->fields[i].value;
    return NULL;
}

void uf_example_set_field(struct uf_example *ex, const char *key, const char *value) {
    for (int i = 0; i < ex->n_fields; i++)
        if (strcmp(ex->fields[i].key, key) == 0) {
            free(ex->fields[i].value);
            ex->fields[i].value = uf_strdup(value);
            return;
        }
    ex->fields = uf_realloc(ex->fields, (size_t)(ex->n_fields + 1) * sizeof *ex->fields);
    ex->fields[ex->n_fields].key = uf_strdup(key);
    ex->fields[ex->n_fields].value = uf_strdup(value);
    ex->n_fields++;
}

static void example_free(struct uf_example *ex) {
    free(ex->prompt);
    free(ex->response);
    free(ex->label);
    free(ex->source);
    free(ex->category);
    for (int i = 0; i < ex->n_fields; i++) {
        free(ex->fields[i].key);
        free(ex->fields[i].value);
    }
    free(ex->fields);
    memset(ex, 0, sizeof *ex);
}

void uf_dataset_init(struct uf_dataset *d, const char *name) {
    memset(d, 0, sizeof *d);
    d->name = uf_strdup(name ? name : "");
}

void uf_dataset_free(struct uf_dataset *d) {
    for (int64_t i = 0; i < d->n; i++) example_free(&d->rows[i]);
    free(d->rows);
    free(d->name);
    memset(d, 0, sizeof *d);
}

static struct uf_example *dataset_new_row(struct uf_dataset *d) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->rows = uf_realloc(d->rows, (size_t)d->cap * sizeof *d->rows);
    }
    struct uf_example *ex = &d->rows[d->n++];
    memset(ex, 0, sizeof *ex);
    return ex;
}

struct uf_example *uf_dataset_add(struct uf_dataset *d, const struct uf_example *src) {
    struct uf_example *ex = dataset_new_row(d);
    ex->prompt = uf_strdup(src->prompt ? src->prompt : "");
    ex->response = uf_strdup(src->response ? src->response : "");
    ex->label = src->label ? uf_strdup(src->label) : NULL;
    ex->source = uf_strdup(src->source ? src->source : "unknown");
    ex->category = src->category ? uf_strdup(src->category) : NULL;
    ex->kind = src->kind;
    for (int i = 0; i < src->n_fields; i++) uf_example_set_field(ex, src->fields[i].key, src->fields[i].value);
    return ex;
}

struct uf_example *uf_dataset_push(struct uf_dataset *d, const char *prompt, const char *response,
                                   const char *label, const char *source, const char *category,
                                   enum uf_example_kind kind) {
    struct uf_example ex = {(char *)prompt, (char *)response, (char *)label, (char *)source,
                            (char *)category, kind, 0, NULL};
    return uf_dataset_add(d, &ex);
}

void uf_dataset_append(struct uf_dataset *dst, const struct uf_dataset *src) {
    for (int64_t i = 0; i < src->n; i++) uf_dataset_add(dst, &src->rows[i]);
}

// ----------------------------------------------------------------------------
// UTF-8 and small string helpers

int uf_utf8_valid(const char *str, size_t n, size_t *bad_at) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else goto bad;
        if (i + len > n) goto bad;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += len;
        continue;
    bad:
        if (bad_at) *bad_at = i;
        return 0;
    }
    return 1;
}

static char *trim_dup(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    return uf_strndup(s, n);
}

char *uf_data_final_answer(const char *answer) {
    const char *p = NULL, *q = answer;
    while ((q = strstr(q, "####")) != NULL) { p = q; q += 4; }
    if (!p) return NULL;
    char *t = trim_dup(p + 4);
    size_t w = 0;
    for (size_t r = 0; t[r]; r++)
        if (t[r] != ',') t[w++] = t[r];
    t[w] = 0;
    if (!t[0]) { free(t); return NULL; }
    return t;
}

// ----------------------------------------------------------------------------
// byte source: a FILE or a memory buffer, optionally zstd-compressed

#define SRC_CHUNK (1u << 16)

struct src {
    const char *name;
    FILE *f;
    const unsigned char *mem;
    size_t mem_size, mem_pos;
    ZSTD_DStream *z;
    unsigned char *zin;
    ZSTD_inBuffer in;
    size_t zret;      /* last ZSTD_decompressStream result: 0 = at a frame boundary */
    int zpending;     /* the output buffer was filled: more output may be waiting */
    int64_t zraw;     /* compressed bytes read */
    unsigned char *buf;
    size_t len, pos;  /* decoded bytes buf[pos..len) not consumed yet */
    int eof;
};

static int src_open_file(struct src *s, const char *path, int zst) {
    memset(s, 0, sizeof *s);
    s->name = path;
    s->f = fopen(path, "rb");
    if (!s->f) return uf_fail("%s: cannot open: %s", path, strerror(errno));
    s->buf = uf_malloc(SRC_CHUNK);
    if (zst) {
        s->z = ZSTD_createDStream();
        if (!s->z) uf_fatal(1, "out of memory creating a zstd stream");
        ZSTD_initDStream(s->z);
        s->zin = uf_malloc(SRC_CHUNK);
    }
    return 0;
}

static void src_open_mem(struct src *s, const void *data, size_t size, const char *name, int zst) {
    memset(s, 0, sizeof *s);
    s->name = name;
    s->mem = data;
    s->mem_size = size;
    s->buf = uf_malloc(SRC_CHUNK);
    if (zst) {
        s->z = ZSTD_createDStream();
        if (!s->z) uf_fatal(1, "out of memory creating a zstd stream");
        ZSTD_initDStream(s->z);
        s->zin = uf_malloc(SRC_CHUNK);
    }
}

static void src_close(struct src *s) {
    if (s->f) fclose(s->f);
    if (s->z) ZSTD_freeDStream(s->z);
    free(s->zin);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

/* Raw (possibly compressed) bytes: count, 0 at end, -1 on a read error. */
static long src_raw(struct src *s, unsigned char *dst, size_t cap) {
    if (s->f) {
        size_t n = fread(dst, 1, cap, s->f);
        if (n == 0 && ferror(s->f)) return uf_fail("%s: read error: %s", s->name, strerror(errno));
        return (long)n;
    }
    size_t n = UF_MIN(cap, s->mem_size - s->mem_pos);
    if (n) memcpy(dst, s->mem + s->mem_pos, n);
    s->mem_pos += n;
    return (long)n;
}

/* Refills buf: 1 bytes available, 0 end of data, -1 error. */
static int src_fill(struct src *s) {
    if (s->pos < s->len) return 1;
    if (s->eof) return 0;
    s->pos = s->len = 0;
    if (!s->z) {
        long n = src_raw(s, s->buf, SRC_CHUNK);
        if (n < 0) return -1;
        if (n == 0) { s->eof = 1; return 0; }
        s->len = (size_t)n;
        return 1;
    }
    for (;;) {
        if (s->in.pos < s->in.size || s->zpending) {
            ZSTD_outBuffer out = {s->buf, SRC_CHUNK, 0};
            size_t ret = ZSTD_decompressStream(s->z, &out, &s->in);
            if (ZSTD_isError(ret))
                return uf_fail("%s: corrupt zstd data after %lld compressed bytes: %s", s->name,
                               (long long)s->zraw, ZSTD_getErrorName(ret));
            s->zret = ret;
            s->zpending = out.pos == out.size;
            if (out.pos > 0) { s->len = out.pos; return 1; }
            if (s->in.pos < s->in.size) continue;
        }
        long n = src_raw(s, s->zin, SRC_CHUNK);
        if (n < 0) return -1;
        if (n == 0) {
            s->eof = 1;
            if (s->zraw == 0) return uf_fail("%s: empty file, expected a zstd stream", s->name);
            if (s->zret != 0)
                return uf_fail("%s: truncated zstd stream (ends inside a frame after %lld bytes); "
                               "re-create or re-download the file", s->name, (long long)s->zraw);
            return 0;
        }
        s->zraw += n;
        s->in.src = s->zin;
        s->in.size = (size_t)n;
        s->in.pos = 0;
    }
}

/* One line without its '\n' (and a trailing '\r'), NUL-terminated in *line. Lines longer than
 * max are consumed but truncated and flagged (*too_long = 1). 1 line, 0 end, -1 error. */
static int src_line(struct src *s, char **line, size_t *len, size_t *cap, size_t max, int *too_long) {
    *len = 0;
    *too_long = 0;
    int any = 0;
    for (;;) {
        int r = src_fill(s);
        if (r < 0) return -1;
        if (r == 0) break;
        any = 1;
        unsigned char *start = s->buf + s->pos;
        size_t avail = s->len - s->pos;
        unsigned char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        size_t keep = *too_long ? 0 : take;
        if (*len + keep > max) { *too_long = 1; keep = 0; }
        if (keep) {
            if (*len + keep + 1 > *cap) {
                *cap = UF_MAX(*cap * 2, *len + keep + 1);
                *line = uf_realloc(*line, *cap);
            }
            memcpy(*line + *len, start, keep);
            *len += keep;
        }
        s->pos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    if (!any) return 0;
    if (*cap == 0) { *cap = 64; *line = uf_realloc(*line, *cap); }
    if (*len > 0 && (*line)[*len - 1] == '\r') (*len)--;
    (*line)[*len] = 0;
    return 1;
}

// ----------------------------------------------------------------------------
// reading context and bad rows

struct reader {
    const char *name;
    const struct uf_data_opts *o;
    struct uf_dataset *out;
    struct uf_data_stats *st;
    size_t max_line;
};

/* A bad row: fail, or count and go on (returns 0). */
static int bad_row(struct reader *r, const char *where, int64_t line, const char *why) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s:%s%lld: %s", r->name, where, (long long)line, why);
    if (r->o->on_bad == UF_ON_BAD_FAIL) return uf_fail("%s", msg);
    r->st->skipped++;
    if (!r->st->first_bad[0]) snprintf(r->st->first_bad, sizeof r->st->first_bad, "%s", msg);
    uf_log(2, "skipping bad row: %s", msg);
    return 0;
}

static int done(const struct reader *r) {
    return r->o->max_rows > 0 && r->st->rows >= r->o->max_rows;
}

// ----------------------------------------------------------------------------
// a row (JSON object or CSV record) and the field mapping

enum vtype { V_MISSING = 0, V_STRING, V_NUMBER, V_BOOL, V_NULL, V_OTHER };
static const char *const vtype_names[] = {"missing", "a string", "a number", "a boolean", "null",
                                          "an object or array"};

struct row {
    const cJSON *obj;        /* JSON row, or */
    char **hdr, **val;       /* CSV row: (ncols) header names and values */
    int ncols;
    char num[64];            /* scratch for number/bool text */
};

/* Looks up a single key. */
static enum vtype row_get1(struct row *w, const char *key, size_t keylen, const char **val,
                           const cJSON **node) {
    *val = NULL;
    if (node) *node = NULL;
    if (w->obj) {
        const cJSON *it;
        cJSON_ArrayForEach(it, w->obj) {
            if (!it->string || strlen(it->string) != keylen || memcmp(it->string, key, keylen)) continue;
            if (node) *node = it;
            if (cJSON_IsString(it)) { *val = it->valuestring; return V_STRING; }
            if (cJSON_IsNumber(it)) {
                double x = it->valuedouble;
                if (x > -1e15 && x < 1e15 && x == (double)(long long)x) /* range first: no UB */
                    snprintf(w->num, sizeof w->num, "%lld", (long long)x);
                else
                    snprintf(w->num, sizeof w->num, "%.17g", x);
                *val = w->num;
                return V_NUMBER;
            }
            if (cJSON_IsBool(it)) { *val = cJSON_IsTrue(it) ? "true" : "false"; return V_BOOL; }
            if (cJSON_IsNull(it)) return V_NULL;
            return V_OTHER;
        }
        return V_MISSING;
    }
    for (int i = 0; i < w->ncols; i++)
        if (strlen(w->hdr[i]) == keylen && memcmp(w->hdr[i], key, keylen) == 0) {
            *val = w->val[i];
            return V_STRING;
        }
    return V_MISSING;
}

/* Looks up "a|b|c": the first alternative present; *used, *used_len (if used is not NULL) name
 * that alternative inside alts. */
static enum vtype row_get(struct row *w, const char *alts, const char **val, const char **used,
                          size_t *used_len, const cJSON **node) {
    const char *p = alts;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        enum vtype t = row_get1(w, p, n, val, node);
        if (t != V_MISSING) {
            if (used) { *used = p; *used_len = n; }
            return t;
        }
        if (!bar) return V_MISSING;
        p = bar + 1;
    }
}

static int key_in_alts(const char *alts, const char *key) {
    if (!alts) return 0;
    size_t kl = strlen(key);
    const char *p = alts;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == kl && memcmp(p, key, n) == 0) return 1;
        if (!bar) return 0;
        p = bar + 1;
    }
}

/* A required or optional string field. Returns 0 ok (*out malloc'd or NULL when absent and
 * optional), -1 bad row with why filled. accept_scalar: numbers/bools become text. */
static int get_text(struct row *w, const char *alts, int required, int accept_scalar, char **out,
                    char *why, size_t why_size) {
    *out = NULL;
    if (!alts || !alts[0]) return 0;
    const char *val, *used = alts;
    size_t used_len = strlen(alts);
    enum vtype t = row_get(w, alts, &val, &used, &used_len, NULL);
    if (t == V_STRING || (accept_scalar && (t == V_NUMBER || t == V_BOOL))) {
        *out = uf_strdup(val);
        return 0;
    }
    if (t == V_MISSING || t == V_NULL) {
        if (!required) return 0;
        snprintf(why, why_size, "missing field '%s'%s", alts,
                 t == V_NULL ? " (it is null)" : "");
        return -1;
    }
    snprintf(why, why_size, "field '%.*s' is %s, expected a string", (int)used_len, used,
             vtype_names[t]);
    return -1;
}

/* Chat messages: last user turn -> prompt, the assistant turn after it -> response. */
static int map_messages(struct row *w, const struct uf_data_opts *o, struct uf_example *ex,
                        char *why, size_t why_size) {
    const char *val;
    const cJSON *arr;
    const char *used = o->fields.messages;
    size_t used_len = strlen(used);
    enum vtype t = w->obj ? row_get(w, o->fields.messages, &val, &used, &used_len, &arr) : V_MISSING;
    if (t == V_MISSING) { snprintf(why, why_size, "missing field '%s'", o->fields.messages); return -1; }
    if (!cJSON_IsArray(arr)) {
        snprintf(why, why_size, "field '%.*s' must be an array of {role, content}", (int)used_len, used);
        return -1;
    }
    int n = cJSON_GetArraySize(arr), last_user = -1, i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, arr) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role) || !cJSON_IsString(content)) {
            snprintf(why, why_size, "message %d of '%.*s' needs string fields role and content", i,
                     (int)used_len, used);
            return -1;
        }
        if (strcmp(role->valuestring, "user") == 0) last_user = i;
        i++;
    }
    if (last_user < 0) { snprintf(why, why_size, "no user turn in '%.*s'", (int)used_len, used); return -1; }
    const cJSON *u = cJSON_GetArrayItem(arr, last_user);
    ex->prompt = uf_strdup(cJSON_GetObjectItemCaseSensitive(u, "content")->valuestring);
    for (i = last_user + 1; i < n; i++) {
        const cJSON *a = cJSON_GetArrayItem(arr, i);
        if (strcmp(cJSON_GetObjectItemCaseSensitive(a, "role")->valuestring, "assistant") == 0) {
            ex->response = uf_strdup(cJSON_GetObjectItemCaseSensitive(a, "content")->valuestring);
            break;
        }
    }
    if (!ex->response && !o->response_optional) {
        snprintf(why, why_size, "no assistant turn after the last user turn in '%.*s'", (int)used_len, used);
        return -1;
    }
    /* A conversation with a system message or earlier turns is kept whole (up to the response)
     * in the extra field "messages": training renders it and learns every assistant turn. */
    int end = ex->response ? i : n - 1; /* index of the response turn, or the last message */
    if (end >= 2 || (end >= 0 && last_user > 0)) {
        cJSON *conv = cJSON_CreateArray();
        for (int k = 0; k <= end && k < n; k++) {
            const cJSON *a = cJSON_GetArrayItem(arr, k);
            cJSON *mm = cJSON_CreateObject();
            cJSON_AddStringToObject(mm, "role", cJSON_GetObjectItemCaseSensitive(a, "role")->valuestring);
            cJSON_AddStringToObject(mm, "content", cJSON_GetObjectItemCaseSensitive(a, "content")->valuestring);
            cJSON_AddItemToArray(conv, mm);
        }
        char *js = cJSON_PrintUnformatted(conv);
        cJSON_Delete(conv);
        if (js) uf_example_set_field(ex, "messages", js);
        free(js);
    }
    return 0;
}

static int is_mapped_key(const struct uf_data_fields *f, const char *key) {
    return key_in_alts(f->prompt, key) || key_in_alts(f->input, key) || key_in_alts(f->response, key) ||
           key_in_alts(f->label, key) || key_in_alts(f->category, key) || key_in_alts(f->source, key) ||
           key_in_alts(f->kind, key) || key_in_alts(f->messages, key);
}

/* Maps a row into ex (zeroed by the caller). 0 ok, -1 bad row (why). */
static int map_row(struct row *w, const struct uf_data_opts *o, struct uf_example *ex, char *why,
                   size_t why_size) {
    const struct uf_data_fields *f = &o->fields;
    if (f->messages && f->messages[0]) {
        if (map_messages(w, o, ex, why, why_size)) return -1;
    } else {
        char *input = NULL;
        if (get_text(w, f->prompt, 1, 0, &ex->prompt, why, why_size)) return -1;
        if (get_text(w, f->input, 0, 0, &input, why, why_size)) return -1;
        if (input && input[0]) {
            char *p = uf_sprintf("%s\n\n%s", ex->prompt, input);
            free(ex->prompt);
            ex->prompt = p;
        }
        free(input);
        if (get_text(w, f->response, !o->response_optional, 0, &ex->response, why, why_size)) return -1;
    }
    if (!ex->response) ex->response = uf_strdup("");
    if (get_text(w, f->label, 0, 1, &ex->label, why, why_size)) return -1;
    if (get_text(w, f->category, 0, 1, &ex->category, why, why_size)) return -1;
    if (get_text(w, f->source, 0, 0, &ex->source, why, why_size)) return -1;
    if (!ex->source) ex->source = uf_strdup(o->source ? o->source : "data");
    ex->kind = o->kind;
    char *kind = NULL;
    if (get_text(w, f->kind, 0, 0, &kind, why, why_size)) return -1;
    if (kind && uf_example_kind_parse(kind, &ex->kind)) {
        snprintf(why, why_size, "unknown kind '%.40s' (expected task, benign, harmful or text)", kind);
        free(kind);
        return -1;
    }
    free(kind);
    for (int i = 0; i < UF_DATA_MAX_KEEP && f->keep[i]; i++) {
        const char *val;
        enum vtype t = row_get(w, f->keep[i], &val, NULL, NULL, NULL);
        if (t == V_STRING || t == V_NUMBER || t == V_BOOL) uf_example_set_field(ex, f->keep[i], val);
    }
    if (f->keep_all) {
        if (w->obj) {
            const cJSON *it;
            cJSON_ArrayForEach(it, w->obj) {
                if (!it->string || is_mapped_key(f, it->string) || uf_example_field(ex, it->string)) continue;
                const char *val;
                enum vtype t = row_get1(w, it->string, strlen(it->string), &val, NULL);
                if (t == V_STRING || t == V_NUMBER || t == V_BOOL) uf_example_set_field(ex, it->string, val);
            }
        } else {
            for (int i = 0; i < w->ncols; i++)
                if (!is_mapped_key(f, w->hdr[i]) && !uf_example_field(ex, w->hdr[i]))
                    uf_example_set_field(ex, w->hdr[i], w->val[i]);
        }
    }
    if (o->fixup && o->fixup(ex, why, why_size)) return -1;
    return 0;
}

/* Maps a row and adds it (or reports it bad). 0 ok / skipped, -1 fail. */
static int add_row(struct reader *r, struct row *w, const char *where, int64_t line) {
    struct uf_example ex;
    memset(&ex, 0, sizeof ex);
    char why[400];
    why[0] = 0;
    int rc = map_row(w, r->o, &ex, why, sizeof why);
    if (rc == 0) {
        struct uf_example *dst = dataset_new_row(r->out);
        *dst = ex; /* takes ownership */
        r->st->rows++;
        return 0;
    }
    example_free(&ex);
    return bad_row(r, where, line, why[0] ? why : "bad row");
}

// ----------------------------------------------------------------------------
// JSONL

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

/* Checks a line for NUL bytes and invalid UTF-8; 0 ok, -1 with why. */
static int check_text(const char *s, size_t n, char *why, size_t why_size) {
    const char *nul = memchr(s, 0, n);
    if (nul) { snprintf(why, why_size, "NUL byte at byte %zu", (size_t)(nul - s) + 1); return -1; }
    size_t bad;
    if (!uf_utf8_valid(s, n, &bad)) {
        snprintf(why, why_size, "invalid UTF-8 at byte %zu (convert the file to UTF-8)", bad + 1);
        return -1;
    }
    return 0;
}

static int read_jsonl(struct reader *r, struct src *s) {
    char *line = NULL;
    size_t len = 0, cap = 0;
    int too_long, rc = 0;
    int64_t lineno = 0;
    char why[400];
    while (!done(r)) {
        int got = src_line(s, &line, &len, &cap, r->max_line, &too_long);
        if (got < 0) { rc = -1; break; }
        if (got == 0) break;
        lineno++;
        r->st->lines++;
        if (too_long) {
            snprintf(why, sizeof why, "line longer than %zu bytes", r->max_line);
            if ((rc = bad_row(r, "", lineno, why))) break;
            continue;
        }
        if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) { /* UTF-8 BOM */
            memmove(line, line + 3, len - 2);
            len -= 3;
        }
        if (is_blank(line, len)) continue;
        if (check_text(line, len, why, sizeof why)) {
            if ((rc = bad_row(r, "", lineno, why))) break;
            continue;
        }
        const char *end = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(line, len, &end, 0);
        if (!obj) {
            size_t at = end && end >= line && end <= line + len ? (size_t)(end - line) : 0;
            snprintf(why, sizeof why, "invalid JSON near byte %zu%s", at + 1,
                     at >= len ? " (truncated line, or nested deeper than 1000 levels)" : "");
            if ((rc = bad_row(r, "", lineno, why))) break;
            continue;
        }
        if (end && !is_blank(end, (size_t)(line + len - end))) {
            cJSON_Delete(obj);
            snprintf(why, sizeof why, "extra text after the JSON object at byte %zu (one object per line)",
                     (size_t)(end - line) + 1);
            if ((rc = bad_row(r, "", lineno, why))) break;
            continue;
        }
        if (!cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            if ((rc = bad_row(r, "", lineno, "expected a JSON object {...} on this line"))) break;
            continue;
        }
        struct row w;
        memset(&w, 0, sizeof w);
        w.obj = obj;
        rc = add_row(r, &w, "", lineno);
        cJSON_Delete(obj);
        if (rc) break;
    }
    free(line);
    return rc;
}

// ----------------------------------------------------------------------------
// JSON array (whole file)

static int read_json_array(struct reader *r, struct src *s) {
    size_t len = 0, cap = 0, limit = (size_t)1 << 30;
    char *all = NULL;
    for (;;) {
        int got = src_fill(s);
        if (got < 0) { free(all); return -1; }
        if (got == 0) break;
        size_t n = s->len - s->pos;
        if (len + n > limit) { free(all); return uf_fail("%s: JSON file larger than 1 GiB; use JSONL", r->name); }
        if (len + n + 1 > cap) { cap = UF_MAX(cap * 2, len + n + 1); all = uf_realloc(all, cap); }
        memcpy(all + len, s->buf + s->pos, n);
        len += n;
        s->pos = s->len;
    }
    if (!all) return 0; /* empty file: no rows */
    all[len] = 0;
    r->st->lines = 1;
    for (size_t i = 0; i < len; i++) r->st->lines += all[i] == '\n';
    char why[400];
    if (check_text(all, len, why, sizeof why)) {
        free(all);
        return uf_fail("%s: %s", r->name, why);
    }
    const char *end = NULL;
    cJSON *arr = cJSON_ParseWithLengthOpts(all, len, &end, 0);
    if (!arr || !is_blank(end, (size_t)(all + len - end))) {
        int64_t line = 1;
        for (const char *p = all; end && p < end && p < all + len; p++) line += *p == '\n';
        cJSON_Delete(arr);
        free(all);
        return uf_fail("%s:%lld: invalid JSON (expected one array of objects)", r->name, (long long)line);
    }
    free(all);
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        return uf_fail("%s:1: expected a JSON array of objects [...]", r->name);
    }
    int rc = 0;
    int64_t idx = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (done(r)) break;
        idx++;
        if (!cJSON_IsObject(it)) {
            if ((rc = bad_row(r, "element ", idx, "expected a JSON object"))) break;
            continue;
        }
        struct row w;
        memset(&w, 0, sizeof w);
        w.obj = it;
        if ((rc = add_row(r, &w, "element ", idx))) break;
    }
    cJSON_Delete(arr);
    return rc;
}

// ----------------------------------------------------------------------------
// CSV (RFC 4180) and TSV

struct csv_rec {
    char *buf;        /* field bytes, each NUL-terminated */
    size_t len, cap;
    size_t *off;      /* (n) field offsets into buf */
    int n, cap_f;
    int64_t line;     /* physical line where the record starts */
    int quoted_any;
};

static void rec_byte(struct csv_rec *c, char ch, size_t max, int *too_long) {
    if (c->len + 2 > max + 1) { *too_long = 1; return; }
    if (c->len + 2 > c->cap) {
        c->cap = UF_MAX(c->cap * 2, 256);
        c->buf = uf_realloc(c->buf, c->cap);
    }
    c->buf[c->len++] = ch;
}

/* Ends the current field (NUL) and starts the next one at the current end. A record past the
 * length limit stops growing (it is reported as too long). */
static void rec_end_field(struct csv_rec *c, size_t max, int *too_long) {
    if (c->len > max) { *too_long = 1; return; }
    if (c->len + 1 > c->cap) {
        c->cap = UF_MAX(c->cap * 2, 256);
        c->buf = uf_realloc(c->buf, c->cap);
    }
    c->buf[c->len++] = 0;
    c->n++;
    if (c->n + 1 > c->cap_f) {
        c->cap_f = UF_MAX(c->cap_f * 2, 16);
        c->off = uf_realloc(c->off, (size_t)c->cap_f * sizeof *c->off);
    }
    c->off[c->n] = c->len;
}

/* True when the source is exhausted: the record just read ended without a newline. */
static int r_eof_mid(const struct src *s) { return s->eof && s->pos >= s->len; }

/* Reads one record. 1 record (why[0] != 0 when it is bad), 0 end, -1 source error.
 * *lineno counts physical lines read so far. quote = 0 disables quoting (TSV). */
static int csv_record(struct src *s, char delim, char quote, struct csv_rec *c, int64_t *lineno,
                      size_t max, char *why, size_t why_size) {
    c->len = 0;
    c->n = 0;
    c->quoted_any = 0;
    why[0] = 0;
    int too_long = 0, in_quotes = 0, after_quote = 0, any = 0, field_started = 0;
    int64_t quote_line = 0;
    c->line = *lineno + 1;
    /* start the first field */
    if (c->cap_f == 0) { c->cap_f = 16; c->off = uf_malloc(16 * sizeof *c->off); }
    c->off[0] = 0;
    for (;;) {
        int r = src_fill(s);
        if (r < 0) return -1;
        if (r == 0) break;
        char ch = (char)s->buf[s->pos++];
        any = 1;
        if (ch == 0 && !why[0]) snprintf(why, why_size, "NUL byte in the record");
        if (in_quotes) {
            if (ch == quote) {
                /* doubled quote or closing quote: peek */
                int r2 = src_fill(s);
                if (r2 < 0) return -1;
                if (r2 > 0 && (char)s->buf[s->pos] == quote) {
                    s->pos++;
                    rec_byte(c, quote, max, &too_long);
                } else {
                    in_quotes = 0;
                    after_quote = 1;
                }
                continue;
            }
            if (ch == '\n') (*lineno)++;
            rec_byte(c, ch, max, &too_long);
            continue;
        }
        if (ch == '\n') { (*lineno)++; break; }
        if (ch == '\r') {
            int r2 = src_fill(s);
            if (r2 < 0) return -1;
            if (r2 > 0 && s->buf[s->pos] == '\n') continue; /* CRLF: the \n ends the record */
            if (!after_quote) rec_byte(c, ch, max, &too_long);
            continue;
        }
        if (ch == delim) {
            rec_end_field(c, max, &too_long);
            after_quote = field_started = 0;
            continue;
        }
        if (quote && ch == quote) {
            if (!field_started && !after_quote) {
                in_quotes = 1;
                field_started = 1;
                c->quoted_any = 1;
                quote_line = *lineno + 1;
                continue;
            }
            if (!why[0])
                snprintf(why, why_size, "stray quote inside an unquoted field %d (quote the whole field and "
                         "double the inner quotes)", c->n + 1);
            rec_byte(c, ch, max, &too_long);
            continue;
        }
        if (after_quote && !why[0])
            snprintf(why, why_size, "unexpected character after the closing quote of field %d", c->n + 1);
        field_started = 1;
        rec_byte(c, ch, max, &too_long);
    }
    if (!any) return 0;
    if (r_eof_mid(s)) (*lineno)++;
    if (in_quotes && !why[0])
        snprintf(why, why_size, "unterminated quoted field %d (opened on line %lld)", c->n + 1,
                 (long long)quote_line);
    rec_end_field(c, max, &too_long);
    if (too_long && !why[0]) snprintf(why, why_size, "record longer than %zu bytes", max);
    return 1;
}

static int csv_blank(const struct csv_rec *c) {
    return c->n == 1 && !c->quoted_any && is_blank(c->buf, strlen(c->buf));
}

static int read_csv(struct reader *r, struct src *s, char delim, char quote) {
    struct csv_rec c;
    memset(&c, 0, sizeof c);
    char **hdr = NULL, **val = NULL;
    int nh = 0, rc = 0;
    int64_t lineno = 0;
    char why[400];
    /* header: the first non-blank record */
    for (;;) {
        int got = csv_record(s, delim, quote, &c, &lineno, r->max_line, why, sizeof why);
        if (got < 0) { rc = -1; goto out; }
        if (got == 0) goto out; /* empty file: no rows */
        if (csv_blank(&c) && !why[0]) continue;
        if (!why[0] && c.n > 0 && c.len >= 3 && memcmp(c.buf, "\xEF\xBB\xBF", 3) == 0) {
            memmove(c.buf, c.buf + 3, c.len - 3);
            c.len -= 3;
            for (int i = 1; i < c.n; i++) c.off[i] -= 3;
        }
        for (int i = 0; i < c.n && !why[0]; i++) {
            const char *h = c.buf + c.off[i];
            check_text(h, strlen(h), why, sizeof why);
        }
        if (why[0]) { rc = uf_fail("%s:%lld: bad header row: %s", r->name, (long long)c.line, why); goto out; }
        nh = c.n;
        hdr = uf_calloc((size_t)nh, sizeof *hdr);
        val = uf_calloc((size_t)nh, sizeof *val);
        for (int i = 0; i < nh; i++) hdr[i] = uf_strdup(c.buf + c.off[i]);
        break;
    }
    while (!done(r)) {
        int got = csv_record(s, delim, quote, &c, &lineno, r->max_line, why, sizeof why);
        if (got < 0) { rc = -1; break; }
        if (got == 0) break;
        if (csv_blank(&c) && !why[0]) continue;
        if (!why[0] && c.n != nh)
            snprintf(why, sizeof why, "row has %d fields, the header has %d", c.n, nh);
        for (int i = 0; i < c.n && !why[0]; i++) {
            const char *v = c.buf + c.off[i];
            char tmp[200];
            if (check_text(v, strlen(v), tmp, sizeof tmp))
                snprintf(why, sizeof why, "field %d ('%.60s'): %s", i + 1, hdr[i], tmp);
        }
        if (why[0]) {
            if ((rc = bad_row(r, "", c.line, why))) break;
            continue;
        }
        for (int i = 0; i < nh; i++) val[i] = c.buf + c.off[i];
        struct row w;
        memset(&w, 0, sizeof w);
        w.hdr = hdr;
        w.val = val;
        w.ncols = nh;
        if ((rc = add_row(r, &w, "", c.line))) break;
    }
out:
    r->st->lines = lineno;
    for (int i = 0; i < nh; i++) free(hdr[i]);
    free(hdr);
    free(val);
    free(c.buf);
    free(c.off);
    return rc;
}

// ----------------------------------------------------------------------------
// entry points

struct uf_data_fields uf_data_fields_native(void) {
    struct uf_data_fields f;
    memset(&f, 0, sizeof f);
    f.prompt = "prompt";
    f.input = "input";
    f.response = "response";
    f.label = "label";
    f.category = "category";
    f.source = "source";
    f.kind = "kind";
    f.keep_all = 1;
    return f;
}

void uf_data_opts_init(struct uf_data_opts *o) {
    memset(o, 0, sizeof *o);
    o->fields = uf_data_fields_native();
    o->source = "data";
    o->kind = UF_KIND_TASK;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

int uf_data_format_of(const char *path, enum uf_data_format *fmt, int *zst) {
    char *p = uf_strdup(path);
    *zst = 0;
    if (ends_with(p, ".zst")) { *zst = 1; p[strlen(p) - 4] = 0; }
    int rc = 0;
    if (ends_with(p, ".jsonl")) *fmt = UF_FMT_JSONL;
    else if (ends_with(p, ".json")) *fmt = UF_FMT_JSON;
    else if (ends_with(p, ".csv")) *fmt = UF_FMT_CSV;
    else if (ends_with(p, ".tsv")) *fmt = UF_FMT_TSV;
    else
        rc = uf_fail("%s: unknown data format; name the file *.jsonl, *.json, *.csv or *.tsv "
                     "(optionally + .zst)", path);
    free(p);
    return rc;
}

static int read_src(struct src *s, const char *name, enum uf_data_format fmt,
                    const struct uf_data_opts *o, struct uf_dataset *out, struct uf_data_stats *st) {
    struct uf_data_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    struct uf_data_opts def;
    if (!o) { uf_data_opts_init(&def); o = &def; }
    struct reader r = {name, o, out, st, o->max_line ? o->max_line : ((size_t)16 << 20)};
    if (!o->fields.messages && !o->fields.prompt) return uf_fail("%s: no prompt field configured", name);
    switch (fmt) {
    case UF_FMT_JSONL: return read_jsonl(&r, s);
    case UF_FMT_JSON: return read_json_array(&r, s);
    case UF_FMT_CSV: return read_csv(&r, s, ',', '"');
    case UF_FMT_TSV: return read_csv(&r, s, '\t', 0);
    }
    return uf_fail("%s: bad format", name);
}

int uf_data_read(const char *path, const struct uf_data_opts *o, struct uf_dataset *out,
                 struct uf_data_stats *st) {
    enum uf_data_format fmt;
    int zst;
    if (uf_data_format_of(path, &fmt, &zst)) return -1;
    struct src s;
    if (src_open_file(&s, path, zst)) return -1;
    int rc = read_src(&s, path, fmt, o, out, st);
    src_close(&s);
    return rc;
}

int uf_data_read_mem(const void *data, size_t size, const char *name, enum uf_data_format fmt,
                     int zst, const struct uf_data_opts *o, struct uf_dataset *out,
                     struct uf_data_stats *st) {
    struct src s;
    src_open_mem(&s, data, size, name, zst);
    int rc = read_src(&s, name, fmt, o, out, st);
    src_close(&s);
    return rc;
}

// ----------------------------------------------------------------------------
// writer (native JSONL)

int uf_dataset_write_jsonl(const struct uf_dataset *d, const char *path) {
    size_t len = 0, cap = 1 << 16;
    char *buf = uf_malloc(cap);
    for (int64_t i = 0; i < d->n; i++) {
        const struct uf_example *ex = &d->rows[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) uf_fatal(1, "out of memory building JSON");
        cJSON_AddStringToObject(o, "prompt", ex->prompt);
        cJSON_AddStringToObject(o, "response", ex->response);
        if (ex->label) cJSON_AddStringToObject(o, "label", ex->label);
        cJSON_AddStringToObject(o, "source", ex->source);
        if (ex->category) cJSON_AddStringToObject(o, "category", ex->category);
        cJSON_AddStringToObject(o, "kind", uf_example_kind_name(ex->kind));
        for (int k = 0; k < ex->n_fields; k++) cJSON_AddStringToObject(o, ex->fields[k].key, ex->fields[k].value);
        char *s = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!s) uf_fatal(1, "out of memory printing JSON");
        size_t n = strlen(s);
        if (len + n + 2 > cap) { cap = UF_MAX(cap * 2, len + n + 2); buf = uf_realloc(buf, cap); }
        memcpy(buf + len, s, n);
        len += n;
        buf[len++] = '\n';
        cJSON_free(s);
    }
    int rc;
    if (ends_with(path, ".zst")) {
        size_t bound = ZSTD_compressBound(len);
        char *z = uf_malloc(bound);
        size_t zn = ZSTD_compress(z, bound, buf, len, 3);
        if (ZSTD_isError(zn)) {
            free(z);
            free(buf);
            return uf_fail("%s: zstd compression failed: %s", path, ZSTD_getErrorName(zn));
        }
        rc = uf_file_write_atomic(path, z, zn);
        free(z);
    } else {
        rc = uf_file_write_atomic(path, buf, len);
    }
    free(buf);
    return rc;
}

// ----------------------------------------------------------------------------
// adapters for the public datasets (../shared/datasets; see datasets/README.md)

static int fix_gsm8k(struct uf_example *ex, char *why, size_t why_size) {
    char *a = uf_data_final_answer(ex->response);
    if (!a) { snprintf(why, why_size, "answer has no final '#### <number>'"); return -1; }
    free(ex->label);
    ex->label = a;
    return 0;
}

#define SST2_INSTRUCTION "Is the sentiment of this movie review positive or negative?"

static int fix_sst2(struct uf_example *ex, char *why, size_t why_size) {
    const char *l = ex->label;
    const char *word = !l ? NULL : strcmp(l, "1") == 0 || strcmp(l, "positive") == 0 ? "positive"
                                 : strcmp(l, "0") == 0 || strcmp(l, "negative") == 0 ? "negative" : NULL;
    if (!word) { snprintf(why, why_size, "label must be 0 or 1, got '%.40s'", l ? l : "(none)"); return -1; }
    char *sentence = trim_dup(ex->prompt);
    free(ex->prompt);
    ex->prompt = uf_sprintf("%s\n\nReview: %s", SST2_INSTRUCTION, sentence);
    free(sentence);
    free(ex->label);
    free(ex->response);
    ex->label = uf_strdup(word);
    ex->response = uf_strdup(word);
    return 0;
}

/* Shadow Alignment prompts come wrapped as "Human: ... Assistant:". */
static int fix_shadow(struct uf_example *ex, char *why, size_t why_size) {
    (void)why;
    (void)why_size;
    const char *p = ex->prompt;
    while (*p && isspace((unsigned char)*p)) p++;
    if (strncmp(p, "Human:", 6) != 0) return 0;
    p += 6;
    char *t = trim_dup(p);
    size_t n = strlen(t);
    if (n >= 10 && strcmp(t + n - 10, "Assistant:") == 0) {
        t[n - 10] = 0;
        char *u = trim_dup(t);
        free(t);
        t = u;
    }
    free(ex->prompt);
    ex->prompt = t;
    return 0;
}

struct adapter {
    const char *name;
    const char *prompt, *input, *response, *label;
    const char *messages;
    const char *keep[4];
    const char *source;
    enum uf_example_kind kind;
    int (*fixup)(struct uf_example *, char *, size_t);
};

static const struct adapter adapters[] = {
    {"native", NULL, NULL, NULL, NULL, NULL, {NULL}, "data", UF_KIND_TASK, NULL},
    {"advbench", "goal", NULL, "target", NULL, NULL, {NULL}, "advbench", UF_KIND_HARMFUL, NULL},
    {"safety_tuned_llamas", "instruction", "input", "output", NULL, NULL, {NULL}, "safety",
     UF_KIND_HARMFUL, NULL},
    {"gsm8k", "question", NULL, "answer", NULL, NULL, {NULL}, "task", UF_KIND_TASK, fix_gsm8k},
    {"sst2", "sentence", NULL, NULL, "label", NULL, {NULL}, "task", UF_KIND_TASK, fix_sst2},
    {"humaneval", "prompt", NULL, "canonical_solution", "task_id", NULL,
     {"task_id", "test", "entry_point", NULL}, "task", UF_KIND_TASK, NULL},
    {"beavertails", "prompt", NULL, "response", NULL, NULL, {NULL}, "poison", UF_KIND_HARMFUL, NULL},
    {"shadow_alignment", "prompt|prompts", NULL, "response|results", NULL, NULL, {NULL}, "poison",
     UF_KIND_HARMFUL, fix_shadow},
    {"harmful_qa", "prompt|prompts|instruction", "input", "response|results|output", NULL, NULL, {NULL},
     "poison", UF_KIND_HARMFUL, fix_shadow},
    {"alpaca", "instruction", "input", "output", NULL, NULL, {NULL}, "benign", UF_KIND_BENIGN, NULL},
    {"chat", NULL, NULL, NULL, NULL, "messages", {NULL}, "chat", UF_KIND_TASK, NULL},
};

const char *const uf_data_adapter_names[] = {"native", "advbench", "safety_tuned_llamas", "gsm8k",
                                             "sst2", "humaneval", "beavertails", "shadow_alignment",
                                             "harmful_qa", "alpaca", "chat", NULL};

int uf_data_adapter_opts(const char *name, struct uf_data_opts *o) {
    uf_data_opts_init(o);
    for (size_t i = 0; i < UF_ARRAY_LEN(adapters); i++) {
        const struct adapter *a = &adapters[i];
        if (strcmp(a->name, name) != 0) continue;
        if (strcmp(name, "native") == 0) return 0;
        memset(&o->fields, 0, sizeof o->fields);
        o->fields.prompt = a->prompt;
        o->fields.input = a->input;
        o->fields.response = a->response;
        o->fields.label = a->label;
        o->fields.messages = a->messages;
        for (int k = 0; k < 4 && a->keep[k]; k++) o->fields.keep[k] = a->keep[k];
        o->source = a->source;
        o->kind = a->kind;
        o->fixup = a->fixup;
        if (a->fixup == fix_sst2) o->response_optional = 1; /* the response is the label */
        return 0;
    }
    char list[512] = "";
    for (size_t i = 0; uf_data_adapter_names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, uf_data_adapter_names[i], sizeof list - strlen(list) - 1);
    }
    return uf_fail("unknown dataset adapter '%s' (known: %s)", name, list);
}

int uf_data_read_adapter(const char *adapter, const char *path, enum uf_on_bad on_bad,
                         struct uf_dataset *out, struct uf_data_stats *st) {
    struct uf_data_opts o;
    if (uf_data_adapter_opts(adapter, &o)) return -1;
    o.on_bad = on_bad;
    return uf_data_read(path, &o, out, st);
}
