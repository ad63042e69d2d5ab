/* hf.c: Hugging Face model folders and PEFT adapters <-> flat parameter vectors (see hf.h). */
#include "model/hf.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "ref/ref_model.h"
#include "core/util.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static struct uf_param_desc *descs(const struct uf_model_config *c, int *n) {
    *n = uf_model_param_descs(c, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)*n, sizeof *d);
    uf_model_param_descs(c, d);
    return d;
}

/* the expected HF shape of a canonical tensor: norms are 1-D (D) */
static int hf_shape(const struct uf_param_desc *d, int64_t shape[2]) {
    int norm = d->kind == UF_P_ATTN_NORM || d->kind == UF_P_MLP_NORM || d->kind == UF_P_FINAL_NORM;
    if (norm) {
        shape[0] = d->cols;
        return 1;
    }
    shape[0] = d->rows, shape[1] = d->cols;
    return 2;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static void lora_merge_one(const struct uf_model_config *c, const struct uf_hf_lora *l,
                           const struct uf_param_desc *W, float *w);

/* Reads the weights of dir tensor by tensor (checked as described in hf.h). Each tensor is
 * converted into host + offset when host is given, else into one temporary buffer of the largest
 * tensor's size; an adapter (may be NULL) is merged into its targeted linears; then, when dev is
 * given, the tensor is uploaded into its place in dev (so the whole model never sits on the host). */
/* The weights of dir into host (the canonical vector, or NULL) and / or the device tensors
 * dev[i] (one per canonical parameter, f32 or bf16; or NULL), one tensor at a time; lora (or
 * NULL) is merged in f32 before a bf16 rounding. */
static int load_weights(const char *dir, const struct uf_model_config *c, float *host,
                        const struct uf_tensor *dev, const struct uf_hf_lora *lora) {
    struct uf_st_model m;
    if (uf_st_model_open(&m, dir)) return uf_fail_prefix("loading the weights of %s", dir);
    int n, rc = 0;
    struct uf_param_desc *d = descs(c, &n);
    /* every tensor in the files must be one the engine knows */
    for (int f = 0; f < m.n_files && rc == 0; f++)
        for (int i = 0; i < m.files[f].n_tensors && rc == 0; i++) {
            const char *name = m.files[f].tensors[i].name;
            int known = ends_with(name, "rotary_emb.inv_freq") ||
                        (c->tied_embeddings && strcmp(name, "lm_head.weight") == 0);
            for (int j = 0; j < n && !known; j++) known = strcmp(d[j].name, name) == 0;
            if (!known)
                rc = uf_fail("%s: tensor '%s' is not part of a %s model the engine can run "
                             "(biases and other modules are not supported)", m.files[f].path,
                             name, uf_family_name(c->family));
        }
    int64_t max_numel = 0;
    for (int j = 0; j < n; j++) max_numel = UF_MAX(max_numel, d[j].numel);
    float *tmp = host ? NULL : uf_malloc((size_t)max_numel * sizeof *tmp);
    for (int j = 0; j < n && rc == 0; j++) {
        const struct uf_safetensors *file = NULL;
        const struct uf_st_tensor *t = uf_st_model_find(&m, d[j].name, &file);
        if (!t) {
            rc = uf_fail("%s: tensor '%s' is missing from the weights%s", dir, d[j].name,
                         d[j].kind == UF_P_LM_HEAD ? " (config.json says tie_word_embeddings "
                                                     "is false)" : "");
            break;
        }
        int64_t want[2];
        int nd = hf_shape(&d[j], want);
        int ok = t->ndim == nd;
        for (int k = 0; k < nd && ok; k++) ok = t->shape[k] == want[k];
        if (!ok) {
            char got_s[96], want_s[64];
            shape_str(got_s, sizeof got_s, t->ndim, t->shape);
            shape_str(want_s, sizeof want_s, nd, want);
            rc = uf_fail("%s: tensor '%s' has shape %s; config.json implies %s", file->path,
                         d[j].name, got_s, want_s);
            break;
        }
        float *dst = host ? host + d[j].offset : tmp;
        rc = uf_st_tensor_to_f32(t, file->path, dst, d[j].numel);
        if (rc == 0 && lora) lora_merge_one(c, lora, &d[j], dst);
        if (rc == 0 && dev) {
            struct uf_tensor v;
            uf_tensor_view(&v, &dev[j], d[j].name, 0, 1, (int64_t[]){d[j].numel});
            if (v.dtype == UF_BF16) { /* a bf16 base (model.h UF_MODEL_BF16_BASE): round */
                /* in place into tmp (element i is written after dst[i] is read); a copy when
                 * the caller keeps the f32 host vector */
                uint16_t *h16 = host ? uf_malloc((size_t)d[j].numel * 2) : (uint16_t *)dst;
                for (int64_t i = 0; i < d[j].numel; i++) h16[i] = uf_f32_to_bf16(dst[i]);
                uf_tensor_upload(&v, h16);
                if (host) free(h16);
            } else {
                uf_tensor_upload(&v, dst);
            }
        }
    }
    free(tmp);
    free(d);
    uf_st_model_free(&m);
    return rc;
}

int uf_hf_load_params(const char *dir, const struct uf_model_config *c, float *params) {
    return load_weights(dir, c, params, NULL, NULL);
}

static int load_config(const char *dir, struct uf_model_config *c, struct uf_hf_extra *extra) {
    if (uf_hf_config_load(dir, c, extra)) return -1;
    if (uf_model_config_validate(c)) return uf_fail_prefix("%s/config.json", dir);
    return 0;
}

int uf_hf_load(const char *dir, struct uf_model_config *c, struct uf_hf_extra *extra,
               float **params) {
    *params = NULL;
    if (load_config(dir, c, extra)) return -1;
    float *p = uf_malloc((size_t)uf_model_param_numel(c) * sizeof *p);
    if (uf_hf_load_params(dir, c, p)) {
        free(p);
        return -1;
    }
    *params = p;
    return 0;
}

int uf_hf_load_device(const char *dir, const char *lora_dir, struct uf_device *dev,
                      struct uf_model_config *c, struct uf_hf_extra *extra,
                      struct uf_tensor *params) {
    if (load_config(dir, c, extra)) return -1;
    struct uf_hf_lora l;
    if (lora_dir && uf_hf_lora_load(lora_dir, c, &l)) return -1;
    uf_tensor_init(params, dev, "params", UF_F32, 1, (int64_t[]){uf_model_param_numel(c)});
    int n;
    struct uf_param_desc *d = descs(c, &n);
    struct uf_tensor *v = uf_calloc((size_t)n, sizeof *v);
    for (int j = 0; j < n; j++)
        uf_tensor_view(&v[j], params, d[j].name, (size_t)d[j].offset, 1, (int64_t[]){d[j].numel});
    int rc = load_weights(dir, c, NULL, v, lora_dir ? &l : NULL);
    free(v), free(d);
    if (lora_dir) uf_hf_lora_free(&l);
    if (rc) uf_tensor_free(params);
    return rc;
}

/* ---- export --------------------------------------------------------------------------------- */
static int copy_file(const char *from_dir, const char *to_dir, const char *name, int required) {
    char *src = uf_sprintf("%s/%s", from_dir, name), *dst = uf_sprintf("%s/%s", to_dir, name);
    int rc = 0;
    if (uf_file_exists(src)) {
        size_t size;
        char *data = uf_file_read(src, &size);
        rc = data ? uf_file_write_atomic(dst, data, size) : -1;
        free(data);
    } else if (required) {
        rc = uf_fail("%s: missing (needed to export the tokenizer)", src);
    }
    free(src), free(dst);
    return rc;
}

int uf_hf_save(const char *dir, const struct uf_model_config *c, const struct uf_hf_extra *extra,
               const float *params, enum uf_st_dtype dtype, const char *tokenizer_from) {
    if (dtype != UF_ST_F32 && dtype != UF_ST_BF16)
        return uf_fail("export %s: dtype %s not supported (F32 or BF16)", dir,
                       uf_st_dtype_name(dtype));
    if (uf_model_config_validate(c) || uf_mkdir_p(dir)) return uf_fail_prefix("export %s", dir);
    struct uf_hf_extra ex = {.bos_token_id = -1, .eos_token_id = -1};
    if (extra) ex = *extra;
    snprintf(ex.torch_dtype, sizeof ex.torch_dtype, "%s",
             dtype == UF_ST_BF16 ? "bfloat16" : "float32");
    char *cfg_path = uf_sprintf("%s/config.json", dir);
    int rc = uf_hf_config_write(cfg_path, c, &ex);
    free(cfg_path);
    if (rc) return -1;
    int n;
    struct uf_param_desc *d = descs(c, &n);
    int64_t total = uf_model_param_numel(c);
    uint16_t *half = NULL;
    if (dtype == UF_ST_BF16) {
        half = uf_malloc((size_t)total * sizeof *half);
        for (int64_t i = 0; i < total; i++) half[i] = uf_f32_to_bf16(params[i]);
    }
    struct uf_st_write_tensor *w = uf_calloc((size_t)n, sizeof *w);
    for (int j = 0; j < n; j++) {
        w[j].name = d[j].name;
        w[j].dtype = dtype;
        w[j].ndim = hf_shape(&d[j], w[j].shape);
        w[j].data = half ? (const void *)(half + d[j].offset) : (const void *)(params + d[j].offset);
    }
    static const char *meta[] = {"format", "pt"};
    char *st_path = uf_sprintf("%s/model.safetensors", dir);
    rc = uf_safetensors_write(st_path, w, n, meta, 1);
    free(st_path), free(w), free(half), free(d);
    if (rc) return -1;
    if (tokenizer_from) {
        rc = copy_file(tokenizer_from, dir, "tokenizer.json", 1);
        static const char *opt[] = {"tokenizer_config.json", "special_tokens_map.json",
                                    "generation_config.json"};
        for (size_t i = 0; i < UF_ARRAY_LEN(opt) && rc == 0; i++)
            rc = copy_file(tokenizer_from, dir, opt[i], 0);
    }
    return rc;
}

/* ---- LoRA ----------------------------------------------------------------------------------- */
static const struct { enum uf_param_kind kind; const char *module; } lora_modules[] = {
    {UF_P_Q, "q_proj"}, {UF_P_K, "k_proj"}, {UF_P_V, "v_proj"}, {UF_P_O, "o_proj"},
    {UF_P_GATE, "gate_proj"}, {UF_P_UP, "up_proj"}, {UF_P_DOWN, "down_proj"}};

static struct uf_ref_lora_desc *lora_descs(const struct uf_model_config *c, int rank,
                                           unsigned targets, int *n) {
    *n = uf_ref_lora_descs(c, rank, targets, NULL);
    struct uf_ref_lora_desc *d = uf_calloc((size_t)(*n ? *n : 1), sizeof *d);
    uf_ref_lora_descs(c, rank, targets, d);
    return d;
}

int uf_hf_lora_save(const char *dir, const struct uf_model_config *c, int rank, float alpha,
                    unsigned targets, const float *lora, const char *base_model) {
    if (rank <= 0 || !(targets & UF_LORA_ALL))
        return uf_fail("export adapter %s: rank must be positive and targets non-empty", dir);
    if (uf_mkdir_p(dir)) return uf_fail_prefix("export adapter %s", dir);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "r", rank);
    cJSON_AddNumberToObject(j, "lora_alpha", alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", 0.0);
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "use_rslora", 0);
    cJSON_AddBoolToObject(j, "use_dora", 0);
    if (base_model) cJSON_AddStringToObject(j, "base_model_name_or_path", base_model);
    else cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
    for (size_t i = 0; i < UF_ARRAY_LEN(lora_modules); i++)
        if (targets & UF_LORA_TARGET(lora_modules[i].kind))
            cJSON_AddItemToArray(tm, cJSON_CreateString(lora_modules[i].module));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char *path = uf_sprintf("%s/adapter_config.json", dir);
    int rc = uf_file_write_atomic(path, text, strlen(text));
    free(path), free(text);
    if (rc) return -1;
    int n;
    struct uf_ref_lora_desc *d = lora_descs(c, rank, targets, &n);
    struct uf_st_write_tensor *w = uf_calloc((size_t)n, sizeof *w);
    char **names = uf_calloc((size_t)n, sizeof *names);
    for (int i = 0; i < n; i++) {
        names[i] = uf_sprintf("base_model.model.%s", d[i].name);
        w[i].name = names[i];
        w[i].dtype = UF_ST_F32;
        w[i].ndim = 2;
        w[i].shape[0] = d[i].rows, w[i].shape[1] = d[i].cols;
        w[i].data = lora + d[i].offset;
    }
    static const char *meta[] = {"format", "pt"};
    path = uf_sprintf("%s/adapter_model.safetensors", dir);
    rc = uf_safetensors_write(path, w, n, meta, 1);
    for (int i = 0; i < n; i++) free(names[i]);
    free(path), free(names), free(w), free(d);
    return rc;
}

int uf_hf_lora_load(const char *dir, const struct uf_model_config *c, struct uf_hf_lora *out) {
    memset(out, 0, sizeof *out);
    char *path = uf_sprintf("%s/adapter_config.json", dir);
    size_t size;
    char *text = uf_file_read(path, &size);
    if (!text) {
        free(path);
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength(text, size);
    free(text);
    int rc = 0;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "r");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "peft_type");
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "use_rslora");
    const cJSON *dora = cJSON_GetObjectItemCaseSensitive(j, "use_dora");
    if (!j) rc = uf_fail("%s: not valid JSON", path);
    else if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "LORA") != 0)
        rc = uf_fail("%s: peft_type must be \"LORA\"", path);
    else if (!cJSON_IsNumber(r) || r->valueint <= 0)
        rc = uf_fail("%s: \"r\" must be a positive integer", path);
    else if (!cJSON_IsNumber(a)) rc = uf_fail("%s: \"lora_alpha\" must be a number", path);
    else if (cJSON_IsTrue(rs) || cJSON_IsTrue(dora))
        rc = uf_fail("%s: use_rslora / use_dora adapters are not supported", path);
    else if (!cJSON_IsArray(tm))
        rc = uf_fail("%s: \"target_modules\" must be a list of module names", path);
    if (rc == 0) {
        out->rank = r->valueint;
        out->alpha = (float)a->valuedouble;
        const cJSON *e;
        cJSON_ArrayForEach(e, tm) {
            size_t i;
            for (i = 0; i < UF_ARRAY_LEN(lora_modules); i++)
                if (cJSON_IsString(e) && strcmp(e->valuestring, lora_modules[i].module) == 0) break;
            if (i == UF_ARRAY_LEN(lora_modules)) {
                rc = uf_fail("%s: target module %s is not supported (q_proj, k_proj, v_proj, "
                             "o_proj, gate_proj, up_proj, down_proj)", path,
                             cJSON_IsString(e) ? e->valuestring : "(not a string)");
                break;
            }
            out->targets |= UF_LORA_TARGET(lora_modules[i].kind);
        }
        if (rc == 0 && !out->targets) rc = uf_fail("%s: empty target_modules", path);
    }
    cJSON_Delete(j);
    free(path);
    if (rc) return rc;
    path = uf_sprintf("%s/adapter_model.safetensors", dir);
    struct uf_safetensors st;
    if (uf_safetensors_open(&st, path)) {
        free(path);
        return -1;
    }
    int n;
    struct uf_ref_lora_desc *d = lora_descs(c, out->rank, out->targets, &n);
    out->params = uf_malloc((size_t)UF_MAX(1, uf_ref_lora_numel(c, out->rank, out->targets)) *
                            sizeof(float));
    for (int i = 0; i < n && rc == 0; i++) {
        char *name = uf_sprintf("base_model.model.%s", d[i].name);
        const struct uf_st_tensor *t = uf_safetensors_find(&st, name);
        if (!t) {
            /* PEFT also writes adapter-named keys ("...lora_A.default.weight") in some versions */
            free(name);
            char *alt = uf_strdup(d[i].name);
            char *dot = strstr(alt, ".weight");
            *dot = 0;
            name = uf_sprintf("base_model.model.%s.default.weight", alt);
            free(alt);
            t = uf_safetensors_find(&st, name);
        }
        if (!t) rc = uf_fail("%s: tensor 'base_model.model.%s' is missing", path, d[i].name);
        else if (t->ndim != 2 || t->shape[0] != d[i].rows || t->shape[1] != d[i].cols)
            rc = uf_fail("%s: tensor '%s' has the wrong shape (expected [%lld, %lld])", path,
                         name, (long long)d[i].rows, (long long)d[i].cols);
        else rc = uf_st_tensor_to_f32(t, path, out->params + d[i].offset, d[i].numel);
        free(name);
    }
    free(d);
    uf_safetensors_free(&st);
    free(path);
    if (rc) uf_hf_lora_free(out);
    return rc;
}

void uf_hf_lora_free(struct uf_hf_lora *l) {
    free(l->params);
    memset(l, 0, sizeof *l);
}

/* w (the weight W of desc, (out, in)) += (alpha / r) B A when the adapter targets it */
static void lora_merge_one(const struct uf_model_config *c, const struct uf_hf_lora *l,
                           const struct uf_param_desc *W, float *w) {
    if (W->kind < UF_P_Q || W->kind > UF_P_DOWN || !(l->targets & UF_LORA_TARGET(W->kind))) return;
    int n;
    struct uf_ref_lora_desc *d = lora_descs(c, l->rank, l->targets, &n);
    double s = (double)l->alpha / l->rank;
    for (int i = 0; i + 1 < n; i += 2) { /* A then B of the same module */
        if (d[i].kind != W->kind || d[i].layer != W->layer) continue;
        const float *a = l->params + d[i].offset, *b = l->params + d[i + 1].offset; /* (r, in), (out, r) */
        for (int64_t o = 0; o < W->rows; o++)
            for (int64_t k = 0; k < W->cols; k++) {
                double acc = 0.0;
                for (int r = 0; r < l->rank; r++) acc += (double)b[o * l->rank + r] * a[r * W->cols + k];
                w[o * W->cols + k] += (float)(s * acc);
            }
    }
    free(d);
}

void uf_hf_lora_merge(const struct uf_model_config *c, float *params, const struct uf_hf_lora *l) {
    int np;
    struct uf_param_desc *pd = descs(c, &np);
    for (int j = 0; j < np; j++) lora_merge_one(c, l, &pd[j], params + pd[j].offset);
    free(pd);
}

/* ---- the training engine ------------------------------------------------------------------ */
int uf_hf_model_load(struct uf_model *m, struct uf_device *dev, const char *dir,
                     struct uf_hf_extra *extra, int flags) {
    return uf_hf_model_load_merged(m, dev, dir, NULL, extra, flags);
}

int uf_hf_model_load_merged(struct uf_model *m, struct uf_device *dev, const char *dir,
                            const char *lora_dir, struct uf_hf_extra *extra, int flags) {
    struct uf_model_config c;
    if (load_config(dir, &c, extra)) return -1;
    struct uf_hf_lora l;
    if (lora_dir && uf_hf_lora_load(lora_dir, &c, &l)) return -1;
    int rc = uf_model_init(m, dev, &c, 0, flags | UF_MODEL_NO_INIT);
    if (rc == 0 && load_weights(dir, &c, NULL, m->sv, lora_dir ? &l : NULL)) {
        uf_model_free(m);
        rc = -1;
    }
    if (lora_dir) uf_hf_lora_free(&l);
    if (rc == 0) uf_model_params_written(m);
    return rc;
}

static int model_lora(struct uf_model *m, struct uf_hf_lora *l) {
    if (m->lora.rank <= 0) return 0;
    l->rank = m->lora.rank, l->alpha = m->lora.alpha, l->targets = m->lora.targets;
    l->params = uf_malloc((size_t)UF_MAX(1, uf_ref_lora_numel(&m->cfg, l->rank, l->targets)) *
                          sizeof(float));
    uf_model_lora_save(m, l->params);
    return 1;
}

int uf_hf_model_save(struct uf_model *m, const char *dir, const struct uf_hf_extra *extra,
                     enum uf_st_dtype dtype, const char *tokenizer_from) {
    float *p = uf_malloc((size_t)m->numel * sizeof *p);
    uf_model_save_params(m, p);
    struct uf_hf_lora l;
    if (!m->lora_merged && model_lora(m, &l)) {
        uf_hf_lora_merge(&m->cfg, p, &l);
        uf_hf_lora_free(&l);
    }
    int rc = uf_hf_save(dir, &m->cfg, extra, p, dtype, tokenizer_from);
    free(p);
    return rc;
}

int uf_hf_model_save_lora(struct uf_model *m, const char *dir, const char *base_model) {
    struct uf_hf_lora l;
    if (!model_lora(m, &l)) return uf_fail("export adapter %s: the model has no LoRA adapter", dir);
    int rc = uf_hf_lora_save(dir, &m->cfg, l.rank, l.alpha, l.targets, l.params, base_model);
    uf_hf_lora_free(&l);
    return rc;
}

int uf_hf_model_load_lora(struct uf_model *m, const char *dir, float dropout) {
    struct uf_hf_lora l;
    if (uf_hf_lora_load(dir, &m->cfg, &l)) return -1;
    struct uf_lora_config lc = {.rank = l.rank, .alpha = l.alpha, .dropout = dropout,
                                .targets = l.targets};
    int rc = uf_model_lora_init(m, &lc, 0);
    if (rc == 0) uf_model_lora_load(m, l.params);
    uf_hf_lora_free(&l);
    return rc;
}
