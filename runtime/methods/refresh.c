/* methods/refresh.c: Refresh learning (Wang et al., "A Unified and General Framework for Continual
 * Learning", ICLR 2024) on top of DER++, as its code runs it (CL-refresh-learning, derpp.py):
 * every step first UNLEARNS the step's task batch with a Fisher-damped, norm-rescaled gradient
 * ascent step plus Gaussian noise, then RELEARNS it.
 *
 *   F (P): the diagonal Fisher of the PREVIOUS task = the safety alignment data `data` (default:
 *     the buffer), at theta* (the start weights), computed in init:
 *       F_i = (1/S) sum_{s=1..S} (d/dtheta_i sum_{t in response of s} CE_{s,t})^2
 *     over S = min(samples, |data|) examples drawn without replacement (seed hp.seed), one
 *     example per backward (per-example gradients of the example's negative log-likelihood
 *     -log p(y|x), summed over its response tokens), dropout off; normalize: F <- F / mean(F).
 *     Cached in uf_cache_dir("fisher") like EWC's (a different key).
 *   1. unlearn, j = 0 .. unlearn_steps-1, with g = the step's task gradient at the current
 *      weights (the loop's CE of the step's micro-batches plus the other methods' task_loss
 *      hooks; recomputed for j > 0): for every trainable parameter tensor k (a LoRA adapter
 *      matrix under LoRA),
 *        theta_k <- theta_k + delta / (1 + c F_k) * (||theta_k|| / ||g_k|| g_k + sigma xi_k)
 *      (c = fisher_scale, sigma = noise, xi ~ N(0, I) from uf_clmath_normal keyed by the run seed,
 *      the step and j, so a resumed run draws the same noise);
 *   2. relearn: the gradient is zeroed and recomputed at the unlearned weights: the task CE of
 *      the saved micro-batches (one token mean over all of them, as the loop weights them; the
 *      other methods' task_loss hooks included) plus DER++ on the buffer (alpha, beta, "sum"
 *      reduction, all logits); the optimizer then steps from the unlearned weights.
 * The paper's step theta + gamma F^{-1} grad L + N(0, 2 gamma F^{-1}) is run by its code with
 * the damped inverse (1 + c F)^{-1}, the ascent direction rescaled per tensor to the tensor's
 * norm, and the noise inside the preconditioner; this file follows the code (defaults delta 1e-5,
 * c 0.001, sigma 0.001). F is fixed after init, so checkpoints hold nothing for Refresh: a
 * resumed run recomputes F at the start weights (or reads it from the cache).
 * extra hook; the task_loss hook keeps host copies of the step's micro-batches. uf_methods_check
 * refuses it together with er / der / derpp (it already replays) and requires it to be the only
 * method with an extra hook before it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"

struct refresh_state {
    struct uf_dataset buf;
    struct uf_mder_scratch s;
    struct uf_tensor F;  /* (P) Fisher of the safety data at theta* */
    struct uf_tensor nn; /* (2) one tensor's {theta.theta, g.g} */
    int nb, cap;
    struct uf_train_batch *saved;
    int64_t saved_step;
};

static void batch_copy(const struct uf_train_batch *src, struct uf_train_batch *dst) {
    size_t n = (size_t)src->B * (size_t)src->T;
    *dst = *src;
    dst->tokens = uf_malloc(n * sizeof *dst->tokens);
    dst->targets = uf_malloc(n * sizeof *dst->targets);
    dst->mask = uf_malloc(n * sizeof *dst->mask);
    dst->lengths = uf_malloc((size_t)src->B * sizeof *dst->lengths);
    dst->rows = uf_malloc((size_t)src->B * sizeof *dst->rows);
    memcpy(dst->tokens, src->tokens, n * sizeof *dst->tokens);
    memcpy(dst->targets, src->targets, n * sizeof *dst->targets);
    memcpy(dst->mask, src->mask, n * sizeof *dst->mask);
    memcpy(dst->lengths, src->lengths, (size_t)src->B * sizeof *dst->lengths);
    if (src->rows) memcpy(dst->rows, src->rows, (size_t)src->B * sizeof *dst->rows);
    else memset(dst->rows, 0, (size_t)src->B * sizeof *dst->rows);
}

static void saved_clear(struct refresh_state *st) {
    for (int i = 0; i < st->nb; i++) uf_train_batch_free(&st->saved[i]);
    st->nb = 0;
}

/* ---- the Fisher of the safety data ----------------------------------------------------------- */
static uint64_t hash_str0(const char *s, uint64_t h) { return uf_hash_str(s ? s : "", uf_hash64("\0", 1, h)); }

/* F += (d sum-CE_s / d theta)^2 per example into the device tensor F; *used = examples with a
 * response token */
static int accumulate_fisher(struct uf_trainer *tr, const struct uf_dataset *data, const int64_t *rows,
                             int64_t S, struct uf_tensor *F, int64_t *used) {
    struct uf_model *m = tr->model;
    struct uf_tensor *grads = uf_model_train_grads(m);
    int training = m->training, rc = 0;
    m->training = 0;
    *used = 0;
    for (int64_t s = 0; s < S && rc == 0; s++) {
        struct uf_train_batch b;
        if (uf_trainer_make_batch(tr, data, rows + s, 1, &b) != 0) { rc = -1; break; }
        if (b.n_masked > 0) {
            struct uf_model_batch mb;
            uf_mbatch(&b, 1, &mb);
            mb.loss_denom = 1.0f; /* the example's summed CE = -log p(y|x) */
            uf_model_zero_grad(m);
            rc = uf_model_forward(m, &mb);
            if (rc == 0) rc = uf_model_backward(m);
            if (rc == 0) uf_clmath_sq_accum(tr->dev, F, grads, 1.0f), (*used)++;
        }
        uf_train_batch_free(&b);
    }
    m->training = training;
    uf_model_zero_grad(m);
    return rc;
}

static int fisher_init(struct uf_method *me, struct uf_trainer *tr, struct refresh_state *st) {
    int normalize = uf_mcfg_bool(me, "normalize");
    int64_t samples = (int64_t)uf_mcfg_num(me, "samples");
    if (samples <= 0) return uf_fail("refresh: samples must be > 0 (safety examples for the Fisher, e.g. 200)");
    struct uf_dataset data;
    if (uf_mcfg_dataset(tr, me, "data", &data) != 0) return -1;
    int64_t S = UF_MIN(samples, data.n);
    int64_t *rows = uf_malloc((size_t)S * sizeof *rows);
    uint64_t seed = tr->hp.seed ^ 0x52465348ull; /* "RFSH" */
    uf_sample_indices(data.n, S, seed, 0, rows, NULL);
    struct uf_tensor *p = uf_model_train_params(tr->model);
    int64_t P = p->numel;
    float *host = uf_malloc((size_t)P * sizeof *host);
    uf_tensor_download(p, host);
    uint64_t h = uf_hash64(host, (size_t)P * sizeof *host, UF_HASH_SEED);
    h = uf_hash_str("refresh-fisher-v1", h);
    h = hash_str0(tr->template_name, h);
    int64_t hdr[4] = {S, tr->hp.max_len, normalize, (int64_t)seed};
    h = uf_hash64(hdr, sizeof hdr, h);
    for (int64_t s = 0; s < S; s++) {
        const struct uf_example *ex = &data.rows[rows[s]];
        h = hash_str0(ex->prompt, h);
        h = hash_str0(ex->response, h);
        h = uf_hash64(&ex->kind, sizeof ex->kind, h);
    }
    char *dir = uf_cache_dir("fisher");
    char *path = dir ? uf_sprintf("%s/%016llx.ufc", dir, (unsigned long long)h) : NULL;
    int cached = uf_method_fisher_cache_read(path, host, P, "Refresh Fisher");
    uf_tensor_init(&st->F, tr->dev, "refresh.F", UF_F32, 1, (int64_t[]){P});
    int rc = 0;
    if (cached) {
        uf_log(2, "refresh: Fisher from cache %s", path);
    } else {
        /* the run's dropout stream (keyed by the forward count) must not depend on whether the
         * Fisher came from the cache */
        uint64_t n_forward = tr->model->n_forward;
        int64_t used = 0;
        uf_tensor_fill(&st->F, 0.0f);
        rc = accumulate_fisher(tr, &data, rows, S, &st->F, &used);
        tr->model->n_forward = n_forward;
        if (rc == 0 && used == 0) rc = uf_fail("refresh: none of the %lld Fisher examples has a response token", (long long)S);
        if (rc == 0) {
            uf_tensor_download(&st->F, host);
            double mean = 0;
            for (int64_t i = 0; i < P; i++) host[i] /= (float)used, mean += host[i];
            mean /= (double)P;
            if (normalize && mean > 0)
                for (int64_t i = 0; i < P; i++) host[i] = (float)(host[i] / mean);
            if (path && uf_cache_write(path, host, (size_t)P * sizeof(float)) != 0)
                uf_log(1, "refresh: could not cache the Fisher (%s); continuing", uf_error());
        }
    }
    if (rc == 0) uf_tensor_upload(&st->F, host);
    free(path), free(dir), free(host), free(rows);
    uf_dataset_free(&data);
    return rc;
}

/* ---- hooks ---------------------------------------------------------------------------------- */
static int refresh_init(struct uf_method *m, struct uf_trainer *tr) {
    if (tr->hp.clip_on && tr->hp.clip > 0) /* the relearn gradient replaces the clipped task one */
        return uf_fail("refresh: recomputes the step's gradient, so clip_on = \"task\" cannot apply; "
                       "use clip_on = \"total\" (or clip = 0)");
    if (uf_mneed_teacher(tr, "refresh") != 0) return -1;
    struct refresh_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    st->saved_step = -1;
    if (uf_mcfg_num(m, "delta") < 0 || uf_mcfg_num(m, "noise") < 0 || uf_mcfg_num(m, "fisher_scale") < 0)
        return uf_fail("refresh: delta, noise and fisher_scale must be >= 0");
    if (uf_mcfg_dataset(tr, m, "buffer", &st->buf) != 0) return -1;
    uf_tensor_init(&st->nn, tr->dev, "refresh.norms", UF_F32, 1, (int64_t[]){2});
    uf_mder_scratch_init(&st->s, tr, uf_mcfg_rows(tr, m));
    return fisher_init(m, tr, st);
}

static int refresh_task_loss(struct uf_method *m, struct uf_trainer *tr, const struct uf_train_batch *b) {
    struct refresh_state *st = m->state;
    if (st->saved_step != tr->step) saved_clear(st), st->saved_step = tr->step;
    if (st->nb == st->cap) {
        st->cap = st->cap ? 2 * st->cap : 4;
        st->saved = uf_realloc(st->saved, (size_t)st->cap * sizeof *st->saved);
    }
    batch_copy(b, &st->saved[st->nb++]);
    return 0;
}

/* zero grads, then the task gradient of the saved micro-batches at the current weights */
static int task_gradient(struct uf_method *self, struct uf_trainer *tr, struct refresh_state *st) {
    uf_model_zero_grad(tr->model);
    int64_t masked = 0;
    for (int i = 0; i < st->nb; i++) masked += st->saved[i].n_masked;
    for (int i = 0; i < st->nb; i++) {
        const struct uf_train_batch *b = &st->saved[i];
        struct uf_model_batch mb;
        uf_mbatch(b, 1, &mb);
        mb.loss_denom = (float)UF_MAX(masked, (int64_t)1); /* the loop's weighting: one token mean */
        if (uf_model_forward(tr->model, &mb) != 0) return -1;
        for (int k = 0; k < tr->n_methods; k++) {
            struct uf_method *o = &tr->methods[k];
            if (o != self && o->ops->task_loss && o->ops->task_loss(o, tr, b) != 0) return -1;
        }
        if (uf_model_backward(tr->model) != 0) return -1;
    }
    return 0;
}

/* One unlearning step over every trainable tensor (methods/README.md: refresh). */
static void unlearn_step(struct uf_method *me, struct uf_trainer *tr, struct refresh_state *st, uint64_t seed) {
    struct uf_model *m = tr->model;
    float delta = (float)uf_mcfg_num(me, "delta"), c = (float)uf_mcfg_num(me, "fisher_scale");
    float sigma = (float)uf_mcfg_num(me, "noise");
    const struct uf_tensor *flat = uf_model_train_params(m);
    int lora = m->lora.rank > 0, n = lora ? m->n_lora : m->n_params;
    for (int i = 0; i < n; i++) {
        if (!lora && !m->trainable[i]) continue;
        struct uf_tensor *p = lora ? &m->lpv[i] : &m->pv[i], *g = lora ? &m->lgv[i] : &m->gv[i];
        size_t base = p->offset - flat->offset;
        struct uf_tensor Fk;
        uf_tensor_view(&Fk, &st->F, "refresh.F", base, 1, (int64_t[]){p->numel});
        uf_clmath_refresh_step(tr->dev, p, g, &Fk, &st->nn, delta, c, sigma, seed, (uint64_t)base);
    }
}

static int refresh_extra(struct uf_method *m, struct uf_trainer *tr) {
    struct refresh_state *st = m->state;
    if (st->saved_step != tr->step || st->nb == 0) return 0; /* no task batch this step */
    int steps = (int)uf_mcfg_num(m, "unlearn_steps");
    for (int s = 0; s < steps; s++) {
        if (s > 0 && task_gradient(m, tr, st) != 0) return uf_fail_prefix("refresh: unlearning gradient");
        if (uf_mcfg_num(m, "delta") == 0) continue;
        uint64_t key[3] = {tr->hp.seed, (uint64_t)tr->step, (uint64_t)s};
        unlearn_step(m, tr, st, uf_hash64(key, sizeof key, uf_hash_str("refresh-noise", UF_HASH_SEED)));
    }
    if (steps > 0 && task_gradient(m, tr, st) != 0) return uf_fail_prefix("refresh: relearning gradient");
    saved_clear(st);
    float alpha = (float)uf_mcfg_num(m, "alpha"), beta = (float)uf_mcfg_num(m, "beta");
    int rows = uf_mcfg_rows(tr, m), rc = 0;
    struct uf_mdraw d;
    if (alpha != 0.0f) {
        if (uf_mdraw_make(tr, &st->buf, rows, &d) != 0) return uf_fail_prefix("refresh");
        rc = uf_mder_replay(tr, &st->s, &d, alpha, 1, 0, m->slot);
        uf_mdraw_free(&d);
    }
    if (rc == 0 && beta != 0.0f) {
        if (uf_mdraw_make(tr, &st->buf, rows, &d) != 0) return uf_fail_prefix("refresh");
        for (int c = 0; c < d.n && rc == 0; c++)
            if (d.n_masked > 0)
                rc = uf_mce_backprop(tr, &d.b[c], beta * (float)d.b[c].n_masked / (float)d.n_masked, m->slot);
        uf_mdraw_free(&d);
    }
    return rc;
}

static void refresh_free(struct uf_method *m) {
    struct refresh_state *st = m->state;
    if (!st) return;
    saved_clear(st);
    free(st->saved);
    uf_dataset_free(&st->buf);
    uf_mder_scratch_free(&st->s);
    if (st->F.buf) uf_tensor_free(&st->F);
    if (st->nn.buf) uf_tensor_free(&st->nn);
    free(st);
    m->state = NULL;
}

static size_t refresh_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    /* F, the two norms, DER++'s scratch */
    return uf_mplan_trainable_bytes(in) + 2 * sizeof(float) + uf_mder_scratch_bytes(in, cfg);
}

const struct uf_method_ops uf_method_refresh = {.uses_teacher = 1, .state_name = "refresh F, scratch", .state_bytes = refresh_state_bytes, .name = "refresh", .recomputes_grad = 1,
                                                .init = refresh_init,
                                                .task_loss = refresh_task_loss,
                                                .extra = refresh_extra, .free = refresh_free};
