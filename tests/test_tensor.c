/* test_tensor.c: device tensors: upload/download round trips, views with offsets, fill, copy,
 * axpby against plain loops, memory accounting, and the OpenCL error path (an allocation larger
 * than the device allows exits 1 with the error named, in a child process). */
#include <sys/wait.h>
#include <unistd.h>

#include "ops/selftest.h"
#include "core/tensor.h"
#include "uf_test.h"
#include "core/util.h"

static struct uf_device dev;

static void test_roundtrip(void) {
    enum { N = 1237 };
    float x[N], y[N];
    int32_t ix[N], iy[N];
    for (int i = 0; i < N; i++) x[i] = (float)i * 0.25f - 7.0f, ix[i] = i * 31 - 5000;
    struct uf_tensor t, ti;
    uf_tensor_init(&t, &dev, "x", UF_F32, 2, (int64_t[]){N, 1});
    uf_tensor_init(&ti, &dev, "ix", UF_I32, 1, (int64_t[]){N});
    CHECK_EQ_INT(t.numel, N);
    uf_tensor_upload(&t, x);
    uf_tensor_download(&t, y);
    CHECK(memcmp(x, y, sizeof x) == 0);
    uf_tensor_upload(&ti, ix);
    uf_tensor_download(&ti, iy);
    CHECK(memcmp(ix, iy, sizeof ix) == 0);
    uf_tensor_fill(&ti, -3);
    uf_tensor_download(&ti, iy);
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= iy[i] == -3;
    CHECK(ok);
    uf_tensor_free(&t);
    uf_tensor_free(&ti);
}

static void test_views(void) {
    enum { N = 100 };
    float x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = (float)i;
    struct uf_tensor base, v, w;
    uf_tensor_init(&base, &dev, "flat", UF_F32, 1, (int64_t[]){N});
    uf_tensor_upload(&base, x);
    uf_tensor_view(&v, &base, "v", 10, 2, (int64_t[]){4, 5}); /* elements 10..29 */
    uf_tensor_view(&w, &v, "w", 5, 1, (int64_t[]){5});       /* elements 15..19 */
    float got[20];
    uf_tensor_download(&v, got);
    CHECK_NEAR(got[0], 10, 0);
    CHECK_NEAR(got[19], 29, 0);
    uf_tensor_fill(&w, -1.0f);
    uf_tensor_scale(&v, 2.0f);
    uf_tensor_download(&base, y);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        float want = i >= 15 && i < 20 ? -2.0f : (i >= 10 && i < 30 ? 2.0f * i : (float)i);
        ok &= y[i] == want;
    }
    CHECK(ok);
    uf_tensor_free(&v); /* a view: must not free the base */
    uf_tensor_download(&base, y);
    CHECK_NEAR(y[0], 0, 0);
    uf_tensor_free(&base);
}

static void test_axpby_copy(void) {
    enum { N = 777 };
    float x[N], y[N], out[N], ref[N];
    struct uf_rng r;
    uf_rng_init(&r, 1);
    for (int i = 0; i < N; i++) x[i] = (float)uf_rng_normal(&r), y[i] = (float)uf_rng_normal(&r);
    struct uf_tensor tx, ty, tz;
    uf_tensor_init(&tx, &dev, "x", UF_F32, 1, (int64_t[]){N});
    uf_tensor_init(&ty, &dev, "y", UF_F32, 1, (int64_t[]){N});
    uf_tensor_init(&tz, &dev, "z", UF_F32, 1, (int64_t[]){N});
    uf_tensor_upload(&tx, x);
    uf_tensor_upload(&ty, y);
    uf_tensor_axpby(&ty, 0.3f, &tx, -1.7f);
    uf_tensor_copy(&tz, &ty);
    uf_tensor_download(&tz, out);
    for (int i = 0; i < N; i++) ref[i] = 0.3f * x[i] + -1.7f * y[i];
    CHECK(uf_max_rel_err(out, ref, N) < 1e-6);
    uf_tensor_free(&tx), uf_tensor_free(&ty), uf_tensor_free(&tz);
}

/* uf_tensor_stream_add (bench's bandwidth probe): y += a x on views at odd offsets, n not a
 * multiple of 16 (the scalar tail) */
static void test_stream_add(void) {
    enum { N = 777, OFF = 3 };
    float x[N + OFF], y[N + OFF], out[N + OFF], ref[N];
    struct uf_rng r;
    uf_rng_init(&r, 2);
    for (int i = 0; i < N + OFF; i++) x[i] = (float)uf_rng_normal(&r), y[i] = (float)uf_rng_normal(&r);
    struct uf_tensor tx, ty, vx, vy;
    uf_tensor_init(&tx, &dev, "x", UF_F32, 1, (int64_t[]){N + OFF});
    uf_tensor_init(&ty, &dev, "y", UF_F32, 1, (int64_t[]){N + OFF});
    uf_tensor_upload(&tx, x);
    uf_tensor_upload(&ty, y);
    uf_tensor_view(&vx, &tx, "vx", 1, 1, (int64_t[]){N});
    uf_tensor_view(&vy, &ty, "vy", OFF, 1, (int64_t[]){N});
    uf_tensor_stream_add(&vy, 0.7f, &vx);
    uf_tensor_download(&ty, out);
    for (int i = 0; i < N; i++) ref[i] = y[OFF + i] + 0.7f * x[1 + i];
    CHECK(uf_max_rel_err(out + OFF, ref, N) < 1e-6);
    CHECK(memcmp(out, y, OFF * sizeof *y) == 0); /* outside the view: untouched */
    uf_tensor_free(&tx), uf_tensor_free(&ty);
}

static void test_memory_accounting(void) {
    size_t live0 = dev.bytes_live;
    struct uf_tensor a, b;
    uf_tensor_init(&a, &dev, "a", UF_F32, 1, (int64_t[]){1000});
    uf_tensor_init(&b, &dev, "b", UF_I32, 2, (int64_t[]){10, 10});
    CHECK_EQ_INT(dev.bytes_live - live0, 4000 + 400);
    CHECK(dev.bytes_peak >= dev.bytes_live);
    uf_tensor_free(&a);
    uf_tensor_free(&b);
    CHECK_EQ_INT(dev.bytes_live, live0);
}

/* Runs fn in a child process; returns its exit status and stderr (in buf). */
static int run_child(void (*fn)(void), char *buf, size_t cap) {
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        fn();
        _exit(0); /* not reached: fn must fail cleanly */
    }
    close(fds[1]);
    memset(buf, 0, cap);
    size_t n = 0;
    ssize_t got;
    while (n < cap - 1 && (got = read(fds[0], buf + n, cap - 1 - n)) > 0) n += (size_t)got;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void alloc_too_big(void) {
    struct uf_tensor t;
    int64_t too_big = (int64_t)(dev.max_alloc / 4) + 1024;
    uf_tensor_init(&t, &dev, "huge", UF_F32, 1, &too_big);
}

static void test_error_path(void) {
    char buf[2048];
    CHECK_EQ_INT(run_child(alloc_too_big, buf, sizeof buf), 1);
    CHECK_MSG(strstr(buf, "huge") != NULL && strstr(buf, "hint") != NULL, "message: %s", buf);
}

/* uf_fill_f32(global float *x, ulong off, ulong n, float v) launched with an int where its
 * buffer goes: the launch helper must name the OpenCL error, the kernel and the argument. */
static void launch_bad_arg(void) {
    cl_kernel k = uf_device_kernel(&dev, "tensor.cl", "uf_fill_f32");
    size_t g = 64;
    UF_LAUNCH(&dev, k, 1, &g, NULL, UF_ARG_I32(0), UF_ARG_U64(0), UF_ARG_U64(64), UF_ARG_F32(1));
}

static void test_launch_error(void) {
    char buf[2048];
    CHECK_EQ_INT(run_child(launch_bad_arg, buf, sizeof buf), 1);
    CHECK_MSG(strstr(buf, "uf_fill_f32") != NULL && strstr(buf, "argument 0") != NULL &&
                  strstr(buf, "CL_INVALID_") != NULL,
              "message: %s", buf);
}

int main(void) {
    uf_device_init(&dev, NULL);
    UF_RUN(test_roundtrip);
    UF_RUN(test_views);
    UF_RUN(test_axpby_copy);
    UF_RUN(test_stream_add);
    UF_RUN(test_memory_accounting);
    UF_RUN(test_error_path);
    UF_RUN(test_launch_error);
    uf_device_free(&dev);
    return uf_test_summary();
}
