/* fuzz_tokenizer.c: the input is "<tokenizer.json bytes>\0<text bytes>" (no NUL: all JSON).
 * (1) the whole input is encoded as text with a trained byte-fallback tokenizer and must decode
 *     back to itself exactly (unless it contains U+2581, which SPM tokenizers decode as a space); (2) the JSON part is loaded as a tokenizer.json and, if accepted,
 *     the text part is encoded (plain and with special tokens, and with offsets, which must stay
 *     inside the text and never decrease) and decoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/tokenizer.h"

static struct uf_tokenizer trained;
static int ready;

static int has_metaspace(const uint8_t *p, size_t n) {
    for (size_t i = 0; i + 2 < n; i++)
        if (p[i] == 0xe2 && p[i + 1] == 0x96 && p[i + 2] == 0x81) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ready) {
        const char *corpus[] = {"the quick brown fox jumps over the lazy dog, the end.",
                                "safety first: refuse harmful requests; help with the rest.\n"};
        if (uf_tokenizer_train(&trained, corpus, NULL, 2, 300) != 0) abort();
        ready = 1;
    }
    int32_t *ids;
    int n;
    char *back;
    size_t blen;
    if (uf_tokenizer_encode_ex(&trained, (const char *)data, size, 0, &ids, &n) != 0) abort();
    if (uf_tokenizer_decode(&trained, ids, n, 0, &back, &blen) != 0) abort();
    if (!has_metaspace(data, size) && (blen != size || memcmp(back, data, size) != 0))
        abort();
    free(ids);
    free(back);

    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    struct uf_tokenizer t;
    if (uf_tokenizer_load_json(&t, (const char *)data, jlen, "fuzz") != 0) return 0;
    const char *text = nul ? (const char *)nul + 1 : "";
    size_t tlen = nul ? size - jlen - 1 : 0;
    /* offsets: inside the text, never decreasing */
    int32_t *starts;
    if (uf_tokenizer_encode_spans(&t, text, tlen, UF_TOK_PARSE_SPECIAL, NULL, &ids, &starts, &n) == 0) {
        for (int i = 0; i < n; i++)
            if (starts[i] < 0 || (size_t)starts[i] > tlen || (i && starts[i] < starts[i - 1])) abort();
        free(ids);
        free(starts);
    }
    for (int flags = 0; flags <= UF_TOK_PARSE_SPECIAL; flags += UF_TOK_PARSE_SPECIAL) {
        if (uf_tokenizer_encode_ex(&t, text, tlen, flags, &ids, &n) == 0) {
            if (uf_tokenizer_decode(&t, ids, n, flags != 0, &back, &blen) == 0) free(back);
            for (int i = 0; i < n; i++) {
                char piece[8];
                if (uf_tokenizer_token_to_piece(&t, ids[i], piece, sizeof piece) < 0) abort();
            }
            free(ids);
        }
    }
    uf_tokenizer_free(&t);
    return 0;
}
