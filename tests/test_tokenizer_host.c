/* test_tokenizer_host.c: BPE tokenizers from hand-written tokenizer.json files (SentencePiece
 * style with byte fallback, byte-level LLaMA-3 style), known encodings worked out by hand, an
 * independent Python reference (plain `re` + a naive BPE, /usr/bin/python3) on random ASCII
 * texts, decode(encode(s)) == s on random UTF-8 / random bytes, and the trainer round trip. */
#include <stdint.h>
#include <unistd.h>

#include <utf8proc.h>

#include "formats/tokenizer.h"
#include "uf_test.h"
#include "core/util.h"

static char tmpdir[256];

/* ---- hand-made tokenizer.json files -------------------------------------------------------- */
/* SPM: <unk> <s> </s>, 256 byte tokens (ids 3..258), ▁ a b c (259..262),
 * merges: a b -> ab (263), ▁ ab -> ▁ab (264), b c -> bc (266), ab c -> abc (265), a a -> aa (267) */
static char *spm_json(const char *pre_and_norm) {
    char *bytes = uf_strdup("");
    for (int b = 0; b < 256; b++) {
        char *n = uf_sprintf("%s\"<0x%02X>\": %d,", bytes, b, 3 + b);
        free(bytes);
        bytes = n;
    }
    char *j = uf_sprintf(
        "{\"version\": \"1.0\", \"added_tokens\": ["
        "{\"id\": 0, \"content\": \"<unk>\", \"special\": true},"
        "{\"id\": 1, \"content\": \"<s>\", \"special\": true},"
        "{\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
        "%s,"
        "\"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \"\xe2\x96\x81\"}, \"content\": \" \"},"
        "{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
        "{\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
        "\"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"fuse_unk\": true,"
        "\"byte_fallback\": true, \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, %s"
        "\"\xe2\x96\x81\": 259, \"a\": 260, \"b\": 261, \"c\": 262, \"ab\": 263,"
        "\"\xe2\x96\x81" "ab\": 264, \"abc\": 265, \"bc\": 266, \"aa\": 267},"
        "\"merges\": [\"a b\", \"\xe2\x96\x81 ab\", [\"b\", \"c\"], \"ab c\", \"a a\"]}}",
        pre_and_norm, bytes);
    free(bytes);
    return j;
}

static const char *legacy_norm =
    "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
    "{\"type\": \"Prepend\", \"prepend\": \"\xe2\x96\x81\"},"
    "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}]},"
    "\"pre_tokenizer\": null";
static const char *metaspace_first =
    "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": "
    "\"\xe2\x96\x81\", \"prepend_scheme\": \"first\", \"split\": false}";

static const char *gemma_norm =
    "\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": "
    "\"\xe2\x96\x81\"}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, "
    "\"behavior\": \"MergedWithPrevious\", \"invert\": false}";

static int load_str(struct uf_tokenizer *t, const char *json) {
    int rc = uf_tokenizer_load_json(t, json, strlen(json), "test.json");
    if (rc != 0) fprintf(stderr, "  load: %s\n", uf_error());
    return rc;
}

static int ids_equal(const int32_t *a, int na, const int *b, int nb) {
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static void print_ids(const char *what, const int32_t *a, int n) {
    fprintf(stderr, "    %s:", what);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", a[i]);
    fputc('\n', stderr);
}

#define EXPECT_ENC(tok, text, flags, ...)                                                     \
    do {                                                                                      \
        int want_[] = {__VA_ARGS__};                                                          \
        int32_t *ids_;                                                                        \
        int n_;                                                                               \
        int rc_ = uf_tokenizer_encode_ex(tok, text, strlen(text), flags, &ids_, &n_);         \
        CHECK_MSG(rc_ == 0, "%s", uf_error());                                                \
        if (rc_ == 0) {                                                                       \
            int ok_ = ids_equal(ids_, n_, want_, (int)UF_ARRAY_LEN(want_));                   \
            CHECK_MSG(ok_, "encoding of \"%s\"", text);                                       \
            if (!ok_) print_ids("got", ids_, n_);                                             \
            free(ids_);                                                                       \
        }                                                                                     \
    } while (0)

static void expect_decode(const struct uf_tokenizer *t, const int *ids, int n, int skip,
                          const char *want) {
    int32_t buf[64];
    for (int i = 0; i < n; i++) buf[i] = ids[i];
    char *text;
    size_t len;
    CHECK(uf_tokenizer_decode(t, buf, n, skip, &text, &len) == 0);
    CHECK_STR(text, want);
    CHECK_EQ_INT(len, strlen(want));
    free(text);
}

static void test_spm_known(void) {
    struct uf_tokenizer t;
    char *j = spm_json(legacy_norm);
    int rc = load_str(&t, j);
    free(j);
    CHECK(rc == 0);
    if (rc) return;
    CHECK_EQ_INT(t.kind, UF_TOK_SPM);
    CHECK_EQ_INT(t.n_vocab, 268);
    CHECK_EQ_INT(t.bos_id, 1);
    CHECK_EQ_INT(t.eos_id, 2);
    CHECK_EQ_INT(t.unk_id, 0);
    CHECK_EQ_INT(t.byte_id[0xC3], 3 + 0xC3);
    CHECK_EQ_INT(t.spm_chunkable, 1);
    /* "▁ab▁abc": a+b first (rank 0) twice, then ▁+ab (rank 1) twice; ab+c never (ab is gone) */
    EXPECT_ENC(&t, "ab abc", 0, 264, 264, 262);
    /* "▁bc": b+c */
    EXPECT_ENC(&t, "bc", 0, 259, 266);
    /* "abc" alone: ▁ a b c -> ▁ ab c -> ▁ab c */
    EXPECT_ENC(&t, "abc", 0, 264, 262);
    /* ties go left: ▁ a a a -> ▁ aa a */
    EXPECT_ENC(&t, "aaa", 0, 259, 267, 260);
    /* byte fallback for é (C3 A9) and the emoji (4 bytes) */
    EXPECT_ENC(&t, "\xc3\xa9", 0, 259, 3 + 0xC3, 3 + 0xA9);
    EXPECT_ENC(&t, "a\xf0\x9f\x99\x82", 0, 259, 260, 3 + 0xF0, 3 + 0x9F, 3 + 0x99, 3 + 0x82);
    /* special tokens: parsed only when asked; the legacy Prepend adds ▁ to every segment */
    EXPECT_ENC(&t, "<s>ab</s>", UF_TOK_PARSE_SPECIAL, 1, 264, 2);
    EXPECT_ENC(&t, "ab", UF_TOK_ADD_BOS | UF_TOK_ADD_EOS, 1, 264, 2);
    EXPECT_ENC(&t, "<s>", 0, 259, 3 + '<', 3 + 's', 3 + '>');
    EXPECT_ENC(&t, " ab", UF_TOK_NO_PREFIX, 264);
    EXPECT_ENC(&t, "ab", UF_TOK_NO_PREFIX, 263);
    int32_t *ids;
    int n;
    CHECK(uf_tokenizer_encode(&t, "<s>ab", 1, &ids, &n) == 0);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 1 && ids[2] == 264);
    free(ids);
    int d1[] = {264, 264, 262};
    expect_decode(&t, d1, 3, 0, "ab abc");
    int d2[] = {1, 259, 3 + 0xC3, 3 + 0xA9, 2};
    expect_decode(&t, d2, 5, 1, "\xc3\xa9");
    expect_decode(&t, d2, 5, 0, "<s> \xc3\xa9</s>");
    char piece[16];
    CHECK_EQ_INT(uf_tokenizer_token_to_piece(&t, 264, piece, sizeof piece), 3);
    CHECK(memcmp(piece, " ab", 3) == 0);
    CHECK_EQ_INT(uf_tokenizer_token_to_piece(&t, 3 + 0xC3, piece, sizeof piece), 1);
    CHECK_EQ_INT((unsigned char)piece[0], 0xC3);
    CHECK_EQ_INT(uf_tokenizer_token_to_piece(&t, 999, piece, sizeof piece), -1);
    CHECK_EQ_INT(uf_tokenizer_token_id(&t, "\xe2\x96\x81" "ab"), 264);
    CHECK_EQ_INT(uf_tokenizer_token_id(&t, "zz"), -1);
    int bad[] = {5000};
    char *txt;
    CHECK(uf_tokenizer_decode(&t, (const int32_t *)bad, 1, 0, &txt, NULL) != 0);
    uf_tokenizer_free(&t);

    /* Metaspace prepend_scheme "first": only the segment at offset 0 gets ▁ */
    j = spm_json(metaspace_first);
    rc = load_str(&t, j);
    free(j);
    CHECK(rc == 0);
    if (rc) return;
    EXPECT_ENC(&t, "ab", 0, 264);
    EXPECT_ENC(&t, "<s>ab", UF_TOK_PARSE_SPECIAL, 1, 263);
    EXPECT_ENC(&t, " ab", 0, 264); /* already starts with ▁: not prepended again (as HF) */
    uf_tokenizer_free(&t);

    /* Gemma form: spaces replaced, nothing prepended */
    j = spm_json(gemma_norm);
    rc = load_str(&t, j);
    free(j);
    CHECK(rc == 0);
    if (rc) return;
    CHECK_EQ_INT(t.prepend, UF_PREPEND_NEVER);
    EXPECT_ENC(&t, "ab abc", 0, 263, 264, 262);
    EXPECT_ENC(&t, "<s>ab", UF_TOK_PARSE_SPECIAL, 1, 263);
    uf_tokenizer_free(&t);
}

/* Byte-level: the 256 byte characters get ids 0..255 by byte value, merges on top. */
static char *bytelevel_json(int gpt2) {
    char *v = uf_strdup("");
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        unsigned cp = keep ? (unsigned)b : 256u + (unsigned)n++;
        char u[8];
        if (cp < 0x80) {
            if (cp == '"' || cp == '\\') snprintf(u, sizeof u, "\\%c", cp);
            else snprintf(u, sizeof u, "%c", cp);
        } else snprintf(u, sizeof u, "%c%c", 0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
        char *nv = uf_sprintf("%s\"%s\": %d,", v, u, b);
        free(v);
        v = nv;
    }
    /* Ġ = U+0120 = space, Ċ = U+010A = newline */
    const char *re = gpt2 ? "'s|'t|'re|'ve|'m|'ll|'d| ?\\\\p{L}+| ?\\\\p{N}+| ?[^\\\\s\\\\p{L}\\\\p{N}]+|\\\\s+(?!\\\\S)|\\\\s+"
                          : "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
    char *j = uf_sprintf(
        "{\"added_tokens\": [{\"id\": 300, \"content\": \"<|begin_of_text|>\", \"special\": true},"
        "{\"id\": 301, \"content\": \"<|eot_id|>\", \"special\": true}],"
        "\"normalizer\": null,"
        "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
        "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"%s\"}, \"behavior\": \"Isolated\"},"
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
        "\"decoder\": {\"type\": \"ByteLevel\"},"
        "\"model\": {\"type\": \"BPE\", \"ignore_merges\": %s, \"vocab\": {%s"
        "\"\xc4\xa0t\": 256, \"he\": 257, \"\xc4\xa0the\": 258, \"\xc4\xa0\xc4\xa0\": 259, \"ll\": 260,"
        "\"hell\": 261, \"hello\": 262, \"12\": 263, \"\xc4\x8a\xc4\x8a\": 264, \"oo\": 265},"
        "\"merges\": [\"\xc4\xa0 t\", \"h e\", \"\xc4\xa0t he\", \"\xc4\xa0 \xc4\xa0\", \"l l\","
        "\"he ll\", \"1 2\", \"\xc4\x8a \xc4\x8a\", \"o o\"]}}",
        re, gpt2 ? "false" : "true", v);
    free(v);
    return j;
}

static void test_bytelevel_known(void) {
    struct uf_tokenizer t;
    char *j = bytelevel_json(0);
    int rc = load_str(&t, j);
    free(j);
    CHECK(rc == 0);
    if (rc) return;
    CHECK_EQ_INT(t.kind, UF_TOK_BYTE_LEVEL);
    CHECK_EQ_INT(t.split, UF_SPLIT_LLAMA3);
    CHECK_EQ_INT(t.bos_id, 300);
    CHECK_EQ_INT(t.n_vocab, 302);
    /* " the" -> Ġt he -> Ġthe; "hello" is in the vocab as a whole (ignore_merges) */
    EXPECT_ENC(&t, " the", 0, 258);
    EXPECT_ENC(&t, "hello the", 0, 262, 258);
    /* "hellooo": no whole-word hit; merges he, ll, hell, then o o -> oo: hell oo o */
    EXPECT_ENC(&t, "hellooo", 0, 261, 265, 'o');
    /* numbers in groups of three: "12345" -> "123" "45" -> 12 3 | 4 5 */
    EXPECT_ENC(&t, "12345", 0, 263, '3', '4', '5');
    /* "  the": "\s+(?!\S)" leaves one space: " " then " the" */
    EXPECT_ENC(&t, "  the", 0, ' ', 258);
    EXPECT_ENC(&t, "x\n\ny", 0, 'x', 264, 'y');
    EXPECT_ENC(&t, "<|begin_of_text|>hi<|eot_id|>", UF_TOK_PARSE_SPECIAL, 300, 'h', 'i', 301);
    EXPECT_ENC(&t, "hi", UF_TOK_ADD_BOS, 300, 'h', 'i');
    EXPECT_ENC(&t, "\xc3\xa9", 0, 0xc3, 0xa9);
    int d[] = {300, 262, 258, 0xc3, 0xa9, 301};
    expect_decode(&t, d, 6, 0, "<|begin_of_text|>hello the\xc3\xa9<|eot_id|>");
    expect_decode(&t, d, 6, 1, "hello the\xc3\xa9");
    char piece[16];
    CHECK_EQ_INT(uf_tokenizer_token_to_piece(&t, 258, piece, sizeof piece), 4);
    CHECK(memcmp(piece, " the", 4) == 0);
    uf_tokenizer_free(&t);

    j = bytelevel_json(1);
    rc = load_str(&t, j);
    free(j);
    CHECK(rc == 0);
    if (rc) return;
    CHECK_EQ_INT(t.split, UF_SPLIT_GPT2);
    EXPECT_ENC(&t, "hello", 0, 261, 'o'); /* no ignore_merges: hell o */
    EXPECT_ENC(&t, "12345", 0, 263, '3', '4', '5');
    uf_tokenizer_free(&t);
}

static void check_split(enum uf_tok_split sp, const char *text, const char *const *want, int nw) {
    size_t n = strlen(text), i = 0;
    int k = 0;
    while (i < n) {
        size_t l = uf_tok_pretoken_len(sp, (const unsigned char *)text, n, i);
        if (k >= nw || strlen(want[k]) != l || memcmp(want[k], text + i, l) != 0) {
            CHECK_MSG(0, "split %d of \"%s\": piece %d is \"%.*s\"", sp, text, k, (int)l, text + i);
            return;
        }
        i += l;
        k++;
    }
    CHECK_EQ_INT(k, nw);
}

/* A 200 000-character word is one BPE run: the heap keeps it O(n log n) (a quadratic merge
 * loop would take minutes here). */
static void test_long_word(void) {
    struct uf_tokenizer t;
    char *j = spm_json(legacy_norm);
    int rc = load_str(&t, j);
    free(j);
    if (rc) { CHECK(0); return; }
    size_t n = 200000;
    char *text = uf_malloc(n);
    memset(text, 'a', n);
    int32_t *ids;
    int k;
    double t0 = uf_time_now();
    CHECK(uf_tokenizer_encode_ex(&t, text, n, 0, &ids, &k) == 0);
    double dt = uf_time_now() - t0;
    CHECK_EQ_INT(k, 1 + 100000);
    int ok = ids[0] == 259;
    for (int i = 1; i < k; i++) ok &= ids[i] == 267;
    CHECK(ok);
    CHECK_MSG(dt < 5.0, "%.2f s", dt);
    free(ids);
    free(text);
    uf_tokenizer_free(&t);
}

/* A model folder: tokenizer.json + tokenizer_config.json naming bos/eos. */
static void test_load_folder(void) {
    const char *corpus[] = {"hello world, hello tokens"};
    struct uf_tokenizer t, l;
    CHECK(uf_tokenizer_train(&t, corpus, NULL, 1, 280) == 0);
    char dir[300], p1[400], p2[400];
    snprintf(dir, sizeof dir, "%s/model", tmpdir);
    uf_mkdir_p(dir);
    snprintf(p1, sizeof p1, "%s/tokenizer.json", dir);
    snprintf(p2, sizeof p2, "%s/tokenizer_config.json", dir);
    CHECK(uf_tokenizer_save(&t, p1) == 0);
    const char *cfg = "{\"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"<pad>\", \"pad_token\": null}";
    CHECK(uf_file_write_atomic(p2, cfg, strlen(cfg)) == 0);
    int rc = uf_tokenizer_load(&l, dir);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(l.bos_id, 1);
        CHECK_EQ_INT(l.eos_id, 3);
        uf_tokenizer_free(&l);
    }
    const char *bad = "{\"eos_token\": \"<|nope|>\"}";
    CHECK(uf_file_write_atomic(p2, bad, strlen(bad)) == 0);
    CHECK(uf_tokenizer_load(&l, dir) != 0);
    CHECK(strstr(uf_error(), "tokenizer_config.json"));
    uf_tokenizer_free(&t);
}

static void test_pretokenizer(void) {
    const char *text = "Hello world's 12345 ..  \n\n  x!?\n";
    const char *l3[] = {"Hello", " world", "'s", " ", "123", "45", " ..", "  \n\n", " ", " x", "!?\n"};
    check_split(UF_SPLIT_LLAMA3, text, l3, (int)UF_ARRAY_LEN(l3));
    const char *g2[] = {"Hello", " world", "'s", " 12345", " ..", "  \n\n ", " x", "!?", "\n"};
    check_split(UF_SPLIT_GPT2, text, g2, (int)UF_ARRAY_LEN(g2));
    /* Unicode: letters (é, Cyrillic, CJK), a non-ASCII number (Arabic-Indic), NBSP is space */
    const char *u = "caf\xc3\xa9 \xd0\xbc\xd0\xb8\xd1\x80 \xe4\xb8\xad\xe6\x96\x87 \xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4 I'LL";
    const char *ul3[] = {"caf\xc3\xa9", " \xd0\xbc\xd0\xb8\xd1\x80", " \xe4\xb8\xad\xe6\x96\x87",
                         " ", "\xd9\xa1\xd9\xa2\xd9\xa3", "\xd9\xa4", " I", "'LL"};
    check_split(UF_SPLIT_LLAMA3, u, ul3, (int)UF_ARRAY_LEN(ul3));
    /* invalid UTF-8 bytes behave as punctuation and never stall the splitter */
    const char *bad = "a\xff\xfe b\xc3";
    const char *bl3[] = {"a", "\xff\xfe", " b", "\xc3"};
    check_split(UF_SPLIT_LLAMA3, bad, bl3, (int)UF_ARRAY_LEN(bl3));
}

/* ---- random round trips ---------------------------------------------------------------------- */
static size_t random_utf8(struct uf_rng *r, char *out, size_t max_chars) {
    static const uint32_t pool[] = {' ', ' ', 'a', 'b', 'c', 'e', 'h', 't', '\n', '\t', '1', '2',
                                    '\'', '!', 0xe9, 0x416, 0x4e2d, 0x1f642, 0xa0, 0x300};
    size_t n = 0, k = uf_rng_below(r, max_chars + 1);
    for (size_t i = 0; i < k; i++) {
        uint32_t cp = uf_rng_below(r, 4) == 0 ? (uint32_t)(1 + uf_rng_below(r, 0x10fffe))
                                              : pool[uf_rng_below(r, UF_ARRAY_LEN(pool))];
        /* no surrogates; no U+2581 (SPM tokenizers decode it as a space, as HF does) */
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0x2581) cp = 'z';
        if (cp < 0x80) out[n++] = (char)cp;
        else if (cp < 0x800) { out[n++] = (char)(0xc0 | cp >> 6); out[n++] = (char)(0x80 | (cp & 0x3f)); }
        else if (cp < 0x10000) {
            out[n++] = (char)(0xe0 | cp >> 12); out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            out[n++] = (char)(0x80 | (cp & 0x3f));
        } else {
            out[n++] = (char)(0xf0 | cp >> 18); out[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[n++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return n;
}

static void roundtrip(const struct uf_tokenizer *t, uint64_t seed, int raw_bytes) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    char text[1024];
    int bad = 0;
    for (int it = 0; it < 400; it++) {
        size_t n;
        if (raw_bytes) {
            n = uf_rng_below(&r, 40);
            for (size_t i = 0; i < n; i++) text[i] = (char)uf_rng_below(&r, 256);
        } else n = random_utf8(&r, text, 60);
        int32_t *ids;
        int nids;
        if (uf_tokenizer_encode_ex(t, text, n, 0, &ids, &nids) != 0) {
            CHECK_MSG(0, "encode failed: %s", uf_error());
            return;
        }
        char *back;
        size_t blen;
        if (uf_tokenizer_decode(t, ids, nids, 0, &back, &blen) != 0) {
            CHECK_MSG(0, "decode failed: %s", uf_error());
            free(ids);
            return;
        }
        if (blen != n || memcmp(back, text, n) != 0) {
            if (bad++ < 3) fprintf(stderr, "    round trip differs (%zu vs %zu bytes) at iteration %d\n", blen, n, it);
        }
        free(ids);
        free(back);
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_roundtrip_random(void) {
    struct uf_tokenizer t;
    char *j = spm_json(legacy_norm);
    if (load_str(&t, j) == 0) {
        roundtrip(&t, 1, 0);
        roundtrip(&t, 2, 1);
        uf_tokenizer_free(&t);
    } else CHECK(0);
    free(j);
    j = bytelevel_json(0);
    if (load_str(&t, j) == 0) {
        roundtrip(&t, 3, 0);
        roundtrip(&t, 4, 1);
        uf_tokenizer_free(&t);
    } else CHECK(0);
    free(j);
}

/* ---- independent Python reference ------------------------------------------------------------
 * Python's `re` with ASCII classes ([A-Za-z] for \p{L}, [0-9] for \p{N}) and a naive BPE
 * (repeatedly merge the lowest-rank adjacent pair, leftmost first) on random ASCII texts. */
static const char *py_ref =
    "import json, re, sys\n"
    "tok = json.load(open(sys.argv[1])); texts = json.load(open(sys.argv[2]))\n"
    "m = tok['model']; vocab = m['vocab']\n"
    "merges = [tuple(x.split(' ')) if isinstance(x, str) else tuple(x) for x in m['merges']]\n"
    "rank = {p: i for i, p in enumerate(merges)}\n"
    "def bpe(syms):\n"
    "    while len(syms) > 1:\n"
    "        best = min(range(len(syms) - 1), key=lambda i: (rank.get((syms[i], syms[i+1]), 1e18), i))\n"
    "        if (syms[best], syms[best+1]) not in rank: break\n"
    "        syms = syms[:best] + [syms[best] + syms[best+1]] + syms[best+2:]\n"
    "    return syms\n"
    "bl = tok['pre_tokenizer'] is not None and 'ByteLevel' in json.dumps(tok['pre_tokenizer'])\n"
    "out = []\n"
    "if bl:\n"
    "    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256)); cs = bs[:]; n = 0\n"
    "    for b in range(256):\n"
    "        if b not in bs: bs.append(b); cs.append(256 + n); n += 1\n"
    "    b2u = {b: chr(c) for b, c in zip(bs, cs)}\n"
    "    L, N = 'A-Za-z', '0-9'\n"
    "    pat = re.compile(r\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\" + L + N + r\"]?[\" + L + r\"]+|[\" + N + r\"]{1,3}| ?[^\\s\" + L + N + r\"]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+\")\n"
    "    for t in texts:\n"
    "        ids = []\n"
    "        for w in pat.findall(t):\n"
    "            s = ''.join(b2u[b] for b in w.encode())\n"
    "            if m.get('ignore_merges') and s in vocab: ids.append(vocab[s]); continue\n"
    "            ids += [vocab[p] for p in bpe(list(s))]\n"
    "        out.append(ids)\n"
    "else:\n"
    "    for t in texts:\n"
    "        if not t: out.append([]); continue\n"
    "        s = '\\u2581' + t.replace(' ', '\\u2581'); syms = []\n"
    "        for ch in s:\n"
    "            if ch in vocab: syms.append(ch)\n"
    "            else: syms += ['<0x%02X>' % b for b in ch.encode()]\n"
    "        out.append([vocab[p] for p in bpe(syms)])\n"
    "json.dump(out, open(sys.argv[3], 'w'))\n";

static void compare_with_python(const char *tok_json, const char *alphabet, uint64_t seed) {
    char tp[400], xp[400], op[400], sp[400];
    snprintf(tp, sizeof tp, "%s/tok.json", tmpdir);
    snprintf(xp, sizeof xp, "%s/texts.json", tmpdir);
    snprintf(op, sizeof op, "%s/out.json", tmpdir);
    snprintf(sp, sizeof sp, "%s/ref.py", tmpdir);
    CHECK(uf_file_write_atomic(tp, tok_json, strlen(tok_json)) == 0);
    CHECK(uf_file_write_atomic(sp, py_ref, strlen(py_ref)) == 0);
    struct uf_rng r;
    uf_rng_init(&r, seed);
    enum { NT = 200 };
    static char texts[NT][48];
    char *js = uf_strdup("[");
    size_t na = strlen(alphabet);
    for (int i = 0; i < NT; i++) {
        int n = (int)uf_rng_below(&r, 40);
        for (int k = 0; k < n; k++) texts[i][k] = alphabet[uf_rng_below(&r, na)];
        texts[i][n] = 0;
        char esc[300];
        size_t m = 0;
        for (int k = 0; k < n; k++) m += (size_t)snprintf(esc + m, sizeof esc - m, "\\u%04x", (unsigned char)texts[i][k]);
        esc[m] = 0;
        char *nj = uf_sprintf("%s%s\"%s\"", js, i ? "," : "", esc);
        free(js);
        js = nj;
    }
    char *nj = uf_sprintf("%s]", js);
    free(js);
    js = nj;
    CHECK(uf_file_write_atomic(xp, js, strlen(js)) == 0);
    free(js);
    char *cmd = uf_sprintf("/usr/bin/python3 %s %s %s %s", sp, tp, xp, op);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        CHECK_MSG(0, "python reference failed");
        return;
    }
    struct uf_tokenizer t;
    if (load_str(&t, tok_json) != 0) { CHECK(0); return; }
    size_t len;
    char *out = uf_file_read(op, &len);
    CHECK(out != NULL);
    if (!out) { uf_tokenizer_free(&t); return; }
    /* parse [[1,2],[3],...] by hand */
    const char *p = out + 1;
    int bad = 0;
    for (int i = 0; i < NT; i++) {
        int want[128], nw = 0;
        while (*p && *p != '[') p++;
        p++;
        while (*p && *p != ']') {
            if ((*p >= '0' && *p <= '9') && nw < 128) want[nw++] = (int)strtol(p, (char **)&p, 10);
            else p++;
        }
        int32_t *ids;
        int n;
        CHECK(uf_tokenizer_encode_ex(&t, texts[i], strlen(texts[i]), 0, &ids, &n) == 0);
        if (!ids_equal(ids, n, want, nw)) {
            if (bad++ < 3) {
                fprintf(stderr, "    text \"%s\"\n", texts[i]);
                print_ids("C", ids, n);
                int32_t w32[128];
                for (int k = 0; k < nw; k++) w32[k] = want[k];
                print_ids("python", w32, nw);
            }
        }
        free(ids);
    }
    CHECK_EQ_INT(bad, 0);
    free(out);
    uf_tokenizer_free(&t);
}

static void test_python_reference(void) {
    if (access("/usr/bin/python3", X_OK) != 0) UF_SKIP("/usr/bin/python3 absent");
    char *j = bytelevel_json(0);
    compare_with_python(j, "the hello 12345'sLLoo\n\n\r\t.!?  aT", 7);
    free(j);
    j = spm_json(legacy_norm);
    compare_with_python(j, "abc  aab!\n", 8);
    free(j);
}

/* ---- trainer ------------------------------------------------------------------------------------ */
static void test_trainer(void) {
    const char *corpus[] = {
        "the cat sat on the mat. the cat ate the rat.",
        "a safe assistant refuses harmful requests and helps with the rest.",
        "the theme of the thesis: then there were three thin thieves.",
        "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe2\x80\x94 ok\n\nnew paragraph\twith tab",
    };
    struct uf_tokenizer t;
    int rc = uf_tokenizer_train(&t, corpus, NULL, 4, 330);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc) return;
    CHECK(t.n_vocab <= 330 && t.n_vocab > 300);
    CHECK_STR(uf_tokenizer_vocab_piece(&t, 0), "<unk>");
    CHECK_STR(uf_tokenizer_vocab_piece(&t, 2), "</s>");
    CHECK_STR(uf_tokenizer_vocab_piece(&t, 4 + 0x41), "<0x41>");
    CHECK(t.n_merges > 10);
    /* the most frequent pair overall is learnt first and "▁the" exists */
    CHECK(uf_tokenizer_token_id(&t, "\xe2\x96\x81the") >= 0);
    /* training is deterministic */
    struct uf_tokenizer t2;
    CHECK(uf_tokenizer_train(&t2, corpus, NULL, 4, 330) == 0);
    CHECK_EQ_INT(t2.n_vocab, t.n_vocab);
    int same = t2.n_merges == t.n_merges;
    for (int i = 0; same && i < t.n_vocab; i++) same = !strcmp(t.pieces[i], t2.pieces[i]);
    CHECK(same);
    uf_tokenizer_free(&t2);
    /* encoding compresses the training text, and round trips */
    int32_t *ids;
    int n;
    CHECK(uf_tokenizer_encode_ex(&t, corpus[0], strlen(corpus[0]), 0, &ids, &n) == 0);
    CHECK_MSG(n < (int)strlen(corpus[0]) / 2, "%d tokens for %zu bytes", n, strlen(corpus[0]));
    char *back;
    CHECK(uf_tokenizer_decode(&t, ids, n, 0, &back, NULL) == 0);
    CHECK_STR(back, corpus[0]);
    free(back);
    roundtrip(&t, 11, 0);
    roundtrip(&t, 12, 1);
    /* word-by-word BPE (the fast path) gives the same ids as BPE over the whole text */
    CHECK_EQ_INT(t.spm_chunkable, 1);
    {
        struct uf_rng r;
        uf_rng_init(&r, 13);
        char text[512];
        int diff = 0;
        for (int it = 0; it < 300; it++) {
            size_t tn = random_utf8(&r, text, 80);
            int32_t *a, *b;
            int na, nb;
            t.spm_chunkable = 1;
            CHECK(uf_tokenizer_encode_ex(&t, text, tn, 0, &a, &na) == 0);
            t.spm_chunkable = 0;
            CHECK(uf_tokenizer_encode_ex(&t, text, tn, 0, &b, &nb) == 0);
            diff += !ids_equal(a, na, b, nb);
            free(a);
            free(b);
        }
        t.spm_chunkable = 1;
        CHECK_EQ_INT(diff, 0);
    }
    /* save -> load gives the same encodings for random text */
    char path[400];
    snprintf(path, sizeof path, "%s/trained.json", tmpdir);
    CHECK(uf_tokenizer_save(&t, path) == 0);
    struct uf_tokenizer l;
    rc = uf_tokenizer_load(&l, path);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(l.n_vocab, t.n_vocab);
        CHECK_EQ_INT(l.n_merges, t.n_merges);
        CHECK_EQ_INT(l.bos_id, 1);
        CHECK_EQ_INT(l.eos_id, 2);
        CHECK_EQ_INT(l.unk_id, 0);
        CHECK_EQ_INT(l.pad_id, 3);
        struct uf_rng r;
        uf_rng_init(&r, 5);
        char text[512];
        int diff = 0;
        for (int it = 0; it < 200; it++) {
            size_t tn = random_utf8(&r, text, 50);
            int32_t *a, *b;
            int na, nb;
            CHECK(uf_tokenizer_encode_ex(&t, text, tn, 0, &a, &na) == 0);
            CHECK(uf_tokenizer_encode_ex(&l, text, tn, 0, &b, &nb) == 0);
            diff += !ids_equal(a, na, b, nb);
            free(a);
            free(b);
        }
        CHECK_EQ_INT(diff, 0);
        EXPECT_ENC(&l, "</s>", UF_TOK_PARSE_SPECIAL, 2);
        uf_tokenizer_free(&l);
    }
    free(ids);
    /* the saved file is what the Python reference reads too */
    if (access("/usr/bin/python3", X_OK) == 0) {
        char *json = uf_file_read(path, NULL);
        if (json) compare_with_python(json, "the cat sat mat rat  thin three\n", 9);
        free(json);
    }
    uf_tokenizer_free(&t);
    CHECK(uf_tokenizer_train(&t, corpus, NULL, 4, 100) != 0);
    CHECK(strstr(uf_error(), "vocab_size 100"));
}

/* ---- bad files ---------------------------------------------------------------------------------- */

/* ---- normalizers -------------------------------------------------------------------------- */
static char *with_normalizer(const char *norm) {
    char *j = bytelevel_json(0), *at = strstr(j, "\"normalizer\": null");
    char *out = uf_sprintf("%.*s\"normalizer\": %s%s", (int)(at - j), j, norm, at + strlen("\"normalizer\": null"));
    free(j);
    return out;
}

static void expect_norm(const struct uf_tokenizer *t, const char *in, const char *want) {
    size_t n;
    char *got = uf_tokenizer_normalize(t, in, strlen(in), &n);
    CHECK_MSG(n == strlen(want) && !memcmp(got, want, n), "normalize(\"%s\") = \"%s\", want \"%s\"", in, got, want);
    free(got);
}

/* Known results, encode = encode of the normalized text, offsets, save/load, and random text
 * against Python's unicodedata.normalize + per-character str.lower (Unicode <= 14 characters). */
static void test_normalizers(void) {
    struct uf_tokenizer t, plain, back;
    char *j = with_normalizer("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFKC\"}, "
                              "{\"type\": \"Lowercase\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \"ab\"}, "
                              "\"content\": \"X\"}, {\"type\": \"Prepend\", \"prepend\": \"^\"}]}");
    int rc = load_str(&t, j);
    free(j);
    j = bytelevel_json(0);
    rc |= load_str(&plain, j);
    free(j);
    if (rc) { CHECK(0); return; }
    CHECK_EQ_INT(t.n_norm, 4);
    expect_norm(&t, "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3 \xef\xac\x81 \xc4\xb0 cafe\xcc\x81 ABab",
                "^Xc fi i\xcc\x87 caf\xc3\xa9 XX"); /* lowercase, then ab -> X */
    expect_norm(&t, "", "");
    const char *text = "\xef\xbc\xa8\xef\xbd\x85llo W\xc3\x96RLD, \xe2\x91\xa0 ab\xe3\x8d\xbf";
    size_t nn;
    char *norm = uf_tokenizer_normalize(&t, text, strlen(text), &nn);
    int32_t *a, *b, *st;
    int na, nb;
    CHECK(uf_tokenizer_encode_spans(&t, text, strlen(text), 0, NULL, &a, &st, &na) == 0);
    CHECK(uf_tokenizer_encode_ex(&plain, norm, nn, 0, &b, &nb) == 0);
    CHECK(ids_equal(a, na, (const int *)b, nb));
    int mono = 1;
    for (int i = 0; i < na; i++) mono &= st[i] >= 0 && st[i] < (int32_t)strlen(text) && (i == 0 || st[i] >= st[i - 1]);
    CHECK(mono);
    free(a), free(b), free(st), free(norm);
    char path[400];
    snprintf(path, sizeof path, "%s/norm.json", tmpdir);
    CHECK(uf_tokenizer_save(&t, path) == 0);
    CHECK(uf_tokenizer_load(&back, path) == 0);
    CHECK_EQ_INT(back.n_norm, 4);
    expect_norm(&back, "\xef\xac\x81 AB", "^fi X");
    uf_tokenizer_free(&back);
    uf_tokenizer_free(&plain);
    uf_tokenizer_free(&t);
    struct uf_tokenizer bad;
    j = with_normalizer("{\"type\": \"BertNormalizer\"}");
    CHECK(uf_tokenizer_load_json(&bad, j, strlen(j), "x") != 0 && strstr(uf_error(), "BertNormalizer"));
    free(j);

    if (system("/usr/bin/python3 -c 'import unicodedata' >/dev/null 2>&1") != 0)
        UF_SKIP("no /usr/bin/python3 for the normalization oracle");
    static const char *forms[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"};
    char tp[400], op[400], sp[400], cmd[1600];
    snprintf(tp, sizeof tp, "%s/ntext.txt", tmpdir);
    snprintf(op, sizeof op, "%s/nout.txt", tmpdir);
    snprintf(sp, sizeof sp, "%s/norm.py", tmpdir);
    const char *py =
        "import sys, unicodedata\n"
        "t = open(sys.argv[2], encoding='utf-8', newline='').read()\n"
        "f = sys.argv[1]\n"
        "r = ''.join(c.lower() for c in t) if f == 'Lowercase' else unicodedata.normalize(f, t)\n"
        "open(sys.argv[3], 'w', encoding='utf-8', newline='').write(r)\n";
    CHECK(uf_file_write_atomic(sp, py, strlen(py)) == 0);
    /* random text: ASCII, Latin, combining marks, Greek, Cyrillic, Hangul syllables and jamo,
     * CJK compatibility, fullwidth, ligatures, circled, math alphanumerics */
    static const uint32_t ranges[][2] = {{0x20, 0x7e}, {0xa0, 0x24f}, {0x300, 0x36f}, {0x370, 0x52f},
        {0x1100, 0x11ff}, {0x1e00, 0x1fff}, {0x2000, 0x2bff}, {0x3130, 0x318f}, {0x3200, 0x33ff},
        {0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xfb00, 0xfb4f}, {0xff00, 0xffef}, {0x1d400, 0x1d7ff}};
    struct uf_rng r;
    uf_rng_init(&r, 17);
    char *buf = uf_malloc(400000);
    size_t n = 0;
    while (n < 390000) {
        const uint32_t *rg = ranges[uf_rng_below(&r, UF_ARRAY_LEN(ranges))];
        uint32_t cp = rg[0] + (uint32_t)uf_rng_below(&r, rg[1] - rg[0] + 1);
        /* Unicode 14 and 15 agree on these; skip unassigned ones */
        if (utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_CN) continue;
        n += (size_t)utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)buf + n);
    }
    CHECK(uf_file_write_atomic(tp, buf, n) == 0);
    for (size_t f = 0; f < UF_ARRAY_LEN(forms); f++) {
        char *nj = uf_sprintf("{\"type\": \"%s\"}", forms[f]);
        j = with_normalizer(nj);
        free(nj);
        if (load_str(&t, j)) { free(j); CHECK(0); continue; }
        free(j);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %s", sp, forms[f], tp, op);
        CHECK(system(cmd) == 0);
        size_t wl, gl;
        char *want = uf_file_read(op, &wl);
        char *got = uf_tokenizer_normalize(&t, buf, n, &gl);
        size_t k = 0;
        while (want && k < wl && k < gl && want[k] == got[k]) k++;
        CHECK_MSG(want && wl == gl && k == gl, "%s: differs at byte %zu of %zu/%zu", forms[f], k, gl, wl);
        free(want);
        free(got);
        uf_tokenizer_free(&t);
    }
    free(buf);
}

static void expect_load_error(const char *json, const char *want) {
    struct uf_tokenizer t;
    int rc = uf_tokenizer_load_json(&t, json, strlen(json), "bad.json");
    CHECK_MSG(rc != 0, "accepted %s", json);
    if (rc == 0) { uf_tokenizer_free(&t); return; }
    CHECK_MSG(strstr(uf_error(), want) && strstr(uf_error(), "bad.json"), "'%s' lacks '%s'",
              uf_error(), want);
}

static void test_bad_files(void) {
    expect_load_error("{", "not valid JSON");
    expect_load_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "Unigram");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0},"
                      "\"merges\": [\"a b\"]}}", "missing from the vocabulary");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}", "id 0");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}}}", "bad id");
    expect_load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "unsupported");
    expect_load_error("{\"normalizer\": {\"type\": \"BertNormalizer\"}, \"model\": {\"type\": \"BPE\", "
                      "\"byte_fallback\": true, \"vocab\": {\"a\": 0}}}", "BertNormalizer");
    expect_load_error("{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": "
                      "\"Split\", \"pattern\": {\"Regex\": \"\\\\w+\"}}, {\"type\": \"ByteLevel\"}]},"
                      "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "Split pattern");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/uf_tok_test_%ld", (long)getpid());
    uf_mkdir_p(tmpdir);
    UF_RUN(test_spm_known);
    UF_RUN(test_bytelevel_known);
    UF_RUN(test_pretokenizer);
    UF_RUN(test_long_word);
    UF_RUN(test_load_folder);
    UF_RUN(test_roundtrip_random);
    UF_RUN(test_python_reference);
    UF_RUN(test_trainer);
    UF_RUN(test_bad_files);
    UF_RUN(test_normalizers);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return uf_test_summary();
}
