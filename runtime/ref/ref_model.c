/* ref_model.c: the reference model forward + backward (see ref_model.h). Composes the double ops
 * of ref_ops.h; every activation is kept (tiny models only). */
#include "ref/ref_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_ops.h"
#include "core/util.h"

/* ---- LoRA layout ------------------------------------------------------------------------- */
static const char *lora_module_name(enum uf_param_kind k) {
    switch (k) {
    case UF_P_Q: return "self_attn.q_proj";
    case UF_P_K: return "self_attn.k_proj";
    case UF_P_V: return "self_attn.v_proj";
    case UF_P_O: return "self_attn.o_proj";
    case UF_P_GATE: return "mlp.gate_proj";
    case UF_P_UP: return "mlp.up_proj";
    case UF_P_DOWN: return "mlp.down_proj";
    default: return "?";
    }
}

/* (out, in) of a linear module */
static void linear_shape(const struct uf_model_config *c, enum uf_param_kind k, int *out, int *in) {
    int D = c->d_model, F = c->d_ff, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim;
    switch (k) {
    case UF_P_Q: *out = QD; *in = D; break;
    case UF_P_K: case UF_P_V: *out = KD; *in = D; break;
    case UF_P_O: *out = D; *in = QD; break;
    case UF_P_GATE: case UF_P_UP: *out = F; *in = D; break;
    case UF_P_DOWN: *out = D; *in = F; break;
    default: *out = *in = 0; break;
    }
}

int uf_ref_lora_descs(const struct uf_model_config *c, int rank, unsigned targets,
                      struct uf_ref_lora_desc *out) {
    static const enum uf_param_kind order[] = {UF_P_Q, UF_P_K, UF_P_V, UF_P_O,
                                               UF_P_GATE, UF_P_UP, UF_P_DOWN};
    int n = 0;
    int64_t off = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (unsigned m = 0; m < UF_ARRAY_LEN(order); m++) {
            enum uf_param_kind k = order[m];
            if (!(targets & UF_LORA_TARGET(k))) continue;
            int o, i;
            linear_shape(c, k, &o, &i);
            for (int is_b = 0; is_b < 2; is_b++) {
                int64_t rows = is_b ? o : rank, cols = is_b ? rank : i;
                if (out) {
                    struct uf_ref_lora_desc *d = &out[n];
                    memset(d, 0, sizeof *d);
                    snprintf(d->name, sizeof d->name, "model.layers.%d.%s.lora_%c.weight", l,
                             lora_module_name(k), is_b ? 'B' : 'A');
                    d->kind = k;
                    d->layer = l;
                    d->is_b = is_b;
                    d->rows = rows;
                    d->cols = cols;
                    d->offset = off;
                    d->numel = rows * cols;
                }
                off += rows * cols;
                n++;
            }
        }
    return n;
}

int64_t uf_ref_lora_numel(const struct uf_model_config *c, int rank, unsigned targets) {
    int n = uf_ref_lora_descs(c, rank, targets, NULL);
    if (n == 0) return 0;
    struct uf_ref_lora_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_ref_lora_descs(c, rank, targets, d);
    int64_t total = d[n - 1].offset + d[n - 1].numel;
    free(d);
    return total;
}

/* ---- the model --------------------------------------------------------------------------- */
#define NKINDS (UF_P_LM_HEAD + 1)

struct ref {
    const struct uf_model_config *c;
    int B, T, N;
    int64_t off[64 + 1][NKINDS];   /* [layer + 1][kind] offset in params, -1 if absent; layer -1 -> row 0 */
    double *P, *dP;                 /* (numel) params and grads, double */
    /* LoRA */
    int r;
    float lscale;
    unsigned targets;
    int64_t loff[64][NKINDS][2];     /* [layer][kind][is_b] offset in the LoRA vector */
    double *LP, *dLP;
};

static int64_t poff(const struct ref *m, int layer, enum uf_param_kind k) {
    return m->off[layer + 1][k];
}

static int is_lora(const struct ref *m, enum uf_param_kind k) {
    return m->LP && (m->targets & UF_LORA_TARGET(k));
}

static void linear_fwd(const struct ref *m, int l, enum uf_param_kind k, double *y, const double *x) {
    int out, in;
    linear_shape(m->c, k, &out, &in);
    const double *w = m->P + poff(m, l, k);
    if (is_lora(m, k))
        uf_ref_lora_forward_f64(y, x, w, m->LP + m->loff[l][k][0], m->LP + m->loff[l][k][1], m->N,
                                in, out, m->r, m->lscale);
    else
        uf_ref_matmul_forward_f64(y, x, w, m->N, in, out);
}

static void linear_bwd(const struct ref *m, int l, enum uf_param_kind k, double *dx,
                       const double *dy, const double *x) {
    int out, in;
    linear_shape(m->c, k, &out, &in);
    const double *w = m->P + poff(m, l, k);
    double *dw = m->dP ? m->dP + poff(m, l, k) : NULL;
    if (is_lora(m, k))
        uf_ref_lora_backward_f64(dx, dw, m->dLP ? m->dLP + m->loff[l][k][0] : NULL,
                                 m->dLP ? m->dLP + m->loff[l][k][1] : NULL, dy, x, w,
                                 m->LP + m->loff[l][k][0], m->LP + m->loff[l][k][1], m->N, in, out,
                                 m->r, m->lscale);
    else
        uf_ref_matmul_backward_f64(dx, dw, dy, x, w, m->N, in, out);
}

/* saved activations of one layer */
struct acts {
    double *x_in;       /* (N, D) residual stream entering the layer */
    double *ln1;        /* (N, D) */
    double *q, *k, *v;  /* (N, QD), (N, KD), (N, KD) before RoPE */
    double *qr, *kr;    /* after RoPE */
    double *att;        /* (N, QD) attention output */
    double *x_mid;      /* (N, D) after the attention residual */
    double *ln2;        /* (N, D) */
    double *g, *u, *h;  /* (N, F) */
};

static double *dalloc(size_t n) { return uf_calloc(n + 1, sizeof(double)); }

static int check_inputs(const struct uf_model_config *c, const struct uf_ref_lora *lora,
                        const struct uf_ref_batch *bt) {
    if (uf_model_config_validate(c)) return uf_fail_prefix("uf_ref_model_run");
    if (c->n_layers > 64) return uf_fail("uf_ref_model_run: at most 64 layers (got %d)", c->n_layers);
    if (bt->B <= 0 || bt->T <= 0) return uf_fail("uf_ref_model_run: B (%d) and T (%d) must be positive", bt->B, bt->T);
    if (!bt->tokens) return uf_fail("uf_ref_model_run: batch has no tokens");
    if (lora && (lora->rank <= 0 || !lora->params))
        return uf_fail("uf_ref_model_run: LoRA needs rank > 0 (got %d) and params", lora->rank);
    for (int b = 0; b < bt->B; b++) {
        int len = bt->lengths ? bt->lengths[b] : bt->T;
        if (len < 0 || len > bt->T)
            return uf_fail("uf_ref_model_run: lengths[%d] = %d is outside [0, T = %d]", b, len, bt->T);
        for (int t = 0; t < bt->T; t++) {
            int n = b * bt->T + t;
            if (bt->tokens[n] < 0 || bt->tokens[n] >= c->vocab)
                return uf_fail("uf_ref_model_run: tokens[%d][%d] = %d is outside [0, vocab = %d)", b,
                               t, bt->tokens[n], c->vocab);
            float mk = bt->loss_mask ? bt->loss_mask[n] : 1.0f;
            if (mk != 0 && (!bt->targets || bt->targets[n] < 0 || bt->targets[n] >= c->vocab))
                return uf_fail("uf_ref_model_run: targets[%d][%d] = %d is outside [0, vocab = %d) "
                               "where the loss mask is set", b, t,
                               bt->targets ? bt->targets[n] : -1, c->vocab);
        }
    }
    return 0;
}

int uf_ref_model_run(const struct uf_model_config *c, const float *params,
                     const struct uf_ref_lora *lora, const struct uf_ref_batch *bt,
                     const float *g_logits, const float *g_hidden, struct uf_ref_result *res) {
    if (check_inputs(c, lora, bt)) return -1;
    if (res->lora_grad && !lora)
        return uf_fail("uf_ref_model_run: lora_grad asked for without a LoRA adapter");
    struct ref m;
    memset(&m, 0, sizeof m);
    m.c = c;
    m.B = bt->B;
    m.T = bt->T;
    m.N = bt->B * bt->T;
    const int N = m.N, T = m.T, D = c->d_model, F = c->d_ff, V = c->vocab, L = c->n_layers;
    const int H = c->n_heads, KV = c->n_kv_heads, hd = c->head_dim;
    const int QD = H * hd, KD = KV * hd;
    const size_t ND = (size_t)N * D;
    int backward = res->grad || res->lora_grad;

    /* parameters in double, and where each tensor starts */
    int np = uf_model_param_descs(c, NULL);
    struct uf_param_desc *pd = uf_calloc((size_t)np, sizeof *pd);
    uf_model_param_descs(c, pd);
    int64_t P = pd[np - 1].offset + pd[np - 1].numel;
    for (int i = 0; i < 65; i++)
        for (int k = 0; k < NKINDS; k++) m.off[i][k] = -1;
    for (int i = 0; i < np; i++) m.off[pd[i].layer + 1][pd[i].kind] = pd[i].offset;
    free(pd);
    int64_t lm_off = c->tied_embeddings ? m.off[0][UF_P_EMBED] : m.off[0][UF_P_LM_HEAD];
    m.P = dalloc((size_t)P);
    for (int64_t i = 0; i < P; i++) m.P[i] = params[i];
    if (res->grad) m.dP = dalloc((size_t)P);
    int64_t PL = 0;
    if (lora) {
        m.r = lora->rank;
        m.lscale = lora->alpha / (float)lora->rank;
        m.targets = lora->targets;
        int nl = uf_ref_lora_descs(c, lora->rank, lora->targets, NULL);
        struct uf_ref_lora_desc *ld = uf_calloc((size_t)nl + 1, sizeof *ld);
        uf_ref_lora_descs(c, lora->rank, lora->targets, ld);
        for (int i = 0; i < nl; i++) m.loff[ld[i].layer][ld[i].kind][ld[i].is_b] = ld[i].offset;
        PL = nl ? ld[nl - 1].offset + ld[nl - 1].numel : 0;
        free(ld);
        m.LP = dalloc((size_t)PL);
        for (int64_t i = 0; i < PL; i++) m.LP[i] = lora->params[i];
        if (res->lora_grad) m.dLP = dalloc((size_t)PL);
    }
    int32_t *lengths = uf_calloc((size_t)m.B, sizeof *lengths);
    for (int b = 0; b < m.B; b++) lengths[b] = bt->lengths ? bt->lengths[b] : T;
    float *inv_freq = uf_calloc((size_t)hd / 2 + 1, sizeof *inv_freq);
    uf_ref_rope_inv_freq(c, inv_freq);
    float escale = c->embed_scale ? (float)sqrt((double)D) : 1.0f;

    /* ---- forward ---- */
    struct acts *a = uf_calloc((size_t)L, sizeof *a);
    double *x0 = dalloc(ND);
    uf_ref_embedding_forward_f64(x0, bt->tokens, m.P + m.off[0][UF_P_EMBED], N, D, escale);
    const double *x = x0;
    double *x_last = NULL;
    for (int l = 0; l < L; l++) {
        struct acts *s = &a[l];
        s->x_in = (double *)x;
        s->ln1 = dalloc(ND);
        s->q = dalloc((size_t)N * QD); s->qr = dalloc((size_t)N * QD);
        s->k = dalloc((size_t)N * KD); s->kr = dalloc((size_t)N * KD);
        s->v = dalloc((size_t)N * KD);
        s->att = dalloc((size_t)N * QD);
        s->x_mid = dalloc(ND);
        s->ln2 = dalloc(ND);
        s->g = dalloc((size_t)N * F); s->u = dalloc((size_t)N * F); s->h = dalloc((size_t)N * F);
        double *tmp = dalloc(ND), *x_out = dalloc(ND);

        uf_ref_rmsnorm_forward_f64(s->ln1, NULL, x, m.P + poff(&m, l, UF_P_ATTN_NORM), N, D,
                                   c->norm_eps, c->norm_plus_one);
        linear_fwd(&m, l, UF_P_Q, s->q, s->ln1);
        linear_fwd(&m, l, UF_P_K, s->k, s->ln1);
        linear_fwd(&m, l, UF_P_V, s->v, s->ln1);
        uf_ref_rope_forward_f64(s->qr, s->q, inv_freq, N, T, H, hd);
        uf_ref_rope_forward_f64(s->kr, s->k, inv_freq, N, T, KV, hd);
        uf_ref_attention_forward_f64(s->att, NULL, s->qr, s->kr, s->v, lengths, m.B, T, H, KV, hd,
                                     c->sliding_window);
        linear_fwd(&m, l, UF_P_O, tmp, s->att);
        uf_ref_residual_forward_f64(s->x_mid, x, tmp, (int64_t)ND);
        uf_ref_rmsnorm_forward_f64(s->ln2, NULL, s->x_mid, m.P + poff(&m, l, UF_P_MLP_NORM), N, D,
                                   c->norm_eps, c->norm_plus_one);
        linear_fwd(&m, l, UF_P_GATE, s->g, s->ln2);
        linear_fwd(&m, l, UF_P_UP, s->u, s->ln2);
        uf_ref_gated_act_forward_f64(s->h, s->g, s->u, (int64_t)N * F, c->act);
        linear_fwd(&m, l, UF_P_DOWN, tmp, s->h);
        uf_ref_residual_forward_f64(x_out, s->x_mid, tmp, (int64_t)ND);
        free(tmp);
        x = x_out;
        x_last = x_out;
    }
    if (!x_last) x_last = x0; /* unreachable: L >= 1 */
    double *hid = dalloc(ND), *logits = dalloc((size_t)N * V);
    uf_ref_rmsnorm_forward_f64(hid, NULL, x_last, m.P + m.off[0][UF_P_FINAL_NORM], N, D, c->norm_eps,
                               c->norm_plus_one);
    uf_ref_matmul_forward_f64(logits, hid, m.P + lm_off, N, D, V);
    double count = 0;
    for (int n = 0; n < N; n++) count += bt->loss_mask ? (double)bt->loss_mask[n] : 1.0;
    res->loss = uf_ref_cross_entropy_forward_f64(NULL, logits, bt->targets, bt->loss_mask, N, V);
    res->objective = res->loss;
    if (g_logits)
        for (size_t i = 0; i < (size_t)N * V; i++) res->objective += (double)g_logits[i] * logits[i];
    if (g_hidden)
        for (size_t i = 0; i < ND; i++) res->objective += (double)g_hidden[i] * hid[i];
    if (res->logits)
        for (size_t i = 0; i < (size_t)N * V; i++) res->logits[i] = (float)logits[i];
    if (res->hidden)
        for (size_t i = 0; i < ND; i++) res->hidden[i] = (float)hid[i];

    /* ---- backward ---- */
    if (backward) {
        double *dlogits = dalloc((size_t)N * V), *dhid = dalloc(ND), *dx = dalloc(ND);
        uf_ref_cross_entropy_backward_f64(dlogits, logits, bt->targets, bt->loss_mask, N, V,
                                          count != 0 ? 1.0 / count : 0.0);
        if (g_logits)
            for (size_t i = 0; i < (size_t)N * V; i++) dlogits[i] += g_logits[i];
        if (g_hidden)
            for (size_t i = 0; i < ND; i++) dhid[i] = g_hidden[i];
        uf_ref_matmul_backward_f64(dhid, m.dP ? m.dP + lm_off : NULL, dlogits, hid, m.P + lm_off, N,
                                   D, V);
        uf_ref_rmsnorm_backward_f64(dx, m.dP ? m.dP + m.off[0][UF_P_FINAL_NORM] : NULL, dhid, x_last,
                                    m.P + m.off[0][UF_P_FINAL_NORM], N, D, c->norm_eps,
                                    c->norm_plus_one);
        double *dx_mid = dalloc(ND), *dln = dalloc(ND);
        double *dh = dalloc((size_t)N * F), *dg = dalloc((size_t)N * F), *du = dalloc((size_t)N * F);
        double *datt = dalloc((size_t)N * QD), *dqr = dalloc((size_t)N * QD), *dq = dalloc((size_t)N * QD);
        double *dkr = dalloc((size_t)N * KD), *dk = dalloc((size_t)N * KD), *dv = dalloc((size_t)N * KD);
        for (int l = L - 1; l >= 0; l--) {
            struct acts *s = &a[l];
            double *dw = NULL;
#define ZERO(p, n) memset((p), 0, (size_t)(n) * sizeof(double))
            /* x_out = x_mid + down(h): dx (= d x_out) flows to both */
            ZERO(dx_mid, ND);
            uf_ref_residual_backward_f64(dx_mid, NULL, dx, (int64_t)ND);
            ZERO(dh, (size_t)N * F);
            linear_bwd(&m, l, UF_P_DOWN, dh, dx, s->h);
            ZERO(dg, (size_t)N * F);
            ZERO(du, (size_t)N * F);
            uf_ref_gated_act_backward_f64(dg, du, dh, s->g, s->u, (int64_t)N * F, c->act);
            ZERO(dln, ND);
            linear_bwd(&m, l, UF_P_GATE, dln, dg, s->ln2);
            linear_bwd(&m, l, UF_P_UP, dln, du, s->ln2);
            dw = m.dP ? m.dP + poff(&m, l, UF_P_MLP_NORM) : NULL;
            uf_ref_rmsnorm_backward_f64(dx_mid, dw, dln, s->x_mid, m.P + poff(&m, l, UF_P_MLP_NORM),
                                        N, D, c->norm_eps, c->norm_plus_one);
            /* x_mid = x_in + o(att): dx_mid flows to both */
            ZERO(dx, ND);
            uf_ref_residual_backward_f64(dx, NULL, dx_mid, (int64_t)ND);
            ZERO(datt, (size_t)N * QD);
            linear_bwd(&m, l, UF_P_O, datt, dx_mid, s->att);
            ZERO(dqr, (size_t)N * QD);
            ZERO(dkr, (size_t)N * KD);
            ZERO(dv, (size_t)N * KD);
            uf_ref_attention_backward_f64(dqr, dkr, dv, datt, s->qr, s->kr, s->v, lengths, m.B, T, H,
                                          KV, hd, c->sliding_window);
            ZERO(dq, (size_t)N * QD);
            ZERO(dk, (size_t)N * KD);
            uf_ref_rope_backward_f64(dq, dqr, inv_freq, N, T, H, hd);
            uf_ref_rope_backward_f64(dk, dkr, inv_freq, N, T, KV, hd);
            ZERO(dln, ND);
            linear_bwd(&m, l, UF_P_Q, dln, dq, s->ln1);
            linear_bwd(&m, l, UF_P_K, dln, dk, s->ln1);
            linear_bwd(&m, l, UF_P_V, dln, dv, s->ln1);
            dw = m.dP ? m.dP + poff(&m, l, UF_P_ATTN_NORM) : NULL;
            uf_ref_rmsnorm_backward_f64(dx, dw, dln, s->x_in, m.P + poff(&m, l, UF_P_ATTN_NORM), N, D,
                                        c->norm_eps, c->norm_plus_one);
#undef ZERO
        }
        if (m.dP) uf_ref_embedding_backward_f64(m.dP + m.off[0][UF_P_EMBED], dx, bt->tokens, N, D, escale);
        if (res->grad)
            for (int64_t i = 0; i < P; i++) res->grad[i] = (float)m.dP[i];
        if (res->lora_grad)
            for (int64_t i = 0; i < PL; i++) res->lora_grad[i] = (float)m.dLP[i];
        free(dlogits); free(dhid); free(dx); free(dx_mid); free(dln);
        free(dh); free(dg); free(du); free(datt); free(dqr); free(dq); free(dkr); free(dk); free(dv);
    }

    for (int l = 0; l < L; l++) {
        struct acts *s = &a[l];
        free(s->ln1); free(s->q); free(s->qr); free(s->k); free(s->kr); free(s->v); free(s->att);
        free(s->x_mid); free(s->ln2); free(s->g); free(s->u); free(s->h);
        if (l > 0) free(s->x_in); /* layer l's input is layer l-1's output */
    }
    free(x0);
    if (x_last != x0) free(x_last);
    free(a); free(hid); free(logits); free(lengths); free(inv_freq);
    free(m.P); free(m.dP); free(m.LP); free(m.dLP);
    return 0;
}
