/* attention.c: host launchers of the attention ops of ops.h (kernels in opencl/attention.cl).
 * Checks every shape against (B, T, H, KV, hd) and exits with a message naming the tensor when
 * one disagrees (a caller bug, not a data error). No host sync. Kernel instance by head_dim: rows
 * padded to 32, 64, 128 or 256 floats; each uses two (D, BK) tiles of local memory (16 or 32 KiB).
 * Backward, two forms (same results up to rounding, each deterministic):
 *   GEMM form (when a (T, T) pair of P and dS fits UF_ATTN_GEMM_BUDGET = 64 MiB, T <= 2896):
 *     uf_attn_bwd_pds writes P and scaled dS for as many (sequence, head) pairs as the budget
 *     holds into the device scratch buffer (uf_device_scratch), then batched uf_gemm calls give
 *     dq, dk, dv. 1.5x less CPU time than the tile kernels at B8 T256 hd64 (PoCL, Zen 4).
 *   tile kernels (longer T, or UNFORGET_ATTN_BWD=kernels): uf_attn_bwd_dq and
 *     uf_attn_bwd_dkdv, memory linear in T; they recompute D = rowsum(dO * O) where needed.
 * Two kernel variants, by uf_ops_cpu_path (ops.h):
 *   CPU path: attention.cl (one work-item per query row, vectors in private memory); the
 *     backward in the GEMM form when it fits, else the tile kernels (as above).
 *   GPU path: attention_gpu.cl (work-group cooperative tiles in local memory, 128 work-items per
 *     group, at most 29 KiB of local memory at every head_dim); the backward is always its
 *     tile kernels (dq first, which also writes Delta = rowsum(dO * O) into B*H*T floats of the
 *     device scratch for dk/dv), unless UNFORGET_ATTN_BWD=gemm (uf_attn_bwd_form = 1) asks for
 *     the GEMM form. A device that cannot run 128 work-items per group (or the kernel's local
 *     memory) gets the CPU variant's kernels, which take any group size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"

#include "ops/ops.h"
#include "core/util.h"

enum { UF_ATTN_HD_MAX = 256, UF_ATTN_GROUP = 64 };

static int padded_hd(int hd) { return hd <= 32 ? 32 : hd <= 64 ? 64 : hd <= 128 ? 128 : 256; }
/* Tile height of an instance: UF_ATTN_BK in attention.cl. */
static int tile_rows(int hdp) { return hdp <= 64 ? 64 : hdp == 128 ? 32 : 16; }

static void check_tensor(const struct uf_tensor *t, const char *what, enum uf_dtype dtype,
                         int64_t numel) {
    if (!t) uf_fatal(1, "attention: %s is NULL", what);
    if (t->dtype != dtype || t->numel != numel)
        uf_fatal(1, "attention: %s (%s) has %lld %s elements, expected %lld %s", what, t->name,
                 (long long)t->numel, uf_dtype_name(t->dtype), (long long)numel,
                 uf_dtype_name(dtype));
}

static void check_dims(int B, int T, int H, int KV, int hd, int window) {
    if (B < 1 || T < 1 || H < 1 || KV < 1 || H % KV != 0)
        uf_fatal(1, "attention: bad shape B=%d T=%d H=%d KV=%d (all >= 1, KV divides H)", B, T, H, KV);
    if (hd < 1 || hd > UF_ATTN_HD_MAX)
        uf_fatal(1, "attention: head_dim %d outside 1..%d", hd, UF_ATTN_HD_MAX);
    if (window < 0) uf_fatal(1, "attention: sliding window %d < 0 (0 = off)", window);
}

/* The CPU variant's forward and GEMM-form kernels need two (D, BK) tiles of local memory. */
static void check_local(struct uf_device *d, int hd) {
    int hdp = padded_hd(hd);
    size_t need = (size_t)2 * tile_rows(hdp) * hdp * sizeof(float); /* two (D, BK) tiles */
    if (need > d->local_mem)
        uf_fatal(1, "attention: head_dim %d needs %zu KiB of local memory, %s has %zu KiB", hd,
                 need / 1024, d->name, (size_t)d->local_mem / 1024);
}

/* Work-group size: UF_ATTN_GROUP capped by the device's and the kernel's limits (a GPU may
 * allow fewer work-items for a kernel with many registers). The kernels take any size. */
static int group_size(struct uf_device *d, cl_kernel k) {
    size_t kmax = 0;
    UF_CL(clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
    int n = UF_ATTN_GROUP;
    while (n > 1 && ((size_t)n > d->max_wg || (size_t)n > kmax)) n /= 2;
    return n;
}

/* Kernel arguments (core/device.h): a tensor is its buffer and element offset; ATTN_DIMS is the
 * scalar tail T, H, KV, hd, window, scale shared by all the kernels. */
#define T_ UF_ARG_TENSOR
#define ATTN_DIMS(T, H, KV, hd, window)                                                     \
    UF_ARG_I32(T), UF_ARG_I32(H), UF_ARG_I32(KV), UF_ARG_I32(hd), UF_ARG_I32(window),       \
        UF_ARG_F32(1.0f / sqrtf((float)(hd)))

static cl_kernel get_kernel(struct uf_device *d, const char *base, int hdp) {
    char name[64];
    snprintf(name, sizeof name, "%s_d%d", base, hdp);
    return uf_device_kernel(d, "attention.cl", name);
}

/* ---- GPU variant (attention_gpu.cl) -------------------------------------------------------- */
enum { UF_ATTN_GPU_WG = 128 }; /* the kernels' reqd_work_group_size */

struct uf_attn_gpu_tiles uf_attn_gpu_tiles(int hd) {
    int D = padded_hd(hd);
    struct uf_attn_gpu_tiles t = {D, D == 32 ? 64 : D == 64 ? 32 : D == 128 ? 16 : 8,
                                  D <= 64 ? 32 : D == 128 ? 16 : 8,
                                  D <= 64 ? 32 : D == 128 ? 16 : 8,
                                  D == 32 ? 32 : D == 64 ? 16 : D == 128 ? 8 : 4};
    return t;
}

/* The GPU kernel `base`_gpu_d`hdp` when ops on d take the GPU path and d runs it (128 work-items
 * per group, its local memory), else NULL: the caller uses the CPU variant. */
static cl_kernel gpu_kernel(struct uf_device *d, const char *base, int hdp) {
    if (uf_ops_cpu_path(d) || d->max_wg < UF_ATTN_GPU_WG) return NULL;
    char name[64];
    snprintf(name, sizeof name, "%s_gpu_d%d", base, hdp);
    cl_kernel k = uf_device_kernel(d, "attention_gpu.cl", name);
    size_t kmax = 0;
    cl_ulong lmem = 0;
    UF_CL(clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax, &kmax, NULL));
    UF_CL(clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL));
    if (kmax < UF_ATTN_GPU_WG || lmem > d->local_mem) {
        uf_log(2, "attention: %s needs 128 work-items and %llu bytes of local memory (%s allows %zu "
               "and %llu): the CPU variant's kernels run instead\n", name, (unsigned long long)lmem,
               d->name, kmax, (unsigned long long)d->local_mem);
        return NULL;
    }
    return k;
}

void uf_op_attention_forward(struct uf_device *d, const struct uf_tensor *q,
                             const struct uf_tensor *k, const struct uf_tensor *v,
                             const struct uf_tensor *lengths, int B, int T, int H, int KV, int hd,
                             int window, struct uf_tensor *o, struct uf_tensor *lse) {
    check_dims(B, T, H, KV, hd, window);
    int64_t N = (int64_t)B * T;
    check_tensor(q, "q", UF_F32, N * H * hd);
    check_tensor(k, "k", UF_F32, N * KV * hd);
    check_tensor(v, "v", UF_F32, N * KV * hd);
    check_tensor(lengths, "lengths", UF_I32, B);
    check_tensor(o, "o", UF_F32, N * H * hd);
    check_tensor(lse, "lse", UF_F32, (int64_t)B * H * T);
    int hdp = padded_hd(hd), bk = tile_rows(hdp);
    cl_kernel kg = gpu_kernel(d, "uf_attn_fwd", hdp);
    if (kg) {
        int bq = uf_attn_gpu_tiles(hd).fwd_bq;
        size_t global[3] = {(size_t)(T + bq - 1) / bq * UF_ATTN_GPU_WG, (size_t)H, (size_t)B};
        size_t local[3] = {UF_ATTN_GPU_WG, 1, 1};
        UF_LAUNCH(d, kg, 3, global, local, T_(q), T_(k), T_(v), T_(lengths), T_(o), T_(lse),
                  ATTN_DIMS(T, H, KV, hd, window));
        return;
    }
    check_local(d, hd);
    cl_kernel kr = get_kernel(d, "uf_attn_fwd", hdp);
    int bq = group_size(d, kr);
    size_t global[3] = {(size_t)(T + bq - 1) / bq * bq, (size_t)H, (size_t)B};
    size_t local[3] = {(size_t)bq, 1, 1};
    UF_LAUNCH(d, kr, 3, global, local, T_(q), T_(k), T_(v), T_(lengths), T_(o), T_(lse),
              ATTN_DIMS(T, H, KV, hd, window), UF_ARG_LOCAL((size_t)bk * hdp * 4),
              UF_ARG_LOCAL((size_t)bk * hdp * 4));
}

/* ---- backward through GEMMs --------------------------------------------------------------- */
/* Bytes of device scratch the GEMM form of the backward may use for its P and dS matrices. */
#define UF_ATTN_GEMM_BUDGET ((size_t)64 << 20)

/* The GEMM form needs one (T, T) pair of P and dS per (sequence, head) in the budget; longer
 * sequences use the tile kernels (memory linear in T). UNFORGET_ATTN_BWD=kernels forces the
 * kernels (tests of that path), =gemm the GEMM form whenever it fits. On the GPU path the
 * default is the tile kernels (attention_gpu.cl), the GEMM form only when asked for. */
int uf_attn_bwd_form = 0;

static int use_gemm_backward(struct uf_device *d, int T) {
    const char *e = getenv("UNFORGET_ATTN_BWD");
    int form = uf_attn_bwd_form;
    if (form == 0 && e) form = strcmp(e, "kernels") == 0 ? 2 : strcmp(e, "gemm") == 0 ? 1 : 0;
    if (form == 2 || (form == 0 && !uf_ops_cpu_path(d))) return 0;
    return (size_t)T * T * 2 * sizeof(float) <= UF_ATTN_GEMM_BUDGET;
}

/* For nb sequences and nh heads at a time (as many as the budget holds): one kernel writes
 * P (nh, nb, T, T) and dS (scaled) for them, then per head three batched GEMMs over the nb
 * sequences: dq += dS K, dk += dS^T Q, dv += P^T dO (heads in order: deterministic with GQA).
 * From T = 256 the products run in blocks of 128 rows that skip the upper triangle (3/4 of the
 * square at T = 256), else over whole (T, T) squares; either way at GEMM speed. The zeros of P and
 * dS mask what is invisible inside the products, so the inputs must be finite. */
static void backward_gemm(struct uf_device *d, const struct uf_tensor *q, const struct uf_tensor *k,
                          const struct uf_tensor *v, const struct uf_tensor *lengths, int B, int T,
                          int H, int KV, int hd, int window, const struct uf_tensor *o,
                          const struct uf_tensor *lse, const struct uf_tensor *dout,
                          struct uf_tensor *dq, struct uf_tensor *dk, struct uf_tensor *dv) {
    size_t TT = (size_t)T * T, budget = UF_ATTN_GEMM_BUDGET / (2 * sizeof(float)); /* floats per matrix set */
    int hc, bc;
    if ((size_t)H * TT <= budget) {
        hc = H;
        bc = (int)UF_MIN((size_t)B, budget / ((size_t)H * TT));
    } else {
        hc = (int)UF_MAX((size_t)1, budget / TT);
        bc = 1;
    }
    size_t set = (size_t)hc * bc * TT; /* floats of P (and of dS) */
    cl_mem scr = uf_device_scratch(d, 2 * set * sizeof(float));
    int hdp = padded_hd(hd), bt = tile_rows(hdp), R = H / KV;
    cl_kernel kr = get_kernel(d, "uf_attn_bwd_pds", hdp);
    int gs = group_size(d, kr);
    struct uf_tensor P = {0}, S = {0};
    P.buf = S.buf = scr;
    P.offset = 0, S.offset = set;
    size_t qld = (size_t)H * hd, kld = (size_t)KV * hd;
    size_t rb = T >= 256 ? 128 : (size_t)T; /* row block of the products (causal skipping) */
    for (int b0 = 0; b0 < B; b0 += bc) {
        int nb = UF_MIN(bc, B - b0);
        for (int h0 = 0; h0 < H; h0 += hc) {
            int nh = UF_MIN(hc, H - h0);
            size_t gl[3] = {(size_t)(T + gs - 1) / gs * gs, (size_t)nh, (size_t)nb};
            size_t lc[3] = {(size_t)gs, 1, 1};
            UF_LAUNCH(d, kr, 3, gl, lc, T_(q), T_(k), T_(v), T_(lengths), T_(o), T_(lse), T_(dout),
                      T_(&P), T_(&S), ATTN_DIMS(T, H, KV, hd, window), UF_ARG_I32(h0),
                      UF_ARG_I32(b0), UF_ARG_LOCAL((size_t)bt * hdp * 4),
                      UF_ARG_LOCAL((size_t)bt * hdp * 4));
            for (int hh = 0; hh < nh; hh++) {
                int h = h0 + hh, g = h / R;
                size_t pm = (size_t)hh * nb * TT; /* (b, h) matrices of this head */
                size_t qo = q->offset + (size_t)b0 * T * qld + (size_t)h * hd;
                size_t doo = dout->offset + (size_t)b0 * T * qld + (size_t)h * hd;
                size_t dqo = dq->offset + (size_t)b0 * T * qld + (size_t)h * hd;
                size_t ko = k->offset + (size_t)b0 * T * kld + (size_t)g * hd;
                size_t dko = dk->offset + (size_t)b0 * T * kld + (size_t)g * hd;
                size_t dvo = dv->offset + (size_t)b0 * T * kld + (size_t)g * hd;
                /* in blocks of rb rows: dS and P are lower triangular, so query rows
                 * [r0, r1) need keys [0, r1) and key rows [r0, r1) queries [r0, T) */
                for (size_t r0 = 0; r0 < (size_t)T; r0 += rb) {
                    size_t r1 = UF_MIN((size_t)T, r0 + rb), mr = r1 - r0;
                    /* dq[r0:r1] (mr, hd) += dS[r0:r1, 0:r1] K[0:r1] */
                    uf_gemm_batched(d, false, false, mr, (size_t)hd, r1, 1.0f, scr,
                                    set + pm + r0 * T, (size_t)T, TT, k->buf, ko, kld,
                                    (size_t)T * kld, 1.0f, dq->buf, dqo + r0 * qld, qld,
                                    (size_t)T * qld, (size_t)nb);
                    /* dk[r0:r1] += dS[r0:T, r0:r1]^T Q[r0:T] */
                    uf_gemm_batched(d, true, false, mr, (size_t)hd, (size_t)T - r0, 1.0f, scr,
                                    set + pm + r0 * T + r0, (size_t)T, TT, q->buf, qo + r0 * qld,
                                    qld, (size_t)T * qld, 1.0f, dk->buf, dko + r0 * kld, kld,
                                    (size_t)T * kld, (size_t)nb);
                    /* dv[r0:r1] += P[r0:T, r0:r1]^T dO[r0:T] */
                    uf_gemm_batched(d, true, false, mr, (size_t)hd, (size_t)T - r0, 1.0f, scr,
                                    pm + r0 * T + r0, (size_t)T, TT, dout->buf, doo + r0 * qld,
                                    qld, (size_t)T * qld, 1.0f, dv->buf, dvo + r0 * kld, kld,
                                    (size_t)T * kld, (size_t)nb);
                }
            }
        }
    }
}

void uf_op_attention_backward(struct uf_device *d, const struct uf_tensor *q,
                              const struct uf_tensor *k, const struct uf_tensor *v,
                              const struct uf_tensor *lengths, int B, int T, int H, int KV, int hd,
                              int window, const struct uf_tensor *o, const struct uf_tensor *lse,
                              const struct uf_tensor *dout, struct uf_tensor *dq,
                              struct uf_tensor *dk, struct uf_tensor *dv) {
    check_dims(B, T, H, KV, hd, window);
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
    int hdp = padded_hd(hd), bt = tile_rows(hdp);
    if (use_gemm_backward(d, T)) {
        check_local(d, hd);
        backward_gemm(d, q, k, v, lengths, B, T, H, KV, hd, window, o, lse, dout, dq, dk, dv);
        return;
    }
    cl_kernel kgq = gpu_kernel(d, "uf_attn_bwd_dq", hdp);
    cl_kernel kgk = kgq ? gpu_kernel(d, "uf_attn_bwd_dkdv", hdp) : NULL;
    if (kgk) { /* GPU variant: dq (and Delta into the scratch), then dk, dv */
        cl_mem delta = uf_device_scratch(d, (size_t)B * H * T * sizeof(float)); /* (B, H, T) */
        int rows = uf_attn_gpu_tiles(hd).bwd_rows;
        size_t blocks = (size_t)(T + rows - 1) / rows;
        size_t g1[3] = {blocks * UF_ATTN_GPU_WG, (size_t)H, (size_t)B};
        size_t g2[3] = {blocks * UF_ATTN_GPU_WG, (size_t)KV, (size_t)B};
        size_t lg[3] = {UF_ATTN_GPU_WG, 1, 1};
        UF_LAUNCH(d, kgq, 3, g1, lg, T_(q), T_(k), T_(v), T_(lengths), T_(o), T_(lse), T_(dout),
                  T_(dq), UF_ARG_MEM(delta), ATTN_DIMS(T, H, KV, hd, window));
        UF_LAUNCH(d, kgk, 3, g2, lg, T_(q), T_(k), T_(v), T_(lengths), T_(lse), T_(dout), T_(dk),
                  T_(dv), UF_ARG_MEM(delta), ATTN_DIMS(T, H, KV, hd, window));
        return;
    }
    check_local(d, hd);

    /* dq: one work-item per query row, K and V tiles */
    cl_kernel kq = get_kernel(d, "uf_attn_bwd_dq", hdp);
    int gs = group_size(d, kq);
    size_t gq[3] = {(size_t)(T + gs - 1) / gs * gs, (size_t)H, (size_t)B};
    size_t lq[3] = {(size_t)gs, 1, 1};
    UF_LAUNCH(d, kq, 3, gq, lq, T_(q), T_(k), T_(v), T_(lengths), T_(o), T_(lse), T_(dout), T_(dq),
              ATTN_DIMS(T, H, KV, hd, window), UF_ARG_LOCAL((size_t)bt * hdp * 4),
              UF_ARG_LOCAL((size_t)bt * hdp * 4));

    /* dk, dv: one work-item per key row, Q and dO tiles (+ their lse and D) */
    if ((size_t)2 * bt * (hdp + 1) * sizeof(float) > d->local_mem)
        uf_fatal(1, "attention: the tile-kernel backward at head_dim %d needs %zu bytes of local "
                 "memory, %s has %zu", hd, (size_t)2 * bt * (hdp + 1) * sizeof(float), d->name,
                 (size_t)d->local_mem);
    cl_kernel kk = get_kernel(d, "uf_attn_bwd_dkdv", hdp);
    int gk_ = group_size(d, kk);
    size_t gk[3] = {(size_t)(T + gk_ - 1) / gk_ * gk_, (size_t)KV, (size_t)B};
    size_t lk[3] = {(size_t)gk_, 1, 1};
    UF_LAUNCH(d, kk, 3, gk, lk, T_(q), T_(k), T_(v), T_(lengths), T_(o), T_(lse), T_(dout), T_(dk),
              T_(dv), ATTN_DIMS(T, H, KV, hd, window), UF_ARG_LOCAL((size_t)bt * hdp * 4),
              UF_ARG_LOCAL((size_t)bt * hdp * 4), UF_ARG_LOCAL((size_t)bt * 4),
              UF_ARG_LOCAL((size_t)bt * 4));
}
