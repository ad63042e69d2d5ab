/* tensor.c: device tensors (see tensor.h); elementwise helpers run opencl/tensor.cl. */
#include "core/tensor.h"

#include <string.h>

#include "core/util.h"

size_t uf_dtype_size(enum uf_dtype t) {
    switch (t) {
    case UF_F32: case UF_I32: return 4;
    case UF_F16: case UF_BF16: return 2;
    }
    return 4;
}

const char *uf_dtype_name(enum uf_dtype t) {
    static const char *n[] = {"f32", "i32", "f16", "bf16"};
    return (unsigned)t < 4 ? n[t] : "?";
}

static void set_shape(struct uf_tensor *t, const char *name, int ndim, const int64_t *shape) {
    if (ndim < 1 || ndim > UF_MAX_DIMS) uf_fatal(1, "tensor %s: %d dims (1..4 allowed)", name, ndim);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < UF_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) uf_fatal(1, "tensor %s: negative dimension", name);
        t->numel *= shape[i];
    }
    snprintf(t->name, sizeof t->name, "%s", name);
}

void uf_tensor_init(struct uf_tensor *t, struct uf_device *d, const char *name, enum uf_dtype dtype,
                    int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    set_shape(t, name, ndim, shape);
    t->dev = d;
    t->dtype = dtype;
    t->owns = 1;
    t->buf = uf_device_alloc(d, uf_tensor_bytes(t), name);
}

void uf_tensor_free(struct uf_tensor *t) {
    if (t->owns && t->buf) uf_device_release(t->dev, t->buf, uf_tensor_bytes(t));
    memset(t, 0, sizeof *t);
}

void uf_tensor_view(struct uf_tensor *v, const struct uf_tensor *base, const char *name,
                    size_t offset, int ndim, const int64_t *shape) {
    struct uf_tensor t;
    memset(&t, 0, sizeof t);
    set_shape(&t, name, ndim, shape);
    if (offset + (size_t)t.numel > (size_t)base->numel)
        uf_fatal(1, "view %s [%zu, +%lld) exceeds %s of %lld elements", name, offset,
                 (long long)t.numel, base->name, (long long)base->numel);
    t.dev = base->dev;
    t.buf = base->buf;
    t.offset = base->offset + offset;
    t.dtype = base->dtype;
    t.owns = 0;
    *v = t;
}

size_t uf_tensor_bytes(const struct uf_tensor *t) { return (size_t)t->numel * uf_dtype_size(t->dtype); }

void uf_tensor_upload(struct uf_tensor *t, const void *host) {
    size_t es = uf_dtype_size(t->dtype);
    if (t->numel == 0) return;
    UF_CL(clEnqueueWriteBuffer(t->dev->queue, t->buf, CL_TRUE, t->offset * es, uf_tensor_bytes(t),
                               host, 0, NULL, NULL));
}

void uf_tensor_download(const struct uf_tensor *t, void *host) {
    size_t es = uf_dtype_size(t->dtype);
    if (t->numel == 0) return;
    UF_CL(clEnqueueReadBuffer(t->dev->queue, t->buf, CL_TRUE, t->offset * es, uf_tensor_bytes(t),
                              host, 0, NULL, NULL));
}

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

void uf_tensor_fill(struct uf_tensor *t, float value) {
    if (t->numel == 0) return;
    size_t g = round_up((size_t)t->numel, 64);
    if (t->dtype == UF_F32) {
        cl_kernel k = uf_device_kernel(t->dev, "tensor.cl", "uf_fill_f32");
        UF_LAUNCH(t->dev, k, 1, &g, NULL, UF_ARG_TENSOR(t), UF_ARG_U64(t->numel), UF_ARG_F32(value));
    } else if (t->dtype == UF_I32) {
        cl_kernel k = uf_device_kernel(t->dev, "tensor.cl", "uf_fill_i32");
        UF_LAUNCH(t->dev, k, 1, &g, NULL, UF_ARG_TENSOR(t), UF_ARG_U64(t->numel),
                  UF_ARG_I32((cl_int)value));
    } else {
        uf_fatal(1, "uf_tensor_fill: %s is %s (f32 or i32 only)", t->name, uf_dtype_name(t->dtype));
    }
}

void uf_tensor_copy(struct uf_tensor *dst, const struct uf_tensor *src) {
    if (dst->numel != src->numel || dst->dtype != src->dtype)
        uf_fatal(1, "uf_tensor_copy: %s (%lld %s) and %s (%lld %s) differ", dst->name,
                 (long long)dst->numel, uf_dtype_name(dst->dtype), src->name,
                 (long long)src->numel, uf_dtype_name(src->dtype));
    size_t es = uf_dtype_size(src->dtype);
    if (src->numel == 0) return;
    cl_event ev = NULL; /* profiled (bench --profile) as "copy_buffer" */
    UF_CL(clEnqueueCopyBuffer(dst->dev->queue, src->buf, dst->buf, src->offset * es,
                              dst->offset * es, uf_tensor_bytes(src), 0, NULL,
                              dst->dev->prof ? &ev : NULL));
    if (ev) uf_device_profile_add(dst->dev, ev, "copy_buffer");
}

void uf_tensor_axpby(struct uf_tensor *y, float a, const struct uf_tensor *x, float b) {
    if (y->numel != x->numel || y->dtype != UF_F32 || x->dtype != UF_F32)
        uf_fatal(1, "uf_tensor_axpby: %s and %s must be f32 of equal size", y->name, x->name);
    if (y->numel == 0) return;
    cl_kernel k = uf_device_kernel(y->dev, "tensor.cl", "uf_axpby_f32");
    size_t g = round_up((size_t)y->numel, 64);
    UF_LAUNCH(y->dev, k, 1, &g, NULL, UF_ARG_TENSOR(y), UF_ARG_F32(a), UF_ARG_TENSOR(x),
              UF_ARG_F32(b), UF_ARG_U64(y->numel));
}

void uf_tensor_scale(struct uf_tensor *y, float a) { uf_tensor_axpby(y, 0.0f, y, a); }

void uf_tensor_stream_add(struct uf_tensor *y, float a, const struct uf_tensor *x) {
    if (uf_device_gpu_like(y->dev)) { /* GPUs, and GPU limits */
        uf_tensor_axpby(y, a, x, 1.0f);
        return;
    }
    if (y->numel != x->numel || y->dtype != UF_F32 || x->dtype != UF_F32)
        uf_fatal(1, "uf_tensor_stream_add: %s and %s must be f32 of equal size", y->name, x->name);
    if (y->numel == 0) return;
    cl_kernel k = uf_device_kernel(y->dev, "tensor.cl", "uf_stream_add_v16");
    size_t g = ((size_t)y->numel + 15) / 16;
    UF_LAUNCH(y->dev, k, 1, &g, NULL, UF_ARG_TENSOR(y), UF_ARG_F32(a), UF_ARG_TENSOR(x),
              UF_ARG_U64(y->numel));
}

void uf_tensor_convert(struct uf_tensor *dst, const struct uf_tensor *src) {
    int up = src->dtype == UF_BF16 && dst->dtype == UF_F32;
    int down = src->dtype == UF_F32 && dst->dtype == UF_BF16;
    if (dst->numel != src->numel || !(up || down))
        uf_fatal(1, "uf_tensor_convert: %s (%lld %s) <- %s (%lld %s): needs equal sizes, "
                 "f32 <-> bf16", dst->name, (long long)dst->numel, uf_dtype_name(dst->dtype),
                 src->name, (long long)src->numel, uf_dtype_name(src->dtype));
    if (src->numel == 0) return;
    cl_kernel k = uf_device_kernel(dst->dev, "tensor.cl", up ? "uf_bf16_to_f32" : "uf_f32_to_bf16");
    size_t g = round_up((size_t)src->numel, 64);
    UF_LAUNCH(dst->dev, k, 1, &g, NULL, UF_ARG_TENSOR(dst), UF_ARG_TENSOR(src),
              UF_ARG_U64(src->numel));
}
