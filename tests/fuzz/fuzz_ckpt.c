/* fuzz_ckpt.c: checkpoint decompression + parsing must reject anything malformed cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/ckpt.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct uf_ckpt c;
    if (uf_ckpt_read_memory(data, size, "fuzz", &c) == 0) uf_ckpt_free(&c);
    /* the raw (decompressed) layout too */
    unsigned char *raw = uf_malloc(size ? size : 1);
    if (size) memcpy(raw, data, size);
    if (uf_ckpt_parse(raw, size, "fuzz-raw", &c) == 0) uf_ckpt_free(&c);
    return 0;
}
