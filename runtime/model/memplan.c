/* memplan.c: the device-memory plan (see memplan.h). Every count mirrors an allocation of the
 * engine; keep them in step when model.c / generate.c / optim.c change their buffers. */
#include "model/memplan.h"

#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "formats/hf_config.h"
#include "model/model.h"
#include "core/util.h"

#define GEN_ROWS 1024                 /* evaluate.c's rows per generation call */
#define GEMM_PACK_BYTES (64u << 20)   /* gemm.c SCRATCH_DEFAULT */
#define SMALL_SCRATCH (16u << 20)     /* uf_device_scratch users (embedding links, reductions) */

size_t uf_memplan_gen_work(const struct uf_model_config *c, int rows) {
    size_t R = (size_t)rows, D = (size_t)c->d_model, F = (size_t)c->d_ff, V = (size_t)c->vocab;
    size_t QD = (size_t)c->n_heads * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim;
    return R * 4 * (4 + 3 * D + 2 * QD + 2 * KD + 2 * F + 1 + V); /* generate.c uf_gen_init */
}

static size_t kv_per_seq(const struct uf_model_config *c, int len) {
    return 2 * (size_t)c->n_layers * c->n_kv_heads * (size_t)len * c->head_dim * 4;
}

int uf_memplan_eval_batch(const struct uf_model_config *c, int len, size_t bytes, int max_batch) {
    size_t per = kv_per_seq(c, len > 0 ? len : 1);
    size_t b = per ? bytes / per : (size_t)max_batch;
    return (int)UF_MAX((size_t)1, UF_MIN(b, (size_t)max_batch));
}

int uf_memplan_compute(const struct uf_memplan_in *in, struct uf_memplan *p) {
    memset(p, 0, sizeof *p);
    const struct uf_model_config *c = &in->cfg;
    if (uf_model_config_validate(c)) return uf_fail_prefix("memory plan");
    if (in->micro_batch <= 0 || in->max_len <= 0)
        return uf_fail("memory plan: micro_batch (%d) and max_len (%d) must be positive",
                       in->micro_batch, in->max_len);
    if (in->bf16_base && in->lora_rank <= 0)
        return uf_fail("memory plan: bf16 base weights are frozen: they need LoRA (uf.lora)");
    size_t D = (size_t)c->d_model, F = (size_t)c->d_ff, V = (size_t)c->vocab, H = (size_t)c->n_heads;
    size_t QD = H * c->head_dim, KD = (size_t)c->n_kv_heads * c->head_dim, L = (size_t)c->n_layers;
    size_t P = (size_t)uf_model_param_numel(c);

    /* weights (model.c uf_model_init) */
    if (in->bf16_base) {
        size_t n_norm = (2 * L + 1) * D;
        p->weights_bf16 = P * 2;
        p->weights_f32 = n_norm * 4; /* the f32 side copy of the norm weights */
    } else {
        p->weights_f32 = P * 4;
    }
    /* LoRA, gradients, AdamW (lora.c, optim.c) */
    size_t r = in->lora_rank > 0 ? (size_t)in->lora_rank : 0, lpl = 0;
    if (r) {
        size_t nl = (size_t)uf_lora_numel(c, in->lora_rank, in->lora_targets);
        p->lora = nl * 4;
        p->grads = nl * 4;
        p->optim = 2 * nl * 4;
        for (int k = UF_P_Q; k <= UF_P_DOWN; k++)
            if (in->lora_targets & UF_LORA_TARGET(k)) lpl++;
    } else {
        p->grads = P * 4;
        p->optim = 2 * P * 4;
    }
    /* activations (model.c acts_reserve), N rows */
    size_t N = (size_t)in->micro_batch * (size_t)in->max_len;
    size_t layer_other = 3 * D + 2 + 2 * QD + 2 * KD + H + 3 * F + lpl * r; /* per row, per layer */
    size_t fixed = D + 1 + V + 1 + 4 + QD + KD;         /* hidden rstdf logits loss_rows inputs qpre kpre */
    if (r && in->lora_dropout > 0) fixed += UF_MAX(UF_MAX(D, F), QD);   /* dropbuf */
    fixed += 3 * D + 2 * QD + 2 * KD + 3 * F + V + r;  /* backward scratch incl. dlogits, dlora */
    p->act_layer = N * 4 * (D + layer_other);
    p->act_layer_ckpt = N * 4 * D;
    p->act_full = N * 4 * ((L + 1) * D + L * layer_other + fixed);
    p->act_ckpt = N * 4 * ((L + 1) * D + layer_other + fixed);
    p->act = in->checkpointing ? p->act_ckpt : p->act_full;
    /* workspace: GEMM packing, small scratch, the LoRA merge scratch of a bf16 base */
    p->workspace = GEMM_PACK_BYTES + SMALL_SCRATCH;
    if (in->bf16_base) /* merge scratch (one f32 module), widening buffer (CLBlast route) */
        p->workspace += UF_MAX(QD * D, UF_MAX(F * D, KD * D)) * 4 + GEMM_PACK_BYTES;

    /* method state: the teacher is a frozen model of the same storage (train.c
     * uf_trainer_teacher; under LoRA it also holds adapters, merged into its base), the anchor
     * one trainable vector */
    size_t trainable = r ? p->lora : P * 4;
    if (in->method_teacher) /* + its RoPE table and loss scalar (model.c uf_model_init) */
        p->teacher = p->weights_f32 + p->weights_bf16 + p->lora + ((size_t)c->head_dim / 2 + 1) * 4;
    if (in->method_anchor) p->anchor = trainable;
    p->method_state = p->teacher + p->anchor;
    for (int i = 0; i < in->n_method_state; i++) p->method_state += in->method_state[i].bytes;

    size_t weights = p->weights_f32 + p->weights_bf16;
    p->train_total = weights + p->lora + p->grads + p->optim + p->act + p->workspace + p->method_state;
    /* evaluation: generation with a KV cache (evaluate.c: batch up to 32, 1024 rows per call) */
    p->eval_len = in->eval_len > 0 ? in->eval_len : in->max_len;
    p->gen_work = uf_memplan_gen_work(c, GEN_ROWS);
    int bmax = in->eval_batch_max > 0 ? in->eval_batch_max : 32;
    size_t base = weights + p->lora + p->gen_work + p->workspace;
    /* the eval batch: the largest (<= bmax) whose cache keeps the evaluation peak within the
     * training peak (evaluation then never raises the peak), at least 1 */
    size_t budget = UF_MAX(p->train_total, base + kv_per_seq(c, p->eval_len));
    p->eval_batch = uf_memplan_eval_batch(c, p->eval_len, budget - base, bmax);
    p->kv_cache = (size_t)p->eval_batch * kv_per_seq(c, p->eval_len);
    p->eval_total = base + p->kv_cache;
    p->total = UF_MAX(p->train_total, p->eval_total);

    /* the largest single buffer (OpenCL caps one allocation at CL_DEVICE_MAX_MEM_ALLOC_SIZE) */
    size_t Ls = in->checkpointing ? 1 : L, big_param = 0; /* bf16 base: one buffer per tensor */
    if (in->bf16_base) {
        int np = uf_model_param_descs(c, NULL);
        struct uf_param_desc *pd = uf_calloc((size_t)np, sizeof *pd);
        uf_model_param_descs(c, pd);
        for (int i = 0; i < np; i++) big_param = UF_MAX(big_param, (size_t)pd[i].numel * 2);
        free(pd);
    }
    struct { const char *name; size_t bytes; } buf[] = {
        {in->bf16_base ? "params (the largest bf16 weight tensor)"
                       : "params (the flat f32 parameter vector)",
         in->bf16_base ? big_param : p->weights_f32},
        {"grads", p->grads},
        {"AdamW m / v", p->optim / 2},
        {"activations resid", (L + 1) * N * D * 4},
        {"activations gate / up / act", Ls * N * F * 4},
        {"activations q / att", Ls * N * QD * 4},
        {"logits / dlogits", N * V * 4},
        {"KV cache k / v", p->kv_cache / 2},
        {"generation logits", (size_t)GEN_ROWS * V * 4},
    };
    for (size_t i = 0; i < UF_ARRAY_LEN(buf); i++)
        if (buf[i].bytes > p->biggest) p->biggest = buf[i].bytes, p->biggest_name = buf[i].name;
    return 0;
}

static void line(FILE *out, const char *indent, const char *what, size_t bytes, const char *note) {
    fprintf(out, "%s%-28s %10.3f GiB %12.1f MiB%s%s\n", indent, what, (double)bytes / (1u << 30),
            (double)bytes / (1u << 20), note && *note ? "  " : "", note ? note : "");
}

void uf_memplan_print(const struct uf_memplan_in *in, const struct uf_memplan *p, FILE *out,
                      const char *indent) {
    char note[160];
    fprintf(out, "%smemory plan (micro_batch %d x max_len %d, %s, %s):\n", indent, in->micro_batch,
            in->max_len, in->lora_rank > 0 ? "LoRA" : "full fine-tuning",
            in->checkpointing ? "activation checkpointing" : "no checkpointing");
    if (p->weights_bf16) line(out, indent, "  weights bf16", p->weights_bf16, "frozen base");
    line(out, indent, "  weights f32", p->weights_f32, p->weights_bf16 ? "norm weights" : "");
    if (in->lora_rank > 0) {
        snprintf(note, sizeof note, "r %d", in->lora_rank);
        line(out, indent, "  lora params f32", p->lora, note);
    }
    line(out, indent, "  gradients f32", p->grads, "");
    line(out, indent, "  optimizer (AdamW m, v)", p->optim, "");
    line(out, indent, "  activations / layer", p->act_layer, "without checkpointing");
    line(out, indent, "  activations / layer ckpt", p->act_layer_ckpt, "with checkpointing");
    line(out, indent, "  activations, no ckpt", p->act_full, in->checkpointing ? "" : "(chosen)");
    line(out, indent, "  activations, ckpt", p->act_ckpt, in->checkpointing ? "(chosen)" : "");
    line(out, indent, "  workspace", p->workspace, "GEMM packing, scratch");
    if (p->teacher) line(out, indent, "  method: frozen teacher", p->teacher, "a copy of the start model");
    if (p->anchor) line(out, indent, "  method: anchor theta*", p->anchor, "a copy of the start trainable weights");
    for (int i = 0; i < in->n_method_state; i++) {
        char name[80];
        snprintf(name, sizeof name, "  method: %s", in->method_state[i].name);
        line(out, indent, name, in->method_state[i].bytes, "");
    }
    snprintf(note, sizeof note, "eval batch %d x %d positions", p->eval_batch, p->eval_len);
    line(out, indent, "  KV cache (eval)", p->kv_cache, note);
    line(out, indent, "  generation buffers (eval)", p->gen_work, "");
    line(out, indent, "  training peak", p->train_total, "");
    line(out, indent, "  evaluation peak", p->eval_total, "");
    line(out, indent, "  total (peak)", p->total, "");
    line(out, indent, "  largest buffer", p->biggest, p->biggest_name);
}

int uf_memplan_fits(const struct uf_memplan_in *in, const struct uf_memplan *p,
                    size_t device_bytes, const char *device_name) {
    double cap = (double)device_bytes * (1.0 - UF_MEMPLAN_RESERVE);
    double gib0 = 1u << 30;
    if (in->device_max_alloc && p->biggest > in->device_max_alloc) {
        int is_params = strncmp(p->biggest_name, "params", 6) == 0;
        return uf_fail("memory plan: the largest buffer, %s, needs %.2f GiB; %s allows %.2f GiB in "
                       "one buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE)%s", p->biggest_name,
                       (double)p->biggest / gib0, device_name, (double)in->device_max_alloc / gib0,
                       is_params ? (in->bf16_base || in->lora_rank <= 0
                                        ? "; the parameter vector is one buffer: use a smaller model "
                                          "or a device with a larger allocation limit"
                                        : "; knobs: set bf16 = true in uf.adamw (halves it)")
                                 : "; knobs: set checkpointing = true, lower micro_batch or max_len");
    }
    if ((double)p->total <= cap) return 0;
    /* every knob that helps, with what it saves (the first one listed saves the most) */
    struct { const char *what; double saves; } k[5];
    int n = 0;
    double gib = 1u << 30;
    if (!in->bf16_base && in->lora_rank > 0)
        k[n].what = "set bf16 = true in uf.adamw", k[n++].saves = (double)p->weights_f32 / 2;
    if (in->lora_rank <= 0)
        k[n].what = "train LoRA adapters (uf.lora)", k[n++].saves = (double)(p->grads + p->optim);
    if (!in->checkpointing)
        k[n].what = "set checkpointing = true in uf.adamw", k[n++].saves = (double)(p->act_full - p->act_ckpt);
    if (in->micro_batch > 1)
        k[n].what = "lower micro_batch in uf.adamw (halved)", k[n++].saves = (double)p->act / 2;
    k[n].what = "lower max_len in uf.adamw (halved)", k[n++].saves = (double)p->act / 2;
    for (int i = 1; i < n; i++) /* insertion sort, largest saving first */
        for (int j = i; j > 0 && k[j].saves > k[j - 1].saves; j--) {
            const char *w = k[j].what;
            double sv = k[j].saves;
            k[j] = k[j - 1];
            k[j - 1].what = w, k[j - 1].saves = sv;
        }
    char knob[512];
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof knob; i++)
        len += (size_t)snprintf(knob + len, sizeof knob - len, "%s%s (saves ~%.2f GiB)",
                                i ? "; " : "", k[i].what, k[i].saves / gib);
    if (p->eval_total > p->train_total && len < sizeof knob)
        snprintf(knob + len, sizeof knob - len, "; evaluation (KV cache) is the peak: lower max_len");
    return uf_fail("memory plan: needs %.2f GiB, %s has %.2f GiB (%.2f GiB usable after the %.0f%% "
                   "reserve); knobs: %s", (double)p->total / (1u << 30), device_name,
                   (double)device_bytes / (1u << 30), cap / (1u << 30),
                   UF_MEMPLAN_RESERVE * 100, knob);
}

int uf_memplan_eval_batch_now(const struct uf_device *d, const struct uf_model_config *c, int len,
                              int max_batch) {
    size_t work = uf_memplan_gen_work(c, GEN_ROWS);
    size_t usable = (size_t)((double)d->global_mem * (1.0 - UF_MEMPLAN_RESERVE));
    size_t budget = UF_MIN(UF_MAX(d->bytes_peak, d->bytes_live + work + kv_per_seq(c, len)), usable);
    size_t left = budget > d->bytes_live + work ? budget - d->bytes_live - work : 0;
    return uf_memplan_eval_batch(c, len, left, max_batch);
}

/* ---- from a recipe node ---------------------------------------------------------------------- */
int uf_memplan_config_new(const struct uf_plan_model *m, int vocab, struct uf_model_config *c) {
    enum uf_family fam;
    if (uf_family_parse(m->family, &fam)) return -1;
    int D = m->d_model, ff = m->d_ff;
    if (ff <= 0) { /* about 8/3 d_model rounded up to 32, in 64 bits (8 * d_model overflows int) */
        int64_t f = ((int64_t)8 * D / 3 + 31) / 32 * 32;
        ff = f > 0 && f <= 2147483647 ? (int)f : -1;
    }
    if (m->vocab > 0) vocab = m->vocab;
    uf_model_config_defaults(c, fam, vocab, D, m->layers, m->heads, m->kv_heads, ff, m->max_seq);
    if (m->head_dim > 0) c->head_dim = m->head_dim;
    if (c->family == UF_FAMILY_MISTRAL && c->sliding_window > c->max_seq) c->sliding_window = 0;
    return uf_model_config_validate(c);
}

int uf_memplan_config_from_spec(const struct uf_plan_model *m, int vocab, struct uf_model_config *c) {
    if (m->type == UF_PLAN_MODEL_NEW) return uf_memplan_config_new(m, vocab, c);
    char *cfg = m->type == UF_PLAN_MODEL_CHECKPOINT ? uf_sprintf("%s/model/config.json", m->path)
                                                     : uf_sprintf("%s/config.json", m->path);
    int rc = uf_hf_config_load(cfg, c, NULL);
    free(cfg);
    return rc;
}

int uf_memplan_from_node(const struct uf_plan_node *node, const struct uf_model_config *cfg,
                         size_t device_bytes, struct uf_memplan_in *in) {
    memset(in, 0, sizeof *in);
    in->cfg = *cfg;
    if (node->lora) {
        in->lora_rank = node->lora->r;
        in->lora_dropout = node->lora->dropout;
        if (uf_lora_targets_parse(node->lora->targets, &in->lora_targets)) return -1;
    }
    const struct uf_plan_optim *o = &node->optim;
    in->micro_batch = o->micro_batch > 0 ? o->micro_batch : o->batch;
    in->max_len = o->max_len;
    in->bf16_base = o->bf16;
    in->checkpointing = o->checkpointing;
    int max_new = 0;
    for (int i = 0; i < node->n_evals; i++) max_new = UF_MAX(max_new, node->evals[i].max_new_tokens);
    in->eval_len = in->max_len + max_new;
    in->device_bytes = device_bytes;
    return 0;
}
