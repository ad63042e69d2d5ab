/* test_bf16.c: frozen base weights stored as bf16 (model.h UF_MODEL_BF16_BASE, gemm.h
 * uf_gemm_bf16) against the f32 engine on the SAME weights rounded to bf16 on the host
 * (uf_f32_to_bf16, nearest even):
 *   - uf_gemm_bf16 (both layouts of B, the in-place small-m path and the packed path, ragged
 *     sizes) equals uf_gemm of the own backend on the widened values bit for bit, and the
 *     double-precision reference within 1e-5 (max rel); the CLBlast route (B widened in row
 *     chunks, for GPUs) within 1e-5 of the reference;
 *   - tiny llama and gemma (tied embeddings, MQA) models with LoRA (B != 0): logits, loss and
 *     every LoRA gradient of the bf16-base model vs the f32 model: max rel <= 1e-6 (expected
 *     bit-identical with the own GEMM backend, forced here; the kernels read the same numbers);
 *   - the bf16 init (chunked) equals the f32 init rounded; save_params of a bf16 model returns
 *     exactly the rounded values; copy f32 -> bf16 model
 *     rounds on the device like the host; LoRA merge on a bf16 base is close to the unmerged
 *     forward (5e-2 max rel: each merged weight is rounded to bf16, 2^-8 relative, measured
 *     0.015 with these 0.3-std weights);
 *   - an HF folder loaded tensor by tensor into a bf16 model (uf_hf_model_load) holds the rounded
 *     values;
 *   - generation prefill logits from a frozen bf16 model vs the f32 model (1e-5);
 *   - backward on a bf16 base without LoRA is refused with an error. */
#include <math.h>
#include <string.h>

#include <stdlib.h>
#include <unistd.h>

#include "ops/gemm.h"
#include "model/generate.h"
#include "model/hf.h"
#include "model/model.h"
#include "formats/safetensors.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

enum { V = 37, D = 16, L = 2, H = 4, KV = 2, F = 24, B = 2, T = 7 };
static const int32_t lengths[B] = {7, 4};

static double max_rel(const float *a, const float *b, size_t n) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (isnan(e)) return INFINITY;
        err = fmax(err, e);
    }
    return scale > 0 ? err / scale : err;
}

static void fill_normal(struct uf_rng *r, float *x, size_t n, double std) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * uf_rng_normal(r));
}

static void round_bf16(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = uf_bf16_to_f32(uf_f32_to_bf16(x[i]));
}

/* ---- GEMM ----------------------------------------------------------------------------------- */
static void gemm_case(bool tb, size_t m, size_t n, size_t k) {
    struct uf_rng r;
    uf_rng_init(&r, 11 + m + n + k);
    size_t na = m * k, nb = n * k, nc = m * n;
    float *A = uf_malloc(na * 4), *Bf = uf_malloc(nb * 4), *C0 = uf_malloc(nc * 4);
    float *C1 = uf_malloc(nc * 4), *C2 = uf_malloc(nc * 4), *Cr = uf_malloc(nc * 4);
    uint16_t *B16 = uf_malloc(nb * 2);
    fill_normal(&r, A, na, 1.0);
    fill_normal(&r, Bf, nb, 1.0);
    fill_normal(&r, C0, nc, 1.0);
    for (size_t i = 0; i < nb; i++) B16[i] = uf_f32_to_bf16(Bf[i]), Bf[i] = uf_bf16_to_f32(B16[i]);
    struct uf_tensor tA, tB, tB16, tC;
    uf_tensor_init(&tA, &dev, "A", UF_F32, 1, (int64_t[]){(int64_t)na});
    uf_tensor_init(&tB, &dev, "B", UF_F32, 1, (int64_t[]){(int64_t)nb});
    uf_tensor_init(&tB16, &dev, "B16", UF_BF16, 1, (int64_t[]){(int64_t)nb + 3});
    uf_tensor_init(&tC, &dev, "C", UF_F32, 1, (int64_t[]){(int64_t)nc});
    uf_tensor_upload(&tA, A);
    uf_tensor_upload(&tB, Bf);
    struct uf_tensor v16; /* at an odd offset: views of the flat parameter vector are unaligned */
    uf_tensor_view(&v16, &tB16, "B16", 3, 1, (int64_t[]){(int64_t)nb});
    uf_tensor_upload(&v16, B16);
    size_t ldb = tb ? k : n;
    float alpha = 0.75f, beta = 0.5f;
    uf_gemm_set_backend(&dev, UF_GEMM_OWN);
    uf_tensor_upload(&tC, C0);
    uf_gemm(&dev, false, tb, m, n, k, alpha, tA.buf, 0, k, tB.buf, 0, ldb, beta, tC.buf, 0, n);
    uf_tensor_download(&tC, C1);
    uf_tensor_upload(&tC, C0);
    uf_gemm_bf16(&dev, false, tb, m, n, k, alpha, tA.buf, 0, k, tB16.buf, 3, ldb, beta, tC.buf, 0, n);
    uf_tensor_download(&tC, C2);
    uf_gemm_set_backend(&dev, UF_GEMM_AUTO);
    memcpy(Cr, C0, nc * 4);
    uf_gemm_ref(false, tb, m, n, k, alpha, A, k, Bf, ldb, beta, Cr, n);
    CHECK_MSG(memcmp(C1, C2, nc * 4) == 0, "gemm tb=%d m=%zu n=%zu k=%zu: bf16 differs from f32 "
              "own (max rel %.3g)", tb, m, n, k, max_rel(C2, C1, nc));
    double e = max_rel(C2, Cr, nc);
    CHECK_MSG(e <= 1e-5, "gemm tb=%d m=%zu n=%zu k=%zu: max rel vs reference %.3g", tb, m, n, k, e);
    uf_tensor_free(&tA);
    uf_tensor_free(&tB);
    uf_tensor_free(&tB16);
    uf_tensor_free(&tC);
    free(A), free(Bf), free(C0), free(C1), free(C2), free(Cr), free(B16);
}

/* The CLBlast route (GPUs): B widened in row chunks (scratch limit forced small: several
 * chunks), against the double reference. */
static void clblast_case(bool ta, bool tb, size_t m, size_t n, size_t k) {
    struct uf_rng r;
    uf_rng_init(&r, 21 + m + n + k);
    size_t na = m * k, nb = n * k, nc = m * n;
    float *A = uf_malloc(na * 4), *Bf = uf_malloc(nb * 4), *C0 = uf_malloc(nc * 4);
    float *C2 = uf_malloc(nc * 4), *Cr = uf_malloc(nc * 4);
    uint16_t *B16 = uf_malloc(nb * 2);
    fill_normal(&r, A, na, 1.0);
    fill_normal(&r, Bf, nb, 1.0);
    fill_normal(&r, C0, nc, 1.0);
    for (size_t i = 0; i < nb; i++) B16[i] = uf_f32_to_bf16(Bf[i]), Bf[i] = uf_bf16_to_f32(B16[i]);
    struct uf_tensor tA, tB16, tC, v16;
    uf_tensor_init(&tA, &dev, "A", UF_F32, 1, (int64_t[]){(int64_t)na});
    uf_tensor_init(&tB16, &dev, "B16", UF_BF16, 1, (int64_t[]){(int64_t)nb + 5});
    uf_tensor_init(&tC, &dev, "C", UF_F32, 1, (int64_t[]){(int64_t)nc});
    uf_tensor_upload(&tA, A);
    uf_tensor_view(&v16, &tB16, "B16", 5, 1, (int64_t[]){(int64_t)nb});
    uf_tensor_upload(&v16, B16);
    uf_tensor_upload(&tC, C0);
    size_t lda = ta ? m : k, ldb = tb ? k : n;
    uf_gemm_set_backend(&dev, UF_GEMM_CLBLAST);
    uf_gemm_set_scratch_limit(&dev, 4 * ldb * 7); /* 7 rows of B per chunk */
    uf_gemm_bf16(&dev, ta, tb, m, n, k, 0.75f, tA.buf, 0, lda, tB16.buf, 5, ldb, 0.5f, tC.buf, 0, n);
    uf_tensor_download(&tC, C2);
    uf_gemm_set_scratch_limit(&dev, 0);
    uf_gemm_set_backend(&dev, UF_GEMM_AUTO);
    memcpy(Cr, C0, nc * 4);
    uf_gemm_ref(ta, tb, m, n, k, 0.75f, A, lda, Bf, ldb, 0.5f, Cr, n);
    double e = max_rel(C2, Cr, nc);
    CHECK_MSG(e <= 1e-5, "clblast bf16 ta=%d tb=%d m=%zu n=%zu k=%zu: max rel %.3g", ta, tb, m, n, k, e);
    uf_tensor_free(&tA);
    uf_tensor_free(&tB16);
    uf_tensor_free(&tC);
    free(A), free(Bf), free(C0), free(C2), free(Cr), free(B16);
}

static void test_gemm(void) {
    clblast_case(false, true, 150, 70, 37);
    clblast_case(false, false, 150, 45, 33);
    clblast_case(true, false, 40, 45, 33);
    gemm_case(true, 5, 70, 37);    /* y = x W^T, few rows: in place */
    gemm_case(true, 150, 70, 37);  /* packed */
    gemm_case(false, 150, 45, 33); /* dx = dy W */
    gemm_case(false, 3, 45, 40);
}

/* ---- the model ------------------------------------------------------------------------------ */
static void make_cfg(struct uf_model_config *c, enum uf_family fam) {
    uf_model_config_defaults(c, fam, V, D, L, H, KV, F, 16);
    if (fam == UF_FAMILY_GEMMA) c->n_kv_heads = 1, c->head_dim = 6;
}

static void make_batch(struct uf_rng *r, int32_t *tok, int32_t *tgt, float *mask) {
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(uf_rng_u64(r) % V);
        tgt[i] = (int32_t)(uf_rng_u64(r) % V);
        mask[i] = (i % T) < lengths[i / T] && i % 5 != 3 ? 1.0f : 0.0f;
    }
}

static void model_case(enum uf_family fam) {
    struct uf_model_config c;
    make_cfg(&c, fam);
    struct uf_model m32, m16;
    CHECK(uf_model_init(&m32, &dev, &c, 5, 0) == 0);
    CHECK(uf_model_init(&m16, &dev, &c, 5, UF_MODEL_BF16_BASE) == 0);
    CHECK(m16.sv[0].dtype == UF_BF16 && m16.params.buf == NULL);
    CHECK_EQ_INT((long long)m16.bytes_params < (long long)m32.bytes_params, 1);
    size_t P = (size_t)m32.numel;
    float *p = uf_malloc(P * 4), *pr = uf_malloc(P * 4), *back = uf_malloc(P * 4);
    /* the chunked bf16 init gives the f32 init's values rounded */
    uf_model_save_params(&m32, p);
    round_bf16(p, P);
    uf_model_save_params(&m16, back);
    CHECK_MSG(memcmp(back, p, P * 4) == 0, "bf16 init != rounded f32 init");
    struct uf_rng r;
    uf_rng_init(&r, 99);
    fill_normal(&r, p, P, 0.3);
    memcpy(pr, p, P * 4);
    round_bf16(pr, P);
    uf_model_load_params(&m32, pr);
    uf_model_load_params(&m16, p); /* rounds on load */
    uf_model_save_params(&m16, back);
    CHECK_MSG(memcmp(back, pr, P * 4) == 0, "save_params of a bf16 model != host-rounded values");

    /* backward without LoRA is refused */
    int32_t tok[B * T], tgt[B * T];
    float mask[B * T];
    make_batch(&r, tok, tgt, mask);
    struct uf_model_batch bt = {B, T, tok, tgt, mask, lengths, 0};
    CHECK(uf_model_forward(&m16, &bt) == 0);
    CHECK(uf_model_backward(&m16) != 0);

    struct uf_lora_config lc = {3, 6.0f, 0.0f, UF_LORA_ALL};
    CHECK(uf_model_lora_init(&m32, &lc, 7) == 0);
    CHECK(uf_model_lora_init(&m16, &lc, 7) == 0);
    size_t NL = (size_t)m32.lora_numel;
    float *lp = uf_malloc(NL * 4);
    fill_normal(&r, lp, NL, 0.3); /* B != 0: every path matters */
    uf_model_lora_load(&m32, lp);
    uf_model_lora_load(&m16, lp);

    uf_gemm_set_backend(&dev, UF_GEMM_OWN);
    size_t NV = (size_t)B * T * V;
    float *l32 = uf_malloc(NV * 4), *l16 = uf_malloc(NV * 4);
    float *g32 = uf_malloc(NL * 4), *g16 = uf_malloc(NL * 4);
    struct uf_model *ms[2] = {&m32, &m16};
    float *ls[2] = {l32, l16}, *gs[2] = {g32, g16}, loss[2];
    for (int i = 0; i < 2; i++) {
        uf_model_zero_grad(ms[i]);
        CHECK(uf_model_forward(ms[i], &bt) == 0);
        uf_tensor_download(&ms[i]->logits, ls[i]); /* capacity == B*T here */
        loss[i] = uf_model_read_loss(ms[i]);
        CHECK(uf_model_backward(ms[i]) == 0);
        uf_model_lora_save_grads(ms[i], gs[i]);
    }
    uf_gemm_set_backend(&dev, UF_GEMM_AUTO);
    double el = max_rel(l16, l32, NV), eg = max_rel(g16, g32, NL);
    double gmax = 0;
    for (size_t i = 0; i < NL; i++) gmax = fmax(gmax, fabs((double)g32[i]));
    fprintf(stderr, "  %s: logits max rel %.3g, LoRA grads max rel %.3g (|g| max %.3g), loss %.7g vs %.7g\n",
            uf_family_name(fam), el, eg, gmax, (double)loss[1], (double)loss[0]);
    CHECK(gmax > 0);
    CHECK_MSG(el <= 1e-6, "logits: max rel %.3g", el);
    CHECK_MSG(eg <= 1e-6, "LoRA grads: max rel %.3g", eg);
    CHECK_MSG(fabs((double)loss[0] - loss[1]) <= 1e-6 * fabs((double)loss[0]), "loss %g vs %g",
              (double)loss[1], (double)loss[0]);

    /* merge on a bf16 base: close to the unmerged forward */
    m16.training = 0;
    CHECK(uf_model_forward(&m16, &bt) == 0);
    uf_tensor_download(&m16.logits, l16);
    CHECK(uf_model_lora_merge(&m16) == 0);
    CHECK(uf_model_forward(&m16, &bt) == 0);
    uf_tensor_download(&m16.logits, l32);
    double em = max_rel(l32, l16, NV);
    CHECK_MSG(em <= 5e-2, "merged bf16 forward: max rel %.3g", em);
    CHECK(uf_model_lora_unmerge(&m16) == 0);

    /* copy f32 -> bf16 on the device rounds like the host */
    struct uf_model f32m, f16m;
    CHECK(uf_model_init(&f32m, &dev, &c, 5, UF_MODEL_FROZEN) == 0);
    CHECK(uf_model_init(&f16m, &dev, &c, 6, UF_MODEL_FROZEN | UF_MODEL_BF16_BASE) == 0);
    uf_model_load_params(&f32m, p);
    CHECK(uf_model_copy_params(&f16m, &f32m) == 0);
    uf_model_save_params(&f16m, back);
    CHECK_MSG(memcmp(back, pr, P * 4) == 0, "copy f32 -> bf16 model != host-rounded values");

    /* an HF folder loaded tensor by tensor into a bf16 model: the rounded values */
    {
        char dir[128];
        snprintf(dir, sizeof dir, "/tmp/uf_test_bf16_%d_%s", (int)getpid(), uf_family_name(fam));
        CHECK(uf_hf_save(dir, &c, NULL, p, UF_ST_F32, NULL) == 0);
        struct uf_model hm;
        CHECK_MSG(uf_hf_model_load(&hm, &dev, dir, NULL, UF_MODEL_FROZEN | UF_MODEL_BF16_BASE) == 0,
                  "%s", uf_error());
        CHECK(hm.sv[0].dtype == UF_BF16);
        uf_model_save_params(&hm, back);
        CHECK_MSG(memcmp(back, pr, P * 4) == 0, "HF folder -> bf16 model != host-rounded values");
        /* the norm copy is refreshed: the same logits as the bf16 copy of the same weights */
        CHECK(uf_model_forward(&hm, &bt) == 0);
        CHECK(uf_model_forward(&f16m, &bt) == 0);
        uf_tensor_download(&hm.logits, l16);
        uf_tensor_download(&f16m.logits, l32);
        CHECK_MSG(memcmp(l16, l32, NV * 4) == 0, "HF-loaded bf16 model: logits differ");
        uf_model_free(&hm);
        char *cmd = uf_sprintf("rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
        free(cmd);
    }

    /* generation: frozen bf16 model vs f32 model on the rounded weights */
    uf_model_load_params(&f32m, pr);
    struct uf_gen gn32, gn16;
    CHECK(uf_gen_init_model(&gn32, &f32m, 2, 16, 8) == 0);
    CHECK(uf_gen_init_model(&gn16, &f16m, 2, 16, 8) == 0);
    const int32_t *prompts[2] = {tok, tok + T};
    int lens[2] = {7, 4};
    float *pl32 = uf_malloc(2 * V * 4), *pl16 = uf_malloc(2 * V * 4);
    CHECK(uf_gen_prefill(&gn32, 2, prompts, lens, pl32) == 0);
    CHECK(uf_gen_prefill(&gn16, 2, prompts, lens, pl16) == 0);
    double eg2 = max_rel(pl16, pl32, 2 * V);
    CHECK_MSG(eg2 <= 1e-5, "generation prefill logits: max rel %.3g", eg2);
    uf_gen_free(&gn32);
    uf_gen_free(&gn16);
    free(pl32), free(pl16);

    uf_model_free(&f32m);
    uf_model_free(&f16m);
    uf_model_free(&m32);
    uf_model_free(&m16);
    free(p), free(pr), free(back), free(lp), free(l32), free(l16), free(g32), free(g16);
}

static void test_llama(void) { model_case(UF_FAMILY_LLAMA); }
static void test_gemma(void) { model_case(UF_FAMILY_GEMMA); }

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_gemm);
    UF_RUN(test_llama);
    UF_RUN(test_gemma);
    uf_device_free(&dev);
    return uf_test_summary();
}
