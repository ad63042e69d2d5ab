/* template.h: chat templates, each a C rendering of one model family's own Jinja chat_template
 * (tokenizer_config.json), rendered to text exactly as Jinja2 renders it and then to token ids
 * with a loss mask on the assistant turns.
 *
 * Families (name: the Hugging Face template it reproduces):
 *   plain         <bos>[{system}\n\n]### Instruction:\n{user}\n\n### Response:\n{assistant}<eos>
 *                 (unforget's own; turns after the first repeat the Instruction/Response pair)
 *   llama-2       Llama-2-chat: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>
 *                 (user/assistant text .strip()ped; every user turn starts with <s>)
 *   mistral-v0.1  Mistral-7B-Instruct-v0.1, first template: <s>[INST] {user} [/INST]{assistant}</s> 
 *                 (eos followed by a space; no system role: an error, as the template raises)
 *   mistral-v0.2  Mistral-7B-Instruct-v0.2, first template: the same without the space after </s>
 *   mistral       the later template of Mistral-7B-Instruct v0.1 / v0.2 and Mixtral-8x7B-Instruct:
 *                 <s> [INST] [{system}\n\n]{user} [/INST] {assistant}</s> (system in the first turn)
 *   mistral-v0.3  Mistral-7B-Instruct-v0.3: <s>[INST] {user}[/INST] {assistant|trim}</s>; the
 *                 system prompt goes into the last user turn only (so it is dropped from a
 *                 conversation that ends with an assistant turn, as the template does)
 *   gemma         Gemma-1/2 it: <bos><start_of_turn>user\n{user|trim}<end_of_turn>\n
 *                 <start_of_turn>model\n{assistant|trim}<end_of_turn>\n (system: an error)
 *   gemma-3       Gemma-3 it: the same, the system prompt + "\n\n" before the first user text
 *   llama-3       Meta-Llama-3-Instruct: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>
 *                 \n\n{content|trim}<|eot_id|> per message
 *   llama-3.1     Llama-3.1-Instruct: always a system block "Cutting Knowledge Date: December 2023\n
 *                 Today Date: 26 Jul 2024\n\n{system|trim}", then as llama-3 (no tools)
 * The generation prompt (add_generation_prompt) is "<start_of_turn>model\n" (gemma),
 * "<|start_header_id|>assistant<|end_header_id|>\n\n" (llama-3*), nothing elsewhere.
 * Roles must alternate user/assistant after an optional first system message where the family's
 * template checks it (an error names the message).
 *
 * Tokens: the whole rendering is encoded at once, special-token strings parsed, as Hugging Face
 * encodes apply_chat_template's text; so a special-token string typed inside a message becomes
 * that control token (HF's behaviour). UF_CHAT_LITERAL keeps such strings literal text inside
 * messages (only the template's own markup is parsed); ids then differ from HF's for such text.
 * Loss mask: 1 on the tokens whose first character lies in an assistant turn's own part of the
 * rendering (llama-2: " {text} </s>", mistral*: the text and </s>, gemma*: the text and
 * <end_of_turn>, llama-3*: the text and <|eot_id|>), 0 elsewhere.
 *
 * The prompt-only rendering is a token prefix of the full one except for mistral-v0.1/v0.2,
 * whose templates glue the response to "[/INST]" (BPE may merge across), and mistral-v0.3 with
 * a system prompt (its template puts it in the last user turn only: present in the prompt,
 * absent from the full conversation).
 *
 * Name suffix ",literal" (e.g. "llama-3,literal") sets UF_CHAT_LITERAL; "auto" takes the family
 * recognised from the model folder's tokenizer_config.json chat_template (uf_template_detect). */
#ifndef UF_TEMPLATE_H
#define UF_TEMPLATE_H

#include <stdint.h>

#include "formats/tokenizer.h"

enum uf_template {
    UF_TMPL_PLAIN = 0,
    UF_TMPL_LLAMA2,
    UF_TMPL_MISTRAL,
    UF_TMPL_GEMMA,
    UF_TMPL_LLAMA3,
    UF_TMPL_MISTRAL_V01,
    UF_TMPL_MISTRAL_V02,
    UF_TMPL_MISTRAL_V03,
    UF_TMPL_GEMMA3,
    UF_TMPL_LLAMA31,
    UF_TMPL_COUNT
};

#define UF_CHAT_GENERATION_PROMPT 1 /* end with the template's generation prompt */
#define UF_CHAT_LITERAL 2           /* special-token strings inside messages stay text */

/* name (optionally with ",literal") -> family and flags; "auto" uses tok->chat_family (tok may be
 * NULL for names other than "auto"). 0 or uf_fail listing the names. */
int uf_template_resolve(const char *name, const struct uf_tokenizer *tok, enum uf_template *out,
                        int *flags);
int uf_template_parse(const char *name, enum uf_template *out); /* no "auto", no flags */
const char *uf_template_name(enum uf_template t);
/* The family whose template this Jinja chat_template text is, or -1 (not recognised). */
int uf_template_detect(const char *chat_template);

struct uf_chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
};

/* JSON [{"role": ..., "content": ...}, ...] -> messages (strings copied). 0 or uf_fail. */
int uf_chat_msgs_parse(const char *json, struct uf_chat_msg **msgs, int *n);
void uf_chat_msgs_free(struct uf_chat_msg *msgs, int n);

struct uf_chat_tokens {
    int32_t *ids;  /* (n) */
    uint8_t *mask; /* (n) 1 = trained on */
    int n;
    int n_prompt;  /* tokens before the first trained token (n when none) */
};

/* The rendered text (malloc'd, NUL-terminated) of a conversation, as the family's Jinja template
 * renders it with bos_token/eos_token from the tokenizer. 0 or uf_fail. */
int uf_template_render_text(const struct uf_tokenizer *tok, enum uf_template tmpl,
                            const struct uf_chat_msg *msgs, int n, int flags, char **text);
/* A conversation -> ids + loss mask (every assistant turn). 0 or uf_fail. */
int uf_template_render_chat(const struct uf_tokenizer *tok, enum uf_template tmpl,
                            const struct uf_chat_msg *msgs, int n, int flags,
                            struct uf_chat_tokens *out);

/* One exchange: [system], user prompt, assistant response. system may be NULL. flags as above. */
int uf_template_render(const struct uf_tokenizer *tok, enum uf_template tmpl, const char *system,
                       const char *prompt, const char *response, struct uf_chat_tokens *out);
int uf_template_render_ex(const struct uf_tokenizer *tok, enum uf_template tmpl, int flags,
                          const char *system, const char *prompt, const char *response,
                          struct uf_chat_tokens *out);
/* Only the prompt with the generation prompt, ending where the model's response starts. */
int uf_template_render_prompt(const struct uf_tokenizer *tok, enum uf_template tmpl,
                              const char *system, const char *prompt, struct uf_chat_tokens *out);
int uf_template_render_prompt_ex(const struct uf_tokenizer *tok, enum uf_template tmpl, int flags,
                                 const char *system, const char *prompt, struct uf_chat_tokens *out);
/* The token that ends a response under this template (generation stops there), or -1. */
int uf_template_stop_id(const struct uf_tokenizer *tok, enum uf_template tmpl);
void uf_chat_tokens_free(struct uf_chat_tokens *c);

#endif
