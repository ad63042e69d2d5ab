/* plan_data.c: see plan_data.h (the recipe's dataset resolver: world splits, files, adapters,
 * then take / skip / sample). */
#include "data/plan_data.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/mixture.h"
#include "data/world.h"

/* Worlds are generated once per seed and size set, then shared. */
static struct world_cache {
    uint64_t key;
    struct uf_world w;
    struct world_cache *next;
} *worlds;

static struct uf_world *world_get(const struct uf_plan_world *ws) {
    struct uf_world_sizes s = uf_world_sizes_default();
    uint64_t seed = ws->seed;
    s.task_train = ws->task_rows;
    s.lookup_train = ws->lookup_rows;
    s.corpus = ws->corpus_rows;
    s.task_eval = ws->eval_rows;
    uint64_t key = uf_hash64(&s, sizeof s, uf_hash64(&seed, sizeof seed, UF_HASH_SEED));
    for (struct world_cache *c = worlds; c; c = c->next)
        if (c->key == key) return &c->w;
    struct world_cache *c = uf_calloc(1, sizeof *c);
    if (uf_world_generate(seed, s, &c->w)) {
        free(c);
        return NULL;
    }
    c->key = key;
    c->next = worlds;
    worlds = c;
    return &c->w;
}

static int apply_ops(const struct uf_plan_dataset *spec, struct uf_dataset *d) {
    for (int i = 0; i < spec->n_ops; i++) {
        const struct uf_plan_op *op = &spec->ops[i];
        int64_t n = op->n;
        struct uf_dataset out;
        uf_dataset_init(&out, d->name);
        if (op->kind == UF_PLAN_TAKE) {
            uf_dataset_take(d, n, &out);
        } else if (op->kind == UF_PLAN_SKIP) {
            for (int64_t r = n; r < d->n; r++) uf_dataset_add(&out, &d->rows[r]);
        } else if (op->kind == UF_PLAN_CONCAT) {
            struct uf_dataset other;
            uf_dataset_append(&out, d);
            if (uf_data_load_plan(op->data, &other)) {
                uf_dataset_free(&out);
                return uf_fail_prefix("concat to %s", d->name);
            }
            uf_dataset_append(&out, &other);
            uf_dataset_free(&other);
        } else if (uf_dataset_sample(d, n, op->seed, 0, &out, NULL)) {
            uf_dataset_free(&out);
            return uf_fail_prefix("sample(%lld) of %s", (long long)n, d->name);
        }
        uf_dataset_free(d);
        *d = out;
    }
    return 0;
}

static int load_dataset(const struct uf_plan_dataset *spec, struct uf_dataset *out);

/* On failure `out` is freed (zeroed: freeing it again is harmless). */
int uf_data_load_plan(const struct uf_plan_dataset *spec, struct uf_dataset *out) {
    if (load_dataset(spec, out) == 0) return 0;
    uf_dataset_free(out);
    return -1;
}

static int load_dataset(const struct uf_plan_dataset *spec, struct uf_dataset *out) {
    uf_dataset_init(out, "dataset");
    int rc = 0;
    if (spec->source == UF_PLAN_WORLD) {
        struct uf_world *w = world_get(&spec->world);
        if (!w) return -1;
        struct uf_dataset *d = uf_world_split(w, spec->split);
        if (!d) return uf_fail("the default world has no split '%s'", spec->split);
        uf_dataset_append(out, d);
        free(out->name);
        out->name = uf_sprintf("world.%s", spec->split);
    } else if (spec->source == UF_PLAN_ADAPTER) {
        struct uf_data_stats st;
        rc = uf_data_read_adapter(spec->adapter, spec->path, spec->on_bad_skip ? UF_ON_BAD_SKIP : UF_ON_BAD_FAIL,
                                  out, &st);
        if (rc == 0 && st.skipped)
            uf_log(1, "%s: skipped %lld bad row(s), first: %s", spec->path, (long long)st.skipped, st.first_bad);
    } else {
        struct uf_data_opts o;
        uf_data_opts_init(&o);
        if (spec->fields.prompt) o.fields.prompt = spec->fields.prompt;
        if (spec->fields.input) o.fields.input = spec->fields.input;
        if (spec->fields.response) o.fields.response = spec->fields.response;
        if (spec->fields.label) o.fields.label = spec->fields.label;
        if (spec->fields.messages) o.fields.messages = spec->fields.messages;
        if (spec->fields.category) o.fields.category = spec->fields.category;
        if (uf_example_kind_parse(spec->kind, &o.kind)) return uf_fail("%s: unknown kind '%s'", spec->path, spec->kind);
        o.on_bad = spec->on_bad_skip ? UF_ON_BAD_SKIP : UF_ON_BAD_FAIL;
        struct uf_data_stats st;
        rc = uf_data_read(spec->path, &o, out, &st);
        if (rc == 0 && st.skipped)
            uf_log(1, "%s: skipped %lld bad row(s), first: %s", spec->path, (long long)st.skipped, st.first_bad);
    }
    if (rc) return -1;
    if (spec->source != UF_PLAN_WORLD) { /* name a file "DIR_STEM" (gsm8k/test.jsonl -> gsm8k_test) */
        const char *path = spec->path, *slash = strrchr(path, '/');
        const char *stem = slash ? slash + 1 : path, *dir = path;
        if (slash) {
            for (dir = slash; dir > path && dir[-1] != '/'; dir--) {}
        }
        size_t nd = slash ? (size_t)(slash - dir) : 0, ns = strcspn(stem, ".");
        free(out->name);
        out->name = nd ? uf_sprintf("%.*s_%.*s", (int)nd, dir, (int)ns, stem)
                       : uf_sprintf("%.*s", (int)ns, stem);
    }
    return apply_ops(spec, out);
}

