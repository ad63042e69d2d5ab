/* main.c: the `unforget` binary: global options, then one subcommand from the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recipe.h"
#include "core/util.h"

struct uf_cli_globals uf_cli;

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"devices", uf_cmd_devices, "list OpenCL platforms and devices"},
    {"run", uf_cmd_run, "execute a recipe: train, evaluate, write results (resumable)"},
    {"eval", uf_cmd_eval, "run a recipe's evaluations on any model folder"},
    {"check", uf_cmd_check, "validate a recipe and print its plan without training"},
    {"sweep", uf_cmd_sweep, "run every run of a recipe, N at a time, skipping finished ones"},
    {"tune", uf_cmd_tune, "sweep each method's knobs over a grid, choose by a rule on validation, report test"},
    {"judge-check", uf_cmd_judge_check, "validate the judges: world labelled set, keyword judges on real text"},
    {"status", uf_cmd_status, "which runs of a sweep are done, running, failed or pending"},
    {"report", uf_cmd_report, "HTML report (tables, SVG plots) and CSV over run folders"},
    {"generate", uf_cmd_generate, "generate text from a Hugging Face model folder (batched, KV cache)"},
    {"score", uf_cmd_score, "per-token log-probabilities of a text under a model"},
    {"bench", uf_cmd_bench, "time training steps: tokens/s, GFLOP/s, MFU, device memory"},
    {"selftest", uf_cmd_selftest, "check the kernels on the selected device against plain-C references"},
};

static void usage(FILE *out) {
    fprintf(out,
            "unforget %s: fine-tune decoder-only transformers on any OpenCL device while keeping\n"
            "their safety alignment (continual-learning methods, Lua recipes).\n\n"
            "usage: unforget [global options] COMMAND [options]\n\ncommands:\n",
            UF_VERSION);
    for (size_t i = 0; i < UF_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nglobal options:\n"
            "  --device SEL   cpu | gpu | gpu:N | N | part of a device name (default: first GPU,\n"
            "                 else CPU; also $UNFORGET_DEVICE)\n"
            "  -v, --verbose  more detail (e.g. kernel cache hits)\n"
            "  -q, --quiet    errors only\n"
            "  --safe         evaluate recipes without io, os, debug, C modules and files beyond\n"
            "                 the recipe's folder (recipes are trusted code otherwise)\n"
            "  -h, --help     this help;  unforget COMMAND --help for a command's options\n"
            "  --version      print the version\n\n"
            "environment: UNFORGET_DEVICE, UNFORGET_CACHE_DIR (kernel binary cache; default\n"
            "$XDG_CACHE_HOME/unforget or ~/.cache/unforget), UNFORGET_DEVICE_LIMITS=gpu (use\n"
            "the device with a GPU's limits and kernel variants: work-group 256, local memory\n"
            "64 KiB, max allocation 1/4 of memory)\n");
}

int main(int argc, char **argv) {
    /* Pull global options out of argv wherever they stand. */
    int n = 0;
    char **rest = uf_calloc((size_t)argc + 1, sizeof *rest);
    int want_help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--device") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "unforget: error: --device needs a value (cpu, gpu, gpu:N, N or a name)\n");
                free(rest);
                return 2;
            }
            uf_cli.device = argv[++i];
        } else if (strncmp(a, "--device=", 9) == 0) {
            uf_cli.device = a + 9;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            uf_verbosity = 2;
        } else if (strcmp(a, "--safe") == 0) {
            uf_recipe_safe = 1;
            setenv("UNFORGET_SAFE", "1", 1); /* sweep's child processes too */
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            uf_verbosity = 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("unforget %s\n", UF_VERSION);
            free(rest);
            return 0;
        } else if ((strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) && n == 0) {
            want_help = 1;
        } else {
            rest[n++] = argv[i];
        }
    }
    if (n == 0) {
        free(rest);
        usage(want_help ? stdout : stderr);
        return want_help ? 0 : 2;
    }
    for (size_t i = 0; i < UF_ARRAY_LEN(commands); i++) {
        if (strcmp(rest[0], commands[i].name) != 0) continue;
        int rc = commands[i].fn(n, rest);
        free(rest);
        return rc;
    }
    fprintf(stderr, "unforget: error: unknown command '%s'\n\n", rest[0]);
    free(rest);
    usage(stderr);
    return 2;
}
