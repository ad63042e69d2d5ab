/* cmd_check.c: `unforget check recipe.lua [--set k=v ...] [--json]`: evaluate the recipe,
 * validate every key (the Lua library does it, with recipe lines), check that the files it
 * names exist and parse (a malformed row: file:line), and print the plan: stages and runs with
 * model, data, methods, optimizer, eval, the model's parameter count and the device-memory plan
 * (memplan.h) of every stage and run whose model config is known (uf.model.new, or a uf.hf /
 * uf.checkpoint directory with a config.json). A plan that does not fit the device (--device,
 * or --device-mem GIB) is a problem: exit 1 naming the knob to turn. Trains nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/device.h"
#include "model/memplan.h"
#include "core/rundir.h"
#include "train/train.h"
#include "methods/methods.h"
#include "core/model_config.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "data/data.h"
#include "eval/tune.h"
#include "recipe.h"
#include "train/train.h"
#include "core/util.h"

static const char *or_dash(const char *s) { return s ? s : "-"; }

static void describe_dataset(const struct uf_plan_dataset *d, char *buf, size_t n) {
    size_t len = 0;
    if (d->source == UF_PLAN_WORLD)
        len = (size_t)snprintf(buf, n, "world(seed %llu).%s", (unsigned long long)d->world.seed, d->split);
    else if (d->source == UF_PLAN_ADAPTER)
        len = (size_t)snprintf(buf, n, "%s(%s)", d->adapter, d->path);
    else
        len = (size_t)snprintf(buf, n, "file(%s)", d->path);
    static const char *const op_names[] = {"take", "skip", "sample"};
    for (int i = 0; i < d->n_ops && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, ":%s(%lld)", op_names[d->ops[i].kind], (long long)d->ops[i].n);
}

/* Every dataset of a node: training data (or the mixture's parts), pre-training text, the
 * tokenizer's corpus, the methods' datasets, the evaluations' prompts. */
static int node_datasets(const struct uf_plan_node *t, const struct uf_plan_dataset **out, int max) {
    int n = 0;
#define ADD(d) do { if (n < max) out[n++] = (d); } while (0)
    if (t->data && !t->data->is_mixture) ADD(&t->data->ds);
    if (t->data && t->data->is_mixture) {
        ADD(&t->data->task);
        if (t->data->poison) ADD(t->data->poison);
    }
    if (t->pretrain) ADD(t->pretrain);
    if (t->derta && t->derta->responses) ADD(t->derta->responses);
    if (t->tokenizer && t->tokenizer->train) ADD(&t->tokenizer->corpus);
    for (int i = 0; i < t->n_methods; i++)
        for (int j = 0; j < t->methods[i].n_datasets; j++) ADD(&t->methods[i].datasets[j]);
    for (int i = 0; i < t->n_evals; i++) ADD(&t->evals[i].data);
#undef ADD
    return n;
}
#define MAX_NODE_DATASETS 256

/* Every file a dataset names must exist; returns the number of missing files. */
static int check_files(const struct uf_plan_node *t, const char *where) {
    const struct uf_plan_dataset *ds[MAX_NODE_DATASETS];
    int n = node_datasets(t, ds, MAX_NODE_DATASETS), missing = 0;
    for (int i = 0; i < n; i++) {
        if (ds[i]->source != UF_PLAN_WORLD && !uf_file_exists(ds[i]->path)) {
            fprintf(stderr, "  missing file: %s (%s)\n", ds[i]->path, where);
            missing++;
        }
    }
    if (t->model && t->model->type == UF_PLAN_MODEL_HF) {
        /* a Hugging Face folder: config.json and the safetensors headers must parse */
        const char *path = t->model->path;
        struct uf_model_config mc;
        struct uf_st_model st;
        if (!uf_file_exists(path)) {
            fprintf(stderr, "  missing model folder: %s (%s)\n", path, where);
            missing++;
        } else if (uf_hf_config_load(path, &mc, NULL) != 0 || uf_st_model_open(&st, path) != 0) {
            fprintf(stderr, "  bad model: %s\n", uf_error());
            missing++;
        } else {
            uf_st_model_free(&st);
        }
    }
    return missing;
}

/* Every file dataset is read once (distinct source, adapter, path, fields, kind, on_bad), so a
 * malformed row is reported as file:line before any training; returns the number of unreadable
 * files. */
static int check_rows(const struct uf_plan_node *t, char ***seen, int *n_seen) {
    const struct uf_plan_dataset *ds[MAX_NODE_DATASETS];
    int n = node_datasets(t, ds, MAX_NODE_DATASETS), bad = 0;
    for (int i = 0; i < n; i++) {
        const struct uf_plan_dataset *d = ds[i];
        if (d->source == UF_PLAN_WORLD || !uf_file_exists(d->path)) continue;
        char *k = uf_sprintf("%d|%s|%s|%s|%d|%s|%s|%s|%s|%s|%s", (int)d->source, or_dash(d->adapter),
                             d->path, or_dash(d->kind), d->on_bad_skip, or_dash(d->fields.prompt),
                             or_dash(d->fields.input), or_dash(d->fields.response), or_dash(d->fields.label),
                             or_dash(d->fields.messages), or_dash(d->fields.category));
        int found = 0;
        for (int j = 0; j < *n_seen && !found; j++) found = strcmp((*seen)[j], k) == 0;
        if (found) {
            free(k);
            continue;
        }
        *seen = uf_realloc(*seen, (size_t)(*n_seen + 1) * sizeof **seen);
        (*seen)[(*n_seen)++] = k;
        struct uf_dataset rows;
        if (uf_data_load_plan(d, &rows)) {
            fprintf(stderr, "  bad data: %s\n", uf_error());
            bad++;
        } else {
            if (rows.n == 0) { /* training or evaluating on nothing is never meant */
                fprintf(stderr, "  bad data: %s holds no rows\n", d->path ? d->path : "?");
                bad++;
            }
            uf_dataset_free(&rows);
        }
    }
    return bad;
}

/* ---- act roles: replay buffers, poison and harmful evaluations must not share acts ---------- */
struct act_set {
    char **s;
    int n;
};

static int act_set_has(const struct act_set *a, const char *k) {
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->s[i], k) == 0) return 1;
    return 0;
}

/* Adds the acts of a dataset spec (the row's "act" field, else its prompt); -1 when unreadable. */
static int act_set_add_data(struct act_set *a, const struct uf_plan_dataset *spec) {
    if (!spec) return 0;
    struct uf_dataset d;
    if (uf_data_load_plan(spec, &d)) return -1;
    for (int64_t i = 0; i < d.n; i++) {
        const char *k = uf_example_field(&d.rows[i], "act");
        if (!k) k = d.rows[i].prompt ? d.rows[i].prompt : "";
        if (act_set_has(a, k)) continue;
        a->s = uf_realloc(a->s, (size_t)(a->n + 1) * sizeof *a->s);
        a->s[a->n++] = uf_strdup(k);
    }
    uf_dataset_free(&d);
    return 0;
}

static void act_set_free(struct act_set *a) {
    for (int i = 0; i < a->n; i++) free(a->s[i]);
    free(a->s);
}

/* 1 (printed) when two of a run's roles share acts and the run does not allow it. */
static int check_overlap(const struct uf_plan_node *t, const char *what) {
    if (t->allow_overlap) return 0;
    struct act_set buf = {0}, poi = {0}, ev = {0};
    int rc = 0;
    for (int i = 0; i < t->n_methods; i++) {
        /* replayed safety data: every method's buffer, and SafeInstr's demonstrations */
        const struct uf_plan_method *m = &t->methods[i];
        for (int k = 0; k < m->n_datasets; k++)
            if (strcmp(m->dataset_keys[k], "buffer") == 0 ||
                (strcmp(m->type, "safeinstr") == 0 && strcmp(m->dataset_keys[k], "data") == 0))
                rc |= act_set_add_data(&buf, &m->datasets[k]);
    }
    if (t->data && t->data->is_mixture && t->data->p > 0) rc |= act_set_add_data(&poi, t->data->poison);
    for (int i = 0; i < t->n_evals; i++)
        if (strcmp(t->evals[i].type, "asr") == 0) rc |= act_set_add_data(&ev, &t->evals[i].data);
    int bad = 0;
    if (rc == 0) {
        const struct act_set *sets[3] = {&buf, &poi, &ev};
        const char *names[3] = {"replay buffer", "poison", "harmful evaluation"};
        for (int x = 0; x < 3; x++)
            for (int y = x + 1; y < 3; y++) {
                int shared = 0;
                const char *example = NULL;
                for (int i = 0; i < sets[x]->n; i++)
                    if (act_set_has(sets[y], sets[x]->s[i])) {
                        shared++;
                        if (!example) example = sets[x]->s[i];
                    }
                if (shared) {
                    fprintf(stderr, "unforget: error: %s: the %s and the %s share %d act(s) (e.g. \"%.80s\"); "
                            "use disjoint data (the default world's safety, poison and harmful_eval splits are) "
                            "or set allow_overlap = true\n", what, names[x], names[y], shared, example);
                    bad = 1;
                }
            }
    }
    act_set_free(&buf);
    act_set_free(&poi);
    act_set_free(&ev);
    return bad;
}

static const struct uf_plan *g_plan;

/* The model config of a node (its own model, or its start stage's; memplan's config, with the
 * vocabulary of a trained tokenizer, else 2048 for a uf.model.new without vocab and a tokenizer
 * file: the real size is known only once the tokenizer is loaded). 0 or uf_fail. */
static int node_config(const struct uf_plan_node *t, struct uf_model_config *c) {
    const struct uf_plan_tokenizer *tk = NULL;
    const struct uf_plan_model *m = uf_plan_node_model(g_plan, t, &tk);
    if (!m) return uf_fail("no model");
    int vocab = tk && tk->train ? tk->vocab : 2048;
    return uf_memplan_config_from_spec(m, vocab, c);
}

/* The model line; 1 (error printed) when a uf.model.new's sizes are invalid. */
static int print_model(const struct uf_plan_node *t) {
    const struct uf_plan_model *m = t->model;
    if (m->type != UF_PLAN_MODEL_NEW) {
        printf("    model      %s %s\n", m->type == UF_PLAN_MODEL_HF ? "hf" : "checkpoint", m->path);
        return 0;
    }
    struct uf_model_config c;
    if (node_config(t, &c)) {
        fprintf(stderr, "unforget: error: %s: uf.model.new: %s\n", t->name, uf_error());
        return 1;
    }
    double P = (double)uf_model_param_numel(&c);
    printf("    model      new %s d_model %d layers %d heads %d kv %d d_ff %d vocab %d: %.2fM params\n",
           uf_family_name(c.family), c.d_model, c.n_layers, c.n_heads, c.n_kv_heads, c.d_ff, c.vocab, P / 1e6);
    return 0;
}

/* Rows of a training data spec (a mixture: n, else its task rows / (1 - p)); -1 if unknown. */
static int64_t dataset_rows(const struct uf_plan_dataset *spec) {
    struct uf_dataset d;
    if (uf_data_load_plan(spec, &d)) return -1;
    int64_t n = d.n;
    uf_dataset_free(&d);
    return n;
}

static int64_t data_rows(const struct uf_plan_data *spec) {
    if (!spec->is_mixture) return dataset_rows(&spec->ds);
    if (spec->n > 0) return spec->n;
    int64_t task = dataset_rows(&spec->task);
    double p = spec->p;
    return task < 0 ? -1 : (int64_t)((double)task / (p < 1 ? 1 - p : 1) + 0.5);
}

static double check_gflops = 30.0; /* --gflops: the device's training rate for the time estimate */

/* Upper bound of a phase's steps, tokens and compute, and its time at check_gflops. */
static double phase_time(const char *what, int64_t rows, const struct uf_plan_optim *optim,
                         const struct uf_model_config *c) {
    if (rows < 0) return 0;
    int batch = optim->batch, len = optim->max_len;
    int64_t steps = optim->steps;
    if (steps <= 0) steps = (int64_t)ceil(optim->epochs * (double)rows / (batch > 0 ? batch : 1));
    double tokens = (double)steps * batch * len;
    double flops = uf_model_flops_per_token(c, len) * tokens;
    double sec = flops / (check_gflops * 1e9);
    char d[32];
    uf_format_duration(sec, d, sizeof d);
    printf("    time       %s: %lld rows, %lld steps, <= %.2fM tokens, <= %.3g TFLOP: <= %s at %g GFLOP/s\n",
           what, (long long)rows, (long long)steps, tokens / 1e6, flops / 1e12, d, check_gflops);
    return sec;
}

static void print_time(const struct uf_plan_node *t) {
    struct uf_model_config c;
    if (node_config(t, &c)) return;
    if (t->pretrain)
        phase_time("pretrain", dataset_rows(t->pretrain), t->pretrain_optim ? t->pretrain_optim : &t->optim, &c);
    /* DeRTa's RTO adds at most one row per row (one per harmful row with a harmful response) */
    int64_t rows = t->data ? data_rows(t->data) : -1;
    if (t->data && t->derta && t->derta->rto && rows > 0)
        phase_time("train (with DeRTa RTO rows, at most 2x)", 2 * rows, &t->optim, &c);
    else if (t->data)
        phase_time("train", rows, &t->optim, &c);
}

static int plan_train(const struct uf_plan_node *t, size_t dev_bytes, size_t dev_max_alloc, const char *dev_name) {
    print_time(t);
    if (!t->model) {
        printf("    memory     plan: model from an earlier stage (see that stage)\n");
        return 0;
    }
    struct uf_model_config c;
    struct uf_memplan_in in;
    struct uf_memplan p;
    int rc = node_config(t, &c) || uf_memplan_from_node(t, &c, dev_bytes, &in) ||
             uf_methods_memplan(t->methods, t->n_methods, &in);
    in.device_max_alloc = dev_max_alloc;
    if (rc || uf_memplan_compute(&in, &p)) {
        printf("    memory     no plan: %s\n", uf_error());
        return 0;
    }
    uf_memplan_print(&in, &p, stdout, "    ");
    printf("    memory     total %.3f GiB (%zu bytes) on %s (%.2f GiB)\n", (double)p.total / (1u << 30),
           p.total, dev_name, (double)dev_bytes / (1u << 30));
    if (uf_memplan_fits(&in, &p, dev_bytes, dev_name)) {
        fprintf(stderr, "unforget: error: %s: %s\n", t->name, uf_error());
        return 1;
    }
    return 0;
}

static int print_train(const struct uf_plan_node *t, const char *label, size_t dev_bytes, size_t dev_max_alloc,
                       const char *dev_name) {
    char buf[512];
    printf("%s %s\n", label, t->name);
    const struct uf_plan_optim *optim = &t->optim;
    if (t->from) printf("    from       stage %s\n", t->from);
    int bad = t->model ? print_model(t) : 0;
    bad |= plan_train(t, dev_bytes, dev_max_alloc, dev_name);
    if (t->data && t->data->is_mixture) {
        char task[256], poison[256] = "-";
        describe_dataset(&t->data->task, task, sizeof task);
        if (t->data->poison) describe_dataset(t->data->poison, poison, sizeof poison);
        printf("    data       mix task=%s poison=%s p=%g n=%lld seed=%llu\n", task, poison, t->data->p,
               (long long)t->data->n, (unsigned long long)t->data->seed);
    } else if (t->data) {
        describe_dataset(&t->data->ds, buf, sizeof buf);
        printf("    data       %s\n", buf);
    }
    if (t->pretrain) {
        describe_dataset(t->pretrain, buf, sizeof buf);
        printf("    pretrain   %s\n", buf);
    }
    if (t->derta) {
        if (t->derta->responses) describe_dataset(t->derta->responses, buf, sizeof buf);
        printf("    derta      prefix %s rto %s rto_weight %g seed %llu responses %s (RTO: + 1 row per harmful "
               "row with a harmful response)\n", t->derta->prefix ? "on" : "off", t->derta->rto ? "on" : "off",
               t->derta->rto_weight, (unsigned long long)t->derta->seed,
               t->derta->responses ? buf : "world answers by act");
    }
    for (int i = 0; i < t->n_methods; i++) {
        const struct uf_plan_method *m = &t->methods[i];
        printf("    method     %s", m->type);
        const cJSON *f; /* the method's own keys, as its schema declares them */
        cJSON_ArrayForEach(f, m->cfg) {
            if (f->string[0] == '_' || strcmp(f->string, "type") == 0) continue;
            if (cJSON_IsNumber(f)) printf(" %s=%g", f->string, f->valuedouble);
            else if (cJSON_IsString(f)) printf(" %s=%s", f->string, f->valuestring);
            else if (cJSON_IsBool(f)) printf(" %s=%s", f->string, cJSON_IsTrue(f) ? "true" : "false");
            for (int j = 0; j < m->n_datasets; j++) {
                if (strcmp(m->dataset_keys[j], f->string) != 0) continue;
                describe_dataset(&m->datasets[j], buf, sizeof buf);
                printf(" %s=%s", f->string, buf);
            }
        }
        printf("\n");
    }
    printf("    optim      adamw lr %g epochs %g steps %lld batch %d max_len %d schedule %s "
           "warmup %g clip %g\n", optim->lr, optim->epochs, (long long)optim->steps, optim->batch,
           optim->max_len, optim->schedule, optim->warmup, optim->clip);
    if (t->lora)
        printf("    lora       r %d alpha %g dropout %g targets %s\n", t->lora->r, t->lora->alpha,
               t->lora->dropout, t->lora->targets);
    for (int i = 0; i < t->n_evals; i++) {
        describe_dataset(&t->evals[i].data, buf, sizeof buf);
        printf("    eval       %s on %s (judge %s)\n", t->evals[i].type, buf, t->evals[i].judge);
    }
    return bad;
}

int uf_cmd_check(int argc, char **argv) {
    const char *recipe = NULL;
    char **sets = uf_calloc((size_t)argc, sizeof *sets);
    int nsets = 0, json = 0;
    double dev_gib = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget [--device SEL] check RECIPE.lua [--set key=value ...] [--json]\n"
                   "                [--device-mem GIB] [--gflops R]\n\n"
                   "Evaluates the recipe and validates it without training: unknown keys and\n"
                   "wrong types are reported at the recipe line (with the valid keys and the\n"
                   "nearest match), files it names must exist and parse\n"
                   "(a malformed row is reported as file:line). Prints the plan (stages and runs\n"
                   "with model size and memory estimate, data, methods, optimizer, evaluation);\n"
                   "--json prints the resolved plan as JSON instead.\n"
                   "The memory plan (weights by dtype, LoRA, gradients, optimizer, activations\n"
                   "with and without checkpointing, eval KV cache, workspace) must fit the\n"
                   "device's global memory (the --device one, or --device-mem GIB to plan for\n"
                   "another card); a plan that does not fit is an error naming the knob to turn.\n"
                   "Time: per training phase, rows, steps, an upper bound of the tokens (batch x\n"
                   "max_len per step) and of the compute (6N + 6LCT FLOPs per token), and the time\n"
                   "at R GFLOP/s (--gflops, default 30: about what the quick-start model reaches\n"
                   "on 2 CPU cores with PoCL; `unforget bench` measures your device's rate).\n");
            free(sets);
            return 0;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(argv[i], "--device-mem") == 0 && i + 1 < argc) {
            char *end;
            dev_gib = strtod(argv[++i], &end);
            if (*end || !(dev_gib > 0)) {
                fprintf(stderr, "unforget check: --device-mem '%s': a positive number of GiB\n", argv[i]);
                free(sets);
                return 2;
            }
        } else if (strcmp(argv[i], "--gflops") == 0 && i + 1 < argc) {
            check_gflops = strtod(argv[++i], NULL);
            if (!(check_gflops > 0)) {
                fprintf(stderr, "unforget check: --gflops needs a positive number\n");
                free(sets);
                return 2;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (argv[i][0] != '-' && !recipe) {
            recipe = argv[i];
        } else {
            fprintf(stderr, "unforget check: unexpected argument '%s' (see --help)\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (!recipe) {
        fprintf(stderr, "unforget check: which recipe? usage: unforget check RECIPE.lua\n");
        free(sets);
        return 2;
    }
    struct uf_plan plan_s, *plan = &plan_s;
    int prc = uf_recipe_plan(recipe, nsets, sets, plan);
    free(sets);
    g_plan = plan;
    if (prc) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        return 1;
    }
    int missing = 0;
    for (int i = 0; i < plan->n_stages; i++) missing += check_files(&plan->stages[i], recipe);
    for (int i = 0; i < plan->n_runs; i++) missing += check_files(&plan->runs[i], recipe);
    char **seen = NULL;
    int n_seen = 0;
    for (int i = 0; i < plan->n_stages && !missing; i++) missing += check_rows(&plan->stages[i], &seen, &n_seen);
    for (int i = 0; i < plan->n_runs && !missing; i++) missing += check_rows(&plan->runs[i], &seen, &n_seen);
    for (int i = 0; i < n_seen; i++) free(seen[i]);
    free(seen);
    /* method composition rules (methods/registry.c) for every stage and run */
    int bad = 0;
    for (int g = 0; g < 2; g++) {
        for (int i = 0; i < (g ? plan->n_runs : plan->n_stages); i++) {
            const struct uf_plan_node *t = g ? &plan->runs[i] : &plan->stages[i];
            char why[512];
            if (uf_methods_check(t->methods, t->n_methods, t->lora != NULL, why, sizeof why)) {
                fprintf(stderr, "unforget: error: %s %s: %s\n", g ? "run" : "stage", t->name, why);
                bad++;
            }
            if (!missing) {
                char what[300];
                snprintf(what, sizeof what, "%s %s", g ? "run" : "stage", t->name);
                bad += check_overlap(t, what);
            }
        }
    }
    missing += bad;
    for (int t = 0; t < plan->n_tunes; t++) { /* uf.tune studies: the rule parses */
        struct uf_tune_rule rule;
        if (uf_tune_rule_parse(plan->tunes[t].rule, &rule)) {
            fprintf(stderr, "unforget: error: uf.tune %s: %s\n", plan->tunes[t].name, uf_error());
            missing++;
        } else if (uf_tune_rule_uses_ref(&rule) && !plan->tunes[t].reference[0]) {
            fprintf(stderr, "unforget: error: uf.tune %s: the rule reads ref and the study has no reference\n",
                    plan->tunes[t].name);
            missing++;
        }
    }
    if (plan->n_runs == 0 && !plan->is_module) {
        fprintf(stderr, "unforget: error: %s defines no runs (add uf.run { name = ..., ... })\n", recipe);
        missing++;
    }
    if (json) {
        char *s = cJSON_Print(plan->json);
        puts(s);
        free(s);
    } else {
        size_t dev_bytes, dev_max_alloc = 0; /* --device-mem: no per-buffer limit assumed */
        char dev_name[300];
        if (dev_gib > 0) {
            dev_bytes = (size_t)(dev_gib * (double)(1u << 30));
            snprintf(dev_name, sizeof dev_name, "a %g GiB device (--device-mem)", dev_gib);
        } else {
            struct uf_device dev;
            uf_device_init(&dev, uf_cli.device);
            dev_bytes = (size_t)dev.global_mem;
            dev_max_alloc = (size_t)dev.max_alloc;
            snprintf(dev_name, sizeof dev_name, "%s", dev.name);
            uf_device_free(&dev);
        }
        int too_big = 0;
        for (int i = 0; i < plan->n_stages; i++)
            too_big += print_train(&plan->stages[i], "stage", dev_bytes, dev_max_alloc, dev_name);
        for (int i = 0; i < plan->n_runs; i++)
            too_big += print_train(&plan->runs[i], "run  ", dev_bytes, dev_max_alloc, dev_name);
        missing += too_big;
        for (int t = 0; t < plan->n_tunes; t++) {
            const struct uf_plan_tune *u = &plan->tunes[t];
            printf("tune  %s: %d method(s), %d run(s), rule \"%s\"%s%s (unforget tune)\n", u->name, u->n_methods,
                   u->n_runs, u->rule, u->reference[0] ? ", reference " : "", u->reference);
        }
        printf("%d stage(s), %d run(s)%s\n", plan->n_stages, plan->n_runs, missing ? "" : ": ok");
    }
    uf_plan_free(plan);
    if (missing) {
        fprintf(stderr, "unforget: error: %s has %d problem(s) (see above)\n", recipe, missing);
        return 1;
    }
    return 0;
}
