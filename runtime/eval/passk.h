/* passk.h: functional correctness of generated code (pass@1 on HumanEval-style problems).
 *
 * One candidate = prompt + completion + "\n\n" + test + "\n\ncheck(<entry_point>)\n", written to
 * program.py in a fresh temporary folder (mkdtemp under $TMPDIR or /tmp, removed afterwards) and
 * run by `python3 -I program.py` in a forked child. The candidate passes when the process exits
 * with status 0 before the wall-time limit.
 *
 * Sandbox (a guard against accidents of generated code, NOT a security boundary against
 * hostile code; run untrusted models' code in a container/VM as well):
 *   - own process group (setpgid); on timeout the whole group gets SIGKILL, and after any exit the
 *     group is killed again so stray children die too (a child that calls setsid() escapes this);
 *   - setrlimit: RLIMIT_CPU (the wall limit in whole seconds + 2), RLIMIT_AS (mem_mb), RLIMIT_FSIZE
 *     (fsize_mb), RLIMIT_NPROC (nproc; note the kernel counts all processes of the real user and
 *     does not enforce it for root), RLIMIT_CORE 0;
 *   - no network: the child calls unshare(CLONE_NEWNET) (works as root / with CAP_SYS_ADMIN), else
 *     unshare(CLONE_NEWUSER | CLONE_NEWNET) (works where unprivileged user namespaces are
 *     enabled); the new namespace has only a downed loopback, so nothing is reachable. When both
 *     are refused the candidate runs with network access, but with an environment without any
 *     proxy variables; uf_passk_outcome.net_isolated says which happened;
 *   - clean environment: only PATH=/usr/bin:/bin, HOME=<temp folder>, LANG=C.UTF-8, TMPDIR=<temp
 *     folder>; python's -I (isolated mode) ignores PYTHON* variables and the user site folder;
 *   - stdin is /dev/null; stdout/stderr go to files in the temp folder (the tail of stderr is kept
 *     for the report).
 * The interpreter: opts.python, else $UF_PYTHON, else /usr/bin/python3 when executable, else
 * python3 found on $PATH (resolved to an absolute path before the environment is cleared).
 * uf_passk_run may be called from several threads at once (candidates in parallel).
 * Not here: sampling completions (the eval module), pass@k for k > 1 (use the unbiased estimator
 * 1 - C(n-c, k)/C(n, k) over n samples: uf_passk_estimate). */
#ifndef UF_EVAL_PASSK_H
#define UF_EVAL_PASSK_H

#include <stddef.h>

enum uf_passk_result {
    UF_PASSK_PASS = 0,
    UF_PASSK_FAIL = 1,    /* non-zero exit, exception, killed by a signal other than the limits */
    UF_PASSK_TIMEOUT = 2, /* wall-time limit reached (or RLIMIT_CPU) */
};
const char *uf_passk_result_name(enum uf_passk_result r); /* "pass", "fail", "timeout" */

struct uf_passk_opts {
    const char *python; /* NULL: see the file comment */
    double timeout_s;   /* wall-time limit (default 10) */
    long mem_mb;        /* RLIMIT_AS in MiB (default 2048) */
    long fsize_mb;      /* RLIMIT_FSIZE in MiB (default 16) */
    long nproc;         /* RLIMIT_NPROC (default 64) */
    int isolate_net;    /* try the network namespace (default 1) */
};
void uf_passk_opts_default(struct uf_passk_opts *o);

struct uf_passk_outcome {
    enum uf_passk_result result;
    int exit_code;      /* exit status, or -signal when killed */
    double wall_s;      /* seconds from fork to reaping */
    int net_isolated;   /* 1 when the child ran in its own network namespace */
    char stderr_tail[1024]; /* last bytes of the candidate's stderr (NUL-terminated) */
};

/* The interpreter that would be used (static storage), or NULL when none is found. */
const char *uf_passk_python(const struct uf_passk_opts *o);

/* Runs one candidate. 0 with *out filled (pass, fail or timeout), or uf_fail when the harness
 * itself could not run it (no python, temp folder not writable, fork failed). */
int uf_passk_run(const struct uf_passk_opts *o, const char *prompt, const char *completion,
                 const char *test, const char *entry_point, struct uf_passk_outcome *out);

/* Unbiased pass@k estimate from n samples of which c passed: 1 - C(n-c, k) / C(n, k). */
double uf_passk_estimate(int n, int c, int k);

#endif
