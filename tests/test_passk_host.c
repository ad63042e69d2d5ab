/* test_passk_host.c: code execution for pass@1. A correct completion passes, a wrong one, a syntax
 * error and a memory hog fail, an infinite loop is killed at its limit within a bound together
 * with a grandchild it started, the environment is clean, the network namespace (when granted)
 * has only loopback, and the shared HumanEval canonical solutions pass while stubs fail.
 * Skips when no python3 is found. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "eval/passk.h"
#include "uf_test.h"
#include "core/util.h"

static const char *PROMPT = "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n";
static const char *TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n";

#define NEED_PYTHON()                                                                         \
    do {                                                                                      \
        if (!uf_passk_python(NULL)) UF_SKIP("no python3 found");                              \
    } while (0)

static enum uf_passk_result run1(const struct uf_passk_opts *o, const char *completion, struct uf_passk_outcome *out) {
    int rc = uf_passk_run(o, PROMPT, completion, TEST, "add", out);
    CHECK_MSG(rc == 0, "%s", uf_error());
    return out->result;
}

static void test_pass_fail(void) {
    NEED_PYTHON();
    struct uf_passk_opts o;
    uf_passk_opts_default(&o);
    struct uf_passk_outcome out;
    CHECK_EQ_INT(run1(&o, "    return a + b\n", &out), UF_PASSK_PASS);
    CHECK_EQ_INT(out.exit_code, 0);
    CHECK_EQ_INT(run1(&o, "    return a - b\n", &out), UF_PASSK_FAIL);
    CHECK(strstr(out.stderr_tail, "AssertionError") != NULL);
    CHECK_EQ_INT(run1(&o, "    return a +\n", &out), UF_PASSK_FAIL);
    CHECK(strstr(out.stderr_tail, "SyntaxError") != NULL);
    CHECK_EQ_INT(run1(&o, "    raise SystemExit(3)\n", &out), UF_PASSK_FAIL);
    CHECK_EQ_INT(out.exit_code, 3);
    /* memory beyond RLIMIT_AS fails fast instead of swapping the machine */
    o.mem_mb = 512;
    CHECK_EQ_INT(run1(&o, "    x = bytearray(4 << 30)\n    return a + b\n", &out), UF_PASSK_FAIL);
    CHECK(strstr(out.stderr_tail, "MemoryError") != NULL);
    /* bad input is an error, not a run */
    CHECK(uf_passk_run(&o, PROMPT, "", TEST, "add; import os", &out) != 0);
    CHECK(strstr(uf_error(), "entry_point") != NULL);
    o.python = "/nonexistent/python3";
    CHECK(uf_passk_run(&o, PROMPT, "", TEST, "add", &out) != 0);
}

static int pid_alive(long pid) {
    if (kill((pid_t)pid, 0) != 0) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X')); /* a zombie is dead */
}

static void test_timeout_kills_group(void) {
    NEED_PYTHON();
    struct uf_passk_opts o;
    uf_passk_opts_default(&o);
    o.timeout_s = 1.0;
    o.nproc = 0; /* the candidate starts a child; do not depend on the user's process count */
    char pidfile[] = "/tmp/uf-passk-pid-XXXXXX";
    int fd = mkstemp(pidfile);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    char *completion = uf_sprintf("    import subprocess\n"
                                  "    p = subprocess.Popen(['sleep', '60'])\n"
                                  "    open('%s', 'w').write(str(p.pid))\n"
                                  "    while True:\n        pass\n",
                                  pidfile);
    struct uf_passk_outcome out;
    double t0 = uf_time_now();
    CHECK_EQ_INT(run1(&o, completion, &out), UF_PASSK_TIMEOUT);
    double dt = uf_time_now() - t0;
    CHECK_MSG(dt >= 1.0 && dt < 3.0, "took %.2f s for a 1 s limit", dt);
    CHECK(out.wall_s >= 1.0 && out.wall_s < 3.0);
    size_t n;
    char *s = uf_file_read(pidfile, &n);
    long gpid = s ? strtol(s, NULL, 10) : 0;
    CHECK_MSG(gpid > 0, "the candidate did not record its child's pid");
    if (gpid > 0) {
        int alive = 1;
        for (int i = 0; i < 100 && (alive = pid_alive(gpid)); i++) usleep(10000);
        CHECK_MSG(!alive, "grandchild %ld survived the timeout", gpid);
        if (alive) kill((pid_t)gpid, SIGKILL);
    }
    free(s);
    free(completion);
    remove(pidfile);
}

static void test_clean_env_and_net(void) {
    NEED_PYTHON();
    setenv("http_proxy", "http://proxy.invalid:3128", 1);
    setenv("UF_SECRET_TOKEN", "x", 1);
    struct uf_passk_opts o;
    uf_passk_opts_default(&o);
    struct uf_passk_outcome out;
    const char *env_check = "    import os\n"
                            "    assert set(os.environ) <= {'PATH', 'HOME', 'LANG', 'TMPDIR', 'LC_CTYPE'}, sorted(os.environ)\n"
                            "    assert os.getcwd() == os.environ['HOME']\n"
                            "    return a + b\n";
    CHECK_EQ_INT(run1(&o, env_check, &out), UF_PASSK_PASS);
    if (out.result != UF_PASSK_PASS) fprintf(stderr, "  stderr: %s\n", out.stderr_tail);
    unsetenv("http_proxy");
    unsetenv("UF_SECRET_TOKEN");
    const char *lo_only = "    import socket\n"
                          "    names = [n for i, n in socket.if_nameindex()]\n"
                          "    assert names == ['lo'], names\n"
                          "    return a + b\n";
    enum uf_passk_result r = run1(&o, lo_only, &out);
    if (out.net_isolated) CHECK_EQ_INT(r, UF_PASSK_PASS);
    else
        fprintf(stderr, "  note: no network namespace granted here (not root, no user namespaces): "
                        "candidates run with the network, proxies removed\n");
    o.isolate_net = 0;
    CHECK_EQ_INT(run1(&o, "    return a + b\n", &out), UF_PASSK_PASS);
    CHECK_EQ_INT(out.net_isolated, 0);
}

/* The shared HumanEval set: the first problems' canonical solutions pass, a stub body fails. */
static void test_humaneval(void) {
    NEED_PYTHON();
    const char *ds = uf_test_shared_datasets();
    if (!ds) UF_SKIP("shared datasets absent");
    char *path = uf_sprintf("%s/humaneval/HumanEval.jsonl", ds);
    size_t size;
    char *text = uf_file_exists(path) ? uf_file_read(path, &size) : NULL;
    free(path);
    if (!text) UF_SKIP("humaneval/HumanEval.jsonl absent");
    struct uf_passk_opts o;
    uf_passk_opts_default(&o);
    o.timeout_s = 20.0;
    int done = 0, passed = 0, stub_passed = 0;
    for (char *line = strtok(text, "\n"); line && done < 8; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt"), *c = cJSON_GetObjectItemCaseSensitive(j, "canonical_solution"),
                    *t = cJSON_GetObjectItemCaseSensitive(j, "test"), *e = cJSON_GetObjectItemCaseSensitive(j, "entry_point");
        if (cJSON_IsString(p) && cJSON_IsString(c) && cJSON_IsString(t) && cJSON_IsString(e)) {
            struct uf_passk_outcome out;
            CHECK(uf_passk_run(&o, p->valuestring, c->valuestring, t->valuestring, e->valuestring, &out) == 0);
            if (out.result == UF_PASSK_PASS) passed++;
            else fprintf(stderr, "  %s canonical: %s %s\n", e->valuestring, uf_passk_result_name(out.result), out.stderr_tail);
            CHECK(uf_passk_run(&o, p->valuestring, "    pass\n", t->valuestring, e->valuestring, &out) == 0);
            if (out.result == UF_PASSK_PASS) stub_passed++;
            done++;
        }
        cJSON_Delete(j);
    }
    free(text);
    CHECK_EQ_INT(done, 8);
    CHECK_EQ_INT(passed, 8);
    CHECK_EQ_INT(stub_passed, 0);
}

int main(void) {
    UF_RUN(test_pass_fail);
    UF_RUN(test_timeout_kills_group);
    UF_RUN(test_clean_env_and_net);
    UF_RUN(test_humaneval);
    return uf_test_summary();
}
