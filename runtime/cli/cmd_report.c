/* cmd_report.c: `unforget report RUN_DIR... -o report.html [--csv table.csv] [--runs-csv runs.csv]
 * [--title TEXT]`:
 * the HTML report and CSV over run folders (eval/report.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "eval/report.h"

static void report_usage(FILE *f) {
    fprintf(f, "usage: unforget report RUN_DIR... -o report.html [--csv table.csv] [--runs-csv runs.csv]\n"
               "                       [--title TEXT]\n\n"
               "Reads each run folder's results.json (and metrics.jsonl when present; a folder of run\n"
               "folders such as runs/ stands for all of them) and writes one self-contained HTML page:\n"
               "the results table (method x setting, averaged over seeds, best per column marked), SVG\n"
               "plots (ASR vs poison ratio, ASR vs utility with the Pareto front, loss curves).\n\n"
               "  -o, --output FILE  the HTML page to write (default report.html)\n"
               "  --csv FILE         also write the table in long form as CSV (method, model, task,\n"
               "                     poison_ratio, metric, mean, sd over seeds, mean lo/hi, n_seeds, n)\n"
               "  --runs-csv FILE    also write every run's metrics as CSV, one row per run and metric\n"
               "                     (run, method, model, task, poison_ratio, seed, metric, value, lo,\n"
               "                     hi, n, n_acts): for seed-paired comparisons and your own statistics\n"
               "  --title TEXT       page title (default \"unforget report\")\n");
}

int uf_cmd_report(int argc, char **argv) {
    const char *out = "report.html", *csv = NULL, *runs_csv = NULL, *title = NULL;
    const char **dirs = uf_calloc((size_t)argc + 1, sizeof *dirs);
    int nd = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **dst = NULL;
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            report_usage(stdout);
            free(dirs);
            return 0;
        }
        if (strcmp(s, "-o") == 0 || strcmp(s, "--output") == 0) dst = &out;
        else if (strcmp(s, "--csv") == 0) dst = &csv;
        else if (strcmp(s, "--runs-csv") == 0) dst = &runs_csv;
        else if (strcmp(s, "--title") == 0) dst = &title;
        else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "unforget report: error: unknown option '%s'\n", s);
            report_usage(stderr);
            free(dirs);
            return 2;
        }
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "unforget report: error: %s needs a value\n", s);
                free(dirs);
                return 2;
            }
            *dst = argv[++i];
        } else {
            dirs[nd++] = s;
        }
    }
    if (nd == 0) {
        fprintf(stderr, "unforget report: error: give at least one run folder\n");
        report_usage(stderr);
        free(dirs);
        return 2;
    }
    int rc = uf_report_write(dirs, nd, out, csv, runs_csv, title);
    free(dirs);
    if (rc) {
        fprintf(stderr, "unforget report: error: %s\n", uf_error());
        return 1;
    }
    uf_log(1, "wrote %s%s%s%s%s\n", out, csv ? ", " : "", csv ? csv : "", runs_csv ? ", " : "",
           runs_csv ? runs_csv : "");
    return 0;
}
