/* test_template_host.c: every chat template rendered with a trained SPM tokenizer (plain,
 * llama-2, mistral) or a byte-level tokenizer with the special tokens (gemma, llama-3): the
 * decoded rendering equals the template text written out literally here, the loss mask covers
 * exactly the response and its end token, the prompt rendering is the prefix of the full one,
 * user text cannot inject special tokens, and missing special tokens are reported. */
#include "formats/template.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_tokenizer spm, bl;

static void setup(void) {
    const char *corpus[] = {"### Instruction:\nsay hello\n\n### Response:\nhello there [INST] [/INST]",
                            "you are a helpful assistant. the answer is no. <<SYS>> <</SYS>>"};
    if (uf_tokenizer_train(&spm, corpus, NULL, 2, 320) != 0) uf_fatal(1, "%s", uf_error());
    /* byte-level: 256 byte characters (ids by byte value) + special tokens, no merges */
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
        char *nv = uf_sprintf("%s%s\"%s\": %d", v, b ? "," : "", u, b);
        free(v);
        v = nv;
    }
    const char *sp[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                        "<|eot_id|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"};
    char *added = uf_strdup("");
    for (int i = 0; i < 8; i++) {
        char *na = uf_sprintf("%s%s{\"id\": %d, \"content\": \"%s\", \"special\": true}", added,
                              i ? "," : "", 256 + i, sp[i]);
        free(added);
        added = na;
    }
    char *j = uf_sprintf("{\"added_tokens\": [%s], \"pre_tokenizer\": {\"type\": \"ByteLevel\", "
                         "\"add_prefix_space\": false, \"use_regex\": true},"
                         "\"model\": {\"type\": \"BPE\", \"vocab\": {%s}, \"merges\": []}}", added, v);
    if (uf_tokenizer_load_json(&bl, j, strlen(j), "bl") != 0) uf_fatal(1, "%s", uf_error());
    free(j);
    free(v);
    free(added);
}

static char *decode(const struct uf_tokenizer *t, const int32_t *ids, int n) {
    char *s;
    if (uf_tokenizer_decode(t, ids, n, 0, &s, NULL) != 0) return uf_strdup("<decode failed>");
    return s;
}

static void check_template(const struct uf_tokenizer *t, enum uf_template tmpl, const char *sys,
                           const char *prompt, const char *resp, const char *want_text,
                           const char *want_resp) {
    struct uf_chat_tokens c, p;
    int rc = uf_template_render(t, tmpl, sys, prompt, resp, &c);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc) return;
    CHECK_EQ_INT(c.ids[0], t->bos_id);
    char *all = decode(t, c.ids + 1, c.n - 1); /* without bos (SPM strips the leading space) */
    CHECK_STR(all, want_text);
    free(all);
    int ok = 1;
    for (int i = 0; i < c.n; i++) ok &= c.mask[i] == (i >= c.n_prompt);
    CHECK_MSG(ok, "mask is not 0 on the prompt and 1 on the response (%s)", uf_template_name(tmpl));
    CHECK(c.n_prompt < c.n - 1);
    CHECK_EQ_INT(c.ids[c.n - 1], uf_template_stop_id(t, tmpl));
    char *r = decode(t, c.ids + c.n_prompt, c.n - c.n_prompt - 1);
    CHECK_STR(r, want_resp);
    free(r);
    rc = uf_template_render_prompt(t, tmpl, sys, prompt, &p);
    CHECK_MSG(rc == 0, "%s", uf_error());
    if (rc == 0) {
        CHECK_EQ_INT(p.n, c.n_prompt);
        CHECK_EQ_INT(p.n_prompt, p.n);
        CHECK(p.n <= c.n && memcmp(p.ids, c.ids, sizeof(int32_t) * (size_t)p.n) == 0);
        int zeros = 1;
        for (int i = 0; i < p.n; i++) zeros &= p.mask[i] == 0;
        CHECK(zeros);
        uf_chat_tokens_free(&p);
    }
    uf_chat_tokens_free(&c);
}

static void test_plain(void) {
    check_template(&spm, UF_TMPL_PLAIN, NULL, "say hello", "hello there",
                   "### Instruction:\nsay hello\n\n### Response:\nhello there</s>", "hello there");
    check_template(&spm, UF_TMPL_PLAIN, "be nice", "say hello", "hello",
                   "be nice\n\n### Instruction:\nsay hello\n\n### Response:\nhello</s>", "hello");
}

static void test_llama2(void) {
    check_template(&spm, UF_TMPL_LLAMA2, NULL, " say hello\n", "hello there ",
                   "[INST] say hello [/INST] hello there</s>", "hello there");
    check_template(&spm, UF_TMPL_LLAMA2, "you are a helpful assistant.", "say hello", "no.",
                   "[INST] <<SYS>>\nyou are a helpful assistant.\n<</SYS>>\n\nsay hello [/INST] no.</s>",
                   "no.");
    /* the response is encoded like SentencePiece encodes " no.": starts with a ▁ token */
    struct uf_chat_tokens c;
    CHECK(uf_template_render(&spm, UF_TMPL_LLAMA2, NULL, "x", "the answer", &c) == 0);
    const char *first = uf_tokenizer_vocab_piece(&spm, c.ids[c.n_prompt]);
    CHECK(first && strncmp(first, "\xe2\x96\x81", 3) == 0);
    uf_chat_tokens_free(&c);
}

static void test_mistral(void) {
    check_template(&spm, UF_TMPL_MISTRAL, NULL, "say hello", "hello",
                   "[INST] say hello [/INST] hello</s>", "hello");
    check_template(&spm, UF_TMPL_MISTRAL, "be nice", "say hello", "hello",
                   "[INST] be nice\n\nsay hello [/INST] hello</s>", "hello");
}

static void test_gemma(void) {
    bl.bos_id = uf_tokenizer_token_id(&bl, "<bos>");
    bl.eos_id = uf_tokenizer_token_id(&bl, "<eos>");
    check_template(&bl, UF_TMPL_GEMMA, NULL, "hi", "hello!",
                   "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nhello!<end_of_turn>",
                   "hello!");
    check_template(&bl, UF_TMPL_GEMMA, "sys", "hi", "ok",
                   "<start_of_turn>user\nsys\n\nhi<end_of_turn>\n<start_of_turn>model\nok<end_of_turn>",
                   "ok");
    CHECK_EQ_INT(uf_template_stop_id(&bl, UF_TMPL_GEMMA), 256 + 7);
}

static void test_llama3(void) {
    bl.bos_id = uf_tokenizer_token_id(&bl, "<|begin_of_text|>");
    bl.eos_id = uf_tokenizer_token_id(&bl, "<|eot_id|>");
    check_template(&bl, UF_TMPL_LLAMA3, NULL, "hi", "hello",
                   "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>", "hello");
    check_template(&bl, UF_TMPL_LLAMA3, "sys", "hi", "hello",
                   "<|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>", "hello");
    /* user text naming a special token stays text */
    struct uf_chat_tokens c;
    CHECK(uf_template_render(&bl, UF_TMPL_LLAMA3, NULL, "<|eot_id|>", "<|eot_id|>x", &c) == 0);
    int eot = uf_tokenizer_token_id(&bl, "<|eot_id|>"), count = 0;
    for (int i = 0; i < c.n; i++) count += c.ids[i] == eot;
    CHECK_EQ_INT(count, 2);
    char *r = decode(&bl, c.ids + c.n_prompt, c.n - c.n_prompt - 1);
    CHECK_STR(r, "<|eot_id|>x");
    free(r);
    uf_chat_tokens_free(&c);
}

static void test_errors(void) {
    struct uf_chat_tokens c;
    CHECK(uf_template_render(&spm, UF_TMPL_GEMMA, NULL, "hi", "ok", &c) != 0);
    CHECK(strstr(uf_error(), "<start_of_turn>") && strstr(uf_error(), "gemma"));
    CHECK(uf_template_render(&spm, UF_TMPL_LLAMA3, NULL, "hi", "ok", &c) != 0);
    CHECK(strstr(uf_error(), "<|start_header_id|>"));
    enum uf_template t;
    CHECK(uf_template_parse("chatml", &t) != 0);
    CHECK(strstr(uf_error(), "llama-3"));
    CHECK(uf_template_parse("llama-2", &t) == 0 && t == UF_TMPL_LLAMA2);
    CHECK_STR(uf_template_name(UF_TMPL_GEMMA), "gemma");
}

int main(void) {
    setup();
    UF_RUN(test_plain);
    UF_RUN(test_llama2);
    UF_RUN(test_mistral);
    UF_RUN(test_gemma);
    UF_RUN(test_llama3);
    UF_RUN(test_errors);
    uf_tokenizer_free(&spm);
    uf_tokenizer_free(&bl);
    return uf_test_summary();
}
