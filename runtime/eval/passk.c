/* passk.c: see passk.h. Between fork and exec the child only calls async-signal-safe functions
 * (the parent may have threads, e.g. the OpenCL runtime's). */
#define _GNU_SOURCE
#include "eval/passk.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

const char *uf_passk_result_name(enum uf_passk_result r) {
    switch (r) {
    case UF_PASSK_PASS: return "pass";
    case UF_PASSK_FAIL: return "fail";
    case UF_PASSK_TIMEOUT: return "timeout";
    }
    return "?";
}

void uf_passk_opts_default(struct uf_passk_opts *o) {
    o->python = NULL;
    o->timeout_s = 10.0;
    o->mem_mb = 2048;
    o->fsize_mb = 16;
    o->nproc = 64;
    o->isolate_net = 1;
}

static int is_exec(const char *p) { return p && p[0] && access(p, X_OK) == 0; }

const char *uf_passk_python(const struct uf_passk_opts *o) {
    static _Thread_local char found[4096];
    const char *want = o && o->python ? o->python : getenv("UF_PYTHON");
    if (want && want[0]) {
        if (strchr(want, '/')) return is_exec(want) ? want : NULL;
    } else {
        if (is_exec("/usr/bin/python3")) return "/usr/bin/python3";
        want = "python3";
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        const char *c = strchr(path, ':');
        size_t n = c ? (size_t)(c - path) : strlen(path);
        if (n > 0 && n + strlen(want) + 2 < sizeof found) {
            snprintf(found, sizeof found, "%.*s/%s", (int)n, path, want);
            if (is_exec(found)) return found;
        }
        path += n;
        if (*path == ':') path++;
    }
    return NULL;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void set_limit(int res, rlim_t v) {
    struct rlimit rl = {v, v};
    setrlimit(res, &rl);
}

static void read_tail(const char *path, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        long start = size > (long)cap - 1 ? size - ((long)cap - 1) : 0;
        if (fseek(f, start, SEEK_SET) == 0) {
            size_t n = fread(out, 1, cap - 1, f);
            out[n] = 0;
            for (size_t i = 0; i < n; i++)
                if (out[i] == 0) out[i] = ' ';
        }
    }
    fclose(f);
}

int uf_passk_run(const struct uf_passk_opts *o, const char *prompt, const char *completion,
                 const char *test, const char *entry_point, struct uf_passk_outcome *out) {
    struct uf_passk_opts def;
    if (!o) {
        uf_passk_opts_default(&def);
        o = &def;
    }
    memset(out, 0, sizeof *out);
    const char *python = uf_passk_python(o);
    if (!python)
        return uf_fail("pass@k: no python3 interpreter found (tried opts.python, $UF_PYTHON, "
                       "/usr/bin/python3, $PATH); install python3 or set UF_PYTHON");
    if (!entry_point || !entry_point[0])
        return uf_fail("pass@k: the problem has no entry_point (the function name check() tests)");
    for (const char *c = entry_point; *c; c++)
        if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return uf_fail("pass@k: entry_point \"%s\" is not a Python identifier", entry_point);
    if (!(o->timeout_s > 0)) return uf_fail("pass@k: timeout_s = %g; must be > 0", o->timeout_s);

    const char *tmp = getenv("TMPDIR");
    char *dir = uf_sprintf("%s/uf-passk-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        int rc = uf_fail("pass@k: cannot create a temporary folder %s: %s (set TMPDIR to a writable folder)",
                         dir, strerror(errno));
        free(dir);
        return rc;
    }
    char *prog = uf_sprintf("%s/program.py", dir);
    char *outp = uf_sprintf("%s/stdout.txt", dir);
    char *errp = uf_sprintf("%s/stderr.txt", dir);
    char *src = uf_sprintf("%s%s\n\n%s\n\ncheck(%s)\n", prompt ? prompt : "", completion ? completion : "",
                           test ? test : "", entry_point);
    FILE *f = fopen(prog, "wb");
    int wrote = f && fwrite(src, 1, strlen(src), f) == strlen(src);
    if (f && fclose(f) != 0) wrote = 0;
    free(src);
    int rc = 0;
    if (!wrote) {
        rc = uf_fail("pass@k: cannot write %s: %s", prog, strerror(errno));
        goto done;
    }

    /* Everything the child needs is prepared here: after fork it only makes system calls. */
    char *env_home = uf_sprintf("HOME=%s", dir), *env_tmp = uf_sprintf("TMPDIR=%s", dir);
    char *envp[] = {"PATH=/usr/bin:/bin", env_home, env_tmp, "LANG=C.UTF-8", NULL};
    char *argv[] = {(char *)python, "-I", "program.py", NULL};
    rlim_t cpu = (rlim_t)o->timeout_s + 2;
    rlim_t as = o->mem_mb > 0 ? (rlim_t)o->mem_mb << 20 : RLIM_INFINITY;
    rlim_t fsize = o->fsize_mb > 0 ? (rlim_t)o->fsize_mb << 20 : RLIM_INFINITY;
    rlim_t nproc = o->nproc > 0 ? (rlim_t)o->nproc : RLIM_INFINITY;
    int isolate = o->isolate_net;
    int pfd[2];
    if (pipe(pfd) != 0) {
        rc = uf_fail("pass@k: pipe() failed: %s", strerror(errno));
        free(env_home);
        free(env_tmp);
        goto done;
    }
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    double t0 = uf_time_now();
    pid_t pid = fork();
    if (pid < 0) {
        rc = uf_fail("pass@k: fork() failed: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        free(env_home);
        free(env_tmp);
        goto done;
    }
    if (pid == 0) {
        setpgid(0, 0);
        char st = '0';
        if (isolate && (unshare(CLONE_NEWNET) == 0 || unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0)) st = '1';
        int fin = open("/dev/null", O_RDONLY);
        int fout = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int ferr = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fin < 0 || fout < 0 || ferr < 0 || chdir(dir) != 0) {
            char e = 'E';
            if (write(pfd[1], &e, 1) < 0) _exit(126);
            _exit(126);
        }
        dup2(fin, 0);
        dup2(fout, 1);
        dup2(ferr, 2);
        dup2(pfd[1], 3);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        for (int fd = 4; fd < 1024; fd++) close(fd);
        if (write(3, &st, 1) < 0) _exit(126);
        set_limit(RLIMIT_CPU, cpu);
        set_limit(RLIMIT_AS, as);
        set_limit(RLIMIT_FSIZE, fsize);
        set_limit(RLIMIT_NPROC, nproc);
        set_limit(RLIMIT_CORE, 0);
        execve(argv[0], argv, envp);
        char e = 'X';
        if (write(3, &e, 1) < 0) _exit(127);
        _exit(127);
    }
    setpgid(pid, pid); /* also from the parent: no race with the kill below */
    close(pfd[1]);
    free(env_home);
    free(env_tmp);
    char msg[2] = {0, 0};
    ssize_t got = 0;
    while (got < 2) {
        ssize_t r = read(pfd[0], msg + got, (size_t)(2 - got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += r;
    }
    close(pfd[0]);
    out->net_isolated = got >= 1 && msg[0] == '1';

    int status = 0, timed_out = 0;
    double deadline = t0 + o->timeout_s;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) {
            rc = uf_fail("pass@k: waitpid failed: %s", strerror(errno));
            kill(-pid, SIGKILL);
            goto done;
        }
        if (uf_time_now() >= deadline) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            timed_out = 1;
            break;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL); /* stray children left in the group */
    out->wall_s = uf_time_now() - t0;
    if ((got >= 1 && msg[0] == 'E') || (got >= 2 && msg[1] == 'X')) {
        rc = uf_fail("pass@k: could not start %s in %s (exec or file setup failed)", python, dir);
        goto done;
    }
    if (WIFEXITED(status)) out->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) out->exit_code = -WTERMSIG(status);
    if (timed_out || (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)) out->result = UF_PASSK_TIMEOUT;
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) out->result = UF_PASSK_PASS;
    else out->result = UF_PASSK_FAIL;
    read_tail(errp, out->stderr_tail, sizeof out->stderr_tail);
done:
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(prog);
    free(outp);
    free(errp);
    free(dir);
    return rc;
}

double uf_passk_estimate(int n, int c, int k) {
    if (n <= 0 || k <= 0 || c < 0 || c > n) return 0.0;
    if (n - c < k) return 1.0;
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / i;
    return 1.0 - prod;
}
