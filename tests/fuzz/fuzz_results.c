/* fuzz_results.c: libFuzzer target for the run-result readers: results.json (uf_results_parse)
 * and metrics.jsonl (uf_metrics_log_parse) on the same bytes. Invariants: no crash, an error
 * leaves an empty struct, a success holds what the schema promises. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/results.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = uf_malloc(size ? size : 1);
    memcpy(buf, data, size);
    struct uf_results r;
    if (uf_results_parse(&r, buf, size, "fuzz.json") == 0) {
        if (!r.run || !r.method || !r.model || !r.task || !r.decoding || !r.judge || r.n_metrics < 1) abort();
        if (!(r.poison_ratio >= 0 && r.poison_ratio <= 1)) abort();
        for (int i = 0; i < r.n_metrics; i++) {
            const struct uf_result_metric *m = &r.metrics[i];
            if (!m->name || !isfinite(m->value) || !(m->lo <= m->value && m->value <= m->hi) || m->n < 0) abort();
        }
        if (r.utility && !uf_results_metric(&r, r.utility)) abort();
    } else if (r.run || r.metrics || r.n_metrics) {
        abort();
    }
    uf_results_free(&r);
    struct uf_metrics_log m;
    int saved = uf_verbosity;
    uf_verbosity = 0;
    if (uf_metrics_log_parse(&m, buf, size, "fuzz.jsonl") == 0) {
        for (int64_t i = 0; i < m.n; i++)
            if (!(m.step[i] >= 0)) abort();
        if (m.n_terms > 0 && m.n > 0 && !m.loss) abort();
    } else if (m.n || m.terms) {
        abort();
    }
    uf_verbosity = saved;
    uf_metrics_log_free(&m);
    free(buf);
    return 0;
}
