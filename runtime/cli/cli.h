/* cli.h: the `unforget` command line. Each subcommand is `int uf_cmd_<name>(int argc, char **argv)`
 * (argv[0] is the subcommand name; global options are already removed) returning the exit code:
 * 0 ok, 1 runtime failure, 2 usage error. Add a subcommand: write runtime/cli/cmd_<name>.c and add
 * one line to the table in runtime/cli/main.c. */
#ifndef UF_CLI_H
#define UF_CLI_H

#include <stdio.h>

struct uf_cli_globals {
    const char *device; /* --device SEL (else $UNFORGET_DEVICE) */
};
extern struct uf_cli_globals uf_cli;

int uf_cmd_devices(int argc, char **argv);
int uf_cmd_selftest(int argc, char **argv);
int uf_cmd_bench(int argc, char **argv);
int uf_cmd_check(int argc, char **argv);
int uf_cmd_run(int argc, char **argv);
int uf_cmd_eval(int argc, char **argv);
int uf_cmd_sweep(int argc, char **argv);
int uf_cmd_tune(int argc, char **argv);
int uf_cmd_generate(int argc, char **argv);
int uf_cmd_score(int argc, char **argv);
int uf_cmd_judge_check(int argc, char **argv);
int uf_cmd_report(int argc, char **argv);
int uf_cmd_status(int argc, char **argv);
/* The status table of a sweep's stages (folders relative to out) and runs (cmd_status.c);
 * returns 0. */
int uf_status_print(const char *out, char **stage_dirs, int nstages, char **runs, int nruns, FILE *f);

#endif
