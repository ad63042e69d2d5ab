/* device.h: the OpenCL device runtime. One struct uf_device owns a context and an in-order
 * profiling queue on one selected device, accounts device memory (live and peak bytes), and
 * builds the embedded kernels (opencl/ *.cl) on first use, caching program binaries on disk.
 *
 * Selection (uf_device_init's selector, else $UNFORGET_DEVICE, else default):
 *   "cpu" | "gpu" | "accelerator"   first device of that type ("gpu:1" = the second GPU)
 *   "N"                             the N-th device in `unforget devices` order
 *   any other text                  first device whose name or platform contains it (case-insensitive)
 *   default                         first GPU, else first CPU, else first device.
 * A selector that matches nothing is a usage error: message listing the devices, exit code 2.
 *
 * GPU limits ($UNFORGET_DEVICE_LIMITS=gpu, read by uf_device_init): the device is used as a GPU
 * would be, so that the GPU code paths run at full speed on PoCL in every test:
 *   - max work-group size clamped to UF_GPU_MAX_WG (256: AMD's OpenCL reports 256, NVIDIA's
 *     and Intel's 512-1,024, so what runs here fits all of them), local memory to
 *     UF_GPU_LOCAL_MEM (64 KiB: AMD's LDS, Intel's SLM; NVIDIA's OpenCL reports 48 KiB and
 *     oclgrind 32 KiB, which tests/test_oclgrind.sh covers), max allocation to a quarter of the
 *     global memory (the OpenCL minimum, what NVIDIA's driver reports; AMD's allow more), each
 *     only lowered, never raised; uf_device_alloc refuses larger buffers and
 *     uf_device_launch refuses larger work-groups or more local memory (exit 1, named), as a
 *     GPU's driver would;
 *   - every kernel-variant choice takes the GPU path (uf_device_gpu_like): the GPU kernels of
 *     ops.c and attention.c (ops.h uf_ops_cpu_path), no -DUF_CPU in the kernels' build
 *     options, CLBlast for the GEMM.
 * Unset, empty or "native": the device's own limits and kernel variants. Any other value is a
 * usage error (exit 2). `unforget devices`, selftest and bench print the mode.
 *
 * Every OpenCL call goes through UF_CL(): a failure prints the error NAME, the call, the source
 * line and a hint, then exits with code 1 (never a crash). */
#ifndef UF_DEVICE_H
#define UF_DEVICE_H

#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#include <CL/cl.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

struct uf_program; /* one built program per opencl/ *.cl file */
struct uf_profile;
struct uf_gemm_state;

/* GPU limits (see above) */
#define UF_GPU_MAX_WG 256
#define UF_GPU_LOCAL_MEM ((cl_ulong)64 << 10)

struct uf_device {
    cl_platform_id platform;
    cl_device_id id;
    cl_context ctx;
    cl_command_queue queue;     /* in-order, profiling enabled */
    cl_device_type type;
    char name[256];
    char platform_name[256];
    char driver[128];
    char version[128];
    cl_uint compute_units;
    cl_ulong global_mem, local_mem, max_alloc;
    size_t max_wg;
    cl_uint align_bytes;        /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes (sub-buffer offsets) */
    int has_fp16, has_fp64;
    int gpu_limits;             /* 1: $UNFORGET_DEVICE_LIMITS=gpu applied (limits clamped above) */
    size_t bytes_live, bytes_peak; /* device memory accounting (uf_device_alloc/release) */
    struct uf_program *programs;   /* built lazily; linked list */
    char build_options[256];
    char limits_note[160];         /* uf_device_limits_note */
    struct uf_profile *prof;       /* NULL unless profiling is on */
    cl_mem scratch;                /* small shared workspace (uf_device_scratch) */
    size_t scratch_bytes;
    struct uf_gemm_state *gemm;    /* ops/gemm.c's backend choice and packing buffer (lazily) */
    void (*gemm_free)(struct uf_device *d); /* set with gemm by ops/gemm.c, which frees it;
                                               uf_device_free calls it first (core/ does not
                                               depend on ops/) */
};

/* Initialise on the selected device; exits 2 with the device list on a bad selector (or a bad
 * $UNFORGET_DEVICE_LIMITS). */
void uf_device_init(struct uf_device *d, const char *selector);
/* 1 when kernel variants written for GPUs are to be selected: a device that is not a CPU, one
 * with the GPU bit besides the CPU bit (oclgrind reports every type bit), or any device under GPU
 * limits. The one predicate every launcher that picks a CPU- or GPU-shaped kernel variant asks
 * (through ops.h uf_ops_cpu_path for the ops), not d->type. */
static inline int uf_device_gpu_like(const struct uf_device *d) {
    return !(d->type & CL_DEVICE_TYPE_CPU) || (d->type & CL_DEVICE_TYPE_GPU) || d->gpu_limits;
}
/* "" natively; under GPU limits a short note for logs and headers, e.g.
 * " [GPU limits: work-group 256, local memory 64 KiB, max allocation 3.37 GiB, GPU kernels]".
 * The text lives in the device (valid until uf_device_free). */
const char *uf_device_limits_note(const struct uf_device *d);
void uf_device_free(struct uf_device *d);
/* Index (in `unforget devices` order) of the device a selector (NULL: the default) picks, or -1;
 * *n_gpus (when not NULL) gets the number of GPU devices. Creates no context. */
int uf_device_find(const char *selector, int *n_gpus);
/* Prints every platform/device with type, CUs, memory, work-group size, fp16/fp64. Returns count. */
int uf_device_list(FILE *out);

const char *uf_cl_error_name(cl_int err);
const char *uf_cl_error_hint(cl_int err);
void uf_cl_fail(cl_int err, const char *call, const char *file, int line); /* exits 1 */
#define UF_CL(call)                                                                        \
    do {                                                                                   \
        cl_int uf_cl_err_ = (call);                                                        \
        if (uf_cl_err_ != CL_SUCCESS) uf_cl_fail(uf_cl_err_, #call, __FILE__, __LINE__);   \
    } while (0)
/* For calls that return their error through a pointer: UF_CL_ERR(err) after the call. */
#define UF_CL_ERR(err, what)                                                               \
    do {                                                                                   \
        if ((err) != CL_SUCCESS) uf_cl_fail((err), (what), __FILE__, __LINE__);            \
    } while (0)

/* ---- memory ---------------------------------------------------------------------------- */
cl_mem uf_device_alloc(struct uf_device *d, size_t bytes, const char *what);
void uf_device_release(struct uf_device *d, cl_mem m, size_t bytes);
/* A device workspace of at least `bytes`, owned by the device, reused by every caller (e.g.
 * partial sums of two-level reductions). Valid until the next call with a larger size. */
cl_mem uf_device_scratch(struct uf_device *d, size_t bytes);

/* ---- kernels --------------------------------------------------------------------------- */
/* The kernel `kernel` from embedded file `file` ("norm.cl"), built for this device on first use
 * (from the on-disk binary cache when present). The returned kernel is owned by the device;
 * callers launch it with uf_device_launch (in-order queue: no two threads share a device). */
cl_kernel uf_device_kernel(struct uf_device *d, const char *file, const char *kernel);
/* One kernel argument: `size` bytes at `value` (value NULL: `size` bytes of local memory). The
 * UF_ARG_* constructors fix the OpenCL type of each scalar, so an argument's size always matches
 * the kernel's parameter type (a tensor is two arguments: UF_ARG_TENSOR in tensor.h). The values
 * are compound literals that live until the end of the enclosing block. */
struct uf_arg {
    size_t size;
    const void *value;
};
#define UF_ARG_MEM(m) ((struct uf_arg){sizeof(cl_mem), &(cl_mem){(m)}})
#define UF_ARG_I32(v) ((struct uf_arg){sizeof(cl_int), &(cl_int){(cl_int)(v)}})
#define UF_ARG_U32(v) ((struct uf_arg){sizeof(cl_uint), &(cl_uint){(cl_uint)(v)}})
#define UF_ARG_U64(v) ((struct uf_arg){sizeof(cl_ulong), &(cl_ulong){(cl_ulong)(v)}})
#define UF_ARG_F32(v) ((struct uf_arg){sizeof(cl_float), &(cl_float){(cl_float)(v)}})
#define UF_ARG_LOCAL(bytes) ((struct uf_arg){(bytes), NULL})

/* The one way to launch a kernel: sets args[0..nargs) as the kernel's arguments 0..nargs-1 and
 * enqueues a 1-D/2-D/3-D NDRange (local may be NULL), recording a profiling event when enabled.
 * A failing argument or enqueue exits 1 with the OpenCL error's name, the kernel's name and the
 * argument's index. Usually called through UF_LAUNCH, which counts the arguments:
 *   UF_LAUNCH(d, k, 1, &g, NULL, UF_ARG_TENSOR(x), UF_ARG_F32(scale), UF_ARG_I32(n)); */
void uf_device_launch(struct uf_device *d, cl_kernel k, cl_uint dims, const size_t *global,
                      const size_t *local, size_t nargs, const struct uf_arg *args);
#define UF_LAUNCH(d, k, dims, global, local, ...)                                            \
    uf_device_launch((d), (k), (dims), (global), (local),                                  \
                     sizeof((struct uf_arg[]){__VA_ARGS__}) / sizeof(struct uf_arg),         \
                     (struct uf_arg[]){__VA_ARGS__})
void uf_device_finish(struct uf_device *d);

/* Per-kernel profiling (bench --profile): when enabled, every launch keeps its event and
 * uf_device_profile_report() sums device time per kernel name. */
void uf_device_profile_enable(struct uf_device *d, int on);
void uf_device_profile_report(struct uf_device *d, FILE *out);
/* The same sums as data: device time and launches per kernel name since profiling was enabled,
 * longest first (waits for the queue). Returns the row count; *rows (malloc'd, NULL when 0) is
 * the caller's to free. Buffer copies (uf_tensor_copy) appear as "copy_buffer". */
struct uf_profile_row {
    char name[64];
    double ms;
    long calls;
};
int uf_device_profile_rows(struct uf_device *d, struct uf_profile_row **rows);
/* Adds an event (taken over) under `name`; for work not launched by uf_device_launch (CLBlast). */
void uf_device_profile_add(struct uf_device *d, cl_event ev, const char *name);
/* Number of programs compiled from source (not loaded from the cache) since init. */
extern int uf_device_programs_compiled;

#endif
