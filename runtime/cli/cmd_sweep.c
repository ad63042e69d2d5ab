/* cmd_sweep.c: `unforget sweep RECIPE.lua [options]`: every run the recipe declares, skipping
 * runs whose results.json exists, either
 *   - here: N processes at a time (`unforget run RECIPE --only NAME`), optionally spread over
 *     devices (--devices gpu:0,gpu:1 | all: one process per device at a time, round-robin), or
 *   - on Slurm (--slurm FILE): an sbatch script whose first job builds the shared stages and whose
 *     array (one task per unfinished run) starts after it (--dependency=afterok); --submit submits.
 * Both write OUT/sweep.json (recipe, runs, stage folders, Slurm jobs) for `unforget status OUT`. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/device.h"
#include "core/util.h"
#include "pipeline.h"
#include "recipe.h"
#include "rundir.h"

/* ---- a growable string ---------------------------------------------------------------------- */
struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) UF_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k >= 0 && b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)(k > 0 ? k : 0) + 256) * 2;
        b->s = uf_realloc(b->s, b->cap);
    }
}

/* appends s as one single-quoted shell word */
static void sb_quote(struct sbuf *b, const char *s) {
    sb_printf(b, "'");
    for (; *s; s++) {
        if (*s == '\'') sb_printf(b, "'\\''");
        else sb_printf(b, "%c", *s);
    }
    sb_printf(b, "'");
}

/* ---- options -------------------------------------------------------------------------------- */
struct slurm_opts {
    const char *partition, *account, *time, *mem, *gres;
    int cpus, gpus, limit;
    const char **extra; /* extra #SBATCH options: the recipe's, then the command line's */
    int nextra;
};

/* one line of text that goes into the script: no newline, no NUL */
static int check_line(const char *what, const char *v) {
    if (v && strpbrk(v, "\n\r")) {
        fprintf(stderr, "unforget sweep: %s must be one line\n", what);
        return -1;
    }
    return 0;
}

static char *abs_path(const char *p) {
    char buf[PATH_MAX];
    if (realpath(p, buf)) return uf_strdup(buf);
    uf_fail("%s: %s", p, strerror(errno));
    return NULL;
}

/* absolute path of a file that may not exist yet (its folder must) */
static char *abs_file(const char *p) {
    const char *slash = strrchr(p, '/');
    char *dir = slash ? uf_strndup(p, (size_t)(slash - p) + (slash == p)) : uf_strdup(".");
    char *ad = abs_path(dir);
    free(dir);
    if (!ad) return NULL;
    char *r = uf_sprintf("%s/%s", strcmp(ad, "/") == 0 ? "" : ad, slash ? slash + 1 : p);
    free(ad);
    return r;
}

static const char *stem(const char *path) {
    static char buf[128];
    const char *b = strrchr(path, '/');
    snprintf(buf, sizeof buf, "%s", b ? b + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    for (char *c = buf; *c; c++)
        if (!(*c == '-' || *c == '_' || *c == '.' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z')))
            *c = '_';
    return buf;
}

/* ---- the manifest OUT/sweep.json ------------------------------------------------------------ */
static int write_manifest(const char *out, const char *recipe, const char *cwd, char **sets, int nsets,
                          char **runs, int nruns, char **stage_dirs, int nstages, const char *script,
                          char **submitted, int nsub) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "recipe", recipe);
    cJSON_AddStringToObject(m, "cwd", cwd);
    cJSON_AddItemToObject(m, "sets", cJSON_CreateStringArray((const char *const *)sets, nsets));
    cJSON_AddItemToObject(m, "runs", cJSON_CreateStringArray((const char *const *)runs, nruns));
    cJSON_AddItemToObject(m, "stages", cJSON_CreateStringArray((const char *const *)stage_dirs, nstages));
    if (script) {
        cJSON *s = cJSON_AddObjectToObject(m, "slurm");
        cJSON_AddStringToObject(s, "script", script);
        cJSON_AddItemToObject(s, "submitted", cJSON_CreateStringArray((const char *const *)submitted, nsub));
    }
    char *text = cJSON_Print(m);
    char *path = uf_sprintf("%s/sweep.json", out);
    int rc = uf_file_write_atomic(path, text, strlen(text));
    free(path);
    free(text);
    cJSON_Delete(m);
    return rc;
}

/* ---- the Slurm script ----------------------------------------------------------------------- */
static char *slurm_script(const struct slurm_opts *o, const char *self, const char *recipe, const char *out,
                          const char *cwd, const char *file, char **todo, int ntodo, int nruns,
                          int stages_to_build, int nstages, char **sets, int nsets) {
    struct sbuf b = {0};
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *name = stem(recipe);
    sb_printf(&b,
              "#!/bin/bash\n"
              "# Generated by `unforget sweep --slurm` at %s in %s.\n"
              "# %s: %d of %d run(s) to do, %d of %d stage(s) to build (when generated).\n"
              "#   sbatch %s\n"
              "#       a first job builds the shared stages and queues the array of runs behind itself\n"
              "#       (--dependency=afterok); needs sbatch on the compute nodes, as most clusters have\n"
              "#   bash %s submit\n"
              "#       the same two submissions from this machine; prints the job ids (sweep --submit)\n"
              "#   unforget status %s\n"
              "#       which runs are done, running, failed, stopped or pending\n"
              "# After a cancellation, a time-out or a failure, generate the script again: its array holds\n"
              "# only the unfinished runs, and each resumes from its newest checkpoint.\n",
              ts, cwd, recipe, ntodo, nruns, stages_to_build, nstages, file, file, out);
    sb_printf(&b, "#SBATCH --job-name=uf-%s\n#SBATCH --output=%s/slurm/stages-%%j.log\n", name, out);
    if (o->partition) sb_printf(&b, "#SBATCH --partition=%s\n", o->partition);
    if (o->account) sb_printf(&b, "#SBATCH --account=%s\n", o->account);
    if (o->time) sb_printf(&b, "#SBATCH --time=%s\n", o->time);
    if (o->mem) sb_printf(&b, "#SBATCH --mem=%s\n", o->mem);
    if (o->cpus > 0) sb_printf(&b, "#SBATCH --cpus-per-task=%d\n", o->cpus);
    if (o->gpus > 0) sb_printf(&b, "#SBATCH --gpus-per-task=%d\n", o->gpus);
    if (o->gres) sb_printf(&b, "#SBATCH --gres=%s\n", o->gres);
    for (int i = 0; i < o->nextra; i++) {
        const char *e = o->extra[i];
        if (strncmp(e, "#SBATCH", 7) == 0) e += 7;
        while (*e == ' ' || *e == '\t') e++;
        sb_printf(&b, "#SBATCH %s\n", e);
    }
    sb_printf(&b, "set -euo pipefail\nunforget=");
    sb_quote(&b, self);
    sb_printf(&b, "\nrecipe=");
    sb_quote(&b, recipe);
    sb_printf(&b, "\nout=");
    sb_quote(&b, out);
    sb_printf(&b, "\nself=");
    sb_quote(&b, file);
    sb_printf(&b, "\nopts=(");
    if (uf_cli.device) {
        sb_printf(&b, "--device ");
        sb_quote(&b, uf_cli.device);
    }
    sb_printf(&b, ")\nsets=(");
    for (int i = 0; i < nsets; i++) {
        sb_printf(&b, "%s--set ", i ? " " : "");
        sb_quote(&b, sets[i]);
    }
    sb_printf(&b, ")\nruns=(");
    for (int i = 0; i < ntodo; i++) {
        sb_printf(&b, "%s", i ? " " : "");
        sb_quote(&b, todo[i]);
    }
    sb_printf(&b, ")\nneed_stages=%d\n", stages_to_build > 0);
    if (o->limit > 0) sb_printf(&b, "array=0-%d%%%d\n", ntodo - 1, o->limit);
    else sb_printf(&b, "array=0-%d\n", ntodo - 1);
    sb_printf(&b, "cd ");
    sb_quote(&b, cwd);
    sb_printf(&b,
              "   # where the sweep was generated: the recipe's relative paths mean the same\n"
              "if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ] && [ -z \"${POCL_MAX_PTHREAD_COUNT:-}\" ]; then\n"
              "  export POCL_MAX_PTHREAD_COUNT=$SLURM_CPUS_PER_TASK   # PoCL: one thread per allocated CPU\n"
              "fi\n"
              "submit_array() { # $1: a dependency option or nothing\n"
              "  local id\n"
              "  id=$(sbatch --parsable ${1:-} --kill-on-invalid-dep=yes --job-name=uf-%s-runs --array=\"$array\" \\\n"
              "         --output=\"$out/slurm/runs-%%A_%%a.log\" \"$self\" task)\n"
              "  echo \"${id%%%%;*}\"\n"
              "}\n"
              "case \"${1:-first}\" in\n"
              "  first) # sbatch FILE\n"
              "    if [ -z \"${SLURM_JOB_ID:-}\" ]; then\n"
              "      echo \"submit with: sbatch $self   (or: bash $self submit)\" >&2; exit 2\n"
              "    fi\n"
              "    if [ ${#runs[@]} -gt 0 ]; then\n"
              "      echo \"array job $(submit_array --dependency=afterok:$SLURM_JOB_ID) (${#runs[@]} tasks) after job $SLURM_JOB_ID\"\n"
              "    fi\n"
              "    exec \"$unforget\" \"${opts[@]}\" run \"$recipe\" --out \"$out\" --stages-only \"${sets[@]}\" ;;\n"
              "  submit) # from a login node\n"
              "    command -v sbatch >/dev/null || { echo \"sbatch not found: submit from a Slurm login node\" >&2; exit 1; }\n"
              "    if [ ${#runs[@]} -eq 0 ]; then echo \"nothing to submit: every run is done\"; exit 0; fi\n"
              "    dep=\n"
              "    if [ \"$need_stages\" = 1 ]; then\n"
              "      sid=$(sbatch --parsable \"$self\" stages); sid=${sid%%%%;*}\n"
              "      echo \"stages job $sid\"\n"
              "      dep=--dependency=afterok:$sid\n"
              "    fi\n"
              "    echo \"array job $(submit_array $dep) (${#runs[@]} tasks)\" ;;\n"
              "  stages)\n"
              "    exec \"$unforget\" \"${opts[@]}\" run \"$recipe\" --out \"$out\" --stages-only \"${sets[@]}\" ;;\n"
              "  task)\n"
              "    exec \"$unforget\" \"${opts[@]}\" run \"$recipe\" --out \"$out\" \\\n"
              "         --only \"${runs[$SLURM_ARRAY_TASK_ID]}\" \"${sets[@]}\" ;;\n"
              "  *) echo \"usage: sbatch $self | bash $self submit\" >&2; exit 2 ;;\n"
              "esac\n",
              name);
    return b.s;
}

/* ---- local multi-device sweep --------------------------------------------------------------- */
/* --devices LIST | all -> selectors (malloc'd); exits 2 on one that matches nothing */
static int parse_devices(const char *spec, char ***out) {
    char **sel = NULL;
    int n = 0;
    if (strcmp(spec, "all") == 0) {
        int gpus = 0;
        int def = uf_device_find(NULL, &gpus);
        if (def < 0) {
            fprintf(stderr, "unforget sweep: no OpenCL device found\n");
            return -1;
        }
        int k = gpus > 0 ? gpus : 1;
        sel = uf_calloc((size_t)k, sizeof *sel);
        for (int i = 0; i < gpus; i++) sel[n++] = uf_sprintf("gpu:%d", i);
        if (gpus == 0) sel[n++] = uf_sprintf("%d", def); /* no GPU: the default device */
    } else {
        char *copy = uf_strdup(spec), *save = NULL;
        sel = uf_calloc(strlen(spec) + 1, sizeof *sel);
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (uf_device_find(t, NULL) < 0) {
                fprintf(stderr, "unforget sweep: --devices: '%s' matches no device; the devices:\n", t);
                uf_device_list(stderr);
                for (int i = 0; i < n; i++) free(sel[i]);
                free(sel);
                free(copy);
                return -1;
            }
            sel[n++] = uf_strdup(t);
        }
        free(copy);
    }
    *out = sel;
    return n;
}

static int run_local(const char *self, const char *recipe, const char *out, char **todo, int n, int skipped,
                     int jobs, char **devs, int ndevs, char **sets, int nsets, int dry) {
    /* one slot per device entry (a device listed twice gets two slots); without --devices every
     * slot uses --device / UNFORGET_DEVICE */
    int slots = devs ? UF_MIN(jobs, ndevs) : jobs;
    if (devs) printf("sweep: %d run(s) to do, %d already done, %d device(s), one process each%s\n", n, skipped,
                     slots, jobs > ndevs ? " (--jobs capped at the number of devices)" : "");
    else printf("sweep: %d run(s) to do, %d already done, %d job(s) at a time\n", n, skipped, jobs);
    if (dry) { /* the assignment when every run takes the same time: round-robin over the slots */
        for (int i = 0; i < n; i++)
            printf("sweep: would start %s on %s\n", todo[i], devs ? devs[i % slots] : uf_cli.device ? uf_cli.device : "the default device");
        return 0;
    }
    fflush(stdout);
    pid_t *pids = uf_calloc((size_t)slots, sizeof *pids);
    int *slot_run = uf_calloc((size_t)slots, sizeof *slot_run);
    int next = 0, running = 0, failed = 0;
    while (next < n || running > 0) {
        while (running < slots && next < n) {
            int slot = 0;
            while (pids[slot]) slot++;
            const char *dev = devs ? devs[slot] : uf_cli.device;
            char **args = uf_calloc((size_t)(12 + 2 * nsets), sizeof *args);
            int a = 0;
            args[a++] = (char *)self;
            if (dev) args[a++] = "--device", args[a++] = (char *)dev;
            args[a++] = "-q";
            args[a++] = "run", args[a++] = (char *)recipe, args[a++] = "--out", args[a++] = (char *)out;
            args[a++] = "--only", args[a++] = todo[next];
            for (int i = 0; i < nsets; i++) args[a++] = "--set", args[a++] = sets[i];
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                execv(self, args);
                fprintf(stderr, "unforget sweep: cannot run %s: %s\n", self, strerror(errno));
                _exit(127);
            }
            free(args);
            if (pid < 0) {
                fprintf(stderr, "unforget sweep: fork: %s\n", strerror(errno));
                failed++;
                next++;
                continue;
            }
            pids[slot] = pid;
            slot_run[slot] = next;
            if (devs) printf("sweep: started %s on %s (%d/%d)\n", todo[next], dev, next + 1, n);
            else printf("sweep: started %s (%d/%d)\n", todo[next], next + 1, n);
            fflush(stdout);
            next++;
            running++;
        }
        int status;
        pid_t done = wait(&status);
        if (done < 0) break;
        for (int s = 0; s < slots; s++) {
            if (pids[s] != done) continue;
            int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            failed += !ok;
            printf("sweep: %s %s\n", todo[slot_run[s]], ok ? "finished" : "FAILED (see its log.txt)");
            fflush(stdout);
            pids[s] = 0;
            running--;
        }
    }
    printf("sweep: %d finished, %d failed, %d skipped\n", n - failed, failed, skipped);
    free(pids);
    free(slot_run);
    return failed ? 1 : 0;
}

static void usage(void) {
    printf("usage: unforget [--device SEL] sweep RECIPE.lua [--out DIR] [--set key=value ...]\n"
           "         [--jobs N] [--devices SEL,SEL,...|all] [--dry-run]\n"
           "         [--slurm FILE [--submit] [--partition P] [--account A] [--time T] [--mem M]\n"
           "          [--cpus-per-task N] [--gpus-per-task N] [--gres SPEC] [--array-limit N]\n"
           "          [--sbatch OPTION ...]]\n"
           "         [--status]\n\n"
           "Runs every run the recipe declares (`unforget run RECIPE --only NAME` each), skipping\n"
           "runs whose OUT/NAME/results.json exists; a restart resumes unfinished runs.\n"
           "  --jobs N          N processes at a time (default 1) on --device / UNFORGET_DEVICE\n"
           "  --devices LIST    spread the runs over these devices (cpu, gpu:N, N, a name), one\n"
           "                    process per device at a time, round-robin; `all`: every GPU (else\n"
           "                    the default device); --jobs N caps the number used\n"
           "  --dry-run         print which run would start on which device, run nothing\n"
           "  --status          print what `unforget status OUT` prints for this recipe's runs\n"
           "  --slurm FILE      write an sbatch script instead of running: a first job builds the\n"
           "                    shared stages, an array (one task per unfinished run) starts after\n"
           "                    it (--dependency=afterok). Absolute paths; jobs run in this folder;\n"
           "                    logs in OUT/slurm/ (created now); --device goes into the script.\n"
           "  --submit          also submit it (bash FILE submit) and print the job ids\n"
           "  --partition, --account, --time, --mem, --cpus-per-task, --gpus-per-task, --gres:\n"
           "                    the #SBATCH options of the same names (none unless given; the\n"
           "                    recipe's uf.slurm { ... } gives defaults)\n"
           "  --array-limit N   at most N array tasks at once (--array=0-K%%N)\n"
           "  --sbatch OPTION   an extra #SBATCH line, e.g. --sbatch --qos=high (repeatable)\n");
}

int uf_cmd_sweep(int argc, char **argv) {
    const char *recipe = NULL, *out = "runs", *slurm = NULL, *devices = NULL;
    int jobs = 1, jobs_given = 0, nsets = 0, submit = 0, dry = 0, status = 0, rc = 0;
    struct slurm_opts cli = {0};
    cli.cpus = cli.gpus = cli.limit = -1;
    char **sets = uf_calloc((size_t)argc, sizeof *sets);
    const char **extra = uf_calloc((size_t)argc + 64, sizeof *extra);
    int ncli_extra = 0;
    const char **cli_extra = uf_calloc((size_t)argc, sizeof *cli_extra);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            goto done;
        } else if (strcmp(a, "--jobs") == 0 && has) {
            jobs = atoi(argv[++i]);
            jobs_given = 1;
        } else if (strcmp(a, "--out") == 0 && has) {
            out = argv[++i];
        } else if (strcmp(a, "--slurm") == 0 && has) {
            slurm = argv[++i];
        } else if (strcmp(a, "--set") == 0 && has) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(a, "--devices") == 0 && has) {
            devices = argv[++i];
        } else if (strcmp(a, "--submit") == 0) {
            submit = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            dry = 1;
        } else if (strcmp(a, "--status") == 0) {
            status = 1;
        } else if (strcmp(a, "--partition") == 0 && has) {
            cli.partition = argv[++i];
        } else if (strcmp(a, "--account") == 0 && has) {
            cli.account = argv[++i];
        } else if (strcmp(a, "--time") == 0 && has) {
            cli.time = argv[++i];
        } else if (strcmp(a, "--mem") == 0 && has) {
            cli.mem = argv[++i];
        } else if (strcmp(a, "--gres") == 0 && has) {
            cli.gres = argv[++i];
        } else if (strcmp(a, "--cpus-per-task") == 0 && has) {
            cli.cpus = atoi(argv[++i]);
        } else if (strcmp(a, "--gpus-per-task") == 0 && has) {
            cli.gpus = atoi(argv[++i]);
        } else if (strcmp(a, "--array-limit") == 0 && has) {
            cli.limit = atoi(argv[++i]);
        } else if (strcmp(a, "--sbatch") == 0 && has) {
            cli_extra[ncli_extra++] = argv[++i];
        } else if (a[0] != '-' && !recipe) {
            recipe = a;
        } else {
            fprintf(stderr, "unforget sweep: unexpected argument '%s' (see --help)\n", a);
            rc = 2;
            goto done;
        }
    }
    if (!recipe || jobs < 1) {
        fprintf(stderr, "unforget sweep: usage: unforget sweep RECIPE.lua [--jobs N >= 1] (see --help)\n");
        rc = 2;
        goto done;
    }
    if (dry && (slurm || status)) {
        fprintf(stderr, "unforget sweep: --dry-run is for local sweeps (it prints the device of each run)\n");
        rc = 2;
        goto done;
    }
    if (submit && !slurm) {
        fprintf(stderr, "unforget sweep: --submit needs --slurm FILE\n");
        rc = 2;
        goto done;
    }
    if (devices && (slurm || uf_cli.device)) {
        fprintf(stderr, "unforget sweep: --devices is for local sweeps, without --device or --slurm\n");
        rc = 2;
        goto done;
    }
    const char *lines[] = {cli.partition, cli.account, cli.time, cli.mem, cli.gres};
    for (size_t i = 0; i < UF_ARRAY_LEN(lines); i++)
        if (check_line("a Slurm option", lines[i])) { rc = 2; goto done; }
    for (int i = 0; i < ncli_extra; i++)
        if (check_line("--sbatch", cli_extra[i])) { rc = 2; goto done; }
    for (int i = 0; i < nsets; i++)
        if (check_line("--set", sets[i])) { rc = 2; goto done; }

    struct uf_plan plan_s, *plan = &plan_s;
    if (uf_recipe_plan(recipe, nsets, sets, plan)) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        rc = 1;
        goto done;
    }
    int nruns = plan->n_runs, nstages = plan->n_stages;
    int n = 0, skipped = 0, stages_to_build = 0;
    char **all = uf_calloc((size_t)nruns + 1, sizeof *all), **todo = uf_calloc((size_t)nruns + 1, sizeof *todo);
    char **stage_rel = uf_calloc((size_t)nstages + 1, sizeof *stage_rel);
    int na = 0, ns = 0;
    for (int i = 0; i < nruns; i++) {
        char *name = (char *)plan->runs[i].name;
        all[na++] = name;
        if (uf_rundir_done(out, name)) skipped++;
        else todo[n++] = name;
    }
    for (int i = 0; i < nstages; i++) {
        char *d = uf_pipeline_node_dir(plan, out, &plan->stages[i]);
        char *res = uf_sprintf("%s/results.json", d), *model = uf_sprintf("%s/model", d);
        stages_to_build += !(uf_file_exists(res) && uf_file_exists(model));
        stage_rel[ns++] = uf_strdup(d + strlen(out) + 1); /* stages/NAME-HASH */
        free(res);
        free(model);
        free(d);
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) snprintf(self, sizeof self, "unforget");
    else self[sl] = 0;
    char *abs_recipe = NULL, *abs_out = NULL, *abs_script = NULL, **devs = NULL;
    int ndevs = 0;
    if (status) {
        rc = uf_status_print(out, stage_rel, ns, all, na, stdout);
        goto free_plan;
    }
    abs_recipe = abs_path(recipe);
    if (!abs_recipe || (!dry && uf_mkdir_p(out)) || (!dry && !(abs_out = abs_path(out)))) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        rc = 1;
        goto free_plan;
    }
    if (slurm) {
        /* the recipe's uf.slurm { ... } first, the command line over it */
        static const struct uf_plan_slurm none;
        const struct uf_plan_slurm *rs = plan->slurm ? plan->slurm : &none;
        struct slurm_opts o = {rs->partition, rs->account, rs->time, rs->mem, rs->gres, rs->cpus_per_task,
                               rs->gpus_per_task, rs->array_limit, extra, 0};
        for (int i = 0; i < rs->n_sbatch && o.nextra < 64; i++) extra[o.nextra++] = rs->sbatch[i];
        for (int i = 0; i < ncli_extra; i++) extra[o.nextra++] = cli_extra[i];
        if (cli.partition) o.partition = cli.partition;
        if (cli.account) o.account = cli.account;
        if (cli.time) o.time = cli.time;
        if (cli.mem) o.mem = cli.mem;
        if (cli.gres) o.gres = cli.gres;
        if (cli.cpus >= 0) o.cpus = cli.cpus;
        if (cli.gpus >= 0) o.gpus = cli.gpus;
        if (cli.limit >= 0) o.limit = cli.limit;
        char *logs = uf_sprintf("%s/slurm", abs_out);
        int mk = uf_mkdir_p(logs);
        free(logs);
        abs_script = mk ? NULL : abs_file(slurm);
        if (!abs_script) {
            fprintf(stderr, "unforget: error: %s\n", uf_error());
            rc = 1;
            goto free_plan;
        }
        char *text = slurm_script(&o, self, abs_recipe, abs_out, cwd, abs_script, todo, n, nruns, stages_to_build,
                                  nstages, sets, nsets);
        int w = uf_file_write_atomic(abs_script, text, strlen(text));
        free(text);
        if (w == 0 && chmod(abs_script, 0755) != 0) w = uf_fail("chmod %s: %s", abs_script, strerror(errno));
        if (w) {
            fprintf(stderr, "unforget: error: %s\n", uf_error());
            rc = 1;
            goto free_plan;
        }
        char res[256] = "";
        size_t l = 0;
        if (o.cpus > 0) l += (size_t)snprintf(res + l, sizeof res - l, ", %d cpu(s)", o.cpus);
        if (o.gpus > 0) l += (size_t)snprintf(res + l, sizeof res - l, ", %d gpu(s)", o.gpus);
        if (o.gres) l += (size_t)snprintf(res + l, sizeof res - l, ", gres %s", o.gres);
        if (o.mem) l += (size_t)snprintf(res + l, sizeof res - l, ", mem %s", o.mem);
        if (o.time) l += (size_t)snprintf(res + l, sizeof res - l, ", time %s", o.time);
        if (o.partition) l += (size_t)snprintf(res + l, sizeof res - l, ", partition %s", o.partition);
        if (n == 0)
            printf("slurm: wrote %s: nothing to submit, all %d run(s) are done\n", abs_script, nruns);
        else
            printf("slurm: wrote %s: %s + an array of %d task(s) (%d of %d runs done)%s, device %s; "
                   "submit with: sbatch %s\n",
                   abs_script, stages_to_build ? "a stages job" : "no stages job (stages built)", n, skipped, nruns,
                   res, uf_cli.device ? uf_cli.device : "default", abs_script);
        char *submitted[4] = {0};
        int nsub = 0;
        if (submit && n > 0) {
            fflush(stdout);
            struct sbuf cmd = {0};
            sb_printf(&cmd, "bash ");
            sb_quote(&cmd, abs_script);
            sb_printf(&cmd, " submit");
            FILE *pf = popen(cmd.s, "r");
            free(cmd.s);
            char line[512];
            while (pf && fgets(line, sizeof line, pf)) {
                line[strcspn(line, "\n")] = 0;
                printf("slurm: %s\n", line);
                if (nsub < 4) submitted[nsub++] = uf_strdup(line);
            }
            int st = pf ? pclose(pf) : -1;
            if (st != 0) {
                fprintf(stderr, "unforget sweep: submitting failed (bash %s submit exited %d)\n", abs_script,
                        WIFEXITED(st) ? WEXITSTATUS(st) : st);
                rc = 1;
            }
        }
        if (write_manifest(abs_out, abs_recipe, cwd, sets, nsets, all, na, stage_rel, ns, abs_script, submitted,
                           nsub)) {
            fprintf(stderr, "unforget: error: %s\n", uf_error());
            rc = 1;
        }
        for (int i = 0; i < nsub; i++) free(submitted[i]);
        goto free_plan;
    }
    if (devices) {
        ndevs = parse_devices(devices, &devs);
        if (ndevs <= 0) {
            rc = 2;
            goto free_plan;
        }
        if (!jobs_given) jobs = ndevs;
    }
    if (!dry && write_manifest(abs_out, abs_recipe, cwd, sets, nsets, all, na, stage_rel, ns, NULL, NULL, 0)) {
        fprintf(stderr, "unforget: error: %s\n", uf_error());
        rc = 1;
        goto free_plan;
    }
    rc = run_local(self, recipe, out, todo, n, skipped, jobs, devs, ndevs, sets, nsets, dry);
free_plan:
    for (int i = 0; i < ndevs; i++) free(devs[i]);
    free(devs);
    for (int i = 0; i < ns; i++) free(stage_rel[i]);
    free(stage_rel);
    free(abs_recipe);
    free(abs_out);
    free(abs_script);
    free(all);
    free(todo);
    uf_plan_free(plan);
done:
    free(sets);
    free(extra);
    free(cli_extra);
    return rc;
}
