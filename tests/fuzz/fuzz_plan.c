/* fuzz_plan.c: a recipe's plan as the C runtime reads it (uf_plan_parse), then the numbers of its
 * nodes (uf.model.new -> model config, uf.adamw -> hyper-parameters) on arbitrary JSON: the Lua
 * constructors validate recipes, but the C side must not crash or hit undefined behaviour on
 * any number either (huge, negative, fractional, non-numbers). */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model_config.h"
#include "core/util.h"
#include "formats/plan.h"
#include "model/memplan.h"
#include "train.h"

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
    uf_plan_free(&p);
    return 0;
}
