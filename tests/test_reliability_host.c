/* test_reliability_host.c: issue 20's host-side cases, run under ASan/UBSan in the sanitizer
 * build: the four undefined-behaviour sites (a JSONL number >= 2^63 cast to long long, a
 * config.json vocab_size of 2^31 + 5, 10^9 layers, 8 * d_model overflowing an int) are clean
 * errors or values now; cache entries (uf_cache_write / uf_cache_read) are verified and a damaged
 * one is deleted. */
#include <sys/stat.h>
#include <unistd.h>

#include "core/model_config.h"
#include "core/util.h"
#include "data/data.h"
#include "formats/hf_config.h"
#include "model/memplan.h"
#include "uf_test.h"

static void test_jsonl_huge_number(void) {
    /* data.c row_get1: the integral-looking check cast 1e19 to long long (UB) */
    const char *text = "{\"prompt\": \"p\", \"response\": \"a\", \"label\": 1e19}\n"
                       "{\"prompt\": \"p\", \"response\": \"a\", \"label\": -9.3e18}\n"
                       "{\"prompt\": \"p\", \"response\": \"a\", \"label\": 12}\n";
    struct uf_data_opts o;
    uf_data_opts_init(&o);
    o.fields.label = "label";
    struct uf_dataset d;
    uf_dataset_init(&d, "t");
    int rc = uf_data_read_mem(text, strlen(text), "huge.jsonl", UF_FMT_JSONL, 0, &o, &d, NULL);
    if (rc) fprintf(stderr, "  %s\n", uf_error());
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(d.n, 3);
    if (rc == 0 && d.n == 3) {
        CHECK_STR(d.rows[0].label, "1e+19");
        CHECK_STR(d.rows[1].label, "-9.3e+18");
        CHECK_STR(d.rows[2].label, "12");
    }
    uf_dataset_free(&d);
}

static int hf_parse(const char *json, struct uf_model_config *c) {
    return uf_hf_config_parse(json, strlen(json), "cfg/config.json", c, NULL);
}

static void test_hf_config_huge(void) {
    struct uf_model_config c;
    /* hf_config.c get_int: (int) of 2147483653.0 was UB */
    const char *v = "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":2147483653,"
                    "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                    "\"intermediate_size\":128}";
    CHECK_EQ_INT(hf_parse(v, &c), -1);
    CHECK(strstr(uf_error(), "cfg/config.json") && strstr(uf_error(), "\"vocab_size\""));
    const char *e = "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":1e300,"
                    "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                    "\"intermediate_size\":128,\"bos_token_id\":1e30}";
    CHECK_EQ_INT(hf_parse(e, &c), -1);
    /* 10^9 layers: refused by the config check, before any parameter layout loop */
    const char *l = "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":100,"
                    "\"hidden_size\":64,\"num_hidden_layers\":1000000000,\"num_attention_heads\":4,"
                    "\"intermediate_size\":128}";
    CHECK_EQ_INT(hf_parse(l, &c), -1);
    CHECK(strstr(uf_error(), "cfg/config.json") && strstr(uf_error(), "layers 1000000000"));
    /* a sound one still parses (and token ids beyond int are ignored, not cast) */
    const char *ok = "{\"architectures\":[\"LlamaForCausalLM\"],\"vocab_size\":100,"
                     "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                     "\"intermediate_size\":128,\"eos_token_id\":1e30}";
    CHECK_EQ_INT(hf_parse(ok, &c), 0);
}

static void test_model_config_huge(void) {
    /* model_config.c: the descriptor loop over 10^9 layers overflowed its int counter */
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 100, 64, 1000000000, 4, 0, 128, 64);
    CHECK_EQ_INT(uf_model_config_validate(&c), -1);
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 1 << 26, 1 << 20, 65536, 8, 0, 1 << 22, 64);
    CHECK_EQ_INT(uf_model_config_validate(&c), -1); /* 10^17 parameters */
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 100, 64, 2, 4, 0, 128, 64);
    CHECK_EQ_INT(uf_model_config_validate(&c), 0);
    CHECK(uf_model_param_numel(&c) > 0);
}

static void test_model_new_huge(void) {
    /* cmd_check.c / memplan.c: d_ff = (8 * d_model / 3 ...) overflowed an int at d_model 1e9 */
    struct uf_plan_model m = {.type = UF_PLAN_MODEL_NEW, .family = "llama", .d_model = 1000000000,
                              .layers = 1, .heads = 2, .max_seq = 64};
    struct uf_model_config c;
    CHECK_EQ_INT(uf_memplan_config_new(&m, 100, &c), -1);
    m.d_model = 64, m.layers = 1000000000;
    CHECK_EQ_INT(uf_memplan_config_new(&m, 100, &c), -1);
    m.layers = 1, m.heads = 0;
    CHECK_EQ_INT(uf_memplan_config_new(&m, 100, &c), -1);
    m.heads = 2;
    CHECK_EQ_INT(uf_memplan_config_new(&m, 100, &c), 0);
    CHECK_EQ_INT(c.d_ff, (8 * 64 / 3 + 31) / 32 * 32);
}

static void test_cache_entries(void) {
    char dir[] = "/tmp/uf_cache_testXXXXXX";
    if (!mkdtemp(dir)) { CHECK(0); return; }
    char *path = uf_sprintf("%s/e.ufc", dir);
    const char payload[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    size_t n = sizeof payload - 1, got = 0;
    CHECK_EQ_INT(uf_cache_write(path, payload, n), 0);
    char *r = uf_cache_read(path, &got, "test");
    CHECK(r && got == n && memcmp(r, payload, n) == 0);
    free(r);
    CHECK(uf_cache_read(NULL, &got, "test") == NULL);
    size_t fsize = 0;
    char *raw = uf_file_read(path, &fsize);
    /* truncated, one flipped byte, no header, empty: each is NULL and the file is gone */
    for (int k = 0; k < 4; k++) {
        FILE *f = fopen(path, "wb");
        if (k == 0) fwrite(raw, 1, fsize / 2, f);
        if (k == 1) {
            raw[fsize - 3] ^= 0x10;
            fwrite(raw, 1, fsize, f);
            raw[fsize - 3] ^= 0x10;
        }
        if (k == 2) fwrite(payload, 1, n, f);
        fclose(f);
        CHECK_MSG(uf_cache_read(path, &got, "test") == NULL, "case %d", k);
        CHECK_MSG(!uf_file_exists(path), "case %d: the damaged entry stays", k);
    }
    /* an empty payload is a valid entry */
    CHECK_EQ_INT(uf_cache_write(path, "", 0), 0);
    r = uf_cache_read(path, &got, "test");
    CHECK(r && got == 0);
    free(r);
    unlink(path);
    free(raw);
    free(path);
    rmdir(dir);
}

int main(void) {
    UF_RUN(test_jsonl_huge_number);
    UF_RUN(test_hf_config_huge);
    UF_RUN(test_model_config_huge);
    UF_RUN(test_model_new_huge);
    UF_RUN(test_cache_entries);
    return uf_test_summary();
}
