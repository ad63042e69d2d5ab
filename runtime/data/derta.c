/* data/derta.c: DeRTa's training rows (see derta.h). */
#include "data/derta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/world.h"
#include "formats/tokenizer.h"

int uf_derta_encode(const struct uf_tokenizer *tok, const char *text, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    size_t len = strlen(text);
    if (len == 0) {
        *ids = uf_malloc(sizeof **ids);
        return 0;
    }
    return uf_tokenizer_encode_ex(tok, text, len, UF_TOK_NO_PREFIX, ids, n);
}

/* responses sorted by prompt (ties: row order), for the exact-prompt match */
static int by_prompt(const void *a, const void *b) {
    const struct uf_example *x = *(const struct uf_example *const *)a, *y = *(const struct uf_example *const *)b;
    int c = strcmp(x->prompt, y->prompt);
    return c ? c : (x < y ? -1 : x > y);
}

static const char *match_response(const struct uf_example **idx, int64_t n, const char *prompt) {
    int64_t lo = 0, hi = n; /* first index whose prompt >= prompt */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (strcmp(idx[mid]->prompt, prompt) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && strcmp(idx[lo]->prompt, prompt) == 0 && idx[lo]->response[0] ? idx[lo]->response : NULL;
}

int uf_derta_build(const struct uf_tokenizer *tok, const struct uf_dataset *data,
                   const struct uf_dataset *responses, const struct uf_derta_opts *o,
                   struct uf_dataset *out, struct uf_derta_info *info) {
    memset(info, 0, sizeof *info);
    uf_dataset_init(out, data->name ? data->name : "derta");
    const struct uf_example **idx = NULL;
    int64_t n_resp = responses ? responses->n : 0;
    if (responses) {
        idx = uf_calloc((size_t)(n_resp ? n_resp : 1), sizeof *idx);
        for (int64_t i = 0; i < n_resp; i++) idx[i] = &responses->rows[i];
        qsort(idx, (size_t)n_resp, sizeof *idx, by_prompt);
    }
    struct uf_rng r;
    uf_rng_init(&r, o->seed ^ uf_hash_str("derta", UF_HASH_SEED));
    char **harm = uf_calloc((size_t)(data->n ? data->n : 1), sizeof *harm); /* (n) r^ or NULL */
    int rc = 0;
    for (int64_t i = 0; i < data->n && rc == 0; i++) {
        const struct uf_example *ex = &data->rows[i];
        struct uf_example *row = uf_dataset_add(out, ex);
        if (ex->kind != UF_KIND_HARMFUL) continue;
        info->harmful++;
        if (uf_example_field(ex, "messages")) continue;
        if (idx) {
            const char *h = match_response(idx, n_resp, ex->prompt);
            harm[i] = h ? uf_strdup(h) : NULL;
        } else {
            harm[i] = uf_world_harmful_answer(uf_example_field(ex, "act"));
        }
        if (!harm[i]) continue;
        info->matched++;
        int32_t *ids;
        int L;
        if (uf_derta_encode(tok, harm[i], &ids, &L)) {
            rc = uf_fail_prefix("derta: harmful response of %s row %lld", data->name, (long long)i);
            break;
        }
        free(ids);
        info->response_tokens += L;
        if (!o->prefix) continue;
        int k = (int)uf_rng_below(&r, (uint64_t)L + 1); /* uniform in [0, L] */
        char kb[24];
        snprintf(kb, sizeof kb, "%d", k);
        uf_example_set_field(row, "response_prefix", harm[i]);
        uf_example_set_field(row, "response_prefix_tokens", kb);
        info->prefix_tokens += k;
    }
    if (rc == 0 && o->rto) {
        char wb[40];
        snprintf(wb, sizeof wb, "%.9g", o->rto_weight);
        for (int64_t i = 0; i < data->n; i++) {
            if (!harm[i]) continue;
            struct uf_example *row = uf_dataset_add(out, &data->rows[i]);
            uf_example_set_field(row, "response_prefix", harm[i]);
            uf_example_set_field(row, "rto_weight", wb);
            info->rto_rows++;
        }
    }
    for (int64_t i = 0; i < data->n; i++) free(harm[i]);
    free(harm);
    free(idx);
    if (rc == 0 && info->matched == 0)
        rc = uf_fail("derta: none of the %lld harmful rows of %s (of %lld rows) has a harmful response: %s",
                     (long long)info->harmful, data->name ? data->name : "the data", (long long)data->n,
                     responses ? "no prompt of `responses` matches one of theirs exactly"
                               : "give derta.responses (rows prompt -> harmful response), or use rows of the "
                                 "default world (their act field names the act)");
    if (rc) uf_dataset_free(out);
    return rc;
}
