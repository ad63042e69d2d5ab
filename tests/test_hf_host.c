/* test_hf_host.c: Hugging Face folders and PEFT adapters (runtime/model/hf.c), host only:
 *   - export -> import round trip for every family: F32 bit-exact, BF16 equal to the bf16
 *     rounding of each weight, the config survives (compared field by field), tied models
 *     (Gemma) carry no lm_head.weight;
 *   - bad folders fail with the tensor and the file named: a missing tensor, a wrong shape,
 *     an unknown tensor (a bias), lm_head missing from an untied model;
 *   - a sharded folder (model.safetensors.index.json over two files) loads the same weights;
 *   - LoRA: save -> load round trip; merging the adapter into the weights gives the same logits
 *     as the reference model running the adapter unmerged (<= 1e-4). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/hf.h"
#include "ref/ref_model.h"
#include "uf_test.h"
#include "core/util.h"

static char tmp[256];

static float *random_vec(int64_t n, uint64_t seed, double sd) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    float *p = uf_malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(sd * uf_rng_normal(&r));
    return p;
}

static void config(struct uf_model_config *c, enum uf_family f) {
    uf_model_config_defaults(c, f, 37, 32, 2, 4, 2, 40, 128);
    if (f == UF_FAMILY_MISTRAL) c->sliding_window = 7;
    if (f == UF_FAMILY_GEMMA) c->head_dim = 16;
}

static int same_config(const struct uf_model_config *a, const struct uf_model_config *b) {
    return a->family == b->family && a->vocab == b->vocab && a->d_model == b->d_model &&
           a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim && a->d_ff == b->d_ff &&
           a->max_seq == b->max_seq && a->norm_eps == b->norm_eps &&
           a->rope_theta == b->rope_theta && a->rope_factor == b->rope_factor &&
           a->sliding_window == b->sliding_window && a->act == b->act &&
           a->norm_plus_one == b->norm_plus_one && a->embed_scale == b->embed_scale &&
           a->tied_embeddings == b->tied_embeddings;
}

static void test_roundtrip(void) {
    for (int f = 0; f < 4; f++) {
        struct uf_model_config c, c2;
        config(&c, (enum uf_family)f);
        int64_t P = uf_model_param_numel(&c);
        float *p = random_vec(P, 1 + f, 0.5), *q = NULL;
        char *dir = uf_sprintf("%s/rt-%d", tmp, f);
        struct uf_hf_extra ex = {.bos_token_id = 1, .eos_token_id = 2};
        CHECK(uf_hf_save(dir, &c, &ex, p, UF_ST_F32, NULL) == 0);
        struct uf_hf_extra ex2;
        CHECK(uf_hf_load(dir, &c2, &ex2, &q) == 0);
        CHECK_MSG(q && same_config(&c, &c2), "%s: %s", uf_family_name(c.family), uf_error());
        CHECK(q && memcmp(p, q, (size_t)P * sizeof *p) == 0);
        CHECK(ex2.eos_token_id == 2);
        struct uf_safetensors st;
        char *stp = uf_sprintf("%s/model.safetensors", dir);
        CHECK(uf_safetensors_open(&st, stp) == 0);
        CHECK((uf_safetensors_find(&st, "lm_head.weight") != NULL) == !c.tied_embeddings);
        uf_safetensors_free(&st);
        free(q), q = NULL;
        CHECK(uf_hf_save(dir, &c, &ex, p, UF_ST_BF16, NULL) == 0);
        CHECK(uf_hf_load(dir, &c2, NULL, &q) == 0);
        int ok = q != NULL;
        for (int64_t i = 0; ok && i < P; i++) ok = q[i] == uf_bf16_to_f32(uf_f32_to_bf16(p[i]));
        CHECK(ok);
        free(q), free(p), free(stp), free(dir);
    }
}

/* writes a model.safetensors from the canonical tensors, with one change */
static void write_variant(const char *dir, const struct uf_model_config *c, const float *p,
                          const char *drop, const char *reshape, const char *extra_name) {
    int n = uf_model_param_descs(c, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_model_param_descs(c, d);
    struct uf_st_write_tensor *w = uf_calloc((size_t)n + 1, sizeof *w);
    int m = 0;
    for (int j = 0; j < n; j++) {
        if (drop && strcmp(d[j].name, drop) == 0) continue;
        int norm = d[j].rows == 1;
        w[m].name = d[j].name, w[m].dtype = UF_ST_F32, w[m].data = p + d[j].offset;
        w[m].ndim = norm ? 1 : 2;
        w[m].shape[0] = norm ? d[j].cols : d[j].rows, w[m].shape[1] = d[j].cols;
        if (reshape && strcmp(d[j].name, reshape) == 0)
            w[m].shape[0] = d[j].cols, w[m].shape[1] = d[j].rows;
        m++;
    }
    if (extra_name) {
        w[m].name = extra_name, w[m].dtype = UF_ST_F32, w[m].ndim = 1, w[m].shape[0] = 4;
        w[m].data = p;
        m++;
    }
    char *path = uf_sprintf("%s/model.safetensors", dir);
    CHECK(uf_safetensors_write(path, w, m, NULL, 0) == 0);
    free(path), free(w), free(d);
}

static void expect_error(const char *dir, const char *what1, const char *what2) {
    struct uf_model_config c;
    float *q = NULL;
    int rc = uf_hf_load(dir, &c, NULL, &q);
    CHECK(rc != 0 && q == NULL);
    CHECK_MSG(strstr(uf_error(), what1) && strstr(uf_error(), what2), "error: %s", uf_error());
    free(q);
}

static void test_bad_folders(void) {
    struct uf_model_config c;
    config(&c, UF_FAMILY_LLAMA);
    int64_t P = uf_model_param_numel(&c);
    float *p = random_vec(P, 9, 1.0);
    char *dir = uf_sprintf("%s/bad", tmp);
    CHECK(uf_hf_save(dir, &c, NULL, p, UF_ST_F32, NULL) == 0);
    write_variant(dir, &c, p, "model.layers.1.mlp.up_proj.weight", NULL, NULL);
    expect_error(dir, "model.layers.1.mlp.up_proj.weight", "missing");
    write_variant(dir, &c, p, NULL, "model.layers.0.self_attn.k_proj.weight", NULL);
    expect_error(dir, "model.layers.0.self_attn.k_proj.weight", "model.safetensors");
    write_variant(dir, &c, p, NULL, NULL, "model.layers.0.self_attn.q_proj.bias");
    expect_error(dir, "q_proj.bias", "model.safetensors");
    write_variant(dir, &c, p, "lm_head.weight", NULL, NULL);
    expect_error(dir, "lm_head.weight", "tie_word_embeddings");
    /* old checkpoints' rotary buffers are accepted */
    write_variant(dir, &c, p, NULL, NULL, "model.layers.0.self_attn.rotary_emb.inv_freq");
    float *q = NULL;
    CHECK(uf_hf_load(dir, &c, NULL, &q) == 0);
    CHECK(q && memcmp(p, q, (size_t)P * 4) == 0);
    free(q);
    /* no weights at all */
    char *stp = uf_sprintf("%s/model.safetensors", dir);
    unlink(stp);
    expect_error(dir, dir, "");
    free(stp), free(p), free(dir);
}

static void test_sharded(void) {
    struct uf_model_config c;
    config(&c, UF_FAMILY_MISTRAL);
    int64_t P = uf_model_param_numel(&c);
    float *p = random_vec(P, 11, 1.0), *q = NULL;
    char *dir = uf_sprintf("%s/sharded", tmp);
    CHECK(uf_hf_save(dir, &c, NULL, p, UF_ST_F32, NULL) == 0); /* for config.json */
    char *one = uf_sprintf("%s/model.safetensors", dir);
    unlink(one);
    free(one);
    int n = uf_model_param_descs(&c, NULL);
    struct uf_param_desc *d = uf_calloc((size_t)n, sizeof *d);
    uf_model_param_descs(&c, d);
    struct uf_st_write_tensor *w = uf_calloc((size_t)n, sizeof *w);
    char *idx = uf_strdup("{\"metadata\": {}, \"weight_map\": {"), *tmpstr;
    for (int j = 0; j < n; j++) {
        int norm = d[j].rows == 1;
        w[j].name = d[j].name, w[j].dtype = UF_ST_F32, w[j].data = p + d[j].offset;
        w[j].ndim = norm ? 1 : 2;
        w[j].shape[0] = norm ? d[j].cols : d[j].rows, w[j].shape[1] = d[j].cols;
        tmpstr = uf_sprintf("%s%s\"%s\": \"model-0000%d-of-00002.safetensors\"", idx, j ? ", " : "",
                            d[j].name, j < n / 2 ? 1 : 2);
        free(idx), idx = tmpstr;
    }
    tmpstr = uf_sprintf("%s}}", idx);
    free(idx), idx = tmpstr;
    char *s1 = uf_sprintf("%s/model-00001-of-00002.safetensors", dir);
    char *s2 = uf_sprintf("%s/model-00002-of-00002.safetensors", dir);
    char *ip = uf_sprintf("%s/model.safetensors.index.json", dir);
    CHECK(uf_safetensors_write(s1, w, n / 2, NULL, 0) == 0);
    CHECK(uf_safetensors_write(s2, w + n / 2, n - n / 2, NULL, 0) == 0);
    CHECK(uf_file_write_atomic(ip, idx, strlen(idx)) == 0);
    CHECK_MSG(uf_hf_load(dir, &c, NULL, &q) == 0, "%s", uf_error());
    CHECK(q && memcmp(p, q, (size_t)P * 4) == 0);
    free(q), free(s1), free(s2), free(ip), free(idx), free(w), free(d), free(p), free(dir);
}

static void test_lora(void) {
    struct uf_model_config c;
    config(&c, UF_FAMILY_LLAMA3);
    unsigned targets = UF_LORA_TARGET(UF_P_Q) | UF_LORA_TARGET(UF_P_V) | UF_LORA_TARGET(UF_P_DOWN);
    int rank = 3;
    float alpha = 6.0f;
    int64_t P = uf_model_param_numel(&c), NL = uf_ref_lora_numel(&c, rank, targets);
    float *p = random_vec(P, 21, 0.3), *lora = random_vec(NL, 22, 0.3);
    char *dir = uf_sprintf("%s/adapter", tmp);
    CHECK(uf_hf_lora_save(dir, &c, rank, alpha, targets, lora, "tiny-base") == 0);
    struct uf_hf_lora l;
    CHECK_MSG(uf_hf_lora_load(dir, &c, &l) == 0, "%s", uf_error());
    CHECK(l.rank == rank && l.alpha == alpha && l.targets == targets);
    CHECK(l.params && memcmp(l.params, lora, (size_t)NL * 4) == 0);
    struct uf_safetensors st;
    char *ap = uf_sprintf("%s/adapter_model.safetensors", dir);
    CHECK(uf_safetensors_open(&st, ap) == 0);
    CHECK(uf_safetensors_find(&st, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
    uf_safetensors_free(&st);
    /* merged weights == adapter applied by the reference model */
    enum { B = 2, T = 5 };
    int32_t tok[B * T] = {1, 5, 9, 3, 0, 36, 2, 2, 7, 11};
    float *l1 = uf_malloc(sizeof(float) * B * T * c.vocab), *l2 = uf_malloc(sizeof(float) * B * T * c.vocab);
    struct uf_ref_batch b = {.B = B, .T = T, .tokens = tok, .targets = tok};
    struct uf_ref_lora rl = {.rank = rank, .alpha = alpha, .targets = targets, .params = lora};
    struct uf_ref_result r1 = {.logits = l1}, r2 = {.logits = l2};
    CHECK(uf_ref_model_run(&c, p, &rl, &b, NULL, NULL, &r1) == 0);
    uf_hf_lora_merge(&c, p, &l);
    CHECK(uf_ref_model_run(&c, p, NULL, &b, NULL, NULL, &r2) == 0);
    double md = 0;
    for (int i = 0; i < B * T * c.vocab; i++) md = fmax(md, fabs(l1[i] - l2[i]));
    fprintf(stderr, "  merged vs unmerged LoRA logits: max abs diff %.3g\n", md);
    CHECK(md <= 1e-4);
    /* a bad adapter config is an error naming the file */
    char *cp = uf_sprintf("%s/adapter_config.json", dir);
    const char *bad = "{\"peft_type\": \"LORA\", \"r\": 3, \"lora_alpha\": 6, \"target_modules\": [\"qkv\"]}";
    CHECK(uf_file_write_atomic(cp, bad, strlen(bad)) == 0);
    struct uf_hf_lora l3;
    CHECK(uf_hf_lora_load(dir, &c, &l3) != 0 && strstr(uf_error(), "qkv"));
    uf_hf_lora_free(&l);
    free(cp), free(ap), free(l1), free(l2), free(p), free(lora), free(dir);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/uf_test_hf_%d", (int)getpid());
    CHECK(uf_mkdir_p(tmp) == 0);
    UF_RUN(test_roundtrip);
    UF_RUN(test_bad_folders);
    UF_RUN(test_sharded);
    UF_RUN(test_lora);
    char *cmd = uf_sprintf("rm -rf %s", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    free(cmd);
    return uf_test_summary();
}
