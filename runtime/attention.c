/* attention.c: host launchers of the attention ops of ops.h (kernels in opencl/attention.cl).
 * Checks every shape against (B, T, H, KV, hd) and exits with a message naming the tensor when
 * one disagrees (a caller bug, not a data error). No host sync, no scratch buffers: the backward
 * recomputes D = rowsum(dO * O) where it needs it. */
#include <math.h>

#include "ops.h"
#include "util.h"

enum { UF_ATTN_HD_MAX = 256, UF_ATTN_VW = 16, UF_ATTN_BQ = 32, UF_ATTN_BK_MAX = 64 };

static void check_tensor(const struct uf_tensor *t, const char *what, enum uf_dtype dtype,
                         int64_t numel) {
    if (!t) uf_fatal(1, "attention: %s is NULL", what);
    if (t->dtype != dtype || t->numel != numel)
        uf_fatal(1, "attention: %s (%s) has %lld %s elements, expected %lld %s", what, t->name,
                 (long long)t->numel, uf_dtype_name(t->dtype), (long long)numel,
                 uf_dtype_name(dtype));
}

static void check_dims(struct uf_device *d, int B, int T, int H, int KV, int hd, int window) {
    if (B < 1 || T < 1 || H < 1 || KV < 1 || H % KV != 0)
        uf_fatal(1, "attention: bad shape B=%d T=%d H=%d KV=%d (all >= 1, KV divides H)", B, T, H, KV);
    if (hd < 1 || hd > UF_ATTN_HD_MAX)
        uf_fatal(1, "attention: head_dim %d outside 1..%d", hd, UF_ATTN_HD_MAX);
    if (window < 0) uf_fatal(1, "attention: sliding window %d < 0 (0 = off)", window);
    if (d->max_wg < 8) uf_fatal(1, "attention: device work-group limit %zu < 8", d->max_wg);
}

/* Work-group size: UF_ATTN_BQ capped by the device limit (a power of two). */
static int group_size(struct uf_device *d) {
    int n = UF_ATTN_BQ;
    while ((size_t)n > d->max_wg) n /= 2;
    return n;
}

/* Key tile of the forward/dq kernels: ~8K floats of K plus V in local memory. */
static int key_tile(struct uf_device *d, int hdp) {
    int bk = UF_MIN(UF_ATTN_BK_MAX, UF_MAX(4, 4096 / hdp));
    while (bk > 4 && (size_t)(2 * bk * hdp * 4) > d->local_mem / 2) bk /= 2;
    return bk;
}

static void set_mem(cl_kernel k, cl_uint *a, const struct uf_tensor *t) {
    cl_ulong off = t->offset;
    UF_CL(clSetKernelArg(k, (*a)++, sizeof(cl_mem), &t->buf));
    UF_CL(clSetKernelArg(k, (*a)++, sizeof off, &off));
}
static void set_int(cl_kernel k, cl_uint *a, int v) {
    cl_int x = v;
    UF_CL(clSetKernelArg(k, (*a)++, sizeof x, &x));
}
static void set_local(cl_kernel k, cl_uint *a, size_t bytes) {
    UF_CL(clSetKernelArg(k, (*a)++, bytes, NULL));
}

void uf_op_attention_forward(struct uf_device *d, const struct uf_tensor *q,
                             const struct uf_tensor *k, const struct uf_tensor *v,
                             const struct uf_tensor *lengths, int B, int T, int H, int KV, int hd,
                             int window, struct uf_tensor *o, struct uf_tensor *lse) {
    check_dims(d, B, T, H, KV, hd, window);
    int64_t N = (int64_t)B * T;
    check_tensor(q, "q", UF_F32, N * H * hd);
    check_tensor(k, "k", UF_F32, N * KV * hd);
    check_tensor(v, "v", UF_F32, N * KV * hd);
    check_tensor(lengths, "lengths", UF_I32, B);
    check_tensor(o, "o", UF_F32, N * H * hd);
    check_tensor(lse, "lse", UF_F32, (int64_t)B * H * T);
    int hdp = (hd + UF_ATTN_VW - 1) / UF_ATTN_VW * UF_ATTN_VW;
    int bq = group_size(d), bk = key_tile(d, hdp);
    float scale = 1.0f / sqrtf((float)hd);

    cl_kernel kr = uf_device_kernel(d, "attention.cl", "uf_attn_fwd");
    cl_uint a = 0;
    set_mem(kr, &a, q), set_mem(kr, &a, k), set_mem(kr, &a, v), set_mem(kr, &a, lengths);
    set_mem(kr, &a, o), set_mem(kr, &a, lse);
    set_int(kr, &a, T), set_int(kr, &a, H), set_int(kr, &a, KV), set_int(kr, &a, hd);
    set_int(kr, &a, window);
    UF_CL(clSetKernelArg(kr, a++, sizeof scale, &scale));
    set_int(kr, &a, bk);
    set_local(kr, &a, (size_t)bk * hdp * 4), set_local(kr, &a, (size_t)bk * hdp * 4);
    size_t global[3] = {(size_t)(T + bq - 1) / bq * bq, (size_t)H, (size_t)B};
    size_t local[3] = {(size_t)bq, 1, 1};
    uf_device_run(d, kr, 3, global, local);
}

void uf_op_attention_backward(struct uf_device *d, const struct uf_tensor *q,
                              const struct uf_tensor *k, const struct uf_tensor *v,
                              const struct uf_tensor *lengths, int B, int T, int H, int KV, int hd,
                              int window, const struct uf_tensor *o, const struct uf_tensor *lse,
                              const struct uf_tensor *dout, struct uf_tensor *dq,
                              struct uf_tensor *dk, struct uf_tensor *dv) {
    check_dims(d, B, T, H, KV, hd, window);
    int64_t N = (int64_t)B * T;
    check_tensor(q, "q", UF_F32, N * H * hd);
    check_tensor(k, "k", UF_F32, N * KV * hd);
    check_tensor(v, "v", UF_F32, N * KV * hd);
    check_tensor(lengths, "lengths", UF_I32, B);
    check_tensor(o, "o", UF_F32, N * H * hd);
    check_tensor(lse, "lse", UF_F32, (int64_t)B * H * T);
    check_tensor(dout, "dout", UF_F32, N * H * hd);
    check_tensor(dq, "dq", UF_F32, N * H * hd);
    check_tensor(dk, "dk", UF_F32, N * KV * hd);
    check_tensor(dv, "dv", UF_F32, N * KV * hd);
    int hdp = (hd + UF_ATTN_VW - 1) / UF_ATTN_VW * UF_ATTN_VW;
    int bq = group_size(d), bk = key_tile(d, hdp);
    float scale = 1.0f / sqrtf((float)hd);

    /* dq: one work-item per query row */
    cl_kernel kq = uf_device_kernel(d, "attention.cl", "uf_attn_bwd_dq");
    cl_uint a = 0;
    set_mem(kq, &a, q), set_mem(kq, &a, k), set_mem(kq, &a, v), set_mem(kq, &a, lengths);
    set_mem(kq, &a, o), set_mem(kq, &a, lse), set_mem(kq, &a, dout), set_mem(kq, &a, dq);
    set_int(kq, &a, T), set_int(kq, &a, H), set_int(kq, &a, KV), set_int(kq, &a, hd);
    set_int(kq, &a, window);
    UF_CL(clSetKernelArg(kq, a++, sizeof scale, &scale));
    set_int(kq, &a, bk);
    set_local(kq, &a, (size_t)bk * hdp * 4), set_local(kq, &a, (size_t)bk * hdp * 4);
    size_t gq[3] = {(size_t)(T + bq - 1) / bq * bq, (size_t)H, (size_t)B};
    size_t lq[3] = {(size_t)bq, 1, 1};
    uf_device_run(d, kq, 3, gq, lq);

    /* dk, dv: one work-item per key row; the group's query tile is as tall as the group */
    int bkk = bq;
    while (bkk > 8 && (size_t)(2 * bkk * hdp * 4 + 2 * bkk * 4) > d->local_mem / 2) bkk /= 2;
    cl_kernel kk = uf_device_kernel(d, "attention.cl", "uf_attn_bwd_dkdv");
    a = 0;
    set_mem(kk, &a, q), set_mem(kk, &a, k), set_mem(kk, &a, v), set_mem(kk, &a, lengths);
    set_mem(kk, &a, o), set_mem(kk, &a, lse), set_mem(kk, &a, dout), set_mem(kk, &a, dk);
    set_mem(kk, &a, dv);
    set_int(kk, &a, T), set_int(kk, &a, H), set_int(kk, &a, KV), set_int(kk, &a, hd);
    set_int(kk, &a, window);
    UF_CL(clSetKernelArg(kk, a++, sizeof scale, &scale));
    set_local(kk, &a, (size_t)bkk * hdp * 4), set_local(kk, &a, (size_t)bkk * hdp * 4);
    set_local(kk, &a, (size_t)bkk * 4), set_local(kk, &a, (size_t)bkk * 4);
    size_t gk[3] = {(size_t)(T + bkk - 1) / bkk * bkk, (size_t)KV, (size_t)B};
    size_t lk[3] = {(size_t)bkk, 1, 1};
    uf_device_run(d, kk, 3, gk, lk);
}
