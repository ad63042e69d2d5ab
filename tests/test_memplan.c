/* test_memplan.c: the memory plan (memplan.h) against what the engine really allocates, on tiny
 * configs of llama / gemma: weights (f32 and bf16 base), LoRA, gradients, AdamW state,
 * activations with and without checkpointing after a forward + backward of micro_batch x
 * max_len rows (model.h bytes_* accounting), and the generation KV cache + work buffers
 * (device bytes_live around uf_gen_init). Every count must be exact. Also: the plan refuses a
 * device that is too small and names the knobs, and a buffer over the per-allocation limit; a
 * bf16 plan without LoRA is refused. */
#include <string.h>

#include "model/generate.h"
#include "model/memplan.h"
#include "model/model.h"
#include "model/optim.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

static void one(enum uf_family fam, int lora, int bf16, int ckpt, float dropout) {
    struct uf_model_config c;
    uf_model_config_defaults(&c, fam, 45, 24, 3, 4, 2, 40, 32);
    struct uf_memplan_in in;
    memset(&in, 0, sizeof in);
    in.cfg = c;
    in.lora_rank = lora ? 3 : 0;
    in.lora_targets = UF_LORA_TARGET(UF_P_Q) | UF_LORA_TARGET(UF_P_V) | UF_LORA_TARGET(UF_P_DOWN);
    in.lora_dropout = dropout;
    in.micro_batch = 3;
    in.max_len = 9;
    in.bf16_base = bf16;
    in.checkpointing = ckpt;
    struct uf_memplan p;
    CHECK(uf_memplan_compute(&in, &p) == 0);

    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 1, bf16 ? UF_MODEL_BF16_BASE : 0) == 0);
    if (lora) {
        struct uf_lora_config lc = {3, 6.0f, dropout, in.lora_targets};
        CHECK(uf_model_lora_init(&m, &lc, 2) == 0);
    }
    m.checkpointing = ckpt;
    int32_t tok[27], tgt[27];
    for (int i = 0; i < 27; i++) tok[i] = i % 45, tgt[i] = (i * 7) % 45;
    struct uf_model_batch bt = {3, 9, tok, tgt, NULL, NULL, 0};
    CHECK(uf_model_forward(&m, &bt) == 0);
    CHECK(uf_model_backward(&m) == 0);
    struct uf_optim o;
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    CHECK(uf_optim_init(&o, &m, &oc) == 0);
    const char *what = uf_family_name(fam);
    CHECK_MSG(m.bytes_params == p.weights_f32 + p.weights_bf16 + p.lora,
              "%s lora=%d bf16=%d: params %zu, plan %zu", what, lora, bf16, m.bytes_params,
              p.weights_f32 + p.weights_bf16 + p.lora);
    CHECK_MSG(m.bytes_grads == p.grads, "%s: grads %zu, plan %zu", what, m.bytes_grads, p.grads);
    CHECK_MSG((size_t)o.numel * 8 == p.optim, "%s: AdamW %zu, plan %zu", what, (size_t)o.numel * 8, p.optim);
    CHECK_MSG(m.bytes_acts == p.act, "%s lora=%d ckpt=%d dropout=%g: activations %zu, plan %zu",
              what, lora, ckpt, (double)dropout, m.bytes_acts, p.act);
    uf_optim_free(&o);

    /* generation: KV cache for 2 sequences of 20 positions + the work buffers of 16 rows */
    if (!bf16) {
        size_t before = dev.bytes_live;
        struct uf_gen g;
        CHECK(uf_gen_init(&g, &dev, &c, &m.params, 2, 20, 16) == 0);
        size_t got = dev.bytes_live - before;
        size_t want = 2 * (size_t)c.n_layers * 2 * c.n_kv_heads * 20 * c.head_dim * 4 +
                      uf_memplan_gen_work(&c, 16) + (size_t)(c.head_dim / 2) * 4;
        CHECK_MSG(got == want, "%s: generation allocates %zu, plan %zu", what, got, want);
        uf_gen_free(&g);
    }
    uf_model_free(&m);
}

static void test_engine_counts(void) {
    one(UF_FAMILY_LLAMA, 0, 0, 0, 0.0f);
    one(UF_FAMILY_LLAMA, 0, 0, 1, 0.0f);
    one(UF_FAMILY_LLAMA, 1, 0, 0, 0.1f);
    one(UF_FAMILY_LLAMA, 1, 1, 1, 0.0f);
    one(UF_FAMILY_GEMMA, 1, 1, 0, 0.1f);
    one(UF_FAMILY_GEMMA, 0, 0, 1, 0.0f);
}

static void test_fits(void) {
    struct uf_memplan_in in;
    memset(&in, 0, sizeof in);
    uf_model_config_defaults(&in.cfg, UF_FAMILY_LLAMA, 32000, 4096, 32, 32, 32, 11008, 4096);
    in.micro_batch = 4, in.max_len = 512, in.lora_rank = 8, in.lora_targets = UF_LORA_ALL;
    struct uf_memplan p;
    CHECK(uf_memplan_compute(&in, &p) == 0);
    size_t gib = (size_t)1 << 30;
    CHECK(uf_memplan_fits(&in, &p, 24 * gib, "card") != 0); /* f32 base, no checkpointing */
    CHECK(strstr(uf_error(), "checkpointing = true") != NULL);
    CHECK(strstr(uf_error(), "bf16 = true") != NULL);
    in.bf16_base = 1, in.checkpointing = 1;
    CHECK(uf_memplan_compute(&in, &p) == 0);
    CHECK(uf_memplan_fits(&in, &p, 24 * gib, "card") == 0);
    CHECK(p.total < 22 * gib);
    CHECK(p.weights_bf16 == 2 * (size_t)uf_model_param_numel(&in.cfg));
    /* one allocation is capped (CL_DEVICE_MAX_MEM_ALLOC_SIZE): a bf16 base is one buffer per
     * tensor, so no buffer holds more than the largest tensor (250 MiB, the 32000 x 4096
     * embedding) or the largest activation; PoCL's 2 GiB cap here fits */
    CHECK(p.biggest < 2 * gib);
    CHECK(p.biggest >= (size_t)32000 * 4096 * 2);
    in.device_max_alloc = 2 * gib;
    CHECK_MSG(uf_memplan_fits(&in, &p, 24 * gib, "card") == 0, "%s", uf_error());
    in.device_max_alloc = p.biggest - 1;
    CHECK(uf_memplan_fits(&in, &p, 24 * gib, "card") != 0);
    CHECK(strstr(uf_error(), "MAX_MEM_ALLOC") != NULL);
    CHECK(strstr(uf_error(), p.biggest_name) != NULL);
    in.device_max_alloc = 0;
    /* an f32 base is one flat vector: 25 GiB in one buffer */
    in.bf16_base = 0;
    CHECK(uf_memplan_compute(&in, &p) == 0);
    CHECK(strncmp(p.biggest_name, "params", 6) == 0 && p.biggest == p.weights_f32);
    CHECK(p.weights_f32 == 4 * (size_t)uf_model_param_numel(&in.cfg));
    in.bf16_base = 1;
    in.lora_rank = 0;
    CHECK(uf_memplan_compute(&in, &p) != 0); /* bf16 needs LoRA */
}

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_engine_counts);
    UF_RUN(test_fits);
    uf_device_free(&dev);
    return uf_test_summary();
}
