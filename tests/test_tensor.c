/* test_tensor.c: device tensors: upload/download round trips, views with offsets, fill, copy,
 * axpby against plain loops, memory accounting, and the OpenCL error path (an allocation larger
 * than the device allows exits 1 with the error named, in a child process), and GPU limits
 * (UNFORGET_DEVICE_LIMITS=gpu): the clamped limits, the GPU kernel selection, and the refusals of
 * what a GPU would refuse. */
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
        alarm(60); /* a child that gets further than it should may block in the driver */
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

/* ---- GPU limits (UNFORGET_DEVICE_LIMITS=gpu, core/device.h) -------------------------------- */
static struct uf_device gdev; /* the same device under GPU limits */

static void gpu_alloc_above_limit(void) { /* above the clamped, within the native allocation limit */
    uf_device_alloc(&gdev, (size_t)gdev.max_alloc + 4096, "above-the-gpu-limit");
}

/* Kernels and buffers are made in the parent: the child of fork() only sets arguments and
 * enqueues (the driver's worker threads are not in the child). */
static cl_kernel g_fill, g_reduce;
static struct uf_tensor g_x, g_part, g_out; /* (512), (64), (1) */

static void gpu_launch_wide_group(void) { /* 512 work-items per group */
    size_t g = 512, l = 512;
    UF_LAUNCH(&gdev, g_fill, 1, &g, &l, UF_ARG_MEM(g_x.buf), UF_ARG_U64(0), UF_ARG_U64(512),
              UF_ARG_F32(1));
}

static void reduce_launch(size_t local_bytes) { /* uf_reduce_final over g_part into g_out */
    size_t g = 64;
    UF_LAUNCH(&gdev, g_reduce, 1, &g, &g, UF_ARG_MEM(g_part.buf), UF_ARG_I32(64),
              UF_ARG_MEM(g_out.buf), UF_ARG_U64(0), UF_ARG_I32(0), UF_ARG_LOCAL(local_bytes));
}

static void gpu_launch_big_local(void) { reduce_launch((size_t)128 << 10); } /* 128 KiB */

/* The limits are lowered (never raised), the GPU kernel variants are selected, and an allocation,
 * work-group or local-memory request the device itself would take but a GPU would not is refused
 * (exit 1, named). Each refusal is checked to be a real one: the native device takes it. */
static void test_gpu_limits(void) {
    const char *old = getenv("UNFORGET_DEVICE_LIMITS");
    char *saved = old ? uf_strdup(old) : NULL;
    setenv("UNFORGET_DEVICE_LIMITS", "gpu", 1);
    uf_device_init(&gdev, NULL);
    if (saved) setenv("UNFORGET_DEVICE_LIMITS", saved, 1);
    else unsetenv("UNFORGET_DEVICE_LIMITS");
    free(saved);
    CHECK(gdev.gpu_limits);
    CHECK(uf_device_gpu_like(&gdev));
    CHECK(gdev.max_wg <= UF_GPU_MAX_WG);
    CHECK(gdev.local_mem <= UF_GPU_LOCAL_MEM);
    CHECK(gdev.max_alloc <= gdev.global_mem / 4);
    CHECK(strstr(gdev.build_options, "UF_CPU") == NULL);
    CHECK(strstr(uf_device_limits_note(&gdev), "GPU limits") != NULL);
    char buf[2048];
    if (dev.gpu_limits) {
        uf_device_free(&gdev);
        UF_SKIP("UNFORGET_DEVICE_LIMITS=gpu is set: no native device to compare with");
    }
    int64_t n512 = 512, n64 = 64, one = 1;
    g_fill = uf_device_kernel(&gdev, "tensor.cl", "uf_fill_f32");
    g_reduce = uf_device_kernel(&gdev, "optim.cl", "uf_reduce_final");
    uf_tensor_init(&g_x, &gdev, "x", UF_F32, 1, &n512);
    uf_tensor_init(&g_part, &gdev, "part", UF_F32, 1, &n64);
    uf_tensor_init(&g_out, &gdev, "out", UF_F32, 1, &one);
    uf_tensor_fill(&g_part, 0.5f);
    uf_device_finish(&gdev);
    CHECK(uf_device_gpu_like(&dev) ==
          (!(dev.type & CL_DEVICE_TYPE_CPU) || (dev.type & CL_DEVICE_TYPE_GPU) != 0));
    CHECK(uf_device_limits_note(&dev)[0] == 0);
    if ((size_t)gdev.max_alloc + 4096 <= dev.max_alloc) {
        CHECK_EQ_INT(run_child(gpu_alloc_above_limit, buf, sizeof buf), 1);
        CHECK_MSG(strstr(buf, "above-the-gpu-limit") && strstr(buf, "GPU limits"), "message: %s", buf);
    }
    if (dev.max_wg >= 512) {
        CHECK_EQ_INT(run_child(gpu_launch_wide_group, buf, sizeof buf), 1);
        CHECK_MSG(strstr(buf, "CL_INVALID_WORK_GROUP_SIZE") && strstr(buf, "uf_fill_f32") &&
                      strstr(buf, "512 work-items"), "message: %s", buf);
    }
    if (dev.local_mem >= ((cl_ulong)128 << 10) + 4096) {
        CHECK_EQ_INT(run_child(gpu_launch_big_local, buf, sizeof buf), 1);
        CHECK_MSG(strstr(buf, "CL_OUT_OF_RESOURCES") && strstr(buf, "uf_reduce_final") &&
                      strstr(buf, "local memory"), "message: %s", buf);
    }
    reduce_launch(64 * sizeof(float)); /* the same launch within the limits runs */
    float sum = 0;
    uf_tensor_download(&g_out, &sum);
    CHECK_NEAR(sum, 32.0, 1e-6);
    uf_tensor_free(&g_x), uf_tensor_free(&g_part), uf_tensor_free(&g_out);
    uf_device_free(&gdev);
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
    UF_RUN(test_gpu_limits);
    uf_device_free(&dev);
    return uf_test_summary();
}
