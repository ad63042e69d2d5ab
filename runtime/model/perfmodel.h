/* perfmodel.h: a performance model on paper of one training step. From the shapes alone (no
 * device): FLOPs, bytes moved to and from device memory, and kernel launches of every kernel
 * the engine launches in one step (uf_model_zero_grad, uf_model_forward, uf_model_backward,
 * uf_optim_step, as `unforget bench` runs them), summed per kernel family; and a roofline over a
 * device's peaks (compute FLOP/s, memory bytes/s) that predicts each family's time, the step
 * time, tokens/s and MFU. `unforget bench --roofline GPU` prints it for the GPUs of
 * uf_perf_devices; `--roofline here` checks it against the profile measured on this device.
 *
 * Counting rules (the README's Performance section lists them with the results):
 *   - FLOPs are what the kernels execute: a multiply-add is 2, exp / sqrt / division 1 each;
 *     attention counts its padded head rows (head_dim rounded up to 32, 64, 128 or 256) and whole
 *     key tiles up to the diagonal, as attention.cl (CPU variant) or attention_gpu.cl (GPU
 *     variant, per block of rows; setup.gpu_kernels) computes them; integer and index work is 0.
 *   - Bytes are compulsory traffic per launch: every input read once, every output written once
 *     (read too when the kernel accumulates into it); re-reads that a cache of a few MiB holds
 *     (a K/V tile, a packed GEMM panel, a softmax row) are not counted.
 *   - A launch costs max(FLOPs / peak, bytes / bandwidth); the GEMM family runs at the GEMM peak,
 *     everything else at the vector peak. Launch latency is not in the roofline time
 *     (uf_perf_predict reports the launch count; the CLI prints an estimate beside it).
 * model.c / optim.c / attention.c change -> uf_perf_step_build changes with them:
 * tests/test_perfmodel.c checks the launches per family and the GEMM FLOPs against a profiled
 * step on the device. */
#ifndef UF_PERFMODEL_H
#define UF_PERFMODEL_H

#include <stdint.h>

#include "core/model_config.h"

enum uf_perf_family {
    UF_PF_GEMM = 0,   /* uf_gemm_* / CLBlast: linears, LM head, attention-backward products */
    UF_PF_ATTN_FWD,   /* uf_attn_fwd_d* */
    UF_PF_ATTN_BWD,   /* uf_attn_bwd_* (the P/dS kernel of the GEMM form, or the tile kernels) */
    UF_PF_NORM_FWD,   /* uf_rmsnorm_forward* */
    UF_PF_NORM_BWD,   /* uf_rmsnorm_backward* (dx, dw partial sums, dw sum) */
    UF_PF_ROPE,       /* uf_rope* forward and backward */
    UF_PF_ACT_FWD,    /* uf_gated_forward* */
    UF_PF_ACT_BWD,    /* uf_gated_backward* */
    UF_PF_DROPOUT,    /* uf_dropout (LoRA input dropout) */
    UF_PF_EMBED_FWD,  /* uf_embed_forward* */
    UF_PF_EMBED_BWD,  /* uf_embed_links, uf_embed_backward */
    UF_PF_LOSS,       /* uf_cross_entropy* (forward and gradient fused) */
    UF_PF_REDUCE,     /* uf_reduce_*: the loss sum and the gradient norm */
    UF_PF_ADAMW,      /* uf_adamw*, uf_clip_*, uf_nonfinite_guard */
    UF_PF_TENSOR,     /* uf_fill_*, uf_axpby_f32, uf_bf16_to_f32 / uf_f32_to_bf16, copy_buffer */
    UF_PF_N
};
const char *uf_perf_family_name(enum uf_perf_family f); /* "gemm", "attn_fwd", ... */
/* The family of a profiled kernel name (uf_device_profile_rows); UF_PF_N when unknown. */
enum uf_perf_family uf_perf_family_of_kernel(const char *kernel);

struct uf_perf_cost {
    double flops, bytes, launches;
};

/* ---- one function per kernel family: the cost of one call from its shapes ----------------
 * All tensors are f32 unless a byte size says otherwise. */
/* C (m, n) = op(A) op(B) (+ C when beta), batch products; b_bytes 4 (f32) or 2 (bf16 B). own:
 * the project's kernels (packing B, and A when ta, into panels: extra traffic and launches,
 * chunked by the scratch limit); else one CLBlast launch with compulsory traffic only. */
struct uf_perf_cost uf_perf_gemm(int own, int ta, int tb, int64_t m, int64_t n, int64_t k,
                                 int64_t batch, int b_bytes, int beta, int64_t scratch_limit);
struct uf_perf_cost uf_perf_attn_fwd(int B, int T, int H, int KV, int hd);
/* one uf_attn_bwd_pds launch over nb sequences and nh heads: writes dense (T, T) P and dS */
struct uf_perf_cost uf_perf_attn_bwd_pds(int nb, int nh, int T, int hd);
/* the tile-kernel backward (uf_attn_bwd_dq + uf_attn_bwd_dkdv), T > 2896 */
struct uf_perf_cost uf_perf_attn_bwd_tiles(int B, int T, int H, int KV, int hd);
/* the GPU variant (opencl/attention_gpu.cl): forward; backward (dq with Delta, then dk/dv) */
struct uf_perf_cost uf_perf_attn_fwd_gpu(int B, int T, int H, int KV, int hd);
struct uf_perf_cost uf_perf_attn_bwd_gpu(int B, int T, int H, int KV, int hd);
struct uf_perf_cost uf_perf_rmsnorm_fwd(int64_t N, int64_t D);
struct uf_perf_cost uf_perf_rmsnorm_bwd(int64_t N, int64_t D, int dw);
struct uf_perf_cost uf_perf_rope(int64_t N, int nh, int hd, int backward);
struct uf_perf_cost uf_perf_act_fwd(int64_t n, int gelu);
struct uf_perf_cost uf_perf_act_bwd(int64_t n, int gelu);
struct uf_perf_cost uf_perf_dropout(int64_t n, int backward);
struct uf_perf_cost uf_perf_embed_fwd(int64_t N, int64_t D, int table_bytes);
struct uf_perf_cost uf_perf_embed_bwd(int64_t N, int64_t D);
struct uf_perf_cost uf_perf_cross_entropy(int64_t N, int64_t V, int grad);
struct uf_perf_cost uf_perf_reduce(int64_t n, int square);
struct uf_perf_cost uf_perf_adamw(int64_t n);
struct uf_perf_cost uf_perf_fill(int64_t n);
struct uf_perf_cost uf_perf_axpby(int64_t n);
struct uf_perf_cost uf_perf_copy(int64_t n);    /* n f32 elements, copy_buffer */
struct uf_perf_cost uf_perf_convert(int64_t n); /* n bf16 -> f32 */

/* ---- one training step ---------------------------------------------------------------------- */
struct uf_perf_setup {
    struct uf_model_config cfg;
    int B, T;                 /* micro-batch of B sequences of T tokens (all of length T) */
    int lora_rank;            /* 0: full fine-tuning */
    float lora_dropout;
    unsigned lora_targets;    /* UF_LORA_TARGET bits (0 = all) */
    int bf16_base;            /* UF_MODEL_BF16_BASE (needs LoRA) */
    int checkpointing;        /* activation checkpointing */
    int attn_bwd_tiles;       /* 1: the tile-kernel attention backward at any T
                                 (UNFORGET_ATTN_BWD=kernels); 0: as attention.c picks by T */
    int gpu_kernels;          /* 1: the GPU kernel variants (ops.h uf_ops_cpu_path 0): attention
                                 is attention_gpu.cl, its backward always the tile kernels */
    float weight_decay;       /* > 0 splits AdamW into decayed / undecayed segments */
    int own_gemm[4];          /* per layout ta + 2 tb: 1 = own kernels, 0 = CLBlast */
    int64_t scratch_limit;    /* the GEMM packing / widening buffer; 0 = default */
};
/* Defaults: full fine-tuning, weight decay 0.01 (as bench), own GEMM kernels everywhere. */
void uf_perf_setup_defaults(struct uf_perf_setup *s, const struct uf_model_config *c, int B, int T);

struct uf_perf_op {
    enum uf_perf_family family;
    struct uf_perf_cost cost;
};
struct uf_perf_step {
    struct uf_perf_op *ops; /* every launch group of the step, in order */
    int n, cap;
    double gemm_flops;      /* FLOPs of all uf_gemm calls (uf_gemm_flops_issued per step) */
};
/* Walks one step as model.c and optim.c run it. 0, or uf_fail on an invalid setup. */
int uf_perf_step_build(const struct uf_perf_setup *s, struct uf_perf_step *st);
void uf_perf_step_free(struct uf_perf_step *st);
/* Model FLOPs of one step, the MFU numerator: full fine-tuning uf_model_flops_per_token (6N +
 * 6 L C T per token); LoRA 4 N + 6 N_lora + 6 L C T per token (forward and input gradients
 * through the frozen base, all three for the adapters). No recomputation, no padding. */
double uf_perf_model_flops(const struct uf_perf_setup *s);

/* ---- roofline --------------------------------------------------------------------------------- */
struct uf_perf_peaks {
    double gemm;   /* FLOP/s of the GEMM family */
    double vector; /* FLOP/s of every other family */
    double bw;     /* bytes/s of device memory */
};
struct uf_perf_row {
    double flops, bytes, launches;
    double time;     /* seconds: sum over launches of max(compute, memory) */
    double time_mem; /* the part of time in memory-bound launches */
};
struct uf_perf_pred {
    struct uf_perf_row fam[UF_PF_N];
    struct uf_perf_row total;
};
void uf_perf_predict(const struct uf_perf_step *st, const struct uf_perf_peaks *p,
                     struct uf_perf_pred *out);

/* Public peak figures of named GPUs (vendor data sheets; README lists the sources). */
struct uf_perf_device {
    const char *name;   /* "NVIDIA H200 SXM" */
    const char *key;    /* matched case-insensitively as a substring: "h200" */
    double fp32;        /* TFLOP/s, fp32 vector (non-matrix) FMA */
    double matrix;      /* TFLOP/s, dense fp16/bf16 matrix units (no sparsity) */
    double bw;          /* GB/s, device memory */
    const char *memory; /* "141 GB HBM3e" */
};
extern const struct uf_perf_device uf_perf_devices[];
extern const int uf_perf_n_devices;
/* The device whose key or name contains `name` (case-insensitive; either way round for the
 * name, so an OpenCL device name finds its entry), or NULL. */
const struct uf_perf_device *uf_perf_device_find(const char *name);

#endif
