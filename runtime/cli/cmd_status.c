/* cmd_status.c: `unforget status OUT`: the state of every stage and run of a sweep (local or
 * Slurm), from the files alone, so it works from any machine that sees OUT:
 *   done     results.json and model/ exist
 *   running  a process holds the folder's lock (rundir.h; fcntl locks are visible across NFS
 *            clients): its host, pid, start time and last logged step
 *   failed   the run exited with an error: the log's last line ("... error: ...")
 *   stopped  started, not running, no error logged (killed, cancelled, timed out): a rerun or a
 *            resubmission resumes it from its newest checkpoint; the log's last line
 *   pending  not started
 * The list of runs comes from OUT/sweep.json (written by `unforget sweep`), else from the run
 * folders found in OUT. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "core/util.h"
#include "rundir.h"

/* last non-empty line of a file (malloc'd) or NULL */
static char *last_line(const char *path) {
    char *text = uf_file_read(path, NULL);
    if (!text) return NULL;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r')) text[--n] = 0;
    char *nl = strrchr(text, '\n');
    char *r = n ? uf_strdup(nl ? nl + 1 : text) : NULL;
    free(text);
    return r;
}

static const char *node_state(const char *dir, char *detail, size_t n) {
    detail[0] = 0;
    char *res = uf_sprintf("%s/results.json", dir), *model = uf_sprintf("%s/model", dir);
    int done = uf_file_exists(res) && uf_file_exists(model);
    free(res);
    free(model);
    if (done) return "done";
    char holder[256] = "";
    int held = uf_lock_held(dir, holder, sizeof holder);
    char *logp = uf_sprintf("%s/log.txt", dir), *cfgp = uf_sprintf("%s/config.json", dir);
    char *mp = uf_sprintf("%s/metrics.jsonl", dir);
    char *last = last_line(logp), *metric = last_line(mp);
    int started = uf_file_exists(cfgp) || last;
    const char *state;
    if (held == 1) {
        state = "running";
        size_t l = (size_t)snprintf(detail, n, "%s", holder);
        const char *st = metric ? strstr(metric, "\"step\":") : NULL;
        if (st && l < n) {
            long step = strtol(st + 7, NULL, 10), total = 0;
            char *cfg = uf_file_read(cfgp, NULL);
            cJSON *c = cfg ? cJSON_Parse(cfg) : NULL;
            const cJSON *steps = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "optim"), "steps");
            if (cJSON_IsNumber(steps)) total = (long)steps->valuedouble;
            cJSON_Delete(c);
            free(cfg);
            if (total > 0) snprintf(detail + l, n - l, ", step %ld/%ld", step, total);
            else snprintf(detail + l, n - l, ", step %ld", step);
        }
    } else if (!started) {
        state = "pending";
    } else {
        state = last && strstr(last, " error: ") ? "failed" : "stopped";
        snprintf(detail, n, "%s", last ? last : "(no log)");
        if (held < 0) {
            size_t l = strlen(detail);
            snprintf(detail + l, n - l, " (its lock cannot be queried)");
        }
    }
    free(logp);
    free(cfgp);
    free(mp);
    free(last);
    free(metric);
    return state;
}

int uf_status_print(const char *out, char **stage_dirs, int nstages, char **runs, int nruns, FILE *f) {
    static const char *states[] = {"done", "running", "failed", "stopped", "pending"};
    int count[5] = {0};
    char **lines = uf_calloc((size_t)(nstages + nruns) + 1, sizeof *lines);
    int width = 4;
    for (int i = 0; i < nruns; i++) width = UF_MAX(width, (int)strlen(runs[i]));
    for (int i = 0; i < nstages; i++) width = UF_MAX(width, (int)strlen(stage_dirs[i]) - 7);
    for (int i = 0; i < nstages + nruns; i++) {
        int is_stage = i < nstages;
        const char *name = is_stage ? stage_dirs[i] + (strncmp(stage_dirs[i], "stages/", 7) == 0 ? 7 : 0)
                                    : runs[i - nstages];
        char *dir = uf_sprintf("%s/%s", out, is_stage ? stage_dirs[i] : name);
        char detail[1024];
        const char *st = node_state(dir, detail, sizeof detail);
        for (int k = 0; k < 5; k++) count[k] += strcmp(st, states[k]) == 0 && !is_stage;
        if (detail[0]) lines[i] = uf_sprintf("%-5s  %-*s  %-7s  %s", is_stage ? "stage" : "run", width, name, st, detail);
        else lines[i] = uf_sprintf("%-5s  %-*s  %s", is_stage ? "stage" : "run", width, name, st);
        free(dir);
    }
    fprintf(f, "%s: %d run(s): %d done, %d running, %d failed, %d stopped, %d pending\n", out, nruns, count[0],
            count[1], count[2], count[3], count[4]);
    char *mp = uf_sprintf("%s/sweep.json", out);
    char *m = uf_file_read(mp, NULL);
    cJSON *man = m ? cJSON_Parse(m) : NULL;
    const cJSON *sl = cJSON_GetObjectItem(man, "slurm"), *e;
    if (sl) {
        fprintf(f, "slurm: %s", cJSON_GetStringValue(cJSON_GetObjectItem(sl, "script")));
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(sl, "submitted"))
            if (cJSON_IsString(e)) fprintf(f, "; %s", e->valuestring);
        fprintf(f, "\n");
    }
    cJSON_Delete(man);
    free(m);
    free(mp);
    for (int i = 0; i < nstages + nruns; i++) {
        fprintf(f, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* folders under dir that hold a config.json (names relative to dir, prefixed), sorted */
static int scan(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    int n = 0, cap = 16;
    char **names = uf_calloc((size_t)cap, sizeof *names);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "stages") == 0) continue;
        char *cfg = uf_sprintf("%s/%s/config.json", dir, e->d_name);
        if (uf_file_exists(cfg)) {
            if (n == cap) names = uf_realloc(names, (size_t)(cap *= 2) * sizeof *names);
            names[n++] = uf_sprintf("%s%s", prefix, e->d_name);
        }
        free(cfg);
    }
    if (d) closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    return n;
}

int uf_cmd_status(int argc, char **argv) {
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget status OUT\n\n"
                   "The state of every stage and run of a sweep in OUT (local or Slurm; works from any\n"
                   "machine that sees OUT): done; running (a process holds its lock: host, pid, step);\n"
                   "failed (the log's last line); stopped (killed, cancelled or timed out: resumes when\n"
                   "run or submitted again; the log's last line); pending. The runs are those listed in\n"
                   "OUT/sweep.json (written by unforget sweep), else the run folders in OUT.\n"
                   "Same table: unforget sweep RECIPE.lua --out OUT --status\n");
            return 0;
        } else if (argv[i][0] != '-' && !out) {
            out = argv[i];
        } else {
            fprintf(stderr, "unforget status: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "unforget status: which folder? usage: unforget status OUT\n");
        return 2;
    }
    char *d = uf_sprintf("%s/.", out);
    int exists = uf_file_exists(d);
    free(d);
    if (!exists) {
        fprintf(stderr, "unforget status: %s is not a folder\n", out);
        return 1;
    }
    char **runs = NULL, **stages = NULL;
    int nr = 0, ns = 0;
    char *mp = uf_sprintf("%s/sweep.json", out);
    char *m = uf_file_read(mp, NULL);
    free(mp);
    cJSON *man = m ? cJSON_Parse(m) : NULL;
    free(m);
    if (man) {
        const cJSON *e, *jr = cJSON_GetObjectItem(man, "runs"), *js = cJSON_GetObjectItem(man, "stages");
        runs = uf_calloc((size_t)cJSON_GetArraySize(jr) + 1, sizeof *runs);
        stages = uf_calloc((size_t)cJSON_GetArraySize(js) + 1, sizeof *stages);
        cJSON_ArrayForEach(e, jr) if (cJSON_IsString(e)) runs[nr++] = uf_strdup(e->valuestring);
        cJSON_ArrayForEach(e, js) if (cJSON_IsString(e)) stages[ns++] = uf_strdup(e->valuestring);
        cJSON_Delete(man);
    } else {
        nr = scan(out, "", &runs);
        char *sd = uf_sprintf("%s/stages", out);
        ns = scan(sd, "stages/", &stages);
        free(sd);
    }
    int rc = uf_status_print(out, stages, ns, runs, nr, stdout);
    for (int i = 0; i < nr; i++) free(runs[i]);
    for (int i = 0; i < ns; i++) free(stages[i]);
    free(runs);
    free(stages);
    return rc;
}
