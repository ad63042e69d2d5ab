/* formats/plan.c: the plan JSON into typed structs (see plan.h). The only reader of the plan's
 * JSON keys: lua/unforget sets every key it defaults, so a missing one is an error here. */
#include "formats/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- allocations owned by the plan -------------------------------------------------------- */
struct plan_mem {
    void **p;
    size_t n, cap;
};

static void *palloc(struct uf_plan *pl, size_t count, size_t size) {
    void *x = uf_calloc(count ? count : 1, size);
    if (!pl) return x;
    struct plan_mem *m = pl->mem;
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->p = uf_realloc(m->p, m->cap * sizeof *m->p);
    }
    m->p[m->n++] = x;
    return x;
}

/* ---- the one set of key readers -------------------------------------------------------------- */
static const cJSON *item(const cJSON *o, const char *k) {
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static int num(const cJSON *o, const char *k, const char *where, double *out) {
    const cJSON *v = item(o, k);
    *out = 0;
    if (!cJSON_IsNumber(v)) return uf_fail("plan: %s: '%s' must be a number (the recipe library sets it)", where, k);
    *out = v->valuedouble;
    return 0;
}

static int i64(const cJSON *o, const char *k, const char *where, int64_t *out) {
    double d = 0;
    if (num(o, k, where, &d)) return -1;
    if (d != floor(d) || fabs(d) > 9007199254740992.0)
        return uf_fail("plan: %s: '%s' must be an integer, got %g", where, k, d);
    *out = (int64_t)d;
    return 0;
}

static int i32(const cJSON *o, const char *k, const char *where, int *out) {
    int64_t v = 0;
    if (i64(o, k, where, &v)) return -1;
    if (v < -2147483647 || v > 2147483647) return uf_fail("plan: %s: '%s' = %lld is out of range", where, k, (long long)v);
    *out = (int)v;
    return 0;
}

static int u64(const cJSON *o, const char *k, const char *where, uint64_t *out) {
    int64_t v = 0;
    if (i64(o, k, where, &v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int f32(const cJSON *o, const char *k, const char *where, float *out) {
    double d = 0;
    if (num(o, k, where, &d)) return -1;
    *out = (float)d;
    return 0;
}

static int boolean(const cJSON *o, const char *k, const char *where, int *out) {
    const cJSON *v = item(o, k);
    *out = 0;
    if (!cJSON_IsBool(v)) return uf_fail("plan: %s: '%s' must be true or false (the recipe library sets it)", where, k);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int str(const cJSON *o, const char *k, const char *where, const char **out) {
    const cJSON *v = item(o, k);
    *out = NULL;
    if (!cJSON_IsString(v)) return uf_fail("plan: %s: '%s' must be a string (the recipe library sets it)", where, k);
    *out = v->valuestring;
    return 0;
}

/* an optional string: NULL when absent */
static const char *opt_str(const cJSON *o, const char *k) {
    const cJSON *v = item(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_kind(const cJSON *o, const char *kind) {
    const char *k = opt_str(o, "_kind");
    return k && strcmp(k, kind) == 0;
}

/* ---- datasets -------------------------------------------------------------------------------- */
static int dataset(struct uf_plan *pl, const cJSON *j, const char *where, struct uf_plan_dataset *d) {
    memset(d, 0, sizeof *d);
    d->json = j;
    if (!is_kind(j, "dataset")) return uf_fail("plan: %s: expected a dataset", where);
    const char *src = NULL;
    if (str(j, "source", where, &src)) return -1;
    if (strcmp(src, "world") == 0) {
        d->source = UF_PLAN_WORLD;
        const cJSON *w = item(j, "world");
        if (str(j, "split", where, &d->split) || u64(w, "seed", where, &d->world.seed) ||
            i64(w, "task_rows", where, &d->world.task_rows) || i64(w, "eval_rows", where, &d->world.eval_rows) ||
            i64(w, "corpus_rows", where, &d->world.corpus_rows) || i64(w, "lookup_rows", where, &d->world.lookup_rows))
            return -1;
    } else if (strcmp(src, "file") == 0 || strcmp(src, "adapter") == 0) {
        d->source = src[0] == 'f' ? UF_PLAN_FILE : UF_PLAN_ADAPTER;
        const char *on_bad = NULL;
        if (str(j, "path", where, &d->path) || str(j, "kind", where, &d->kind) ||
            str(j, "on_bad", where, &on_bad))
            return -1;
        d->on_bad_skip = strcmp(on_bad, "skip") == 0;
        if (d->source == UF_PLAN_ADAPTER && str(j, "adapter", where, &d->adapter)) return -1;
        const cJSON *f = item(j, "fields");
        d->fields.prompt = opt_str(f, "prompt");
        d->fields.input = opt_str(f, "input");
        d->fields.response = opt_str(f, "response");
        d->fields.label = opt_str(f, "label");
        d->fields.messages = opt_str(f, "messages");
        d->fields.category = opt_str(f, "category");
    } else {
        return uf_fail("plan: %s: unknown dataset source '%s'", where, src);
    }
    const cJSON *ops = item(j, "ops"), *op;
    if (ops && !cJSON_IsArray(ops)) return uf_fail("plan: %s: 'ops' must be a list", where);
    d->ops = palloc(pl, (size_t)cJSON_GetArraySize(ops), sizeof *d->ops);
    cJSON_ArrayForEach(op, ops) {
        struct uf_plan_op *o = &d->ops[d->n_ops++];
        const char *name = NULL;
        if (str(op, "op", where, &name)) return -1;
        if (strcmp(name, "concat") == 0) {
            o->kind = UF_PLAN_CONCAT;
            o->data = palloc(pl, 1, sizeof *o->data);
            if (dataset(pl, item(op, "data"), where, o->data)) return -1;
            continue;
        }
        if (i64(op, "n", where, &o->n)) return -1;
        if (strcmp(name, "take") == 0) o->kind = UF_PLAN_TAKE;
        else if (strcmp(name, "skip") == 0) o->kind = UF_PLAN_SKIP;
        else if (strcmp(name, "sample") == 0) {
            o->kind = UF_PLAN_SAMPLE;
            if (u64(op, "seed", where, &o->seed)) return -1;
        } else {
            return uf_fail("plan: %s: unknown dataset operation '%s'", where, name);
        }
    }
    return 0;
}

int uf_plan_dataset_parse(const cJSON *j, const char *where, struct uf_plan_dataset *d) {
    int rc = dataset(NULL, j, where, d);
    if (rc) uf_plan_dataset_free(d);
    return rc;
}

void uf_plan_dataset_free(struct uf_plan_dataset *d) {
    for (int i = 0; d->ops && i < d->n_ops; i++)
        if (d->ops[i].kind == UF_PLAN_CONCAT && d->ops[i].data) {
            uf_plan_dataset_free(d->ops[i].data);
            free(d->ops[i].data);
        }
    free(d->ops);
    d->ops = NULL;
    d->n_ops = 0;
}

/* ---- node parts ------------------------------------------------------------------------------ */
static int model(struct uf_plan *pl, const cJSON *j, const char *where, const struct uf_plan_model **out) {
    *out = NULL;
    if (!j) return 0;
    struct uf_plan_model *m = palloc(pl, 1, sizeof *m);
    const char *type = NULL;
    if (str(j, "type", where, &type)) return -1;
    if (strcmp(type, "model.new") == 0) {
        m->type = UF_PLAN_MODEL_NEW;
        if (str(j, "family", where, &m->family) || i32(j, "d_model", where, &m->d_model) ||
            i32(j, "layers", where, &m->layers) || i32(j, "heads", where, &m->heads) ||
            i32(j, "kv_heads", where, &m->kv_heads) || i32(j, "head_dim", where, &m->head_dim) ||
            i32(j, "d_ff", where, &m->d_ff) || i32(j, "vocab", where, &m->vocab) ||
            i32(j, "max_seq", where, &m->max_seq) || u64(j, "seed", where, &m->seed))
            return -1;
    } else if (strcmp(type, "hf") == 0 || strcmp(type, "checkpoint") == 0) {
        m->type = type[0] == 'h' ? UF_PLAN_MODEL_HF : UF_PLAN_MODEL_CHECKPOINT;
        if (str(j, "path", where, &m->path)) return -1;
    } else {
        return uf_fail("plan: %s: unknown model type '%s'", where, type);
    }
    *out = m;
    return 0;
}

static int optim(const cJSON *j, const char *where, struct uf_plan_optim *o) {
    memset(o, 0, sizeof *o);
    if (f32(j, "lr", where, &o->lr) || f32(j, "beta1", where, &o->beta1) || f32(j, "beta2", where, &o->beta2) ||
        f32(j, "eps", where, &o->eps) || f32(j, "weight_decay", where, &o->weight_decay) ||
        f32(j, "clip", where, &o->clip) || str(j, "clip_on", where, &o->clip_on) ||
        f32(j, "warmup", where, &o->warmup) ||
        num(j, "epochs", where, &o->epochs) || i64(j, "steps", where, &o->steps) ||
        i32(j, "batch", where, &o->batch) || i32(j, "micro_batch", where, &o->micro_batch) ||
        i32(j, "max_len", where, &o->max_len) || str(j, "schedule", where, &o->schedule) ||
        u64(j, "seed", where, &o->seed) || i64(j, "checkpoint_every", where, &o->checkpoint_every) ||
        boolean(j, "checkpointing", where, &o->checkpointing) || boolean(j, "bf16", where, &o->bf16) ||
        str(j, "on_nonfinite", where, &o->on_nonfinite))
        return -1;
    return 0;
}

static int method(struct uf_plan *pl, const cJSON *j, const char *where, struct uf_plan_method *m) {
    if (str(j, "type", where, &m->type)) return -1;
    m->cfg = j;
    int n = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, j) n += is_kind(f, "dataset");
    m->dataset_keys = palloc(pl, (size_t)n, sizeof *m->dataset_keys);
    m->datasets = palloc(pl, (size_t)n, sizeof *m->datasets);
    cJSON_ArrayForEach(f, j) {
        if (!is_kind(f, "dataset")) continue;
        char w[256];
        snprintf(w, sizeof w, "%s method %s.%s", where, m->type, f->string);
        if (dataset(pl, f, w, &m->datasets[m->n_datasets])) return -1;
        m->dataset_keys[m->n_datasets++] = f->string;
    }
    return 0;
}

static int eval(struct uf_plan *pl, const cJSON *j, const char *where, struct uf_plan_eval *e) {
    if (str(j, "type", where, &e->type) || dataset(pl, item(j, "data"), where, &e->data) ||
        i32(j, "max_new_tokens", where, &e->max_new_tokens) || i64(j, "n", where, &e->n) ||
        str(j, "judge", where, &e->judge))
        return -1;
    e->guard = opt_str(j, "guard");
    e->metric = opt_str(j, "metric");
    const cJSON *kws = item(j, "keywords"), *k;
    if (kws && !cJSON_IsArray(kws)) return uf_fail("plan: %s: eval %s: keywords must be a list of strings", where, e->type);
    e->keywords = palloc(pl, (size_t)cJSON_GetArraySize(kws), sizeof *e->keywords);
    cJSON_ArrayForEach(k, kws) {
        if (!cJSON_IsString(k)) return uf_fail("plan: %s: eval %s: keywords must be strings", where, e->type);
        e->keywords[e->n_keywords++] = k->valuestring;
    }
    return 0;
}

static int node(struct uf_plan *pl, const cJSON *j, int is_stage, struct uf_plan_node *n) {
    n->is_stage = is_stage;
    n->json = j;
    n->name = opt_str(j, "name");
    char where[200];
    snprintf(where, sizeof where, "%s %s", is_stage ? "stage" : "run", n->name ? n->name : "?");
    if (!n->name) return uf_fail("plan: %s: no name", where);
    if (model(pl, item(j, "model"), where, &n->model) || model(pl, item(j, "base"), where, &n->base))
        return -1;
    const cJSON *from = item(j, "from");
    if (from && str(from, "name", where, &n->from)) return -1;
    const cJSON *tk = item(j, "tokenizer");
    if (tk) {
        struct uf_plan_tokenizer *t = palloc(pl, 1, sizeof *t);
        const char *type = NULL;
        if (str(tk, "type", where, &type)) return -1;
        t->train = strcmp(type, "tokenizer.train") == 0;
        if (t->train ? dataset(pl, item(tk, "corpus"), where, &t->corpus) || i32(tk, "vocab", where, &t->vocab)
                     : str(tk, "path", where, &t->path))
            return -1;
        n->tokenizer = t;
    }
    if (str(j, "template", where, &n->template_name)) return -1;
    const cJSON *data = item(j, "data");
    if (data) {
        struct uf_plan_data *d = palloc(pl, 1, sizeof *d);
        if (is_kind(data, "mixture")) {
            d->is_mixture = 1;
            char w[240];
            snprintf(w, sizeof w, "%s mix", where);
            if (dataset(pl, item(data, "task"), w, &d->task) || num(data, "p", w, &d->p) ||
                i64(data, "n", w, &d->n) || u64(data, "seed", w, &d->seed))
                return -1;
            if (item(data, "poison")) {
                d->poison = palloc(pl, 1, sizeof *d->poison);
                if (dataset(pl, item(data, "poison"), w, d->poison)) return -1;
            }
        } else if (dataset(pl, data, where, &d->ds)) {
            return -1;
        }
        n->data = d;
    }
    if (item(j, "pretrain")) {
        struct uf_plan_dataset *d = palloc(pl, 1, sizeof *d);
        if (dataset(pl, item(j, "pretrain"), where, d)) return -1;
        n->pretrain = d;
    }
    if (optim(item(j, "optim"), where, &n->optim)) return -1;
    if (item(j, "pretrain_optim")) {
        struct uf_plan_optim *o = palloc(pl, 1, sizeof *o);
        if (optim(item(j, "pretrain_optim"), where, o)) return -1;
        n->pretrain_optim = o;
    }
    const cJSON *ms = item(j, "methods"), *x;
    if (ms && !cJSON_IsArray(ms)) return uf_fail("plan: %s: methods must be a list", where);
    n->methods = palloc(pl, (size_t)cJSON_GetArraySize(ms), sizeof *n->methods);
    cJSON_ArrayForEach(x, ms) if (method(pl, x, where, &n->methods[n->n_methods++])) return -1;
    const cJSON *lo = item(j, "lora");
    if (lo) {
        struct uf_plan_lora *l = palloc(pl, 1, sizeof *l);
        if (i32(lo, "r", where, &l->r) || f32(lo, "alpha", where, &l->alpha) ||
            f32(lo, "dropout", where, &l->dropout) || str(lo, "targets", where, &l->targets))
            return -1;
        n->lora = l;
    }
    const cJSON *evs = item(j, "eval");
    if (evs && !cJSON_IsArray(evs)) return uf_fail("plan: %s: eval must be a list", where);
    n->evals = palloc(pl, (size_t)cJSON_GetArraySize(evs), sizeof *n->evals);
    cJSON_ArrayForEach(x, evs) if (eval(pl, x, where, &n->evals[n->n_evals++])) return -1;
    const cJSON *tags = item(j, "tags"); /* free-form ({} is encoded as []) */
    n->tags.method = opt_str(tags, "method");
    n->tags.model = opt_str(tags, "model");
    n->tags.task = opt_str(tags, "task");
    n->tags.has_p = cJSON_IsNumber(item(tags, "p"));
    if (n->tags.has_p) n->tags.p = item(tags, "p")->valuedouble;
    n->allow_overlap = cJSON_IsTrue(item(j, "allow_overlap"));
    const cJSON *dj = item(j, "derta");
    if (dj) {
        struct uf_plan_derta *d = palloc(pl, 1, sizeof *d);
        char w[240];
        snprintf(w, sizeof w, "%s derta", where);
        if (!is_stage) return uf_fail("plan: %s: derta is an option of uf.stage, not of uf.run", where);
        if (boolean(dj, "prefix", w, &d->prefix) || boolean(dj, "rto", w, &d->rto) ||
            num(dj, "rto_weight", w, &d->rto_weight) || u64(dj, "seed", w, &d->seed))
            return -1;
        if (item(dj, "responses")) {
            struct uf_plan_dataset *r = palloc(pl, 1, sizeof *r);
            if (dataset(pl, item(dj, "responses"), w, r)) return -1;
            d->responses = r;
        }
        n->derta = d;
    }
    n->tags.has_seed = cJSON_IsNumber(item(tags, "seed"));
    if (n->tags.has_seed) n->tags.seed = item(tags, "seed")->valuedouble;
    return 0;
}

/* ---- tuning studies (uf.tune) ------------------------------------------------------------------ */
/* a list of numbers into plan memory; an empty Lua table is encoded as [] */
static int num_list(struct uf_plan *p, const cJSON *a, const char *where, const double **out, int *n) {
    if (!cJSON_IsArray(a)) return uf_fail("plan: %s must be a list of numbers", where);
    double *v = palloc(p, (size_t)cJSON_GetArraySize(a), sizeof *v);
    int k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (!cJSON_IsNumber(x)) return uf_fail("plan: %s must be a list of numbers", where);
        v[k++] = x->valuedouble;
    }
    *out = v;
    *n = k;
    return 0;
}

static int tunes_parse(struct uf_plan *p, const cJSON *tunes) {
    p->tunes = palloc(p, (size_t)cJSON_GetArraySize(tunes), sizeof *p->tunes);
    const cJSON *t;
    cJSON_ArrayForEach(t, tunes) {
        struct uf_plan_tune *u = &p->tunes[p->n_tunes++];
        const char *where = "tune";
        if (str(t, "name", where, &u->name)) return -1;
        where = u->name;
        if (str(t, "reference", where, &u->reference) || str(t, "rule", where, &u->rule) ||
            i32(t, "n_test", where, &u->n_test) || i32(t, "n_val", where, &u->n_val))
            return -1;
        const cJSON *ms = item(t, "methods"), *rs = item(t, "runs"), *x;
        if (!cJSON_IsArray(ms) || !cJSON_IsArray(rs))
            return uf_fail("plan: tune %s: 'methods' and 'runs' must be lists", where);
        u->methods = palloc(p, (size_t)cJSON_GetArraySize(ms), sizeof *u->methods);
        cJSON_ArrayForEach(x, ms) {
            struct uf_plan_tune_method *m = &u->methods[u->n_methods++];
            if (str(x, "name", where, &m->name)) return -1;
            const cJSON *kn = item(x, "knobs"), *gr = item(x, "grid"), *y;
            if (!cJSON_IsArray(kn) || !cJSON_IsArray(gr) || cJSON_GetArraySize(kn) != cJSON_GetArraySize(gr))
                return uf_fail("plan: tune %s: method %s: 'knobs' and 'grid' must be lists of one length", where, m->name);
            int nk = cJSON_GetArraySize(kn);
            m->knobs = palloc(p, (size_t)nk, sizeof *m->knobs);
            m->n_values = palloc(p, (size_t)nk, sizeof *m->n_values);
            m->values = palloc(p, (size_t)nk, sizeof *m->values);
            cJSON_ArrayForEach(y, kn) {
                if (!cJSON_IsString(y)) return uf_fail("plan: tune %s: method %s: knobs must be names", where, m->name);
                m->knobs[m->n_knobs] = y->valuestring;
                if (num_list(p, cJSON_GetArrayItem(gr, m->n_knobs), where, &m->values[m->n_knobs],
                             &m->n_values[m->n_knobs]))
                    return -1;
                m->n_knobs++;
            }
        }
        u->runs = palloc(p, (size_t)cJSON_GetArraySize(rs), sizeof *u->runs);
        cJSON_ArrayForEach(x, rs) {
            struct uf_plan_tune_run *r = &u->runs[u->n_runs++];
            const char *method = NULL;
            int nv = 0;
            if (str(x, "run", where, &r->run) || str(x, "method", where, &method) ||
                str(x, "setting", where, &r->setting) || i64(x, "seed", where, &r->seed) ||
                num_list(p, item(x, "values"), where, &r->values, &nv))
                return -1;
            r->method = -1;
            for (int i = 0; i < u->n_methods; i++)
                if (strcmp(u->methods[i].name, method) == 0) r->method = i;
            if (r->method < 0 || nv != u->methods[r->method].n_knobs)
                return uf_fail("plan: tune %s: run %s: unknown method %s or wrong number of knob values", where,
                               r->run, method);
        }
    }
    return 0;
}

int uf_plan_parse(cJSON *json, struct uf_plan *p) {
    memset(p, 0, sizeof *p);
    p->json = json;
    p->mem = uf_calloc(1, sizeof(struct plan_mem));
    const cJSON *stages = item(json, "stages"), *runs = item(json, "runs"), *x;
    if (!cJSON_IsArray(stages) || !cJSON_IsArray(runs)) {
        uf_plan_free(p);
        return uf_fail("plan: expected {\"stages\": [...], \"runs\": [...]}");
    }
    p->stages = palloc(p, (size_t)cJSON_GetArraySize(stages), sizeof *p->stages);
    p->runs = palloc(p, (size_t)cJSON_GetArraySize(runs), sizeof *p->runs);
    cJSON_ArrayForEach(x, stages) if (node(p, x, 1, &p->stages[p->n_stages++])) goto fail;
    cJSON_ArrayForEach(x, runs) if (node(p, x, 0, &p->runs[p->n_runs++])) goto fail;
    p->is_module = cJSON_IsTrue(item(json, "module"));
    const cJSON *sl = item(json, "slurm");
    if (sl) {
        struct uf_plan_slurm *o = palloc(p, 1, sizeof *o);
        o->partition = opt_str(sl, "partition");
        o->account = opt_str(sl, "account");
        o->time = opt_str(sl, "time");
        o->mem = opt_str(sl, "mem");
        o->gres = opt_str(sl, "gres");
        const char *ik[3] = {"cpus_per_task", "gpus_per_task", "array_limit"};
        int *iv[3] = {&o->cpus_per_task, &o->gpus_per_task, &o->array_limit};
        for (int i = 0; i < 3; i++)
            if (item(sl, ik[i]) && i32(sl, ik[i], "slurm", iv[i])) goto fail;
        const cJSON *sb = item(sl, "sbatch");
        o->sbatch = palloc(p, (size_t)cJSON_GetArraySize(sb), sizeof *o->sbatch);
        cJSON_ArrayForEach(x, sb) {
            if (!cJSON_IsString(x)) {
                uf_fail("plan: slurm: sbatch must be a list of strings");
                goto fail;
            }
            o->sbatch[o->n_sbatch++] = x->valuestring;
        }
        p->slurm = o;
    }
    const cJSON *tunes = item(json, "tunes");
    if (tunes && (!cJSON_IsArray(tunes) || tunes_parse(p, tunes))) {
        if (!cJSON_IsArray(tunes)) uf_fail("plan: tunes must be a list");
        goto fail;
    }
    return 0;
fail:
    uf_plan_free(p);
    return -1;
}

void uf_plan_free(struct uf_plan *p) {
    struct plan_mem *m = p->mem;
    if (m) {
        for (size_t i = 0; i < m->n; i++) free(m->p[i]);
        free(m->p);
        free(m);
    }
    cJSON_Delete(p->json);
    memset(p, 0, sizeof *p);
}

const struct uf_plan_node *uf_plan_stage(const struct uf_plan *p, const char *name) {
    for (int i = 0; name && i < p->n_stages; i++)
        if (strcmp(p->stages[i].name, name) == 0) return &p->stages[i];
    return NULL;
}

const struct uf_plan_model *uf_plan_node_model(const struct uf_plan *p, const struct uf_plan_node *n,
                                               const struct uf_plan_tokenizer **tok) {
    *tok = NULL;
    for (int depth = 0; n && depth < 16; depth++) {
        *tok = n->tokenizer;
        if (n->model) return n->model;
        n = uf_plan_stage(p, n->from);
    }
    return NULL;
}
