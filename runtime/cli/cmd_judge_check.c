/* cmd_judge_check.c: `unforget judge-check [--data DIR] [--select]`: how good are the judges?
 *   1. the world judge (eval/world_judge.h) on the labelled set built from the world's grammar:
 *      a 7x7 confusion matrix, precision and recall per class; the standard keyword judge on the
 *      same set as a refusal detector and (keyword ASR) as a harm detector;
 *   2. on real text in DIR (default ../shared/datasets; skipped when absent): the keyword judge's
 *      recall on the safety-tuned-llamas refusals and its false-refusal rate on alpaca answers,
 *      and the same for the extended refusal judge (judge.h), whose list was chosen on the dev
 *      half (even rows) and is measured on the held-out half (odd rows). --select reruns that
 *      choice on the dev half and prints the list it picks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/util.h"
#include "data/data.h"
#include "eval/judge.h"
#include "eval/world_judge.h"

static double ratio(long a, long b) { return b ? (double)a / (double)b : 0.0; }

static void print_binary(const char *title, long tp, long fn, long fp, long tn) {
    printf("%s\n", title);
    printf("                   judged yes  judged no\n");
    printf("    truth yes      %10ld %10ld\n", tp, fn);
    printf("    truth no       %10ld %10ld\n", fp, tn);
    printf("    precision %.3f  recall %.3f  (n = %ld)\n", ratio(tp, tp + fp), ratio(tp, tp + fn), tp + fn + fp + tn);
}

static int world_part(void) {
    int n = 0;
    struct uf_wj_case *c = uf_world_judge_cases(&n);
    long conf[UF_WJ_N_CLASSES][UF_WJ_N_CLASSES];
    memset(conf, 0, sizeof conf);
    struct uf_judge_keywords kw;
    uf_judge_keywords_init_default(&kw);
    long r_tp = 0, r_fn = 0, r_fp = 0, r_tn = 0, h_tp = 0, h_fn = 0, h_fp = 0, h_tn = 0, wrong = 0;
    for (int i = 0; i < n; i++) {
        enum uf_wj_class got = uf_world_judge(c[i].act, "positive|negative", c[i].answer);
        conf[c[i].truth][got]++;
        wrong += got != c[i].truth;
        int refused = uf_judge_refused(&kw, c[i].answer), truth_ref = c[i].truth == UF_WJ_REFUSAL;
        r_tp += refused && truth_ref, r_fn += !refused && truth_ref, r_fp += refused && !truth_ref, r_tn += !refused && !truth_ref;
        int harm = uf_wj_is_harmful(c[i].truth);
        h_tp += !refused && harm, h_fn += refused && harm, h_fp += !refused && !harm, h_tn += refused && !harm;
    }
    printf("world judge v%d on the labelled set of the world's grammar (%d cases, adversarial ones included)\n",
           UF_WORLD_JUDGE_VERSION, n);
    printf("  confusion (rows: truth, columns: judged)\n  %-18s", "");
    for (int k = 0; k < UF_WJ_N_CLASSES; k++) printf(" %8.8s", uf_wj_class_name((enum uf_wj_class)k));
    printf("\n");
    for (int t = 0; t < UF_WJ_N_CLASSES; t++) {
        printf("  %-18s", uf_wj_class_name((enum uf_wj_class)t));
        for (int k = 0; k < UF_WJ_N_CLASSES; k++) printf(" %8ld", conf[t][k]);
        printf("\n");
    }
    printf("  %-18s %9s %9s\n", "class", "precision", "recall");
    for (int k = 0; k < UF_WJ_N_CLASSES; k++) {
        long tp = conf[k][k], col = 0, row = 0;
        for (int j = 0; j < UF_WJ_N_CLASSES; j++) col += conf[j][k], row += conf[k][j];
        printf("  %-18s %9.3f %9.3f\n", uf_wj_class_name((enum uf_wj_class)k), ratio(tp, col), ratio(tp, row));
    }
    printf("  accuracy %.4f (%ld of %d wrong)\n\n", ratio(n - wrong, n), wrong, n);
    print_binary("keyword judge (29 strings) as a refusal detector on the same set", r_tp, r_fn, r_fp, r_tn);
    print_binary("keyword ASR (no refusal string = attack) as a harm detector on the same set", h_tp, h_fn, h_fp, h_tn);
    printf("\n");
    uf_judge_keywords_free(&kw);
    uf_world_judge_cases_free(c, n);
    return wrong ? 1 : 0;
}

/* Responses of an adapter's file; NULL (and a note) when missing. */
static char **load_responses(const char *adapter, const char *path, int64_t *n) {
    struct uf_dataset d;
    struct uf_data_stats st;
    uf_dataset_init(&d, adapter);
    if (!uf_file_exists(path) || uf_data_read_adapter(adapter, path, UF_ON_BAD_SKIP, &d, &st)) {
        uf_dataset_free(&d);
        *n = 0;
        return NULL;
    }
    char **r = uf_calloc((size_t)(d.n ? d.n : 1), sizeof *r);
    for (int64_t i = 0; i < d.n; i++) r[i] = uf_strdup(d.rows[i].response ? d.rows[i].response : "");
    *n = d.n;
    uf_dataset_free(&d);
    return r;
}

static void free_strs(char **s, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

typedef int (*refusal_fn)(const char *answer, const void *ctx);
static int kw_fn(const char *a, const void *ctx) { return uf_judge_refused(ctx, a); }
static int ext_fn(const char *a, const void *ctx) { (void)ctx; return uf_judge_refused_extended(a); }

/* Recall on refusals and false refusals on helpful answers of one half (half = 0 even rows, 1 odd). */
static void measure(const char *name, refusal_fn f, const void *ctx, char **ref, int64_t nr, char **help,
                    int64_t nh, int half) {
    long tp = 0, fn = 0, fp = 0, tn = 0;
    for (int64_t i = half; i < nr; i += 2) f(ref[i], ctx) ? tp++ : fn++;
    for (int64_t i = half; i < nh; i += 2) f(help[i], ctx) ? fp++ : tn++;
    char title[256];
    snprintf(title, sizeof title, "%s on the %s half: refusal recall %.3f, false-refusal rate %.3f", name,
             half ? "held-out (odd rows)" : "dev (even rows)", ratio(tp, tp + fn), ratio(fp, fp + tn));
    print_binary(title, tp, fn, fp, tn);
}

static int real_part(const char *dir, int select) {
    char *rp = uf_sprintf("%s/safety_tuned_llamas/safety_only_data_Instructions.jsonl", dir);
    char *hp = uf_sprintf("%s/alpaca/alpaca_en_demo.jsonl", dir);
    int64_t nr, nh;
    char **ref = load_responses("safety_tuned_llamas", rp, &nr), **help = load_responses("alpaca", hp, &nh);
    int rc = 0;
    if (!ref || !help) {
        printf("real data: skipped (%s or %s missing)\n", rp, hp);
    } else {
        printf("real data: %lld refusals (%s), %lld helpful answers (%s)\n\n", (long long)nr, rp, (long long)nh, hp);
        struct uf_judge_keywords kw;
        uf_judge_keywords_init_default(&kw);
        for (int half = 0; half < 2; half++) measure("keyword judge (29 strings, case-sensitive)", kw_fn, &kw, ref, nr, help, nh, half);
        for (int half = 0; half < 2; half++) measure("extended refusal judge (case-folded)", ext_fn, NULL, ref, nr, help, nh, half);
        uf_judge_keywords_free(&kw);
        if (select) {
            int n_dev_r = (int)((nr + 1) / 2), n_dev_h = (int)((nh + 1) / 2);
            const char **dr = uf_malloc((size_t)n_dev_r * sizeof *dr), **dh = uf_malloc((size_t)n_dev_h * sizeof *dh);
            for (int i = 0; i < n_dev_r; i++) dr[i] = ref[2 * i];
            for (int i = 0; i < n_dev_h; i++) dh[i] = help[2 * i];
            int picked[UF_JUDGE_EXT_MAX], np = uf_judge_extended_select(dr, n_dev_r, dh, n_dev_h, picked);
            printf("\nselection on the dev half (greedy, gain = new refusals caught - %d x new false refusals):\n",
                   UF_JUDGE_EXT_FP_COST);
            for (int i = 0; i < np; i++) printf("  \"%s\"\n", uf_judge_extended_candidates[picked[i]]);
            int same = np == uf_judge_extended_n;
            for (int i = 0; same && i < np; i++) same = strcmp(uf_judge_extended_candidates[picked[i]], uf_judge_extended[i]) == 0;
            printf("%s the built-in extended list\n", same ? "equals" : "DIFFERS FROM");
            rc = same ? 0 : 1;
            free(dr);
            free(dh);
        }
    }
    free_strs(ref, nr);
    free_strs(help, nh);
    free(rp);
    free(hp);
    return rc;
}

int uf_cmd_judge_check(int argc, char **argv) {
    const char *dir = getenv("UNFORGET_DATA") ? getenv("UNFORGET_DATA") : "../shared/datasets";
    int select = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: unforget judge-check [--data DIR] [--select]\n\n"
                   "Validates the judges. The world judge on a labelled set generated from the\n"
                   "default world's grammar (with adversarial cases): confusion matrix, precision\n"
                   "and recall per class; the 29-string keyword judge on the same set. On real text\n"
                   "in DIR (default $UNFORGET_DATA or ../shared/datasets; skipped when absent): refusal\n"
                   "recall on safety-tuned-llamas refusals and false refusals on alpaca answers, for\n"
                   "the keyword judge and the extended refusal judge, on the dev half (even rows, on\n"
                   "which the extended list was chosen) and the held-out half (odd rows).\n"
                   "--select reruns the choice of the extended list on the dev half and checks that\n"
                   "it gives the built-in list. Exit 1 when the world judge errs on its set or the\n"
                   "selection differs.\n");
            return 0;
        } else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--select") == 0) {
            select = 1;
        } else {
            fprintf(stderr, "unforget judge-check: unexpected argument '%s' (see --help)\n", argv[i]);
            return 2;
        }
    }
    int rc = world_part();
    rc |= real_part(dir, select);
    return rc;
}
