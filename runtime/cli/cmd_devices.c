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
                   "selects, with the limits and kernel variants unforget uses on it\n"
                   "(UNFORGET_DEVICE_LIMITS=gpu: a GPU's, see README). Exit code 2 when the\n"
                   "selector matches no device.\n");
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
    printf("used with: %s limits: max work-group %zu, local memory %.1f KiB, max allocation "
           "%.2f GiB; %s kernel variants\n", d.gpu_limits ? "GPU (UNFORGET_DEVICE_LIMITS=gpu)"
           : "native", d.max_wg, (double)d.local_mem / 1024, (double)d.max_alloc / (1u << 30),
           uf_device_gpu_like(&d) ? "GPU" : "CPU");
    uf_device_free(&d);
    return 0;
}
