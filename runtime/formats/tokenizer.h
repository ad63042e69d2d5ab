/* tokenizer.h: BPE tokenizers read from Hugging Face tokenizer.json, and a small trainer.
 *
 * Two styles (both HF "model": {"type": "BPE"}):
 *   - UF_TOK_SPM: SentencePiece-style BPE over characters (LLaMA-2, Mistral, Gemma): spaces
 *     become U+2581 "▁" (Metaspace pre-tokenizer, or the normalizer pair Prepend("▁") +
 *     Replace(" ", "▁") of LLaMA-2's tokenizer.json), characters missing from the vocabulary
 *     fall back to <0xNN> byte tokens (byte_fallback) or <unk>. Decoding turns ▁ back into
 *     spaces, reassembles byte tokens into UTF-8 and strips the one prepended space.
 *   - UF_TOK_BYTE_LEVEL: GPT-2 / LLaMA-3 byte-level BPE: the text is split by the pre-tokenizer
 *     regex (the LLaMA-3 and the GPT-2 patterns, implemented by hand in tokenizer.c with the
 *     exact Unicode categories of utf8proc; checked against Python's regex on every assigned
 *     code point by test_pretok_oracle_host), bytes are mapped to printable characters
 *     (bytes_to_unicode), then BPE; decoding maps the characters back to bytes.
 * Added tokens (<s>, <|begin_of_text|>, ...) are matched in the raw text before anything else
 * (longest match first) when UF_TOK_PARSE_SPECIAL is given; lstrip/rstrip/single_word are
 * ignored. BPE applies merges lowest-rank-first with a binary heap over a linked list of
 * symbols (ties: leftmost), as HF tokenizers does; vocabulary and merges are hash maps.
 *
 * The trainer builds a deterministic byte-fallback SPM-style BPE (ids 0..3 = <unk> <s> </s>
 * <pad>, then the 256 <0xNN> tokens, then frequent characters, then merges) and
 * uf_tokenizer_save writes a tokenizer.json that HF tokenizers and uf_tokenizer_load read.
 *
 * Normalizers: Prepend, Replace (String patterns), NFC, NFD, NFKC, NFKD (utf8proc), Lowercase
 * (per character, as Rust's char::to_lowercase: İ -> i̇), in tokenizer.json's order.
 * Not here: Unigram / WordPiece models, Regex Replace patterns, truncation.
 * Round trip guarantee: decode(encode(s)) == s for any bytes s without added-token text, for
 * byte-level tokenizers and for SPM tokenizers with byte fallback and the Prepend normalizer
 * form (the trainer's); with the Metaspace "first" form a leading space is lost (as in HF). */
#ifndef UF_TOKENIZER_H
#define UF_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

enum uf_tok_kind { UF_TOK_SPM = 0, UF_TOK_BYTE_LEVEL };
enum uf_tok_prepend {
    UF_PREPEND_NEVER = 0,
    UF_PREPEND_FIRST,     /* Metaspace prepend_scheme "first": only the text at offset 0 */
    UF_PREPEND_ALWAYS,    /* Metaspace "always" / add_prefix_space: every text segment */
    UF_PREPEND_NORMALIZER /* Prepend("▁") normalizer: every segment, even if it starts with ▁ */
};
enum uf_tok_split { UF_SPLIT_LLAMA3 = 0, UF_SPLIT_GPT2 };

/* encode flags */
#define UF_TOK_ADD_BOS 1
#define UF_TOK_ADD_EOS 2
#define UF_TOK_PARSE_SPECIAL 4 /* match added tokens in the text */
#define UF_TOK_NO_PREFIX 8     /* never prepend ▁ (text continues earlier text) */

/* per-id flags */
#define UF_TOKF_ADDED 1   /* listed in added_tokens */
#define UF_TOKF_SPECIAL 2 /* added token with "special": true */
#define UF_TOKF_BYTE 4    /* SPM <0xNN> byte token */
#define UF_TOKF_MODEL 8   /* present in model.vocab */

/* a normalizer step of tokenizer.json, applied in order to each text segment (except the
 * Prepend("▁") / Replace(" ", "▁") forms of SentencePiece tokenizers, done inline) */
enum uf_tok_norm_op { UF_NORM_NFC = 0, UF_NORM_NFD, UF_NORM_NFKC, UF_NORM_NFKD, UF_NORM_LOWERCASE,
                      UF_NORM_REPLACE, UF_NORM_PREPEND };
struct uf_tok_norm {
    enum uf_tok_norm_op op;
    char *from, *to; /* Replace: from -> to; Prepend: to */
};

struct uf_tok_added {
    char *content;
    int len;
    int id;
};

struct uf_tokenizer {
    enum uf_tok_kind kind;
    int n_vocab;              /* ids are 0 .. n_vocab-1 (holes possible, piece NULL) */
    int id_cap;               /* allocated entries of pieces / piece_len / flags (>= n_vocab) */
    char **pieces;            /* (n_vocab) strings as in tokenizer.json (▁ / byte-level chars) */
    int *piece_len;           /* (n_vocab) */
    uint8_t *flags;           /* (n_vocab) UF_TOKF_* */
    int byte_id[256];         /* SPM: <0xNN> ids; byte-level: id of the one-character token */
    int unk_id, bos_id, eos_id, pad_id; /* -1 when absent */
    int byte_fallback, fuse_unk, ignore_merges;
    enum uf_tok_prepend prepend;
    int replace_space;        /* SPM: " " -> "▁" */
    int metaspace_split;      /* SPM: Metaspace split=true (pieces start at each ▁) */
    int strip_leading_space;  /* decode drops one leading space */
    enum uf_tok_split split;  /* byte-level pre-tokenizer pattern */
    int n_added;
    struct uf_tok_added *added; /* (n_added) sorted by length, longest first */
    int n_merges;
    int32_t *merge_a, *merge_b; /* (n_merges) in rank order */
    /* hash maps (private) */
    uint32_t vocab_cap;
    int32_t *vocab_slots;       /* (vocab_cap) id or -1 */
    uint32_t merge_cap;
    uint64_t *merge_keys;       /* (merge_cap) (a << 32 | b) + 1, 0 = empty */
    int32_t *merge_rank, *merge_out;
    int16_t added_first[256];   /* index of first added token starting with this byte, or -1 */
    int spm_chunkable;          /* no piece has ▁ after another character: BPE may run per word */
    int n_norm;
    struct uf_tok_norm *norm;   /* (n_norm) normalizer steps (see above) */
    char *chat_template;        /* tokenizer_config.json's chat_template (the "default" one), or NULL */
};

/* Loads <path>/tokenizer.json (+ tokenizer_config.json for bos/eos names) when path is a
 * folder, or the tokenizer.json file itself. 0 or uf_fail. */
int uf_tokenizer_load(struct uf_tokenizer *t, const char *path);
/* Parses tokenizer.json text; `where` names it in errors. */
int uf_tokenizer_load_json(struct uf_tokenizer *t, const char *json, size_t len, const char *where);
void uf_tokenizer_free(struct uf_tokenizer *t);

/* text -> ids (malloc'd, *n of them). flags: UF_TOK_*. 0 or uf_fail. */
int uf_tokenizer_encode_ex(const struct uf_tokenizer *t, const char *text, size_t len, int flags,
                           int32_t **ids, int *n);
/* The same, with (when starts is not NULL) the byte offset in text where each id's first
 * character comes from (an added token: its own offset; SentencePiece's prepended ▁: the segment
 * start), and (when literal is not NULL, len bytes) no added token is matched at a byte whose
 * literal[i] is 1 (special-token strings there stay text). */
int uf_tokenizer_encode_spans(const struct uf_tokenizer *t, const char *text, size_t len, int flags,
                              const uint8_t *literal, int32_t **ids, int32_t **starts, int *n);
/* Convenience: NUL-terminated text, added tokens parsed, bos prepended when add_bos. */
int uf_tokenizer_encode(const struct uf_tokenizer *t, const char *text, int add_bos,
                        int32_t **ids, int *n);
/* ids -> text (malloc'd, NUL-terminated, *len bytes). skip_special drops UF_TOKF_SPECIAL ids.
 * Unknown ids are an error. */
int uf_tokenizer_decode(const struct uf_tokenizer *t, const int32_t *ids, int n, int skip_special,
                        char **text, size_t *len);
/* The bytes one token stands for (▁ -> space, <0xNN> -> that byte, byte-level chars -> bytes,
 * added tokens -> their text), for streaming output. Returns the length (may exceed cap: then
 * only cap bytes were written), or -1 for an invalid id. No leading-space stripping. */
int uf_tokenizer_token_to_piece(const struct uf_tokenizer *t, int id, char *buf, int cap);
const char *uf_tokenizer_vocab_piece(const struct uf_tokenizer *t, int id); /* raw, or NULL */
int uf_tokenizer_token_id(const struct uf_tokenizer *t, const char *piece); /* id or -1 */

/* Trains a byte-fallback SPM-style BPE with at most vocab_size tokens (>= 262) on n_texts texts
 * (lens[i] bytes each; lens NULL = NUL-terminated). Stops early when no pair occurs twice.
 * Deterministic. 0 or uf_fail. */
int uf_tokenizer_train(struct uf_tokenizer *t, const char *const *texts, const size_t *lens,
                       int n_texts, int vocab_size);
/* Writes tokenizer.json (atomically). 0 or uf_fail. */
int uf_tokenizer_save(const struct uf_tokenizer *t, const char *path);

/* The tokenizer's normalizer steps (t->norm) applied to text, for tests: malloc'd, *out_len
 * bytes, NUL-terminated. */
char *uf_tokenizer_normalize(const struct uf_tokenizer *t, const char *text, size_t len,
                             size_t *out_len);

/* Byte-level pre-tokenizer, exposed for tests: length in bytes of the pre-token starting at
 * text[i] (i < len). */
size_t uf_tok_pretoken_len(enum uf_tok_split split, const unsigned char *text, size_t len,
                           size_t i);

#endif
