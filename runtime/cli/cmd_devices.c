/* cmd_devices.c: `unforget devices`: list every OpenCL device and mark the one selected. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/device.h"

int uf_cmd_devices(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget [--device SEL] devices\n\n"
                   "Lists every OpenCL platform and device (type, compute units, memory, max\n"
                   "work-group size, fp16/fp64) and the device that --device / UNFORGET_DEVICE\n"
                   "selects. Exit code 2 when the selector matches no device.\n");
            return 0;
        }
        fprintf(stderr, "unforget devices: unknown option '%s'\n", argv[i]);
        return 2;
    }
    int n = uf_device_list(stdout);
    if (n == 0) return 1;
    struct uf_device d;
    uf_device_init(&d, uf_cli.device); /* exits 2 on a bad selector */
    printf("selected: %s (%s)\n", d.name, d.platform_name);
    uf_device_free(&d);
    return 0;
}
