/* methods/tokensel.c: token-level data selection for safe fine-tuning (TOSS; Li, Liu, Li, Lin,
 * Zhang, "Token-level Data Selection for Safe LLM Fine-tuning", ICLR 2026, arXiv 2603.01185).
 *
 * Init hook, before training (the model's weights are theta*, the start weights):
 *   1. the safety-degraded reference: theta* fine-tuned for ref_steps on `harmful` (the provider's
 *      harmful instruction -> compliance rows); CE_deg(t) = its cross-entropy at every response
 *      token t of every training row;
 *   2. the utility-oriented reference: theta* fine-tuned for ref_steps on `utility` (default: the
 *      training rows themselves); CE_util(t) likewise;
 *   3. the risk score  s_t = CE_util(t) - CE_deg(t)  (high = the degraded model finds the token
 *      much likelier than the utility model: a token that teaches the unsafe behaviour), and per
 *      response token a weight w_t:
 *        mode "drop":   the k = round(drop x N) tokens of highest s over all N response tokens of
 *                       the training data get w = 0, the others w = 1 (ties broken by position:
 *                       row, then token; exactly k dropped);
 *        mode "weight": w_t = 1 - (s_t - s_min) / (s_max - s_min)   (1 when s_max = s_min).
 * Both references are trained IN PLACE on the run's model (its own AdamW moments, constant lr
 * ref_lr or the run's, the run's batch, micro-batch, betas, weight decay and clip; row order
 * from its own seeded epochs, not tr->rng), scored with dropout off, and the model is restored to
 * theta* from the anchor bit for bit (the trainable vector; under LoRA the base is frozen and
 * untouched) with its forward counter (the LoRA dropout stream): no reference copy is held, and
 * the references' optimizer exists only during init, before the run's own is allocated, so the
 * init's peak stays within the training peak of the memory plan (the anchor is the only state).
 * Batch hook: on the training rows' micro-batches the response mask (the CE's per-token weight)
 * is multiplied by w; in "drop" mode the dropped tokens also leave the CE's denominator (the loss
 * is the mean CE of the kept tokens), in "weight" mode the denominator stays the number of
 * response tokens. Methods listed after tokensel see the selected mask (LwF's response tokens);
 * micro-batches of other rows (Lisa's alignment rows) are left alone. The weights are host data
 * computed once (rows x tokens floats); per step only the mask the loop uploads anyway changes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "methods/common.h"
#include "model/optim.h"

struct tokensel_state {
    const struct uf_dataset *data; /* the scored training rows (tr->data at init) */
    int64_t *off;                  /* (n + 1) row r's target positions are w[off[r] .. off[r+1]) */
    float *w;                      /* (off[n]) weight of each target position (1 off the response) */
    int drop_mode;                 /* 1: dropped tokens leave the denominator */
    int64_t n_resp, n_dropped;
};

/* theta* fine-tuned in place for `steps` AdamW steps on d: the loop's plain fine-tuning (train.c:
 * rows in the epochs of hp.seed, micro-batches weighted by the step's response tokens, clip as
 * clip_on = "total") with a constant lr and no warm-up. */
static int ref_train(struct uf_trainer *tr, const struct uf_dataset *d, int64_t steps, float lr) {
    const struct uf_train_hparams *hp = &tr->hp;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.lr = lr, oc.beta1 = hp->beta1, oc.beta2 = hp->beta2, oc.eps = hp->eps;
    oc.weight_decay = hp->weight_decay, oc.max_norm = hp->clip;
    oc.schedule = UF_LR_CONSTANT, oc.total_steps = (int)steps, oc.warmup_steps = 0;
    struct uf_optim opt;
    if (uf_optim_init(&opt, tr->model, &oc)) return -1;
    struct uf_epoch_iter it;
    uf_epoch_iter_init(&it, d->n, hp->seed, 1);
    int micro = hp->batch / hp->micro_batch;
    int64_t *idx = uf_calloc((size_t)hp->batch, sizeof *idx);
    struct uf_train_batch *mb = uf_calloc((size_t)micro, sizeof *mb);
    int rc = 0;
    for (int64_t s = 0; s < steps && rc == 0; s++) {
        uf_model_zero_grad(tr->model);
        uf_epoch_iter_next_full(&it, idx, hp->batch);
        int64_t masked = 0;
        int made = 0;
        for (int k = 0; k < micro && rc == 0; k++, made++) {
            rc = uf_trainer_make_batch(tr, d, idx + (size_t)k * hp->micro_batch, hp->micro_batch, &mb[k]);
            masked += mb[k].n_masked;
        }
        for (int k = 0; k < micro && rc == 0; k++) {
            struct uf_model_batch b;
            uf_mbatch(&mb[k], 1, &b);
            b.loss_denom = (float)UF_MAX(masked, (int64_t)1);
            rc = uf_model_forward(tr->model, &b);
            if (rc == 0) rc = uf_model_backward(tr->model);
        }
        for (int k = 0; k < made; k++) uf_train_batch_free(&mb[k]);
        if (rc == 0) uf_optim_step(&opt, 1.0f);
    }
    free(mb);
    free(idx);
    uf_epoch_iter_free(&it);
    uf_optim_free(&opt);
    return rc;
}

/* ce[off[r] + t] = the model's CE at target position t of training row r (0 off the response),
 * dropout off (read back once per micro-batch: before training, not inside a step). */
static int score_rows(struct uf_trainer *tr, struct tokensel_state *st, float *ce) {
    const struct uf_dataset *d = st->data;
    int chunk = tr->hp.micro_batch;
    int64_t *rows = uf_calloc((size_t)chunk, sizeof *rows);
    float *lr = NULL;
    int rc = 0, training = tr->model->training;
    tr->model->training = 0;
    for (int64_t r0 = 0; r0 < d->n && rc == 0; r0 += chunk) {
        int n = (int)UF_MIN((int64_t)chunk, d->n - r0);
        for (int i = 0; i < n; i++) rows[i] = r0 + i;
        struct uf_train_batch b;
        if ((rc = uf_trainer_make_batch(tr, d, rows, n, &b)) != 0) break;
        struct uf_model_batch mb;
        uf_mbatch(&b, 1, &mb);
        rc = uf_model_forward(tr->model, &mb);
        if (rc == 0) {
            int64_t N = (int64_t)b.B * b.T;
            lr = uf_realloc(lr, (size_t)N * sizeof *lr);
            struct uf_tensor v = uf_mview(&tr->model->loss_rows, "tokensel.loss_rows", N, 1);
            uf_tensor_download(&v, lr);
            for (int i = 0; i < n && rc == 0; i++) {
                int64_t r = r0 + i;
                if (st->off[r + 1] - st->off[r] != b.lengths[i]) {
                    rc = uf_fail("tokensel: row %lld has %d positions now, %lld before", (long long)r,
                                 b.lengths[i], (long long)(st->off[r + 1] - st->off[r]));
                    break;
                }
                for (int t = 0; t < b.lengths[i]; t++) {
                    size_t o = (size_t)i * b.T + t;
                    ce[st->off[r] + t] = b.mask[o] != 0 ? lr[o] : 0.0f;
                }
            }
        }
        uf_train_batch_free(&b);
    }
    tr->model->training = training;
    free(lr);
    free(rows);
    return rc;
}

/* row offsets and the response flags (resp[off[r] + t] = 1 on response positions) */
static int layout_rows(struct uf_trainer *tr, struct tokensel_state *st, uint8_t **resp) {
    const struct uf_dataset *d = st->data;
    st->off = uf_calloc((size_t)d->n + 1, sizeof *st->off);
    size_t cap = 256, used = 0;
    *resp = uf_malloc(cap);
    for (int64_t r = 0; r < d->n; r++) {
        struct uf_train_batch b;
        if (uf_trainer_make_batch(tr, d, &r, 1, &b) != 0) return -1;
        st->off[r + 1] = st->off[r] + b.lengths[0];
        if (used + (size_t)b.lengths[0] > cap) {
            cap = 2 * (used + (size_t)b.lengths[0]);
            *resp = uf_realloc(*resp, cap);
        }
        for (int t = 0; t < b.lengths[0]; t++) (*resp)[used++] = b.mask[t] != 0;
        uf_train_batch_free(&b);
    }
    return 0;
}

/* the drop rule's order: score descending, then position ascending */
static const float *g_scores;
static int by_score_desc(const void *a, const void *b) {
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (g_scores[i] != g_scores[j]) return g_scores[i] > g_scores[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* w from the scores s of the n response tokens: drop mode (k = round(drop n) of the highest s
 * get 0, the rest 1; returns k), or weight mode (1 - min-max normalised s; returns 0). */
static int64_t select_weights(const float *s, int64_t n, int drop_mode, double drop, float *w) {
    if (!drop_mode) {
        float lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++) lo = fminf(lo, s[i]), hi = fmaxf(hi, s[i]);
        for (int64_t i = 0; i < n; i++) w[i] = hi > lo ? 1.0f - (s[i] - lo) / (hi - lo) : 1.0f;
        return 0;
    }
    int64_t k = (int64_t)llround(drop * (double)n);
    if (k > n) k = n;
    for (int64_t i = 0; i < n; i++) w[i] = 1.0f;
    if (k == 0) return 0;
    int64_t *order = uf_malloc((size_t)n * sizeof *order);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    g_scores = s;
    qsort(order, (size_t)n, sizeof *order, by_score_desc);
    for (int64_t i = 0; i < k; i++) w[order[i]] = 0.0f;
    free(order);
    return k;
}

/* Where the selection fell, by row source (the world's "task", "lookup", poison split, ...; 8 at
 * most, the rest as "other"): "NAME removed-weight of response-tokens, ..." into by ("-" if none). */
static void selection_by_source(const struct tokensel_state *st, const uint8_t *resp, char *by, size_t cap) {
    enum { MAX_SRC = 8 };
    const char *src[MAX_SRC + 1] = {[MAX_SRC] = "other"};
    double src_n[MAX_SRC + 1] = {0}, src_cut[MAX_SRC + 1] = {0};
    int n_src = 0;
    for (int64_t r = 0; r < st->data->n; r++) {
        const char *name = st->data->rows[r].source;
        int k = 0;
        while (k < n_src && strcmp(src[k], name) != 0) k++;
        if (k == n_src) {
            if (n_src < MAX_SRC) src[n_src++] = name;
            else k = MAX_SRC;
        }
        for (int64_t p = st->off[r]; p < st->off[r + 1]; p++)
            if (resp[p]) src_n[k] += 1, src_cut[k] += 1.0 - st->w[p];
    }
    int used = 0;
    snprintf(by, cap, "-");
    for (int k = 0; k <= MAX_SRC; k++)
        if (src_n[k] > 0 && used < (int)cap)
            used += snprintf(by + used, cap - (size_t)used, "%s%s %.4g of %.0f", used ? ", " : "", src[k],
                             src_cut[k], src_n[k]);
}

static int tokensel_init(struct uf_method *m, struct uf_trainer *tr) {
    struct tokensel_state *st = uf_calloc(1, sizeof *st);
    m->state = st;
    const char *mode = uf_mcfg_str(m, "mode");
    if (strcmp(mode, "drop") != 0 && strcmp(mode, "weight") != 0)
        return uf_fail("tokensel: mode must be \"drop\" or \"weight\", not \"%s\"", mode);
    st->drop_mode = strcmp(mode, "drop") == 0;
    double drop = uf_mcfg_num(m, "drop"), ref_lr = uf_mcfg_num(m, "ref_lr");
    int64_t ref_steps = (int64_t)uf_mcfg_num(m, "ref_steps");
    if (!(drop >= 0 && drop <= 1) || ref_steps < 1 || !(ref_lr >= 0))
        return uf_fail("tokensel: need drop in [0, 1], ref_steps >= 1 and ref_lr >= 0");
    float lr = ref_lr > 0 ? (float)ref_lr : tr->hp.lr;
    if (uf_mneed_anchor(tr, "tokensel") != 0) return -1;
    st->data = tr->data;
    struct uf_dataset harmful, utility;
    memset(&utility, 0, sizeof utility);
    if (uf_mcfg_dataset(tr, m, "harmful", &harmful) != 0) return -1;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(m->cfg, "utility");
    int own_utility = u && !cJSON_IsNull(u);
    if (own_utility && uf_mcfg_dataset(tr, m, "utility", &utility) != 0) {
        uf_dataset_free(&harmful);
        return -1;
    }
    uint8_t *resp = NULL;
    float *ce_deg = NULL, *ce_util = NULL;
    struct uf_tensor *theta = uf_model_train_params(tr->model);
    uint64_t n_forward = tr->model->n_forward;
    int rc = layout_rows(tr, st, &resp);
    int64_t n_pos = st->off[st->data->n];
    if (rc == 0) {
        ce_deg = uf_calloc((size_t)n_pos + 1, sizeof *ce_deg);
        ce_util = uf_calloc((size_t)n_pos + 1, sizeof *ce_util);
        rc = ref_train(tr, &harmful, ref_steps, lr);
    }
    if (rc == 0) rc = score_rows(tr, st, ce_deg);
    uf_tensor_copy(theta, &tr->anchor);
    uf_model_params_written(tr->model);
    if (rc == 0) rc = ref_train(tr, own_utility ? &utility : st->data, ref_steps, lr);
    if (rc == 0) rc = score_rows(tr, st, ce_util);
    /* back to theta*, bit for bit, with the dropout stream where it was */
    uf_tensor_copy(theta, &tr->anchor);
    uf_model_params_written(tr->model);
    uf_model_zero_grad(tr->model);
    tr->model->n_forward = n_forward;
    uf_dataset_free(&harmful);
    if (own_utility) uf_dataset_free(&utility);
    if (rc == 0) {
        /* scores of the response positions, in position order */
        float *s = uf_malloc(((size_t)n_pos + 1) * sizeof *s), *w = uf_malloc(((size_t)n_pos + 1) * sizeof *w);
        int64_t n = 0;
        for (int64_t p = 0; p < n_pos; p++)
            if (resp[p]) s[n++] = ce_util[p] - ce_deg[p];
        st->n_resp = n;
        st->n_dropped = select_weights(s, n, st->drop_mode, drop, w);
        st->w = uf_malloc(((size_t)n_pos + 1) * sizeof *st->w);
        double sum_w = 0, sum_s = 0;
        for (int64_t p = 0, i = 0; p < n_pos; p++) {
            st->w[p] = resp[p] ? w[i] : 1.0f;
            if (resp[p]) sum_w += w[i], sum_s += s[i], i++;
        }
        char by[512];
        selection_by_source(st, resp, by, sizeof by);
        uf_log(1, "tokensel: %lld response tokens of %s scored (s = CE_util - CE_deg, mean %.4g); %s: "
               "%lld dropped, mean weight %.4g; removed weight by row source: %s", (long long)n, st->data->name,
               n ? sum_s / (double)n : 0.0, st->drop_mode ? "drop" : "weight", (long long)st->n_dropped,
               n ? sum_w / (double)n : 1.0, by);
        free(s), free(w);
    }
    free(resp), free(ce_deg), free(ce_util);
    return rc ? uf_fail_prefix("tokensel") : 0;
}

static int tokensel_batch(struct uf_method *m, struct uf_trainer *tr, struct uf_train_batch *b) {
    struct tokensel_state *st = m->state;
    if (b->data != st->data) {
        if (b->data == tr->data)
            return uf_fail("tokensel scored %s but the run trains on %s: list tokensel after the methods that "
                           "change the training data (safeinstr)", st->data->name, tr->data->name);
        return 0; /* another source's rows (Lisa's alignment steps) */
    }
    for (int i = 0; i < b->B; i++) {
        int64_t r = b->rows[i];
        if (r < 0 || r >= st->data->n || b->lengths[i] != st->off[r + 1] - st->off[r])
            return uf_fail("tokensel: batch row %lld (%d positions) does not match the scored rows",
                           (long long)r, b->lengths[i]);
        const float *w = st->w + st->off[r];
        for (int t = 0; t < b->lengths[i]; t++) {
            float *mk = &b->mask[(size_t)i * b->T + t];
            if (*mk == 0) continue;
            if (st->drop_mode && w[t] == 0) b->n_masked--;
            *mk *= w[t];
        }
    }
    return 0;
}

static void tokensel_free(struct uf_method *m) {
    struct tokensel_state *st = m->state;
    if (!st) return;
    free(st->off), free(st->w);
    free(st);
    m->state = NULL;
}

const struct uf_method_ops uf_method_tokensel = {
    .name = "tokensel", .uses_anchor = UF_ANCHOR_ALWAYS, .init = tokensel_init,
    .batch = tokensel_batch, .free = tokensel_free};
