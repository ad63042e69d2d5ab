/* tokenizer_train.c: uf_tokenizer_train (tokenizer.h), the deterministic byte-fallback SPM-style
 * BPE trainer, on the tokenizer's tables and Unicode helpers (tokenizer_impl.h). */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "formats/tokenizer.h"
#include "formats/tokenizer_impl.h"

/* ---- trainer -------------------------------------------------------------------------------- */
/* u64 -> i64 open-addressing map (keys stored + 1; 0 = empty) */
struct u64map { uint64_t *keys; int64_t *vals; uint32_t cap, n; };

static int64_t *map_slot(struct u64map *m, uint64_t key) {
    if ((m->n + 1) * 2 > m->cap) {
        struct u64map o = *m;
        m->cap = o.cap ? o.cap * 2 : 1024;
        m->keys = uf_calloc(m->cap, sizeof(uint64_t));
        m->vals = uf_calloc(m->cap, sizeof(int64_t));
        m->n = 0;
        for (uint32_t i = 0; i < o.cap; i++)
            if (o.keys[i]) *map_slot(m, o.keys[i] - 1) = o.vals[i];
        free(o.keys);
        free(o.vals);
    }
    uint32_t h = uf_tok_pair_hash(key + 1) & (m->cap - 1);
    while (m->keys[h] && m->keys[h] != key + 1) h = (h + 1) & (m->cap - 1);
    if (!m->keys[h]) {
        m->keys[h] = key + 1;
        m->n++;
    }
    return &m->vals[h];
}

struct tword { int32_t *sym; int n; int64_t count; };

static int train_class(uint32_t cp) {
    if (cp == 0x2581) return 3;
    if (uf_tok_cat_letter(cp) || uf_tok_cat_number(cp)) return 0;
    if (uf_tok_cat_space(cp)) return 1;
    return 2;
}

static uint64_t pkey(int a, int b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static void word_pairs(struct u64map *pairs, const struct tword *w, int64_t sign) {
    for (int k = 0; k + 1 < w->n; k++)
        if (w->sym[k] >= 0 && w->sym[k + 1] >= 0)
            *map_slot(pairs, pkey(w->sym[k], w->sym[k + 1])) += sign * w->count;
}

struct cpcount { uint32_t cp; int64_t count; };
static int cmp_cpcount(const void *a, const void *b) {
    const struct cpcount *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1;
    return x->cp < y->cp ? -1 : x->cp > y->cp;
}

int uf_tokenizer_train(struct uf_tokenizer *t, const char *const *texts, const size_t *lens,
                       int n_texts, int vocab_size) {
    memset(t, 0, sizeof *t);
    uf_tok_byte_map_init();
    if (vocab_size < 4 + 256 + 2)
        return uf_fail("tokenizer training: vocab_size %d is too small (needs at least 262: 4 "
                       "special tokens, 256 byte tokens and some characters)", vocab_size);
    /* 1. chunks ("words") with counts: normalized text split before each ▁ and at class changes */
    struct u64map wmap = {0}; /* hash of chunk -> index + 1 into words */
    struct tword *words = NULL;
    char **wstr = NULL;
    int *wlen = NULL;
    int nw = 0, capw = 0;
    char *norm = NULL;
    size_t capn = 0;
    for (int ti = 0; ti < n_texts; ti++) {
        size_t n = lens ? lens[ti] : strlen(texts[ti]);
        if (capn < 3 * n + 4) norm = uf_realloc(norm, capn = 3 * n + 4);
        size_t m = 0;
        memcpy(norm, UF_TOK_SPM_SPACE, 3);
        m = 3;
        for (size_t i = 0; i < n; i++) {
            if (texts[ti][i] == ' ') { memcpy(norm + m, UF_TOK_SPM_SPACE, 3); m += 3; }
            else norm[m++] = texts[ti][i];
        }
        size_t start = 0;
        int prev_cls = -1;
        for (size_t i = 0; i <= m;) {
            uint32_t cp = 0;
            int l = i < m ? uf_tok_utf8_next((const unsigned char *)norm, m, i, &cp) : 0;
            int cls = i < m ? train_class(cp) : -1;
            if (i > start && (i == m || cls == 3 || (prev_cls != 3 && cls != prev_cls) || i - start >= 64)) {
                const char *s = norm + start;
                int len = (int)(i - start);
                uint64_t h = uf_hash64(s, (size_t)len, UF_HASH_SEED);
                int64_t *slot;
                for (;;) { /* resolve hash collisions by probing h+1, h+2, ... */
                    slot = map_slot(&wmap, h);
                    if (*slot == 0 || (wlen[*slot - 1] == len && !memcmp(wstr[*slot - 1], s, (size_t)len))) break;
                    h++;
                }
                if (*slot == 0) {
                    if (nw == capw) {
                        capw = capw * 2 + 1024;
                        words = uf_realloc(words, sizeof *words * (size_t)capw);
                        wstr = uf_realloc(wstr, sizeof *wstr * (size_t)capw);
                        wlen = uf_realloc(wlen, sizeof *wlen * (size_t)capw);
                    }
                    wstr[nw] = uf_strndup(s, (size_t)len);
                    wlen[nw] = len;
                    words[nw] = (struct tword){NULL, 0, 0};
                    *slot = ++nw;
                }
                words[*slot - 1].count++;
                start = i;
            }
            if (i == m) break;
            prev_cls = cls;
            i += (size_t)l;
        }
    }
    free(norm);
    /* 2. base vocabulary: specials, bytes, then characters by frequency */
    static const char *specials[4] = {"<unk>", "<s>", "</s>", "<pad>"};
    for (int i = 0; i < 4; i++) {
        uf_tok_set_piece(t, i, specials[i], (int)strlen(specials[i]), UF_TOKF_MODEL | UF_TOKF_ADDED | UF_TOKF_SPECIAL);
        t->added = uf_realloc(t->added, sizeof *t->added * (size_t)(i + 1));
        t->added[i] = (struct uf_tok_added){uf_strdup(specials[i]), (int)strlen(specials[i]), i};
        t->n_added = i + 1;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        uf_tok_set_piece(t, 4 + b, name, 6, UF_TOKF_MODEL | UF_TOKF_BYTE);
    }
    struct u64map cmap = {0};
    for (int i = 0; i < nw; i++)
        for (int k = 0; k < wlen[i];) {
            uint32_t cp;
            k += uf_tok_utf8_next((const unsigned char *)wstr[i], (size_t)wlen[i], (size_t)k, &cp);
            if (cp <= 0x10ffff) *map_slot(&cmap, cp) += words[i].count;
        }
    struct cpcount *cc = uf_malloc(sizeof *cc * (cmap.n + 1));
    int ncc = 0;
    for (uint32_t i = 0; i < cmap.cap; i++)
        if (cmap.keys[i]) cc[ncc++] = (struct cpcount){(uint32_t)(cmap.keys[i] - 1), cmap.vals[i]};
    qsort(cc, (size_t)ncc, sizeof *cc, cmp_cpcount);
    int char_budget = (vocab_size - 260 + 1) / 2; /* at least half the rest is left for merges */
    if (ncc > char_budget) ncc = char_budget;
    int next = 260;
    for (int i = 0; i < ncc; i++) {
        char u[4];
        int l = uf_tok_utf8_put(cc[i].cp, u);
        uf_tok_set_piece(t, next++, u, l, UF_TOKF_MODEL);
    }
    free(cc);
    free(cmap.keys);
    free(cmap.vals);
    t->kind = UF_TOK_SPM;
    uf_tok_vocab_build(t);
    /* 3. words as symbol sequences (-1 = character left to byte fallback: never merged) */
    struct u64map pairs = {0};
    for (int i = 0; i < nw; i++) {
        words[i].sym = uf_malloc(sizeof(int32_t) * (size_t)wlen[i]);
        for (int k = 0; k < wlen[i];) {
            uint32_t cp;
            int l = uf_tok_utf8_next((const unsigned char *)wstr[i], (size_t)wlen[i], (size_t)k, &cp);
            words[i].sym[words[i].n++] = cp <= 0x10ffff ? uf_tok_vocab_find(t, wstr[i] + k, l) : -1;
            k += l;
        }
        word_pairs(&pairs, &words[i], 1);
    }
    /* 4. merges: most frequent pair (ties: smallest left id, then right id) until full */
    int capm = 0;
    while (next < vocab_size) {
        int64_t best = 1;
        uint64_t bk = 0;
        for (uint32_t i = 0; i < pairs.cap; i++) {
            if (!pairs.keys[i] || pairs.vals[i] < best) continue;
            uint64_t k = pairs.keys[i] - 1;
            if (pairs.vals[i] > best || k < bk) best = pairs.vals[i], bk = k;
        }
        if (best < 2) break;
        int a = (int)(bk >> 32), b = (int)(bk & 0xffffffffu);
        int la = t->piece_len[a], lb = t->piece_len[b];
        char *cat = uf_malloc((size_t)(la + lb) + 1);
        memcpy(cat, t->pieces[a], (size_t)la);
        memcpy(cat + la, t->pieces[b], (size_t)lb);
        int out = uf_tok_vocab_find(t, cat, la + lb);
        if (out < 0) {
            out = next++;
            uf_tok_set_piece(t, out, cat, la + lb, UF_TOKF_MODEL);
            uf_tok_vocab_build(t);
        }
        free(cat);
        if (t->n_merges == capm) {
            capm = capm * 2 + 256;
            t->merge_a = uf_realloc(t->merge_a, sizeof(int32_t) * (size_t)capm);
            t->merge_b = uf_realloc(t->merge_b, sizeof(int32_t) * (size_t)capm);
        }
        t->merge_a[t->n_merges] = a;
        t->merge_b[t->n_merges] = b;
        t->n_merges++;
        for (int i = 0; i < nw; i++) {
            struct tword *w = &words[i];
            int found = 0;
            for (int k = 0; k + 1 < w->n && !found; k++) found = w->sym[k] == a && w->sym[k + 1] == b;
            if (!found) continue;
            word_pairs(&pairs, w, -1);
            int m = 0;
            for (int k = 0; k < w->n;) {
                if (k + 1 < w->n && w->sym[k] == a && w->sym[k + 1] == b) { w->sym[m++] = out; k += 2; }
                else w->sym[m++] = w->sym[k++];
            }
            w->n = m;
            word_pairs(&pairs, w, 1);
        }
    }
    for (int i = 0; i < nw; i++) {
        free(words[i].sym);
        free(wstr[i]);
    }
    free(words);
    free(wstr);
    free(wlen);
    free(wmap.keys);
    free(wmap.vals);
    free(pairs.keys);
    free(pairs.vals);
    t->byte_fallback = 1;
    t->fuse_unk = 1;
    t->prepend = UF_PREPEND_NORMALIZER;
    t->replace_space = 1;
    t->strip_leading_space = 1;
    uf_tok_finish_tables(t);
    t->unk_id = 0;
    t->bos_id = 1;
    t->eos_id = 2;
    t->pad_id = 3;
    return 0;
}
