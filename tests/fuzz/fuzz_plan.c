/* fuzz_plan.c: the plan nodes the C runtime reads from a recipe (uf.model.new -> model config,
 * uf.adamw -> hyper-parameters) on arbitrary JSON: the Lua constructors validate recipes, but the
 * C side must not crash or hit undefined behaviour on any number either (huge, negative,
 * fractional, non-numbers). Input: {"model": {...}, "optim": {...}} or any bytes. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/model_config.h"
#include "core/util.h"
#include "model/memplan.h"
#include "train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!root) return 0;
    const cJSON *m = cJSON_GetObjectItem(root, "model"), *o = cJSON_GetObjectItem(root, "optim");
    struct uf_model_config c;
    if (m && uf_memplan_config_new(m, 300, &c) == 0) {
        if (uf_model_config_validate(&c) != 0) __builtin_trap();
        if (c.n_layers <= 256 && uf_model_param_numel(&c) <= 0) __builtin_trap();
    }
    struct uf_train_hparams hp;
    if (o && uf_train_hparams_from_json(o, &hp) == 0 && (hp.batch <= 0 || hp.micro_batch <= 0))
        __builtin_trap();
    cJSON_Delete(root);
    return 0;
}
