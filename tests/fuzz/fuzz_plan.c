/* fuzz_plan.c: a recipe's plan as the C runtime reads it (uf_plan_parse), then the numbers of its
 * nodes (uf.model.new -> model config, uf.adamw -> hyper-parameters) on arbitrary JSON: the Lua
 * constructors validate recipes, but the C side must not crash or hit undefined behaviour on
 * any number either (huge, negative, fractional, non-numbers). uf.tune studies: their rule
 * (eval/tune.h) parses or fails with a message, and a parsed rule prints and parses back. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/model_config.h"
#include "core/util.h"
#include "eval/tune.h"
#include "formats/plan.h"
#include "model/memplan.h"
#include "train/train.h"

static void node(const struct uf_plan_node *n) {
    struct uf_model_config c;
    if (n->model && n->model->type == UF_PLAN_MODEL_NEW && uf_memplan_config_new(n->model, 300, &c) == 0) {
        if (uf_model_config_validate(&c) != 0) __builtin_trap();
        if (c.n_layers <= 256 && uf_model_param_numel(&c) <= 0) __builtin_trap();
    }
    struct uf_train_hparams hp;
    if (uf_train_hparams_from_plan(&n->optim, &hp) == 0 && hp.batch > 0 && hp.micro_batch <= 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) return 0;
    struct uf_plan p;
    if (uf_plan_parse(root, &p) != 0) { /* takes root */
        if (uf_error()[0] == 0) __builtin_trap();
        return 0;
    }
    for (int i = 0; i < p.n_stages; i++) node(&p.stages[i]);
    for (int i = 0; i < p.n_runs; i++) node(&p.runs[i]);
    for (int i = 0; i < p.n_tunes; i++) {
        const struct uf_plan_tune *t = &p.tunes[i];
        for (int r = 0; r < t->n_runs; r++)
            if (t->runs[r].method < 0 || t->runs[r].method >= t->n_methods) __builtin_trap();
        struct uf_tune_rule rule, again;
        char text[1024];
        if (uf_tune_rule_parse(t->rule, &rule) != 0) {
            if (uf_error()[0] == 0) __builtin_trap();
            continue;
        }
        uf_tune_rule_format(&rule, text, sizeof text);
        if (strlen(text) < sizeof text - 1 && uf_tune_rule_parse(text, &again) != 0) __builtin_trap();
    }
    uf_plan_free(&p);
    return 0;
}
