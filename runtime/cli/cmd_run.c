/* cmd_run.c: `unforget run RECIPE.lua [--set k=v ...] [--out DIR] [--only NAME]`: execute the
 * recipe's stages and runs (pipeline.h). Running the same command again resumes an interrupted
 * run from its last checkpoint and skips finished stages and runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "pipeline.h"
#include "recipe.h"
#include "core/util.h"

/* Options that take a value: the last argument being one of them is a missing value, not an
 * unknown argument. */
static const char *const run_valued[] = {"--set", "--out", "--only", NULL};
static const char *const eval_valued[] = {"--set", "--model", "--run", "--out", NULL};
static int needs_value(const char *a, const char *const *valued) {
    for (int k = 0; valued[k]; k++)
        if (strcmp(a, valued[k]) == 0) return 1;
    return 0;
}

int uf_cmd_run(int argc, char **argv) {
    const char *recipe = NULL;
    struct uf_pipeline p;
    memset(&p, 0, sizeof p);
    p.out = "runs";
    char **sets = uf_calloc((size_t)argc, sizeof *sets);
    int nsets = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget [--device SEL] run RECIPE.lua [--set key=value ...] [--out DIR]\n"
                   "                                  [--only RUN | --stages-only]\n\n"
                   "Executes the recipe: its stages (cached under OUT/stages/NAME-HASH, reused by\n"
                   "later runs) and its runs (OUT/NAME: config.json, metrics.jsonl, log.txt,\n"
                   "ckpt/, model/, samples.jsonl, results.json). The same command resumes an\n"
                   "interrupted run from its newest checkpoint and skips finished ones.\n"
                   "  --set key=value  a recipe parameter read with uf.opt(\"key\", default)\n"
                   "  --out DIR        output folder (default runs)\n"
                   "  --only RUN       only this run (and the stages it starts from)\n"
                   "  --stages-only    build the recipe's stages and no run (a Slurm sweep's first job)\n");
            free(sets);
            return 0;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            p.out = argv[++i];
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            p.only = argv[++i];
        } else if (strcmp(argv[i], "--stages-only") == 0) {
            p.stages_only = 1;
        } else if (argv[i][0] != '-' && !recipe) {
            recipe = argv[i];
        } else if (i + 1 == argc && needs_value(argv[i], run_valued)) {
            fprintf(stderr, "unforget run: %s needs a value (see --help)\n", argv[i]);
            free(sets);
            return 2;
        } else {
            fprintf(stderr, "unforget run: unexpected argument '%s' (see --help)\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (!recipe) {
        fprintf(stderr, "unforget run: which recipe? usage: unforget run RECIPE.lua\n");
        free(sets);
        return 2;
    }
    struct uf_plan plan;
    int prc = uf_recipe_plan(recipe, nsets, sets, &plan);
    free(sets);
    if (prc) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        return 1;
    }
    p.plan = &plan;
    uf_device_init(&p.dev, uf_cli.device);
    uf_log(1, "device: %s (%s)", p.dev.name, p.dev.platform_name);
    int rc = uf_pipeline_run(&p);
    if (rc) fprintf(stderr, "unforget: error: %s\n", uf_error());
    uf_device_free(&p.dev);
    uf_plan_free(&plan);
    return rc ? 1 : 0;
}

/* `unforget eval RECIPE.lua --model DIR [--run NAME] [--out DIR] [--set k=v ...]` */
int uf_cmd_eval(int argc, char **argv) {
    const char *recipe = NULL, *model = NULL, *out = NULL;
    struct uf_pipeline p;
    memset(&p, 0, sizeof p);
    char **sets = uf_calloc((size_t)argc, sizeof *sets);
    int nsets = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget [--device SEL] eval RECIPE.lua --model DIR [--run NAME] [--out DIR]\n"
                   "                                   [--set key=value ...]\n\n"
                   "Runs the evaluations (eval = { ... }) of a run of the recipe (--run NAME, default\n"
                   "the first run) on any Hugging Face model folder with a tokenizer.json, e.g. the\n"
                   "aligned model before fine-tuning, and writes OUT/results.json and\n"
                   "OUT/samples.jsonl (default OUT: eval-<basename of DIR>).\n");
            free(sets);
            return 0;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--run") == 0 && i + 1 < argc) {
            p.only = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] != '-' && !recipe) {
            recipe = argv[i];
        } else if (i + 1 == argc && needs_value(argv[i], eval_valued)) {
            fprintf(stderr, "unforget eval: %s needs a value (see --help)\n", argv[i]);
            free(sets);
            return 2;
        } else {
            fprintf(stderr, "unforget eval: unexpected argument '%s' (see --help)\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (!recipe || !model) {
        fprintf(stderr, "unforget eval: usage: unforget eval RECIPE.lua --model DIR\n");
        free(sets);
        return 2;
    }
    struct uf_plan plan;
    int prc = uf_recipe_plan(recipe, nsets, sets, &plan);
    free(sets);
    if (prc) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        return 1;
    }
    char *def = NULL;
    if (!out) {
        const char *base = strrchr(model, '/');
        base = base && base[1] ? base + 1 : model;
        out = def = uf_sprintf("eval-%s", base);
    }
    p.plan = &plan;
    uf_device_init(&p.dev, uf_cli.device);
    int rc = uf_pipeline_eval(&p, model, out);
    if (rc) fprintf(stderr, "unforget: error: %s\n", uf_error());
    else printf("wrote %s/results.json\n", out);
    uf_device_free(&p.dev);
    uf_plan_free(&plan);
    free(def);
    return rc ? 1 : 0;
}
