/* template.c: see template.h. */
#include "formats/template.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *names[] = {"plain", "llama-2", "mistral", "gemma", "llama-3"};

int uf_template_parse(const char *name, enum uf_template *out) {
    for (unsigned i = 0; i < UF_ARRAY_LEN(names); i++)
        if (!strcmp(name, names[i])) {
            *out = (enum uf_template)i;
            return 0;
        }
    return uf_fail("unknown chat template '%s' (valid: plain, llama-2, mistral, gemma, llama-3)", name);
}

const char *uf_template_name(enum uf_template t) {
    return (unsigned)t < UF_ARRAY_LEN(names) ? names[t] : "?";
}

struct builder {
    const struct uf_tokenizer *tok;
    enum uf_template tmpl;
    struct uf_chat_tokens *out;
    int cap;
    int texts; /* text parts so far (only the first gets the prefix space) */
    int rc;
};

static void put(struct builder *b, int id, int mask) {
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

static void special(struct builder *b, const char *name, int mask) {
    if (b->rc) return;
    int id = uf_tokenizer_token_id(b->tok, name);
    if (id < 0) {
        b->rc = uf_fail("chat template %s needs the token %s, which the tokenizer lacks "
                        "(use a template that matches the model)", names[b->tmpl], name);
        return;
    }
    put(b, id, mask);
}

static void bos(struct builder *b) {
    if (b->rc) return;
    if (b->tok->bos_id < 0) b->rc = uf_fail("chat template %s: the tokenizer has no bos token", names[b->tmpl]);
    else put(b, b->tok->bos_id, 0);
}

static void eos(struct builder *b) {
    if (b->rc) return;
    if (b->tok->eos_id < 0) b->rc = uf_fail("chat template %s: the tokenizer has no eos token", names[b->tmpl]);
    else put(b, b->tok->eos_id, 1);
}

static void text(struct builder *b, const char *s, size_t n, int mask) {
    if (b->rc || n == 0) return;
    int32_t *ids;
    int k;
    int flags = b->texts++ ? UF_TOK_NO_PREFIX : 0;
    if (uf_tokenizer_encode_ex(b->tok, s, n, flags, &ids, &k) != 0) {
        b->rc = -1;
        return;
    }
    for (int i = 0; i < k; i++) put(b, ids[i], mask);
    free(ids);
}

static void textz(struct builder *b, const char *s, int mask) { text(b, s, strlen(s), mask); }

/* text with surrounding whitespace removed */
static void text_stripped(struct builder *b, const char *prefix, const char *s, const char *suffix,
                          int mask) {
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    char *t = uf_sprintf("%s%.*s%s", prefix, (int)n, s, suffix);
    textz(b, t, mask);
    free(t);
}

/* Renders the prompt part; the response (when given) follows with mask 1. */
static int render(const struct uf_tokenizer *tok, enum uf_template tmpl, const char *system,
                  const char *prompt, const char *response, struct uf_chat_tokens *out) {
    memset(out, 0, sizeof *out);
    if ((unsigned)tmpl >= UF_ARRAY_LEN(names)) return uf_fail("bad chat template id %d", (int)tmpl);
    if (!prompt) return uf_fail("chat template %s: no prompt", names[tmpl]);
    struct builder b = {tok, tmpl, out, 0, 0, 0};
    int sys = system && system[0];
    char *s;
    switch (tmpl) {
    case UF_TMPL_PLAIN:
        bos(&b);
        s = uf_sprintf("%s%s### Instruction:\n%s\n\n### Response:\n", sys ? system : "",
                       sys ? "\n\n" : "", prompt);
        textz(&b, s, 0);
        free(s);
        break;
    case UF_TMPL_LLAMA2:
        bos(&b);
        if (sys) {
            s = uf_sprintf("[INST] <<SYS>>\n%s\n<</SYS>>\n\n", system);
            text_stripped(&b, s, prompt, " [/INST]", 0);
            free(s);
        } else text_stripped(&b, "[INST] ", prompt, " [/INST]", 0);
        break;
    case UF_TMPL_MISTRAL:
        bos(&b);
        s = uf_sprintf("[INST] %s%s%s [/INST]", sys ? system : "", sys ? "\n\n" : "", prompt);
        textz(&b, s, 0);
        free(s);
        break;
    case UF_TMPL_GEMMA:
        bos(&b);
        special(&b, "<start_of_turn>", 0);
        s = uf_sprintf("user\n%s%s%s", sys ? system : "", sys ? "\n\n" : "", prompt);
        textz(&b, s, 0);
        free(s);
        special(&b, "<end_of_turn>", 0);
        textz(&b, "\n", 0);
        special(&b, "<start_of_turn>", 0);
        textz(&b, "model\n", 0);
        break;
    case UF_TMPL_LLAMA3:
        bos(&b);
        if (sys) {
            special(&b, "<|start_header_id|>", 0);
            textz(&b, "system", 0);
            special(&b, "<|end_header_id|>", 0);
            s = uf_sprintf("\n\n%s", system);
            textz(&b, s, 0);
            free(s);
            special(&b, "<|eot_id|>", 0);
        }
        special(&b, "<|start_header_id|>", 0);
        textz(&b, "user", 0);
        special(&b, "<|end_header_id|>", 0);
        s = uf_sprintf("\n\n%s", prompt);
        textz(&b, s, 0);
        free(s);
        special(&b, "<|eot_id|>", 0);
        special(&b, "<|start_header_id|>", 0);
        textz(&b, "assistant", 0);
        special(&b, "<|end_header_id|>", 0);
        textz(&b, "\n\n", 0);
        break;
    }
    out->n_prompt = out->n;
    if (response && !b.rc) {
        switch (tmpl) {
        case UF_TMPL_PLAIN: textz(&b, response, 1); eos(&b); break;
        case UF_TMPL_LLAMA2: text_stripped(&b, " ", response, "", 1); eos(&b); break;
        case UF_TMPL_MISTRAL:
            s = uf_sprintf(" %s", response);
            textz(&b, s, 1);
            free(s);
            eos(&b);
            break;
        case UF_TMPL_GEMMA: textz(&b, response, 1); special(&b, "<end_of_turn>", 1); break;
        case UF_TMPL_LLAMA3: textz(&b, response, 1); special(&b, "<|eot_id|>", 1); break;
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

int uf_template_render(const struct uf_tokenizer *tok, enum uf_template tmpl, const char *system,
                       const char *prompt, const char *response, struct uf_chat_tokens *out) {
    if (!response) return uf_fail("chat template %s: no response to render", uf_template_name(tmpl));
    return render(tok, tmpl, system, prompt, response, out);
}

int uf_template_render_prompt(const struct uf_tokenizer *tok, enum uf_template tmpl,
                              const char *system, const char *prompt, struct uf_chat_tokens *out) {
    return render(tok, tmpl, system, prompt, NULL, out);
}

int uf_template_stop_id(const struct uf_tokenizer *tok, enum uf_template tmpl) {
    switch (tmpl) {
    case UF_TMPL_GEMMA: return uf_tokenizer_token_id(tok, "<end_of_turn>");
    case UF_TMPL_LLAMA3: return uf_tokenizer_token_id(tok, "<|eot_id|>");
    default: return tok->eos_id;
    }
}

void uf_chat_tokens_free(struct uf_chat_tokens *c) {
    if (!c) return;
    free(c->ids);
    free(c->mask);
    memset(c, 0, sizeof *c);
}
