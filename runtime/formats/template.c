/* template.c: see template.h. Each family renders into a list of parts (text + role flags);
 * the parts are joined, encoded in one pass with byte offsets, and each token's mask comes from
 * the part its first character lies in. */
#include "formats/template.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *names[UF_TMPL_COUNT] = {
    "plain", "llama-2", "mistral", "gemma", "llama-3", "mistral-v0.1", "mistral-v0.2",
    "mistral-v0.3", "gemma-3", "llama-3.1",
};
#define NAME_LIST "plain, llama-2, mistral-v0.1, mistral-v0.2, mistral, mistral-v0.3, gemma, gemma-3, llama-3, llama-3.1, auto; suffix ,literal"

int uf_template_parse(const char *name, enum uf_template *out) {
    for (int i = 0; i < UF_TMPL_COUNT; i++)
        if (!strcmp(name, names[i])) {
            *out = (enum uf_template)i;
            return 0;
        }
    return uf_fail("unknown chat template '%s' (valid: %s)", name, NAME_LIST);
}

const char *uf_template_name(enum uf_template t) {
    return (unsigned)t < UF_TMPL_COUNT ? names[t] : "?";
}

int uf_template_resolve(const char *name, const struct uf_tokenizer *tok, enum uf_template *out,
                        int *flags) {
    *flags = 0;
    char base[64];
    const char *comma = strchr(name, ',');
    size_t n = comma ? (size_t)(comma - name) : strlen(name);
    if (comma) {
        if (strcmp(comma + 1, "literal"))
            return uf_fail("chat template '%s': unknown option '%s' (valid: literal)", name, comma + 1);
        *flags |= UF_CHAT_LITERAL;
    }
    if (n >= sizeof base) return uf_fail("unknown chat template '%s' (valid: %s)", name, NAME_LIST);
    memcpy(base, name, n);
    base[n] = 0;
    if (strcmp(base, "auto")) return uf_template_parse(base, out);
    if (!tok || !tok->chat_template)
        return uf_fail("chat template 'auto': the model folder has no tokenizer_config.json with a "
                       "chat_template; name the family (%s)", NAME_LIST);
    int f = uf_template_detect(tok->chat_template);
    if (f < 0)
        return uf_fail("chat template 'auto': the chat_template of tokenizer_config.json is not one "
                       "of the recognised families; name one (%s) after checking it renders the "
                       "same (README: Hugging Face fidelity)", NAME_LIST);
    *out = (enum uf_template)f;
    return 0;
}

/* ---- recognising a Jinja chat_template ----------------------------------------------------
 * By distinctive pieces of each family's template text (whitespace-insensitive). */
static int has(const char *squeezed, const char *piece) { return strstr(squeezed, piece) != NULL; }

int uf_template_detect(const char *tmpl) {
    size_t n = strlen(tmpl);
    char *s = uf_malloc(n + 1); /* without whitespace, double quotes made single */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char c = tmpl[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') continue;
        s[m++] = c == '"' ? '\'' : c;
    }
    s[m] = 0;
    int f = -1;
    if (has(s, "CuttingKnowledgeDate:") && has(s, "<|start_header_id|>")) f = UF_TMPL_LLAMA31;
    else if (has(s, "<|start_header_id|>") && has(s, "<|eot_id|>")) f = UF_TMPL_LLAMA3;
    else if (has(s, "<start_of_turn>") && has(s, "first_user_prefix")) f = UF_TMPL_GEMMA3;
    else if (has(s, "<start_of_turn>") && has(s, "Systemrolenotsupported")) f = UF_TMPL_GEMMA;
    else if (has(s, "<<SYS>>") && has(s, "[INST]")) f = UF_TMPL_LLAMA2;
    else if (has(s, "[INST]") && has(s, "[/INST]'")) {
        if (has(s, "loop.lastandsystem_messageisdefined")) f = UF_TMPL_MISTRAL_V03;
        else if (has(s, "'[INST]'+system_message") || has(s, "loop.firstandsystem_messageisdefined"))
            f = UF_TMPL_MISTRAL;
        else if (has(s, "message['content']+eos_token+''")) f = UF_TMPL_MISTRAL_V01;
        else if (has(s, "message['content']+eos_token}}")) f = UF_TMPL_MISTRAL_V02;
    }
    free(s);
    return f;
}

/* ---- rendering to parts ----------------------------------------------------------------- */
enum { PART_TEMPLATE = 0, PART_MESSAGE = 1 }; /* message text: literal under UF_CHAT_LITERAL */

struct parts {
    char *text;
    size_t len, cap;
    uint8_t *mask;    /* (len) per byte: 1 = assistant's own part */
    uint8_t *literal; /* (len) per byte: 1 = message text */
    int rc;
};

static void put_n(struct parts *p, const char *s, size_t n, int mask, int kind) {
    if (p->len + n + 1 > p->cap) {
        p->cap = (p->len + n + 1) * 2 + 256;
        p->text = uf_realloc(p->text, p->cap);
        p->mask = uf_realloc(p->mask, p->cap);
        p->literal = uf_realloc(p->literal, p->cap);
    }
    memcpy(p->text + p->len, s, n);
    memset(p->mask + p->len, mask, n);
    memset(p->literal + p->len, kind == PART_MESSAGE, n);
    p->len += n;
    p->text[p->len] = 0;
}

static void put(struct parts *p, const char *s, int mask) { put_n(p, s, strlen(s), mask, PART_TEMPLATE); }
static void msg(struct parts *p, const char *s, int mask) { put_n(p, s, strlen(s), mask, PART_MESSAGE); }

/* Python's str.isspace() (Jinja's trim filter and .strip()): Unicode White_Space + \x1c-\x1f. */
static size_t space_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if ((c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20)) return 1;
    if (n >= 2 && c == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3 && c == 0xe1 && s[1] == 0x9a && s[2] == 0x80) return 3;           /* U+1680 */
    if (n >= 3 && c == 0xe2 && s[1] == 0x80 && (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf))
        return 3;                                                                  /* U+2000-200A, 2028, 2029, 202F */
    if (n >= 3 && c == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) return 3;            /* U+205F */
    if (n >= 3 && c == 0xe3 && s[1] == 0x80 && s[2] == 0x80) return 3;            /* U+3000 */
    return 0;
}

/* the last character of s[0..n) starts at the returned index */
static size_t last_char(const unsigned char *s, size_t n) {
    size_t i = n - 1;
    while (i > 0 && (s[i] & 0xc0) == 0x80) i--;
    return i;
}

static void msg_trim(struct parts *p, const char *s0, int mask) {
    const unsigned char *s = (const unsigned char *)s0;
    size_t n = strlen(s0), k;
    while (n > 0 && (k = space_len(s, n)) > 0) s += k, n -= k;
    while (n > 0) {
        size_t i = last_char(s, n);
        if (space_len(s + i, n - i) != n - i) break;
        n = i;
    }
    put_n(p, (const char *)s, n, mask, PART_MESSAGE);
}

static int role_is(const struct uf_chat_msg *m, const char *r) { return !strcmp(m->role, r); }

static int special_name(struct parts *p, const struct uf_tokenizer *tok, int id, const char *what,
                        enum uf_template t, int mask) {
    if (p->rc) return -1;
    if (id < 0 || !tok->pieces[id]) {
        p->rc = uf_fail("chat template %s: the tokenizer has no %s token", names[t], what);
        return -1;
    }
    put(p, tok->pieces[id], mask);
    return 0;
}
#define BOS(mask) special_name(p, tok, tok->bos_id, "bos", t, mask)
#define EOS(mask) special_name(p, tok, tok->eos_id, "eos", t, mask)

/* user/assistant alternation after an optional system message */
static int check_alternate(struct parts *p, enum uf_template t, const struct uf_chat_msg *m, int n,
                           int allow_system) {
    for (int i = 0; i < n; i++) {
        if (role_is(&m[i], "system") && i == 0 && allow_system) continue;
        if (role_is(&m[i], "system"))
            return p->rc = uf_fail("chat template %s: message %d: %s", names[t], i,
                                   allow_system ? "a system message must come first"
                                                : "this family's template has no system role");
        int k = i - (n > 0 && allow_system && role_is(&m[0], "system"));
        int want_user = k % 2 == 0;
        if (!role_is(&m[i], want_user ? "user" : "assistant"))
            return p->rc = uf_fail("chat template %s: message %d has role '%s': roles must alternate "
                                   "user/assistant/user/... after an optional system message",
                                   names[t], i, m[i].role);
    }
    return 0;
}

static void render_parts(const struct uf_tokenizer *tok, enum uf_template t,
                         const struct uf_chat_msg *m, int n, int gen, struct parts *p) {
    int sys = n > 0 && role_is(&m[0], "system");
    const char *system = sys ? m[0].content : NULL;
    int first = sys ? 1 : 0;
    switch (t) {
    case UF_TMPL_PLAIN:
        if (check_alternate(p, t, m, n, 1)) return;
        BOS(0);
        if (system && system[0]) { msg(p, system, 0); put(p, "\n\n", 0); }
        for (int i = first; i < n; i++) {
            if (role_is(&m[i], "user")) {
                put(p, "### Instruction:\n", 0);
                msg(p, m[i].content, 0);
                put(p, "\n\n### Response:\n", 0);
            } else {
                msg(p, m[i].content, 1);
                EOS(1);
                if (i + 1 < n) put(p, "\n\n", 0);
            }
        }
        break;
    case UF_TMPL_LLAMA2:
        if (check_alternate(p, t, m, n, 1)) return;
        for (int i = first; i < n; i++) {
            if (role_is(&m[i], "user")) {
                /* '[INST] ' + content.strip() + ' [/INST]', content with the <<SYS>> block first */
                BOS(0);
                put(p, "[INST] ", 0);
                if (i == first && system) {
                    /* strip() applies to the whole "<<SYS>>..." + user string: only its end */
                    put(p, "<<SYS>>\n", 0);
                    msg(p, system, 0);
                    put(p, "\n<</SYS>>\n\n", 0);
                    msg(p, m[i].content, 0);
                    /* strip trailing whitespace of the joined content (and leading, if all blank) */
                    while (p->len > 0) {
                        size_t j = last_char((const unsigned char *)p->text, p->len);
                        if (space_len((const unsigned char *)p->text + j, p->len - j) != p->len - j) break;
                        p->len = j;
                    }
                } else msg_trim(p, m[i].content, 0);
                put(p, " [/INST]", 0);
            } else {
                put(p, " ", 1);
                msg_trim(p, m[i].content, 1);
                put(p, " ", 1);
                EOS(1);
            }
        }
        break;
    case UF_TMPL_MISTRAL_V01:
    case UF_TMPL_MISTRAL_V02:
        if (check_alternate(p, t, m, n, 0)) return;
        BOS(0);
        for (int i = 0; i < n; i++) {
            if (role_is(&m[i], "user")) {
                put(p, "[INST] ", 0);
                msg(p, m[i].content, 0);
                put(p, " [/INST]", 0);
            } else {
                msg(p, m[i].content, 1);
                EOS(1);
                if (t == UF_TMPL_MISTRAL_V01) put(p, " ", 0);
            }
        }
        break;
    case UF_TMPL_MISTRAL:
        if (check_alternate(p, t, m, n, 1)) return;
        BOS(0);
        for (int i = first; i < n; i++) {
            if (role_is(&m[i], "user")) {
                put(p, " [INST] ", 0);
                if (i == first && system) { msg(p, system, 0); put(p, "\n\n", 0); }
                msg(p, m[i].content, 0);
                put(p, " [/INST]", 0);
            } else {
                put(p, " ", 1);
                msg(p, m[i].content, 1);
                EOS(1);
            }
        }
        break;
    case UF_TMPL_MISTRAL_V03:
        if (check_alternate(p, t, m, n, 1)) return;
        BOS(0);
        for (int i = first; i < n; i++) {
            if (role_is(&m[i], "user")) {
                put(p, "[INST] ", 0);
                if (i == n - 1 && system) { msg(p, system, 0); put(p, "\n\n", 0); }
                msg(p, m[i].content, 0);
                put(p, "[/INST]", 0);
            } else {
                put(p, " ", 1);
                msg_trim(p, m[i].content, 1);
                EOS(1);
            }
        }
        break;
    case UF_TMPL_GEMMA:
    case UF_TMPL_GEMMA3:
        if (check_alternate(p, t, m, n, t == UF_TMPL_GEMMA3)) return;
        BOS(0);
        for (int i = first; i < n; i++) {
            int a = role_is(&m[i], "assistant");
            put(p, a ? "<start_of_turn>model\n" : "<start_of_turn>user\n", 0);
            if (i == first && system) { msg(p, system, 0); put(p, "\n\n", 0); }
            msg_trim(p, m[i].content, a);
            put(p, "<end_of_turn>", a);
            put(p, "\n", 0);
        }
        if (gen) put(p, "<start_of_turn>model\n", 0);
        break;
    case UF_TMPL_LLAMA3:
    case UF_TMPL_LLAMA31:
        BOS(0);
        if (t == UF_TMPL_LLAMA31) {
            put(p, "<|start_header_id|>system<|end_header_id|>\n\n"
                   "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n", 0);
            if (system) msg_trim(p, system, 0);
            put(p, "<|eot_id|>", 0);
        }
        for (int i = t == UF_TMPL_LLAMA31 ? first : 0; i < n; i++) {
            int a = role_is(&m[i], "assistant");
            put(p, "<|start_header_id|>", 0);
            msg(p, m[i].role, 0);
            put(p, "<|end_header_id|>\n\n", 0);
            msg_trim(p, m[i].content, a);
            put(p, "<|eot_id|>", a);
        }
        if (gen) put(p, "<|start_header_id|>assistant<|end_header_id|>\n\n", 0);
        break;
    default:
        p->rc = uf_fail("bad chat template id %d", (int)t);
    }
}

/* the added tokens a family's markup needs */
static int check_specials(const struct uf_tokenizer *tok, enum uf_template t) {
    static const char *gemma[] = {"<start_of_turn>", "<end_of_turn>", NULL};
    static const char *llama3[] = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL};
    const char **need = t == UF_TMPL_GEMMA || t == UF_TMPL_GEMMA3 ? gemma
                      : t == UF_TMPL_LLAMA3 || t == UF_TMPL_LLAMA31 ? llama3 : NULL;
    for (int i = 0; need && need[i]; i++) {
        int found = 0;
        for (int k = 0; k < tok->n_added && !found; k++) found = !strcmp(tok->added[k].content, need[i]);
        if (!found)
            return uf_fail("chat template %s needs the token %s, which the tokenizer lacks (use a "
                           "template that matches the model)", names[t], need[i]);
    }
    return 0;
}

static int render(const struct uf_tokenizer *tok, enum uf_template t, const struct uf_chat_msg *m,
                  int n, int flags, struct parts *p) {
    memset(p, 0, sizeof *p);
    if ((unsigned)t >= UF_TMPL_COUNT) return uf_fail("bad chat template id %d", (int)t);
    if (check_specials(tok, t)) return -1;
    for (int i = 0; i < n; i++)
        if (!m[i].role || !m[i].content) return uf_fail("chat template %s: message %d without role or content", names[t], i);
    put(p, "", 0);
    render_parts(tok, t, m, n, flags & UF_CHAT_GENERATION_PROMPT, p);
    if (p->rc) {
        free(p->text);
        free(p->mask);
        free(p->literal);
        memset(p, 0, sizeof *p);
        return -1;
    }
    return 0;
}

int uf_template_render_text(const struct uf_tokenizer *tok, enum uf_template tmpl,
                            const struct uf_chat_msg *msgs, int n, int flags, char **text) {
    struct parts p;
    if (render(tok, tmpl, msgs, n, flags, &p)) return -1;
    *text = p.text;
    free(p.mask);
    free(p.literal);
    return 0;
}

/* ---- plain: unforget's own template, tokenized part by part as it always was (the first text
 * part with the tokenizer's prefix space, later ones without; message text never scanned for
 * special tokens), so runs with it keep their token ids. */
struct plain_builder {
    const struct uf_tokenizer *tok;
    struct uf_chat_tokens *out;
    int cap, texts, rc;
};

static void plain_put(struct plain_builder *b, int id, int mask) {
    struct uf_chat_tokens *o = b->out;
    if (o->n == b->cap) {
        b->cap = b->cap * 2 + 64;
        o->ids = uf_realloc(o->ids, sizeof(int32_t) * (size_t)b->cap);
        o->mask = uf_realloc(o->mask, (size_t)b->cap);
    }
    o->ids[o->n] = id;
    o->mask[o->n] = (uint8_t)mask;
    o->n++;
}

static void plain_text(struct plain_builder *b, const char *s, int mask) {
    size_t n = strlen(s);
    if (b->rc || n == 0) return;
    int32_t *ids;
    int k;
    if (uf_tokenizer_encode_ex(b->tok, s, n, b->texts++ ? UF_TOK_NO_PREFIX : 0, &ids, &k)) {
        b->rc = -1;
        return;
    }
    for (int i = 0; i < k; i++) plain_put(b, ids[i], mask);
    free(ids);
}

static void plain_special(struct plain_builder *b, int id, const char *what, int mask) {
    if (b->rc) return;
    if (id < 0) b->rc = uf_fail("chat template plain: the tokenizer has no %s token", what);
    else plain_put(b, id, mask);
}

static int render_plain(const struct uf_tokenizer *tok, const struct uf_chat_msg *m, int n,
                        struct uf_chat_tokens *out) {
    struct parts chk;
    memset(&chk, 0, sizeof chk);
    if (check_alternate(&chk, UF_TMPL_PLAIN, m, n, 1)) return -1;
    struct plain_builder b = {tok, out, 0, 0, 0};
    int first = n > 0 && role_is(&m[0], "system");
    const char *system = first ? m[0].content : "";
    plain_special(&b, tok->bos_id, "bos", 0);
    for (int i = first; i < n && !b.rc; i++) {
        if (role_is(&m[i], "user")) {
            char *s = uf_sprintf("%s%s%s### Instruction:\n%s\n\n### Response:\n",
                                 i == first ? system : "", i == first && system[0] ? "\n\n" : "",
                                 i == first ? "" : "\n\n", m[i].content);
            plain_text(&b, s, 0);
            free(s);
        } else {
            if (out->n_prompt < 0) out->n_prompt = out->n;
            plain_text(&b, m[i].content, 1);
            plain_special(&b, tok->eos_id, "eos", 1);
        }
    }
    if (b.rc) {
        uf_chat_tokens_free(out);
        return -1;
    }
    if (!out->ids) {
        out->ids = uf_malloc(sizeof(int32_t));
        out->mask = uf_malloc(1);
    }
    return 0;
}

int uf_template_render_chat(const struct uf_tokenizer *tok, enum uf_template tmpl,
                            const struct uf_chat_msg *msgs, int n, int flags,
                            struct uf_chat_tokens *out) {
    memset(out, 0, sizeof *out);
    if (tmpl == UF_TMPL_PLAIN) {
        out->n_prompt = -1;
        int rc = render_plain(tok, msgs, n, out);
        if (rc == 0 && out->n_prompt < 0) out->n_prompt = out->n;
        return rc;
    }
    struct parts p;
    if (render(tok, tmpl, msgs, n, flags, &p)) return -1;
    int32_t *starts = NULL;
    int rc = uf_tokenizer_encode_spans(tok, p.text, p.len, UF_TOK_PARSE_SPECIAL,
                                       (flags & UF_CHAT_LITERAL) ? p.literal : NULL, &out->ids,
                                       &starts, &out->n);
    if (rc == 0) {
        out->mask = uf_malloc((size_t)out->n + 1);
        out->n_prompt = out->n;
        for (int i = 0; i < out->n; i++) {
            out->mask[i] = starts[i] < (int32_t)p.len ? p.mask[starts[i]] : 0;
            if (out->mask[i] && out->n_prompt == out->n) out->n_prompt = i;
        }
    }
    free(starts);
    free(p.text);
    free(p.mask);
    free(p.literal);
    return rc;
}

static int render_one(const struct uf_tokenizer *tok, enum uf_template tmpl, int flags,
                      const char *system, const char *prompt, const char *response,
                      struct uf_chat_tokens *out) {
    struct uf_chat_msg m[3];
    int n = 0;
    if (!prompt) return uf_fail("chat template %s: no prompt", uf_template_name(tmpl));
    if (system && system[0]) m[n++] = (struct uf_chat_msg){"system", system};
    m[n++] = (struct uf_chat_msg){"user", prompt};
    if (response) m[n++] = (struct uf_chat_msg){"assistant", response};
    return uf_template_render_chat(tok, tmpl, m, n, flags, out);
}

int uf_template_render_ex(const struct uf_tokenizer *tok, enum uf_template tmpl, int flags,
                          const char *system, const char *prompt, const char *response,
                          struct uf_chat_tokens *out) {
    if (!response) return uf_fail("chat template %s: no response to render", uf_template_name(tmpl));
    return render_one(tok, tmpl, flags & ~UF_CHAT_GENERATION_PROMPT, system, prompt, response, out);
}

int uf_template_render(const struct uf_tokenizer *tok, enum uf_template tmpl, const char *system,
                       const char *prompt, const char *response, struct uf_chat_tokens *out) {
    return uf_template_render_ex(tok, tmpl, 0, system, prompt, response, out);
}

int uf_template_render_prompt_ex(const struct uf_tokenizer *tok, enum uf_template tmpl, int flags,
                                 const char *system, const char *prompt, struct uf_chat_tokens *out) {
    int rc = render_one(tok, tmpl, flags | UF_CHAT_GENERATION_PROMPT, system, prompt, NULL, out);
    if (rc == 0) memset(out->mask, 0, (size_t)out->n);
    return rc;
}

int uf_template_render_prompt(const struct uf_tokenizer *tok, enum uf_template tmpl,
                              const char *system, const char *prompt, struct uf_chat_tokens *out) {
    return uf_template_render_prompt_ex(tok, tmpl, 0, system, prompt, out);
}

int uf_template_stop_id(const struct uf_tokenizer *tok, enum uf_template tmpl) {
    switch (tmpl) {
    case UF_TMPL_GEMMA:
    case UF_TMPL_GEMMA3: return uf_tokenizer_token_id(tok, "<end_of_turn>");
    case UF_TMPL_LLAMA3:
    case UF_TMPL_LLAMA31: return uf_tokenizer_token_id(tok, "<|eot_id|>");
    default: return tok->eos_id;
    }
}

void uf_chat_tokens_free(struct uf_chat_tokens *c) {
    if (!c) return;
    free(c->ids);
    free(c->mask);
    memset(c, 0, sizeof *c);
}

int uf_chat_msgs_parse(const char *json, struct uf_chat_msg **msgs, int *n) {
    *msgs = NULL;
    *n = 0;
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(a);
        return uf_fail("chat messages: not a JSON array of {role, content}");
    }
    int k = cJSON_GetArraySize(a);
    struct uf_chat_msg *m = uf_calloc((size_t)(k ? k : 1), sizeof *m);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, a) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) {
            uf_chat_msgs_free(m, i);
            cJSON_Delete(a);
            return uf_fail("chat messages: message %d needs string role and content", i);
        }
        m[i].role = uf_strdup(r->valuestring);
        m[i].content = uf_strdup(c->valuestring);
        i++;
    }
    cJSON_Delete(a);
    *msgs = m;
    *n = i;
    return 0;
}

void uf_chat_msgs_free(struct uf_chat_msg *msgs, int n) {
    for (int i = 0; i < n && msgs; i++) {
        free((char *)msgs[i].role);
        free((char *)msgs[i].content);
    }
    free(msgs);
}
