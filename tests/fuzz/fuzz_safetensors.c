/* fuzz_safetensors.c: arbitrary bytes as a .safetensors image; every accepted file must convert
 * each float tensor without reading outside the image. */
#include <stdint.h>
#include <stdlib.h>

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct uf_safetensors st;
    if (uf_safetensors_open_memory(&st, data, size, "fuzz") != 0) return 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const struct uf_st_tensor *t = &st.tensors[i];
        if (t->numel > (1 << 20)) continue;
        float *dst = malloc((size_t)t->numel * sizeof(float) + 1);
        uf_st_tensor_to_f32(t, "fuzz", dst, t->numel);
        free(dst);
        if (uf_safetensors_find(&st, t->name) != t) abort();
    }
    uf_safetensors_free(&st);
    return 0;
}
