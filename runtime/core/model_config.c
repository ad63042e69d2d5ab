/* model_config.c: family defaults and the canonical parameter layout (see model_config.h). */
#include "core/model_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *family_names[] = {"llama", "mistral", "gemma", "llama3"};

const char *uf_family_name(enum uf_family f) {
    return (unsigned)f < UF_ARRAY_LEN(family_names) ? family_names[f] : "?";
}

int uf_family_parse(const char *name, enum uf_family *out) {
    for (unsigned i = 0; i < UF_ARRAY_LEN(family_names); i++)
        if (strcmp(name, family_names[i]) == 0) {
            *out = (enum uf_family)i;
            return 0;
        }
    return uf_fail("unknown model family '%s' (valid: llama, mistral, gemma, llama3)", name);
}

void uf_model_config_defaults(struct uf_model_config *c, enum uf_family family, int vocab,
                              int d_model, int n_layers, int n_heads, int n_kv_heads, int d_ff,
                              int max_seq) {
    memset(c, 0, sizeof *c);
    c->family = family;
    c->vocab = vocab;
    c->d_model = d_model;
    c->n_layers = n_layers;
    c->n_heads = n_heads;
    c->n_kv_heads = n_kv_heads > 0 ? n_kv_heads : n_heads;
    c->head_dim = n_heads > 0 ? d_model / n_heads : 0;
    c->d_ff = d_ff;
    c->max_seq = max_seq;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->act = UF_ACT_SILU;
    switch (family) {
    case UF_FAMILY_LLAMA: break;
    case UF_FAMILY_MISTRAL: c->sliding_window = 4096; break;
    case UF_FAMILY_GEMMA:
        c->norm_eps = 1e-6f;
        c->act = UF_ACT_GELU_TANH;
        c->norm_plus_one = 1;
        c->embed_scale = 1;
        c->tied_embeddings = 1;
        break;
    case UF_FAMILY_LLAMA3:
        c->rope_theta = 500000.0f;
        c->rope_factor = 8.0f;
        c->rope_low_freq_factor = 1.0f;
        c->rope_high_freq_factor = 4.0f;
        c->rope_original_max_pos = 8192;
        break;
    }
}

int uf_model_config_validate(const struct uf_model_config *c) {
    if (c->vocab <= 0 || c->d_model <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->head_dim <= 0 || c->d_ff <= 0 || c->max_seq <= 0)
        return uf_fail("model config: vocab, d_model, layers, heads, head_dim, d_ff and max_seq "
                       "must all be positive");
    if (c->n_kv_heads <= 0 || c->n_heads % c->n_kv_heads != 0)
        return uf_fail("model config: n_kv_heads (%d) must divide n_heads (%d)", c->n_kv_heads,
                       c->n_heads);
    if (c->head_dim % 2 != 0)
        return uf_fail("model config: head_dim (%d) must be even for RoPE", c->head_dim);
    if (c->sliding_window < 0) return uf_fail("model config: sliding_window must be >= 0");
    /* sizes whose products (parameter offsets, activations) stay far inside int64 and whose
     * descriptor count fits an int */
    if (c->n_layers > 65536 || c->d_model > (1 << 20) || c->d_ff > (1 << 22) ||
        c->vocab > (1 << 26) || c->max_seq > (1 << 24) || c->n_heads > 65536 ||
        c->head_dim > 65536 || (int64_t)c->n_heads * c->head_dim > (1 << 22))
        return uf_fail("model config: sizes beyond what unforget supports (layers %d <= 65536, "
                       "d_model %d <= 2^20, d_ff %d <= 2^22, vocab %d <= 2^26, max_seq %d <= 2^24, "
                       "heads x head_dim %lld <= 2^22)", c->n_layers, c->d_model, c->d_ff, c->vocab,
                       c->max_seq, (long long)c->n_heads * c->head_dim);
    double D = c->d_model, QD = (double)c->n_heads * c->head_dim,
           KD = (double)c->n_kv_heads * c->head_dim;
    double P = (double)c->vocab * D * (c->tied_embeddings ? 1 : 2) +
               c->n_layers * (2 * D + 2 * D * QD + 2 * D * KD + 3 * D * c->d_ff) + D;
    if (P > 1e12)
        return uf_fail("model config: %.3g parameters (more than 10^12)", P);
    return 0;
}

static void add(struct uf_param_desc *out, int *n, int64_t *off, enum uf_param_kind kind,
                int layer, int64_t rows, int64_t cols, const char *fmt) {
    if (out) {
        struct uf_param_desc *d = &out[*n];
        memset(d, 0, sizeof *d);
        if (layer >= 0) snprintf(d->name, sizeof d->name, fmt, layer);
        else snprintf(d->name, sizeof d->name, "%s", fmt);
        d->kind = kind;
        d->layer = layer;
        d->rows = rows;
        d->cols = cols;
        d->offset = *off;
        d->numel = rows * cols;
    }
    *off += rows * cols;
    (*n)++;
}

int uf_model_param_descs(const struct uf_model_config *c, struct uf_param_desc *out) {
    int n = 0;
    int64_t off = 0, D = c->d_model, F = c->d_ff, V = c->vocab;
    int64_t QD = (int64_t)c->n_heads * c->head_dim, KD = (int64_t)c->n_kv_heads * c->head_dim;
    add(out, &n, &off, UF_P_EMBED, -1, V, D, "model.embed_tokens.weight");
    for (int l = 0; l < c->n_layers; l++) {
        add(out, &n, &off, UF_P_ATTN_NORM, l, 1, D, "model.layers.%d.input_layernorm.weight");
        add(out, &n, &off, UF_P_Q, l, QD, D, "model.layers.%d.self_attn.q_proj.weight");
        add(out, &n, &off, UF_P_K, l, KD, D, "model.layers.%d.self_attn.k_proj.weight");
        add(out, &n, &off, UF_P_V, l, KD, D, "model.layers.%d.self_attn.v_proj.weight");
        add(out, &n, &off, UF_P_O, l, D, QD, "model.layers.%d.self_attn.o_proj.weight");
        add(out, &n, &off, UF_P_MLP_NORM, l, 1, D,
            "model.layers.%d.post_attention_layernorm.weight");
        add(out, &n, &off, UF_P_GATE, l, F, D, "model.layers.%d.mlp.gate_proj.weight");
        add(out, &n, &off, UF_P_UP, l, F, D, "model.layers.%d.mlp.up_proj.weight");
        add(out, &n, &off, UF_P_DOWN, l, D, F, "model.layers.%d.mlp.down_proj.weight");
    }
    add(out, &n, &off, UF_P_FINAL_NORM, -1, 1, D, "model.norm.weight");
    if (!c->tied_embeddings) add(out, &n, &off, UF_P_LM_HEAD, -1, V, D, "lm_head.weight");
    return n;
}

int64_t uf_model_param_numel(const struct uf_model_config *c) {
    int n = uf_model_param_descs(c, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_model_param_descs(c, d);
    int64_t total = d[n - 1].offset + d[n - 1].numel;
    free(d);
    return total;
}

double uf_model_flops_per_token(const struct uf_model_config *c, int seq) {
    double D = c->d_model, F = c->d_ff, V = c->vocab;
    double QD = (double)c->n_heads * c->head_dim, KD = (double)c->n_kv_heads * c->head_dim;
    double per_layer = D * QD + 2 * D * KD + QD * D + 3 * D * F;
    double N = c->n_layers * per_layer + V * D; /* matmul params incl. the lm head */
    return 6.0 * N + 6.0 * c->n_layers * QD * seq;
}

int uf_lora_targets_parse(const char *spec, unsigned *mask) {
    static const struct { const char *name; enum uf_param_kind kind; } names[] = {
        {"q", UF_P_Q}, {"k", UF_P_K}, {"v", UF_P_V}, {"o", UF_P_O},
        {"gate", UF_P_GATE}, {"up", UF_P_UP}, {"down", UF_P_DOWN}};
    *mask = 0;
    if (strcmp(spec, "all") == 0) {
        *mask = UF_LORA_ALL;
        return 0;
    }
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",");
        unsigned i;
        for (i = 0; i < UF_ARRAY_LEN(names); i++)
            if (strlen(names[i].name) == len && strncmp(p, names[i].name, len) == 0) break;
        if (i == UF_ARRAY_LEN(names))
            return uf_fail("unknown LoRA target '%.*s' (valid: all, or a comma list of q, k, v, o, "
                           "gate, up, down)", (int)len, p);
        *mask |= UF_LORA_TARGET(names[i].kind);
        p += len;
        if (*p == ',') p++;
    }
    return *mask ? 0 : uf_fail("empty LoRA target list");
}
