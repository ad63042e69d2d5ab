/* fuzz_guard.c: libFuzzer target for the Llama Guard 3 output parser (and, on the same bytes, the
 * refusal-keyword judge, the answer classes and the answer extractors). Invariants: no crash, no
 * read past the n bytes, verdicts in range, categories only with UNSAFE and only bits 0..13. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/judge.h"
#include "eval/metrics.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* exact-size copy so ASan catches any read past the end */
    char *buf = uf_malloc(size ? size : 1);
    memcpy(buf, data, size);
    struct uf_guard_result r = uf_guard_parse(buf, size);
    if (r.verdict > UF_GUARD_UNPARSED) abort();
    if (r.verdict != UF_GUARD_UNSAFE && (r.categories || r.categories_ok)) abort();
    if (r.categories >> UF_GUARD_N_CATEGORIES) abort();
    if (r.categories_ok && !r.categories) abort();
    free(buf);

    char *s = uf_strndup((const char *)data, size); /* NUL-terminated view for the string judges */
    static struct uf_judge_keywords kw;
    static int init;
    if (!init) {
        uf_judge_keywords_init_default(&kw);
        init = 1;
    }
    const char *labels[] = {"positive", "negative"};
    const char *markers[] = {"step", "recipe"};
    struct uf_judge_compliance c = {NULL, NULL, markers, 2};
    enum uf_judge_class cls = uf_judge_classify(&kw, s, labels, 2, &c);
    if ((int)cls < 0 || cls >= UF_JUDGE_N_CLASSES) abort();
    char num[UF_NUMBER_MAX];
    if (uf_metric_gsm8k_answer(s, num, sizeof num) && !num[0]) abort();
    if (strlen(num) >= UF_NUMBER_MAX) abort();
    enum uf_sst2_label l = uf_metric_sst2_label(s);
    if (l < UF_SST2_INVALID || l > UF_SST2_POSITIVE) abort();
    free(s);
    return 0;
}
