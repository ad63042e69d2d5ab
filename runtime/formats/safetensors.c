/* safetensors.c: see safetensors.h. */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

/* The safetensors reference implementation refuses headers above 100 MB. */
#define UF_ST_MAX_HEADER (100u * 1000u * 1000u)

static const char *dtype_names[UF_ST_DTYPE_COUNT] = {"F32", "F16", "BF16", "F64", "I64",
                                                     "I32", "I16", "I8",  "U8",  "BOOL"};
static const size_t dtype_sizes[UF_ST_DTYPE_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

const char *uf_st_dtype_name(enum uf_st_dtype d) {
    return (unsigned)d < UF_ST_DTYPE_COUNT ? dtype_names[d] : "?";
}

/* ---- half precision ---------------------------------------------------------------------- */
float uf_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalize */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float uf_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t uf_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

uint16_t uf_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00);     /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);    /* overflow -> inf */
    if (ax < 0x38800000u) {                                      /* subnormal or zero */
        if (ax < 0x33000000u) return (uint16_t)sign;             /* < half of smallest */
        uint32_t e = ax >> 23, man = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                                /* 14 + (113 - e) - 1 */
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t rem = r & 0x1fff, out = r >> 13;
    if (rem > 0x1000 || (rem == 0x1000 && (out & 1))) out++;
    return (uint16_t)(sign | out);
}

/* ---- parsing ----------------------------------------------------------------------------- */
static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const struct uf_st_tensor *)a)->name, ((const struct uf_st_tensor *)b)->name);
}

static int cmp_tensor_begin(const void *a, const void *b) {
    const struct uf_st_tensor *x = *(const struct uf_st_tensor *const *)a;
    const struct uf_st_tensor *y = *(const struct uf_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(struct uf_safetensors *st, const cJSON *e, struct uf_st_tensor *t,
                        uint64_t data_size) {
    const char *p = st->path, *n = e->string;
    if (!cJSON_IsObject(e))
        return uf_fail("%s: tensor '%s': header entry is not a JSON object", p, n);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return uf_fail("%s: tensor '%s': missing string \"dtype\"", p, n);
    int d = -1;
    for (int i = 0; i < UF_ST_DTYPE_COUNT; i++)
        if (strcmp(dt->valuestring, dtype_names[i]) == 0) d = i;
    if (d < 0)
        return uf_fail("%s: tensor '%s': unknown dtype '%s' (known: F32 F16 BF16 F64 I64 I32 "
                       "I16 I8 U8 BOOL)", p, n, dt->valuestring);
    t->dtype = (enum uf_st_dtype)d;
    if (!cJSON_IsArray(sh)) return uf_fail("%s: tensor '%s': missing array \"shape\"", p, n);
    int nd = cJSON_GetArraySize(sh);
    if (nd > UF_ST_MAX_DIMS)
        return uf_fail("%s: tensor '%s': %d dimensions (at most %d supported)", p, n, nd,
                       UF_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (int i = 0; i < nd; i++) {
        uint64_t v;
        if (json_u64(cJSON_GetArrayItem(sh, i), &v) != 0)
            return uf_fail("%s: tensor '%s': shape[%d] is not a non-negative integer", p, n, i);
        t->shape[i] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        else numel *= v;
    }
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return uf_fail("%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", p, n);
    if (json_u64(cJSON_GetArrayItem(off, 0), &t->begin) != 0 ||
        json_u64(cJSON_GetArrayItem(off, 1), &t->end) != 0)
        return uf_fail("%s: tensor '%s': data_offsets are not non-negative integers", p, n);
    if (t->begin > t->end)
        return uf_fail("%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", p, n,
                       (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_size)
        return uf_fail("%s: tensor '%s': data_offsets [%llu, %llu] run past the data region "
                       "(%llu bytes; file truncated?)", p, n, (unsigned long long)t->begin,
                       (unsigned long long)t->end, (unsigned long long)data_size);
    size_t es = dtype_sizes[d];
    if (overflow || numel > UINT64_MAX / es || numel * es != t->end - t->begin) {
        char need[32] = "an overflowing number of";
        if (!overflow && numel <= UINT64_MAX / es)
            snprintf(need, sizeof need, "%llu", (unsigned long long)(numel * es));
        return uf_fail("%s: tensor '%s': shape needs %s bytes of %s but data_offsets span %llu",
                       p, n, need, dtype_names[d], (unsigned long long)(t->end - t->begin));
    }
    t->numel = (int64_t)numel;
    return 0;
}

static int parse_image(struct uf_safetensors *st) {
    const char *p = st->path;
    if (st->size < 8)
        return uf_fail("%s: file is %zu bytes, too short for a safetensors header (needs 8+)", p,
                       st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->base[i];
    if (hlen > UF_ST_MAX_HEADER)
        return uf_fail("%s: header length %llu exceeds the 100 MB limit (not a safetensors file?)",
                       p, (unsigned long long)hlen);
    if (hlen < 2 || 8 + hlen > st->size)
        return uf_fail("%s: header length %llu does not fit in the %zu-byte file (truncated?)", p,
                       (unsigned long long)hlen, st->size);
    const char *hdr = (const char *)st->base + 8;
    if (hdr[0] != '{')
        return uf_fail("%s: header does not start with '{' (not a safetensors file?)", p);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        size_t at = root ? 0 : (size_t)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - hdr : 0);
        cJSON_Delete(root);
        return uf_fail("%s: header is not valid JSON (near byte %zu of the header)", p,
                       at > hlen ? 0 : at);
    }
    for (const char *q = end; q && q < hdr + hlen; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r' && *q != 0) {
            cJSON_Delete(root);
            return uf_fail("%s: trailing bytes after the JSON header", p);
        }
    uint64_t data_size = st->size - 8 - hlen;
    const uint8_t *data = st->base + 8 + hlen;
    int count = 0;
    for (cJSON *e = root->child; e; e = e->next) count++;
    st->tensors = uf_calloc((size_t)count + 1, sizeof *st->tensors);
    int rc = 0;
    for (cJSON *e = root->child; e && rc == 0; e = e->next) {
        if (!e->string) { rc = uf_fail("%s: header entry without a name", p); break; }
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) { rc = uf_fail("%s: __metadata__ is not an object", p); break; }
            for (cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    rc = uf_fail("%s: __metadata__ value '%s' is not a string", p,
                                 m->string ? m->string : "?");
                    break;
                }
                st->meta_keys = uf_realloc(st->meta_keys, sizeof(char *) * (size_t)(st->n_meta + 1));
                st->meta_vals = uf_realloc(st->meta_vals, sizeof(char *) * (size_t)(st->n_meta + 1));
                st->meta_keys[st->n_meta] = uf_strdup(m->string);
                st->meta_vals[st->n_meta] = uf_strdup(m->valuestring);
                st->n_meta++;
            }
            continue;
        }
        struct uf_st_tensor *t = &st->tensors[st->n_tensors];
        t->name = uf_strdup(e->string);
        st->n_tensors++;
        rc = parse_tensor(st, e, t, data_size);
        if (rc == 0) t->data = data + t->begin;
    }
    cJSON_Delete(root);
    if (rc != 0) return rc;
    qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return uf_fail("%s: tensor '%s' appears twice in the header", p, st->tensors[i].name);
    struct uf_st_tensor **by = uf_malloc(sizeof *by * (size_t)(st->n_tensors + 1));
    for (int i = 0; i < st->n_tensors; i++) by[i] = &st->tensors[i];
    qsort(by, (size_t)st->n_tensors, sizeof *by, cmp_tensor_begin);
    const struct uf_st_tensor *far = NULL; /* the tensor reaching furthest so far */
    for (int i = 0; i < st->n_tensors; i++) {
        const struct uf_st_tensor *c = by[i];
        if (c->end == c->begin) continue; /* empty tensors occupy no bytes */
        if (far && c->begin < far->end) {
            rc = uf_fail("%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", p,
                         far->name, (unsigned long long)far->begin,
                         (unsigned long long)far->end, c->name,
                         (unsigned long long)c->begin, (unsigned long long)c->end);
            break;
        }
        if (!far || c->end > far->end) far = c;
    }
    free(by);
    return rc;
}

int uf_safetensors_open_memory(struct uf_safetensors *st, const void *data, size_t size,
                               const char *name) {
    memset(st, 0, sizeof *st);
    st->path = uf_strdup(name ? name : "<memory>");
    st->base = (uint8_t *)data;
    st->size = size;
    if (parse_image(st) != 0) {
        uf_safetensors_free(st);
        return -1;
    }
    return 0;
}

int uf_safetensors_open(struct uf_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return uf_fail("cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return uf_fail("%s: not a regular file", path);
    }
    st->path = uf_strdup(path);
    st->size = (size_t)sb.st_size;
    if (st->size > 0) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            free(st->path);
            return uf_fail("%s: cannot memory-map: %s", path, strerror(e));
        }
        st->base = m;
        st->mapped = 1;
    }
    close(fd);
    if (parse_image(st) != 0) {
        uf_safetensors_free(st);
        return -1;
    }
    return 0;
}

void uf_safetensors_free(struct uf_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    if (st->mapped && st->base) munmap(st->base, st->size);
    else if (st->owned) free(st->base);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const struct uf_st_tensor *uf_safetensors_find(const struct uf_safetensors *st, const char *name) {
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, st->tensors[mid].name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *uf_safetensors_meta(const struct uf_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

int uf_st_tensor_to_f32(const struct uf_st_tensor *t, const char *where, float *dst, int64_t n) {
    if (n != t->numel)
        return uf_fail("%s: tensor '%s' has %lld elements but the caller expects %lld", where,
                       t->name, (long long)t->numel, (long long)n);
    const uint8_t *s = t->data;
    switch (t->dtype) {
    case UF_ST_F32: memcpy(dst, s, (size_t)n * 4); break;
    case UF_ST_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = uf_f16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case UF_ST_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = uf_bf16_to_f32((uint16_t)(s[2 * i] | s[2 * i + 1] << 8));
        break;
    case UF_ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default:
        return uf_fail("%s: tensor '%s' has dtype %s; only F32, F16, BF16 and F64 convert to f32",
                       where, t->name, dtype_names[t->dtype]);
    }
    return 0;
}

int uf_safetensors_read_f32(const struct uf_safetensors *st, const char *name, float *dst,
                            int64_t n) {
    const struct uf_st_tensor *t = uf_safetensors_find(st, name);
    if (!t) return uf_fail("%s: no tensor named '%s'", st->path, name);
    return uf_st_tensor_to_f32(t, st->path, dst, n);
}

/* ---- sharded models ------------------------------------------------------------------------ */
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int open_index(struct uf_st_model *m, const char *index_path) {
    size_t len;
    char *text = uf_file_read(index_path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(wm)) {
        cJSON_Delete(root);
        return uf_fail("%s: not valid JSON with a \"weight_map\" object", index_path);
    }
    char *dirbuf = uf_strdup(index_path);
    char *dir = uf_strdup(dirname(dirbuf));
    free(dirbuf);
    int rc = 0;
    char **names = NULL; /* distinct shard file names, in first-seen order */
    for (const cJSON *e = wm->child; e && rc == 0; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || e->valuestring[0] == 0) {
            rc = uf_fail("%s: weight_map['%s'] must be a plain file name", index_path,
                         e->string ? e->string : "?");
            break;
        }
        int k = 0;
        while (k < m->n_files && strcmp(names[k], e->valuestring) != 0) k++;
        if (k < m->n_files) continue;
        names = uf_realloc(names, sizeof *names * (size_t)(m->n_files + 1));
        m->files = uf_realloc(m->files, sizeof *m->files * (size_t)(m->n_files + 1));
        char *path = uf_sprintf("%s/%s", dir, e->valuestring);
        if (uf_safetensors_open(&m->files[m->n_files], path) != 0) {
            uf_fail_prefix("%s: shard of %s", e->valuestring, index_path);
            rc = -1;
        } else names[m->n_files++] = e->valuestring;
        free(path);
    }
    for (const cJSON *e = wm->child; e && rc == 0; e = e->next) {
        int k = 0;
        while (k < m->n_files && strcmp(names[k], e->valuestring) != 0) k++;
        if (!uf_safetensors_find(&m->files[k], e->string))
            rc = uf_fail("%s: weight_map says tensor '%s' is in %s, but that file has no such "
                         "tensor", index_path, e->string, m->files[k].path);
    }
    if (rc == 0 && m->n_files == 0) rc = uf_fail("%s: weight_map is empty", index_path);
    free(names);
    free(dir);
    cJSON_Delete(root);
    return rc;
}

int uf_st_model_open(struct uf_st_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    struct stat sb;
    if (stat(path, &sb) != 0) return uf_fail("cannot open %s: %s", path, strerror(errno));
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        char *single = uf_sprintf("%s/model.safetensors", path);
        char *index = uf_sprintf("%s/model.safetensors.index.json", path);
        if (uf_file_exists(index)) rc = open_index(m, index);
        else if (uf_file_exists(single)) {
            m->files = uf_calloc(1, sizeof *m->files);
            rc = uf_safetensors_open(&m->files[0], single);
            if (rc == 0) m->n_files = 1;
        } else
            rc = uf_fail("%s: no model.safetensors or model.safetensors.index.json in this folder",
                         path);
        free(single);
        free(index);
    } else if (ends_with(path, ".json")) {
        rc = open_index(m, path);
    } else {
        m->files = uf_calloc(1, sizeof *m->files);
        rc = uf_safetensors_open(&m->files[0], path);
        if (rc == 0) m->n_files = 1;
    }
    if (rc != 0) uf_st_model_free(m);
    return rc;
}

void uf_st_model_free(struct uf_st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++) uf_safetensors_free(&m->files[i]);
    free(m->files);
    memset(m, 0, sizeof *m);
}

const struct uf_st_tensor *uf_st_model_find(const struct uf_st_model *m, const char *name,
                                            const struct uf_safetensors **file) {
    for (int i = 0; i < m->n_files; i++) {
        const struct uf_st_tensor *t = uf_safetensors_find(&m->files[i], name);
        if (t) {
            if (file) *file = &m->files[i];
            return t;
        }
    }
    return NULL;
}

int uf_st_model_read_f32(const struct uf_st_model *m, const char *name, float *dst, int64_t n) {
    const struct uf_safetensors *f = NULL;
    const struct uf_st_tensor *t = uf_st_model_find(m, name, &f);
    if (!t)
        return uf_fail("no tensor named '%s' in %s%s", name,
                       m->n_files ? m->files[0].path : "(no files)",
                       m->n_files > 1 ? " or the other shards" : "");
    return uf_st_tensor_to_f32(t, f->path, dst, n);
}

/* ---- writing --------------------------------------------------------------------------------- */
struct sbuf { char *p; size_t n, cap; };

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = uf_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_json_string(struct sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        char esc[8];
        if (*q == '"' || *q == '\\') { esc[0] = '\\'; esc[1] = (char)*q; sb_put(b, esc, 2); }
        else if (*q < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *q); sb_put(b, esc, 6); }
        else sb_put(b, (const char *)q, 1);
    }
    sb_put(b, "\"", 1);
}

static int write_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int uf_safetensors_write(const char *path, const struct uf_st_write_tensor *t, int n,
                         const char *const *meta, int n_meta) {
    struct sbuf h = {0};
    sb_str(&h, "{");
    int first = 1;
    if (meta && n_meta > 0) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_string(&h, meta[2 * i]);
            sb_str(&h, ":");
            sb_json_string(&h, meta[2 * i + 1]);
        }
        sb_str(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if ((unsigned)t[i].dtype >= UF_ST_DTYPE_COUNT || t[i].ndim < 0 ||
            t[i].ndim > UF_ST_MAX_DIMS || !t[i].name || !t[i].name[0] ||
            strcmp(t[i].name, "__metadata__") == 0) {
            free(h.p);
            return uf_fail("%s: cannot write tensor %d ('%s'): bad name, dtype or rank", path, i,
                           t[i].name ? t[i].name : "");
        }
        for (int j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0) {
                free(h.p);
                return uf_fail("%s: tensor '%s' given twice", path, t[i].name);
            }
        uint64_t numel = 1;
        char num[64];
        if (!first) sb_str(&h, ",");
        first = 0;
        sb_json_string(&h, t[i].name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, dtype_names[t[i].dtype]);
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0) {
                free(h.p);
                return uf_fail("%s: tensor '%s': negative shape", path, t[i].name);
            }
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            sb_str(&h, num);
            numel *= (uint64_t)t[i].shape[d];
        }
        uint64_t bytes = numel * dtype_sizes[t[i].dtype];
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + bytes));
        sb_str(&h, num);
        off += bytes;
    }
    sb_str(&h, "}");
    while ((8 + h.n) % 8 != 0) sb_str(&h, " "); /* align the data region to 8 bytes */

    char *tmp = uf_sprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        uf_fail("cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        free(h.p);
        return -1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    int bad = write_all(fd, len8, 8) || write_all(fd, h.p, h.n);
    free(h.p);
    for (int i = 0; i < n && !bad; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (uint64_t)t[i].shape[d];
        size_t bytes = (size_t)(numel * dtype_sizes[t[i].dtype]);
        if (bytes && !t[i].data) bad = 1;
        else bad = write_all(fd, t[i].data, bytes);
    }
    if (bad || fsync(fd) != 0) {
        uf_fail("cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        uf_fail("cannot finish %s (via %s): %s", path, tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    char *dirbuf = uf_strdup(path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dirbuf);
    return 0;
}
