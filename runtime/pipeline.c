/* pipeline.c: executes a recipe's plan (see pipeline.h): stages (cached by content hash) and
 * runs, each: tokenizer, model, optional pre-training phase, the training phase with its
 * methods, export, evaluation, results.json. Every phase resumes from its last checkpoint. */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "eval/evaluate.h"
#include "eval/report.h"
#include "model/hf.h"
#include "formats/hf_config.h"
#include "model/memplan.h"
#include "methods/methods.h"
#include "data/mixture.h"
#include "model/model.h"
#include "recipe.h"
#include "rundir.h"
#include "formats/tokenizer.h"
#include "train.h"
#include "core/util.h"
#include "data/world.h"

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* a recipe boolean (Lua true/false; a number != 0 also counts as true) */
static int jbool(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsTrue(v) || (cJSON_IsNumber(v) && v->valuedouble != 0);
}

static const char *jstr(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : def;
}

static const cJSON *find_stage(const cJSON *plan, const char *name) {
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(plan, "stages"))
        if (strcmp(jstr(s, "name", ""), name) == 0) return s;
    return NULL;
}

/* Content hash of a train node: its JSON plus the hashes of the stages it starts from. */
static uint64_t node_hash(const cJSON *plan, const cJSON *node) {
    char *text = cJSON_PrintUnformatted(node);
    /* the program version and the world generator's version are part of a stage's identity */
    char ver[64];
    snprintf(ver, sizeof ver, "%s/world%d", UF_VERSION, UF_WORLD_VERSION);
    uint64_t h = uf_hash_str(text, uf_hash_str(ver, UF_HASH_SEED));
    free(text);
    const cJSON *from = cJSON_GetObjectItem(node, "from");
    if (from) {
        const cJSON *s = find_stage(plan, jstr(from, "name", ""));
        if (s) {
            uint64_t hs = node_hash(plan, s);
            h = uf_hash64(&hs, sizeof hs, h);
        }
    }
    return h;
}

/* Output folder of a stage (shared by every run that starts from it) or of a run. */
static char *node_dir(const struct uf_pipeline *p, const cJSON *node, int is_stage) {
    if (!is_stage) return uf_sprintf("%s/%s", p->out, jstr(node, "name", "run"));
    return uf_sprintf("%s/stages/%s-%016llx", p->out, jstr(node, "name", "stage"),
                      (unsigned long long)node_hash(p->plan, node));
}

/* ---- tokenizer and model ----------------------------------------------------------------- */
static int build_tokenizer(const cJSON *spec, const char *model_dir, const char *save_path,
                           struct uf_tokenizer *tok) {
    if (uf_file_exists(save_path)) return uf_tokenizer_load(tok, save_path);
    const char *type = jstr(spec, "type", "");
    if (strcmp(type, "tokenizer.train") == 0) {
        struct uf_dataset corpus;
        if (uf_train_load_dataset(cJSON_GetObjectItem(spec, "corpus"), &corpus)) return -1;
        const char **texts = uf_calloc((size_t)corpus.n + 1, sizeof *texts);
        for (int64_t i = 0; i < corpus.n; i++)
            texts[i] = corpus.rows[i].response[0] ? corpus.rows[i].response : corpus.rows[i].prompt;
        /* also learn the instruction format: prompts and responses of the corpus rows */
        int rc = uf_tokenizer_train(tok, texts, NULL, (int)corpus.n, (int)jnum(spec, "vocab", 2048));
        free(texts);
        uf_dataset_free(&corpus);
        if (rc) return -1;
    } else if (strcmp(type, "file") == 0) {
        if (uf_tokenizer_load(tok, jstr(spec, "path", "?"))) return -1;
    } else if (model_dir) {
        if (uf_tokenizer_load(tok, model_dir)) return -1;
    } else {
        return uf_fail("no tokenizer: give tokenizer = uf.tokenizer.train { ... } or a model folder "
                       "with tokenizer.json");
    }
    return uf_tokenizer_save(tok, save_path);
}


/* The memory plan of a stage/run on this device (memplan.h), checked before anything is
 * allocated, and the model flags it implies (bf16 base weights). 0, or uf_fail naming the knob. */
static int plan_memory(struct uf_pipeline *p, const cJSON *node, const char *start_dir,
                       const cJSON *mspec, int vocab, int *mflags) {
    const cJSON *optim = cJSON_GetObjectItem(node, "optim");
    int bf16 = jbool(optim, "bf16"), lora = cJSON_GetObjectItem(node, "lora") != NULL;
    *mflags = 0;
    if (bf16 && !lora)
        return uf_fail("optim bf16 = true stores the frozen base as bf16: it needs uf.lora "
                       "(full fine-tuning trains the base in f32)");
    if (bf16) {
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(node, "methods")) {
            const struct uf_method_ops *ops = uf_method_find(jstr(m, "type", ""));
            if (ops && ops->needs_f32_base)
                return uf_fail("method %s edits the base weights in f32: use bf16 = false", ops->name);
        }
        *mflags = UF_MODEL_BF16_BASE;
    }
    struct uf_model_config c;
    int rc;
    if (start_dir) {
        char *cfg = uf_sprintf("%s/config.json", start_dir);
        rc = uf_hf_config_load(cfg, &c, NULL);
        free(cfg);
    } else {
        rc = uf_memplan_config_new(mspec, vocab, &c);
    }
    if (rc) return -1;
    struct uf_memplan_in in;
    struct uf_memplan plan;
    if (uf_memplan_from_node(node, &c, (size_t)p->dev.global_mem, &in)) return -1;
    in.device_max_alloc = (size_t)p->dev.max_alloc;
    if (uf_memplan_compute(&in, &plan)) return -1;
    uf_log(1, "memory plan: %.3f GiB peak (training %.3f, evaluation %.3f) on %s (%.2f GiB)",
           (double)plan.total / (1u << 30), (double)plan.train_total / (1u << 30),
           (double)plan.eval_total / (1u << 30), p->dev.name, (double)p->dev.global_mem / (1u << 30));
    return uf_memplan_fits(&in, &plan, (size_t)p->dev.global_mem, p->dev.name);
}

/* ---- one training phase ------------------------------------------------------------------ */
static int build_data(const cJSON *spec, struct uf_dataset *out) {
    if (strcmp(jstr(spec, "_kind", ""), "mixture") != 0) return uf_train_load_dataset(spec, out);
    struct uf_dataset task, poison;
    if (uf_train_load_dataset(cJSON_GetObjectItem(spec, "task"), &task)) return -1;
    const cJSON *poison_spec = cJSON_GetObjectItem(spec, "poison");
    if (!poison_spec) uf_dataset_init(&poison, "poison"); /* the loader initialises it otherwise */
    else if (uf_train_load_dataset(poison_spec, &poison)) {
        uf_dataset_free(&task);
        return -1;
    }
    int64_t n = (int64_t)jnum(spec, "n", 0);
    double p = jnum(spec, "p", 0);
    if (n <= 0) n = (int64_t)llround((double)task.n / (1.0 - p > 1e-9 ? 1.0 - p : 1.0));
    struct uf_mix_info info;
    uf_dataset_init(out, "mixture");
    int rc = uf_mix_poison(&task, &poison, n, p, (uint64_t)jnum(spec, "seed", 1), 0, out, &info);
    uf_dataset_free(&task);
    uf_dataset_free(&poison);
    return rc;
}

static int train_phase(struct uf_pipeline *p, struct uf_model *model, const struct uf_tokenizer *tok,
                       const char *template_name, const cJSON *data_spec, const cJSON *optim,
                       const cJSON *methods, const struct uf_tensor *theta0, const char *dir,
                       const char *name, const char *label) {
    struct uf_train_hparams hp;
    if (uf_train_hparams_from_json(optim, &hp)) return uf_fail_prefix("%s", label);
    struct uf_dataset data;
    if (build_data(data_spec, &data)) return uf_fail_prefix("%s: data", label);
    struct uf_rundir rd;
    if (uf_rundir_open(&rd, dir, name)) {
        uf_dataset_free(&data);
        return -1;
    }
    struct uf_trainer tr;
    uf_trainer_init(&tr, &p->dev, model, tok, template_name, &hp, &data);
    tr.plan_dir = p->out;
    tr.theta0 = theta0;
    int rc = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) { /* uf_methods_check passed: every name is in the registry */
        const struct uf_method_ops *ops = uf_method_find(jstr(m, "type", ""));
        rc = ops ? uf_trainer_add_method(&tr, ops, m) : uf_fail("unknown method '%s'", jstr(m, "type", "?"));
        if (rc) break;
    }
    if (rc == 0) {
        uf_rundir_log(&rd, "%s: %lld rows, %lld steps of batch %d", label, (long long)data.n,
                      (long long)tr.total_steps, hp.batch);
        rc = uf_trainer_run(&tr, &rd, label);
    }
    if (rc) uf_fail_prefix("%s", label);
    uf_trainer_free(&tr);
    uf_rundir_close(&rd);
    uf_dataset_free(&data);
    return rc;
}

/* ---- a stage or a run ---------------------------------------------------------------------- */
static int run_node(struct uf_pipeline *p, const cJSON *node, int is_stage, char **model_dir_out);

static int ensure_stage(struct uf_pipeline *p, const char *name, char **model_dir) {
    const cJSON *s = find_stage(p->plan, name);
    if (!s) return uf_fail("no stage named '%s'", name);
    return run_node(p, s, 1, model_dir);
}

/* label: NULL for a trained node; else the name of an evaluated model (`unforget eval`) */
static int write_results(struct uf_pipeline *p, const cJSON *node, const char *dir,
                         struct uf_model *model, const struct uf_tokenizer *tok,
                         const char *template_name, const char *label) {
    struct uf_results res;
    memset(&res, 0, sizeof res);
    res.run = uf_strdup(label ? label : jstr(node, "name", "run"));
    const cJSON *tags = cJSON_GetObjectItem(node, "tags");
    const cJSON *methods = cJSON_GetObjectItem(node, "methods");
    /* method label: the tag, else the method names joined by '+', else "sft" */
    char method[256] = "";
    if (jstr(tags, "method", NULL)) snprintf(method, sizeof method, "%s", jstr(tags, "method", ""));
    else {
        const cJSON *m;
        cJSON_ArrayForEach(m, methods) {
            size_t l = strlen(method);
            snprintf(method + l, sizeof method - l, "%s%s", l ? "+" : "", jstr(m, "type", "?"));
        }
        if (!method[0]) snprintf(method, sizeof method, "%s", cJSON_GetObjectItem(node, "from") || !cJSON_GetObjectItem(node, "pretrain") ? "sft" : "aligned");
    }
    res.method = uf_strdup(label ? "model" : method);
    const cJSON *data = cJSON_GetObjectItem(node, "data");
    res.poison_ratio = jnum(tags, "p", jnum(data, "p", 0));
    res.seed = (int64_t)jnum(tags, "seed", jnum(data, "seed", 0));
    if (jstr(tags, "model", NULL)) res.model = uf_strdup(jstr(tags, "model", ""));
    else res.model = uf_sprintf("%s-d%d-L%d", uf_family_name(model->cfg.family), model->cfg.d_model,
                                model->cfg.n_layers);
    res.task = uf_strdup(jstr(tags, "task", "task"));
    const cJSON *ev;
    int rc = 0;
    char *samples = uf_sprintf("%s/samples.jsonl", dir);
    FILE *sf = fopen(samples, "w");
    cJSON_ArrayForEach(ev, cJSON_GetObjectItem(node, "eval")) {
        rc = uf_evaluate(&p->dev, model, tok, template_name, ev, &res, sf);
        if (rc) break;
    }
    if (sf) fclose(sf);
    free(samples);
    if (rc == 0) {
        char *path = uf_sprintf("%s/results.json", dir);
        rc = uf_results_write(&res, path);
        if (rc == 0) uf_results_print(&res, stdout);
        free(path);
    }
    uf_results_free(&res);
    return rc;
}

/* Methods that read theta_0 (a full copy of the weights: loaded only for them from a `base` or
 * a Hugging Face folder). */
static int needs_theta0(const cJSON *methods) {
    const cJSON *m;
    cJSON_ArrayForEach(m, methods) {
        const struct uf_method_ops *ops = uf_method_find(jstr(m, "type", ""));
        if (ops && ops->needs_theta0) return 1;
    }
    return 0;
}

/* Folder of theta_0 for a node (malloc'd) or NULL when unknown; see run_node. */
static char *base_dir(struct uf_pipeline *p, const cJSON *node, const char *start_dir) {
    const cJSON *base = cJSON_GetObjectItem(node, "base"), *from = cJSON_GetObjectItem(node, "from");
    int needed = needs_theta0(cJSON_GetObjectItem(node, "methods"));
    if (base && !needed) return NULL;
    if (base) {
        const char *path = jstr(base, "path", "?");
        return strcmp(jstr(base, "type", ""), "checkpoint") == 0 ? uf_sprintf("%s/model", path) : uf_strdup(path);
    }
    if (!from || !start_dir) return NULL;
    char *t0 = uf_sprintf("%s/../pretrain/model", start_dir);
    if (uf_file_exists(t0)) return t0;
    free(t0);
    const cJSON *st = find_stage(p->plan, jstr(from, "name", ""));
    const cJSON *sm = cJSON_GetObjectItem(st, "model");
    if (!needed || !st || cJSON_GetObjectItem(st, "pretrain") || !sm) return NULL;
    if (strcmp(jstr(sm, "type", ""), "hf") == 0) return uf_strdup(jstr(sm, "path", "?"));
    if (strcmp(jstr(sm, "type", ""), "checkpoint") == 0) return uf_sprintf("%s/model", jstr(sm, "path", "?"));
    return NULL;
}

static int run_node(struct uf_pipeline *p, const cJSON *node, int is_stage, char **model_dir_out) {
    const char *name = jstr(node, "name", "run");
    char *dir = node_dir(p, node, is_stage);
    char *final_dir = uf_sprintf("%s/model", dir);
    char *results = uf_sprintf("%s/results.json", dir);
    int lock_fd = -1;
    if (uf_file_exists(results) && uf_file_exists(final_dir)) {
        uf_log(1, "%s %s: done already (%s)", is_stage ? "stage" : "run", name, dir);
        free(results);
        free(dir);
        *model_dir_out = final_dir;
        return 0;
    }
    if (uf_mkdir_p(dir)) {
        free(results);
        goto fail;
    }
    /* one process at a time per node (parallel sweep jobs share stages): wait for the lock, then
     * use what the holder finished */
    char *lock_path = uf_sprintf("%s/.lock", dir);
    lock_fd = open(lock_path, O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    free(lock_path);
    if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        uf_log(1, "%s %s: waiting for another process that is training it", is_stage ? "stage" : "run", name);
        if (flock(lock_fd, LOCK_EX) != 0) uf_log(1, "%s: cannot lock (%s); going on", dir, strerror(errno));
    }
    if (uf_file_exists(results) && uf_file_exists(final_dir)) {
        uf_log(1, "%s %s: done already (%s)", is_stage ? "stage" : "run", name, dir);
        close(lock_fd);
        free(results);
        free(dir);
        *model_dir_out = final_dir;
        return 0;
    }
    free(results);
    {
        char *cfg = cJSON_Print(node);
        char *cfg_path = uf_sprintf("%s/config.json", dir);
        uf_file_write_atomic(cfg_path, cfg, strlen(cfg));
        free(cfg_path);
        free(cfg);
    }
    char *start_dir = NULL;
    const cJSON *from = cJSON_GetObjectItem(node, "from");
    const cJSON *mspec = cJSON_GetObjectItem(node, "model");
    if (from && ensure_stage(p, jstr(from, "name", ""), &start_dir)) goto fail;
    if (mspec && strcmp(jstr(mspec, "type", ""), "model.new") != 0) start_dir = uf_strdup(jstr(mspec, "path", "?"));
    if (mspec && strcmp(jstr(mspec, "type", ""), "checkpoint") == 0) {
        char *m = uf_sprintf("%s/model", start_dir);
        free(start_dir);
        start_dir = m;
    }

    {
        char why[512];
        if (uf_methods_check(cJSON_GetObjectItem(node, "methods"), cJSON_GetObjectItem(node, "lora") != NULL,
                             why, sizeof why)) {
            uf_fail("%s", why);
            goto fail;
        }
    }
    uf_log(1, "== %s %s -> %s", is_stage ? "stage" : "run", name, dir);
    struct uf_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    char *tok_path = uf_sprintf("%s/tokenizer.json", dir);
    int rc = build_tokenizer(cJSON_GetObjectItem(node, "tokenizer"), start_dir, tok_path, &tok);
    free(tok_path);
    struct uf_model model;
    memset(&model, 0, sizeof model);
    /* memory plan before allocating (memplan.h); bf16 base weights and checkpointing (optim) */
    const cJSON *optim_spec = cJSON_GetObjectItem(node, "optim");
    int mflags = 0;
    if (rc == 0) rc = plan_memory(p, node, start_dir, mspec, tok.n_vocab, &mflags);
    if (rc == 0) {
        if (start_dir) { /* tensor by tensor: no host copy of the whole model */
            rc = uf_hf_model_load(&model, &p->dev, start_dir, NULL, mflags);
        } else {
            struct uf_model_config c;
            rc = uf_memplan_config_new(mspec, tok.n_vocab, &c);
            if (rc == 0) rc = uf_model_init(&model, &p->dev, &c, (uint64_t)jnum(mspec, "seed", 1), mflags);
        }
        if (rc == 0) {
            model.checkpointing = jbool(optim_spec, "checkpointing");
            uf_log(1, "model: base weights %s, activation checkpointing %s",
                   model.bf16_base ? "bf16" : "f32", model.checkpointing ? "on" : "off");
        }
    }
    /* theta_0: the weights before alignment: the `base` model when given, else those of the
     * start stage before its alignment data (its pre-trained weights, or the Hugging Face folder
     * or checkpoint it started from) */
    struct uf_tensor theta0;
    memset(&theta0, 0, sizeof theta0);
    if (rc == 0) {
        char *t0 = base_dir(p, node, start_dir);
        if (t0) {
            struct uf_model_config c0;
            rc = uf_hf_load_device(t0, NULL, &p->dev, &c0, NULL, &theta0);
            if (rc) uf_fail_prefix("theta_0 (base) %s", t0);
            else if (theta0.numel != model.numel)
                rc = uf_fail("theta_0 (base) %s has %lld weights, the model %lld: give base = a model of "
                             "the same architecture", t0, (long long)theta0.numel, (long long)model.numel);
        }
        free(t0);
    }
    const char *template_name = jstr(node, "template", "plain");
    const cJSON *lora = cJSON_GetObjectItem(node, "lora");
    if (rc == 0 && lora) {
        struct uf_lora_config lc = {(int)jnum(lora, "r", 8), (float)jnum(lora, "alpha", 16),
                                    (float)jnum(lora, "dropout", 0.05), 0};
        rc = uf_lora_targets_parse(jstr(lora, "targets", "all"), &lc.targets);
        if (rc == 0) rc = uf_model_lora_init(&model, &lc, 1);
    }
    const cJSON *pre = cJSON_GetObjectItem(node, "pretrain");
    if (rc == 0 && pre) {
        const cJSON *po = cJSON_GetObjectItem(node, "pretrain_optim");
        rc = train_phase(p, &model, &tok, template_name, pre, po ? po : cJSON_GetObjectItem(node, "optim"),
                         NULL, NULL, dir, "pretrain", "pre-training");
        if (rc == 0) { /* theta_0 (pre-alignment weights) for merges and SafeLoRA of later runs */
            char *pd = uf_sprintf("%s/pretrain/model", dir);
            float *host = uf_malloc((size_t)model.numel * sizeof(float));
            uf_model_save_params(&model, host);
            rc = uf_hf_save(pd, &model.cfg, NULL, host, UF_ST_F32, NULL);
            free(host);
            free(pd);
        }
    }
    const cJSON *data = cJSON_GetObjectItem(node, "data");
    if (rc == 0 && data)
        rc = train_phase(p, &model, &tok, template_name, data, cJSON_GetObjectItem(node, "optim"),
                         cJSON_GetObjectItem(node, "methods"), theta0.buf ? &theta0 : NULL, dir, ".", name);
    if (rc == 0 && model.lora.rank > 0 && !model.lora_merged) rc = uf_model_lora_merge(&model);
    if (rc == 0) {
        model.training = 0;
        float *host = uf_malloc((size_t)model.numel * sizeof(float));
        uf_model_save_params(&model, host);
        rc = uf_hf_save(final_dir, &model.cfg, NULL, host, UF_ST_F32, NULL);
        free(host);
        if (rc == 0) {
            char *tp = uf_sprintf("%s/tokenizer.json", final_dir);
            rc = uf_tokenizer_save(&tok, tp);
            free(tp);
        }
    }
    if (rc == 0) rc = write_results(p, node, dir, &model, &tok, template_name, NULL);
    if (theta0.buf) uf_tensor_free(&theta0);
    if (model.dev) uf_model_free(&model);
    uf_tokenizer_free(&tok);
    free(start_dir);
    if (lock_fd >= 0) close(lock_fd); /* releases the lock */
    lock_fd = -1;
    if (rc) goto fail;
    free(dir);
    *model_dir_out = final_dir;
    return 0;
fail:
    if (lock_fd >= 0) close(lock_fd);
    uf_fail_prefix("%s %s", is_stage ? "stage" : "run", name);
    free(dir);
    free(final_dir);
    return -1;
}

/* One line per finished node: name and every metric with its interval. */
static void print_table(struct uf_pipeline *p) {
    static const char *cols[] = {"asr", "compliance", "off_format", "accuracy", "over_refusal", "pass@1"};
    printf("\n%-28s", "run");
    for (size_t c = 0; c < UF_ARRAY_LEN(cols); c++) printf(" %17s", cols[c]);
    printf("\n");
    const char *groups[] = {"stages", "runs"};
    for (int g = 0; g < 2; g++) {
        const cJSON *n;
        cJSON_ArrayForEach(n, cJSON_GetObjectItem(p->plan, groups[g])) {
            if (p->only && g == 1 && strcmp(jstr(n, "name", ""), p->only) != 0) continue;
            char *dir = node_dir(p, n, g == 0), *path = uf_sprintf("%s/results.json", dir);
            struct uf_results r;
            if (uf_file_exists(path) && uf_results_read(&r, path) == 0) {
                printf("%-28s", jstr(n, "name", "?"));
                for (size_t c = 0; c < UF_ARRAY_LEN(cols); c++) {
                    const struct uf_result_metric *m = uf_results_metric(&r, cols[c]);
                    if (m) printf("  %5.1f [%4.1f,%5.1f]", 100 * m->value, 100 * m->lo, 100 * m->hi);
                    else printf(" %17s", "-");
                }
                printf("\n");
                uf_results_free(&r);
            }
            free(path);
            free(dir);
        }
    }
    printf("(percent, 95%% Wilson interval)\n");
}

int uf_pipeline_run(struct uf_pipeline *p) {
    const cJSON *runs = cJSON_GetObjectItem(p->plan, "runs"), *r;
    int done = 0;
    if (!p->only) { /* every stage too, so a recipe of stages alone works */
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(p->plan, "stages")) {
            char *md = NULL;
            if (run_node(p, s, 1, &md)) return -1;
            free(md);
        }
    }
    cJSON_ArrayForEach(r, runs) {
        if (p->only && strcmp(jstr(r, "name", ""), p->only) != 0) continue;
        char *md = NULL;
        if (run_node(p, r, 0, &md)) return -1;
        free(md);
        done++;
    }
    if (p->only && done == 0) return uf_fail("the recipe has no run named '%s'", p->only);
    print_table(p);
    return 0;
}

int uf_pipeline_eval(struct uf_pipeline *p, const char *model_dir, const char *out_dir) {
    const cJSON *node = NULL, *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(p->plan, "runs"))
        if (!node && (!p->only || strcmp(jstr(r, "name", ""), p->only) == 0)) node = r;
    if (!node && !p->only) cJSON_ArrayForEach(r, cJSON_GetObjectItem(p->plan, "stages")) if (!node) node = r;
    if (!node) return uf_fail(p->only ? "the recipe has no run named '%s'" : "the recipe declares no run%s",
                              p->only ? p->only : "");
    if (cJSON_GetArraySize(cJSON_GetObjectItem(node, "eval")) == 0)
        return uf_fail("%s has no eval = { ... } list", jstr(node, "name", "?"));
    if (uf_mkdir_p(out_dir)) return -1;
    struct uf_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    if (uf_tokenizer_load(&tok, model_dir)) return -1;
    struct uf_model model;
    memset(&model, 0, sizeof model);
    /* the run's bf16 knob (uf.adamw bf16 = true) stores the evaluated weights as bf16 too */
    int bf16 = jbool(cJSON_GetObjectItem(node, "optim"), "bf16");
    int rc = uf_hf_model_load(&model, &p->dev, model_dir, NULL,
                              UF_MODEL_FROZEN | (bf16 ? UF_MODEL_BF16_BASE : 0));
    if (rc == 0) {
        uf_log(1, "evaluating %s with the evaluations of %s", model_dir, jstr(node, "name", "?"));
        const char *base = strrchr(out_dir, '/');
        rc = write_results(p, node, out_dir, &model, &tok, jstr(node, "template", "plain"),
                           base && base[1] ? base + 1 : out_dir);
    }
    if (model.dev) uf_model_free(&model);
    uf_tokenizer_free(&tok);
    return rc;
}
