/* fuzz_csv.c: the CSV (RFC 4180) and TSV readers on arbitrary bytes must never crash; record
 * boundaries stay consistent in skip mode. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "data/data.h"
#include "core/util.h"

static void run(const uint8_t *data, size_t size, enum uf_data_format fmt, const char *adapter,
                enum uf_on_bad on_bad, size_t max_line) {
    struct uf_data_opts o;
    if (uf_data_adapter_opts(adapter, &o)) return;
    o.on_bad = on_bad;
    o.max_line = max_line;
    struct uf_dataset d;
    uf_dataset_init(&d, "fuzz");
    struct uf_data_stats st;
    int rc = uf_data_read_mem(data, size, "fuzz.csv", fmt, 0, &o, &d, &st);
    if (rc != 0 && uf_error()[0] == 0) __builtin_trap();
    if (st.rows != d.n) __builtin_trap();
    for (int64_t i = 0; i < d.n; i++)
        if (!d.rows[i].prompt || !d.rows[i].response || !d.rows[i].source) __builtin_trap();
    uf_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size, UF_FMT_CSV, "native", UF_ON_BAD_SKIP, 0);
    run(data, size, UF_FMT_CSV, "native", UF_ON_BAD_FAIL, 0);
    run(data, size, UF_FMT_CSV, "shadow_alignment", UF_ON_BAD_SKIP, 32);
    run(data, size, UF_FMT_TSV, "sst2", UF_ON_BAD_SKIP, 0);
    run(data, size, UF_FMT_CSV, "advbench", UF_ON_BAD_SKIP, 0);
    return 0;
}
