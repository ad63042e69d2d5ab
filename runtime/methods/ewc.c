/* methods/ewc.c: elastic weight consolidation (Kirkpatrick et al. 2017) with a diagonal Fisher
 * of the safety loss at theta* (the start weights):
 *   penalty  sum_i (lambda/2) F_i (w_i - w*_i)^2                  (grad hook, uf_clmath_penalty)
 * over S = min(samples, |data|) examples of `data` drawn without replacement (seed hp.seed),
 * with per-example gradients (batch of one, dropout off). `per` chooses the gradient unit:
 *   "example" (default): F_i = (1/S) sum_s (d L_s / d w_i)^2, L_s = sum_{t in R_s} CE_{s,t} the
 *            SUMMED token loss of example s (its sequence negative log-likelihood): the
 *            empirical Fisher with one sample per example;
 *   "token":  F_i = (1/S) sum_s sum_{t in R_s} (d CE_{s,t} / d w_i)^2, per-token squared
 *            gradients summed over the example's response tokens, averaged over examples (one
 *            backward per token). Both are the Fisher of one example's log-likelihood: under the
 *            true Fisher the cross terms of different tokens have expectation 0, so they agree
 *            in expectation and one lambda serves both.
 *   (Until 2026-12 F was the squared gradient of each example's token-MEAN CE, i.e. "example"
 *   divided by T_s^2: that F was too small for any penalty to matter.)
 *   fisher = "empirical": the targets are the dataset's responses;
 *   fisher = "true": at every response position the target is sampled from the model's own
 *            softmax there (one sample per position, seeded), the inputs staying the dataset's.
 *   space = "trainable" (default): w = the trainable vector (all weights, or the LoRA adapters);
 *   space = "merged" (LoRA only): w = the effective weights W + (alpha/r) B A of the adapted
 *            modules (one (out, in) matrix per adapter pair, uf_lora_weff_numel's layout), F
 *            from their gradients (uf_model_set_weff_grad), and the penalty on the merged delta
 *            Delta = s (B A - B* A*):  (lambda/2) sum F Delta^2, with gradients
 *            dB += s G A^T, dA += s B^T G, G = lambda F Delta (per module, on the device). Under
 *            LoRA the Fisher of A is 0 at the usual start B = 0; this one is not.
 *   normalize = true: F <- F / mean(F) (so lambda is on the scale of L2-SP's).
 * Computed in init and cached in uf_cache_dir("fisher")/<hash>.ufc (a uf_cache_write entry), the
 * hash covering every weight (base and adapters, with the LoRA settings), the selected rows'
 * text, the template, max_len and every setting above. Device state: F (and under "merged" a
 * work buffer of three of the largest adapted module, for the per-module penalty). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"
#include "ops/gemm.h"

struct ewc_state {
    int merged;           /* space = "merged" */
    struct uf_tensor F;   /* (P) trainable, or (Pw) merged (uf_lora_weff_numel's layout) */
    struct uf_tensor work; /* merged: (3 * largest module): s B A, s B* A*, G */
    int64_t *off;         /* merged: (pairs) offset of each module in F */
    int64_t biggest;      /* merged: the largest module's out * in */
    struct uf_device *dev;
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

/* uf_model_set_weff_grad's callback: F[module] += g^2 */
static void weff_accum(void *ctx, int pair, const struct uf_tensor *g) {
    struct ewc_state *st = ctx;
    struct uf_tensor Fv;
    uf_tensor_view(&Fv, &st->F, "ewc.F", (size_t)st->off[pair], 1, (int64_t[]){g->numel});
    uf_clmath_sq_accum(st->dev, &Fv, g, 1.0f);
}

/* one backward of the summed CE of mb (loss_denom 1) and its squared gradient into F */
static int fisher_pass(struct uf_trainer *tr, struct ewc_state *st, struct uf_model_batch *mb) {
    struct uf_model *m = tr->model;
    mb->loss_denom = 1.0f;
    uf_model_zero_grad(m);
    if (uf_model_forward(m, mb) != 0 || uf_model_backward(m) != 0) return -1;
    if (!st->merged) uf_clmath_sq_accum(tr->dev, &st->F, uf_model_train_grads(m), 1.0f);
    return 0; /* merged: weff_accum ran inside the backward */
}

/* F = the per-example Fisher of `per` (host copy in host, st->F on the device) */
static int compute_fisher(struct uf_trainer *tr, struct ewc_state *st, const struct uf_dataset *data,
                          const int64_t *rows, int64_t S, int true_fisher, int per_token,
                          uint64_t seed, float *host) {
    struct uf_model *m = tr->model;
    int64_t V = m->cfg.vocab;
    uf_tensor_fill(&st->F, 0.0f);
    int training = m->training, rc = 0;
    m->training = 0;
    if (st->merged) uf_model_set_weff_grad(m, weff_accum, st, &st->work);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    int64_t used = 0;
    for (int64_t s = 0; s < S && rc == 0; s++) {
        struct uf_train_batch b;
        if (uf_trainer_make_batch(tr, data, rows + s, 1, &b) != 0) { rc = -1; break; }
        if (b.n_masked > 0) {
            struct uf_model_batch mb;
            uf_mbatch(&b, 1, &mb);
            int64_t N = (int64_t)b.B * b.T;
            if (true_fisher) { /* init only: the logits are read back to sample the targets */
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
            if (rc == 0 && !per_token) rc = fisher_pass(tr, st, &mb);
            if (rc == 0 && per_token) { /* one backward per response token */
                float *one = uf_calloc((size_t)N, sizeof *one);
                mb.loss_mask = one;
                for (int64_t t = 0; t < N && rc == 0; t++) {
                    if (b.mask[t] == 0) continue;
                    one[t] = 1.0f;
                    rc = fisher_pass(tr, st, &mb);
                    one[t] = 0.0f;
                }
                free(one);
            }
            if (rc == 0) used++;
        }
        uf_train_batch_free(&b);
    }
    if (st->merged) uf_model_set_weff_grad(m, NULL, NULL, NULL);
    m->training = training;
    uf_model_zero_grad(m);
    if (rc == 0 && used == 0) rc = uf_fail("ewc: none of the %lld Fisher examples has a response token", (long long)S);
    if (rc == 0) {
        uf_tensor_download(&st->F, host);
        for (int64_t i = 0; i < st->F.numel; i++) host[i] /= (float)used;
    }
    return rc;
}

/* the cache key: every weight (base tensors in their storage dtype, the adapters), the LoRA
 * settings, the rows and the settings */
static uint64_t fisher_hash(struct uf_trainer *tr, const struct uf_dataset *data, const int64_t *rows,
                            int64_t S, const char *kind, const char *per, const char *space,
                            int normalize, uint64_t seed) {
    struct uf_model *m = tr->model;
    uint64_t h = uf_hash_str("ewc-fisher-v2", UF_HASH_SEED);
    size_t biggest = 0;
    for (int i = 0; i < m->n_params; i++) biggest = UF_MAX(biggest, uf_tensor_bytes(&m->sv[i]));
    if (m->lora.rank > 0) biggest = UF_MAX(biggest, uf_tensor_bytes(&m->lora_params));
    void *buf = uf_malloc(biggest);
    for (int i = 0; i < m->n_params; i++) {
        uf_tensor_download(&m->sv[i], buf);
        h = uf_hash64(buf, uf_tensor_bytes(&m->sv[i]), h);
    }
    if (m->lora.rank > 0) {
        uf_tensor_download(&m->lora_params, buf);
        h = uf_hash64(buf, uf_tensor_bytes(&m->lora_params), h);
        int64_t lh[3] = {m->lora.rank, (int64_t)m->lora.targets, m->lora_merged};
        h = uf_hash64(lh, sizeof lh, h);
        h = uf_hash64(&m->lora.alpha, sizeof m->lora.alpha, h);
    }
    free(buf);
    h = hash_str0(kind, h);
    h = hash_str0(per, h);
    h = hash_str0(space, h);
    h = hash_str0(tr->template_name, h);
    int64_t hdr[4] = {S, tr->hp.max_len, normalize, (int64_t)seed};
    h = uf_hash64(hdr, sizeof hdr, h);
    for (int64_t s = 0; s < S; s++) {
        const struct uf_example *ex = &data->rows[rows[s]];
        h = hash_str0(ex->prompt, h);
        h = hash_str0(ex->response, h);
        h = uf_hash64(&ex->kind, sizeof ex->kind, h);
    }
    return h;
}

static int ewc_init(struct uf_method *m, struct uf_trainer *tr) {
    if (uf_mneed_anchor(tr, "ewc") != 0) return -1;
    struct ewc_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    st->dev = tr->dev;
    const char *kind = uf_mcfg_str(m, "fisher"), *per = uf_mcfg_str(m, "per"), *space = uf_mcfg_str(m, "space");
    int true_fisher = strcmp(kind, "true") == 0;
    if (!true_fisher && strcmp(kind, "empirical") != 0)
        return uf_fail("ewc: fisher '%s' is not empirical or true", kind);
    int per_token = strcmp(per, "token") == 0;
    if (!per_token && strcmp(per, "example") != 0)
        return uf_fail("ewc: per '%s' is not example or token", per);
    st->merged = strcmp(space, "merged") == 0;
    if (!st->merged && strcmp(space, "trainable") != 0)
        return uf_fail("ewc: space '%s' is not trainable or merged", space);
    struct uf_model *md = tr->model;
    if (st->merged && md->lora.rank <= 0)
        return uf_fail("ewc: space = \"merged\" is the Fisher of the merged LoRA update and needs "
                       "uf.lora; under full fine-tuning the trainable weights are the merged ones "
                       "(use space = \"trainable\")");
    if (st->merged && md->lora_merged)
        return uf_fail("ewc: space = \"merged\" needs the adapters unmerged");
    int normalize = uf_mcfg_bool(m, "normalize");
    int64_t samples = (int64_t)uf_mcfg_num(m, "samples");
    if (samples <= 0) return uf_fail("ewc: samples must be > 0 (examples for the Fisher, e.g. 200)");
    struct uf_dataset data;
    if (uf_mcfg_dataset(tr, m, "data", &data) != 0) return -1;
    int64_t S = UF_MIN(samples, data.n);
    int64_t *rows = uf_malloc((size_t)S * sizeof *rows);
    uint64_t seed = tr->hp.seed ^ 0x45574346ull;
    uf_sample_indices(data.n, S, seed, 0, rows, NULL);

    int64_t P = uf_model_train_params(md)->numel;
    if (st->merged) {
        P = uf_lora_weff_numel(&md->cfg, md->lora.rank, md->lora.targets, &st->biggest);
        int pairs = md->n_lora / 2;
        st->off = uf_malloc((size_t)pairs * sizeof *st->off);
        int64_t o = 0;
        for (int k = 0; k < pairs; k++) {
            st->off[k] = o;
            o += md->lora_descs[2 * k + 1].rows * md->lora_descs[2 * k].cols;
        }
        uf_tensor_init(&st->work, tr->dev, "ewc.work", UF_F32, 1, (int64_t[]){3 * st->biggest});
    }
    uf_tensor_init(&st->F, tr->dev, "ewc.F", UF_F32, 1, (int64_t[]){P});
    uint64_t h = fisher_hash(tr, &data, rows, S, kind, per, space, normalize, seed);
    float *host = uf_malloc((size_t)P * sizeof *host);
    char *dir = uf_cache_dir("fisher");
    char *path = dir ? uf_sprintf("%s/%016llx.ufc", dir, (unsigned long long)h) : NULL;
    int rc = 0, cached = uf_method_fisher_cache_read(path, host, P, "EWC Fisher");
    if (cached) {
        uf_log(2, "ewc: Fisher from cache %s", path);
    } else {
        /* the run's dropout stream (keyed by the forward count) must not depend on whether
         * the Fisher came from the cache */
        uint64_t n_forward = md->n_forward;
        rc = compute_fisher(tr, st, &data, rows, S, true_fisher, per_token, seed, host);
        md->n_forward = n_forward;
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
    if (rc == 0) {
        uf_tensor_upload(&st->F, host);
        double mean = 0, mx = 0;
        for (int64_t i = 0; i < P; i++) mean += host[i], mx = fmax(mx, host[i]);
        uf_log(2, "ewc: Fisher (%s, per %s, %s) over %lld values: mean %.4g, max %.4g", kind, per,
               space, (long long)P, mean / (double)P, mx);
    }
    free(path);
    free(dir);
    free(host);
    free(rows);
    uf_dataset_free(&data);
    return rc;
}

/* merged: per adapted module, Delta = s B A - s B* A*, G = lambda F Delta (and the term),
 * dB += s G A^T, dA += s B^T G */
static void merged_penalty(struct ewc_state *st, struct uf_trainer *tr, float lambda, int slot) {
    struct uf_model *md = tr->model;
    struct uf_device *d = tr->dev;
    const struct uf_tensor *anchor = uf_trainer_anchor(tr);
    float s = md->lora_scale;
    size_t r = (size_t)md->lora.rank;
    for (int k = 0; k < md->n_lora / 2; k++) {
        const struct uf_lora_desc *ad = &md->lora_descs[2 * k], *bd = &md->lora_descs[2 * k + 1];
        size_t in = (size_t)ad->cols, out = (size_t)bd->rows;
        int64_t n = (int64_t)(out * in);
        const struct uf_tensor *A = &md->lpv[2 * k], *B = &md->lpv[2 * k + 1];
        struct uf_tensor *dA = &md->lgv[2 * k], *dB = &md->lgv[2 * k + 1];
        size_t a0 = anchor->offset + (size_t)ad->offset, b0 = anchor->offset + (size_t)bd->offset;
        struct uf_tensor cur, start, G, Fk;
        uf_tensor_view(&cur, &st->work, "ewc.sBA", 0, 1, (int64_t[]){n});
        uf_tensor_view(&start, &st->work, "ewc.sBA*", (size_t)st->biggest, 1, (int64_t[]){n});
        uf_tensor_view(&G, &st->work, "ewc.G", 2 * (size_t)st->biggest, 1, (int64_t[]){n});
        uf_tensor_view(&Fk, &st->F, "ewc.F", (size_t)st->off[k], 1, (int64_t[]){n});
        uf_gemm(d, false, false, out, in, r, s, B->buf, B->offset, r, A->buf, A->offset, in, 0.0f,
                cur.buf, cur.offset, in);
        uf_gemm(d, false, false, out, in, r, s, anchor->buf, b0, r, anchor->buf, a0, in, 0.0f,
                start.buf, start.offset, in);
        uf_tensor_fill(&G, 0.0f);
        uf_clmath_penalty(d, &G, &cur, &start, &Fk, lambda, &tr->terms, slot);
        uf_gemm(d, false, true, out, r, in, s, G.buf, G.offset, in, A->buf, A->offset, in, 1.0f,
                dB->buf, dB->offset, r);
        uf_gemm(d, true, false, r, in, out, s, B->buf, B->offset, r, G.buf, G.offset, in, 1.0f,
                dA->buf, dA->offset, in);
    }
}

static int ewc_grad(struct uf_method *m, struct uf_trainer *tr) {
    struct ewc_state *st = m->state;
    float lambda = (float)uf_mcfg_num(m, "lambda");
    struct uf_tensor *anchor = uf_trainer_anchor(tr);
    if (!anchor) return uf_fail("ewc: no anchor weights (uf_trainer_anchor failed)");
    if (st->merged) {
        if (lambda != 0.0f) merged_penalty(st, tr, lambda, m->slot);
        return 0;
    }
    uf_clmath_penalty(tr->dev, uf_model_train_grads(tr->model), uf_model_train_params(tr->model),
                      anchor, &st->F, lambda, &tr->terms, m->slot);
    return 0;
}

static void ewc_free(struct uf_method *m) {
    struct ewc_state *st = m->state;
    if (!st) return;
    if (st->F.buf) uf_tensor_free(&st->F);
    if (st->work.buf) uf_tensor_free(&st->work);
    free(st->off);
    free(st);
    m->state = NULL;
}

/* F (one trainable vector, or under space = "merged" the adapted modules' weights) and the
 * merged penalty's work buffer (3 x the largest adapted module) */
static size_t ewc_state_bytes(const struct uf_memplan_in *in, const cJSON *cfg) {
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(cfg, "space");
    if (in->lora_rank > 0 && cJSON_IsString(sp) && strcmp(sp->valuestring, "merged") == 0) {
        int64_t biggest = 0, n = uf_lora_weff_numel(&in->cfg, in->lora_rank, in->lora_targets, &biggest);
        return (size_t)(n + 3 * biggest) * 4;
    }
    return uf_mplan_trainable_bytes(in);
}

const struct uf_method_ops uf_method_ewc = {.uses_anchor = UF_ANCHOR_ALWAYS, .state_name = "ewc Fisher F", .state_bytes = ewc_state_bytes, .name = "ewc", .init = ewc_init, .grad = ewc_grad, .free = ewc_free};
