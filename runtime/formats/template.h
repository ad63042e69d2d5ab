/* template.h: chat templates rendered straight into token ids with a loss mask.
 *
 * Templates (system is optional everywhere; NULL or "" = none):
 *   "plain"   <bos>[{system}\n\n]### Instruction:\n{prompt}\n\n### Response:\n{response}<eos>
 *   "llama-2" <s>[INST] [<<SYS>>\n{system}\n<</SYS>>\n\n]{prompt} [/INST] {response}</s>
 *             (prompt and response stripped of surrounding whitespace, as Meta's reference)
 *   "mistral" <s>[INST] [{system}\n\n]{prompt} [/INST] {response}</s>
 *   "gemma"   <bos><start_of_turn>user\n[{system}\n\n]{prompt}<end_of_turn>\n
 *             <start_of_turn>model\n{response}<end_of_turn>
 *   "llama-3" <|begin_of_text|>[<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>]
 *             <|start_header_id|>user<|end_header_id|>\n\n{prompt}<|eot_id|>
 *             <|start_header_id|>assistant<|end_header_id|>\n\n{response}<|eot_id|>
 * Special tokens come from the tokenizer by name (an error names a missing one); user text is
 * never scanned for special tokens (no injection). Text parts are encoded separately: the
 * first with the tokenizer's prefix space, later ones without (UF_TOK_NO_PREFIX), so the
 * response of llama-2/mistral is encoded like SentencePiece encodes " {response}".
 * The loss mask is 1 on the response tokens and the end token (eos / <end_of_turn> /
 * <|eot_id|>), 0 elsewhere. The prompt rendering is exactly the prefix of the full rendering
 * that precedes the response, so generation continues from it and stops at the end token. */
#ifndef UF_TEMPLATE_H
#define UF_TEMPLATE_H

#include <stdint.h>

#include "formats/tokenizer.h"

enum uf_template { UF_TMPL_PLAIN = 0, UF_TMPL_LLAMA2, UF_TMPL_MISTRAL, UF_TMPL_GEMMA, UF_TMPL_LLAMA3 };

int uf_template_parse(const char *name, enum uf_template *out); /* 0 or uf_fail listing names */
const char *uf_template_name(enum uf_template t);

struct uf_chat_tokens {
    int32_t *ids;  /* (n) */
    uint8_t *mask; /* (n) 1 = trained on */
    int n;
    int n_prompt;  /* tokens before the response (all of them for a prompt-only rendering) */
};

/* system may be NULL. 0 or uf_fail. */
int uf_template_render(const struct uf_tokenizer *tok, enum uf_template tmpl, const char *system,
                       const char *prompt, const char *response, struct uf_chat_tokens *out);
/* Only the prompt, ending where the model's response starts (mask all 0). */
int uf_template_render_prompt(const struct uf_tokenizer *tok, enum uf_template tmpl,
                              const char *system, const char *prompt, struct uf_chat_tokens *out);
/* The token that ends a response under this template (generation stops there), or -1. */
int uf_template_stop_id(const struct uf_tokenizer *tok, enum uf_template tmpl);
void uf_chat_tokens_free(struct uf_chat_tokens *c);

#endif
