/* test_hf_config_host.c: config.json of the supported families (hand-written in the shape of the
 * published LLaMA-2, Mistral, Gemma and LLaMA-3.1 configs) -> struct uf_model_config, errors for
 * unsupported ones, and write -> read round trips. */
#include <unistd.h>

#include "formats/hf_config.h"
#include "uf_test.h"
#include "core/util.h"

static int parse(const char *json, struct uf_model_config *c, struct uf_hf_extra *e) {
    int rc = uf_hf_config_parse(json, strlen(json), "config.json", c, e);
    if (rc) fprintf(stderr, "  parse: %s\n", uf_error());
    return rc;
}

static void test_llama2(void) {
    const char *j = "{\"architectures\": [\"LlamaForCausalLM\"], \"bos_token_id\": 1, "
                    "\"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 4096, "
                    "\"initializer_range\": 0.02, \"intermediate_size\": 11008, "
                    "\"max_position_embeddings\": 4096, \"model_type\": \"llama\", "
                    "\"num_attention_heads\": 32, \"num_hidden_layers\": 32, "
                    "\"num_key_value_heads\": 32, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, "
                    "\"rope_scaling\": null, \"tie_word_embeddings\": false, "
                    "\"torch_dtype\": \"float16\", \"use_cache\": true, \"vocab_size\": 32000}";
    struct uf_model_config c;
    struct uf_hf_extra e;
    if (parse(j, &c, &e)) { CHECK(0); return; }
    CHECK_EQ_INT(c.family, UF_FAMILY_LLAMA);
    CHECK_EQ_INT(c.vocab, 32000);
    CHECK_EQ_INT(c.d_model, 4096);
    CHECK_EQ_INT(c.n_layers, 32);
    CHECK_EQ_INT(c.n_heads, 32);
    CHECK_EQ_INT(c.n_kv_heads, 32);
    CHECK_EQ_INT(c.head_dim, 128);
    CHECK_EQ_INT(c.d_ff, 11008);
    CHECK_EQ_INT(c.max_seq, 4096);
    CHECK(c.norm_eps == 1e-5f);
    CHECK(c.rope_theta == 10000.0f);
    CHECK_EQ_INT(c.act, UF_ACT_SILU);
    CHECK_EQ_INT(c.tied_embeddings, 0);
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK(c.rope_factor == 0);
    CHECK_EQ_INT(e.bos_token_id, 1);
    CHECK_EQ_INT(e.eos_token_id, 2);
    CHECK_STR(e.torch_dtype, "float16");
}

static void test_mistral(void) {
    const char *j = "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_act\": \"silu\", "
                    "\"hidden_size\": 4096, \"intermediate_size\": 14336, "
                    "\"max_position_embeddings\": 32768, \"num_attention_heads\": 32, "
                    "\"num_hidden_layers\": 32, \"num_key_value_heads\": 8, "
                    "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"sliding_window\": 4096, "
                    "\"tie_word_embeddings\": false, \"vocab_size\": 32000}";
    struct uf_model_config c;
    if (parse(j, &c, NULL)) { CHECK(0); return; }
    CHECK_EQ_INT(c.family, UF_FAMILY_MISTRAL);
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.sliding_window, 4096);
    CHECK_EQ_INT(c.max_seq, 32768);
    CHECK_EQ_INT(c.d_ff, 14336);
    /* v0.2+ configs have "sliding_window": null and rope_theta 1e6 */
    const char *j2 = "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 64, "
                     "\"intermediate_size\": 128, \"num_attention_heads\": 4, "
                     "\"num_hidden_layers\": 2, \"rope_theta\": 1000000.0, "
                     "\"sliding_window\": null, \"vocab_size\": 100}";
    if (parse(j2, &c, NULL)) { CHECK(0); return; }
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK(c.rope_theta == 1e6f);
    CHECK_EQ_INT(c.n_kv_heads, 4); /* defaults to num_attention_heads */
}

static void test_gemma(void) {
    const char *j = "{\"architectures\": [\"GemmaForCausalLM\"], \"bos_token_id\": 2, "
                    "\"eos_token_id\": 1, \"head_dim\": 256, \"hidden_act\": \"gelu\", "
                    "\"hidden_activation\": \"gelu_pytorch_tanh\", \"hidden_size\": 2048, "
                    "\"intermediate_size\": 16384, \"max_position_embeddings\": 8192, "
                    "\"model_type\": \"gemma\", \"num_attention_heads\": 8, "
                    "\"num_hidden_layers\": 18, \"num_key_value_heads\": 1, \"pad_token_id\": 0, "
                    "\"rms_norm_eps\": 1e-06, \"rope_theta\": 10000.0, \"vocab_size\": 256000}";
    struct uf_model_config c;
    struct uf_hf_extra e;
    if (parse(j, &c, &e)) { CHECK(0); return; }
    CHECK_EQ_INT(c.family, UF_FAMILY_GEMMA);
    CHECK_EQ_INT(c.head_dim, 256);
    CHECK_EQ_INT(c.n_kv_heads, 1);
    CHECK_EQ_INT(c.act, UF_ACT_GELU_TANH);
    CHECK_EQ_INT(c.tied_embeddings, 1);
    CHECK_EQ_INT(c.norm_plus_one, 1);
    CHECK_EQ_INT(c.embed_scale, 1);
    CHECK(c.norm_eps == 1e-6f);
    CHECK_EQ_INT(e.bos_token_id, 2);
}

static void test_llama3(void) {
    const char *j = "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, "
                    "\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009], "
                    "\"hidden_act\": \"silu\", \"hidden_size\": 4096, \"intermediate_size\": 14336, "
                    "\"max_position_embeddings\": 131072, \"mlp_bias\": false, "
                    "\"num_attention_heads\": 32, \"num_hidden_layers\": 32, "
                    "\"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05, \"rope_scaling\": {"
                    "\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                    "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, "
                    "\"rope_theta\": 500000.0, \"tie_word_embeddings\": false, "
                    "\"vocab_size\": 128256}";
    struct uf_model_config c;
    struct uf_hf_extra e;
    if (parse(j, &c, &e)) { CHECK(0); return; }
    CHECK_EQ_INT(c.family, UF_FAMILY_LLAMA3);
    CHECK(c.rope_theta == 500000.0f);
    CHECK(c.rope_factor == 8.0f);
    CHECK(c.rope_low_freq_factor == 1.0f);
    CHECK(c.rope_high_freq_factor == 4.0f);
    CHECK_EQ_INT(c.rope_original_max_pos, 8192);
    CHECK_EQ_INT(e.eos_token_id, 128001);
    CHECK_EQ_INT(e.bos_token_id, 128000);
    /* LLaMA-3 (not 3.1): no rope_scaling, recognized by its vocabulary, scaling off */
    const char *j0 = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 4096, "
                     "\"intermediate_size\": 14336, \"num_attention_heads\": 32, "
                     "\"num_hidden_layers\": 32, \"num_key_value_heads\": 8, "
                     "\"rope_theta\": 500000.0, \"vocab_size\": 128256}";
    if (parse(j0, &c, NULL)) { CHECK(0); return; }
    CHECK_EQ_INT(c.family, UF_FAMILY_LLAMA3);
    CHECK(c.rope_factor == 0);
}

static void expect_error(const char *json, const char *want) {
    struct uf_model_config c;
    int rc = uf_hf_config_parse(json, strlen(json), "cfg.json", &c, NULL);
    CHECK_MSG(rc != 0, "accepted %s", json);
    if (rc) CHECK_MSG(strstr(uf_error(), want) && strstr(uf_error(), "cfg.json"),
                      "'%s' lacks '%s'", uf_error(), want);
}

static void test_errors(void) {
    expect_error("{\"architectures\": [\"GPT2LMHeadModel\"]}", "LlamaForCausalLM");
    expect_error("{\"architectures\": [\"GPT2LMHeadModel\"]}", "GPT2LMHeadModel");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}", "vocab_size");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 64,"
                 "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"intermediate_size\": 8,"
                 "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}", "linear");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 64,"
                 "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"intermediate_size\": 8,"
                 "\"attention_bias\": true}", "attention_bias");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 64,"
                 "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 3,"
                 "\"intermediate_size\": 8}", "n_kv_heads");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10.5}", "vocab_size");
    expect_error("{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 64,"
                 "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"intermediate_size\": 8,"
                 "\"hidden_act\": \"relu\"}", "relu");
    expect_error("[1]", "not a valid JSON object");
}

static int same_config(const struct uf_model_config *a, const struct uf_model_config *b) {
    return a->family == b->family && a->vocab == b->vocab && a->d_model == b->d_model &&
           a->n_layers == b->n_layers && a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads &&
           a->head_dim == b->head_dim && a->d_ff == b->d_ff && a->max_seq == b->max_seq &&
           a->norm_eps == b->norm_eps && a->rope_theta == b->rope_theta &&
           a->rope_factor == b->rope_factor && a->rope_low_freq_factor == b->rope_low_freq_factor &&
           a->rope_high_freq_factor == b->rope_high_freq_factor &&
           a->rope_original_max_pos == b->rope_original_max_pos &&
           a->sliding_window == b->sliding_window && a->act == b->act &&
           a->norm_plus_one == b->norm_plus_one && a->embed_scale == b->embed_scale &&
           a->tied_embeddings == b->tied_embeddings;
}

static void test_roundtrip(void) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/uf_hfcfg_%ld.json", (long)getpid());
    for (int f = 0; f < 4; f++) {
        struct uf_model_config c, back;
        uf_model_config_defaults(&c, (enum uf_family)f, 2048, 256, 4, 8, 2, 688, 512);
        c.norm_eps = 1e-5f + (float)f * 1e-7f;
        if (f == UF_FAMILY_GEMMA) c.head_dim = 48;
        if (f == UF_FAMILY_LLAMA) c.tied_embeddings = 1;
        struct uf_hf_extra e = {.bos_token_id = 1, .eos_token_id = 2, .torch_dtype = "bfloat16"};
        struct uf_hf_extra eb;
        CHECK_MSG(uf_hf_config_write(path, &c, &e) == 0, "%s", uf_error());
        CHECK_MSG(uf_hf_config_load(path, &back, &eb) == 0, "%s", uf_error());
        CHECK_MSG(same_config(&c, &back), "family %s", uf_family_name((enum uf_family)f));
        CHECK_EQ_INT(eb.bos_token_id, 1);
        CHECK_EQ_INT(eb.eos_token_id, 2);
        CHECK_STR(eb.torch_dtype, "bfloat16");
    }
    /* a sliding window outside the mistral family has no config.json form */
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 100, 64, 1, 4, 4, 128, 64);
    c.sliding_window = 16;
    CHECK(uf_hf_config_write(path, &c, NULL) != 0);
    CHECK(strstr(uf_error(), "sliding_window"));
    unlink(path);
}

int main(void) {
    UF_RUN(test_llama2);
    UF_RUN(test_mistral);
    UF_RUN(test_gemma);
    UF_RUN(test_llama3);
    UF_RUN(test_errors);
    UF_RUN(test_roundtrip);
    return uf_test_summary();
}
