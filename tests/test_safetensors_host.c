/* test_safetensors_host.c: safetensors writer/reader round trip, a file written independently by
 * Python (struct + json, with Python's own float16 packing as the reference conversion), sharded
 * models through model.safetensors.index.json, and malformed files with their messages. */
#include <stdint.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "uf_test.h"
#include "core/util.h"

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/uf_st_test_%ld", (long)getpid());
    uf_mkdir_p(tmpdir);
}

static void test_half_conversions(void) {
    CHECK(uf_f16_to_f32(0x3C00) == 1.0f);
    CHECK(uf_f16_to_f32(0xC000) == -2.0f);
    CHECK(uf_f16_to_f32(0x7BFF) == 65504.0f);
    CHECK(uf_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(uf_f16_to_f32(0x0200) == ldexpf(1.0f, -15));
    CHECK(isinf(uf_f16_to_f32(0x7C00)));
    CHECK(uf_bf16_to_f32(0x3F80) == 1.0f);
    CHECK(uf_f32_to_bf16(1.0f) == 0x3F80);
    /* bf16 rounding: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> even (1.0) */
    CHECK(uf_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3F80);
    CHECK(uf_f32_to_bf16(1.0f + ldexpf(1.0f, -8) + ldexpf(1.0f, -12)) == 0x3F81);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* NaN payloads */
        if (uf_f32_to_f16(uf_f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* f16 rounding: 1 + 2^-11 ties to 1.0; 1 + 3*2^-11 ties up to 1 + 2^-9 (even mantissa) */
    CHECK(uf_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00);
    CHECK(uf_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)) == 0x3C02);
    CHECK(uf_f32_to_f16(70000.0f) == 0x7C00);
}

static void test_write_read_roundtrip(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    float a[6] = {1, -2, 3.5f, 0.25f, -0.125f, 1e-3f};           /* (2, 3) */
    uint16_t b[4], c[4];                                          /* (4) f16, (2, 2) bf16 */
    float bref[4] = {0.5f, -1.5f, 1024.0f, 0.0999755859375f};     /* exact in f16 */
    float cref[4] = {1.0f, -3.0f, 0.5f, 256.0f};                  /* exact in bf16 */
    for (int i = 0; i < 4; i++) b[i] = uf_f32_to_f16(bref[i]), c[i] = uf_f32_to_bf16(cref[i]);
    struct uf_st_write_tensor t[4] = {
        {.name = "model.embed_tokens.weight", .dtype = UF_ST_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "h\"alf", .dtype = UF_ST_F16, .ndim = 1, .shape = {4}, .data = b},
        {.name = "brain", .dtype = UF_ST_BF16, .ndim = 2, .shape = {2, 2}, .data = c},
        {.name = "empty", .dtype = UF_ST_F32, .ndim = 2, .shape = {0, 5}, .data = NULL},
    };
    const char *meta[] = {"format", "pt", "note", "line\nbreak"};
    CHECK(uf_safetensors_write(path, t, 4, meta, 2) == 0);
    struct uf_safetensors st;
    int rc = uf_safetensors_open(&st, path);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc != 0) return;
    CHECK_EQ_INT(st.n_tensors, 4);
    CHECK_STR(uf_safetensors_meta(&st, "format"), "pt");
    CHECK_STR(uf_safetensors_meta(&st, "note"), "line\nbreak");
    const struct uf_st_tensor *e = uf_safetensors_find(&st, "model.embed_tokens.weight");
    CHECK(e && e->ndim == 2 && e->shape[0] == 2 && e->shape[1] == 3 && e->dtype == UF_ST_F32);
    float out[6];
    CHECK(uf_safetensors_read_f32(&st, "model.embed_tokens.weight", out, 6) == 0);
    for (int i = 0; i < 6; i++) CHECK(out[i] == a[i]);
    CHECK(uf_safetensors_read_f32(&st, "h\"alf", out, 4) == 0);
    for (int i = 0; i < 4; i++) CHECK(out[i] == bref[i]);
    CHECK(uf_safetensors_read_f32(&st, "brain", out, 4) == 0);
    for (int i = 0; i < 4; i++) CHECK(out[i] == cref[i]);
    CHECK(uf_safetensors_read_f32(&st, "empty", out, 0) == 0);
    CHECK(uf_safetensors_read_f32(&st, "brain", out, 5) != 0);
    CHECK(strstr(uf_error(), "brain") && strstr(uf_error(), "4 elements"));
    CHECK(uf_safetensors_read_f32(&st, "nope", out, 1) != 0);
    CHECK(strstr(uf_error(), "nope") && strstr(uf_error(), "rt.safetensors"));
    /* the data region starts 8-byte aligned */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st.base[i];
    CHECK_EQ_INT((8 + hlen) % 8, 0);
    uf_safetensors_free(&st);
    /* no temp file left behind */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!uf_file_exists(tmp));
}

/* Python's value 0.1 * i - 0.7 in double; two statements so that no compiler fuses them into an
 * fma (clang contracts within one expression), which would differ from Python in the last bit. */
static float pyval(int i) {
    volatile double p = 0.1 * i;
    double d = p - 0.7;
    return (float)d;
}

/* Python writes the file with struct/json only; values chosen so f16 packing rounds. */
static void test_python_written(void) {
    if (access("/usr/bin/python3", X_OK) != 0) UF_SKIP("/usr/bin/python3 absent");
    char path[512], cmd[4096];
    snprintf(path, sizeof path, "%s/py.safetensors", tmpdir);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 - '%s' <<'EOF'\n"
             "import json, struct, sys\n"
             "vals = [0.1 * i - 0.7 for i in range(12)]\n"
             "f32 = struct.pack('<12f', *vals)\n"
             "f16 = struct.pack('<12e', *vals)\n"
             "bf = b''.join(struct.pack('<I', struct.unpack('<I', struct.pack('<f', v))[0])[2:] for v in vals)\n"
             "hdr = {'__metadata__': {'format': 'pt'},\n"
             "  'a.f32': {'dtype': 'F32', 'shape': [3, 4], 'data_offsets': [0, 48]},\n"
             "  'b.f16': {'dtype': 'F16', 'shape': [12], 'data_offsets': [48, 72]},\n"
             "  'c.bf16': {'dtype': 'BF16', 'shape': [2, 2, 3], 'data_offsets': [72, 96]}}\n"
             "h = json.dumps(hdr).encode()\n"
             "open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + f32 + f16 + bf)\n"
             "EOF",
             path);
    if (system(cmd) != 0) UF_SKIP("python3 could not write the file");
    struct uf_safetensors st;
    int rc = uf_safetensors_open(&st, path);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc != 0) return;
    float x[12], ref;
    CHECK(uf_safetensors_read_f32(&st, "a.f32", x, 12) == 0);
    for (int i = 0; i < 12; i++) {
        ref = pyval(i);
        CHECK(x[i] == ref);
    }
    CHECK(uf_safetensors_read_f32(&st, "b.f16", x, 12) == 0);
    for (int i = 0; i < 12; i++) {
        ref = pyval(i);
        /* Python packed with its own round-to-nearest; our encoder must agree bit for bit */
        CHECK_MSG(uf_f32_to_f16(x[i]) == uf_f32_to_f16(ref) && fabsf(x[i] - ref) < 1e-3f,
                  "i=%d %g vs %g", i, x[i], ref);
    }
    CHECK(uf_safetensors_read_f32(&st, "c.bf16", x, 12) == 0);
    for (int i = 0; i < 12; i++) {
        ref = pyval(i);
        uint32_t bits;
        memcpy(&bits, &ref, 4);
        bits &= 0xFFFF0000u; /* python truncated */
        float tr;
        memcpy(&tr, &bits, 4);
        CHECK(x[i] == tr);
    }
    const struct uf_st_tensor *c = uf_safetensors_find(&st, "c.bf16");
    CHECK(c && c->ndim == 3 && c->shape[2] == 3 && c->numel == 12);
    uf_safetensors_free(&st);
}

/* Builds a file image: 8-byte length + header + `data_len` zero bytes. */
static uint8_t *image(const char *hdr, size_t data_len, size_t *size) {
    size_t h = strlen(hdr);
    *size = 8 + h + data_len;
    uint8_t *p = uf_calloc(*size, 1);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(p + 8, hdr, h);
    return p;
}

static void expect_bad(const char *hdr, size_t data_len, const char *want1, const char *want2) {
    size_t n;
    uint8_t *p = image(hdr, data_len, &n);
    struct uf_safetensors st;
    int rc = uf_safetensors_open_memory(&st, p, n, "bad.safetensors");
    CHECK_MSG(rc != 0, "accepted: %s", hdr);
    if (rc != 0) {
        CHECK_MSG(strstr(uf_error(), "bad.safetensors") && strstr(uf_error(), want1) &&
                      (!want2 || strstr(uf_error(), want2)),
                  "message '%s' lacks '%s' / '%s'", uf_error(), want1, want2 ? want2 : "");
    } else uf_safetensors_free(&st);
    free(p);
}

static void test_malformed(void) {
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8,
               "not valid JSON", NULL);
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "'w'",
               "past the data region");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'w'",
               "needs 12 bytes");
    expect_bad("{\"w\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "'w'",
               "unknown dtype 'Q4'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "overlap",
               "'b'");
    /* overlap hidden behind an empty tensor */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
               "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
               "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, "overlap",
               "'c'");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'w'",
               "shape[0]");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'w'",
               "end before");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
               "\"data_offsets\":[0,8]}}", 8, "'w'", "overflowing");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "'w'",
               "twice");
    expect_bad("{\"__metadata__\":{\"k\":3}}", 0, "__metadata__", NULL);
    expect_bad("[1,2]", 0, "does not start", NULL);
    /* header length larger than the file */
    {
        uint8_t p[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        struct uf_safetensors st;
        CHECK(uf_safetensors_open_memory(&st, p, 16, "bad.safetensors") != 0);
        CHECK(strstr(uf_error(), "does not fit"));
        CHECK(uf_safetensors_open_memory(&st, p, 5, "bad.safetensors") != 0);
        CHECK(strstr(uf_error(), "too short"));
        uint8_t q[16] = {0, 0, 0, 0, 0, 0, 0, 1, '{', '}'};
        CHECK(uf_safetensors_open_memory(&st, q, 16, "bad.safetensors") != 0);
        CHECK(strstr(uf_error(), "100 MB"));
    }
    /* a valid minimal image parses */
    {
        size_t n;
        uint8_t *p = image("{\"w\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, &n);
        struct uf_safetensors st;
        CHECK(uf_safetensors_open_memory(&st, p, n, "ok") == 0);
        float x[2];
        CHECK(uf_safetensors_read_f32(&st, "w", x, 2) != 0); /* I32 does not convert */
        CHECK(strstr(uf_error(), "I32"));
        uf_safetensors_free(&st);
        free(p);
    }
    /* truncated real file */
    char path[512], cut[520];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", tmpdir);
    size_t n;
    char *data = uf_file_read(path, &n);
    if (data) {
        CHECK(uf_file_write_atomic(cut, data, n - 3) == 0);
        struct uf_safetensors st;
        CHECK(uf_safetensors_open(&st, cut) != 0);
        CHECK(strstr(uf_error(), "cut.safetensors") && strstr(uf_error(), "truncated"));
        free(data);
    }
}

static void test_sharded(void) {
    char dir[300], p1[400], p2[400], idx[400];
    snprintf(dir, sizeof dir, "%s/sharded", tmpdir);
    uf_mkdir_p(dir);
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    float a[2] = {1, 2}, b[3] = {3, 4, 5};
    struct uf_st_write_tensor ta = {.name = "x.a", .dtype = UF_ST_F32, .ndim = 1, .shape = {2}, .data = a};
    struct uf_st_write_tensor tb = {.name = "x.b", .dtype = UF_ST_F32, .ndim = 1, .shape = {3}, .data = b};
    CHECK(uf_safetensors_write(p1, &ta, 1, NULL, 0) == 0);
    CHECK(uf_safetensors_write(p2, &tb, 1, NULL, 0) == 0);
    const char *j = "{\"metadata\":{\"total_size\":20},\"weight_map\":{"
                    "\"x.a\":\"model-00001-of-00002.safetensors\","
                    "\"x.b\":\"model-00002-of-00002.safetensors\"}}";
    CHECK(uf_file_write_atomic(idx, j, strlen(j)) == 0);
    struct uf_st_model m;
    int rc = uf_st_model_open(&m, dir);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(m.n_files, 2);
        float x[3];
        CHECK(uf_st_model_read_f32(&m, "x.b", x, 3) == 0);
        CHECK(x[0] == 3 && x[2] == 5);
        CHECK(uf_st_model_read_f32(&m, "x.a", x, 2) == 0);
        CHECK(x[1] == 2);
        CHECK(uf_st_model_read_f32(&m, "x.c", x, 2) != 0);
        CHECK(strstr(uf_error(), "x.c"));
        uf_st_model_free(&m);
    }
    /* the index points a tensor at the wrong shard */
    const char *bad = "{\"weight_map\":{\"x.a\":\"model-00002-of-00002.safetensors\"}}";
    CHECK(uf_file_write_atomic(idx, bad, strlen(bad)) == 0);
    CHECK(uf_st_model_open(&m, idx) != 0);
    CHECK(strstr(uf_error(), "x.a") && strstr(uf_error(), "model-00002-of-00002"));
    const char *missing = "{\"weight_map\":{\"x.a\":\"model-00009.safetensors\"}}";
    CHECK(uf_file_write_atomic(idx, missing, strlen(missing)) == 0);
    CHECK(uf_st_model_open(&m, idx) != 0);
    CHECK(strstr(uf_error(), "model-00009.safetensors"));
    /* a single file opens through the same call */
    CHECK(uf_st_model_open(&m, p1) == 0);
    CHECK_EQ_INT(m.n_files, 1);
    uf_st_model_free(&m);
}

int main(void) {
    make_tmpdir();
    UF_RUN(test_half_conversions);
    UF_RUN(test_write_read_roundtrip);
    UF_RUN(test_python_written);
    UF_RUN(test_malformed);
    UF_RUN(test_sharded);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return uf_test_summary();
}
