/* methods/common.c: see common.h. */
#include "methods/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The method's table comes from lua/unforget with every key of its schema set (the schema holds
 * the defaults); a missing key is a caller that bypassed the library: a fatal internal error. */
static const cJSON *mcfg_key(const struct uf_method *m, const char *key, cJSON_bool (*is)(const cJSON *),
                             const char *what) {
    const cJSON *v = m->cfg ? cJSON_GetObjectItemCaseSensitive(m->cfg, key) : NULL;
    if (!is(v))
        uf_fatal(1, "method '%s': key '%s' is not %s in its table (lua/unforget's schema sets every key)",
                 m->ops ? m->ops->name : "?", key, what);
    return v;
}

double uf_mcfg_num(const struct uf_method *m, const char *key) {
    return mcfg_key(m, key, cJSON_IsNumber, "a number")->valuedouble;
}

const char *uf_mcfg_str(const struct uf_method *m, const char *key) {
    return mcfg_key(m, key, cJSON_IsString, "a string")->valuestring;
}

const char *uf_mcfg_str_opt(const struct uf_method *m, const char *key) {
    const cJSON *v = m->cfg ? cJSON_GetObjectItemCaseSensitive(m->cfg, key) : NULL;
    if (!v || cJSON_IsNull(v)) return NULL;
    return mcfg_key(m, key, cJSON_IsString, "a string")->valuestring;
}

int uf_mcfg_bool(const struct uf_method *m, const char *key) {
    return cJSON_IsTrue(mcfg_key(m, key, cJSON_IsBool, "a boolean"));
}

int uf_mcfg_dataset(struct uf_trainer *tr, const struct uf_method *m, const char *key,
                    struct uf_dataset *out) {
    const cJSON *v = m->cfg ? cJSON_GetObjectItemCaseSensitive(m->cfg, key) : NULL;
    if (!v || cJSON_IsNull(v))
        return uf_fail("method '%s': '%s' is required (a dataset, e.g. world.safety:sample(200))",
                       m->ops->name, key);
    struct uf_plan_dataset spec;
    char where[128];
    snprintf(where, sizeof where, "method '%s' key '%s'", m->ops->name, key);
    if (uf_plan_dataset_parse(v, where, &spec) != 0) return -1;
    int rc = uf_trainer_load_dataset(tr, &spec, out);
    uf_plan_dataset_free(&spec);
    if (rc != 0) return uf_fail_prefix("method '%s': loading '%s'", m->ops->name, key);
    if (out->n == 0) {
        uf_dataset_free(out);
        return uf_fail("method '%s': dataset '%s' is empty; give it some rows", m->ops->name, key);
    }
    return 0;
}

int uf_mcfg_rows(const struct uf_trainer *tr, const struct uf_method *m) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(m->cfg, "batch"); /* refresh has none */
    int r = cJSON_IsNumber(b) ? (int)b->valuedouble : 0;
    return r > 0 ? r : (tr->hp.batch > 0 ? tr->hp.batch : 1);
}

int uf_mn_micro(const struct uf_trainer *tr) {
    int b = tr->hp.batch, mb = tr->hp.micro_batch;
    if (mb <= 0 || b <= 0 || mb >= b) return 1;
    return (b + mb - 1) / mb;
}

int uf_mdraw_make(struct uf_trainer *tr, const struct uf_dataset *buf, int rows, struct uf_mdraw *d) {
    memset(d, 0, sizeof *d);
    if (rows <= 0 || buf->n == 0) return uf_fail("replay draw: %d rows from a buffer of %lld", rows, (long long)buf->n);
    int64_t *idx = uf_malloc((size_t)rows * sizeof *idx);
    if (uf_sample_indices(buf->n, rows, uf_rng_u64(&tr->rng), 1, idx, NULL) != 0) {
        free(idx);
        return -1;
    }
    int chunk = tr->hp.micro_batch > 0 && tr->hp.micro_batch < rows ? tr->hp.micro_batch : rows;
    d->n = (rows + chunk - 1) / chunk;
    d->b = uf_calloc((size_t)d->n, sizeof *d->b);
    for (int c = 0; c < d->n; c++) {
        int n = UF_MIN(chunk, rows - c * chunk);
        if (uf_trainer_make_batch(tr, buf, idx + (size_t)c * chunk, n, &d->b[c]) != 0) {
            free(idx);
            d->n = c;
            uf_mdraw_free(d);
            return -1;
        }
        d->n_masked += d->b[c].n_masked;
    }
    free(idx);
    if (d->n_masked == 0) {
        static int warned;
        if (!warned++)
            uf_log(1, "replay: a draw of %d rows from %s has no response tokens (are the rows cut by "
                      "max_len = %d?); it adds nothing", rows, buf->name ? buf->name : "the buffer",
                   tr->hp.max_len);
    }
    return 0;
}

void uf_mdraw_free(struct uf_mdraw *d) {
    for (int c = 0; c < d->n; c++) uf_train_batch_free(&d->b[c]);
    free(d->b);
    memset(d, 0, sizeof *d);
}

void uf_mbatch(const struct uf_train_batch *b, int with_targets, struct uf_model_batch *mb) {
    memset(mb, 0, sizeof *mb);
    mb->B = b->B;
    mb->T = b->T;
    mb->tokens = b->tokens;
    mb->lengths = b->lengths;
    if (with_targets) {
        mb->targets = b->targets;
        mb->loss_mask = b->mask;
    }
}

struct uf_tensor uf_mterm(struct uf_trainer *tr, int slot) {
    struct uf_tensor v;
    uf_tensor_view(&v, &tr->terms, "term", (size_t)slot, 1, (int64_t[]){1});
    return v;
}

int uf_mce_backprop(struct uf_trainer *tr, const struct uf_train_batch *b, float weight, int slot) {
    struct uf_model_batch mb;
    uf_mbatch(b, 1, &mb);
    if (b->n_masked == 0) return 0; /* nothing to learn from */
    if (uf_model_forward(tr->model, &mb) != 0) return -1;
    if (uf_model_backward_ex(tr->model, weight, NULL, NULL) != 0) return -1;
    if (slot >= 0) {
        struct uf_tensor t = uf_mterm(tr, slot);
        uf_tensor_axpby(&t, weight, &tr->model->loss, 1.0f);
    }
    return 0;
}

void uf_mensure(struct uf_tensor *t, struct uf_device *d, const char *name, int64_t n) {
    if (t->buf && t->numel >= n) return;
    if (t->buf) uf_tensor_free(t);
    uf_tensor_init(t, d, name, UF_F32, 1, (int64_t[]){n > 0 ? n : 1});
}

struct uf_tensor uf_mview(const struct uf_tensor *base, const char *name, int64_t rows, int64_t cols) {
    struct uf_tensor v;
    uf_tensor_view(&v, base, name, 0, 2, (int64_t[]){rows, cols});
    return v;
}

int uf_mneed_anchor(struct uf_trainer *tr, const char *method) {
    return uf_trainer_anchor(tr) ? 0 : uf_fail("%s: no start weights (uf_trainer_anchor failed)", method);
}

int uf_mneed_teacher(struct uf_trainer *tr, const char *method) {
    return uf_trainer_teacher(tr) ? 0 : uf_fail("%s: no frozen teacher (uf_trainer_teacher failed)", method);
}

size_t uf_mplan_trainable_bytes(const struct uf_memplan_in *in) {
    return in->lora_rank > 0 ? (size_t)uf_lora_numel(&in->cfg, in->lora_rank, in->lora_targets) * 4
                             : uf_mplan_params_bytes(in);
}

size_t uf_mplan_params_bytes(const struct uf_memplan_in *in) {
    return (size_t)uf_model_param_numel(&in->cfg) * 4;
}

int uf_method_fisher_cache_read(const char *path, float *host, int64_t P, const char *what) {
    size_t size = 0;
    char *cached = uf_cache_read(path, &size, what);
    if (!cached) return 0;
    /* the header is sound: the content must be a Fisher too (finite, >= 0) */
    const char *why = size != (size_t)P * sizeof(float) ? "wrong size" : NULL;
    for (int64_t i = 0; !why && i < P; i++) {
        float f;
        memcpy(&f, cached + (size_t)i * sizeof f, sizeof f);
        if (!isfinite(f) || f < 0) why = "a NaN, Inf or negative value";
    }
    if (why) uf_cache_discard(path, what, why);
    else memcpy(host, cached, size);
    free(cached);
    return why == NULL;
}
