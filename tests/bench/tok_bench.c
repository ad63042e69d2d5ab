/* tok_bench.c: tokenizer load time and encode throughput on 1 MB of mixed text (English, code,
 * whitespace runs, digits, CJK, Hindi, Arabic, Hebrew, Thai, emoji). Not a test: timings are
 * printed, never asserted. Build: cmake --build build --target tok_bench;
 * run: build/tok_bench path/to/tokenizer.json [path ...]. Best of 9 runs each, process CPU time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "formats/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: less sensitive to a shared machine */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *parts[] = {
    "The quick brown fox jumps over the lazy dog. It's 3:45pm and we've got 12,345 items! ",
    "def f(x):\n    return x ** 2  # square\n\n\tif (a != b) { c[i] = d->e; }\n",
    "東京は日本の首都です。今日はいい天気ですね。", "नमस्ते दुनिया, यह एक परीक्षण है। ",
    "مرحبا بالعالم، هذا اختبار. ", "שלום עולם, זה מבחן. ", "สวัสดีชาวโลก นี่คือการทดสอบ ",
    "Emoji 😀👍🏽🇩🇪 and symbols ©®™ — “quotes” … ", "   \n\n  \r\n   spaces   ", "ÀÉÎÕÜ çñ ß Ω ∑ ∫ √ ",
};

int main(int argc, char **argv) {
    size_t cap = 1 << 20, n = 0;
    char *text = malloc(cap + 256);
    uint64_t s = 1;
    while (n < cap) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *p = parts[(s >> 33) % UF_ARRAY_LEN(parts)];
        size_t l = strlen(p);
        memcpy(text + n, p, l);
        n += l;
    }
    for (int a = 1; a < argc; a++) {
        double best_load = 1e9, best_enc = 1e9;
        int ntok = 0;
        uint64_t hash = 1469598103934665603ull; /* FNV-1a of the ids: compares encodings across builds */
        for (int r = 0; r < 9; r++) {
            struct uf_tokenizer t;
            double t0 = now();
            if (uf_tokenizer_load(&t, argv[a])) { fprintf(stderr, "%s\n", uf_error()); return 1; }
            double t1 = now();
            int32_t *ids;
            if (uf_tokenizer_encode_ex(&t, text, n, 0, &ids, &ntok)) { fprintf(stderr, "%s\n", uf_error()); return 1; }
            double t2 = now();
            hash = 1469598103934665603ull;
            for (int i = 0; i < ntok; i++) hash = (hash ^ (uint32_t)ids[i]) * 1099511628211ull;
            free(ids);
            uf_tokenizer_free(&t);
            if (t1 - t0 < best_load) best_load = t1 - t0;
            if (t2 - t1 < best_enc) best_enc = t2 - t1;
        }
        printf("%s: load %.1f ms, encode %.2f MB/s (%zu bytes -> %d tokens, %.1f ms, ids hash %016llx)\n",
               argv[a], best_load * 1e3, (double)n / 1e6 / best_enc, n, ntok, best_enc * 1e3,
               (unsigned long long)hash);
    }
    free(text);
    return 0;
}
