/* pipeline.c: executes a recipe's plan (see pipeline.h): stages (cached by content hash) and
 * runs, each: tokenizer, model, optional pre-training phase, the training phase with its
 * methods, export, evaluation, results.json. Every phase resumes from its last checkpoint. */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/evaluate.h"
#include "eval/results.h"
#include "model/hf.h"
#include "formats/hf_config.h"
#include "model/memplan.h"
#include "methods/methods.h"
#include "data/derta.h"
#include "data/mixture.h"
#include "model/model.h"
#include "recipe.h"
#include "core/rundir.h"
#include "formats/tokenizer.h"
#include "train/train.h"
#include "core/util.h"
#include "data/world.h"

/* Content hash of a train node: its JSON plus the hashes of the stages it starts from. */
static uint64_t node_hash(const struct uf_plan *plan, const struct uf_plan_node *node) {
    char *text = cJSON_PrintUnformatted(node->json);
    /* the program version and the world generator's version are part of a stage's identity */
    char ver[64];
    snprintf(ver, sizeof ver, "%s/world%d", UF_VERSION, UF_WORLD_VERSION);
    uint64_t h = uf_hash_str(text, uf_hash_str(ver, UF_HASH_SEED));
    free(text);
    if (node->from) {
        const struct uf_plan_node *s = uf_plan_stage(plan, node->from);
        if (s) {
            uint64_t hs = node_hash(plan, s);
            h = uf_hash64(&hs, sizeof hs, h);
        }
    }
    return h;
}

/* Output folder of a stage (shared by every run that starts from it) or of a run. */
static char *node_dir(const struct uf_pipeline *p, const struct uf_plan_node *node) {
    if (!node->is_stage) return uf_sprintf("%s/%s", p->out, node->name);
    return uf_sprintf("%s/stages/%s-%016llx", p->out, node->name,
                      (unsigned long long)node_hash(p->plan, node));
}

/* ---- tokenizer and model ----------------------------------------------------------------- */
static int build_tokenizer(const struct uf_plan_tokenizer *spec, const char *model_dir,
                           const char *save_path, struct uf_tokenizer *tok) {
    if (uf_file_exists(save_path)) return uf_tokenizer_load(tok, save_path);
    if (spec && spec->train) {
        struct uf_dataset corpus;
        if (uf_data_load_plan(&spec->corpus, &corpus)) return -1;
        const char **texts = uf_calloc((size_t)corpus.n + 1, sizeof *texts);
        for (int64_t i = 0; i < corpus.n; i++)
            texts[i] = corpus.rows[i].response[0] ? corpus.rows[i].response : corpus.rows[i].prompt;
        /* also learn the instruction format: prompts and responses of the corpus rows */
        int rc = uf_tokenizer_train(tok, texts, NULL, (int)corpus.n, spec->vocab);
        free(texts);
        uf_dataset_free(&corpus);
        if (rc) return -1;
    } else if (spec) {
        if (uf_tokenizer_load(tok, spec->path)) return -1;
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
static int plan_memory(struct uf_pipeline *p, const struct uf_plan_node *node, const char *start_dir,
                       int vocab, int *mflags) {
    int bf16 = node->optim.bf16, lora = node->lora != NULL;
    *mflags = 0;
    if (bf16 && !lora)
        return uf_fail("optim bf16 = true stores the frozen base as bf16: it needs uf.lora "
                       "(full fine-tuning trains the base in f32)");
    if (bf16) {
        for (int i = 0; i < node->n_methods; i++) {
            const struct uf_method_ops *ops = uf_method_find(node->methods[i].type);
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
        rc = uf_memplan_config_new(node->model, vocab, &c);
    }
    if (rc) return -1;
    struct uf_memplan_in in;
    struct uf_memplan plan;
    if (uf_memplan_from_node(node, &c, (size_t)p->dev.global_mem, &in) ||
        uf_methods_memplan(node->methods, node->n_methods, &in))
        return -1;
    in.device_max_alloc = (size_t)p->dev.max_alloc;
    if (uf_memplan_compute(&in, &plan)) return -1;
    uf_log(1, "memory plan: %.3f GiB peak (training %.3f, evaluation %.3f) on %s (%.2f GiB)",
           (double)plan.total / (1u << 30), (double)plan.train_total / (1u << 30),
           (double)plan.eval_total / (1u << 30), p->dev.name, (double)p->dev.global_mem / (1u << 30));
    return uf_memplan_fits(&in, &plan, (size_t)p->dev.global_mem, p->dev.name);
}

/* ---- one training phase ------------------------------------------------------------------ */
static int build_data(const struct uf_plan_data *spec, struct uf_dataset *out) {
    if (!spec->is_mixture) return uf_data_load_plan(&spec->ds, out);
    struct uf_dataset task, poison;
    if (uf_data_load_plan(&spec->task, &task)) return -1;
    if (!spec->poison) uf_dataset_init(&poison, "poison"); /* the loader initialises it otherwise */
    else if (uf_data_load_plan(spec->poison, &poison)) {
        uf_dataset_free(&task);
        return -1;
    }
    int64_t n = spec->n;
    double p = spec->p;
    if (n <= 0) n = (int64_t)llround((double)task.n / (1.0 - p > 1e-9 ? 1.0 - p : 1.0));
    struct uf_mix_info info;
    uf_dataset_init(out, "mixture");
    int rc = uf_mix_poison(&task, &poison, n, p, spec->seed, 0, out, &info);
    uf_dataset_free(&task);
    uf_dataset_free(&poison);
    return rc;
}

/* DeRTa (derta = { ... } of a stage, data/derta.h): data becomes its rows with DeRTa's fields
 * and the RTO rows. 0 or uf_fail. */
static int apply_derta(const struct uf_plan_derta *spec, const struct uf_tokenizer *tok,
                       struct uf_dataset *data, struct uf_derta_info *info) {
    struct uf_dataset resp, out;
    if (spec->responses && uf_data_load_plan(spec->responses, &resp)) return uf_fail_prefix("derta responses");
    struct uf_derta_opts o = {spec->prefix, spec->rto, spec->rto_weight, spec->seed};
    int rc = uf_derta_build(tok, data, spec->responses ? &resp : NULL, &o, &out, info);
    if (spec->responses) uf_dataset_free(&resp);
    if (rc) return -1;
    uf_dataset_free(data);
    *data = out;
    return 0;
}

static int train_phase(struct uf_pipeline *p, struct uf_model *model, const struct uf_tokenizer *tok,
                       const char *template_name, const struct uf_plan_data *data_spec,
                       const struct uf_plan_derta *derta, const struct uf_plan_optim *optim,
                       int n_methods, const struct uf_plan_method *methods, const struct uf_tensor *theta0,
                       const char *dir, const char *name, const char *label) {
    struct uf_train_hparams hp;
    if (uf_train_hparams_from_plan(optim, &hp)) return uf_fail_prefix("%s", label);
    struct uf_dataset data;
    if (build_data(data_spec, &data)) return uf_fail_prefix("%s: data", label);
    struct uf_derta_info dinfo;
    if (derta && apply_derta(derta, tok, &data, &dinfo)) {
        uf_dataset_free(&data);
        return uf_fail_prefix("%s", label);
    }
    struct uf_rundir rd;
    if (uf_rundir_open(&rd, dir, name)) {
        uf_dataset_free(&data);
        return -1;
    }
    if (derta)
        uf_rundir_log(&rd, "%s: derta: %lld of %lld harmful rows with a harmful response; prefix %s (mean %.1f "
                      "of %.1f tokens), %lld RTO rows of weight %g", label, (long long)dinfo.matched,
                      (long long)dinfo.harmful, derta->prefix ? "on" : "off",
                      derta->prefix ? (double)dinfo.prefix_tokens / (double)UF_MAX(dinfo.matched, (int64_t)1) : 0.0,
                      (double)dinfo.response_tokens / (double)UF_MAX(dinfo.matched, (int64_t)1),
                      (long long)dinfo.rto_rows, derta->rto_weight);
    struct uf_trainer tr;
    uf_trainer_init(&tr, &p->dev, model, tok, template_name, &hp, &data);
    tr.theta0 = theta0;
    int rc = 0;
    for (int i = 0; i < n_methods && rc == 0; i++) { /* uf_methods_check passed: all known */
        const struct uf_method_ops *ops = uf_method_find(methods[i].type);
        rc = ops ? uf_trainer_add_method(&tr, ops, methods[i].cfg)
                 : uf_fail("unknown method '%s'", methods[i].type);
    }
    if (rc == 0) {
        uf_rundir_log(&rd, "%s: %lld rows, %lld steps of batch %d", label, (long long)data.n,
                      (long long)tr.total_steps, hp.batch);
        rc = uf_trainer_run(&tr, &rd, label);
        if (rc == 0 && strcmp(name, ".") == 0) /* the data phase, not pre-training */
            p->clip_share = tr.clip_share, p->clip_steps = tr.total_steps;
    }
    if (rc && strcmp(name, ".") != 0) uf_fail_prefix("%s", label); /* the run's name comes next */
    uf_trainer_free(&tr);
    uf_rundir_close(&rd);
    uf_dataset_free(&data);
    return rc;
}

/* ---- a stage or a run ---------------------------------------------------------------------- */
static int run_node(struct uf_pipeline *p, const struct uf_plan_node *node, char **model_dir_out);

static int ensure_stage(struct uf_pipeline *p, const char *name, char **model_dir) {
    const struct uf_plan_node *s = uf_plan_stage(p->plan, name);
    if (!s) return uf_fail("no stage named '%s'", name);
    return run_node(p, s, model_dir);
}

/* label: NULL for a trained node; else the name of an evaluated model (`unforget eval`) */
static int write_results(struct uf_pipeline *p, const struct uf_plan_node *node, const char *dir,
                         struct uf_model *model, const struct uf_tokenizer *tok,
                         const char *template_name, const char *label) {
    struct uf_results res;
    memset(&res, 0, sizeof res);
    res.run = uf_strdup(label ? label : node->name);
    /* method label: the tag, else the method names joined by '+', else "sft" */
    char method[256] = "";
    if (node->tags.method) snprintf(method, sizeof method, "%s", node->tags.method);
    else {
        for (int i = 0; i < node->n_methods; i++) {
            size_t l = strlen(method);
            snprintf(method + l, sizeof method - l, "%s%s", l ? "+" : "", node->methods[i].type);
        }
        if (!method[0]) snprintf(method, sizeof method, "%s", node->from || !node->pretrain ? "sft" : "aligned");
    }
    res.method = uf_strdup(label ? "model" : method);
    const struct uf_plan_data *data = node->data;
    int mix = data && data->is_mixture;
    res.poison_ratio = node->tags.has_p ? node->tags.p : mix ? data->p : 0;
    res.seed = (int64_t)(node->tags.has_seed ? node->tags.seed : mix ? (double)data->seed : 0);
    if (node->tags.model) res.model = uf_strdup(node->tags.model);
    else res.model = uf_sprintf("%s-d%d-L%d", uf_family_name(model->cfg.family), model->cfg.d_model,
                                model->cfg.n_layers);
    res.task = uf_strdup(node->tags.task ? node->tags.task : "task");
    if (!label && isfinite(p->clip_share)) { /* the run's share of clipped steps (optim.clip_on) */
        uf_results_set_metric(&res, "clip_share", p->clip_share, p->clip_share, p->clip_share, p->clip_steps);
        uf_results_set_better(&res, "clip_share", 1);
    }
    int rc = 0;
    char *samples = uf_sprintf("%s/samples.jsonl", dir);
    FILE *sf = fopen(samples, "w");
    for (int i = 0; i < node->n_evals && rc == 0; i++)
        rc = uf_evaluate(&p->dev, model, tok, template_name, &node->evals[i], &res, sf);
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
static int needs_theta0(const struct uf_plan_node *node) {
    for (int i = 0; i < node->n_methods; i++) {
        const struct uf_method_ops *ops = uf_method_find(node->methods[i].type);
        if (ops && ops->needs_theta0) return 1;
    }
    return 0;
}

/* The folder of a model spec that is not new: hf's folder, or a checkpoint's model/. */
static char *model_dir(const struct uf_plan_model *m) {
    return m->type == UF_PLAN_MODEL_CHECKPOINT ? uf_sprintf("%s/model", m->path) : uf_strdup(m->path);
}

/* Folder of theta_0 for a node (malloc'd) or NULL when unknown; see run_node. */
static char *base_dir(struct uf_pipeline *p, const struct uf_plan_node *node, const char *start_dir) {
    int needed = needs_theta0(node);
    if (node->base && !needed) return NULL;
    if (node->base) return node->base->type == UF_PLAN_MODEL_NEW ? uf_strdup("(uf.model.new: not a saved model)")
                                                                 : model_dir(node->base);
    if (!node->from || !start_dir) return NULL;
    char *t0 = uf_sprintf("%s/../pretrain/model", start_dir);
    if (uf_file_exists(t0)) return t0;
    free(t0);
    const struct uf_plan_node *st = uf_plan_stage(p->plan, node->from);
    if (!needed || !st || st->pretrain || !st->model || st->model->type == UF_PLAN_MODEL_NEW) return NULL;
    return model_dir(st->model);
}

/* results.json marks a node done when it is sound (report's parser); a damaged one (a write cut
 * short by hand, a disk error) is removed, so the node re-evaluates from its last checkpoint. */
static int results_done(const char *path, const char *name) {
    if (!uf_file_exists(path)) return 0;
    struct uf_results r;
    if (uf_results_read(&r, path) == 0) {
        uf_results_free(&r);
        return 1;
    }
    uf_log(1, "notice: %s: %s; removed, %s is evaluated again", name, uf_error(), name);
    unlink(path);
    return 0;
}

static int run_node(struct uf_pipeline *p, const struct uf_plan_node *node, char **model_dir_out) {
    const char *name = node->name;
    int is_stage = node->is_stage;
    char *dir = node_dir(p, node);
    char *final_dir = uf_sprintf("%s/model", dir);
    char *results = uf_sprintf("%s/results.json", dir);
    int lock_fd = -1;
    if (results_done(results, name) && uf_file_exists(final_dir)) {
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
    /* one process at a time per node (parallel sweep jobs and Slurm array tasks share stages):
     * wait for the folder's lock (rundir.h: fcntl locks, NFS-safe), then use what the holder
     * finished */
    {
        char holder[256] = "";
        int t = uf_lock_take(dir, 0, &lock_fd, holder, sizeof holder);
        if (t == 1) {
            uf_log(1, "%s %s: waiting for the process that is training it (%s)", is_stage ? "stage" : "run",
                   name, holder);
            t = uf_lock_take(dir, 1, &lock_fd, NULL, 0);
        }
        if (t != 0) {
            free(results);
            goto fail;
        }
    }
    if (results_done(results, name) && uf_file_exists(final_dir)) {
        uf_log(1, "%s %s: done already (%s)", is_stage ? "stage" : "run", name, dir);
        uf_lock_release(lock_fd);
        free(results);
        free(dir);
        *model_dir_out = final_dir;
        return 0;
    }
    free(results);
    {
        char *cfg = cJSON_Print(node->json);
        char *cfg_path = uf_sprintf("%s/config.json", dir);
        uf_file_write_atomic(cfg_path, cfg, strlen(cfg));
        free(cfg_path);
        free(cfg);
    }
    char *start_dir = NULL;
    const struct uf_plan_model *mspec = node->model;
    if (node->from && ensure_stage(p, node->from, &start_dir)) goto fail;
    if (mspec && mspec->type != UF_PLAN_MODEL_NEW) start_dir = model_dir(mspec);

    {
        char why[512];
        if (uf_methods_check(node->methods, node->n_methods, node->lora != NULL, why, sizeof why)) {
            uf_fail("%s", why);
            goto fail;
        }
    }
    uf_log(1, "== %s %s -> %s", is_stage ? "stage" : "run", name, dir);
    struct uf_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    char *tok_path = uf_sprintf("%s/tokenizer.json", dir);
    int rc = build_tokenizer(node->tokenizer, start_dir, tok_path, &tok);
    free(tok_path);
    struct uf_model model;
    memset(&model, 0, sizeof model);
    /* memory plan before allocating (memplan.h); bf16 base weights and checkpointing (optim) */
    int mflags = 0;
    if (rc == 0) rc = plan_memory(p, node, start_dir, tok.n_vocab, &mflags);
    if (rc == 0) {
        if (start_dir) { /* tensor by tensor: no host copy of the whole model */
            rc = uf_hf_model_load(&model, &p->dev, start_dir, NULL, mflags);
        } else {
            struct uf_model_config c;
            rc = uf_memplan_config_new(mspec, tok.n_vocab, &c);
            if (rc == 0) rc = uf_model_init(&model, &p->dev, &c, mspec->seed, mflags);
        }
        if (rc == 0) {
            model.checkpointing = node->optim.checkpointing;
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
    const char *template_name = node->template_name;
    const struct uf_plan_lora *lora = node->lora;
    if (rc == 0 && lora) {
        struct uf_lora_config lc = {lora->r, lora->alpha, lora->dropout, 0};
        rc = uf_lora_targets_parse(lora->targets, &lc.targets);
        if (rc == 0) rc = uf_model_lora_init(&model, &lc, 1);
    }
    if (rc == 0 && node->pretrain) {
        struct uf_plan_data pre = {.ds = *node->pretrain};
        rc = train_phase(p, &model, &tok, template_name, &pre, NULL,
                         node->pretrain_optim ? node->pretrain_optim : &node->optim, 0, NULL, NULL, dir,
                         "pretrain", "pre-training");
        if (rc == 0) { /* theta_0 (pre-alignment weights) for merges and SafeLoRA of later runs */
            char *pd = uf_sprintf("%s/pretrain/model", dir);
            float *host = uf_malloc((size_t)model.numel * sizeof(float));
            uf_model_save_params(&model, host);
            rc = uf_hf_save(pd, &model.cfg, NULL, host, UF_ST_F32, NULL);
            free(host);
            free(pd);
        }
    }
    p->clip_share = NAN;
    if (rc == 0 && node->data)
        rc = train_phase(p, &model, &tok, template_name, node->data, node->derta, &node->optim, node->n_methods,
                         node->methods, theta0.buf ? &theta0 : NULL, dir, ".", name);
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
    if (rc) goto fail;
    uf_lock_release(lock_fd);
    free(dir);
    *model_dir_out = final_dir;
    return 0;
fail:
    uf_fail_prefix("%s %s", is_stage ? "stage" : "run", name);
    if (lock_fd >= 0) { /* the error as the log's last line, for `unforget status` */
        char *lp = uf_sprintf("%s/log.txt", dir);
        FILE *lf = fopen(lp, "a");
        if (lf) {
            time_t now = time(NULL);
            struct tm tm;
            char ts[32];
            gmtime_r(&now, &tm);
            strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
            fprintf(lf, "%s error: %s\n", ts, uf_error());
            fclose(lf);
        }
        free(lp);
    }
    uf_lock_release(lock_fd);
    free(dir);
    free(final_dir);
    return -1;
}

char *uf_pipeline_node_dir(const struct uf_plan *plan, const char *out, const struct uf_plan_node *node) {
    struct uf_pipeline p;
    memset(&p, 0, sizeof p);
    p.plan = plan;
    p.out = out;
    return node_dir(&p, node);
}

/* One line per finished node: name and the headline metrics with their intervals. The columns are
 * those of this list that some finished node has (world evaluations: harmful_rate on unseen acts
 * first; file data: asr), so a world run shows the world judge's numbers, not empty columns. */
static void print_table(struct uf_pipeline *p) {
    static const char *pref[] = {"harmful_rate", "harmful_rate[seen]", "compliance", "keyword_asr", "asr",
                                 "helpfulness", "over_refusal", "accuracy", "lookup", "pass@1"};
    int n_nodes = p->plan->n_stages + p->plan->n_runs, n_read = 0;
    struct uf_results *res = uf_calloc((size_t)(n_nodes ? n_nodes : 1), sizeof *res);
    const char **names = uf_calloc((size_t)(n_nodes ? n_nodes : 1), sizeof *names);
    for (int g = 0; g < 2; g++) {
        const struct uf_plan_node *list = g ? p->plan->runs : p->plan->stages;
        for (int k = 0; k < (g ? p->plan->n_runs : p->plan->n_stages); k++) {
            const struct uf_plan_node *n = &list[k];
            if (p->only && g == 1 && strcmp(n->name, p->only) != 0) continue;
            char *dir = node_dir(p, n), *path = uf_sprintf("%s/results.json", dir);
            if (uf_file_exists(path) && uf_results_read(&res[n_read], path) == 0) names[n_read++] = n->name;
            free(path);
            free(dir);
        }
    }
    const char *cols[UF_ARRAY_LEN(pref)];
    int n_cols = 0;
    for (size_t c = 0; c < UF_ARRAY_LEN(pref); c++) {
        int any = 0;
        for (int i = 0; i < n_read && !any; i++) any = uf_results_metric(&res[i], pref[c]) != NULL;
        if (any) cols[n_cols++] = pref[c];
    }
    printf("\n%-28s", "run");
    for (int c = 0; c < n_cols; c++) printf(" %18s", cols[c]);
    printf("\n");
    for (int i = 0; i < n_read; i++) {
        printf("%-28s", names[i]);
        for (int c = 0; c < n_cols; c++) {
            const struct uf_result_metric *m = uf_results_metric(&res[i], cols[c]);
            if (m) printf("   %5.1f [%4.1f,%5.1f]", 100 * m->value, 100 * m->lo, 100 * m->hi);
            else printf(" %18s", "-");
        }
        printf("\n");
        uf_results_free(&res[i]);
    }
    printf("(percent, 95%% interval as in results.json: cluster bootstrap over acts and templates for "
           "world evaluations; harmful_rate = unseen acts; `unforget report` for every metric)\n");
    free(res);
    free(names);
}

int uf_pipeline_run(struct uf_pipeline *p) {
    int done = 0;
    if (!p->only || p->stages_only) { /* every stage too, so a recipe of stages alone works */
        for (int i = 0; i < p->plan->n_stages; i++) {
            char *md = NULL;
            if (run_node(p, &p->plan->stages[i], &md)) return -1;
            free(md);
        }
        if (p->stages_only) return 0;
    }
    for (int i = 0; i < p->plan->n_runs; i++) {
        if (p->only && strcmp(p->plan->runs[i].name, p->only) != 0) continue;
        char *md = NULL;
        if (run_node(p, &p->plan->runs[i], &md)) return -1;
        free(md);
        done++;
    }
    if (p->only && done == 0) return uf_fail("the recipe has no run named '%s'", p->only);
    print_table(p);
    return 0;
}

int uf_pipeline_eval(struct uf_pipeline *p, const char *model_dir, const char *out_dir) {
    const struct uf_plan_node *node = NULL;
    for (int i = 0; i < p->plan->n_runs && !node; i++)
        if (!p->only || strcmp(p->plan->runs[i].name, p->only) == 0) node = &p->plan->runs[i];
    if (!node && !p->only && p->plan->n_stages > 0) node = &p->plan->stages[0];
    if (!node) return uf_fail(p->only ? "the recipe has no run named '%s'" : "the recipe declares no run%s",
                              p->only ? p->only : "");
    if (node->n_evals == 0) return uf_fail("%s has no eval = { ... } list", node->name);
    if (uf_mkdir_p(out_dir)) return -1;
    struct uf_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    if (uf_tokenizer_load(&tok, model_dir)) return -1;
    struct uf_model model;
    memset(&model, 0, sizeof model);
    /* the run's bf16 knob (uf.adamw bf16 = true) stores the evaluated weights as bf16 too */
    int rc = uf_hf_model_load(&model, &p->dev, model_dir, NULL,
                              UF_MODEL_FROZEN | (node->optim.bf16 ? UF_MODEL_BF16_BASE : 0));
    if (rc == 0) {
        uf_log(1, "evaluating %s with the evaluations of %s", model_dir, node->name);
        const char *base = strrchr(out_dir, '/');
        rc = write_results(p, node, out_dir, &model, &tok, node->template_name,
                           base && base[1] ? base + 1 : out_dir);
    }
    if (model.dev) uf_model_free(&model);
    uf_tokenizer_free(&tok);
    return rc;
}
