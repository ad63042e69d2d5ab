/* test_checkpointing.c: activation checkpointing (model.h m->checkpointing): the same model,
 * batch and seed with and without it give bit-identical logits, loss and gradients (memcmp), for
 * llama, mistral (sliding window) and gemma, under full fine-tuning and under LoRA with dropout
 * (the recomputed forward must reuse the forward's dropout masks), with a bf16 base too; two
 * micro-batches accumulated; and it keeps fewer activation bytes (L = 4 layers). */
#include <string.h>

#include "model/model.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

enum { V = 37, D = 16, L = 4, H = 4, KV = 2, F = 24, B = 2, T = 7 };
static const int32_t lengths[B] = {7, 4};

static void make_cfg(struct uf_model_config *c, enum uf_family fam) {
    uf_model_config_defaults(c, fam, V, D, L, H, KV, F, 16);
    if (fam == UF_FAMILY_MISTRAL) c->sliding_window = 3;
    if (fam == UF_FAMILY_GEMMA) c->n_kv_heads = 1, c->head_dim = 6;
}

/* logits of the last forward and the trainable gradients after two accumulated micro-batches */
static size_t run(enum uf_family fam, int lora, int bf16, int ckpt, float **logits, float **grads,
                  size_t *acts) {
    struct uf_model_config c;
    make_cfg(&c, fam);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 3, bf16 ? UF_MODEL_BF16_BASE : 0) == 0);
    if (lora) {
        struct uf_lora_config lc = {2, 4.0f, 0.25f, UF_LORA_ALL};
        CHECK(uf_model_lora_init(&m, &lc, 9) == 0);
        float *lp = uf_malloc((size_t)m.lora_numel * sizeof *lp);
        struct uf_rng r;
        uf_rng_init(&r, 4);
        for (int64_t i = 0; i < m.lora_numel; i++) lp[i] = (float)(0.3 * uf_rng_normal(&r));
        uf_model_lora_load(&m, lp);
        free(lp);
    }
    m.checkpointing = ckpt;
    struct uf_rng r;
    uf_rng_init(&r, 17);
    uf_model_zero_grad(&m);
    for (int mb = 0; mb < 2; mb++) {
        int32_t tok[B * T], tgt[B * T];
        float mask[B * T];
        for (int i = 0; i < B * T; i++) {
            tok[i] = (int32_t)(uf_rng_u64(&r) % V);
            tgt[i] = (int32_t)(uf_rng_u64(&r) % V);
            mask[i] = (i % T) < lengths[i / T] ? 1.0f : 0.0f;
        }
        struct uf_model_batch bt = {B, T, tok, tgt, mask, lengths, 0};
        CHECK(uf_model_forward(&m, &bt) == 0);
        CHECK(uf_model_backward(&m) == 0);
    }
    size_t nl = (size_t)B * T * V;
    *logits = uf_malloc(nl * sizeof **logits);
    uf_tensor_download(&m.logits, *logits);
    struct uf_tensor *g = uf_model_train_grads(&m);
    size_t ng = (size_t)g->numel;
    *grads = uf_malloc(ng * sizeof **grads);
    uf_tensor_download(g, *grads);
    *acts = m.bytes_acts;
    uf_model_free(&m);
    return ng;
}

static void same(enum uf_family fam, int lora, int bf16) {
    float *l0, *g0, *l1, *g1;
    size_t a0, a1;
    size_t n0 = run(fam, lora, bf16, 0, &l0, &g0, &a0);
    size_t n1 = run(fam, lora, bf16, 1, &l1, &g1, &a1);
    CHECK_EQ_INT((long long)n0, (long long)n1);
    int nonzero = 0;
    for (size_t i = 0; i < n0; i++) nonzero |= g0[i] != 0.0f;
    CHECK_MSG(nonzero, "%s lora=%d: all gradients are zero", uf_family_name(fam), lora);
    CHECK_MSG(memcmp(l0, l1, (size_t)B * T * V * 4) == 0, "%s lora=%d bf16=%d: logits differ",
              uf_family_name(fam), lora, bf16);
    CHECK_MSG(memcmp(g0, g1, n0 * 4) == 0, "%s lora=%d bf16=%d: gradients differ",
              uf_family_name(fam), lora, bf16);
    CHECK_MSG(a1 < a0, "%s: checkpointing keeps %zu activation bytes, not fewer than %zu",
              uf_family_name(fam), a1, a0);
    free(l0), free(g0);
    free(l1), free(g1);
}

/* toggling checkpointing between forward and backward is refused (the buffers differ) */
static void test_toggle(void) {
    struct uf_model_config c;
    make_cfg(&c, UF_FAMILY_LLAMA);
    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 3, 0) == 0);
    int32_t tok[B * T] = {0}, tgt[B * T] = {0};
    struct uf_model_batch bt = {B, T, tok, tgt, NULL, lengths, 0};
    CHECK(uf_model_forward(&m, &bt) == 0);
    m.checkpointing = 1;
    CHECK(uf_model_backward(&m) != 0);
    CHECK(uf_model_forward(&m, &bt) == 0);
    CHECK(uf_model_backward(&m) == 0);
    uf_model_free(&m);
}

static void test_llama(void) { same(UF_FAMILY_LLAMA, 0, 0); same(UF_FAMILY_LLAMA, 1, 0); }
static void test_mistral(void) { same(UF_FAMILY_MISTRAL, 1, 0); }
static void test_gemma(void) { same(UF_FAMILY_GEMMA, 0, 0); same(UF_FAMILY_GEMMA, 1, 1); }

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_llama);
    UF_RUN(test_mistral);
    UF_RUN(test_gemma);
    UF_RUN(test_toggle);
    uf_device_free(&dev);
    return uf_test_summary();
}
