/* methods/ewc.c: elastic weight consolidation (Kirkpatrick et al. 2017) with a diagonal Fisher
 * of the safety loss at theta* (the start weights):
 *   penalty  sum_i (lambda/2) F_i (theta_i - theta*_i)^2   (grad hook, uf_clmath_penalty)
 *   F_i = (1/S) sum_{s=1..S} (d CE_s / d theta_i)^2
 * over S = min(samples, |data|) examples of `data` drawn without replacement (seed hp.seed),
 * CE_s = the token-mean CE of example s alone (per-example gradients, batch of one).
 *   fisher = "empirical": the targets are the dataset's responses;
 *   fisher = "true": at every response position the target is sampled from the model's own
 *            softmax there (one sample per position, seeded), the inputs staying the dataset's.
 *   normalize = true: F <- F / mean(F) (so lambda is on the scale of L2-SP's).
 * Dropout is off while estimating. Computed in init, over the trainable vector (the adapters
 * under LoRA), and cached in uf_cache_dir("fisher")/<hash>.ufc (a uf_cache_write entry), the hash covering the trainable
 * weights, the selected rows' text, the template, max_len, and every setting above. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"

struct ewc_state {
    struct uf_tensor F; /* (P) */
};

static uint64_t hash_str0(const char *s, uint64_t h) { return uf_hash_str(s ? s : "", uf_hash64("\0", 1, h)); }

/* Samples targets from softmax(logits) at masked positions into tg (host). */
static void sample_targets(struct uf_rng *r, const float *logits, int64_t N, int64_t V,
                           const float *mask, int32_t *tg) {
    for (int64_t n = 0; n < N; n++) {
        if (mask[n] == 0) continue;
        const float *z = logits + n * V;
        float mx = z[0];
        for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double sum = 0;
        for (int64_t v = 0; v < V; v++) sum += exp((double)z[v] - mx);
        double u = uf_rng_uniform(r) * sum, acc = 0;
        int64_t pick = V - 1;
        for (int64_t v = 0; v < V; v++) {
            acc += exp((double)z[v] - mx);
            if (u < acc) { pick = v; break; }
        }
        tg[n] = (int32_t)pick;
    }
}

static int compute_fisher(struct uf_trainer *tr, const struct uf_dataset *data, const int64_t *rows,
                          int64_t S, int true_fisher, uint64_t seed, float *host) {
    struct uf_model *m = tr->model;
    struct uf_tensor *grads = uf_model_train_grads(m);
    int64_t P = grads->numel, V = m->cfg.vocab;
    struct uf_tensor F;
    uf_tensor_init(&F, tr->dev, "ewc.F.acc", UF_F32, 1, (int64_t[]){P});
    uf_tensor_fill(&F, 0.0f);
    int training = m->training, rc = 0;
    m->training = 0;
    struct uf_rng r;
    uf_rng_init(&r, seed);
    int64_t used = 0;
    for (int64_t s = 0; s < S && rc == 0; s++) {
        struct uf_train_batch b;
        if (uf_trainer_make_batch(tr, data, rows + s, 1, &b) != 0) { rc = -1; break; }
        if (b.n_masked > 0) {
            struct uf_model_batch mb;
            uf_mbatch(&b, 1, &mb);
            if (true_fisher) {
                int64_t N = (int64_t)b.B * b.T;
                struct uf_model_batch fb = mb;
                fb.targets = NULL, fb.loss_mask = NULL;
                rc = uf_model_forward(m, &fb);
                if (rc == 0) {
                    float *lg = uf_malloc((size_t)(N * V) * sizeof *lg);
                    struct uf_tensor lv = uf_mview(&m->logits, "logits", N, V);
                    uf_tensor_download(&lv, lg);
                    sample_targets(&r, lg, N, V, b.mask, b.targets);
                    free(lg);
                }
            }
            uf_model_zero_grad(m);
            if (rc == 0) rc = uf_model_forward(m, &mb);
            if (rc == 0) rc = uf_model_backward(m);
            if (rc == 0) uf_clmath_sq_accum(tr->dev, &F, grads, 1.0f), used++;
        }
        uf_train_batch_free(&b);
    }
    m->training = training;
    uf_model_zero_grad(m);
    if (rc == 0 && used == 0) rc = uf_fail("ewc: none of the %lld Fisher examples has a response token", (long long)S);
    if (rc == 0) {
        uf_tensor_download(&F, host);
        for (int64_t i = 0; i < P; i++) host[i] /= (float)used;
    }
    uf_tensor_free(&F);
    return rc;
}

static int ewc_init(struct uf_method *m, struct uf_trainer *tr) {
    if (uf_mneed_anchor(tr, "ewc") != 0) return -1;
    struct ewc_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    const char *kind = uf_mcfg_str(m, "fisher");
    int true_fisher = strcmp(kind, "true") == 0;
    if (!true_fisher && strcmp(kind, "empirical") != 0)
        return uf_fail("ewc: fisher '%s' is not empirical or true", kind);
    int normalize = uf_mcfg_bool(m, "normalize");
    int64_t samples = (int64_t)uf_mcfg_num(m, "samples");
    if (samples <= 0) return uf_fail("ewc: samples must be > 0 (examples for the Fisher, e.g. 200)");
    struct uf_dataset data;
    if (uf_mcfg_dataset(tr, m, "data", &data) != 0) return -1;
    int64_t S = UF_MIN(samples, data.n);
    int64_t *rows = uf_malloc((size_t)S * sizeof *rows);
    uint64_t seed = tr->hp.seed ^ 0x45574346ull;
    uf_sample_indices(data.n, S, seed, 0, rows, NULL);

    struct uf_tensor *p = uf_model_train_params(tr->model);
    int64_t P = p->numel;
    float *host = uf_malloc((size_t)P * sizeof *host);
    uf_tensor_download(p, host);
    uint64_t h = uf_hash64(host, (size_t)P * sizeof *host, UF_HASH_SEED);
    h = uf_hash_str("ewc-fisher-v1", h);
    h = hash_str0(kind, h);
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
    size_t size = 0;
    char *cached = uf_cache_read(path, &size, "EWC Fisher");
    int rc = 0;
    if (cached) { /* the header is sound: the content must be a Fisher too (finite, >= 0) */
        const char *why = size != (size_t)P * sizeof(float) ? "wrong size" : NULL;
        for (int64_t i = 0; !why && i < P; i++) {
            float f;
            memcpy(&f, cached + (size_t)i * sizeof f, sizeof f);
            if (!isfinite(f) || f < 0) why = "a NaN, Inf or negative value";
        }
        if (why) {
            uf_cache_discard(path, "EWC Fisher", why);
            free(cached);
            cached = NULL;
        }
    }
    if (cached) {
        memcpy(host, cached, size);
        uf_log(2, "ewc: Fisher from cache %s", path);
    } else {
        /* the run's dropout stream (keyed by the forward count) must not depend on whether
         * the Fisher came from the cache */
        uint64_t n_forward = tr->model->n_forward;
        rc = compute_fisher(tr, &data, rows, S, true_fisher, seed, host);
        tr->model->n_forward = n_forward;
        if (rc == 0 && normalize) {
            double mean = 0;
            for (int64_t i = 0; i < P; i++) mean += host[i];
            mean /= (double)P;
            if (mean > 0)
                for (int64_t i = 0; i < P; i++) host[i] = (float)(host[i] / mean);
        }
        if (rc == 0 && path && uf_cache_write(path, host, (size_t)P * sizeof(float)) != 0)
            uf_log(1, "ewc: could not cache the Fisher (%s); continuing", uf_error());
    }
    free(cached);
    free(path);
    free(dir);
    if (rc == 0) {
        uf_tensor_init(&st->F, tr->dev, "ewc.F", UF_F32, 1, (int64_t[]){P});
        uf_tensor_upload(&st->F, host);
    }
    free(host);
    free(rows);
    uf_dataset_free(&data);
    return rc;
}

static int ewc_grad(struct uf_method *m, struct uf_trainer *tr) {
    struct ewc_state *st = m->state;
    float lambda = (float)uf_mcfg_num(m, "lambda");
    struct uf_tensor *anchor = uf_trainer_anchor(tr);
    if (!anchor) return uf_fail("ewc: no anchor weights (uf_trainer_anchor failed)");
    uf_clmath_penalty(tr->dev, uf_model_train_grads(tr->model), uf_model_train_params(tr->model),
                      anchor, &st->F, lambda, &tr->terms, m->slot);
    return 0;
}

static void ewc_free(struct uf_method *m) {
    struct ewc_state *st = m->state;
    if (!st) return;
    if (st->F.buf) uf_tensor_free(&st->F);
    free(st);
    m->state = NULL;
}

static size_t ewc_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    (void)cfg;
    return uf_mplan_trainable_bytes(in); /* F (the accumulator of its estimate is freed) */
}

const struct uf_method_ops uf_method_ewc = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "ewc Fisher F", .state_bytes = ewc_state_bytes, .name = "ewc", .init = ewc_init, .grad = ewc_grad, .free = ewc_free};
