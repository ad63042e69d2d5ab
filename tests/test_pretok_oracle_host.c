/* test_pretok_oracle_host.c: the byte-level pre-tokenizer splits (LLaMA-3 and GPT-2 patterns)
 * against the tokenizer.json regexes run by an independent engine, Python's `regex` module
 * (Debian python3-regex, run with /usr/bin/python3), on
 *   1. every assigned Unicode code point (general category not Cn, surrogates excluded), each in
 *      several contexts: between letters, after a space, doubled, after digits, after an
 *      apostrophe, before newlines, before spaces;
 *   2. random strings drawn from all assigned code points plus ASCII, spaces and newlines;
 *   3. a multilingual corpus written for this test (below).
 * Zero differences are required; the first ones are printed with their code points. Skips
 * (exit 77) when python3 or its regex module is absent. Both sides use one Unicode version:
 * utf8proc 2.8 and regex 2022.10 are Unicode 15.0 (printed). */
#include <stdint.h>
#include <unistd.h>
#include <utf8proc.h>

#include "core/util.h"
#include "formats/tokenizer.h"
#include "uf_test.h"

static char tmpdir[256];

/* The Split patterns of the tokenizer.json files (LLaMA-3 / GPT-2), as JSON would unescape them. */
static const char *pattern_llama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *pattern_gpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* argv: pattern file, text file, output file. Writes the byte length of each match, one a line. */
static const char *py_split =
    "import sys, regex\n"
    "pat = regex.compile(open(sys.argv[1], encoding='utf-8').read())\n"
    "text = open(sys.argv[2], encoding='utf-8', newline='').read()\n"
    "with open(sys.argv[3], 'w') as f:\n"
    "    f.write('\\n'.join(str(len(m.encode('utf-8'))) for m in pat.findall(text)))\n"
    "    f.write('\\n')\n";

static const char *corpus[] = {
    "Hello, world! It's 2024; we're testing 12345 numbers and 3.14159 pi.",
    "यह एक परीक्षण है। हमें यह प्राप्त है। नमस्ते दुनिया\n\nदूसरी पंक्ति",
    "বাংলা ভাষা একটি সুন্দর ভাষা। ১২৩৪৫ সংখ্যা",
    "தமிழ் மொழி மிகவும் பழமையானது. ௧௨௩",
    "ಕನ್ನಡ ಭಾಷೆ ೧೨೩ ತೆಲುಗు భాష ౧౨౩ മലയാളം ൧൨൩",
    "ગુજરાતી ભાષા ૧૨૩ ਪੰਜਾਬੀ ਭਾਸ਼ਾ ੧੨੩ ଓଡ଼ିଆ ୧୨୩",
    "සිංහල භාෂාව ෧෨෩ ලංකාව",
    "አማርኛ ቋንቋ ፩፪፫ ፲፳ ኢትዮጵያ።",
    "العربية لغة جميلة، ١٢٣٤٥ و ۱۲۳۴۵. مَرْحَبًا بِكُمْ!",
    "עִבְרִית שפה יפה: שָׁלוֹם עוֹלָם.",
    "ภาษาไทยเป็นภาษาที่สวยงาม ๑๒๓ ครับ",
    "ພາສາລາວ ໑໒໓ ဗမာစာ ၁၂၃ ខ្មែរ ១២៣ བོད་ཡིག ༡༢༣",
    "中文测试：你好，世界！第１２３号。日本語のテスト、カタカナとひらがな。한국어 테스트입니다.",
    "Ελληνικά: Καλημέρα κόσμε; Русский: Привет, мир! Українська: Ґґ Єє Її.",
    "Tiếng Việt có dấu: Xin chào thế giới. Türkçe: İstanbul ıIiİ. Deutsch: Straße ẞ.",
    "Combining: e\xcc\x81 a\xcc\x8a n\xcc\x83 \xcc\x81" "alone Z\xcd\x91\xcd\x9b\xcc\xbe" "algo.",
    "Emoji 😀👍🏽🇩🇪👨‍👩‍👧 ❤️ ✨ ©®™ ½ ¾ ² ³ ⅓ Ⅻ ① ⑳ 🄀",
    "Math: ∑_{i=1}^{n} x_i² ≤ ∫₀¹ f(x)dx; ∀ε>0 ∃δ. 𝟘𝟙𝟚 𝐀𝐁𝐂",
    "Code:\n\tfor (int i = 0; i < n; ++i) {\r\n\t\tsum += a[i]; // don't\n\t}\n\n\n",
    "Spaces:   three\u00a0nbsp\u2003em\u3000ideo \u200bzw \ufeffbom  \n \n  end   ",
    "Contractions: I'M YOU'RE we'LL they'D it'S don'T 'ſ 'ＳＨＥ'S",
    "Mixed123abc 456def7890 ١٢٣abc x²y³ 12½ ⅫⅣ 〇一二三",
    "Private use \xee\x80\x80\xef\xa3\xbf and tags \xf3\xa0\x80\x81\xf3\xa0\x81\xa1 and VS \xef\xb8\x8f",
    "Mongolian ᠮᠣᠩᠭᠣᠯ ᠑᠒᠓ Tibetan ༠༡ Javanese ꦗꦮ ꧑꧒ Balinese ᬩᬮᬶ ᭑᭒",
    "Cherokee ᏣᎳᎩ Runic ᚠᚢᚦ Ogham ᚁᚂ Gothic 𐌰𐌱 Linear B 𐀀𐀁 Cuneiform 𒀀𒀁 Egyptian 𓀀𓀁",
};

struct tbuf { char *data; size_t len, cap; };

static void tbuf_put(struct tbuf *b, const void *s, size_t n) {
    if (b->len + n > b->cap) b->data = uf_realloc(b->data, b->cap = (b->len + n) * 2 + 4096);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* code point -> UTF-8 appended to b */
static void put_cp(struct tbuf *b, uint32_t cp) {
    uint8_t u[4];
    utf8proc_ssize_t l = utf8proc_encode_char((utf8proc_int32_t)cp, u);
    tbuf_put(b, u, (size_t)l);
}

static void put_str(struct tbuf *b, const char *s) { tbuf_put(b, s, strlen(s)); }

static int assigned(uint32_t cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    return utf8proc_category((utf8proc_int32_t)cp) != UTF8PROC_CATEGORY_CN;
}

/* text with every assigned code point in several contexts */
static void build_all_codepoints(struct tbuf *b) {
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        if (!assigned(cp) || cp == 0) continue;
        put_str(b, "a");
        put_cp(b, cp);
        put_str(b, "b ");
        put_cp(b, cp);
        put_cp(b, cp);
        put_str(b, "12");
        put_cp(b, cp);
        put_str(b, "'");
        put_cp(b, cp);
        put_str(b, " ");
        put_cp(b, cp);
        put_str(b, "\n\n");
        put_cp(b, cp);
        put_str(b, "  x.");
    }
}

static void build_random(struct tbuf *b, uint64_t seed, int n_chars) {
    struct uf_rng r;
    uf_rng_init(&r, seed);
    static const char *ascii = "aZ09 '\n\r\t.,!-_sStTdDlLrReEvVmM";
    for (int i = 0; i < n_chars; i++) {
        uint64_t k = uf_rng_below(&r, 10);
        if (k < 4) {
            char c = ascii[uf_rng_below(&r, strlen(ascii))];
            tbuf_put(b, &c, 1);
        } else {
            uint32_t cp;
            do cp = (uint32_t)uf_rng_below(&r, k < 8 ? 0x3400 : 0x110000);
            while (!assigned(cp) || cp == 0);
            put_cp(b, cp);
        }
    }
}

/* Splits text with the C pre-tokenizer and with Python; prints the first differences. Returns
 * the number of differing pieces, or -1 when the oracle could not run. */
static int compare(enum uf_tok_split split, const char *what, const char *text, size_t n) {
    char pp[400], tp[400], op[400], sp[400], cmd[2000];
    snprintf(pp, sizeof pp, "%s/pattern.txt", tmpdir);
    snprintf(tp, sizeof tp, "%s/text.txt", tmpdir);
    snprintf(op, sizeof op, "%s/out.txt", tmpdir);
    snprintf(sp, sizeof sp, "%s/split.py", tmpdir);
    const char *pat = split == UF_SPLIT_LLAMA3 ? pattern_llama3 : pattern_gpt2;
    if (uf_file_write_atomic(pp, pat, strlen(pat)) || uf_file_write_atomic(tp, text, n) ||
        uf_file_write_atomic(sp, py_split, strlen(py_split)))
        return -1;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %s", sp, pp, tp, op);
    if (system(cmd) != 0) return -1;
    size_t olen;
    char *out = uf_file_read(op, &olen);
    if (!out) return -1;
    int diffs = 0, k = 0;
    size_t i = 0;
    char *p = out;
    while (*p && i < n) {
        size_t want = (size_t)strtoull(p, &p, 10);
        while (*p == '\n') p++;
        size_t got = uf_tok_pretoken_len(split, (const unsigned char *)text, n, i);
        if (got != want) {
            if (diffs < 12) {
                fprintf(stderr, "    %s piece %d at byte %zu: C %zu bytes, regex %zu bytes; text:", what,
                        k, i, got, want);
                size_t end = i + (got > want ? got : want) + 4;
                for (size_t j = i; j < end && j < n;) {
                    utf8proc_int32_t cp;
                    utf8proc_ssize_t l = utf8proc_iterate((const uint8_t *)text + j, (utf8proc_ssize_t)(n - j), &cp);
                    if (l <= 0) break;
                    fprintf(stderr, " U+%04X", (unsigned)cp);
                    j += (size_t)l;
                }
                fputc('\n', stderr);
            }
            diffs++;
            /* resynchronise on the oracle's boundary */
            got = want;
        }
        i += got;
        k++;
    }
    if (i != n || *p) {
        fprintf(stderr, "    %s: the splits cover %zu of %zu bytes\n", what, i, n);
        diffs++;
    }
    free(out);
    fprintf(stderr, "    %s (%s): %d pieces, %d differences\n", what,
            split == UF_SPLIT_LLAMA3 ? "llama-3" : "gpt-2", k, diffs);
    return diffs;
}

static int oracle_ok(void) {
    return system("/usr/bin/python3 -c 'import regex' >/dev/null 2>&1") == 0;
}

static void test_all_codepoints(void) {
    if (!oracle_ok()) UF_SKIP("no /usr/bin/python3 with the regex module (Debian python3-regex)");
    fprintf(stderr, "    utf8proc Unicode %s\n", utf8proc_unicode_version());
    struct tbuf b = {0};
    build_all_codepoints(&b);
    CHECK_EQ_INT(compare(UF_SPLIT_LLAMA3, "all code points", b.data, b.len), 0);
    CHECK_EQ_INT(compare(UF_SPLIT_GPT2, "all code points", b.data, b.len), 0);
    free(b.data);
}

static void test_random(void) {
    if (!oracle_ok()) UF_SKIP("no /usr/bin/python3 with the regex module (Debian python3-regex)");
    struct tbuf b = {0};
    for (uint64_t s = 1; s <= 4; s++) build_random(&b, s, 100000);
    CHECK_EQ_INT(compare(UF_SPLIT_LLAMA3, "random", b.data, b.len), 0);
    CHECK_EQ_INT(compare(UF_SPLIT_GPT2, "random", b.data, b.len), 0);
    free(b.data);
}

static void test_corpus(void) {
    if (!oracle_ok()) UF_SKIP("no /usr/bin/python3 with the regex module (Debian python3-regex)");
    struct tbuf b = {0};
    for (size_t i = 0; i < UF_ARRAY_LEN(corpus); i++) {
        put_str(&b, corpus[i]);
        put_str(&b, i % 3 ? "\n" : "\n\n");
    }
    CHECK_EQ_INT(compare(UF_SPLIT_LLAMA3, "corpus", b.data, b.len), 0);
    CHECK_EQ_INT(compare(UF_SPLIT_GPT2, "corpus", b.data, b.len), 0);
    free(b.data);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/uf_pretok_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    UF_RUN(test_corpus);
    UF_RUN(test_random);
    UF_RUN(test_all_codepoints);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    int rc = uf_test_summary();
    return rc == 0 && uf_test_passed == 0 && uf_test_skipped > 0 ? 77 : rc;
}
