/* tensor.h: a device tensor: a named, typed, contiguous row-major view into an OpenCL buffer.
 * A tensor either owns its buffer or is a view (offset into another tensor's buffer, e.g. one
 * parameter inside the flat parameter vector). Offsets are in elements of the tensor's dtype and
 * are passed to kernels as an argument (no sub-buffers, so views need no alignment).
 * f32 and i32 for everything but frozen base weights, which may be bf16 (model.h
 * UF_MODEL_BF16_BASE). */
#ifndef UF_TENSOR_H
#define UF_TENSOR_H

#include <stdint.h>

#include "core/device.h"

enum uf_dtype { UF_F32 = 0, UF_I32, UF_F16, UF_BF16 };
size_t uf_dtype_size(enum uf_dtype t);
const char *uf_dtype_name(enum uf_dtype t);

#define UF_MAX_DIMS 4
struct uf_tensor {
    struct uf_device *dev;
    cl_mem buf;
    size_t offset;           /* in elements, into buf */
    enum uf_dtype dtype;
    int ndim;
    int64_t shape[UF_MAX_DIMS];
    int64_t numel;
    int owns;                /* 1: buf was allocated for this tensor and is freed with it */
    char name[96];
};

/* A tensor as kernel arguments (uf_device_launch): its buffer and its element offset (ulong). */
#define UF_ARG_TENSOR(t) UF_ARG_MEM((t)->buf), UF_ARG_U64((t)->offset)

/* Allocate an owned tensor of the given shape (ndim <= 4), uninitialised. */
void uf_tensor_init(struct uf_tensor *t, struct uf_device *d, const char *name, enum uf_dtype dtype,
                    int ndim, const int64_t *shape);
/* Convenience for up to 4 dims: uf_tensor_init_dims(t, d, "x", UF_F32, 2, (int64_t[]){B, D}) */
void uf_tensor_free(struct uf_tensor *t); /* no-op for views */
/* A view of `numel` elements at element offset `offset` of base, reshaped to (ndim, shape). */
void uf_tensor_view(struct uf_tensor *v, const struct uf_tensor *base, const char *name,
                    size_t offset, int ndim, const int64_t *shape);
size_t uf_tensor_bytes(const struct uf_tensor *t);

/* Blocking transfers of the whole tensor. */
void uf_tensor_upload(struct uf_tensor *t, const void *host);
void uf_tensor_download(const struct uf_tensor *t, void *host);
/* Asynchronous device-side ops on the in-order queue. */
void uf_tensor_fill(struct uf_tensor *t, float value);    /* f32 or i32 (value cast) */
void uf_tensor_copy(struct uf_tensor *dst, const struct uf_tensor *src); /* same numel/dtype */
/* dst = src converted f32 <-> bf16 (same numel; to bf16: round to nearest even). */
void uf_tensor_convert(struct uf_tensor *dst, const struct uf_tensor *src);
/* y = a*x + b*y, elementwise, f32 */
void uf_tensor_axpby(struct uf_tensor *y, float a, const struct uf_tensor *x, float b);
void uf_tensor_scale(struct uf_tensor *y, float a);
/* y += a*x, elementwise, f32: 16 floats per work-item on CPU devices, one per work-item
 * elsewhere (uf_axpby_f32; uf_device_gpu_like). The memory-bandwidth probe of `bench --roofline here`. */
void uf_tensor_stream_add(struct uf_tensor *y, float a, const struct uf_tensor *x);

#endif
