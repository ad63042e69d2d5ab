/* test_template_host.c: the chat templates rendered with a trained SPM tokenizer (plain, llama-2,
 * mistral*) or a byte-level tokenizer with the special tokens (gemma*, llama-3*): the decoded
 * rendering equals the template text written out literally here (as each model's Jinja template
 * writes it; test_template_oracle_host checks against the real templates), the loss mask covers
 * the assistant's text and its end token, the prompt rendering is the prefix of the full one,
 * special-token strings in messages follow HF (or stay text with ,literal), multi-turn masks,
 * role errors, detection, and missing special tokens are reported. */
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

/* want_text: the decoded rendering without bos; want_resp: the decoded trained (mask 1) tokens,
 * which end with the template's stop token. */
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
    int32_t *m = uf_malloc(sizeof(int32_t) * (size_t)c.n);
    int nm = 0, last = -1;
    for (int i = 0; i < c.n; i++) {
        CHECK(i >= c.n_prompt || c.mask[i] == 0);
        if (c.mask[i]) m[nm++] = c.ids[i], last = c.ids[i];
    }
    CHECK_EQ_INT(c.mask[c.n_prompt], 1);
    CHECK_EQ_INT(last, uf_template_stop_id(t, tmpl));
    char *r = decode(t, m, nm);
    CHECK_STR(r, want_resp);
    free(r);
    free(m);
    rc = uf_template_render_prompt(t, tmpl, sys, prompt, &p);
    CHECK_MSG(rc == 0, "%s", uf_error());
    /* mistral-v0.1/v0.2 glue the response to [/INST]: BPE may merge across, no token prefix */
    int glued = tmpl == UF_TMPL_MISTRAL_V01 || tmpl == UF_TMPL_MISTRAL_V02 ||
                (tmpl == UF_TMPL_MISTRAL_V03 && sys); /* v0.3: the system only in the last user turn */
    if (rc == 0 && glued) uf_chat_tokens_free(&p);
    else if (rc == 0) {
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
                   "### Instruction:\nsay hello\n\n### Response:\nhello there</s>", "hello there</s>");
    check_template(&spm, UF_TMPL_PLAIN, "be nice", "say hello", "hello",
                   "be nice\n\n### Instruction:\nsay hello\n\n### Response:\nhello</s>", "hello</s>");
}

/* Llama-2-chat: '[INST] ' + strip + ' [/INST]', then ' ' + strip + ' ' + eos */
static void test_llama2(void) {
    check_template(&spm, UF_TMPL_LLAMA2, NULL, " say hello\n", "hello there ",
                   "[INST] say hello [/INST] hello there </s>", "hello there </s>");
    check_template(&spm, UF_TMPL_LLAMA2, "you are a helpful assistant.", "say hello", "no.",
                   "[INST] <<SYS>>\nyou are a helpful assistant.\n<</SYS>>\n\nsay hello [/INST] no. </s>",
                   "no. </s>");
    /* the response is encoded like SentencePiece encodes " no.": starts with a ▁ token */
    struct uf_chat_tokens c;
    CHECK(uf_template_render(&spm, UF_TMPL_LLAMA2, NULL, "x", "the answer", &c) == 0);
    const char *first = uf_tokenizer_vocab_piece(&spm, c.ids[c.n_prompt]);
    CHECK(first && strncmp(first, "\xe2\x96\x81", 3) == 0);
    uf_chat_tokens_free(&c);
}

static void test_mistral(void) {
    /* the later v0.1/v0.2 template: ' [INST] ' (a space after <s>), the system in the first turn */
    check_template(&spm, UF_TMPL_MISTRAL, NULL, "say hello", "hello",
                   " [INST] say hello [/INST] hello</s>", "hello</s>");
    check_template(&spm, UF_TMPL_MISTRAL, "be nice", "say hello", "hello",
                   " [INST] be nice\n\nsay hello [/INST] hello</s>", "hello</s>");
    /* the first v0.1 template: no space before the response, a space after </s>; no system */
    check_template(&spm, UF_TMPL_MISTRAL_V01, NULL, "say hello", "hello",
                   "[INST] say hello [/INST]hello</s>  ", "hello</s>"); /* " " after </s>: ▁ + ▁ */
    struct uf_chat_tokens c;
    CHECK(uf_template_render(&spm, UF_TMPL_MISTRAL_V01, "sys", "say hello", "hello", &c) != 0);
    /* v0.3: the system prompt only in the last user turn: dropped before a response */
    check_template(&spm, UF_TMPL_MISTRAL_V03, "be nice", "say hello", " hello ",
                   "[INST] say hello[/INST] hello</s>", "hello</s>");
    struct uf_chat_msg m[] = {{"system", "be nice"}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}};
    char *text;
    CHECK(uf_template_render_text(&spm, UF_TMPL_MISTRAL_V03, m, 4, 0, &text) == 0);
    CHECK_STR(text, "<s>[INST] a[/INST] b</s>[INST] be nice\n\nc[/INST]");
    free(text);
}

static void test_gemma(void) {
    bl.bos_id = uf_tokenizer_token_id(&bl, "<bos>");
    bl.eos_id = uf_tokenizer_token_id(&bl, "<eos>");
    check_template(&bl, UF_TMPL_GEMMA, NULL, "hi", " hello! ",
                   "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\nhello!<end_of_turn>\n",
                   "hello!<end_of_turn>");
    struct uf_chat_tokens c;
    CHECK(uf_template_render(&bl, UF_TMPL_GEMMA, "sys", "hi", "ok", &c) != 0); /* as the template raises */
    check_template(&bl, UF_TMPL_GEMMA3, "sys", "hi", "ok",
                   "<start_of_turn>user\nsys\n\nhi<end_of_turn>\n<start_of_turn>model\nok<end_of_turn>\n",
                   "ok<end_of_turn>");
    CHECK_EQ_INT(uf_template_stop_id(&bl, UF_TMPL_GEMMA), 256 + 7);
}

static void test_llama3(void) {
    bl.bos_id = uf_tokenizer_token_id(&bl, "<|begin_of_text|>");
    bl.eos_id = uf_tokenizer_token_id(&bl, "<|eot_id|>");
    check_template(&bl, UF_TMPL_LLAMA3, NULL, "hi", "hello",
                   "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>", "hello<|eot_id|>");
    check_template(&bl, UF_TMPL_LLAMA3, "sys", "hi", "hello",
                   "<|start_header_id|>system<|end_header_id|>\n\nsys<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>", "hello<|eot_id|>");
    check_template(&bl, UF_TMPL_LLAMA31, NULL, "hi", "hello",
                   "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
                   "Today Date: 26 Jul 2024\n\n<|eot_id|>"
                   "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\nhello<|eot_id|>", "hello<|eot_id|>");
    /* a special-token string in a message: a control token by default (HF), text with ,literal */
    int eot = uf_tokenizer_token_id(&bl, "<|eot_id|>");
    for (int lit = 0; lit < 2; lit++) {
        struct uf_chat_tokens c;
        CHECK(uf_template_render_ex(&bl, UF_TMPL_LLAMA3, lit ? UF_CHAT_LITERAL : 0, NULL,
                                    "<|eot_id|>", "<|eot_id|>x", &c) == 0);
        int count = 0;
        for (int i = 0; i < c.n; i++) count += c.ids[i] == eot;
        CHECK_EQ_INT(count, lit ? 2 : 4);
        uf_chat_tokens_free(&c);
    }
    enum uf_template t;
    int flags;
    CHECK(uf_template_resolve("llama-3,literal", NULL, &t, &flags) == 0 && t == UF_TMPL_LLAMA3 &&
          flags == UF_CHAT_LITERAL);
    CHECK(uf_template_resolve("auto", &bl, &t, &flags) != 0 && strstr(uf_error(), "chat_template"));
}

/* every assistant turn of a conversation is trained on; the rest is not */
static void test_multi_turn(void) {
    struct uf_chat_msg m[] = {{"system", "s"}, {"user", "u1"}, {"assistant", "a1"},
                              {"user", "u2"}, {"assistant", "a2"}};
    struct uf_chat_tokens c;
    CHECK(uf_template_render_chat(&bl, UF_TMPL_LLAMA3, m, 5, 0, &c) == 0);
    int32_t *t = uf_malloc(sizeof(int32_t) * (size_t)c.n);
    int n = 0;
    for (int i = 0; i < c.n; i++) if (c.mask[i]) t[n++] = c.ids[i];
    char *r = decode(&bl, t, n);
    CHECK_STR(r, "a1<|eot_id|>a2<|eot_id|>");
    free(r);
    free(t);
    uf_chat_tokens_free(&c);
    char *js = NULL;
    struct uf_chat_msg *pm;
    int np;
    CHECK(uf_chat_msgs_parse("[{\"role\": \"user\", \"content\": \"x\"}, {\"role\": 1}]", &pm, &np) != 0);
    CHECK(uf_chat_msgs_parse("[{\"role\": \"user\", \"content\": \"x\"}]", &pm, &np) == 0 && np == 1);
    uf_chat_msgs_free(pm, np);
    free(js);
    /* roles out of order are refused where the family's template refuses them */
    struct uf_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    CHECK(uf_template_render_chat(&spm, UF_TMPL_LLAMA2, bad, 2, 0, &c) != 0);
    CHECK(strstr(uf_error(), "alternate"));
}

static void test_detect(void) {
    CHECK_EQ_INT(uf_template_detect("{{ bos_token }}{% for message in messages %}{{ '[INST] ' + "
                                    "message['content'] + ' [/INST]' }}{{ message['content'] + eos_token}}"),
                 UF_TMPL_MISTRAL_V02);
    CHECK_EQ_INT(uf_template_detect("{% for m in messages %}<|im_start|>{% endfor %}"), -1);
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
    UF_RUN(test_multi_turn);
    UF_RUN(test_detect);
    UF_RUN(test_errors);
    uf_tokenizer_free(&spm);
    uf_tokenizer_free(&bl);
    return uf_test_summary();
}
