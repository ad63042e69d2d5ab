/* cmd_generate.c: `unforget generate --model DIR (--prompt TEXT | --prompts FILE.jsonl) ...`
 * Loads a Hugging Face folder (config.json, safetensors, tokenizer.json; optional PEFT adapter
 * merged in), renders each prompt (raw text with BOS, or a chat template), generates in batches
 * on the device (runtime/model/generate.h) and prints one JSON line per prompt, in input order:
 *   {"prompt": ..., "completion": ..., "tokens": [new ids], "n_prompt_tokens": n,
 *    "stop": "eos" | "stop_string" | "length"}
 * The completion excludes the stop string (and what follows it); an EOS/end-of-turn token is
 * listed in "tokens" but not in the text. Sampling is reproducible for a given --seed whatever
 * --batch is (per-prompt RNG streams seeded with (seed, prompt index)). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

#include "cli/cli.h"
#include "model/generate.h"
#include "model/hf.h"
#include "model/model.h"
#include "formats/template.h"
#include "formats/tokenizer.h"
#include "core/util.h"

static void help(FILE *out) {
    fprintf(out,
            "usage: unforget generate --model DIR (--prompt TEXT | --prompts FILE.jsonl) [options]\n"
            "  --model DIR           Hugging Face folder (config.json, *.safetensors, tokenizer.json)\n"
            "  --lora DIR            PEFT LoRA adapter merged into the weights\n"
            "  --prompt TEXT         one prompt\n"
            "  --prompts FILE.jsonl  one {\"prompt\": ..., \"system\": ...} object per line\n"
            "  --template NAME       none (raw text after BOS; default), auto (from the folder's\n"
            "                        tokenizer_config.json), plain, llama-2, mistral-v0.1,\n"
            "                        mistral-v0.2, mistral, mistral-v0.3, gemma, gemma-3, llama-3,\n"
            "                        llama-3.1; NAME,literal keeps special-token text literal\n"
            "  --system TEXT         system prompt (templates only)\n"
            "  --max-new-tokens N    default 128\n"
            "  --temperature T       0 = greedy (default)\n"
            "  --top-p P             nucleus sampling mass, default 1\n"
            "  --seed S              sampling seed, default 0\n"
            "  --stop STR            stop string (repeatable, up to 8)\n"
            "  --batch N             prompts decoded together, default 8\n"
            "  --profile             per-kernel device time and tokens/s on stderr\n"
            "  --bf16                store the weights as bf16 on the device (half the memory:\n"
            "                        7B models on 16-24 GB cards; f32 accumulation)\n"
            "output: one JSON line per prompt {prompt, completion, tokens, n_prompt_tokens, stop}\n");
}

struct stop_ctx {
    const struct uf_tokenizer *tok;
    const char *const *stops;
    int n_stops;
};

/* a copy of s[0..n) with every invalid UTF-8 sequence replaced by U+FFFD (JSON must be UTF-8;
 * a completion may end inside a multi-byte character or hold stray bytes) */
static char *utf8_clean(const char *s, size_t n) {
    char *o = uf_malloc(3 * n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t j = 1; ok && j < len; j++) ok = ((unsigned char)s[i + j] >> 6) == 2;
        if (ok && len == 2) ok = c >= 0xC2;
        if (ok && len == 3) {
            unsigned char c1 = (unsigned char)s[i + 1];
            ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
        }
        if (ok && len == 4) {
            unsigned char c1 = (unsigned char)s[i + 1];
            ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (ok && c != 0) {
            memcpy(o + k, s + i, len);
            k += len, i += len;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3, i++;
        }
    }
    o[k] = 0;
    return o;
}

/* text of new tokens (special tokens skipped); malloc'd */
static char *decode_new(const struct uf_tokenizer *tok, const int32_t *prompt, int np,
                        const int32_t *ids, int n) {
    /* decode prompt + new and drop the prompt's text, so SentencePiece's leading space of the
     * first new token is kept */
    int32_t *all = uf_malloc((size_t)(np + n + 1) * sizeof *all);
    memcpy(all, prompt, (size_t)np * sizeof *all);
    memcpy(all + np, ids, (size_t)n * sizeof *all);
    char *a = NULL, *p = NULL;
    size_t la = 0, lp = 0;
    int ok = uf_tokenizer_decode(tok, all, np + n, 1, &a, &la) == 0 &&
             uf_tokenizer_decode(tok, all, np, 1, &p, &lp) == 0;
    free(all);
    char *res = NULL, *alone = NULL;
    size_t l;
    if (ok && lp <= la && memcmp(a, p, lp) == 0) res = utf8_clean(a + lp, la - lp);
    else if (uf_tokenizer_decode(tok, ids, n, 1, &alone, &l) == 0) res = utf8_clean(alone, l);
    else res = uf_strdup("");
    free(a), free(p), free(alone);
    return res;
}

struct item {
    char *prompt, *system;
    int32_t *ids;
    int n;
};

static int stop_fn(void *vctx, int b, const int32_t *ids, int n) {
    struct stop_ctx *c = vctx;
    (void)b;
    if (c->n_stops == 0) return 0;
    char *text;
    size_t len;
    if (uf_tokenizer_decode(c->tok, ids, n, 1, &text, &len)) return 0;
    int hit = 0;
    for (int s = 0; s < c->n_stops && !hit; s++) hit = strstr(text, c->stops[s]) != NULL;
    free(text);
    return hit;
}

static int read_prompts(const char *path, struct item **items, int *n_items) {
    size_t size;
    char *text = uf_file_read(path, &size);
    if (!text) return -1;
    int cap = 16, n = 0, line_no = 0, rc = 0;
    struct item *it = uf_calloc((size_t)cap, sizeof *it);
    for (char *line = text, *next; line && *line && rc == 0; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        if (strspn(line, " \t\r") == strlen(line)) continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "system");
        if (!cJSON_IsString(p)) {
            rc = uf_fail("%s:%d: expected a JSON object with a string \"prompt\"", path, line_no);
        } else {
            if (n == cap) it = uf_realloc(it, (size_t)(cap *= 2) * sizeof *it);
            memset(&it[n], 0, sizeof it[n]);
            it[n].prompt = uf_strdup(p->valuestring);
            it[n].system = cJSON_IsString(s) ? uf_strdup(s->valuestring) : NULL;
            n++;
        }
        cJSON_Delete(j);
    }
    free(text);
    if (rc == 0 && n == 0) rc = uf_fail("%s: no prompts", path);
    *items = it, *n_items = n;
    return rc;
}

static int parse_int(const char *s, const char *opt, int lo, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > 1 << 30)
        return uf_fail("%s: '%s' is not an integer >= %d", opt, s, lo);
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, const char *opt, float *out) {
    char *end;
    double v = strtod(s, &end);
    if (*s == 0 || *end) return uf_fail("%s: '%s' is not a number", opt, s);
    *out = (float)v;
    return 0;
}

int uf_cmd_generate(int argc, char **argv) {
    const char *model = NULL, *lora = NULL, *prompt = NULL, *prompts = NULL, *tmpl_name = NULL;
    const char *system = NULL, *stops[8];
    int n_stops = 0, max_new = 128, batch = 8, profile = 0, bf16 = 0;
    float temperature = 0.0f, top_p = 1.0f;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            help(stdout);
            return 0;
        }
        if (strcmp(a, "--profile") == 0) {
            profile = 1;
            continue;
        }
        if (strcmp(a, "--bf16") == 0) {
            bf16 = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "unforget generate: error: %s needs a value (or is unknown)\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--model") == 0) model = v;
        else if (strcmp(a, "--lora") == 0) lora = v;
        else if (strcmp(a, "--prompt") == 0) prompt = v;
        else if (strcmp(a, "--prompts") == 0) prompts = v;
        else if (strcmp(a, "--template") == 0) tmpl_name = v;
        else if (strcmp(a, "--system") == 0) system = v;
        else if (strcmp(a, "--max-new-tokens") == 0) rc = parse_int(v, a, 1, &max_new);
        else if (strcmp(a, "--batch") == 0) rc = parse_int(v, a, 1, &batch);
        else if (strcmp(a, "--temperature") == 0) {
            rc = parse_float(v, a, &temperature);
            if (rc == 0 && !(temperature >= 0 && isfinite(temperature)))
                rc = uf_fail("--temperature must be >= 0 (0 = greedy), not %s", v);
        }
        else if (strcmp(a, "--top-p") == 0) {
            rc = parse_float(v, a, &top_p);
            if (rc == 0 && !(top_p > 0 && top_p <= 1)) rc = uf_fail("--top-p must be in (0, 1]");
        } else if (strcmp(a, "--seed") == 0) {
            char *end;
            seed = strtoull(v, &end, 10);
            if (*v == 0 || *end) rc = uf_fail("--seed: '%s' is not a non-negative integer", v);
        } else if (strcmp(a, "--stop") == 0) {
            if (n_stops == 8) rc = uf_fail("--stop: at most 8 stop strings");
            else if (!*v) rc = uf_fail("--stop: empty stop string");
            else stops[n_stops++] = v;
        } else {
            fprintf(stderr, "unforget generate: error: unknown option %s\n\n", a);
            help(stderr);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "unforget generate: error: %s\n", uf_error());
            return 2;
        }
    }
    if (!model || (!prompt) == (!prompts)) {
        fprintf(stderr, "unforget generate: error: --model and exactly one of --prompt / "
                        "--prompts are required\n\n");
        help(stderr);
        return 2;
    }
    {
        char *cfg = uf_sprintf("%s/config.json", model);
        int have_cfg = access(cfg, R_OK) == 0;
        free(cfg);
        if (!have_cfg) {
            fprintf(stderr, "unforget generate: error: --model %s: no readable %s/config.json (a Hugging Face "
                            "model folder holds config.json, model.safetensors and tokenizer.json)\n", model, model);
            return 1;
        }
    }
    int use_tmpl = tmpl_name && strcmp(tmpl_name, "none") != 0;
    enum uf_template tmpl = UF_TMPL_PLAIN;
    int tflags = 0;
    if (use_tmpl && strncmp(tmpl_name, "auto", 4) && uf_template_resolve(tmpl_name, NULL, &tmpl, &tflags)) {
        fprintf(stderr, "unforget generate: error: %s\n", uf_error());
        return 2;
    }

    struct item *items = NULL;
    int n_items = 0, rc = 0;
    if (prompts) {
        rc = read_prompts(prompts, &items, &n_items);
    } else {
        items = uf_calloc(1, sizeof *items);
        items[0].prompt = uf_strdup(prompt);
        n_items = 1;
    }
    struct uf_tokenizer tok;
    memset(&tok, 0, sizeof tok);
    int have_tok = 0;
    if (rc == 0) {
        rc = uf_tokenizer_load(&tok, model), have_tok = rc == 0;
        if (rc) uf_fail_prefix("--model %s: tokenizer", model);
        else if (use_tmpl) rc = uf_template_resolve(tmpl_name, &tok, &tmpl, &tflags);
    }
    int max_len = 0;
    for (int i = 0; i < n_items && rc == 0; i++) {
        const char *sys = items[i].system ? items[i].system : system;
        if (use_tmpl) {
            struct uf_chat_tokens ct;
            rc = uf_template_render_prompt_ex(&tok, tmpl, tflags, sys, items[i].prompt, &ct);
            if (rc == 0) items[i].ids = ct.ids, items[i].n = ct.n, free(ct.mask);
        } else {
            rc = uf_tokenizer_encode(&tok, items[i].prompt, tok.bos_id >= 0, &items[i].ids,
                                     &items[i].n);
        }
        if (rc == 0 && items[i].n == 0)
            rc = uf_fail("prompt %d encodes to no tokens (and the tokenizer has no BOS)", i + 1);
        if (rc) uf_fail_prefix("prompt %d", i + 1);
        else max_len = UF_MAX(max_len, items[i].n);
    }
    struct uf_device dev;
    struct uf_model_config cfg;
    struct uf_hf_extra extra;
    struct uf_model m;
    struct uf_gen gen;
    int have_dev = 0, have_params = 0, have_gen = 0;
    if (rc == 0) {
        uf_device_init(&dev, uf_cli.device);
        have_dev = 1;
        rc = uf_hf_model_load_merged(&m, &dev, model, lora, &extra,
                                     UF_MODEL_FROZEN | (bf16 ? UF_MODEL_BF16_BASE : 0));
        have_params = rc == 0;
        if (rc == 0) cfg = m.cfg;
    }
    int32_t stop_ids[3];
    int n_stop_ids = 0;
    if (rc == 0) {
        if (max_len + max_new > cfg.max_seq)
            uf_log(1, "generate: prompts of up to %d tokens + %d new tokens exceed the model's "
                      "max_position_embeddings (%d)\n", max_len, max_new, cfg.max_seq);
        if (use_tmpl && uf_template_stop_id(&tok, tmpl) >= 0)
            stop_ids[n_stop_ids++] = uf_template_stop_id(&tok, tmpl);
        if (extra.eos_token_id >= 0) stop_ids[n_stop_ids++] = extra.eos_token_id;
        if (tok.eos_id >= 0) stop_ids[n_stop_ids++] = tok.eos_id;
        batch = UF_MIN(batch, n_items);
        rc = uf_gen_init_model(&gen, &m, batch, max_len + max_new, UF_MAX(batch, 256));
        have_gen = rc == 0;
        if (profile) uf_device_profile_enable(&dev, 1);
    }
    double t0 = uf_time_now();
    long n_new = 0;
    struct stop_ctx sc = {&tok, stops, n_stops};
    struct uf_gen_opts o = {.max_new_tokens = max_new, .temperature = temperature, .top_p = top_p,
                            .seed = seed, .stop_ids = stop_ids, .n_stop_ids = n_stop_ids, .stop = stop_fn,
                            .stop_ctx = &sc};
    for (int b0 = 0; b0 < n_items && rc == 0; b0 += batch) {
        int nb = UF_MIN(batch, n_items - b0);
        const int32_t **pr = uf_malloc((size_t)nb * sizeof *pr);
        int *lens = uf_malloc((size_t)nb * sizeof *lens);
        for (int b = 0; b < nb; b++) pr[b] = items[b0 + b].ids, lens[b] = items[b0 + b].n;
        struct uf_gen_out *out = uf_calloc((size_t)nb, sizeof *out);
        /* per-prompt RNG streams independent of batching: seed each batch so that prompt
         * b0 + b gets stream (seed, b0 + b) */
        o.first_stream = (uint64_t)b0; /* prompt b0 + b samples from stream (seed, b0 + b) */
        rc = uf_generate(&gen, nb, pr, lens, &o, out);
        for (int b = 0; b < nb && rc == 0; b++) {
            struct item *it = &items[b0 + b];
            char *text = decode_new(&tok, it->ids, it->n, out[b].tokens, out[b].n);
            const char *reason = out[b].reason == UF_GEN_STOP_EOS ? "eos"
                                 : out[b].reason == UF_GEN_STOP_CALLBACK ? "stop_string"
                                                                         : "length";
            if (out[b].reason == UF_GEN_STOP_CALLBACK) {
                size_t cut = strlen(text);
                for (int s = 0; s < n_stops; s++) {
                    const char *h = strstr(text, stops[s]);
                    if (h) cut = UF_MIN(cut, (size_t)(h - text));
                }
                text[cut] = 0;
            }
            cJSON *j = cJSON_CreateObject();
            char *pclean = utf8_clean(it->prompt, strlen(it->prompt));
            cJSON_AddStringToObject(j, "prompt", pclean);
            free(pclean);
            cJSON_AddStringToObject(j, "completion", text);
            cJSON_AddItemToObject(j, "tokens", cJSON_CreateIntArray(out[b].tokens, out[b].n));
            cJSON_AddNumberToObject(j, "n_prompt_tokens", it->n);
            cJSON_AddStringToObject(j, "stop", reason);
            n_new += out[b].n;
            char *line = cJSON_PrintUnformatted(j);
            printf("%s\n", line);
            free(line), free(text);
            cJSON_Delete(j);
        }
        fflush(stdout);
        if (rc == 0) uf_gen_out_free(out, nb);
        free(out), free(pr), free(lens);
    }
    if (rc) fprintf(stderr, "unforget generate: error: %s\n", uf_error());
    if (rc == 0 && profile) {
        double dt = uf_time_now() - t0;
        fprintf(stderr, "generate: %ld new tokens in %.3f s (%.1f tokens/s, prefill included)\n",
                n_new, dt, n_new / (dt > 0 ? dt : 1));
        uf_device_profile_report(&dev, stderr);
    }
    if (have_gen) uf_gen_free(&gen);
    if (have_params) uf_model_free(&m);
    if (have_dev) uf_device_free(&dev);
    if (have_tok) uf_tokenizer_free(&tok);
    for (int i = 0; i < n_items; i++) free(items[i].prompt), free(items[i].system), free(items[i].ids);
    free(items);
    return rc ? 1 : 0;
}
