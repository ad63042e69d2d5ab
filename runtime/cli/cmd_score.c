/* cmd_score.c: `unforget score --model DIR --text TEXT [--lora DIR] [--no-bos]`: the per-token
 * log-probabilities of a text under the model (teacher-forced forward on the device,
 * runtime/model/generate.h). The text is encoded with BOS (unless --no-bos; added tokens in the text
 * are parsed) and printed as one JSON object:
 *   {"tokens": [ids], "logprobs": [log p(tokens[i+1] | tokens[..i]) for i < n-1], "total": sum}
 * so logprobs has one entry fewer than tokens (the first token is given, not predicted). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/generate.h"
#include "model/hf.h"
#include "formats/tokenizer.h"
#include "core/util.h"

static void help(FILE *out) {
    fprintf(out,
            "usage: unforget score --model DIR --text TEXT [--lora DIR] [--no-bos]\n"
            "  prints {\"tokens\": [...], \"logprobs\": [...], \"total\": sum}; logprobs[i] is the\n"
            "  log-probability of tokens[i+1] given tokens[0..i]\n");
}

int uf_cmd_score(int argc, char **argv) {
    const char *model = NULL, *lora = NULL, *text = NULL;
    int bos = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "--no-bos") == 0) {
            bos = 0;
        } else if (v && strcmp(a, "--model") == 0) {
            model = v, i++;
        } else if (v && strcmp(a, "--lora") == 0) {
            lora = v, i++;
        } else if (v && strcmp(a, "--text") == 0) {
            text = v, i++;
        } else {
            fprintf(stderr, "unforget score: error: unknown option or missing value: %s\n\n", a);
            help(stderr);
            return 2;
        }
    }
    if (!model || !text) {
        fprintf(stderr, "unforget score: error: --model and --text are required\n\n");
        help(stderr);
        return 2;
    }
    struct uf_tokenizer tok;
    int32_t *ids = NULL;
    int n = 0;
    if (uf_tokenizer_load(&tok, model)) {
        fprintf(stderr, "unforget score: error: --model %s: tokenizer: %s\n", model, uf_error());
        return 1;
    }
    int rc = uf_tokenizer_encode(&tok, text, bos && tok.bos_id >= 0, &ids, &n);
    if (rc == 0 && n < 2)
        rc = uf_fail("the text encodes to %d token(s); scoring needs at least 2", n);
    struct uf_device dev;
    struct uf_model_config cfg;
    struct uf_tensor params;
    struct uf_gen gen;
    int have_dev = 0, have_params = 0, have_gen = 0;
    double *lp = NULL;
    if (rc == 0) {
        uf_device_init(&dev, uf_cli.device);
        have_dev = 1;
        rc = uf_hf_load_device(model, lora, &dev, &cfg, NULL, &params);
        have_params = rc == 0;
    }
    if (rc == 0) rc = uf_gen_init(&gen, &dev, &cfg, &params, 1, n, UF_MIN(n, 512)), have_gen = rc == 0;
    if (rc == 0) {
        lp = uf_malloc((size_t)n * sizeof *lp);
        rc = uf_gen_score(&gen, ids, n, lp);
    }
    if (rc == 0) {
        double total = 0.0;
        for (int i = 0; i < n - 1; i++) total += lp[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddItemToObject(j, "tokens", cJSON_CreateIntArray(ids, n));
        cJSON_AddItemToObject(j, "logprobs", cJSON_CreateDoubleArray(lp, n - 1));
        cJSON_AddNumberToObject(j, "total", total);
        char *s = cJSON_PrintUnformatted(j);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    } else {
        fprintf(stderr, "unforget score: error: %s\n", uf_error());
    }
    if (have_gen) uf_gen_free(&gen);
    if (have_params) uf_tensor_free(&params);
    if (have_dev) uf_device_free(&dev);
    uf_tokenizer_free(&tok);
    free(ids), free(lp);
    return rc ? 1 : 0;
}
