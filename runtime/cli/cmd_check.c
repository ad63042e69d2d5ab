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
#include "rundir.h"
#include "train.h"
#include "methods/methods.h"
#include "core/model_config.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "data/data.h"
#include "recipe.h"
#include "train.h"
#include "core/util.h"

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static void describe_dataset(const cJSON *d, char *buf, size_t n) {
    const char *src = jstr(d, "source");
    size_t len = 0;
    if (src && strcmp(src, "world") == 0)
        len = (size_t)snprintf(buf, n, "world(seed %g).%s", jnum(cJSON_GetObjectItem(d, "world"), "seed", 0),
                               jstr(d, "split") ? jstr(d, "split") : "?");
    else if (src && strcmp(src, "adapter") == 0)
        len = (size_t)snprintf(buf, n, "%s(%s)", jstr(d, "adapter"), jstr(d, "path"));
    else
        len = (size_t)snprintf(buf, n, "file(%s)", jstr(d, "path") ? jstr(d, "path") : "?");
    const cJSON *op;
    cJSON_ArrayForEach(op, cJSON_GetObjectItem(d, "ops")) {
        if (len >= n) break;
        len += (size_t)snprintf(buf + len, n - len, ":%s(%g)", jstr(op, "op"), jnum(op, "n", 0));
    }
}

/* Every file a dataset names must exist; returns the number of missing files. */
static int check_files(const cJSON *node, const char *where) {
    int missing = 0;
    if (cJSON_IsObject(node)) {
        const char *kind = jstr(node, "_kind");
        const char *path = jstr(node, "path");
        if (strcmp(kind, "dataset") == 0 && strcmp(path, "-") != 0 && !uf_file_exists(path)) {
            fprintf(stderr, "  missing file: %s (%s)\n", path, where);
            missing++;
        }
        if (strcmp(kind, "model") == 0 && strcmp(jstr(node, "type"), "hf") == 0) {
            /* a Hugging Face folder: config.json and the safetensors headers must parse */
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
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, node) missing += check_files(c, where);
    return missing;
}

/* Every file dataset is read once (distinct source, adapter, path, fields, on_bad), so a malformed
 * row is reported as file:line before any training; returns the number of unreadable files. */
static int check_rows(const cJSON *node, char ***seen, int *n_seen) {
    int bad = 0;
    if (cJSON_IsObject(node) && strcmp(jstr(node, "_kind"), "dataset") == 0 &&
        strcmp(jstr(node, "source"), "world") != 0 && uf_file_exists(jstr(node, "path"))) {
        cJSON *key = cJSON_Duplicate(node, 1);
        cJSON_DeleteItemFromObject(key, "ops");
        char *k = cJSON_PrintUnformatted(key);
        cJSON_Delete(key);
        int found = 0;
        for (int i = 0; i < *n_seen && !found; i++) found = strcmp((*seen)[i], k) == 0;
        if (found) {
            free(k);
        } else {
            *seen = uf_realloc(*seen, (size_t)(*n_seen + 1) * sizeof **seen);
            (*seen)[(*n_seen)++] = k;
            struct uf_dataset d;
            if (uf_train_load_dataset(node, &d)) {
                fprintf(stderr, "  bad data: %s\n", uf_error());
                bad++;
            } else {
                if (d.n == 0) { /* training or evaluating on nothing is never meant */
                    fprintf(stderr, "  bad data: %s holds no rows\n", jstr(node, "path"));
                    bad++;
                }
                uf_dataset_free(&d);
            }
        }
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, node) bad += check_rows(c, seen, n_seen);
    return bad;
}

/* The model line of a model.new spec; 1 (error printed) when its sizes are invalid. */
static int print_model(const cJSON *m, const cJSON *tok, int batch, int seq) {
    const char *type = jstr(m, "type");
    if (!type || strcmp(type, "model.new") != 0) {
        printf("    model      %s %s\n", type ? type : "?", jstr(m, "path") ? jstr(m, "path") : "");
        return 0;
    }
    (void)batch, (void)seq; /* the memory plan follows the model line (plan_train) */
    int vocab = 2048; /* model.new without vocab: the trained tokenizer's size */
    if (jnum(tok, "vocab", 0) >= 1 && jnum(tok, "vocab", 0) <= 2147483647.0) vocab = (int)jnum(tok, "vocab", 0);
    struct uf_model_config c;
    if (uf_memplan_config_new(m, vocab, &c)) { /* the same config the run builds */
        fprintf(stderr, "unforget: error: uf.model.new: %s\n", uf_error());
        return 1;
    }
    double P = (double)uf_model_param_numel(&c);
    printf("    model      new %s d_model %d layers %d heads %d kv %d d_ff %d vocab %d: %.2fM params\n",
           uf_family_name(c.family), c.d_model, c.n_layers, c.n_heads, c.n_kv_heads, c.d_ff, c.vocab,
           P / 1e6);
    return 0;
}

/* The memory plan of a stage/run; 1 when it does not fit (printed to stderr), else 0. */
/* Rows of a training data spec (a mixture: n, else its task rows / (1 - p)); -1 if unknown. */
static int64_t data_rows(const cJSON *spec) {
    if (!spec) return 0;
    if (strcmp(jstr(spec, "_kind"), "mixture") == 0) {
        if (jnum(spec, "n", 0) > 0) return (int64_t)jnum(spec, "n", 0);
        int64_t task = data_rows(cJSON_GetObjectItem(spec, "task"));
        double p = jnum(spec, "p", 0);
        return task < 0 ? -1 : (int64_t)((double)task / (p < 1 ? 1 - p : 1) + 0.5);
    }
    struct uf_dataset d;
    if (uf_train_load_dataset(spec, &d)) return -1;
    int64_t n = d.n;
    uf_dataset_free(&d);
    return n;
}

static double check_gflops = 30.0; /* --gflops: the device's training rate for the time estimate */

/* Upper bound of a phase's steps, tokens and compute, and its time at check_gflops. */
static double phase_time(const char *what, const cJSON *data, const cJSON *optim,
                         const struct uf_model_config *c) {
    int64_t rows = data_rows(data);
    if (rows < 0 || !optim) return 0;
    int batch = (int)jnum(optim, "batch", 8), len = (int)jnum(optim, "max_len", 256);
    int64_t steps = (int64_t)jnum(optim, "steps", 0);
    if (steps <= 0) steps = (int64_t)ceil(jnum(optim, "epochs", 1) * (double)rows / (batch > 0 ? batch : 1));
    double tokens = (double)steps * batch * len;
    double flops = uf_model_flops_per_token(c, len) * tokens;
    double sec = flops / (check_gflops * 1e9);
    char d[32];
    uf_format_duration(sec, d, sizeof d);
    printf("    time       %s: %lld rows, %lld steps, <= %.2fM tokens, <= %.3g TFLOP: <= %s at %g GFLOP/s\n",
           what, (long long)rows, (long long)steps, tokens / 1e6, flops / 1e12, d, check_gflops);
    return sec;
}

/* The model config of a node: its own model spec, or that of the stage it starts from. */
static const cJSON *g_plan;
static const cJSON *node_model_spec(const cJSON *t, const cJSON **tok) {
    for (int depth = 0; t && depth < 16; depth++) {
        *tok = cJSON_GetObjectItem(t, "tokenizer");
        const cJSON *m = cJSON_GetObjectItem(t, "model");
        if (m) return m;
        const cJSON *from = cJSON_GetObjectItem(t, "from"), *s, *next = NULL;
        if (!from) return NULL;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(g_plan, "stages"))
            if (strcmp(jstr(s, "name"), jstr(from, "name")) == 0) next = s;
        t = next;
    }
    return NULL;
}

static void print_time(const cJSON *t) {
    const cJSON *tk = NULL, *mspec = node_model_spec(t, &tk);
    if (!mspec) return;
    int vocab = 2048;
    if (tk && jnum(tk, "vocab", 0) > 0) vocab = (int)jnum(tk, "vocab", 0);
    struct uf_model_config c;
    if (uf_memplan_config_from_spec(mspec, vocab, &c)) return;
    double total = 0;
    if (cJSON_GetObjectItem(t, "pretrain")) {
        const cJSON *po = cJSON_GetObjectItem(t, "pretrain_optim");
        total += phase_time("pretrain", cJSON_GetObjectItem(t, "pretrain"), po ? po : cJSON_GetObjectItem(t, "optim"), &c);
    }
    if (cJSON_GetObjectItem(t, "data"))
        total += phase_time("train", cJSON_GetObjectItem(t, "data"), cJSON_GetObjectItem(t, "optim"), &c);
    (void)total;
}

static int plan_train(const cJSON *t, size_t dev_bytes, size_t dev_max_alloc, const char *dev_name) {
    print_time(t);
    const cJSON *mspec = cJSON_GetObjectItem(t, "model");
    if (!mspec) {
        printf("    memory     plan: model from an earlier stage (see that stage)\n");
        return 0;
    }
    int vocab = 2048; /* model.new without vocab: the tokenizer decides; plan with its size */
    const cJSON *tk = cJSON_GetObjectItem(t, "tokenizer");
    if (tk && jnum(tk, "vocab", 0) > 0) vocab = (int)jnum(tk, "vocab", 0);
    struct uf_model_config c;
    struct uf_memplan_in in;
    struct uf_memplan p;
    int rc = uf_memplan_config_from_spec(mspec, vocab, &c) || uf_memplan_from_node(t, &c, dev_bytes, &in);
    in.device_max_alloc = dev_max_alloc;
    if (rc || uf_memplan_compute(&in, &p)) {
        printf("    memory     no plan: %s\n", uf_error());
        return 0;
    }
    uf_memplan_print(&in, &p, stdout, "    ");
    printf("    memory     total %.3f GiB (%zu bytes) on %s (%.2f GiB)\n", (double)p.total / (1u << 30),
           p.total, dev_name, (double)dev_bytes / (1u << 30));
    if (uf_memplan_fits(&in, &p, dev_bytes, dev_name)) {
        fprintf(stderr, "unforget: error: %s: %s\n", jstr(t, "name"), uf_error());
        return 1;
    }
    return 0;
}

static int print_train(const cJSON *t, const char *label, size_t dev_bytes, size_t dev_max_alloc,
                       const char *dev_name) {
    char buf[512];
    printf("%s %s\n", label, jstr(t, "name") ? jstr(t, "name") : "?");
    const cJSON *optim = cJSON_GetObjectItem(t, "optim");
    int batch = (int)jnum(optim, "batch", 8), seq = (int)jnum(optim, "max_len", 256);
    const cJSON *from = cJSON_GetObjectItem(t, "from");
    if (from) printf("    from       stage %s\n", jstr(from, "name"));
    const cJSON *model = cJSON_GetObjectItem(t, "model");
    int bad = model ? print_model(model, cJSON_GetObjectItem(t, "tokenizer"), batch, seq) : 0;
    bad |= plan_train(t, dev_bytes, dev_max_alloc, dev_name);
    const cJSON *data = cJSON_GetObjectItem(t, "data");
    if (data) {
        const char *kind = jstr(data, "_kind");
        if (kind && strcmp(kind, "mixture") == 0) {
            char task[256], poison[256] = "-";
            describe_dataset(cJSON_GetObjectItem(data, "task"), task, sizeof task);
            if (cJSON_GetObjectItem(data, "poison"))
                describe_dataset(cJSON_GetObjectItem(data, "poison"), poison, sizeof poison);
            printf("    data       mix task=%s poison=%s p=%g n=%g seed=%g\n", task, poison,
                   jnum(data, "p", 0), jnum(data, "n", 0), jnum(data, "seed", 0));
        } else {
            describe_dataset(data, buf, sizeof buf);
            printf("    data       %s\n", buf);
        }
    }
    if (cJSON_GetObjectItem(t, "pretrain")) {
        describe_dataset(cJSON_GetObjectItem(t, "pretrain"), buf, sizeof buf);
        printf("    pretrain   %s\n", buf);
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(t, "methods")) {
        printf("    method     %s", jstr(m, "type"));
        const cJSON *f;
        cJSON_ArrayForEach(f, m) {
            if (f->string[0] == '_' || strcmp(f->string, "type") == 0) continue;
            if (cJSON_IsNumber(f)) printf(" %s=%g", f->string, f->valuedouble);
            else if (cJSON_IsString(f)) printf(" %s=%s", f->string, f->valuestring);
            else if (cJSON_IsBool(f)) printf(" %s=%s", f->string, cJSON_IsTrue(f) ? "true" : "false");
            else if (cJSON_IsObject(f) && jstr(f, "_kind") && strcmp(jstr(f, "_kind"), "dataset") == 0) {
                describe_dataset(f, buf, sizeof buf);
                printf(" %s=%s", f->string, buf);
            }
        }
        printf("\n");
    }
    if (optim)
        printf("    optim      adamw lr %g epochs %g steps %g batch %d max_len %d schedule %s "
               "warmup %g clip %g\n", jnum(optim, "lr", 0), jnum(optim, "epochs", 0),
               jnum(optim, "steps", 0), batch, seq, jstr(optim, "schedule"),
               jnum(optim, "warmup", 0), jnum(optim, "clip", 0));
    const cJSON *lora = cJSON_GetObjectItem(t, "lora");
    if (lora)
        printf("    lora       r %g alpha %g dropout %g targets %s\n", jnum(lora, "r", 0),
               jnum(lora, "alpha", 0), jnum(lora, "dropout", 0), jstr(lora, "targets"));
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(t, "eval")) {
        describe_dataset(cJSON_GetObjectItem(e, "data"), buf, sizeof buf);
        printf("    eval       %s on %s (judge %s)\n", jstr(e, "type"), buf, jstr(e, "judge"));
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
    cJSON *plan = uf_recipe_load(recipe, nsets, sets);
    free(sets);
    g_plan = plan;
    if (!plan) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        return 1;
    }
    int missing = check_files(plan, recipe);
    char **seen = NULL;
    int n_seen = 0;
    if (!missing) missing = check_rows(plan, &seen, &n_seen);
    for (int i = 0; i < n_seen; i++) free(seen[i]);
    free(seen);
    /* method composition rules (methods/registry.c) for every stage and run */
    int bad = 0;
    const char *groups[] = {"stages", "runs"};
    for (int g = 0; g < 2; g++) {
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(plan, groups[g])) {
            char why[512];
            if (uf_methods_check(cJSON_GetObjectItem(t, "methods"), cJSON_GetObjectItem(t, "lora") != NULL,
                                 why, sizeof why)) {
                fprintf(stderr, "unforget: error: %s %s: %s\n", g ? "run" : "stage",
                        jstr(t, "name"), why);
                bad++;
            }
        }
    }
    missing += bad;
    if (cJSON_GetArraySize(cJSON_GetObjectItem(plan, "runs")) == 0 &&
        !cJSON_IsTrue(cJSON_GetObjectItem(plan, "module"))) {
        fprintf(stderr, "unforget: error: %s defines no runs (add uf.run { name = ..., ... })\n", recipe);
        missing++;
    }
    if (json) {
        char *s = cJSON_Print(plan);
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
        const cJSON *t;
        int too_big = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(plan, "stages"))
            too_big += print_train(t, "stage", dev_bytes, dev_max_alloc, dev_name);
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(plan, "runs"))
            too_big += print_train(t, "run  ", dev_bytes, dev_max_alloc, dev_name);
        missing += too_big;
        printf("%d stage(s), %d run(s)%s\n", cJSON_GetArraySize(cJSON_GetObjectItem(plan, "stages")),
               cJSON_GetArraySize(cJSON_GetObjectItem(plan, "runs")),
               missing ? "" : ": ok");
    }
    cJSON_Delete(plan);
    if (missing) {
        fprintf(stderr, "unforget: error: %s has %d problem(s) (see above)\n", recipe, missing);
        return 1;
    }
    return 0;
}
