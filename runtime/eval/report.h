/* report.h: the HTML/CSV report over many runs (`unforget report RUN_DIRS... -o report.html
 * [--csv table.csv]`, cli/cmd_report.c), rendered from the results data model (results.h).
 *
 * The report (self-contained HTML, no network, no JavaScript): a results table (rows: method;
 * column groups: setting = model / task / poison ratio, averaged over seeds; cells: mean, ± sd
 * over seeds when there are several, and the mean of the runs' [lo, hi] intervals; the best
 * mean per column is bold and starred, ties all starred, nothing starred in a column with a
 * single method), inline SVG plots (ASR vs poison ratio per method with
 * interval bars, one plot per model/task; ASR vs utility scatter with the Pareto front; loss
 * curves per loss term), and a table of runs with their decoding settings and judges.
 * The CSV is the long form of the table: method,model,task,poison_ratio,metric,mean,sd,lo,hi,
 * n_seeds,n. */
#ifndef UF_EVAL_REPORT_H
#define UF_EVAL_REPORT_H

#include "eval/results.h"

/* Writes the HTML report over n run folders (each holds a results.json; metrics.jsonl optional),
 * and, when the paths are not NULL, the CSV of the table (method x setting, over seeds) and the CSV
 * of every run's metrics (one row per run and metric: what seed-paired comparisons need). A folder
 * without results.json whose sub-folders have one stands for those sub-folders (e.g. `runs/`).
 * 0 or uf_fail. */
int uf_report_write(const char *const *run_dirs, int n, const char *html_path, const char *csv_path,
                    const char *runs_csv_path, const char *title);

#endif
