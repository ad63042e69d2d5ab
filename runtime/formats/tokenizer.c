/* tokenizer.c: see tokenizer.h. Sections: hash maps, UTF-8 + Unicode categories, pre-tokenizer
 * regexes, loading tokenizer.json, BPE (the hot spot: bpe_merge), encode/decode, save. The
 * trainer is tokenizer_train.c. */
#include "formats/tokenizer.h"

#include <limits.h>
#include <cjson/cJSON.h>
#include <utf8proc.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "formats/tokenizer_impl.h"

/* ---- hash maps ------------------------------------------------------------------------- */
static uint32_t str_hash(const char *s, int n) { return (uint32_t)uf_hash64(s, (size_t)n, UF_HASH_SEED); }

static uint32_t pow2_at_least(uint32_t n) {
    uint32_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

void uf_tok_vocab_build(struct uf_tokenizer *t) {
    free(t->vocab_slots);
    t->vocab_cap = pow2_at_least((uint32_t)t->n_vocab * 2 + 1);
    t->vocab_slots = uf_malloc(sizeof(int32_t) * t->vocab_cap);
    for (uint32_t i = 0; i < t->vocab_cap; i++) t->vocab_slots[i] = -1;
    for (int id = 0; id < t->n_vocab; id++) {
        if (!t->pieces[id] || !(t->flags[id] & UF_TOKF_MODEL)) continue;
        uint32_t h = str_hash(t->pieces[id], t->piece_len[id]) & (t->vocab_cap - 1);
        while (t->vocab_slots[h] >= 0) h = (h + 1) & (t->vocab_cap - 1);
        t->vocab_slots[h] = id;
    }
}

/* id of the model-vocabulary piece s[0..n), or -1 */
int uf_tok_vocab_find(const struct uf_tokenizer *t, const char *s, int n) {
    uint32_t h = str_hash(s, n) & (t->vocab_cap - 1);
    for (;;) {
        int id = t->vocab_slots[h];
        if (id < 0) return -1;
        if (t->piece_len[id] == n && memcmp(t->pieces[id], s, (size_t)n) == 0) return id;
        h = (h + 1) & (t->vocab_cap - 1);
    }
}

uint32_t uf_tok_pair_hash(uint64_t k) { return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32); }

static void merges_build(struct uf_tokenizer *t) {
    free(t->merge_keys);
    free(t->merge_rank);
    free(t->merge_out);
    t->merge_cap = pow2_at_least((uint32_t)t->n_merges * 2 + 1);
    t->merge_keys = uf_calloc(t->merge_cap, sizeof(uint64_t));
    t->merge_rank = uf_malloc(sizeof(int32_t) * t->merge_cap);
    t->merge_out = uf_malloc(sizeof(int32_t) * t->merge_cap);
    for (int r = 0; r < t->n_merges; r++) {
        int a = t->merge_a[r], b = t->merge_b[r];
        uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
        uint32_t h = uf_tok_pair_hash(key) & (t->merge_cap - 1);
        while (t->merge_keys[h] && t->merge_keys[h] != key) h = (h + 1) & (t->merge_cap - 1);
        if (t->merge_keys[h]) continue; /* duplicate merge: the first (lowest rank) wins */
        char *cat = uf_malloc((size_t)(t->piece_len[a] + t->piece_len[b]) + 1);
        memcpy(cat, t->pieces[a], (size_t)t->piece_len[a]);
        memcpy(cat + t->piece_len[a], t->pieces[b], (size_t)t->piece_len[b]);
        int out = uf_tok_vocab_find(t, cat, t->piece_len[a] + t->piece_len[b]);
        free(cat);
        t->merge_keys[h] = key;
        t->merge_rank[h] = r;
        t->merge_out[h] = out; /* checked >= 0 by the loader */
    }
}

/* rank of merging (a, b) and its result, or -1 */
static int merge_find(const struct uf_tokenizer *t, int a, int b, int *out) {
    if (a < 0 || b < 0 || t->merge_cap == 0) return -1;
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint32_t h = uf_tok_pair_hash(key) & (t->merge_cap - 1);
    for (;;) {
        uint64_t k = t->merge_keys[h];
        if (!k) return -1;
        if (k == key) {
            *out = t->merge_out[h];
            return t->merge_rank[h];
        }
        h = (h + 1) & (t->merge_cap - 1);
    }
}

/* ---- UTF-8 and Unicode categories ---------------------------------------------------------
 * Invalid UTF-8 bytes decode as one "character" each with code point 0x110000 + byte, which is
 * in no category (it behaves like punctuation in the regexes and is byte-encoded by BPE). */
int uf_tok_utf8_next(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
    unsigned c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 1) { *cp = c; return 1; }
    if (len == 0 || i + (size_t)len > n) { *cp = 0x110000 + c; return 1; }
    uint32_t v = c & (0x7f >> len);
    for (int k = 1; k < len; k++) {
        if ((s[i + k] & 0xc0) != 0x80) { *cp = 0x110000 + c; return 1; }
        v = (v << 6) | (s[i + k] & 0x3f);
    }
    static const uint32_t minv[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < minv[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) { *cp = 0x110000 + c; return 1; }
    *cp = v;
    return len;
}

int uf_tok_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* \s: Unicode White_Space (exact). */
int uf_tok_cat_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

/* \p{L} and \p{N}: the Unicode general categories L* (Lu Ll Lt Lm Lo) and N* (Nd Nl No), exact,
 * from utf8proc's tables (its Unicode version: utf8proc_unicode_version()). ASCII is decided
 * inline: it is most of the text and the hot spot of the pre-tokenizer. */
int uf_tok_cat_number(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    if (c > 0x10ffff) return 0; /* invalid byte */
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

int uf_tok_cat_letter(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    if (c > 0x10ffff) return 0; /* invalid byte */
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

/* ---- pre-tokenizer regexes (byte-level) --------------------------------------------------- */
struct cur { const unsigned char *s; size_t n; };

static uint32_t cp_at(struct cur c, size_t i, int *len) {
    uint32_t cp;
    *len = uf_tok_utf8_next(c.s, c.n, i, &cp);
    return cp;
}

static int is_other(uint32_t cp) { return !uf_tok_cat_space(cp) && !uf_tok_cat_letter(cp) && !uf_tok_cat_number(cp); }

static size_t run_while(struct cur c, size_t i, int (*pred)(uint32_t)) {
    while (i < c.n) {
        int l;
        uint32_t cp = cp_at(c, i, &l);
        if (!pred(cp)) break;
        i += (size_t)l;
    }
    return i;
}

static int lower_eq(unsigned char a, char b) { return (a | 0x20) == b; }

static size_t contraction(struct cur c, size_t i, int icase) {
    if (c.s[i] != '\'' || i + 1 >= c.n) return 0;
    unsigned char a = c.s[i + 1], b = i + 2 < c.n ? c.s[i + 2] : 0;
    if (!icase) {
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        return 0;
    }
    if (lower_eq(a, 's') || lower_eq(a, 't') || lower_eq(a, 'm') || lower_eq(a, 'd')) return 2;
    if (a == 0xc5 && b == 0xbf) return 3; /* U+017F long s: simple case folding makes it 's' */
    if ((lower_eq(a, 'r') && lower_eq(b, 'e')) || (lower_eq(a, 'v') && lower_eq(b, 'e')) ||
        (lower_eq(a, 'l') && lower_eq(b, 'l')))
        return 3;
    return 0;
}

/* whitespace alternatives shared by both patterns: \s+(?!\S) | \s+ (after \s*[\r\n]+ for llama3) */
static size_t ws_tail(struct cur c, size_t i, size_t end) {
    if (end == c.n) return end - i;
    size_t last = end, p = i; /* start of the last whitespace char in [i, end) */
    while (p < end) {
        int l;
        cp_at(c, p, &l);
        last = p;
        p += (size_t)l;
    }
    if (last > i) return last - i; /* \s+(?!\S): leave the last space for the next word */
    return end - i;                /* \s+ */
}

static int is_nl(uint32_t cp) { return cp == '\r' || cp == '\n'; }

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t split_llama3(struct cur c, size_t i) {
    size_t k = contraction(c, i, 1);
    if (k) return k;
    int l0, l1 = 0;
    uint32_t c0 = cp_at(c, i, &l0), c1 = 0;
    if (i + (size_t)l0 < c.n) c1 = cp_at(c, i + (size_t)l0, &l1);
    if (uf_tok_cat_letter(c0)) return run_while(c, i, uf_tok_cat_letter) - i;
    if (!is_nl(c0) && !uf_tok_cat_number(c0) && i + (size_t)l0 < c.n && uf_tok_cat_letter(c1))
        return run_while(c, i + (size_t)l0, uf_tok_cat_letter) - i;
    if (uf_tok_cat_number(c0)) {
        size_t j = i;
        for (int d = 0; d < 3 && j < c.n; d++) {
            int l;
            if (!uf_tok_cat_number(cp_at(c, j, &l))) break;
            j += (size_t)l;
        }
        return j - i;
    }
    size_t j = i;
    if (c0 == ' ' && l1 && is_other(c1)) j += 1;
    if (j < c.n) {
        int l;
        if (is_other(cp_at(c, j, &l))) {
            j = run_while(c, j, is_other);
            j = run_while(c, j, is_nl);
            return j - i;
        }
    }
    if (uf_tok_cat_space(c0)) {
        size_t end = run_while(c, i, uf_tok_cat_space), p = i, last_nl = 0;
        int has_nl = 0;
        while (p < end) {
            int l;
            uint32_t cp = cp_at(c, p, &l);
            if (is_nl(cp)) { has_nl = 1; last_nl = p; }
            p += (size_t)l;
        }
        if (has_nl) return last_nl + 1 - i;
        return ws_tail(c, i, end);
    }
    return (size_t)l0; /* unreachable: every character is a letter, number, space or other */
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t split_gpt2(struct cur c, size_t i) {
    size_t k = contraction(c, i, 0);
    if (k) return k;
    int l0, l1 = 0;
    uint32_t c0 = cp_at(c, i, &l0), c1 = 0;
    if (i + 1 < c.n) c1 = cp_at(c, i + (size_t)l0, &l1);
    size_t j = (c0 == ' ' && l1) ? i + 1 : i;
    uint32_t f = j == i ? c0 : c1;
    if (uf_tok_cat_letter(f)) return run_while(c, j, uf_tok_cat_letter) - i;
    if (uf_tok_cat_number(f)) return run_while(c, j, uf_tok_cat_number) - i;
    if (is_other(f)) return run_while(c, j, is_other) - i;
    if (uf_tok_cat_space(c0)) return ws_tail(c, i, run_while(c, i, uf_tok_cat_space));
    return (size_t)l0;
}

size_t uf_tok_pretoken_len(enum uf_tok_split split, const unsigned char *text, size_t len,
                           size_t i) {
    struct cur c = {text, len};
    size_t k = split == UF_SPLIT_GPT2 ? split_gpt2(c, i) : split_llama3(c, i);
    return k ? k : 1;
}

/* ---- GPT-2 bytes_to_unicode ------------------------------------------------------------- */
static uint32_t byte_to_cp[256];
static int16_t cp_to_byte[324]; /* code points < 324 only */

void uf_tok_byte_map_init(void) {
    if (byte_to_cp['!']) return;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        byte_to_cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
    }
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp[b]] = (int16_t)b;
}

/* ---- loading ------------------------------------------------------------------------------- */
static int cmp_added(const void *a, const void *b) {
    const struct uf_tok_added *x = a, *y = b;
    if (x->len != y->len) return y->len - x->len;
    int c = memcmp(x->content, y->content, (size_t)x->len);
    return c ? c : x->id - y->id;
}

/* Grows the id tables to hold id. */
static void ensure_id(struct uf_tokenizer *t, int id) {
    if (id < t->n_vocab) return;
    int n = id + 1;
    if (n > t->id_cap) { /* geometric growth: loading a 256k vocabulary id by id stays linear */
        int cap = t->id_cap > 0 ? t->id_cap : 256;
        while (cap < n) cap = cap > INT_MAX / 2 ? n : cap * 2;
        t->pieces = uf_realloc(t->pieces, sizeof(char *) * (size_t)cap);
        t->piece_len = uf_realloc(t->piece_len, sizeof(int) * (size_t)cap);
        t->flags = uf_realloc(t->flags, (size_t)cap);
        t->id_cap = cap;
    }
    for (int i = t->n_vocab; i < n; i++) {
        t->pieces[i] = NULL;
        t->piece_len[i] = 0;
        t->flags[i] = 0;
    }
    t->n_vocab = n;
}

void uf_tok_set_piece(struct uf_tokenizer *t, int id, const char *s, int len, int flags) {
    ensure_id(t, id);
    if (!t->pieces[id]) {
        t->pieces[id] = uf_strndup(s, (size_t)len);
        t->piece_len[id] = len;
    }
    t->flags[id] |= (uint8_t)flags;
}

/* Finalizes derived tables: byte ids, added-token index, hash maps, special ids. */
void uf_tok_finish_tables(struct uf_tokenizer *t) {
    uf_tok_vocab_build(t);
    for (int b = 0; b < 256; b++) {
        t->byte_id[b] = -1;
        if (t->kind == UF_TOK_SPM) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = uf_tok_vocab_find(t, name, 6);
            if (t->byte_id[b] >= 0) t->flags[t->byte_id[b]] |= UF_TOKF_BYTE;
        } else {
            char u[4];
            int l = uf_tok_utf8_put(byte_to_cp[b], u);
            t->byte_id[b] = uf_tok_vocab_find(t, u, l);
        }
    }
    t->spm_chunkable = 1;
    for (int id = 0; id < t->n_vocab && t->kind == UF_TOK_SPM; id++) {
        const char *p = t->pieces[id];
        for (int i = 1; p && (t->flags[id] & UF_TOKF_MODEL) && i + 3 <= t->piece_len[id]; i++)
            if (!memcmp(p + i, UF_TOK_SPM_SPACE, 3) && !(i >= 3 && !memcmp(p + i - 3, UF_TOK_SPM_SPACE, 3)))
                t->spm_chunkable = 0;
    }
    if (t->n_added > 0) qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    for (int b = 0; b < 256; b++) t->added_first[b] = -1;
    for (int i = t->n_added - 1; i >= 0; i--)
        if (i < 32767) t->added_first[(unsigned char)t->added[i].content[0]] = (int16_t)i;
    merges_build(t);
}

static int find_any(const struct uf_tokenizer *t, const char *const *names) {
    for (int k = 0; names[k]; k++) {
        for (int i = 0; i < t->n_added; i++)
            if (strcmp(t->added[i].content, names[k]) == 0) return t->added[i].id;
        int id = uf_tok_vocab_find(t, names[k], (int)strlen(names[k]));
        if (id >= 0) return id;
    }
    return -1;
}

static void guess_specials(struct uf_tokenizer *t) {
    static const char *bos[] = {"<s>", "<bos>", "<|begin_of_text|>", "<|startoftext|>", NULL};
    static const char *eos[] = {"</s>", "<eos>", "<|end_of_text|>", "<|endoftext|>", NULL};
    static const char *pad[] = {"<pad>", "<|finetune_right_pad_id|>", NULL};
    t->bos_id = find_any(t, bos);
    t->eos_id = find_any(t, eos);
    t->pad_id = find_any(t, pad);
}

/* Does this JSON node (normalizer / pre-tokenizer, maybe a Sequence) contain a node of type? */
static const cJSON *find_type(const cJSON *node, const char *type) {
    if (!cJSON_IsObject(node)) return NULL;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(node, "type");
    if (cJSON_IsString(ty) && strcmp(ty->valuestring, type) == 0) return node;
    const char *lists[] = {"normalizers", "pretokenizers", "decoders", "processors"};
    for (size_t k = 0; k < UF_ARRAY_LEN(lists); k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(node, lists[k]);
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            const cJSON *f = find_type(e, type);
            if (f) return f;
        }
    }
    return NULL;
}

static int json_bool(const cJSON *o, const char *key, int dflt) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(j)) return cJSON_IsTrue(j);
    return dflt;
}

static const char *pattern_string(const cJSON *node, const char *kind) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(node, "pattern");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, kind);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* Collects the normalizer steps (a Sequence is flattened) into t->norm. */
static int collect_norm(struct uf_tokenizer *t, const cJSON *node, const char *w, int depth) {
    if (!node || cJSON_IsNull(node)) return 0;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(node, "type");
    if (!cJSON_IsString(ty) || depth > 8) return uf_fail("%s: normalizer without a type", w);
    const char *k = ty->valuestring;
    if (!strcmp(k, "Sequence")) {
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(node, "normalizers"))
            if (collect_norm(t, e, w, depth + 1)) return -1;
        return 0;
    }
    struct uf_tok_norm n = {0};
    if (!strcmp(k, "NFC")) n.op = UF_NORM_NFC;
    else if (!strcmp(k, "NFD")) n.op = UF_NORM_NFD;
    else if (!strcmp(k, "NFKC")) n.op = UF_NORM_NFKC;
    else if (!strcmp(k, "NFKD")) n.op = UF_NORM_NFKD;
    else if (!strcmp(k, "Lowercase")) n.op = UF_NORM_LOWERCASE;
    else if (!strcmp(k, "Replace")) {
        const char *from = pattern_string(node, "String");
        const cJSON *to = cJSON_GetObjectItemCaseSensitive(node, "content");
        if (!from || !from[0] || !cJSON_IsString(to))
            return uf_fail("%s: Replace normalizer: only a non-empty String pattern and a string "
                           "content are supported", w);
        n.op = UF_NORM_REPLACE;
        n.from = uf_strdup(from);
        n.to = uf_strdup(to->valuestring);
    } else if (!strcmp(k, "Prepend")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(node, "prepend");
        if (!cJSON_IsString(p)) return uf_fail("%s: Prepend normalizer without a prepend string", w);
        n.op = UF_NORM_PREPEND;
        n.to = uf_strdup(p->valuestring);
    } else
        return uf_fail("%s: unsupported normalizer '%s' (supported: NFC, NFD, NFKC, NFKD, Lowercase, "
                       "Replace, Prepend, Sequence)", w, k);
    t->norm = uf_realloc(t->norm, sizeof *t->norm * (size_t)(t->n_norm + 1));
    t->norm[t->n_norm++] = n;
    return 0;
}

static void free_norm(struct uf_tokenizer *t) {
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].from);
        free(t->norm[i].to);
    }
    free(t->norm);
    t->norm = NULL;
    t->n_norm = 0;
}

static int parse_config(struct uf_tokenizer *t, const cJSON *root, const char *w) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (collect_norm(t, norm, w, 0)) return -1;
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    const cJSON *bl = find_type(pre, "ByteLevel");
    if (bl) {
        t->kind = UF_TOK_BYTE_LEVEL;
        const cJSON *sp = find_type(pre, "Split");
        if (sp) {
            const char *re = pattern_string(sp, "Regex");
            if (re && strstr(re, "\\p{N}{1,3}") && strstr(re, "(?i:")) t->split = UF_SPLIT_LLAMA3;
            else if (re && strstr(re, "?\\p{L}+| ?\\p{N}+")) t->split = UF_SPLIT_GPT2;
            else
                return uf_fail("%s: unsupported pre-tokenizer Split pattern '%s' (supported: the "
                               "LLaMA-3 and GPT-2 patterns)", w, re ? re : "(not a regex)");
        } else if (json_bool(bl, "use_regex", 1)) {
            t->split = UF_SPLIT_GPT2;
        } else
            return uf_fail("%s: ByteLevel pre-tokenizer without a split regex is not supported", w);
        if (json_bool(bl, "add_prefix_space", 0))
            return uf_fail("%s: ByteLevel add_prefix_space=true is not supported", w);
        return 0;
    }
    t->kind = UF_TOK_SPM;
    const cJSON *ms = find_type(pre, "Metaspace");
    /* SentencePiece's own forms, Prepend("▁") and Replace(" ", "▁") only: done inline (fast) */
    int inline_ok = t->n_norm > 0, has_space_rep = 0;
    for (int i = 0; i < t->n_norm; i++) {
        const struct uf_tok_norm *n = &t->norm[i];
        int sp_rep = n->op == UF_NORM_REPLACE && !strcmp(n->from, " ") && !strcmp(n->to, UF_TOK_SPM_SPACE);
        has_space_rep |= sp_rep;
        inline_ok &= sp_rep || (n->op == UF_NORM_PREPEND && !strcmp(n->to, UF_TOK_SPM_SPACE));
    }
    if (inline_ok) {
        for (int i = 0; i < t->n_norm; i++) {
            if (t->norm[i].op == UF_NORM_REPLACE) t->replace_space = 1;
            else t->prepend = UF_PREPEND_NORMALIZER;
        }
        free_norm(t);
    }
    if (ms) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(ms, "replacement");
        if (cJSON_IsString(r) && strcmp(r->valuestring, UF_TOK_SPM_SPACE))
            return uf_fail("%s: Metaspace replacement must be \"\u2581\"", w);
        t->replace_space = 1;
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(ms, "prepend_scheme");
        if (cJSON_IsString(ps)) {
            if (!strcmp(ps->valuestring, "first")) t->prepend = UF_PREPEND_FIRST;
            else if (!strcmp(ps->valuestring, "always")) t->prepend = UF_PREPEND_ALWAYS;
            else if (!strcmp(ps->valuestring, "never")) t->prepend = UF_PREPEND_NEVER;
            else return uf_fail("%s: unknown Metaspace prepend_scheme '%s'", w, ps->valuestring);
        } else
            t->prepend = json_bool(ms, "add_prefix_space", 1) ? UF_PREPEND_ALWAYS : UF_PREPEND_NEVER;
        t->metaspace_split = json_bool(ms, "split", 1);
    } else if (cJSON_IsObject(pre)) {
        /* Gemma: Split on " " after spaces became ▁ is a no-op */
        const cJSON *sp = find_type(pre, "Split");
        const char *s = sp ? pattern_string(sp, "String") : NULL;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(pre, "type");
        if (!(sp && s && !strcmp(s, " ") && (t->replace_space || has_space_rep)) &&
            !(cJSON_IsString(ty) && !strcmp(ty->valuestring, "Sequence") && !sp))
            return uf_fail("%s: unsupported pre-tokenizer '%s' for a SentencePiece-style BPE", w,
                           cJSON_IsString(ty) ? ty->valuestring : "?");
    }
    if (!t->replace_space && !has_space_rep && !t->byte_fallback)
        return uf_fail("%s: neither ByteLevel nor Metaspace/\u2581 handling found: unsupported "
                       "tokenizer style", w);
    /* decoding: drop one leading space when a Strip decoder or a prepending Metaspace is used */
    const cJSON *st = find_type(dec, "Strip");
    const cJSON *md = find_type(dec, "Metaspace");
    if (st) {
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(st, "start");
        t->strip_leading_space = cJSON_IsNumber(start) && start->valueint >= 1;
    } else if (md) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(md, "prepend_scheme");
        t->strip_leading_space = cJSON_IsString(ps) ? strcmp(ps->valuestring, "never") != 0
                                                    : json_bool(md, "add_prefix_space", 1);
    } else t->strip_leading_space = 0;
    return 0;
}

static int parse_tokenizer(struct uf_tokenizer *t, const cJSON *root, const char *w) {
    uf_tok_byte_map_init();
    if (!cJSON_IsObject(root)) return uf_fail("%s: not a JSON object", w);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return uf_fail("%s: no \"model\" object", w);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "BPE") != 0)
        return uf_fail("%s: model type '%s' is not supported (only BPE)", w, type->valuestring);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return uf_fail("%s: model.vocab is not an object", w);
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return uf_fail("%s: model.merges is not an array", w);
    t->byte_fallback = json_bool(model, "byte_fallback", 0);
    t->fuse_unk = json_bool(model, "fuse_unk", 0);
    t->ignore_merges = json_bool(model, "ignore_merges", 0);
    const cJSON *e;
    int count = 0;
    cJSON_ArrayForEach(e, vocab) count++;
    const int max_id = 1 << 24;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= max_id ||
            e->valuedouble != (double)e->valueint)
            return uf_fail("%s: vocab entry '%s' has a bad id (want an integer in [0, 2^24))", w,
                           e->string ? e->string : "?");
        int id = e->valueint;
        if (id < t->n_vocab && t->pieces[id])
            return uf_fail("%s: id %d is used by both '%s' and '%s'", w, id, t->pieces[id], e->string);
        if (!e->string[0]) return uf_fail("%s: empty vocab piece (id %d)", w, id);
        uf_tok_set_piece(t, id, e->string, (int)strlen(e->string), UF_TOKF_MODEL);
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= max_id ||
            !cJSON_IsString(content) || !content->valuestring[0])
            return uf_fail("%s: added_tokens entry without a valid id and non-empty content", w);
        int i = id->valueint, len = (int)strlen(content->valuestring);
        if (i < t->n_vocab && t->pieces[i] &&
            (t->piece_len[i] != len || memcmp(t->pieces[i], content->valuestring, (size_t)len)))
            return uf_fail("%s: added token '%s' reuses id %d of '%s'", w, content->valuestring, i,
                           t->pieces[i]);
        uf_tok_set_piece(t, i, content->valuestring, len,
                  UF_TOKF_ADDED | (json_bool(e, "special", 0) ? UF_TOKF_SPECIAL : 0));
        t->added = uf_realloc(t->added, sizeof *t->added * (size_t)(t->n_added + 1));
        t->added[t->n_added].content = uf_strdup(content->valuestring);
        t->added[t->n_added].len = len;
        t->added[t->n_added].id = i;
        t->n_added++;
    }
    if (t->n_vocab == 0) return uf_fail("%s: empty vocabulary", w);
    if (parse_config(t, root, w) != 0) return -1;
    uf_tok_vocab_build(t);
    int nm = cJSON_GetArraySize(merges);
    t->merge_a = uf_malloc(sizeof(int32_t) * (size_t)(nm + 1));
    t->merge_b = uf_malloc(sizeof(int32_t) * (size_t)(nm + 1));
    int r = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *b = NULL;
        int la = 0, lb = 0;
        if (cJSON_IsString(e)) {
            const char *s = e->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                return uf_fail("%s: merge %d '%s' is not two pieces separated by one space", w, r, s);
            a = s, la = (int)(sp - s), b = sp + 1, lb = (int)strlen(b);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 0)) && cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring, la = (int)strlen(a);
            b = cJSON_GetArrayItem(e, 1)->valuestring, lb = (int)strlen(b);
        } else
            return uf_fail("%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", w, r);
        int ia = uf_tok_vocab_find(t, a, la), ib = uf_tok_vocab_find(t, b, lb);
        char *cat = uf_malloc((size_t)(la + lb) + 1);
        memcpy(cat, a, (size_t)la);
        memcpy(cat + la, b, (size_t)lb);
        cat[la + lb] = 0;
        int io = uf_tok_vocab_find(t, cat, la + lb);
        if (ia < 0 || ib < 0 || io < 0) {
            uf_fail("%s: merge %d ('%.*s' + '%.*s') uses a piece missing from the vocabulary ('%s')",
                    w, r, la, a, lb, b, ia < 0 ? "left" : ib < 0 ? "right" : cat);
            free(cat);
            return -1;
        }
        free(cat);
        t->merge_a[r] = ia;
        t->merge_b[r] = ib;
        r++;
    }
    t->n_merges = r;
    uf_tok_finish_tables(t);
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    t->unk_id = cJSON_IsString(unk) ? uf_tok_vocab_find(t, unk->valuestring, (int)strlen(unk->valuestring)) : -1;
    if (cJSON_IsString(unk) && t->unk_id < 0)
        for (int i = 0; i < t->n_added; i++)
            if (!strcmp(t->added[i].content, unk->valuestring)) t->unk_id = t->added[i].id;
    guess_specials(t);
    return 0;
}

int uf_tokenizer_load_json(struct uf_tokenizer *t, const char *json, size_t len, const char *where) {
    memset(t, 0, sizeof *t);
    t->unk_id = t->bos_id = t->eos_id = t->pad_id = -1;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return uf_fail("%s: not valid JSON", where);
    int rc = parse_tokenizer(t, root, where);
    cJSON_Delete(root);
    if (rc != 0) uf_tokenizer_free(t);
    return rc;
}

/* token name from tokenizer_config.json: "bos_token": "<s>" or {"content": "<s>", ...} */
static int config_token(const struct uf_tokenizer *t, const cJSON *cfg, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(j)) j = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (!cJSON_IsString(j)) return -2;
    const char *names[] = {j->valuestring, NULL};
    return find_any(t, names);
}

int uf_tokenizer_load(struct uf_tokenizer *t, const char *path) {
    size_t len;
    char *json_path = NULL, *cfg_path = NULL;
    char *probe = uf_sprintf("%s/tokenizer.json", path);
    if (uf_file_exists(probe)) {
        json_path = probe;
        cfg_path = uf_sprintf("%s/tokenizer_config.json", path);
    } else {
        free(probe);
        json_path = uf_strdup(path);
    }
    char *text = uf_file_read(json_path, &len);
    if (!text) {
        free(json_path);
        free(cfg_path);
        return -1;
    }
    int rc = uf_tokenizer_load_json(t, text, len, json_path);
    free(text);
    if (rc == 0 && cfg_path && uf_file_exists(cfg_path)) {
        char *ct = uf_file_read(cfg_path, &len);
        cJSON *cfg = ct ? cJSON_ParseWithLength(ct, len) : NULL;
        if (!cfg) rc = uf_fail("%s: not valid JSON", cfg_path);
        else {
            int b = config_token(t, cfg, "bos_token"), e = config_token(t, cfg, "eos_token");
            int p = config_token(t, cfg, "pad_token");
            if (b == -1 || e == -1)
                rc = uf_fail("%s: bos_token/eos_token names a token missing from %s", cfg_path,
                             json_path);
            const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template"), *el;
            if (cJSON_IsString(ct)) t->chat_template = uf_strdup(ct->valuestring);
            const cJSON *list = cJSON_IsArray(ct) ? ct : NULL;
            cJSON_ArrayForEach(el, list) { /* [{name, template}] */
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(el, "name");
                const cJSON *tx = cJSON_GetObjectItemCaseSensitive(el, "template");
                if (cJSON_IsString(nm) && cJSON_IsString(tx) && !strcmp(nm->valuestring, "default") &&
                    !t->chat_template)
                    t->chat_template = uf_strdup(tx->valuestring);
            }
            if (b >= 0) t->bos_id = b;
            if (e >= 0) t->eos_id = e;
            if (p >= 0) t->pad_id = p;
        }
        cJSON_Delete(cfg);
        free(ct);
        if (rc != 0) uf_tokenizer_free(t);
    }
    free(json_path);
    free(cfg_path);
    return rc;
}

void uf_tokenizer_free(struct uf_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_vocab; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->piece_len);
    free(t->flags);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->merge_a);
    free(t->merge_b);
    free(t->vocab_slots);
    free(t->merge_keys);
    free(t->merge_rank);
    free(t->merge_out);
    free(t->chat_template);
    free_norm(t);
    memset(t, 0, sizeof *t);
    t->unk_id = t->bos_id = t->eos_id = t->pad_id = -1;
}

/* ---- BPE ------------------------------------------------------------------------------------ */
struct sym { int id, prev, next; int32_t off; /* off: source byte of its first character */ };
struct hent { int rank, pos, out; };

struct work {
    struct sym *sym;
    int nsym, capsym;
    struct hent *heap;
    int nheap, capheap;
    int32_t *ids; /* output */
    int nids, capids;
    char *buf;    /* normalized text */
    size_t nbuf, capbuf;
    int32_t *starts;  /* (nids) source byte offset of each id, when want_starts */
    int want_starts;
    int32_t *src;     /* (nbuf) source byte offset of each normalized byte, when want_starts */
    size_t capsrc;
    int32_t base;     /* source offset of the segment being encoded */
    const int32_t *nmap; /* normalizer steps: source offset (in the segment) of each input byte */
};

static int32_t src_of(const struct work *w, size_t i) {
    return w->base + (w->nmap ? w->nmap[i] : (int32_t)i);
}

static void push_id(struct work *w, int id, int32_t off) {
    if (w->nids == w->capids) {
        w->capids = w->capids * 2 + 64;
        w->ids = uf_realloc(w->ids, sizeof(int32_t) * (size_t)w->capids);
        if (w->want_starts) w->starts = uf_realloc(w->starts, sizeof(int32_t) * (size_t)w->capids);
    }
    if (w->want_starts) w->starts[w->nids] = off;
    w->ids[w->nids++] = id;
}

static void push_sym(struct work *w, int id, int32_t off) {
    if (w->nsym == w->capsym) w->sym = uf_realloc(w->sym, sizeof *w->sym * (size_t)(w->capsym = w->capsym * 2 + 64));
    w->sym[w->nsym] = (struct sym){id, w->nsym - 1, -1, off};
    if (w->nsym > 0) w->sym[w->nsym - 1].next = w->nsym;
    w->nsym++;
}

static int hless(const struct hent *a, const struct hent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct work *w, struct hent e) {
    if (w->nheap == w->capheap) w->heap = uf_realloc(w->heap, sizeof *w->heap * (size_t)(w->capheap = w->capheap * 2 + 64));
    int i = w->nheap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!hless(&e, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = e;
}

static struct hent heap_pop(struct work *w) {
    struct hent top = w->heap[0], last = w->heap[--w->nheap];
    int i = 0, n = w->nheap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hless(&w->heap[c + 1], &w->heap[c])) c++;
        if (!hless(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static void try_pair(const struct uf_tokenizer *t, struct work *w, int pos) {
    int nx = w->sym[pos].next, out = -1;
    if (nx < 0) return;
    int r = merge_find(t, w->sym[pos].id, w->sym[nx].id, &out);
    if (r >= 0) heap_push(w, (struct hent){r, pos, out});
}

/* Hot spot: applies merges to w->sym (lowest rank first, leftmost on ties) and appends the
 * resulting ids to the output. O(n log n) for n symbols. */
static void bpe_merge(const struct uf_tokenizer *t, struct work *w) {
    w->nheap = 0;
    for (int i = 0; i + 1 < w->nsym; i++) try_pair(t, w, i);
    while (w->nheap > 0) {
        struct hent e = heap_pop(w);
        struct sym *s = &w->sym[e.pos];
        if (s->id < 0 || s->next < 0) continue;
        int out = -1, r = merge_find(t, s->id, w->sym[s->next].id, &out);
        if (r != e.rank || out != e.out) continue; /* stale entry */
        int nx = s->next;
        s->id = out;
        s->next = w->sym[nx].next;
        if (s->next >= 0) w->sym[s->next].prev = e.pos;
        w->sym[nx].id = -1;
        if (s->prev >= 0) try_pair(t, w, s->prev);
        try_pair(t, w, e.pos);
    }
    for (int i = w->nsym > 0 ? 0 : -1; i >= 0; i = w->sym[i].next) push_id(w, w->sym[i].id, w->sym[i].off);
}

/* SPM: one normalized chunk (UTF-8 with ▁) -> ids. Unknown characters use byte fallback or unk. */
static int spm_chunk(const struct uf_tokenizer *t, struct work *w, const char *s, size_t n) {
    w->nsym = 0;
    const int32_t *src = w->want_starts ? w->src + (s - w->buf) : NULL;
    int last_unk = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = uf_tok_utf8_next((const unsigned char *)s, n, i, &cp);
        int id = cp <= 0x10ffff ? uf_tok_vocab_find(t, s + i, l) : -1;
        int32_t off = src ? src[i] : 0;
        if (id >= 0) {
            push_sym(w, id, off);
            last_unk = 0;
        } else {
            int ok = t->byte_fallback;
            for (int k = 0; k < l && ok; k++) ok = t->byte_id[(unsigned char)s[i + k]] >= 0;
            if (ok) {
                for (int k = 0; k < l; k++) push_sym(w, t->byte_id[(unsigned char)s[i + k]], src ? src[i + k] : 0);
                last_unk = 0;
            } else {
                if (t->unk_id < 0)
                    return uf_fail("cannot encode byte 0x%02x: no vocabulary piece, no byte "
                                   "fallback and no unk token", (unsigned char)s[i]);
                if (!(t->fuse_unk && last_unk)) push_sym(w, t->unk_id, off);
                last_unk = 1;
            }
        }
        i += (size_t)l;
    }
    if (w->nsym) bpe_merge(t, w);
    return 0;
}

/* Appends n normalized bytes that came from source byte `from` of the segment. */
static void buf_put_from(struct work *w, const char *s, size_t n, size_t from) {
    if (w->nbuf + n + 1 > w->capbuf) w->buf = uf_realloc(w->buf, w->capbuf = (w->nbuf + n + 1) * 2);
    if (w->want_starts) {
        if (w->capsrc < w->capbuf) w->src = uf_realloc(w->src, sizeof(int32_t) * (w->capsrc = w->capbuf));
        for (size_t k = 0; k < n; k++) w->src[w->nbuf + k] = src_of(w, from);
    }
    memcpy(w->buf + w->nbuf, s, n);
    w->nbuf += n;
}

static void buf_put(struct work *w, const char *s, size_t n) { buf_put_from(w, s, n, 0); }

static int spm_segment(const struct uf_tokenizer *t, struct work *w, const char *s, size_t n,
                       int at_start, int flags) {
    w->nbuf = 0;
    int pre = 0;
    if (!(flags & UF_TOK_NO_PREFIX)) {
        if (t->prepend == UF_PREPEND_NORMALIZER) pre = 1;
        else if (t->prepend == UF_PREPEND_ALWAYS || (t->prepend == UF_PREPEND_FIRST && at_start))
            pre = !(n > 0 && (s[0] == ' ' || (n >= 3 && !memcmp(s, UF_TOK_SPM_SPACE, 3))));
    }
    if (pre) buf_put_from(w, UF_TOK_SPM_SPACE, 3, 0);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ' && t->replace_space) buf_put_from(w, UF_TOK_SPM_SPACE, 3, i);
        else buf_put_from(w, s + i, 1, i);
    }
    if (!t->metaspace_split && !t->spm_chunkable) return spm_chunk(t, w, w->buf, w->nbuf);
    /* Metaspace split=true: a piece starts at every ▁. Otherwise, when no vocabulary piece has a
     * ▁ right after another character, no merge can cross the start of a "▁word" (after a
     * non-▁ character), so BPE runs word by word with the same result, on small heaps. */
    size_t start = 0;
    for (size_t i = 1; i <= w->nbuf; i++)
        if (i == w->nbuf || (i + 3 <= w->nbuf && !memcmp(w->buf + i, UF_TOK_SPM_SPACE, 3) &&
                             (t->metaspace_split || !(i >= 3 && !memcmp(w->buf + i - 3, UF_TOK_SPM_SPACE, 3))))) {
            if (spm_chunk(t, w, w->buf + start, i - start) != 0) return -1;
            start = i;
        }
    return 0;
}

static int bytelevel_segment(const struct uf_tokenizer *t, struct work *w, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = uf_tok_pretoken_len(t->split, u, n, i);
        if (t->ignore_merges) {
            w->nbuf = 0;
            for (size_t j = i; j < i + k; j++) {
                char c[4];
                buf_put(w, c, (size_t)uf_tok_utf8_put(byte_to_cp[u[j]], c));
            }
            int id = uf_tok_vocab_find(t, w->buf, (int)w->nbuf);
            if (id >= 0) {
                push_id(w, id, src_of(w, i));
                i += k;
                continue;
            }
        }
        w->nsym = 0;
        for (size_t j = i; j < i + k; j++) {
            int id = t->byte_id[u[j]];
            if (id < 0) id = t->unk_id;
            if (id < 0)
                return uf_fail("cannot encode byte 0x%02x: the byte-level vocabulary lacks it and "
                               "has no unk token", u[j]);
            push_sym(w, id, src_of(w, j));
        }
        bpe_merge(t, w);
        i += k;
    }
    return 0;
}

/* ---- normalizer steps ----------------------------------------------------------------------
 * Each step maps (text, map) to (text', map'), map[k] = source byte of text byte k. */
struct ntext { char *s; int32_t *map; size_t n, cap; };

static void nt_put(struct ntext *o, const char *s, size_t n, int32_t src) {
    if (o->n + n + 1 > o->cap) {
        o->cap = (o->n + n + 1) * 2 + 64;
        o->s = uf_realloc(o->s, o->cap);
        o->map = uf_realloc(o->map, sizeof(int32_t) * o->cap);
    }
    memcpy(o->s + o->n, s, n);
    for (size_t k = 0; k < n; k++) o->map[o->n + k] = src;
    o->n += n;
    o->s[o->n] = 0;
}

/* NFC/NFD/NFKC/NFKD in chunks that start before an ASCII character (ASCII never combines with
 * what precedes it, so normalizing the chunks = normalizing the whole); a chunk whose bytes do
 * not change keeps its byte map, a changed one maps to its first byte. */
static void norm_unicode(const struct ntext *in, struct ntext *o, enum uf_tok_norm_op op) {
    int opts = UTF8PROC_STABLE | (op == UF_NORM_NFC || op == UF_NORM_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
               (op == UF_NORM_NFKC || op == UF_NORM_NFKD ? UTF8PROC_COMPAT : 0);
    size_t i = 0;
    while (i < in->n) {
        size_t c = i, e = i + 1;
        while (e < in->n && (unsigned char)in->s[e] >= 0x80) e++;
        if (e == i + 1 && (unsigned char)in->s[i] < 0x80) { nt_put(o, in->s + i, 1, in->map[i]); i++; continue; }
        utf8proc_uint8_t *res = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in->s + c, (utf8proc_ssize_t)(e - c),
                                          &res, (utf8proc_option_t)opts);
        if (r < 0 || ((size_t)r == e - c && !memcmp(res, in->s + c, e - c))) {
            for (size_t k = c; k < e; k++) nt_put(o, in->s + k, 1, in->map[k]); /* unchanged / invalid */
        } else nt_put(o, (const char *)res, (size_t)r, in->map[c]);
        free(res);
        i = e;
    }
}

static void norm_lower(const struct ntext *in, struct ntext *o) {
    for (size_t i = 0; i < in->n;) {
        uint32_t cp;
        int l = uf_tok_utf8_next((const unsigned char *)in->s, in->n, i, &cp);
        char u[8];
        if (cp < 0x80) {
            u[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            nt_put(o, u, 1, in->map[i]);
        } else if (cp > 0x10ffff) {
            nt_put(o, in->s + i, (size_t)l, in->map[i]);
        } else if (cp == 0x130) { /* İ: unconditional SpecialCasing lowercase is i + U+0307 */
            nt_put(o, "i\xcc\x87", 3, in->map[i]);
        } else {
            int k = uf_tok_utf8_put((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), u);
            nt_put(o, u, (size_t)k, in->map[i]);
        }
        i += (size_t)l;
    }
}

static void norm_replace(const struct ntext *in, struct ntext *o, const char *from, const char *to) {
    size_t lf = strlen(from), lt = strlen(to);
    for (size_t i = 0; i < in->n;) {
        if (i + lf <= in->n && !memcmp(in->s + i, from, lf)) {
            if (lt) nt_put(o, to, lt, in->map[i]);
            i += lf;
        } else {
            nt_put(o, in->s + i, 1, in->map[i]);
            i++;
        }
    }
}

/* Applies t->norm to s[0..n) (Prepend skipped under UF_TOK_NO_PREFIX). */
static void normalize_steps(const struct uf_tokenizer *t, const char *s, size_t n, int flags,
                            struct ntext *out) {
    struct ntext a = {0}, b = {0};
    for (size_t i = 0; i < n; i++) nt_put(&a, s + i, 1, (int32_t)i);
    for (int k = 0; k < t->n_norm; k++) {
        const struct uf_tok_norm *st = &t->norm[k];
        b.n = 0;
        switch (st->op) {
        case UF_NORM_LOWERCASE: norm_lower(&a, &b); break;
        case UF_NORM_REPLACE: norm_replace(&a, &b, st->from, st->to); break;
        case UF_NORM_PREPEND:
            if (a.n > 0 && !(flags & UF_TOK_NO_PREFIX)) nt_put(&b, st->to, strlen(st->to), a.map[0]);
            for (size_t i = 0; i < a.n; i++) nt_put(&b, a.s + i, 1, a.map[i]);
            break;
        default: norm_unicode(&a, &b, st->op); break;
        }
        struct ntext x = a;
        a = b;
        b = x;
    }
    free(b.s);
    free(b.map);
    if (!a.s) nt_put(&a, "", 0, 0);
    *out = a;
}

char *uf_tokenizer_normalize(const struct uf_tokenizer *t, const char *text, size_t len,
                             size_t *out_len) {
    struct ntext o;
    normalize_steps(t, text, len, 0, &o);
    free(o.map);
    *out_len = o.n;
    return o.s;
}

static int encode_segment(const struct uf_tokenizer *t, struct work *w, const char *s, size_t n,
                          int at_start, int flags) {
    if (n == 0) return 0;
    if (t->n_norm) {
        struct ntext o;
        normalize_steps(t, s, n, flags, &o);
        w->nmap = o.map;
        int rc = 0;
        if (o.n) rc = t->kind == UF_TOK_SPM ? spm_segment(t, w, o.s, o.n, at_start, flags)
                                            : bytelevel_segment(t, w, o.s, o.n);
        w->nmap = NULL;
        free(o.s);
        free(o.map);
        return rc;
    }
    if (t->kind == UF_TOK_SPM) return spm_segment(t, w, s, n, at_start, flags);
    return bytelevel_segment(t, w, s, n);
}

int uf_tokenizer_encode_spans(const struct uf_tokenizer *t, const char *text, size_t len, int flags,
                              const uint8_t *literal, int32_t **ids, int32_t **starts, int *n) {
    struct work w = {0};
    int rc = 0;
    *ids = NULL;
    *n = 0;
    if (starts) *starts = NULL;
    if (len > INT32_MAX) return uf_fail("tokenizer: text of %zu bytes is too long", len);
    w.want_starts = starts != NULL;
    if (flags & UF_TOK_ADD_BOS) {
        if (t->bos_id < 0) return uf_fail("tokenizer has no bos token but add_bos was asked for");
        push_id(&w, t->bos_id, 0);
    }
    size_t seg = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        int hit = -1;
        if ((flags & UF_TOK_PARSE_SPECIAL) && !(literal && literal[i]) &&
            t->added_first[(unsigned char)text[i]] >= 0)
            for (int k = t->added_first[(unsigned char)text[i]]; k < t->n_added; k++) {
                const struct uf_tok_added *a = &t->added[k];
                if ((size_t)a->len <= len - i && !memcmp(text + i, a->content, (size_t)a->len)) {
                    hit = k; /* sorted longest first */
                    break;
                }
            }
        if (hit < 0) {
            i++;
            continue;
        }
        w.base = (int32_t)seg;
        rc = encode_segment(t, &w, text + seg, i - seg, seg == 0, flags);
        push_id(&w, t->added[hit].id, (int32_t)i);
        i += (size_t)t->added[hit].len;
        seg = i;
    }
    w.base = (int32_t)seg;
    if (rc == 0) rc = encode_segment(t, &w, text + seg, len - seg, seg == 0, flags);
    if (rc == 0 && (flags & UF_TOK_ADD_EOS)) {
        if (t->eos_id < 0) rc = uf_fail("tokenizer has no eos token but add_eos was asked for");
        else push_id(&w, t->eos_id, (int32_t)len);
    }
    free(w.sym);
    free(w.heap);
    free(w.buf);
    free(w.src);
    if (rc != 0) {
        free(w.ids);
        free(w.starts);
        return rc;
    }
    *ids = w.ids ? w.ids : uf_malloc(sizeof(int32_t));
    if (starts) *starts = w.starts ? w.starts : uf_malloc(sizeof(int32_t));
    *n = w.nids;
    return 0;
}

int uf_tokenizer_encode_ex(const struct uf_tokenizer *t, const char *text, size_t len, int flags,
                           int32_t **ids, int *n) {
    return uf_tokenizer_encode_spans(t, text, len, flags, NULL, ids, NULL, n);
}

int uf_tokenizer_encode(const struct uf_tokenizer *t, const char *text, int add_bos,
                        int32_t **ids, int *n) {
    return uf_tokenizer_encode_ex(t, text, strlen(text),
                                  UF_TOK_PARSE_SPECIAL | (add_bos ? UF_TOK_ADD_BOS : 0), ids, n);
}

/* ---- decode ------------------------------------------------------------------------------- */
/* Appends the bytes of token id to out (cap bytes available); returns the full length. */
static int piece_bytes(const struct uf_tokenizer *t, int id, char *out, int cap) {
    const char *p = t->pieces[id];
    int n = t->piece_len[id], m = 0;
    char tmp[4];
#define PUT(c) do { if (m < cap) out[m] = (c); m++; } while (0)
    if (t->flags[id] & UF_TOKF_ADDED) {
        for (int i = 0; i < n; i++) PUT(p[i]);
        return m;
    }
    if (t->kind == UF_TOK_SPM) {
        if (t->flags[id] & UF_TOKF_BYTE) {
            unsigned v = (unsigned)strtoul(p + 3, NULL, 16);
            PUT((char)v);
            return m;
        }
        for (int i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(p + i, UF_TOK_SPM_SPACE, 3)) { PUT(' '); i += 3; }
            else { PUT(p[i]); i++; }
        }
        return m;
    }
    for (int i = 0; i < n;) {
        uint32_t cp;
        int l = uf_tok_utf8_next((const unsigned char *)p, (size_t)n, (size_t)i, &cp);
        if (cp < 324 && cp_to_byte[cp] >= 0) PUT((char)cp_to_byte[cp]);
        else if (cp > 0x10ffff) PUT((char)(cp - 0x110000));
        else {
            int k = uf_tok_utf8_put(cp, tmp);
            for (int j = 0; j < k; j++) PUT(tmp[j]);
        }
        i += l;
    }
    return m;
#undef PUT
}

int uf_tokenizer_token_to_piece(const struct uf_tokenizer *t, int id, char *buf, int cap) {
    if (id < 0 || id >= t->n_vocab || !t->pieces[id]) return -1;
    return piece_bytes(t, id, buf, cap);
}

int uf_tokenizer_decode(const struct uf_tokenizer *t, const int32_t *ids, int n, int skip_special,
                        char **text, size_t *len) {
    size_t cap = 64, m = 0;
    char *out = uf_malloc(cap);
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n_vocab || !t->pieces[id]) {
            free(out);
            return uf_fail("decode: token id %d is not in the vocabulary (size %d)", id, t->n_vocab);
        }
        if (skip_special && (t->flags[id] & UF_TOKF_SPECIAL)) continue;
        int need = t->piece_len[id] + 1;
        if (m + (size_t)need + 1 > cap) out = uf_realloc(out, cap = (m + (size_t)need + 1) * 2);
        m += (size_t)piece_bytes(t, id, out + m, need);
    }
    out[m] = 0;
    if (t->strip_leading_space && m > 0 && out[0] == ' ') {
        memmove(out, out + 1, m);
        m--;
    }
    *text = out;
    if (len) *len = m;
    return 0;
}

const char *uf_tokenizer_vocab_piece(const struct uf_tokenizer *t, int id) {
    return id >= 0 && id < t->n_vocab ? t->pieces[id] : NULL;
}

int uf_tokenizer_token_id(const struct uf_tokenizer *t, const char *piece) {
    for (int i = 0; i < t->n_added; i++)
        if (!strcmp(t->added[i].content, piece)) return t->added[i].id;
    return uf_tok_vocab_find(t, piece, (int)strlen(piece));
}

/* ---- save ----------------------------------------------------------------------------------- */
static const char *llama3_regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *gpt2_regex =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static cJSON *typed(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static cJSON *replace_node(const char *from, const char *to) {
    cJSON *r = typed("Replace"), *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "String", from);
    cJSON_AddItemToObject(r, "pattern", p);
    cJSON_AddStringToObject(r, "content", to);
    return r;
}

/* the generic normalizer steps as tokenizer.json nodes */
static cJSON *norm_nodes(const struct uf_tokenizer *t) {
    static const char *types[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Replace", "Prepend"};
    cJSON *n = typed("Sequence"), *list = cJSON_AddArrayToObject(n, "normalizers");
    for (int i = 0; i < t->n_norm; i++) {
        const struct uf_tok_norm *st = &t->norm[i];
        cJSON *e;
        if (st->op == UF_NORM_REPLACE) e = replace_node(st->from, st->to);
        else {
            e = typed(types[st->op]);
            if (st->op == UF_NORM_PREPEND) cJSON_AddStringToObject(e, "prepend", st->to);
        }
        cJSON_AddItemToArray(list, e);
    }
    return n;
}

int uf_tokenizer_save(const struct uf_tokenizer *t, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int id = 0; id < t->n_vocab; id++) {
        if (!(t->flags[id] & UF_TOKF_ADDED)) continue;
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", id);
        cJSON_AddStringToObject(a, "content", t->pieces[id]);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", (t->flags[id] & UF_TOKF_SPECIAL) != 0);
        cJSON_AddItemToArray(added, a);
    }
    cJSON *dec;
    if (t->kind == UF_TOK_SPM) {
        if (t->prepend == UF_PREPEND_NORMALIZER) {
            cJSON *n = typed("Sequence"), *list = cJSON_AddArrayToObject(n, "normalizers");
            cJSON *p = typed("Prepend");
            cJSON_AddStringToObject(p, "prepend", UF_TOK_SPM_SPACE);
            cJSON_AddItemToArray(list, p);
            cJSON_AddItemToArray(list, replace_node(" ", UF_TOK_SPM_SPACE));
            cJSON_AddItemToObject(root, "normalizer", n);
            cJSON_AddNullToObject(root, "pre_tokenizer");
        } else {
            if (t->n_norm) cJSON_AddItemToObject(root, "normalizer", norm_nodes(t));
            else cJSON_AddNullToObject(root, "normalizer");
            cJSON *m = typed("Metaspace");
            cJSON_AddStringToObject(m, "replacement", UF_TOK_SPM_SPACE);
            cJSON_AddStringToObject(m, "prepend_scheme", t->prepend == UF_PREPEND_FIRST ? "first" :
                                    t->prepend == UF_PREPEND_ALWAYS ? "always" : "never");
            cJSON_AddBoolToObject(m, "split", t->metaspace_split);
            cJSON_AddItemToObject(root, "pre_tokenizer", m);
        }
        dec = typed("Sequence");
        cJSON *list = cJSON_AddArrayToObject(dec, "decoders");
        cJSON_AddItemToArray(list, replace_node(UF_TOK_SPM_SPACE, " "));
        cJSON_AddItemToArray(list, typed("ByteFallback"));
        cJSON_AddItemToArray(list, typed("Fuse"));
        if (t->strip_leading_space) {
            cJSON *s = typed("Strip");
            cJSON_AddStringToObject(s, "content", " ");
            cJSON_AddNumberToObject(s, "start", 1);
            cJSON_AddNumberToObject(s, "stop", 0);
            cJSON_AddItemToArray(list, s);
        }
    } else {
        if (t->n_norm) cJSON_AddItemToObject(root, "normalizer", norm_nodes(t));
        else cJSON_AddNullToObject(root, "normalizer");
        cJSON *pre = typed("Sequence"), *list = cJSON_AddArrayToObject(pre, "pretokenizers");
        cJSON *sp = typed("Split"), *pat = cJSON_CreateObject();
        cJSON_AddStringToObject(pat, "Regex", t->split == UF_SPLIT_GPT2 ? gpt2_regex : llama3_regex);
        cJSON_AddItemToObject(sp, "pattern", pat);
        cJSON_AddStringToObject(sp, "behavior", "Isolated");
        cJSON_AddBoolToObject(sp, "invert", 0);
        cJSON_AddItemToArray(list, sp);
        cJSON *bl = typed("ByteLevel");
        cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
        cJSON_AddBoolToObject(bl, "trim_offsets", 1);
        cJSON_AddBoolToObject(bl, "use_regex", 0);
        cJSON_AddItemToArray(list, bl);
        cJSON_AddItemToObject(root, "pre_tokenizer", pre);
        dec = typed("ByteLevel");
        cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
        cJSON_AddBoolToObject(dec, "trim_offsets", 1);
        cJSON_AddBoolToObject(dec, "use_regex", 1);
    }
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", dec);
    cJSON *model = typed("BPE");
    cJSON_AddNullToObject(model, "dropout");
    if (t->unk_id >= 0) cJSON_AddStringToObject(model, "unk_token", t->pieces[t->unk_id]);
    else cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", t->fuse_unk);
    cJSON_AddBoolToObject(model, "byte_fallback", t->byte_fallback);
    cJSON_AddBoolToObject(model, "ignore_merges", t->ignore_merges);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int id = 0; id < t->n_vocab; id++)
        if (t->pieces[id] && (t->flags[id] & UF_TOKF_MODEL))
            cJSON_AddNumberToObject(vocab, t->pieces[id], id);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int r = 0; r < t->n_merges; r++) {
        const char *a = t->pieces[t->merge_a[r]], *b = t->pieces[t->merge_b[r]];
        if (strchr(a, ' ') || strchr(b, ' ')) {
            cJSON *pr = cJSON_CreateArray();
            cJSON_AddItemToArray(pr, cJSON_CreateString(a));
            cJSON_AddItemToArray(pr, cJSON_CreateString(b));
            cJSON_AddItemToArray(merges, pr);
        } else {
            char *s = uf_sprintf("%s %s", a, b);
            cJSON_AddItemToArray(merges, cJSON_CreateString(s));
            free(s);
        }
    }
    cJSON_AddItemToObject(root, "model", model);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return uf_fail("%s: could not serialize the tokenizer", path);
    int rc = uf_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}
