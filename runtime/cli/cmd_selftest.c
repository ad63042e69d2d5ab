/* cmd_selftest.c: `unforget selftest`: the device kernels against their plain-C references. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/device.h"
#include "model/selftest_model.h"
#include "ops/selftest.h"

int uf_cmd_selftest(int argc, char **argv) {
    int full = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget [--device SEL] selftest [--full]\n\n"
                   "Runs each device kernel family on small random inputs and compares it with\n"
                   "its plain-C reference; prints the max relative error per case. Exit 1 if any\n"
                   "case exceeds its bound.\n"
                   "  --full  also every variant a device may select (both GEMM backends, bf16\n"
                   "          GEMM, every attention head-dim instance and backward form, the\n"
                   "          other op path), one tiny training step and one KV-cache generation\n"
                   "          vs the reference model (what tests/test_oclgrind.sh runs)\n");
            return 0;
        }
        if (strcmp(argv[i], "--full") == 0) {
            full = 1;
            continue;
        }
        fprintf(stderr, "unforget selftest: unknown option '%s'\n", argv[i]);
        return 2;
    }
    struct uf_device d;
    uf_device_init(&d, uf_cli.device);
    printf("selftest on %s (%s)%s\n", d.name, d.platform_name, uf_device_limits_note(&d));
    int failures = uf_selftest_run_ex(&d, stdout, full);
    if (full) failures += uf_selftest_model_run(&d, stdout);
    printf("%s: %d case(s) failed\n", failures ? "FAILED" : "all ok", failures);
    uf_device_free(&d);
    return failures ? 1 : 0;
}
