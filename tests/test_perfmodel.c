/* test_perfmodel.c: the performance model (model/perfmodel.h) describes the step the engine
 * really runs: for full fine-tuning, LoRA with dropout on a bf16 base with checkpointing,
 * Gemma (tied embeddings, GELU, one KV head) at T = 260 (row blocks in the attention backward),
 * the tile-kernel attention backward, the portable (GPU) kernels and CLBlast GEMMs (bf16 widening),
 * one profiled training step (zero_grad, forward, backward, AdamW as bench) launches exactly as
 * many kernels per family as uf_perf_step_build predicts, and uf_gemm counts exactly its GEMM
 * FLOPs. A change to model.c, optim.c or the ops' launches that the model does not follow fails
 * here: update model/perfmodel.c with it. The hand counts are in test_perfmodel_host.c. */
#include <string.h>

#include "model/model.h"
#include "model/optim.h"
#include "model/perfmodel.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

struct variant {
    const char *name;
    enum uf_family fam;
    int D, L, H, KV, F, V, B, T;
    int lora, bf16, ckpt;
    float dropout;
    int tiles;   /* uf_attn_bwd_form = 2 */
    int clblast; /* GEMMs forced onto CLBlast */
    int portable; /* uf_ops_portable = 1 */
};

static void check_variant(const struct variant *v) {
    fprintf(stderr, "  %s\n", v->name);
    struct uf_model_config c;
    uf_model_config_defaults(&c, v->fam, v->V, v->D, v->L, v->H, v->KV, v->F, v->T);
    if (v->fam == UF_FAMILY_GEMMA) c.head_dim = 12;
    uf_attn_bwd_form = v->tiles ? 2 : 1;
    uf_ops_portable = v->portable;
    uf_gemm_set_backend(&dev, v->clblast ? UF_GEMM_CLBLAST : UF_GEMM_OWN);

    struct uf_model m;
    CHECK(uf_model_init(&m, &dev, &c, 5, v->bf16 ? UF_MODEL_BF16_BASE : 0) == 0);
    m.checkpointing = v->ckpt;
    if (v->lora) {
        struct uf_lora_config lc = {v->lora, 2.0f * v->lora, v->dropout, UF_LORA_ALL};
        CHECK(uf_model_lora_init(&m, &lc, 2) == 0);
    }
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.weight_decay = 0.01f;
    struct uf_optim o;
    CHECK(uf_optim_init(&o, &m, &oc) == 0);

    int N = v->B * v->T;
    int32_t *tok = uf_malloc((size_t)N * sizeof *tok), *tgt = uf_malloc((size_t)N * sizeof *tgt);
    struct uf_rng r;
    uf_rng_init(&r, 3);
    for (int i = 0; i < N; i++) {
        tok[i] = (int32_t)uf_rng_below(&r, (uint64_t)v->V);
        tgt[i] = (int32_t)uf_rng_below(&r, (uint64_t)v->V);
    }
    struct uf_model_batch mb = {v->B, v->T, tok, tgt, NULL, NULL, 0.0f};
    for (int s = 0; s < 2; s++) { /* step 0 builds kernels and allocates; step 1 is profiled */
        if (s == 1) uf_device_profile_enable(&dev, 1);
        double g0 = uf_gemm_flops_issued(&dev);
        uf_model_zero_grad(&m);
        CHECK(uf_model_forward(&m, &mb) == 0);
        CHECK(uf_model_backward(&m) == 0);
        uf_optim_step(&o, 1.0f);
        float loss = uf_model_read_loss(&m);
        CHECK(loss == loss);
        if (s == 0) continue;
        double gemm_flops = uf_gemm_flops_issued(&dev) - g0;

        struct uf_perf_setup ps;
        uf_perf_setup_defaults(&ps, &c, v->B, v->T);
        ps.lora_rank = v->lora, ps.lora_dropout = v->dropout, ps.bf16_base = v->bf16;
        ps.checkpointing = v->ckpt, ps.attn_bwd_tiles = v->tiles;
        ps.gpu_kernels = !uf_ops_cpu_path(&dev);
        for (int l = 0; l < 4; l++) ps.own_gemm[l] = !v->clblast;
        struct uf_perf_step st;
        CHECK(uf_perf_step_build(&ps, &st) == 0);
        CHECK_MSG(gemm_flops == st.gemm_flops, "GEMM FLOPs issued %.17g, model %.17g", gemm_flops,
                  st.gemm_flops);
        struct uf_perf_peaks one = {1, 1, 1};
        struct uf_perf_pred p;
        uf_perf_predict(&st, &one, &p);

        struct uf_profile_row *rows;
        int nrows = uf_device_profile_rows(&dev, &rows);
        long calls[UF_PF_N + 1] = {0};
        for (int i = 0; i < nrows; i++) {
            enum uf_perf_family f = uf_perf_family_of_kernel(rows[i].name);
            CHECK_MSG(f != UF_PF_N, "kernel %s has no family in model/perfmodel.c", rows[i].name);
            calls[f] += rows[i].calls;
        }
        for (int f = 0; f < UF_PF_N; f++)
            CHECK_MSG((double)calls[f] == p.fam[f].launches,
                      "%s: %ld launches measured, %g in the model", uf_perf_family_name(f),
                      calls[f], p.fam[f].launches);
        free(rows);
        uf_perf_step_free(&st);
        uf_device_profile_enable(&dev, 0);
    }
    free(tok), free(tgt);
    uf_optim_free(&o);
    uf_model_free(&m);
    uf_attn_bwd_form = 0;
    uf_ops_portable = 0;
    uf_gemm_set_backend(&dev, UF_GEMM_AUTO);
}

static void test_full(void) {
    struct variant v = {"llama full fine-tuning", UF_FAMILY_LLAMA, 32, 2, 4, 2, 48, 64, 2, 20, .lora = 0};
    check_variant(&v);
}

static void test_lora_bf16_ckpt(void) {
    struct variant v = {"llama LoRA r2 dropout, bf16 base, checkpointing", UF_FAMILY_LLAMA,
                        32, 2, 4, 4, 48, 64, 2, 20, .lora = 2, .bf16 = 1, .ckpt = 1,
                        .dropout = 0.1f};
    check_variant(&v);
}

static void test_gemma_long(void) {
    struct variant v = {"gemma T 260 (row blocks)", UF_FAMILY_GEMMA, 24, 1, 2, 1, 32, 48, 1, 260, .lora = 0};
    check_variant(&v);
}

static void test_tiles_portable(void) {
    struct variant v = {"tile-kernel backward, portable kernels", UF_FAMILY_MISTRAL, 32, 1, 4, 2,
                        48, 64, 2, 20, .tiles = 1, .portable = 1};
    check_variant(&v);
}

static void test_clblast_bf16(void) {
    struct variant v = {"CLBlast GEMMs, bf16 base widened, LoRA", UF_FAMILY_LLAMA, 32, 1, 4, 4,
                        48, 64, 2, 20, .lora = 2, .bf16 = 1};
    check_variant(&v);
}

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_full);
    UF_RUN(test_lora_bf16_ckpt);
    UF_RUN(test_gemma_long);
    UF_RUN(test_tiles_portable);
    UF_RUN(test_clblast_bf16);
    uf_device_free(&dev);
    return uf_test_summary();
}
