/* test_bigshape.c: the engine at Llama-2-7B widths (d_model 4096, 32 heads, d_ff 11008) with a
 * bf16 frozen base, LoRA r 8 on every linear and activation checkpointing.
 *
 * Default (ctest): ONE layer, vocab 512, B = 1, T = 16. The bf16-base model against the f32
 * model on the same weights rounded to bf16, both on the own GEMM backend: logits, loss and
 * every LoRA gradient must be bit-identical (the kernels read the same numbers; at these widths
 * the packed GEMM runs in column chunks and k reaches 11008). Then one AdamW step changes the
 * LoRA weights and a 4-token greedy generation runs from the bf16 model.
 *
 * Acceptance mode (UF_BIG_LAYERS=n, optional UF_BIG_VOCAB (32000), UF_BIG_T (64),
 * UF_BIG_NEW (16)): only the bf16 model with n layers: one LoRA training step of one row of T
 * tokens (forward, backward with checkpointing, AdamW) and a UF_BIG_NEW-token greedy generation,
 * printing the times and the device bytes (peak). Measure the process's peak RSS with
 * /usr/bin/time -v. A bf16 base is one buffer per tensor, so the full 32 layers run within
 * PoCL's per-allocation cap (CL_DEVICE_MAX_MEM_ALLOC_SIZE, 2-4 GiB here). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"
#include "model/generate.h"
#include "model/model.h"
#include "model/optim.h"
#include "formats/safetensors.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

static int env_int(const char *name, int def) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

static void make_cfg(struct uf_model_config *c, int layers, int vocab, int max_seq) {
    uf_model_config_defaults(c, UF_FAMILY_LLAMA, vocab, 4096, layers, 32, 32, 11008, max_seq);
}

static void lora_on(struct uf_model *m) {
    struct uf_lora_config lc = {8, 16.0f, 0.0f, UF_LORA_ALL};
    CHECK(uf_model_lora_init(m, &lc, 3) == 0);
    float *lp = uf_malloc((size_t)m->lora_numel * sizeof *lp);
    struct uf_rng r;
    uf_rng_init(&r, 5);
    for (int64_t i = 0; i < m->lora_numel; i++) lp[i] = (float)(0.01 * uf_rng_normal(&r));
    uf_model_lora_load(m, lp); /* B != 0: every path matters */
    free(lp);
    m->checkpointing = 1;
}

static void batch_of(int V, int T, int32_t *tok, int32_t *tgt) {
    for (int t = 0; t < T; t++) tok[t] = (int32_t)((t * 131 + 7) % V), tgt[t] = (int32_t)((t * 71 + 3) % V);
}

static void test_vs_f32(void) {
    enum { T = 16 };
    int V = 512;
    struct uf_model_config c;
    make_cfg(&c, 1, V, 64);
    struct uf_model m16, m32;
    double t0 = uf_time_now();
    CHECK(uf_model_init(&m16, &dev, &c, 11, UF_MODEL_BF16_BASE) == 0);
    CHECK(uf_model_init(&m32, &dev, &c, 12, 0) == 0);
    size_t P = (size_t)m16.numel;
    float *p = uf_malloc(P * sizeof *p);
    uf_model_save_params(&m16, p); /* the bf16 values, widened */
    uf_model_load_params(&m32, p);
    free(p);
    lora_on(&m16);
    lora_on(&m32);
    fprintf(stderr, "  %.0fM params, models ready in %.1f s\n", (double)P / 1e6, uf_time_now() - t0);

    int32_t tok[T], tgt[T];
    batch_of(V, T, tok, tgt);
    struct uf_model_batch bt = {1, T, tok, tgt, NULL, NULL, 0};
    uf_gemm_set_backend(&dev, UF_GEMM_OWN);
    size_t NL = (size_t)m16.lora_numel, NV = (size_t)T * V;
    float *g16 = uf_malloc(NL * 4), *g32 = uf_malloc(NL * 4), *l16 = uf_malloc(NV * 4), *l32 = uf_malloc(NV * 4);
    struct uf_model *ms[2] = {&m16, &m32};
    float *gs[2] = {g16, g32}, *ls[2] = {l16, l32}, loss[2];
    for (int i = 0; i < 2; i++) {
        double t = uf_time_now();
        uf_model_zero_grad(ms[i]);
        CHECK(uf_model_forward(ms[i], &bt) == 0);
        CHECK(uf_model_backward(ms[i]) == 0);
        loss[i] = uf_model_read_loss(ms[i]);
        uf_tensor_download(&ms[i]->logits, ls[i]);
        uf_model_lora_save_grads(ms[i], gs[i]);
        fprintf(stderr, "  %s: forward + backward %.2f s, loss %.6f\n", i ? "f32 " : "bf16",
                uf_time_now() - t, (double)loss[i]);
    }
    uf_gemm_set_backend(&dev, UF_GEMM_AUTO);
    double gmax = 0;
    for (size_t i = 0; i < NL; i++) gmax = fmax(gmax, fabs((double)g16[i]));
    CHECK(isfinite(loss[0]) && gmax > 0 && isfinite(gmax));
    CHECK_MSG(memcmp(l16, l32, NV * 4) == 0, "logits of the bf16 base differ from f32 on rounded weights");
    CHECK_MSG(memcmp(g16, g32, NL * 4) == 0, "LoRA gradients of the bf16 base differ from f32");
    uf_model_free(&m32);

    /* one AdamW step moves the LoRA weights; then greedy generation from the bf16 model */
    struct uf_optim o;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    CHECK(uf_optim_init(&o, &m16, &oc) == 0);
    float *before = uf_malloc(NL * 4), *after = uf_malloc(NL * 4);
    uf_model_lora_save(&m16, before);
    uf_optim_step(&o, 1.0f);
    uf_model_lora_save(&m16, after);
    CHECK(memcmp(before, after, NL * 4) != 0);
    uf_optim_free(&o);
    m16.training = 0;
    struct uf_gen g;
    CHECK(uf_gen_init_model(&g, &m16, 1, T + 4, 32) == 0);
    struct uf_gen_opts go;
    memset(&go, 0, sizeof go);
    go.max_new_tokens = 4, go.top_p = 1.0f;
    struct uf_gen_out out;
    const int32_t *pr = tok;
    int len = T;
    CHECK(uf_generate(&g, 1, &pr, &len, &go, &out) == 0);
    CHECK_EQ_INT(out.n, 4);
    uf_gen_out_free(&out, 1);
    uf_gen_free(&g);
    uf_model_free(&m16);
    free(g16), free(g32), free(l16), free(l32), free(before), free(after);
}

static void acceptance(int layers) {
    int V = env_int("UF_BIG_VOCAB", 32000), T = env_int("UF_BIG_T", 64), NEW = env_int("UF_BIG_NEW", 16);
    struct uf_model_config c;
    make_cfg(&c, layers, V, T + NEW);
    struct uf_model m;
    double t0 = uf_time_now();
    CHECK(uf_model_init(&m, &dev, &c, 1, UF_MODEL_BF16_BASE) == 0);
    lora_on(&m);
    double t_init = uf_time_now() - t0;
    int32_t *tok = uf_malloc((size_t)T * 4), *tgt = uf_malloc((size_t)T * 4);
    batch_of(V, T, tok, tgt);
    struct uf_model_batch bt = {1, T, tok, tgt, NULL, NULL, 0};
    struct uf_optim o;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    CHECK(uf_optim_init(&o, &m, &oc) == 0);
    double t1 = uf_time_now();
    uf_model_zero_grad(&m);
    CHECK(uf_model_forward(&m, &bt) == 0);
    CHECK(uf_model_backward(&m) == 0);
    uf_optim_step(&o, 1.0f);
    float loss = uf_model_read_loss(&m);
    double t_step = uf_time_now() - t1;
    CHECK(isfinite(loss));
    uf_optim_free(&o);
    uf_model_release_activations(&m);
    m.training = 0;
    double t2 = uf_time_now();
    struct uf_gen g;
    CHECK(uf_gen_init_model(&g, &m, 1, T + NEW, 64) == 0);
    struct uf_gen_opts go;
    memset(&go, 0, sizeof go);
    go.max_new_tokens = NEW, go.top_p = 1.0f;
    struct uf_gen_out out;
    const int32_t *pr = tok;
    CHECK(uf_generate(&g, 1, &pr, &T, &go, &out) == 0);
    double t_gen = uf_time_now() - t2;
    CHECK_EQ_INT(out.n, NEW);
    fprintf(stderr, "  acceptance: L=%d V=%d: %.2fM params (bf16 base + f32 norms + LoRA %.2f GiB), LoRA %.2fM; init %.1f s; "
            "train step (1 x %d tokens, checkpointing) %.2f s, loss %.4f; generation %d tokens "
            "(prefill %d) %.2f s; device peak %.2f GiB\n", layers, V, (double)m.numel / 1e6,
            (double)m.bytes_params / (1u << 30), (double)m.lora_numel / 1e6, t_init, T,
            t_step, (double)loss, NEW, T, t_gen, (double)dev.bytes_peak / (1u << 30));
    uf_gen_out_free(&out, 1);
    uf_gen_free(&g);
    uf_model_free(&m);
    free(tok), free(tgt);
}

static void test_acceptance(void) { acceptance(env_int("UF_BIG_LAYERS", 0)); }

int main(void) {
    uf_device_init(&dev, NULL);
    if (env_int("UF_BIG_LAYERS", 0) > 0) UF_RUN(test_acceptance);
    else UF_RUN(test_vs_f32);
    uf_device_free(&dev);
    return uf_test_summary();
}
