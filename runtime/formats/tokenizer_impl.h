/* tokenizer_impl.h: internals shared by tokenizer.c (load, encode, decode, save) and
 * tokenizer_train.c (the BPE trainer). Not an interface for other files: use tokenizer.h. */
#ifndef UF_TOKENIZER_IMPL_H
#define UF_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "formats/tokenizer.h"

#define UF_TOK_SPM_SPACE "\xe2\x96\x81" /* U+2581 ▁ */

/* UTF-8: the code point at s[i] (*cp) and its byte length (an invalid byte: length 1, code point
 * 0x110000 + byte); utf8_put writes cp and returns its length. */
int uf_tok_utf8_next(const unsigned char *s, size_t n, size_t i, uint32_t *cp);
int uf_tok_utf8_put(uint32_t cp, char *out);
/* Unicode categories: \s (White_Space), \p{L}, \p{N} (utf8proc; see tokenizer.c) */
int uf_tok_cat_letter(uint32_t c);
int uf_tok_cat_number(uint32_t c);
int uf_tok_cat_space(uint32_t c);
/* GPT-2 bytes_to_unicode tables, built once */
void uf_tok_byte_map_init(void);
/* hash of a merge pair key */
uint32_t uf_tok_pair_hash(uint64_t k);
/* vocabulary: piece `id` = s[0..len) with UF_TOKF_* flags; the lookup tables are rebuilt by
 * vocab_build (vocabulary) and finish_tables (vocabulary, merges, added tokens, specials). */
void uf_tok_set_piece(struct uf_tokenizer *t, int id, const char *s, int len, int flags);
void uf_tok_vocab_build(struct uf_tokenizer *t);
int uf_tok_vocab_find(const struct uf_tokenizer *t, const char *s, int n);
void uf_tok_finish_tables(struct uf_tokenizer *t);

#endif
