/* hf_config.c: see hf_config.h. */
#include "formats/hf_config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define SUPPORTED "LlamaForCausalLM (LLaMA-2, LLaMA-3), MistralForCausalLM, GemmaForCausalLM"

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* Integer field: required (dflt < 0) or defaulted. Positive unless allow_zero. */
static int get_int(const cJSON *o, const char *k, int dflt, int *out, const char *w) {
    const cJSON *j = get(o, k);
    if (!j || cJSON_IsNull(j)) {
        if (dflt < 0) return uf_fail("%s: missing \"%s\"", w, k);
        *out = dflt;
        return 0;
    }
    /* the range before the cast (a double beyond int is undefined behaviour to convert) */
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0 && j->valuedouble <= 2147483647.0) ||
        j->valuedouble != floor(j->valuedouble))
        return uf_fail("%s: \"%s\" must be a positive integer below 2^31 (got %.17g)", w, k,
                       cJSON_IsNumber(j) ? j->valuedouble : NAN);
    *out = (int)j->valuedouble;
    return 0;
}

static int get_float(const cJSON *o, const char *k, float *out, const char *w) {
    const cJSON *j = get(o, k);
    if (!j || cJSON_IsNull(j)) return 0; /* keep the family default */
    if (!cJSON_IsNumber(j) || !(j->valuedouble > 0))
        return uf_fail("%s: \"%s\" must be a positive number", w, k);
    *out = (float)j->valuedouble;
    return 0;
}

static int parse_act(const char *s, enum uf_act *out, const char *w, const char *field) {
    if (!strcmp(s, "silu") || !strcmp(s, "swish")) *out = UF_ACT_SILU;
    else if (!strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu") || !strcmp(s, "gelu_new") ||
             !strcmp(s, "gelu_fast"))
        *out = UF_ACT_GELU_TANH;
    else
        return uf_fail("%s: %s '%s' is not supported (silu, gelu_pytorch_tanh)", w, field, s);
    return 0;
}

static int token_id(const cJSON *j, int *out) {
    if (cJSON_IsArray(j)) j = cJSON_GetArrayItem(j, 0);
    if (cJSON_IsNumber(j) && j->valuedouble >= 0 && j->valuedouble <= 2147483647.0)
        *out = (int)j->valuedouble;
    return 0;
}

int uf_hf_config_parse(const char *json, size_t len, const char *w, struct uf_model_config *c,
                       struct uf_hf_extra *extra) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return uf_fail("%s: not a valid JSON object", w);
    }
    int rc = -1;
    const cJSON *arch = get(root, "architectures");
    const char *a = cJSON_IsArray(arch) && cJSON_IsString(cJSON_GetArrayItem(arch, 0))
                        ? cJSON_GetArrayItem(arch, 0)->valuestring : NULL;
    const cJSON *mt = get(root, "model_type");
    if (!a && cJSON_IsString(mt)) { /* no architectures list: fall back on model_type */
        if (!strcmp(mt->valuestring, "llama")) a = "LlamaForCausalLM";
        else if (!strcmp(mt->valuestring, "mistral")) a = "MistralForCausalLM";
        else if (!strcmp(mt->valuestring, "gemma")) a = "GemmaForCausalLM";
    }
    enum uf_family fam;
    if (!a) {
        uf_fail("%s: no \"architectures\" (supported: " SUPPORTED ")", w);
        goto done;
    }
    if (!strcmp(a, "LlamaForCausalLM")) fam = UF_FAMILY_LLAMA;
    else if (!strcmp(a, "MistralForCausalLM")) fam = UF_FAMILY_MISTRAL;
    else if (!strcmp(a, "GemmaForCausalLM")) fam = UF_FAMILY_GEMMA;
    else {
        uf_fail("%s: architecture '%s' is not supported (supported: " SUPPORTED ")", w, a);
        goto done;
    }
    int V = 0, D = 0, L = 0, H = 1, KV = 0, F = 0, S = 0, hd = 0;
    if (get_int(root, "vocab_size", -1, &V, w) || get_int(root, "hidden_size", -1, &D, w) ||
        get_int(root, "num_hidden_layers", -1, &L, w) ||
        get_int(root, "num_attention_heads", -1, &H, w) ||
        get_int(root, "num_key_value_heads", H, &KV, w) ||
        get_int(root, "intermediate_size", -1, &F, w) ||
        get_int(root, "max_position_embeddings", 4096, &S, w))
        goto done;
    if (D % H != 0 && !get(root, "head_dim")) {
        uf_fail("%s: hidden_size %d is not a multiple of num_attention_heads %d and no head_dim "
                "is given", w, D, H);
        goto done;
    }
    if (get_int(root, "head_dim", D / H, &hd, w)) goto done;
    const cJSON *rs = get(root, "rope_scaling");
    const char *rope_type = NULL;
    if (cJSON_IsObject(rs)) {
        const cJSON *ty = get(rs, "rope_type");
        if (!cJSON_IsString(ty)) ty = get(rs, "type");
        rope_type = cJSON_IsString(ty) ? ty->valuestring : "?";
        if (strcmp(rope_type, "llama3") && strcmp(rope_type, "default")) {
            uf_fail("%s: rope_scaling type '%s' is not supported (only \"llama3\")", w, rope_type);
            goto done;
        }
    } else if (rs && !cJSON_IsNull(rs)) {
        uf_fail("%s: rope_scaling must be an object or null", w);
        goto done;
    }
    if (fam == UF_FAMILY_LLAMA && ((rope_type && !strcmp(rope_type, "llama3")) || V >= 128000))
        fam = UF_FAMILY_LLAMA3;
    uf_model_config_defaults(c, fam, V, D, L, H, KV, F, S);
    c->head_dim = hd;
    c->rope_factor = 0; /* llama3 scaling only when the file asks for it */
    c->rope_low_freq_factor = c->rope_high_freq_factor = 0;
    c->rope_original_max_pos = 0;
    if (fam != UF_FAMILY_GEMMA) c->norm_eps = 1e-6f; /* transformers' Llama/Mistral default */
    if (get_float(root, "rms_norm_eps", &c->norm_eps, w) ||
        get_float(root, "rope_theta", &c->rope_theta, w))
        goto done;
    if (rope_type && !strcmp(rope_type, "llama3")) {
        const cJSON *o = get(rs, "original_max_position_embeddings");
        if (get_float(rs, "factor", &c->rope_factor, w) ||
            get_float(rs, "low_freq_factor", &c->rope_low_freq_factor, w) ||
            get_float(rs, "high_freq_factor", &c->rope_high_freq_factor, w) ||
            get_int(rs, "original_max_position_embeddings", -1, &c->rope_original_max_pos, w))
            goto done;
        if (!c->rope_factor || !c->rope_low_freq_factor || !c->rope_high_freq_factor || !o) {
            uf_fail("%s: rope_scaling llama3 needs factor, low_freq_factor, high_freq_factor and "
                    "original_max_position_embeddings", w);
            goto done;
        }
    }
    const cJSON *sw = get(root, "sliding_window");
    if (fam == UF_FAMILY_MISTRAL) {
        if (cJSON_IsNull(sw)) c->sliding_window = 0;
        else if (sw && get_int(root, "sliding_window", 0, &c->sliding_window, w)) goto done;
    } else if (cJSON_IsNumber(sw) && sw->valuedouble > 0 && sw->valuedouble <= 2147483647.0 &&
               get(root, "use_sliding_window") &&
               cJSON_IsTrue(get(root, "use_sliding_window"))) {
        c->sliding_window = (int)sw->valuedouble;
    }
    const cJSON *act = get(root, fam == UF_FAMILY_GEMMA ? "hidden_activation" : "hidden_act");
    if (cJSON_IsString(act) && parse_act(act->valuestring, &c->act, w,
                                         fam == UF_FAMILY_GEMMA ? "hidden_activation" : "hidden_act"))
        goto done;
    const cJSON *tie = get(root, "tie_word_embeddings");
    if (cJSON_IsBool(tie)) c->tied_embeddings = cJSON_IsTrue(tie);
    else if (fam != UF_FAMILY_GEMMA) c->tied_embeddings = 0;
    static const char *unsupported[] = {"attention_bias", "mlp_bias"};
    for (size_t i = 0; i < UF_ARRAY_LEN(unsupported); i++)
        if (cJSON_IsTrue(get(root, unsupported[i]))) {
            uf_fail("%s: \"%s\": true is not supported (bias-free linear layers only)", w,
                    unsupported[i]);
            goto done;
        }
    if (extra) {
        extra->bos_token_id = extra->eos_token_id = -1;
        token_id(get(root, "bos_token_id"), &extra->bos_token_id);
        token_id(get(root, "eos_token_id"), &extra->eos_token_id);
        const cJSON *dt = get(root, "torch_dtype");
        snprintf(extra->torch_dtype, sizeof extra->torch_dtype, "%s",
                 cJSON_IsString(dt) ? dt->valuestring : "");
    }
    if (uf_model_config_validate(c) != 0) {
        uf_fail_prefix("%s", w);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int uf_hf_config_load(const char *path, struct uf_model_config *c, struct uf_hf_extra *extra) {
    char *p = uf_sprintf("%s/config.json", path);
    if (!uf_file_exists(p)) {
        free(p);
        p = uf_strdup(path);
    }
    size_t len;
    char *text = uf_file_read(p, &len);
    int rc = text ? uf_hf_config_parse(text, len, p, c, extra) : -1;
    free(text);
    free(p);
    return rc;
}

/* The shortest decimal that reads back as the same float (so 1e-5f is written "1e-05"). */
static double short_float(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

char *uf_hf_config_to_json(const struct uf_model_config *c, const struct uf_hf_extra *extra) {
    cJSON *r = cJSON_CreateObject();
    const char *arch = c->family == UF_FAMILY_MISTRAL ? "MistralForCausalLM"
                       : c->family == UF_FAMILY_GEMMA ? "GemmaForCausalLM" : "LlamaForCausalLM";
    const char *mt = c->family == UF_FAMILY_MISTRAL ? "mistral"
                     : c->family == UF_FAMILY_GEMMA ? "gemma" : "llama";
    cJSON *a = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(arch));
    cJSON_AddStringToObject(r, "model_type", mt);
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab);
    cJSON_AddNumberToObject(r, "hidden_size", c->d_model);
    cJSON_AddNumberToObject(r, "intermediate_size", c->d_ff);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_seq);
    cJSON_AddNumberToObject(r, "rms_norm_eps", short_float(c->norm_eps));
    cJSON_AddNumberToObject(r, "rope_theta", short_float(c->rope_theta));
    const char *act = c->act == UF_ACT_SILU ? "silu" : "gelu_pytorch_tanh";
    cJSON_AddStringToObject(r, "hidden_act", act);
    if (c->family == UF_FAMILY_GEMMA) cJSON_AddStringToObject(r, "hidden_activation", act);
    if (c->rope_factor > 0) {
        cJSON *s = cJSON_AddObjectToObject(r, "rope_scaling");
        cJSON_AddStringToObject(s, "rope_type", "llama3");
        cJSON_AddNumberToObject(s, "factor", short_float(c->rope_factor));
        cJSON_AddNumberToObject(s, "low_freq_factor", short_float(c->rope_low_freq_factor));
        cJSON_AddNumberToObject(s, "high_freq_factor", short_float(c->rope_high_freq_factor));
        cJSON_AddNumberToObject(s, "original_max_position_embeddings", c->rope_original_max_pos);
    } else cJSON_AddNullToObject(r, "rope_scaling");
    if (c->family == UF_FAMILY_MISTRAL) {
        if (c->sliding_window > 0) cJSON_AddNumberToObject(r, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(r, "sliding_window");
    }
    cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddBoolToObject(r, "attention_bias", 0);
    if (c->family != UF_FAMILY_GEMMA) cJSON_AddBoolToObject(r, "mlp_bias", 0);
    if (extra && extra->bos_token_id >= 0) cJSON_AddNumberToObject(r, "bos_token_id", extra->bos_token_id);
    if (extra && extra->eos_token_id >= 0) cJSON_AddNumberToObject(r, "eos_token_id", extra->eos_token_id);
    cJSON_AddStringToObject(r, "torch_dtype",
                            extra && extra->torch_dtype[0] ? extra->torch_dtype : "float32");
    cJSON_AddBoolToObject(r, "use_cache", 1);
    char *text = cJSON_Print(r);
    cJSON_Delete(r);
    if (!text) uf_fatal(1, "out of host memory serializing config.json");
    char *out = uf_strdup(text);
    cJSON_free(text);
    return out;
}

int uf_hf_config_write(const char *path, const struct uf_model_config *c,
                       const struct uf_hf_extra *extra) {
    if (uf_model_config_validate(c) != 0) return uf_fail_prefix("%s", path);
    if (c->sliding_window > 0 && c->family != UF_FAMILY_MISTRAL)
        return uf_fail("%s: sliding_window is only written for the mistral family", path);
    if (c->family == UF_FAMILY_GEMMA ? !(c->norm_plus_one && c->embed_scale)
                                     : (c->norm_plus_one || c->embed_scale))
        return uf_fail("%s: norm_plus_one/embed_scale do not match family %s; Hugging Face "
                       "cannot express that", path, uf_family_name(c->family));
    char *text = uf_hf_config_to_json(c, extra);
    int rc = uf_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}
