/* device.c: OpenCL platform/device selection, context + queue, memory accounting, the embedded
 * kernel build with an on-disk program-binary cache, and per-kernel profiling. See device.h. */
#include "core/device.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/util.h"

int uf_device_programs_compiled;

/* ---- errors ---------------------------------------------------------------------------- */
const char *uf_cl_error_name(cl_int e) {
    switch (e) {
#define E(x) case x: return #x;
        E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
        E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_MEM_COPY_OVERLAP) E(CL_IMAGE_FORMAT_MISMATCH)
        E(CL_IMAGE_FORMAT_NOT_SUPPORTED) E(CL_BUILD_PROGRAM_FAILURE) E(CL_MAP_FAILURE)
        E(CL_MISALIGNED_SUB_BUFFER_OFFSET) E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        E(CL_COMPILE_PROGRAM_FAILURE) E(CL_LINKER_NOT_AVAILABLE) E(CL_LINK_PROGRAM_FAILURE)
        E(CL_DEVICE_PARTITION_FAILED) E(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) E(CL_INVALID_VALUE)
        E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
        E(CL_INVALID_QUEUE_PROPERTIES) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_HOST_PTR)
        E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) E(CL_INVALID_IMAGE_SIZE)
        E(CL_INVALID_SAMPLER) E(CL_INVALID_BINARY) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
        E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL_DEFINITION)
        E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
        E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
        E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_EVENT_WAIT_LIST)
        E(CL_INVALID_EVENT) E(CL_INVALID_OPERATION) E(CL_INVALID_GL_OBJECT)
        E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MIP_LEVEL) E(CL_INVALID_GLOBAL_WORK_SIZE)
        E(CL_INVALID_PROPERTY) E(CL_INVALID_IMAGE_DESCRIPTOR) E(CL_INVALID_COMPILER_OPTIONS)
        E(CL_INVALID_LINKER_OPTIONS) E(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

const char *uf_cl_error_hint(cl_int e) {
    switch (e) {
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
        return "the device ran out of memory or resources: use a smaller batch or sequence, "
               "LoRA instead of full fine-tuning, or another device (--device)";
    case CL_OUT_OF_HOST_MEMORY: return "the host ran out of memory";
    case CL_INVALID_BUFFER_SIZE:
        return "a buffer exceeds the device's maximum allocation (see `unforget devices`)";
    case CL_BUILD_PROGRAM_FAILURE: return "a kernel failed to compile: see the build log above";
    case CL_DEVICE_NOT_FOUND:
    case -1001:
        return "no OpenCL device found: install a driver (PoCL for CPUs: apt-get install "
               "pocl-opencl-icd) and check `clinfo -l`";
    case CL_INVALID_WORK_GROUP_SIZE:
        return "the work-group size does not suit this device: please report it with "
               "`unforget devices` output";
    default: return "this is likely a bug in unforget or the driver: please report it with "
                    "`unforget devices` output";
    }
}

void uf_cl_fail(cl_int err, const char *call, const char *file, int line) {
    uf_fatal(1, "OpenCL error %s (%d) in %s at %s:%d\n  hint: %s", uf_cl_error_name(err), (int)err,
             call, file, line, uf_cl_error_hint(err));
}

/* ---- enumeration ----------------------------------------------------------------------- */
struct dev_entry {
    cl_platform_id platform;
    cl_device_id id;
    cl_device_type type;
    char name[256], platform_name[256];
};

static int enumerate(struct dev_entry **out) {
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    *out = NULL;
    if (err == -1001 || np == 0) return 0;
    UF_CL_ERR(err, "clGetPlatformIDs");
    cl_platform_id *plats = uf_calloc(np, sizeof *plats);
    UF_CL(clGetPlatformIDs(np, plats, NULL));
    int n = 0;
    struct dev_entry *all = NULL;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        err = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (err == CL_DEVICE_NOT_FOUND || nd == 0) continue;
        UF_CL_ERR(err, "clGetDeviceIDs");
        cl_device_id *ids = uf_calloc(nd, sizeof *ids);
        UF_CL(clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL));
        all = uf_realloc(all, (size_t)(n + (int)nd) * sizeof *all);
        for (cl_uint i = 0; i < nd; i++) {
            struct dev_entry *e = &all[n++];
            memset(e, 0, sizeof *e);
            e->platform = plats[p];
            e->id = ids[i];
            UF_CL(clGetDeviceInfo(ids[i], CL_DEVICE_TYPE, sizeof e->type, &e->type, NULL));
            UF_CL(clGetDeviceInfo(ids[i], CL_DEVICE_NAME, sizeof e->name - 1, e->name, NULL));
            UF_CL(clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof e->platform_name - 1,
                                    e->platform_name, NULL));
        }
        free(ids);
    }
    free(plats);
    *out = all;
    return n;
}

static const char *type_name(cl_device_type t) {
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

static int has_ext(cl_device_id id, const char *ext) {
    size_t n = 0;
    clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, 0, NULL, &n);
    char *s = uf_calloc(n + 1, 1);
    clGetDeviceInfo(id, CL_DEVICE_EXTENSIONS, n, s, NULL);
    int r = strstr(s, ext) != NULL;
    free(s);
    return r;
}

int uf_device_list(FILE *out) {
    struct dev_entry *all;
    int n = enumerate(&all);
    if (n == 0) fprintf(out, "no OpenCL devices found (%s)\n", uf_cl_error_hint(CL_DEVICE_NOT_FOUND));
    for (int i = 0; i < n; i++) {
        cl_uint cu = 0;
        cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
        size_t wg = 0;
        char drv[128] = {0}, ver[128] = {0};
        UF_CL(clGetDeviceInfo(all[i].id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL));
        UF_CL(clGetDeviceInfo(all[i].id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL));
        UF_CL(clGetDeviceInfo(all[i].id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL));
        UF_CL(clGetDeviceInfo(all[i].id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL));
        UF_CL(clGetDeviceInfo(all[i].id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL));
        UF_CL(clGetDeviceInfo(all[i].id, CL_DRIVER_VERSION, sizeof drv - 1, drv, NULL));
        UF_CL(clGetDeviceInfo(all[i].id, CL_DEVICE_VERSION, sizeof ver - 1, ver, NULL));
        fprintf(out, "[%d] %s\n", i, all[i].name);
        fprintf(out, "    platform        %s\n", all[i].platform_name);
        fprintf(out, "    type            %s\n", type_name(all[i].type));
        fprintf(out, "    version         %s (driver %s)\n", ver, drv);
        fprintf(out, "    compute units   %u\n", cu);
        fprintf(out, "    global memory   %.2f GiB (max allocation %.2f GiB)\n",
                (double)gmem / (1u << 30), (double)maxalloc / (1u << 30));
        fprintf(out, "    local memory    %.1f KiB\n", (double)lmem / 1024);
        fprintf(out, "    max work-group  %zu\n", wg);
        fprintf(out, "    fp16            %s\n", has_ext(all[i].id, "cl_khr_fp16") ? "yes" : "no");
        fprintf(out, "    fp64            %s\n", has_ext(all[i].id, "cl_khr_fp64") ? "yes" : "no");
    }
    free(all);
    return n;
}

static int ci_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

/* Returns the index of the selected device or -1. */
static int select_device(const struct dev_entry *all, int n, const char *sel) {
    if (!sel || !*sel) {
        for (int i = 0; i < n; i++) if (all[i].type & CL_DEVICE_TYPE_GPU) return i;
        for (int i = 0; i < n; i++) if (all[i].type & CL_DEVICE_TYPE_CPU) return i;
        return n > 0 ? 0 : -1;
    }
    static const struct { const char *name; cl_device_type type; } kinds[] = {
        {"cpu", CL_DEVICE_TYPE_CPU}, {"gpu", CL_DEVICE_TYPE_GPU},
        {"accelerator", CL_DEVICE_TYPE_ACCELERATOR}};
    for (unsigned k = 0; k < UF_ARRAY_LEN(kinds); k++) {
        size_t len = strlen(kinds[k].name);
        if (strncmp(sel, kinds[k].name, len) != 0) continue;
        int want = 0;
        if (sel[len] == ':') {
            char *end;
            long v = strtol(sel + len + 1, &end, 10);
            if (*end || v < 0) return -1;
            want = (int)v;
        } else if (sel[len] != 0) continue;
        for (int i = 0; i < n; i++)
            if ((all[i].type & kinds[k].type) && want-- == 0) return i;
        return -1;
    }
    char *end;
    long idx = strtol(sel, &end, 10);
    if (*end == 0) return idx >= 0 && idx < n ? (int)idx : -1;
    for (int i = 0; i < n; i++)
        if (ci_contains(all[i].name, sel) || ci_contains(all[i].platform_name, sel)) return i;
    return -1;
}

int uf_device_find(const char *selector, int *n_gpus) {
    struct dev_entry *all;
    int n = enumerate(&all);
    if (n_gpus) {
        *n_gpus = 0;
        for (int i = 0; i < n; i++) *n_gpus += (all[i].type & CL_DEVICE_TYPE_GPU) != 0;
    }
    int idx = select_device(all, n, selector);
    free(all);
    return idx;
}

/* $UNFORGET_DEVICE_LIMITS (device.h): "gpu" lowers the work-group, local-memory and allocation
 * limits to a GPU's and selects the GPU kernel variants; exits 2 on an unknown value. */
static void apply_limits(struct uf_device *d) {
    const char *e = getenv("UNFORGET_DEVICE_LIMITS");
    d->limits_note[0] = 0;
    if (!e || !*e || strcmp(e, "native") == 0) return;
    if (strcmp(e, "gpu") != 0)
        uf_fatal(2, "UNFORGET_DEVICE_LIMITS='%s' is not a limits mode (valid: gpu, native)", e);
    d->gpu_limits = 1;
    d->max_wg = UF_MIN(d->max_wg, (size_t)UF_GPU_MAX_WG);
    d->local_mem = UF_MIN(d->local_mem, UF_GPU_LOCAL_MEM);
    d->max_alloc = UF_MIN(d->max_alloc, d->global_mem / 4);
    snprintf(d->limits_note, sizeof d->limits_note,
             " [GPU limits: work-group %zu, local memory %.0f KiB, max allocation %.2f GiB, GPU "
             "kernels]", d->max_wg, (double)d->local_mem / 1024, (double)d->max_alloc / (1u << 30));
}

void uf_device_init(struct uf_device *d, const char *selector) {
    memset(d, 0, sizeof *d);
    const char *sel = selector && *selector ? selector : getenv("UNFORGET_DEVICE");
    struct dev_entry *all;
    int n = enumerate(&all);
    if (n == 0) uf_fatal(1, "no OpenCL devices found\n  hint: %s", uf_cl_error_hint(CL_DEVICE_NOT_FOUND));
    int i = select_device(all, n, sel);
    if (i < 0) {
        fprintf(stderr, "unforget: error: no OpenCL device matches '%s' (from %s)\n", sel,
                selector && *selector ? "--device" : "UNFORGET_DEVICE");
        fprintf(stderr, "  valid selectors: cpu, gpu, gpu:N, accelerator, an index, or part of a "
                        "device name. Devices here:\n");
        for (int j = 0; j < n; j++)
            fprintf(stderr, "    [%d] %s (%s, %s)\n", j, all[j].name, type_name(all[j].type),
                    all[j].platform_name);
        free(all);
        exit(2);
    }
    d->platform = all[i].platform;
    d->id = all[i].id;
    d->type = all[i].type;
    memcpy(d->name, all[i].name, sizeof d->name);
    memcpy(d->platform_name, all[i].platform_name, sizeof d->platform_name);
    free(all);

    UF_CL(clGetDeviceInfo(d->id, CL_DRIVER_VERSION, sizeof d->driver - 1, d->driver, NULL));
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_VERSION, sizeof d->version - 1, d->version, NULL));
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof d->compute_units, &d->compute_units, NULL));
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof d->global_mem, &d->global_mem, NULL));
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof d->local_mem, &d->local_mem, NULL));
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof d->max_alloc, &d->max_alloc, NULL));
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof d->max_wg, &d->max_wg, NULL));
    cl_uint align_bits = 0;
    UF_CL(clGetDeviceInfo(d->id, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL));
    d->align_bytes = align_bits / 8 ? align_bits / 8 : 128;
    d->has_fp16 = has_ext(d->id, "cl_khr_fp16");
    d->has_fp64 = has_ext(d->id, "cl_khr_fp64");
    apply_limits(d);
    /* UF_CPU: kernels add loop barriers that let PoCL vectorise across work-items (common.cl).
     * Not for GPU kernel variants (uf_device_gpu_like): not on a device that also has the GPU bit
     * (oclgrind reports every type bit), whose races those barriers could hide, nor under GPU
     * limits. */
    snprintf(d->build_options, sizeof d->build_options, "-w -cl-std=CL1.2 -cl-mad-enable%s%s",
             d->has_fp16 ? " -DUF_HAS_FP16=1" : "", uf_device_gpu_like(d) ? "" : " -DUF_CPU=1");

    cl_int err;
    d->ctx = clCreateContext(NULL, 1, &d->id, NULL, NULL, &err);
    UF_CL_ERR(err, "clCreateContext");
    d->queue = clCreateCommandQueue(d->ctx, d->id, CL_QUEUE_PROFILING_ENABLE, &err);
    UF_CL_ERR(err, "clCreateCommandQueue");
    uf_log(d->gpu_limits ? 1 : 2, "device: %s (%s, %s, driver %s)%s", d->name, type_name(d->type),
           d->platform_name, d->driver, uf_device_limits_note(d));
}

const char *uf_device_limits_note(const struct uf_device *d) { return d->limits_note; }

/* ---- memory ---------------------------------------------------------------------------- */
cl_mem uf_device_alloc(struct uf_device *d, size_t bytes, const char *what) {
    cl_int err;
    if (bytes > d->max_alloc)
        uf_fatal(1, "%s needs %.1f MiB in one buffer, more than this device allows (%.1f MiB%s)\n"
                 "  hint: %s", what, bytes / 1048576.0, d->max_alloc / 1048576.0,
                 d->gpu_limits ? ", GPU limits: a quarter of its memory" : "",
                 uf_cl_error_hint(CL_MEM_OBJECT_ALLOCATION_FAILURE));
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, bytes ? bytes : 4, NULL, &err);
    if (err != CL_SUCCESS)
        uf_fatal(1, "OpenCL error %s (%d) allocating %.1f MiB for %s (%.1f MiB live)\n  hint: %s",
                 uf_cl_error_name(err), (int)err, bytes / 1048576.0, what, d->bytes_live / 1048576.0,
                 uf_cl_error_hint(err));
    d->bytes_live += bytes;
    if (d->bytes_live > d->bytes_peak) d->bytes_peak = d->bytes_live;
    return m;
}

void uf_device_release(struct uf_device *d, cl_mem m, size_t bytes) {
    if (!m) return;
    UF_CL(clReleaseMemObject(m));
    d->bytes_live -= bytes;
}

cl_mem uf_device_scratch(struct uf_device *d, size_t bytes) {
    if (bytes > d->scratch_bytes) {
        uf_device_release(d, d->scratch, d->scratch_bytes);
        d->scratch_bytes = bytes < 4096 ? 4096 : bytes;
        d->scratch = uf_device_alloc(d, d->scratch_bytes, "scratch workspace");
    }
    return d->scratch;
}

/* ---- kernels: embedded sources, binary cache ------------------------------------------- */
struct uf_kernel_entry {
    char name[64];
    cl_kernel k;
    struct uf_kernel_entry *next;
};

struct uf_program {
    char file[64];
    cl_program prog;
    struct uf_kernel_entry *kernels;
    struct uf_program *next;
};

static const struct uf_kernel_source *find_source(const char *file) {
    for (const struct uf_kernel_source *s = uf_kernel_sources; s->name; s++)
        if (strcmp(s->name, file) == 0) return s;
    return NULL;
}

/* Every program is common.cl followed by its own file. */
static char *program_text(const char *file) {
    const struct uf_kernel_source *c = find_source("common.cl"), *s = find_source(file);
    if (!s) uf_fatal(1, "internal error: no embedded kernel file '%s'", file);
    if (!c || s == c) return uf_strdup(s->source);
    return uf_sprintf("%s\n#line 1\n%s", c->source, s->source);
}

static void print_build_log(struct uf_device *d, cl_program p, const char *file) {
    size_t n = 0;
    clGetProgramBuildInfo(p, d->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
    char *log = uf_calloc(n + 1, 1);
    clGetProgramBuildInfo(p, d->id, CL_PROGRAM_BUILD_LOG, n, log, NULL);
    fprintf(stderr, "unforget: error: building opencl/%s for %s failed; compiler log:\n%s\n", file,
            d->name, log);
    free(log);
}

static cl_program build_program(struct uf_device *d, const char *file) {
    char *src = program_text(file);
    uint64_t h = uf_hash_str(src, UF_HASH_SEED);
    h = uf_hash_str(d->name, h);
    h = uf_hash_str(d->platform_name, h);
    h = uf_hash_str(d->driver, h);
    h = uf_hash_str(d->version, h);
    h = uf_hash_str(d->build_options, h);
    char *dir = uf_cache_dir("kernels");
    /* entries carry a size + checksum header (uf_cache_write): a truncated or damaged binary is
     * discarded before the driver sees it (PoCL crashes on some) */
    char *path = dir ? uf_sprintf("%s/%s-%016llx.ufc", dir, file, (unsigned long long)h) : NULL;
    free(dir);
    cl_int err, st;
    cl_program p = NULL;
    size_t blen = 0;
    unsigned char *bin = path ? (unsigned char *)uf_cache_read(path, &blen, "kernel") : NULL;
    if (bin && blen == 0) uf_cache_discard(path, "kernel", "empty");
    if (bin && blen > 0) {
        const unsigned char *bp = bin;
        p = clCreateProgramWithBinary(d->ctx, 1, &d->id, &blen, &bp, &st, &err);
        if (err == CL_SUCCESS && st == CL_SUCCESS &&
            clBuildProgram(p, 1, &d->id, d->build_options, NULL, NULL) == CL_SUCCESS) {
            uf_log(2, "kernel cache hit: %s (%s)", file, path);
        } else {
            if (p) clReleaseProgram(p);
            p = NULL;
            uf_cache_discard(path, "kernel", "the driver rejects the binary");
        }
    }
    free(bin);
    if (!p) {
        uf_log(2, "kernel cache miss: compiling opencl/%s", file);
        const char *s = src;
        p = clCreateProgramWithSource(d->ctx, 1, &s, NULL, &err);
        UF_CL_ERR(err, "clCreateProgramWithSource");
        err = clBuildProgram(p, 1, &d->id, d->build_options, NULL, NULL);
        if (err != CL_SUCCESS) {
            print_build_log(d, p, file);
            uf_cl_fail(err, "clBuildProgram", __FILE__, __LINE__);
        }
        uf_device_programs_compiled++;
        size_t size = 0;
        if (path && clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) ==
                        CL_SUCCESS && size > 0) {
            unsigned char *out = uf_malloc(size);
            if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof out, &out, NULL) == CL_SUCCESS &&
                uf_cache_write(path, out, size) != 0)
                uf_log(1, "warning: cannot write kernel cache: %s", uf_error());
            free(out);
        }
    }
    free(path);
    free(src);
    return p;
}

cl_kernel uf_device_kernel(struct uf_device *d, const char *file, const char *kernel) {
    struct uf_program *pr;
    for (pr = d->programs; pr; pr = pr->next)
        if (strcmp(pr->file, file) == 0) break;
    if (!pr) {
        pr = uf_calloc(1, sizeof *pr);
        snprintf(pr->file, sizeof pr->file, "%s", file);
        pr->prog = build_program(d, file);
        pr->next = d->programs;
        d->programs = pr;
    }
    for (struct uf_kernel_entry *e = pr->kernels; e; e = e->next)
        if (strcmp(e->name, kernel) == 0) return e->k;
    cl_int err;
    struct uf_kernel_entry *e = uf_calloc(1, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", kernel);
    e->k = clCreateKernel(pr->prog, kernel, &err);
    if (err != CL_SUCCESS)
        uf_fatal(1, "OpenCL error %s creating kernel '%s' from opencl/%s", uf_cl_error_name(err),
                 kernel, file);
    e->next = pr->kernels;
    pr->kernels = e;
    return e->k;
}

/* ---- profiling ------------------------------------------------------------------------- */
struct uf_profile {
    cl_event *events;
    char (*names)[64];
    size_t n, cap;
};

void uf_device_profile_enable(struct uf_device *d, int on) {
    if (on && !d->prof) d->prof = uf_calloc(1, sizeof *d->prof);
    if (!on && d->prof) {
        for (size_t i = 0; i < d->prof->n; i++) clReleaseEvent(d->prof->events[i]);
        free(d->prof->events);
        free(d->prof->names);
        free(d->prof);
        d->prof = NULL;
    }
}

static void kernel_name(cl_kernel k, char *name, size_t cap) {
    name[0] = 0;
    if (clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, cap - 1, name, NULL) != CL_SUCCESS)
        snprintf(name, cap, "(unnamed kernel)");
    name[cap - 1] = 0;
}

/* Under GPU limits, a launch the driver here would take but a GPU's would refuse fails the same
 * way: a work-group above d->max_wg, or more local memory (the kernel's own __local arrays and
 * its local arguments, as set) than d->local_mem. */
static void check_gpu_limits(struct uf_device *d, cl_kernel k, cl_uint dims, const size_t *local) {
    char name[64], call[192];
    size_t items = 1;
    for (cl_uint i = 0; local && i < dims; i++) items *= local[i];
    cl_ulong lmem = 0;
    UF_CL(clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL));
    if (items <= d->max_wg && lmem <= d->local_mem) return;
    kernel_name(k, name, sizeof name);
    if (items > d->max_wg)
        snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s): %zu work-items per group, GPU "
                 "limits allow %zu", name, items, d->max_wg);
    else
        snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s): %llu bytes of local memory, GPU "
                 "limits allow %llu", name, (unsigned long long)lmem,
                 (unsigned long long)d->local_mem);
    uf_cl_fail(items > d->max_wg ? CL_INVALID_WORK_GROUP_SIZE : CL_OUT_OF_RESOURCES, call, __FILE__,
               __LINE__);
}

void uf_device_launch(struct uf_device *d, cl_kernel k, cl_uint dims, const size_t *global,
                      const size_t *local, size_t nargs, const struct uf_arg *args) {
    char name[64], call[160];
    for (size_t i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].value);
        if (err != CL_SUCCESS) {
            kernel_name(k, name, sizeof name);
            snprintf(call, sizeof call, "clSetKernelArg(%s, argument %zu, %zu bytes%s)", name, i,
                     args[i].size, args[i].value ? "" : " of local memory");
            uf_cl_fail(err, call, __FILE__, __LINE__);
        }
    }
    if (d->gpu_limits) check_gpu_limits(d, k, dims, local);
    cl_event ev = NULL;
    cl_int err = clEnqueueNDRangeKernel(d->queue, k, dims, NULL, global, local, 0, NULL,
                                        d->prof ? &ev : NULL);
    if (err != CL_SUCCESS) {
        kernel_name(k, name, sizeof name);
        snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s, %u-D, %zu arguments)", name,
                 (unsigned)dims, nargs);
        uf_cl_fail(err, call, __FILE__, __LINE__);
    }
    if (d->prof) {
        kernel_name(k, name, sizeof name);
        uf_device_profile_add(d, ev, name);
    }
}

void uf_device_profile_add(struct uf_device *d, cl_event ev, const char *name) {
    struct uf_profile *p = d->prof;
    if (!p || !ev) return;
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 1024;
        p->events = uf_realloc(p->events, p->cap * sizeof *p->events);
        p->names = uf_realloc(p->names, p->cap * sizeof *p->names);
    }
    p->events[p->n] = ev;
    snprintf(p->names[p->n], sizeof p->names[0], "%s", name);
    p->n++;
}

void uf_device_finish(struct uf_device *d) { UF_CL(clFinish(d->queue)); }

static int cmp_desc(const void *a, const void *b) {
    double x = ((const struct uf_profile_row *)a)->ms, y = ((const struct uf_profile_row *)b)->ms;
    return (x < y) - (x > y);
}

int uf_device_profile_rows(struct uf_device *d, struct uf_profile_row **out) {
    *out = NULL;
    if (!d->prof) return 0;
    uf_device_finish(d);
    struct uf_profile_row *rows = NULL;
    int nrows = 0;
    for (size_t i = 0; i < d->prof->n; i++) {
        cl_ulong t0 = 0, t1 = 0;
        UF_CL(clGetEventProfilingInfo(d->prof->events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL));
        UF_CL(clGetEventProfilingInfo(d->prof->events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL));
        int r;
        for (r = 0; r < nrows; r++) if (strcmp(rows[r].name, d->prof->names[i]) == 0) break;
        if (r == nrows) {
            rows = uf_realloc(rows, (size_t)(nrows + 1) * sizeof *rows);
            memset(&rows[r], 0, sizeof rows[r]);
            memcpy(rows[r].name, d->prof->names[i], sizeof rows[r].name);
            nrows++;
        }
        rows[r].ms += (double)(t1 - t0) * 1e-6;
        rows[r].calls++;
    }
    if (nrows > 0) qsort(rows, (size_t)nrows, sizeof *rows, cmp_desc);
    *out = rows;
    return nrows;
}

void uf_device_profile_report(struct uf_device *d, FILE *out) {
    if (!d->prof) return;
    struct uf_profile_row *rows;
    int nrows = uf_device_profile_rows(d, &rows);
    double total = 0;
    for (int r = 0; r < nrows; r++) total += rows[r].ms;
    fprintf(out, "%-32s %10s %8s %7s\n", "kernel", "ms", "calls", "share");
    for (int r = 0; r < nrows; r++)
        fprintf(out, "%-32s %10.2f %8ld %6.1f%%\n", rows[r].name, rows[r].ms, rows[r].calls,
                total > 0 ? 100 * rows[r].ms / total : 0);
    fprintf(out, "%-32s %10.2f\n", "total (own kernels)", total);
    free(rows);
}

void uf_device_free(struct uf_device *d) {
    if (!d->ctx) return;
    if (d->gemm_free) d->gemm_free(d);
    uf_device_profile_enable(d, 0);
    uf_device_release(d, d->scratch, d->scratch_bytes);
    for (struct uf_program *p = d->programs, *pn; p; p = pn) {
        pn = p->next;
        for (struct uf_kernel_entry *e = p->kernels, *en; e; e = en) {
            en = e->next;
            clReleaseKernel(e->k);
            free(e);
        }
        clReleaseProgram(p->prog);
        free(p);
    }
    clReleaseCommandQueue(d->queue);
    clReleaseContext(d->ctx);
    memset(d, 0, sizeof *d);
}
