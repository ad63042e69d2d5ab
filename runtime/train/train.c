/* train.c: the training loop (see train.h): batches from tokenized rows, the method hooks, the
 * optimizer with schedule and clipping, metrics, checkpoints and bit-identical resume. */
#include "train/train.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/ckpt.h"
#include "ops/clmath.h"
#include "data/derta.h"
#include "data/mixture.h"
#include "data/plan_data.h"
#include "ops/ops.h"
#include "model/optim.h"
#include "core/rundir.h"
#include "formats/template.h"
#include "formats/tokenizer.h"
#include "core/util.h"
#include "data/world.h"

/* ---- hyper-parameters ------------------------------------------------------------------- */
int uf_train_hparams_from_plan(const struct uf_plan_optim *o, struct uf_train_hparams *hp) {
    memset(hp, 0, sizeof *hp);
    hp->lr = o->lr;
    hp->beta1 = o->beta1;
    hp->beta2 = o->beta2;
    hp->eps = o->eps;
    hp->weight_decay = o->weight_decay;
    hp->clip = o->clip;
    const char *co = o->clip_on;
    if (strcmp(co, "total") != 0 && strcmp(co, "task") != 0)
        return uf_fail("optimizer: clip_on must be \"task\" or \"total\", not \"%s\"", co);
    hp->clip_on = strcmp(co, "task") == 0;
    hp->warmup = o->warmup;
    hp->epochs = o->epochs;
    hp->steps = o->steps;
    hp->batch = o->batch;
    hp->micro_batch = o->micro_batch;
    hp->max_len = o->max_len;
    hp->seed = o->seed;
    hp->checkpoint_every = o->checkpoint_every;
    hp->skip_nonfinite = o->on_nonfinite && strcmp(o->on_nonfinite, "skip") == 0;
    const char *s = o->schedule;
    hp->schedule = strcmp(s, "constant") == 0 ? 0 : strcmp(s, "linear") == 0 ? 2 : 1;
    if (hp->micro_batch == 0) hp->micro_batch = hp->batch;
    if (hp->batch <= 0 || hp->micro_batch <= 0 || hp->max_len < 2 || !(hp->lr >= 0) ||
        hp->steps < 0 || hp->checkpoint_every < 0 || !(hp->epochs >= 0 && hp->epochs <= 1e9))
        return uf_fail("optimizer: need batch, micro_batch >= 1, max_len >= 2, lr >= 0, steps and "
                       "checkpoint_every in int range and >= 0, epochs in [0, 1e9]");
    if (hp->batch % hp->micro_batch != 0)
        return uf_fail("optimizer: batch (%d) must be a multiple of micro_batch (%d)", hp->batch,
                       hp->micro_batch);
    return 0;
}

/* ---- tokenized rows --------------------------------------------------------------------- */
struct tok_row {
    int32_t *ids;    /* (n) */
    uint8_t *mask;   /* (n) 1 = predicted (loss) token */
    int32_t *target; /* (n) or NULL: the token predicted in place of ids[t] (an RTO row) */
    float weight;    /* loss weight of the row's predicted tokens (1; an RTO row: rto_weight) */
    int n;
};

struct train_priv {
    const struct uf_dataset *cached_data; /* rows of this dataset are tokenized once */
    struct tok_row *rows;
    struct uf_tensor clip_sq, clip_count; /* (1) each: the clipped gradient's squared norm (clip_on
                                             "task"), clipped steps so far (in checkpoints) */
};

static void tok_row_free(struct tok_row *r) {
    free(r->ids);
    free(r->mask);
    free(r->target);
}

/* A row with a response prefix (fields of data/derta.h, DeRTa): the prefix's tokens
 * (uf_derta_encode; only the first response_prefix_tokens of them when given) go at `at`, the
 * start of the response, untrained. With rto_weight the row becomes an RTO row: prompt + the
 * whole prefix, the target of every prefix token is the response's first token (weight
 * rto_weight), and the response is dropped. */
static int add_prefix(struct uf_trainer *tr, const struct uf_example *ex, const char *prefix, int at,
                      struct tok_row *row) {
    const char *kt = uf_example_field(ex, "response_prefix_tokens"), *wt = uf_example_field(ex, "rto_weight");
    int32_t *p;
    int L;
    if (uf_derta_encode(tr->tok, prefix, &p, &L)) return uf_fail_prefix("response_prefix");
    int k = L;
    if (kt) {
        char *end;
        long v = strtol(kt, &end, 10);
        if (end == kt || *end || v < 0) {
            free(p);
            return uf_fail("response_prefix_tokens '%s' is not a token count >= 0", kt);
        }
        if (v < k) k = (int)v;
    }
    if (at < 0 || at > row->n) at = row->n;
    if (wt) { /* RTO: ids[0..at) + p[0..L); the target of each p token is the response's first token */
        char *end;
        double w = strtod(wt, &end);
        if (end == wt || *end || !(w >= 0 && w < 1e30)) {
            free(p);
            return uf_fail("rto_weight '%s' is not a finite weight >= 0", wt);
        }
        if (at >= row->n) {
            free(p);
            return uf_fail("an RTO row (rto_weight) needs a response: its first token is the target");
        }
        int32_t first = row->ids[at];
        int n = at + L;
        row->ids = uf_realloc(row->ids, (size_t)(n ? n : 1) * sizeof *row->ids);
        row->mask = uf_realloc(row->mask, (size_t)(n ? n : 1));
        row->target = uf_malloc((size_t)(n ? n : 1) * sizeof *row->target);
        memcpy(row->ids + at, p, (size_t)L * sizeof *p);
        for (int t = 0; t < n; t++) {
            row->mask[t] = t >= at;
            row->target[t] = t >= at ? first : row->ids[t];
        }
        row->weight = (float)w;
        row->n = n;
    } else { /* MLE with a prefix: ids[0..at) + p[0..k) (untrained) + ids[at..n) */
        int n = row->n + k;
        int32_t *ids = uf_malloc((size_t)(n ? n : 1) * sizeof *ids);
        uint8_t *mask = uf_malloc((size_t)(n ? n : 1));
        memcpy(ids, row->ids, (size_t)at * sizeof *ids);
        memcpy(mask, row->mask, (size_t)at);
        memcpy(ids + at, p, (size_t)k * sizeof *ids);
        memset(mask + at, 0, (size_t)k);
        memcpy(ids + at + k, row->ids + at, (size_t)(row->n - at) * sizeof *ids);
        memcpy(mask + at + k, row->mask + at, (size_t)(row->n - at));
        free(row->ids);
        free(row->mask);
        row->ids = ids;
        row->mask = mask;
        row->n = n;
    }
    free(p);
    return 0;
}

/* Renders one example into ids + loss mask. */
static int tokenize_row(struct uf_trainer *tr, const struct uf_example *ex, struct tok_row *out) {
    memset(out, 0, sizeof *out);
    out->weight = 1.0f;
    if (ex->kind == UF_KIND_TEXT) {
        int32_t *ids = NULL;
        int n = 0;
        if (uf_tokenizer_encode(tr->tok, ex->response[0] ? ex->response : ex->prompt, 1, &ids, &n))
            return -1;
        ids = uf_realloc(ids, (size_t)(n + 1) * sizeof *ids);
        if (tr->tok->eos_id >= 0) ids[n++] = tr->tok->eos_id;
        out->ids = ids;
        out->n = n;
        out->mask = uf_malloc((size_t)n);
        memset(out->mask, 1, (size_t)n);
        out->mask[0] = 0;
        return 0;
    }
    enum uf_template tm;
    int tflags;
    if (uf_template_resolve(tr->template_name, tr->tok, &tm, &tflags)) return -1;
    struct uf_chat_tokens ct;
    const char *conv = uf_example_field(ex, "messages"); /* a multi-turn chat row (data.h) */
    if (conv) {
        struct uf_chat_msg *msgs;
        int nm;
        if (uf_chat_msgs_parse(conv, &msgs, &nm)) return -1;
        int rc = uf_template_render_chat(tr->tok, tm, msgs, nm, tflags, &ct);
        uf_chat_msgs_free(msgs, nm);
        if (rc) return -1;
    } else if (uf_template_render_ex(tr->tok, tm, tflags, NULL, ex->prompt, ex->response, &ct))
        return -1;
    out->ids = ct.ids; /* ownership moves to the row */
    out->mask = ct.mask;
    out->n = ct.n;
    const char *prefix = uf_example_field(ex, "response_prefix");
    if (prefix && !conv && add_prefix(tr, ex, prefix, ct.n_prompt, out)) {
        tok_row_free(out);
        return -1;
    }
    return 0;
}

int uf_trainer_make_batch(struct uf_trainer *tr, const struct uf_dataset *data,
                          const int64_t *rows, int n, struct uf_train_batch *b) {
    struct train_priv *pv = tr->priv;
    memset(b, 0, sizeof *b);
    struct tok_row *tmp = uf_calloc((size_t)n, sizeof *tmp);
    int T = 1;
    for (int i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= data->n) {
            free(tmp);
            return uf_fail("batch row %lld outside dataset %s of %lld rows", (long long)rows[i],
                           data->name, (long long)data->n);
        }
        if (pv && pv->cached_data == data) {
            tmp[i] = pv->rows[rows[i]];
        } else if (tokenize_row(tr, &data->rows[rows[i]], &tmp[i])) {
            for (int j = 0; j < i; j++) if (!(pv && pv->cached_data == data)) tok_row_free(&tmp[j]);
            free(tmp);
            return uf_fail_prefix("%s row %lld", data->name, (long long)rows[i]);
        }
        int len = tmp[i].n - 1; /* inputs are ids[0..n-1), targets ids[1..n) */
        if (len > tr->hp.max_len) len = tr->hp.max_len;
        if (len > T) T = len;
    }
    b->B = n;
    b->T = T;
    b->data = data;
    b->tokens = uf_calloc((size_t)n * T, sizeof *b->tokens);
    b->targets = uf_calloc((size_t)n * T, sizeof *b->targets);
    b->mask = uf_calloc((size_t)n * T, sizeof *b->mask);
    b->lengths = uf_calloc((size_t)n, sizeof *b->lengths);
    b->rows = uf_calloc((size_t)n, sizeof *b->rows);
    int pad = tr->tok->pad_id >= 0 ? tr->tok->pad_id : (tr->tok->eos_id >= 0 ? tr->tok->eos_id : 0);
    for (int i = 0; i < n; i++) {
        /* truncation: keep the first max_len + 1 tokens, i.e. cut the end of the response */
        int len = tmp[i].n - 1;
        if (len > T) len = T;
        if (len < 0) len = 0;
        b->lengths[i] = len;
        b->rows[i] = rows[i];
        for (int t = 0; t < T; t++) {
            size_t o = (size_t)i * T + t;
            if (t < len) {
                b->tokens[o] = tmp[i].ids[t];
                b->targets[o] = tmp[i].target ? tmp[i].target[t + 1] : tmp[i].ids[t + 1];
                b->mask[o] = tmp[i].mask[t + 1] ? tmp[i].weight : 0.0f;
                b->n_masked += b->mask[o] != 0.0f;
            } else {
                b->tokens[o] = pad;
                b->targets[o] = pad;
            }
        }
        if (!(pv && pv->cached_data == data)) tok_row_free(&tmp[i]);
    }
    free(tmp);
    return 0;
}

void uf_train_batch_free(struct uf_train_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->mask);
    free(b->lengths);
    free(b->rows);
    memset(b, 0, sizeof *b);
}

/* ---- teacher, anchor, datasets ------------------------------------------------------------ */
struct uf_model *uf_trainer_teacher(struct uf_trainer *tr) {
    if (tr->teacher) return tr->teacher;
    tr->teacher = uf_calloc(1, sizeof *tr->teacher);
    if (uf_model_init(tr->teacher, tr->dev, &tr->model->cfg, 0,
                      UF_MODEL_FROZEN | (tr->model->bf16_base ? UF_MODEL_BF16_BASE : 0)))
        uf_fatal(1, "creating the teacher model: %s", uf_error());
    uf_model_copy_params(tr->teacher, tr->model);
    if (tr->model->lora.rank > 0 && !tr->model->lora_merged) {
        /* the adapters at the start of training are part of theta*: fold them into the copy */
        if (uf_model_lora_init(tr->teacher, &tr->model->lora, 0) == 0) {
            uf_tensor_copy(&tr->teacher->lora_params, &tr->model->lora_params);
            uf_model_lora_merge(tr->teacher);
        }
    }
    tr->teacher->training = 0;
    return tr->teacher;
}

struct uf_tensor *uf_trainer_anchor(struct uf_trainer *tr) {
    if (tr->anchor.buf) return &tr->anchor;
    struct uf_tensor *p = uf_model_train_params(tr->model);
    uf_tensor_init(&tr->anchor, tr->dev, "anchor (theta*)", UF_F32, 1, (int64_t[]){p->numel});
    uf_tensor_copy(&tr->anchor, p);
    return &tr->anchor;
}

int uf_trainer_load_dataset(struct uf_trainer *tr, const struct uf_plan_dataset *spec, struct uf_dataset *out) {
    (void)tr;
    return uf_data_load_plan(spec, out);
}

/* ---- the loop ----------------------------------------------------------------------------- */
void uf_trainer_init(struct uf_trainer *tr, struct uf_device *dev, struct uf_model *model,
                     const struct uf_tokenizer *tok, const char *template_name,
                     const struct uf_train_hparams *hp, const struct uf_dataset *data) {
    memset(tr, 0, sizeof *tr);
    tr->dev = dev;
    tr->model = model;
    tr->tok = tok;
    tr->template_name = template_name;
    tr->hp = *hp;
    tr->data = data;
    uf_rng_init(&tr->rng, hp->seed ^ 0x5eed);
    uf_tensor_init(&tr->terms, dev, "loss terms", UF_F32, 1, (int64_t[]){UF_TRAIN_MAX_TERMS});
    uf_tensor_fill(&tr->terms, 0);
    tr->term_names[0] = "ce";
    int64_t per_epoch = (data->n + hp->batch - 1) / hp->batch;
    tr->total_steps = hp->steps > 0 ? hp->steps : (int64_t)ceil(hp->epochs * (double)per_epoch);
    if (tr->total_steps < 1) tr->total_steps = 1;
    struct train_priv *pv = uf_calloc(1, sizeof *pv);
    tr->priv = pv;
    tr->clip_share = NAN;
}

int uf_trainer_add_method(struct uf_trainer *tr, const struct uf_method_ops *ops, const cJSON *cfg) {
    if (tr->n_methods + 2 > UF_TRAIN_MAX_TERMS) return uf_fail("at most %d methods", UF_TRAIN_MAX_TERMS - 1);
    if (!tr->methods) tr->methods = uf_calloc(UF_TRAIN_MAX_TERMS - 1, sizeof *tr->methods);
    struct uf_method *me = &tr->methods[tr->n_methods++];
    me->ops = ops;
    me->cfg = cfg;
    me->slot = tr->n_methods;
    tr->term_names[me->slot] = ops->name;
    return 0;
}

static int tokenize_all(struct uf_trainer *tr) {
    struct train_priv *pv = tr->priv;
    pv->rows = uf_calloc((size_t)(tr->data->n ? tr->data->n : 1), sizeof *pv->rows);
    for (int64_t i = 0; i < tr->data->n; i++)
        if (tokenize_row(tr, &tr->data->rows[i], &pv->rows[i]))
            return uf_fail_prefix("%s row %lld", tr->data->name, (long long)i);
    pv->cached_data = tr->data;
    return 0;
}

#define UF_TRAIN_MAX_METHODS_STATE 32

/* The hooks with the signature (method, trainer), run for every method in order by run_hooks;
 * the first failure stops them and is returned (the caller cleans up). */
enum hook { HOOK_INIT, HOOK_EXTRA, HOOK_GRAD, HOOK_PROJECT, HOOK_FINISH };

static int run_hooks(struct uf_trainer *tr, enum hook h) {
    static const char *const names[] = {"init", "extra", "grad", "project", "finish"};
    for (int i = 0; i < tr->n_methods; i++) {
        struct uf_method *m = &tr->methods[i];
        const struct uf_method_ops *o = m->ops;
        int (*fn)(struct uf_method *, struct uf_trainer *) =
            h == HOOK_INIT ? o->init : h == HOOK_EXTRA ? o->extra : h == HOOK_GRAD ? o->grad
            : h == HOOK_PROJECT ? o->project : o->finish;
        if (fn && fn(m, tr) != 0) return uf_fail_prefix("method %s (%s)", o->name, names[h]);
    }
    return 0;
}

/* Every method's checkpointed state (uf_method_ops.state), named "method.<index>.<name>". */
struct mstate {
    int n;
    struct uf_method_state e[UF_TRAIN_MAX_METHODS_STATE];
    char name[UF_TRAIN_MAX_METHODS_STATE][96];
};

static void method_states(struct uf_trainer *tr, struct mstate *ms) {
    ms->n = 0;
    for (int mi = 0; mi < tr->n_methods; mi++) {
        struct uf_method *m = &tr->methods[mi];
        if (!m->ops->state) continue;
        struct uf_method_state e[UF_METHOD_MAX_STATE];
        int k = m->ops->state(m, e);
        if (ms->n + k > UF_TRAIN_MAX_METHODS_STATE)
            uf_fatal(1, "checkpoint: the methods hold more than %d state entries "
                        "(UF_TRAIN_MAX_METHODS_STATE in train.c)", UF_TRAIN_MAX_METHODS_STATE);
        for (int j = 0; j < k; j++) {
            snprintf(ms->name[ms->n], sizeof ms->name[ms->n], "method.%d.%s.%s", mi, m->ops->name,
                     e[j].name);
            ms->e[ms->n] = e[j];
            if (e[j].t) ms->e[ms->n].bytes = uf_tensor_bytes(e[j].t);
            ms->e[ms->n].name = ms->name[ms->n];
            ms->n++;
        }
    }
}

/* Checkpoint entries: trainable params, optimizer state, step, rng, the methods' state. */
static int save_checkpoint(struct uf_trainer *tr, struct uf_optim *opt, const char *path) {
    struct uf_tensor *p = uf_model_train_params(tr->model);
    size_t n = (size_t)p->numel, no = (size_t)opt->numel;
    float *hp = uf_malloc(n * 4), *hm = uf_malloc(no * 4), *hv = uf_malloc(no * 4);
    uf_tensor_download(p, hp);
    uf_optim_save_state(opt, hm, hv);
    int64_t step = tr->step;
    struct mstate ms;
    method_states(tr, &ms);
    struct train_priv *pv = tr->priv;
    float clipped = 0;
    uf_tensor_download(&pv->clip_count, &clipped);
    struct uf_ckpt_entry e[7 + UF_TRAIN_MAX_METHODS_STATE] = {
        {"params", hp, n * 4}, {"adam.m", hm, no * 4}, {"adam.v", hv, no * 4},
        {"step", &step, sizeof step}, {"rng", &tr->rng, sizeof tr->rng},
        {"model.n_forward", &tr->model->n_forward, sizeof tr->model->n_forward},
        {"clip.count", &clipped, sizeof clipped},
    };
    void *tmp[UF_TRAIN_MAX_METHODS_STATE] = {0};
    for (int i = 0; i < ms.n; i++) {
        const void *data = ms.e[i].host;
        if (ms.e[i].t) {
            tmp[i] = uf_malloc(UF_MAX(ms.e[i].bytes, (size_t)1));
            uf_tensor_download(ms.e[i].t, tmp[i]);
            data = tmp[i];
        }
        e[7 + i] = (struct uf_ckpt_entry){ms.e[i].name, data, ms.e[i].bytes};
    }
    int rc = uf_ckpt_write(path, e, 7 + ms.n, 0);
    for (int i = 0; i < ms.n; i++) free(tmp[i]);
    free(hp), free(hm), free(hv);
    return rc;
}

static int load_checkpoint(struct uf_trainer *tr, struct uf_optim *opt, const char *path) {
    struct uf_ckpt c;
    if (uf_ckpt_read(path, &c)) return -1;
    struct uf_tensor *p = uf_model_train_params(tr->model);
    size_t n = (size_t)p->numel, no = (size_t)opt->numel;
    float *hp = uf_malloc(n * 4), *hm = uf_malloc(no * 4), *hv = uf_malloc(no * 4);
    int64_t step = 0;
    int rc = uf_ckpt_get(&c, "params", hp, n * 4) || uf_ckpt_get(&c, "adam.m", hm, no * 4) ||
             uf_ckpt_get(&c, "adam.v", hv, no * 4) || uf_ckpt_get(&c, "step", &step, sizeof step) ||
             uf_ckpt_get(&c, "rng", &tr->rng, sizeof tr->rng) ||
             uf_ckpt_get(&c, "model.n_forward", &tr->model->n_forward, sizeof tr->model->n_forward);
    struct mstate ms;
    method_states(tr, &ms);
    for (int i = 0; i < ms.n && rc == 0; i++) {
        void *dst = ms.e[i].t ? uf_malloc(UF_MAX(ms.e[i].bytes, (size_t)1)) : ms.e[i].host;
        rc = uf_ckpt_get(&c, ms.e[i].name, dst, ms.e[i].bytes);
        if (rc == 0 && ms.e[i].t) uf_tensor_upload(ms.e[i].t, dst);
        if (ms.e[i].t) free(dst);
    }
    float clipped = 0; /* absent from checkpoints written before clip_on: counted from here */
    if (rc == 0 && uf_ckpt_find(&c, "clip.count")) rc = uf_ckpt_get(&c, "clip.count", &clipped, sizeof clipped);
    if (rc == 0) {
        uf_tensor_upload(&((struct train_priv *)tr->priv)->clip_count, &clipped);
        uf_tensor_upload(p, hp);
        uf_optim_load_state(opt, hm, hv);
        opt->step = (int)step;
        tr->step = step;
    } else {
        uf_fail_prefix("checkpoint %s", path);
    }
    free(hp), free(hm), free(hv);
    uf_ckpt_free(&c);
    return rc ? -1 : 0;
}

/* SIGINT / SIGTERM during training: the first asks the loop to stop after the current step (with
 * a checkpoint), a second one exits at once. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    (void)sig;
    if (interrupted) {
        static const char msg[] = "\nunforget: interrupted again; exiting now\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(130);
    }
    interrupted = 1;
}

/* A metrics number: JSON has no NaN / Inf, they are written as null. */
static const char *json_num(char buf[40], double v) {
    if (!isfinite(v)) return "null";
    snprintf(buf, 40, "%.6g", v);
    return buf;
}

/* "ce, ewc and the gradient norm" from the guard's bits. */
static void nonfinite_terms(const struct uf_trainer *tr, int bits, char *out, size_t size) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i <= tr->n_methods && o < size; i++)
        if (bits & (1 << i))
            o += (size_t)snprintf(out + o, size - o, "%sloss term '%s'", o ? ", " : "", tr->term_names[i]);
    if ((bits & (1 << 30)) && o < size)
        snprintf(out + o, size - o, "%sthe gradient norm", o ? ", " : "");
}

/* on_nonfinite = "stop": fails naming the run, the first bad step and its terms. */
static int nonfinite_stop(const struct uf_trainer *tr, struct uf_optim_health h, const char *label) {
    if (tr->hp.skip_nonfinite || h.bad_steps == 0) return 0;
    char terms[256];
    nonfinite_terms(tr, h.bits, terms, sizeof terms);
    return uf_fail("non-finite values (NaN or Inf) at step %d of %s: %s; training stopped, the "
                   "last checkpoint before it is kept (lower the learning rate, or set "
                   "on_nonfinite = \"skip\" in uf.adamw to skip such steps)", h.first_step, label,
                   terms);
}

int uf_trainer_run(struct uf_trainer *tr, struct uf_rundir *rd, const char *label) {
    const struct uf_train_hparams *hp = &tr->hp;
    if (tokenize_all(tr) || run_hooks(tr, HOOK_INIT)) return -1;
    struct uf_optim opt;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.lr = hp->lr, oc.beta1 = hp->beta1, oc.beta2 = hp->beta2, oc.eps = hp->eps;
    oc.weight_decay = hp->weight_decay, oc.max_norm = hp->clip_on ? 0.0f : hp->clip;
    oc.schedule = (enum uf_lr_schedule)hp->schedule;
    oc.total_steps = (int)tr->total_steps;
    oc.warmup_steps = hp->warmup < 1.0f ? (int)lround(hp->warmup * (double)tr->total_steps)
                                        : (int)hp->warmup;
    oc.min_lr_ratio = 0.0f;
    if (uf_optim_init(&opt, tr->model, &oc)) return -1;
    struct train_priv *pv = tr->priv;
    uf_tensor_init(&pv->clip_sq, tr->dev, "clip.sq", UF_F32, 1, (int64_t[]){1});
    uf_tensor_init(&pv->clip_count, tr->dev, "clip.count", UF_F32, 1, (int64_t[]){1});
    uf_tensor_fill(&pv->clip_count, 0);
    tr->clip_share = NAN;

    struct uf_tensor terms_used; /* (1 + n_methods) the terms the guard checks */
    uf_tensor_view(&terms_used, &tr->terms, "loss terms", 0, 1, (int64_t[]){tr->n_methods + 1});
    uf_optim_guard(&opt, &terms_used, hp->skip_nonfinite);

    /* resume: the data order is a pure function of (seed, step), so it is replayed */
    int64_t start = 0;
    char **ckpts = NULL;
    int n_ckpts = rd ? uf_rundir_ckpt_list(rd, &ckpts) : 0;
    for (int i = 0; i < n_ckpts; i++) { /* the newest checkpoint that loads */
        struct uf_rng rng0 = tr->rng;
        uint64_t nf0 = tr->model->n_forward;
        if (load_checkpoint(tr, &opt, ckpts[i]) == 0) {
            start = tr->step;
            uf_rundir_log(rd, "%s: resumed from %s at step %lld", label, ckpts[i], (long long)start);
            break;
        }
        tr->rng = rng0, tr->model->n_forward = nf0;
        uf_rundir_log(rd, "%s: notice: cannot resume from %s (%s); trying %s", label, ckpts[i],
                      uf_error(), i + 1 < n_ckpts ? "an older checkpoint" : "none left, from step 0");
    }
    for (int i = 0; i < n_ckpts; i++) free(ckpts[i]);
    free(ckpts);
    /* metrics.jsonl holds steps up to the start only (also from step 0: a run killed before its
     * first checkpoint logged steps it redoes now) */
    if (rd) uf_rundir_truncate_metrics(rd, (long)start);
    int64_t every = hp->checkpoint_every > 0 ? hp->checkpoint_every
                                             : UF_MAX(tr->total_steps / 10, (int64_t)1);
    int64_t log_every = UF_MAX(tr->total_steps / 100, (int64_t)1);
    int micro = hp->batch / hp->micro_batch;
    struct uf_epoch_iter it;
    uf_epoch_iter_init(&it, tr->data->n, hp->seed, 1);
    int64_t *idx = uf_calloc((size_t)hp->batch, sizeof *idx);
    for (int64_t s = 0; s < start; s++) uf_epoch_iter_next_full(&it, idx, hp->batch);

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct uf_progress prog;
    uf_progress_init(&prog, label, (long)tr->total_steps);
    double t_last = uf_time_now();
    int64_t tokens_since = 0;
    int rc = 0;
    for (tr->step = start; tr->step < tr->total_steps;) {
        int64_t step1 = tr->step + 1;
        uf_model_zero_grad(tr->model);
        uf_tensor_fill(&tr->terms, 0);
        uf_epoch_iter_next_full(&it, idx, hp->batch);
        struct uf_train_batch *mb = uf_calloc((size_t)micro, sizeof *mb);
        int64_t masked = 0, positions = 0;
        for (int k = 0; k < micro && rc == 0; k++) {
            rc = uf_trainer_make_batch(tr, tr->data, idx + (size_t)k * hp->micro_batch,
                                       hp->micro_batch, &mb[k]);
            /* batch hooks first (Lisa swaps the batch): the denominator counts what is trained */
            for (int mi = 0; mi < tr->n_methods && rc == 0; mi++) {
                struct uf_method *m = &tr->methods[mi];
                if (m->ops->batch) rc = m->ops->batch(m, tr, &mb[k]);
            }
            masked += mb[k].n_masked;
            for (int r = 0; rc == 0 && r < mb[k].B; r++) positions += mb[k].lengths[r];
        }
        tr->step_masked = masked;
        tr->step_tokens = positions;
        for (int k = 0; k < micro && rc == 0; k++) {
            struct uf_model_batch b = {mb[k].B, mb[k].T, mb[k].tokens, mb[k].targets,
                                       mb[k].mask, mb[k].lengths, (float)UF_MAX(masked, (int64_t)1)};
            rc = uf_model_forward(tr->model, &b);
            for (int mi = 0; mi < tr->n_methods && rc == 0; mi++) {
                struct uf_method *m = &tr->methods[mi];
                if (m->ops->task_loss) rc = m->ops->task_loss(m, tr, &mb[k]);
            }
            if (rc == 0) rc = uf_model_backward(tr->model);
            if (rc == 0) {
                struct uf_tensor ce;
                uf_tensor_view(&ce, &tr->terms, "ce term", 0, 1, (int64_t[]){1});
                uf_op_sum(tr->dev, &tr->model->loss, &ce, 1); /* terms[0] += loss */
            }
            tokens_since += (int64_t)mb[k].B * mb[k].T;
        }
        for (int k = 0; k < micro; k++) uf_train_batch_free(&mb[k]);
        free(mb);
        if (rc == 0 && hp->clip_on && hp->clip > 0) { /* clip_on = "task": before the hooks add theirs */
            uf_optim_clip_now(&opt, hp->clip, &pv->clip_sq);
            uf_optim_count_clipped(&opt, &pv->clip_sq, hp->clip, &pv->clip_count);
        }
        if (rc == 0) rc = run_hooks(tr, HOOK_EXTRA);
        if (rc == 0) rc = run_hooks(tr, HOOK_GRAD);
        if (rc == 0) rc = run_hooks(tr, HOOK_PROJECT);
        if (rc) break; /* to the cleanup below: optimizer, index buffer, epoch iterator */
        float lr = uf_optim_lr(&opt.cfg, (int)step1);
        uf_optim_step(&opt, 1.0f); /* micro-batch losses already share one denominator */
        if (!hp->clip_on && hp->clip > 0) uf_optim_count_clipped(&opt, &opt.gnorm_sq, hp->clip, &pv->clip_count);
        tr->step = step1;

        if (step1 % log_every == 0 || step1 == tr->total_steps || step1 == start + 1) {
            float terms[UF_TRAIN_MAX_TERMS];
            uf_tensor_download(&tr->terms, terms);
            float gnorm = uf_optim_read_grad_norm(&opt);
            double now = uf_time_now(), tps = (double)tokens_since / fmax(now - t_last, 1e-9);
            t_last = now;
            tokens_since = 0;
            struct uf_optim_health h = uf_optim_read_health(&opt);
            char line[1024], nb[40];
            int o = snprintf(line, sizeof line, "{\"step\":%lld,\"lr\":%s", (long long)step1,
                             json_num(nb, lr));
            o += snprintf(line + o, sizeof line - (size_t)o, ",\"grad_norm\":%s,\"tokens_per_s\":%.1f",
                          json_num(nb, gnorm), tps);
            if (hp->skip_nonfinite)
                o += snprintf(line + o, sizeof line - (size_t)o, ",\"skipped_nonfinite\":%d", h.bad_steps);
            double total = 0;
            for (int i = 0; i <= tr->n_methods; i++) total += terms[i];
            o += snprintf(line + o, sizeof line - (size_t)o, ",\"loss\":{\"total\":%s", json_num(nb, total));
            for (int i = 0; i <= tr->n_methods; i++)
                o += snprintf(line + o, sizeof line - (size_t)o, ",\"%s\":%s", tr->term_names[i],
                              json_num(nb, terms[i]));
            o += snprintf(line + o, sizeof line - (size_t)o, "}");
            if (hp->clip > 0) {
                float clipped = 0;
                uf_tensor_download(&pv->clip_count, &clipped);
                o += snprintf(line + o, sizeof line - (size_t)o, ",\"clip_share\":%s",
                              json_num(nb, clipped / (double)step1));
            }
            snprintf(line + o, sizeof line - (size_t)o, "}");
            if (rd) uf_rundir_metric(rd, line);
            uf_progress_update(&prog, (long)step1, terms[0], tps);
            if (nonfinite_stop(tr, h, label)) {
                rc = -1;
                break;
            }
        }
        if (rd && (step1 % every == 0 || step1 == tr->total_steps)) {
            /* never checkpoint weights a non-finite step has touched (the download below syncs
             * anyway) */
            if (nonfinite_stop(tr, uf_optim_read_health(&opt), label)) {
                rc = -1;
                break;
            }
            char *path = uf_rundir_ckpt_path(rd, (long)step1);
            rc = save_checkpoint(tr, &opt, path);
            if (rc == 0) rc = uf_rundir_set_latest(rd, (long)step1, 2);
            free(path);
            if (rc) break;
        } else if (rd && interrupted) {
            if (nonfinite_stop(tr, uf_optim_read_health(&opt), label)) {
                rc = -1;
                break;
            }
            char *path = uf_rundir_ckpt_path(rd, (long)step1);
            rc = save_checkpoint(tr, &opt, path);
            if (rc == 0) rc = uf_rundir_set_latest(rd, (long)step1, 2);
            free(path);
            if (rc) break;
        }
        if (interrupted && step1 < tr->total_steps) {
            uf_progress_done(&prog);
            if (rd) uf_rundir_log(rd, "%s: interrupted at step %lld", label, (long long)step1);
            fprintf(stderr, "unforget: interrupted at step %lld; run the same command to resume\n",
                    (long long)step1);
            exit(130);
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    uf_progress_done(&prog);
    if (rc == 0 && nonfinite_stop(tr, uf_optim_read_health(&opt), label)) rc = -1;
    if (rc == 0 && hp->skip_nonfinite) {
        struct uf_optim_health h = uf_optim_read_health(&opt);
        if (h.bad_steps > 0) {
            char terms[256];
            nonfinite_terms(tr, h.bits, terms, sizeof terms);
            uf_log(1, "%s: skipped %d non-finite step(s) (on_nonfinite = \"skip\"); the first at "
                      "step %d: %s", label, h.bad_steps, h.first_step, terms);
            if (rd) uf_rundir_log(rd, "%s: skipped %d non-finite step(s), the first at step %d: %s",
                                  label, h.bad_steps, h.first_step, terms);
        }
    }
    free(idx);
    uf_epoch_iter_free(&it);
    uf_optim_free(&opt);
    if (rc == 0 && hp->clip > 0 && tr->total_steps > 0) {
        float clipped = 0;
        uf_tensor_download(&pv->clip_count, &clipped);
        tr->clip_share = clipped / (double)tr->total_steps;
    }
    uf_tensor_free(&pv->clip_sq);
    uf_tensor_free(&pv->clip_count);
    if (rc) return -1;
    return run_hooks(tr, HOOK_FINISH) ? -1 : 0;
}

void uf_trainer_free(struct uf_trainer *tr) {
    for (int i = 0; i < tr->n_methods; i++)
        if (tr->methods[i].ops->free) tr->methods[i].ops->free(&tr->methods[i]);
    free(tr->methods);
    struct train_priv *pv = tr->priv;
    if (pv) {
        if (pv->rows && pv->cached_data) /* tr->data may be a method's set (SafeInstr), freed by now */
            for (int64_t i = 0; i < pv->cached_data->n; i++) tok_row_free(&pv->rows[i]);
        free(pv->rows);
        uf_tensor_free(&pv->clip_sq); /* freed by uf_trainer_run unless a hook failed */
        uf_tensor_free(&pv->clip_count);
        free(pv);
    }
    if (tr->teacher) {
        uf_model_free(tr->teacher);
        free(tr->teacher);
    }
    uf_tensor_free(&tr->anchor);
    uf_tensor_free(&tr->terms);
    memset(tr, 0, sizeof *tr);
}
