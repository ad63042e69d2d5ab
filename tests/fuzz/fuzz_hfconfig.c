/* fuzz_hfconfig.c: config.json of a Hugging Face folder (uf_hf_config_parse) on arbitrary bytes:
 * no crash, no undefined behaviour (numbers beyond int, absurd sizes); an accepted config passes
 * uf_model_config_validate and its parameter count is computable. */
#include <stddef.h>
#include <stdint.h>

#include "core/model_config.h"
#include "core/util.h"
#include "formats/hf_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct uf_model_config c;
    struct uf_hf_extra e;
    if (uf_hf_config_parse((const char *)data, size, "fuzz/config.json", &c, &e) != 0) {
        if (uf_error()[0] == 0) __builtin_trap();
        return 0;
    }
    if (uf_model_config_validate(&c) != 0) __builtin_trap();
    if (c.n_layers <= 256 && uf_model_param_numel(&c) <= 0) __builtin_trap();
    return 0;
}
