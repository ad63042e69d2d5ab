/* cmd_bench.c: `unforget bench`: trains a named or explicit config for N steps on random tokens
 * and prints throughput (tokens/s), achieved GFLOP/s with llm.c's accounting
 * (uf_perf_model_flops: 6N + 6*L*C*T per token; with LoRA 4N + 6N_lora + 6*L*C*T, the frozen
 * base has no weight gradients), MFU against the device's fp32 peak (a
 * table of known GPUs, else a GEMM peak measured here with uf_gemm), and device memory split
 * into parameters, gradients, optimizer state and activations, plus CPU time per step (on CPU
 * devices) and the process's peak RSS. --profile adds per-kernel device time and, per kernel
 * family, the FLOPs and bytes of the performance model (model/perfmodel.h) beside it.
 * --roofline GPU predicts the step on a named GPU from its peaks (no device needed);
 * --roofline here measures this device's GEMM peak and memory bandwidth and prints the
 * prediction beside the profile. The PyTorch peer is tests/bench_torch.py;
 * tests/bench_vs_torch.sh runs both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/device.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "methods/methods.h"
#include "recipe.h"
#include "model/model.h"
#include "model/optim.h"
#include "model/perfmodel.h"
#include "formats/safetensors.h"
#include "core/util.h"

/* ---- device fp32 peaks (non-tensor-core FMA throughput, TFLOP/s, vendor data sheets) ------
 * The GPUs of the performance model (uf_perf_devices) first, then these. */
static const struct { const char *name; double tflops; } peaks[] = {
    {"H100 PCIe", 51.2}, {"H100", 66.9}, {"GH200", 66.9}, {"V100", 15.7},
    {"L40S", 91.6},      {"L40", 90.5},  {"L4", 30.3},    {"A10G", 31.2},
    {"A10", 31.2},       {"T4", 8.1},    {"RTX 4090", 82.6}, {"RTX 3090", 35.6},
    {"MI210", 22.6},
};

static double table_peak(const char *dev_name) {
    const struct uf_perf_device *pd = uf_perf_device_find(dev_name);
    if (pd) return pd->fp32 * 1e12;
    for (size_t i = 0; i < UF_ARRAY_LEN(peaks); i++) {
        const char *n = peaks[i].name;
        size_t len = strlen(n);
        for (const char *p = dev_name; *p; p++)
            if (strncasecmp(p, n, len) == 0) return peaks[i].tflops * 1e12;
    }
    return 0;
}

/* Seconds of the fastest and of the median of 6 runs (after a warm-up run that builds kernels):
 * on a machine shared with other jobs the best run estimates the device's peak, the median what
 * the kernels got in the same minute. */
struct timing {
    double best, median;
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct timing time_runs(struct uf_device *d, void (*fn)(void *), void *arg) {
    double t[7];
    for (int i = 0; i < 7; i++) {
        uf_device_finish(d);
        double t0 = uf_time_now();
        fn(arg);
        uf_device_finish(d);
        t[i] = uf_time_now() - t0;
    }
    qsort(t + 1, 6, sizeof *t, cmp_double);
    return (struct timing){t[1], 0.5 * (t[3] + t[4])};
}

struct peak_job {
    struct uf_device *d;
    size_t S;
    struct uf_tensor a, b, c;
};

static void peak_gemm_run(void *arg) {
    struct peak_job *j = arg;
    uf_gemm(j->d, false, false, j->S, j->S, j->S, 1.0f, j->a.buf, 0, j->S, j->b.buf, 0, j->S, 0.0f,
            j->c.buf, 0, j->S);
}

/* A large square uf_gemm (1024^3 on CPUs, 4096^3 on GPUs), FLOP/s of the best run and of the
 * median run (*median, may be NULL). */
static double measured_peak(struct uf_device *d, double *median) {
    struct peak_job j = {.d = d, .S = d->type == CL_DEVICE_TYPE_GPU ? 4096 : 1024};
    int64_t n = (int64_t)(j.S * j.S);
    uf_tensor_init(&j.a, d, "peak_a", UF_F32, 1, &n);
    uf_tensor_init(&j.b, d, "peak_b", UF_F32, 1, &n);
    uf_tensor_init(&j.c, d, "peak_c", UF_F32, 1, &n);
    uf_tensor_fill(&j.a, 0.5f);
    uf_tensor_fill(&j.b, 0.25f);
    struct timing t = time_runs(d, peak_gemm_run, &j);
    uf_tensor_free(&j.a), uf_tensor_free(&j.b), uf_tensor_free(&j.c);
    double flop = 2.0 * (double)j.S * j.S * j.S;
    if (median) *median = flop / t.median;
    return flop / t.best;
}

struct bw_job {
    struct uf_tensor x, y;
};

static void bw_run(void *arg) {
    struct bw_job *j = arg;
    uf_tensor_stream_add(&j->y, 0.5f, &j->x);
}

/* Device memory bandwidth, bytes/s of the best and the median run (*median) of y += a x over
 * two 128 MiB buffers (reads x and y, writes y: 12 bytes per element; uf_tensor_stream_add, with
 * explicit 16-wide vectors on CPUs as the engine's CPU elementwise kernels). */
static double measured_bandwidth(struct uf_device *d, double *median) {
    int64_t n = (int64_t)32 << 20;
    struct bw_job j;
    uf_tensor_init(&j.x, d, "bw_x", UF_F32, 1, &n);
    uf_tensor_init(&j.y, d, "bw_y", UF_F32, 1, &n);
    uf_tensor_fill(&j.x, 0.5f);
    uf_tensor_fill(&j.y, 0.25f);
    struct timing t = time_runs(d, bw_run, &j);
    uf_tensor_free(&j.x), uf_tensor_free(&j.y);
    *median = 12.0 * (double)n / t.median;
    return 12.0 * (double)n / t.best;
}

/* CPU seconds (user + system) of this process so far: with PoCL the device is this process's
 * threads, so CPU time per step depends much less on other load on the machine than wall time
 * (not entirely: shared caches, SMT siblings, spinning threads). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: unforget [--device SEL] bench [options]\n\n"
            "Trains a transformer on random tokens (AdamW, fp32) and prints tokens/s, GFLOP/s\n"
            "(llm.c accounting 6N + 6*L*C*T per token), MFU and device memory.\n\n"
            "options:\n"
            "  --config NAME   d256: D256 L4 H4 F688 vocab 8192 seq 256 batch 8 (default)\n"
            "                  d512: D512 L8 H8 F1376 vocab 8192 seq 256 batch 8\n"
            "                  tiny: D64 L2 H4 F176 vocab 512 seq 64 batch 4\n"
            "                  llama2-7b: D4096 L32 H32 F11008 vocab 32000 seq 512 batch 4, LoRA r 8\n"
            "                  (dropout 0.05), bf16 base, checkpointing (recipes/paper/llama2_7b_plan.lua)\n"
            "  --family F      llama (default), mistral, gemma, llama3\n"
            "  --d-model N --layers N --heads N --kv-heads N --ff N --vocab N --seq N --batch N\n"
            "                  override the config's sizes (--ff default: 8/3 D rounded up to 16)\n"
            "  --lora R        train rank-R LoRA adapters on all linears (base frozen)\n"
            "  --lora-dropout P  LoRA input dropout (default 0)\n"
            "  --bf16-base     store the frozen base as bf16 (needs --lora), one buffer per tensor;\n"
            "                  its weights are one random block repeated (an upload, where filling\n"
            "                  7B values one by one takes minutes; timing does not depend on them)\n"
            "  --checkpointing activation checkpointing\n"
            "  --steps N       timed steps (default 10)      --warmup N  untimed steps (default 2)\n"
            "  --profile       per-kernel device time over the timed steps, and per kernel family\n"
            "                  the performance model's FLOPs and bytes beside the measured time\n"
            "  --roofline GPU  predict one step on GPU from its public peaks (roofline, no run):\n"
            "                  a name from the table (mi250x, mi300x, 7900 xtx, a100, h200,\n"
            "                  max 1550) or 'all' (one markdown row per GPU)\n"
            "  --roofline here measure this device's GEMM peak and memory bandwidth, run with\n"
            "                  --profile and print predicted beside measured time per family\n"
            "  --bandwidth G   memory bandwidth for --roofline here, GB/s (default: measured)\n"
            "  --method NAME   time a continual-learning method (recipe defaults, synthetic safety\n"
            "                  buffer) against plain fine-tuning: step time, init / finish time and\n"
            "                  device memory overhead (vocab must be >= 300); derta: the alignment-\n"
            "                  stage option, timed as the rows it adds (per step, per epoch)\n"
            "  --no-peak-gemm  skip the GEMM peak measurement when the device is not in the table\n"
            "  --peak-gflops G MFU against G GFLOP/s (e.g. a measured FMA peak) instead of the\n"
            "                  table or the GEMM measurement (--roofline here: its compute peak)\n");
}

/* --bf16-base: the frozen base (one bf16 buffer per tensor) from one block of normal(0, 0.02) values
 * repeated, norm weights 1 (0 with (1 + w)): filling 6.7 billion values on the host one by one
 * takes minutes (README: 311 s here), this an upload. */
static void fill_bf16_base(struct uf_model *m) {
    enum { BLOCK = 1 << 22 };
    uint16_t *blk = uf_malloc((size_t)BLOCK * sizeof *blk), one[2];
    struct uf_rng r;
    uf_rng_init(&r, 1);
    for (int i = 0; i < BLOCK; i++) blk[i] = uf_f32_to_bf16((float)(0.02 * uf_rng_normal(&r)));
    one[0] = one[1] = uf_f32_to_bf16(m->cfg.norm_plus_one ? 0.0f : 1.0f);
    for (int i = 0; i < m->n_params; i++) {
        const struct uf_param_desc *pd = &m->descs[i];
        int norm = pd->kind == UF_P_ATTN_NORM || pd->kind == UF_P_MLP_NORM || pd->kind == UF_P_FINAL_NORM;
        if (norm) {
            uint16_t *w = uf_malloc((size_t)pd->numel * sizeof *w);
            for (int64_t j = 0; j < pd->numel; j++) w[j] = one[0];
            uf_tensor_upload(&m->sv[i], w);
            free(w);
            continue;
        }
        for (int64_t o = 0; o < pd->numel; o += BLOCK) {
            struct uf_tensor v;
            int64_t n = UF_MIN((int64_t)BLOCK, pd->numel - o);
            uf_tensor_view(&v, &m->sv[i], pd->name, (size_t)o, 1, (int64_t[]){n});
            uf_tensor_upload(&v, blk);
        }
    }
    free(blk);
    uf_model_params_written(m);
}

static int parse_int(const char *opt, const char *v, int *out, int min) {
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < min || x > 1 << 30) {
        fprintf(stderr, "unforget bench: %s needs an integer >= %d (got '%s')\n", opt, min,
                v ? v : "");
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* ---- the performance model's tables ------------------------------------------------------ */
static void print_setup(const struct uf_perf_setup *ps) {
    const struct uf_model_config *c = &ps->cfg;
    printf("setup: %s D=%d L=%d H=%d KV=%d hd=%d F=%d vocab=%d | batch %d x seq %d | ",
           uf_family_name(c->family), c->d_model, c->n_layers, c->n_heads, c->n_kv_heads,
           c->head_dim, c->d_ff, c->vocab, ps->B, ps->T);
    if (ps->lora_rank > 0) printf("LoRA r %d (dropout %.2g)", ps->lora_rank, (double)ps->lora_dropout);
    else printf("full fine-tuning");
    printf("%s%s, fp32 activations\n", ps->bf16_base ? ", bf16 base" : ", fp32 base",
           ps->checkpointing ? ", checkpointing" : "");
}

/* "gemm 71% compute, cross_entropy 9% memory": the families with the most predicted time */
static void top_families(const struct uf_perf_pred *p, int n, char *out, size_t cap) {
    int used[UF_PF_N] = {0};
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < n; k++) {
        int best = -1;
        for (int f = 0; f < UF_PF_N; f++)
            if (!used[f] && p->fam[f].time > 0 && (best < 0 || p->fam[f].time > p->fam[best].time))
                best = f;
        if (best < 0) break;
        used[best] = 1;
        const struct uf_perf_row *r = &p->fam[best];
        len += (size_t)snprintf(out + len, cap - len, "%s%s %.0f%% %s", k ? ", " : "",
                                uf_perf_family_name(best), 100 * r->time / p->total.time,
                                r->time_mem * 2 >= r->time ? "mem" : "compute");
        if (len >= cap) break;
    }
}

static const char *bound(const struct uf_perf_row *r, char *buf, size_t cap) {
    int mem = r->time_mem * 2 >= r->time;
    double share = r->time > 0 ? 100 * (mem ? r->time_mem : r->time - r->time_mem) / r->time : 0;
    snprintf(buf, cap, "%s %3.0f%%", mem ? "memory " : "compute", share);
    return buf;
}

#define LAUNCH_US 5.0 /* assumed GPU launch latency per kernel (not in the roofline time) */

/* One GPU: per family the FLOPs, bytes and predicted time with fp32 GEMMs (as built: CLBlast
 * SGEMM on the vector units) and with the GEMMs on the bf16 matrix units. */
static void roofline_gpu(const struct uf_perf_device *g, const struct uf_perf_setup *ps,
                         const struct uf_perf_step *st) {
    struct uf_perf_peaks p32 = {g->fp32 * 1e12, g->fp32 * 1e12, g->bw * 1e9};
    struct uf_perf_peaks pmx = {g->matrix * 1e12, g->fp32 * 1e12, g->bw * 1e9};
    struct uf_perf_pred a, b;
    uf_perf_predict(st, &p32, &a);
    uf_perf_predict(st, &pmx, &b);
    printf("roofline: %s: fp32 %.1f TFLOP/s (vector), fp16/bf16 %.1f TFLOP/s (matrix, dense), "
           "%.0f GB/s (%s)\n", g->name, g->fp32, g->matrix, g->bw, g->memory);
    print_setup(ps);
    printf("GEMMs on CLBlast (fp32); other kernels as built (the GPU variants: work-group "
           "kernels, attention_gpu.cl)\n");
    printf("%-14s %8s %10s %9s %7s | %11s %-12s | %11s %-12s\n", "family", "launches", "GFLOP",
           "GB", "FLOP/B", "fp32 ms", "bound", "matrix ms", "bound");
    char b1[32], b2[32];
    for (int f = 0; f < UF_PF_N; f++) {
        const struct uf_perf_row *r = &a.fam[f], *q = &b.fam[f];
        if (r->launches == 0) continue;
        printf("%-14s %8.0f %10.2f %9.3f %7.1f | %11.3f %-12s | %11.3f %-12s\n",
               uf_perf_family_name(f), r->launches, r->flops / 1e9, r->bytes / 1e9,
               r->bytes > 0 ? r->flops / r->bytes : 0, 1e3 * r->time, bound(r, b1, sizeof b1),
               1e3 * q->time, bound(q, b2, sizeof b2));
    }
    printf("%-14s %8.0f %10.2f %9.3f %7.1f | %11.3f %-12s | %11.3f %-12s\n", "step",
           a.total.launches, a.total.flops / 1e9, a.total.bytes / 1e9,
           a.total.flops / a.total.bytes, 1e3 * a.total.time, bound(&a.total, b1, sizeof b1),
           1e3 * b.total.time, bound(&b.total, b2, sizeof b2));
    double mf = uf_perf_model_flops(ps), tok = (double)ps->B * ps->T;
    printf("model FLOPs: %.3f TFLOP per step (%s); the kernels execute %.3f TFLOP\n", mf / 1e12,
           ps->lora_rank > 0 ? "4N + 6N_lora + 6LCT per token" : "6N + 6LCT per token",
           a.total.flops / 1e12);
    printf("predicted, fp32 GEMMs (as built): %.2f ms/step, %.0f tokens/s, MFU %.1f%% of the fp32 peak\n",
           1e3 * a.total.time, tok / a.total.time, 100 * mf / a.total.time / p32.vector);
    printf("predicted, bf16 matrix GEMMs: %.2f ms/step, %.0f tokens/s, MFU %.1f%% of the bf16 matrix peak\n",
           1e3 * b.total.time, tok / b.total.time, 100 * mf / b.total.time / pmx.gemm);
    printf("launches: %.0f per step; at %.0f us each %.2f ms more (not in the roofline)\n",
           a.total.launches, LAUNCH_US, a.total.launches * LAUNCH_US * 1e-3);
}

/* --roofline all: one markdown row per GPU */
static void roofline_all(const struct uf_perf_setup *ps, const struct uf_perf_step *st,
                         const char *cfg_name) {
    double mf = uf_perf_model_flops(ps), tok = (double)ps->B * ps->T;
    print_setup(ps);
    printf("| config | GPU | fp32 GEMMs (as built): ms/step, tokens/s, MFU of fp32 peak | bf16 matrix "
           "GEMMs: ms/step, tokens/s, MFU of bf16 peak | bound by: fp32 GEMMs | bound by: bf16 matrix "
           "GEMMs |\n|---|---|---|---|---|---|\n");
    for (int i = 0; i < uf_perf_n_devices; i++) {
        const struct uf_perf_device *g = &uf_perf_devices[i];
        struct uf_perf_peaks p32 = {g->fp32 * 1e12, g->fp32 * 1e12, g->bw * 1e9};
        struct uf_perf_peaks pmx = {g->matrix * 1e12, g->fp32 * 1e12, g->bw * 1e9};
        struct uf_perf_pred a, b;
        uf_perf_predict(st, &p32, &a);
        uf_perf_predict(st, &pmx, &b);
        char ta[160], tb[160];
        top_families(&a, 2, ta, sizeof ta);
        top_families(&b, 3, tb, sizeof tb);
        printf("| %s | %s | %.1f ms, %.0f tok/s, %.1f%% | %.1f ms, %.0f tok/s, %.1f%% | %s | %s |\n",
               cfg_name, g->name, 1e3 * a.total.time, tok / a.total.time,
               100 * mf / a.total.time / p32.vector, 1e3 * b.total.time, tok / b.total.time,
               100 * mf / b.total.time / pmx.gemm, ta, tb);
    }
    struct uf_perf_peaks one = {1, 1, 1};
    struct uf_perf_pred c;
    uf_perf_predict(st, &one, &c);
    printf("launches per step: %.0f (at %.0f us each: %.1f ms, not in the times above)\n",
           c.total.launches, LAUNCH_US, c.total.launches * LAUNCH_US * 1e-3);
}

/* Per family: the model's launches, FLOPs and bytes beside the measured launches and device
 * time per step (and, with peaks, the predicted time). */
static void profile_families(const struct uf_profile_row *rows, int nrows,
                             const struct uf_perf_step *st, int steps, const struct uf_perf_peaks *pk) {
    double ms[UF_PF_N + 1] = {0}, calls[UF_PF_N + 1] = {0}, total_ms = 0;
    for (int r = 0; r < nrows; r++) {
        int f = uf_perf_family_of_kernel(rows[r].name);
        ms[f] += rows[r].ms / steps, calls[f] += (double)rows[r].calls / steps;
        total_ms += rows[r].ms / steps;
    }
    struct uf_perf_peaks none = {1, 1, 1};
    struct uf_perf_pred p;
    uf_perf_predict(st, pk ? pk : &none, &p);
    printf("per kernel family, per step (model: model/perfmodel.c; measured: the profile)\n");
    printf("%-14s %9s %9s %10s %9s %7s |", "family", "launches", "measured", "GFLOP", "MB", "FLOP/B");
    if (pk) printf(" %10s %-12s |", "pred. ms", "bound");
    printf(" %10s %8s %9s %8s\n", "meas. ms", pk ? "meas/pred" : "", "GFLOP/s", "GB/s");
    for (int f = 0; f <= UF_PF_N; f++) {
        const struct uf_perf_row *r = f < UF_PF_N ? &p.fam[f] : NULL;
        if ((!r || r->launches == 0) && calls[f] == 0) continue;
        double fl = r ? r->flops : 0, by = r ? r->bytes : 0;
        printf("%-14s %9.0f %9.1f %10.3f %9.2f %7.1f |", f < UF_PF_N ? uf_perf_family_name(f) : "other",
               r ? r->launches : 0, calls[f], fl / 1e9, by / 1e6, by > 0 ? fl / by : 0);
        char b[32];
        if (pk) printf(" %10.3f %-12s |", r ? 1e3 * r->time : 0, r ? bound(r, b, sizeof b) : "");
        if (pk && r && r->time > 0) printf(" %10.3f %8.2f", ms[f], ms[f] / (1e3 * r->time));
        else printf(" %10.3f %8s", ms[f], "");
        printf(" %9.2f %8.2f\n", ms[f] > 0 ? fl / ms[f] * 1e-6 : 0, ms[f] > 0 ? by / ms[f] * 1e-6 : 0);
    }
    printf("%-14s %9.0f %9s %10.3f %9.2f %7.1f |", "step", p.total.launches, "",
           p.total.flops / 1e9, p.total.bytes / 1e6, p.total.flops / p.total.bytes);
    char b[32];
    if (pk) printf(" %10.3f %-12s |", 1e3 * p.total.time, bound(&p.total, b, sizeof b));
    printf(" %10.3f %8s\n", total_ms, pk ? "" : "");
    if (pk) printf("measured kernel time / predicted: %.2f\n", total_ms / (1e3 * p.total.time));
}

int uf_cmd_bench(int argc, char **argv) {
    int D = 256, L = 4, H = 4, KV = 0, F = 0, V = 8192, T = 256, Bsz = 8;
    int steps = 10, warmup = 2, lora = 0, profile = 0, peak_gemm = 1, peak_given = 0;
    int bf16_base = 0, ckpt = 0, bw_given = 0;
    float lora_dropout = 0.0f;
    enum uf_family fam = UF_FAMILY_LLAMA;
    const char *cfg_name = "d256", *method = NULL, *roofline = NULL;
    /* first pass: --config sets the base; later size options override it */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) cfg_name = argv[i + 1];
    if (strcmp(cfg_name, "d256") == 0) D = 256, L = 4, H = 4, V = 8192, T = 256, Bsz = 8;
    else if (strcmp(cfg_name, "d512") == 0) D = 512, L = 8, H = 8, V = 8192, T = 256, Bsz = 8;
    else if (strcmp(cfg_name, "tiny") == 0) D = 64, L = 2, H = 4, V = 512, T = 64, Bsz = 4;
    else if (strcmp(cfg_name, "llama2-7b") == 0) {
        D = 4096, L = 32, H = 32, F = 11008, V = 32000, T = 512, Bsz = 4;
        lora = 8, lora_dropout = 0.05f, bf16_base = 1, ckpt = 1;
    } else {
        fprintf(stderr, "unforget bench: unknown --config '%s' (valid: d256, d512, tiny, llama2-7b)\n",
                cfg_name);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0, *dst = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        } else if (strcmp(a, "--family") == 0) {
            if (!v || uf_family_parse(v, &fam)) {
                fprintf(stderr, "unforget bench: %s\n", v ? uf_error() : "--family needs a value");
                return 2;
            }
            i++;
            continue;
        } else if (strcmp(a, "--method") == 0) {
            if (!v) {
                fprintf(stderr, "unforget bench: --method needs a method name (e.g. der)\n");
                return 2;
            }
            method = v;
            i++;
            continue;
        } else if (strcmp(a, "--roofline") == 0) {
            if (!v || (strcmp(v, "here") && strcmp(v, "all") && !uf_perf_device_find(v))) {
                fprintf(stderr, "unforget bench: --roofline needs 'here', 'all' or a GPU of the table (");
                for (int g = 0; g < uf_perf_n_devices; g++)
                    fprintf(stderr, "%s%s", g ? ", " : "", uf_perf_devices[g].key);
                fprintf(stderr, "), got '%s'\n", v ? v : "");
                return 2;
            }
            roofline = v;
            i++;
            continue;
        } else if (strcmp(a, "--lora-dropout") == 0) {
            char *end;
            double x = v ? strtod(v, &end) : -1;
            if (!v || !*v || *end || !(x >= 0 && x < 1)) {
                fprintf(stderr, "unforget bench: --lora-dropout needs a number in [0, 1) (got '%s')\n",
                        v ? v : "");
                return 2;
            }
            lora_dropout = (float)x;
            i++;
            continue;
        } else if (strcmp(a, "--profile") == 0) {
            profile = 1;
            continue;
        } else if (strcmp(a, "--bf16-base") == 0) {
            bf16_base = 1;
            continue;
        } else if (strcmp(a, "--checkpointing") == 0) {
            ckpt = 1;
            continue;
        } else if (strcmp(a, "--no-peak-gemm") == 0) {
            peak_gemm = 0;
            continue;
        }
        else if (strcmp(a, "--peak-gflops") == 0) dst = &peak_given;
        else if (strcmp(a, "--bandwidth") == 0) dst = &bw_given;
        else if (strcmp(a, "--d-model") == 0) dst = &D;
        else if (strcmp(a, "--layers") == 0) dst = &L;
        else if (strcmp(a, "--heads") == 0) dst = &H;
        else if (strcmp(a, "--kv-heads") == 0) dst = &KV;
        else if (strcmp(a, "--ff") == 0) dst = &F;
        else if (strcmp(a, "--vocab") == 0) dst = &V;
        else if (strcmp(a, "--seq") == 0) dst = &T;
        else if (strcmp(a, "--batch") == 0) dst = &Bsz;
        else if (strcmp(a, "--steps") == 0) dst = &steps;
        else if (strcmp(a, "--warmup") == 0) dst = &warmup;
        else if (strcmp(a, "--lora") == 0) dst = &lora;
        else {
            fprintf(stderr, "unforget bench: unknown option '%s' (see unforget bench --help)\n", a);
            return 2;
        }
        rc = parse_int(a, v, dst, dst == &warmup ? 0 : 1);
        if (rc) return 2;
        i++;
    }
    if (F == 0) F = (8 * D / 3 + 15) / 16 * 16;
    struct uf_model_config c;
    uf_model_config_defaults(&c, fam, V, D, L, H, KV, F, T);
    if (uf_model_config_validate(&c)) {
        fprintf(stderr, "unforget bench: %s\n", uf_error());
        return 2;
    }
    if (bf16_base && lora <= 0) {
        fprintf(stderr, "unforget bench: --bf16-base trains LoRA adapters only: add --lora R\n");
        return 2;
    }
    struct uf_perf_setup ps;
    uf_perf_setup_defaults(&ps, &c, Bsz, T);
    ps.lora_rank = lora, ps.lora_dropout = lora > 0 ? lora_dropout : 0.0f;
    ps.bf16_base = bf16_base, ps.checkpointing = ckpt;
    const char *attn_env = getenv("UNFORGET_ATTN_BWD"); /* as ops/attention.c reads it */
    ps.attn_bwd_tiles = attn_env && strcmp(attn_env, "kernels") == 0;
    if (roofline && strcmp(roofline, "here") != 0) { /* on paper: no device */
        for (int l = 0; l < 4; l++) ps.own_gemm[l] = 0; /* GPUs: CLBlast */
        ps.gpu_kernels = 1;                               /* and the GPU kernel variants */
        struct uf_perf_step st;
        if (uf_perf_step_build(&ps, &st)) {
            fprintf(stderr, "unforget bench: %s\n", uf_error());
            return 2;
        }
        if (strcmp(roofline, "all") == 0) roofline_all(&ps, &st, cfg_name);
        else roofline_gpu(uf_perf_device_find(roofline), &ps, &st);
        uf_perf_step_free(&st);
        return 0;
    }
    if (roofline) profile = 1;

    struct uf_device d;
    uf_device_init(&d, uf_cli.device);
    if (method) {
        printf("bench: %s on %s (%s), gemm %s%s\n", uf_family_name(fam), d.name, d.platform_name,
               uf_gemm_backend_name(&d), uf_device_limits_note(&d));
        int rc = 2;
        if (strcmp(method, "derta") == 0) { /* an alignment-stage option, timed as the rows it adds */
            rc = uf_derta_bench(&d, &c, lora, Bsz, T, steps, warmup, stdout);
        } else if (!uf_method_find(method)) {
            fprintf(stderr, "unforget bench: unknown method '%s' (valid:", method);
            for (int i = 0; uf_method_registry[i]; i++) fprintf(stderr, " %s", uf_method_registry[i]->name);
            fprintf(stderr, "; and derta, the alignment-stage option)\n");
        } else {
            /* the method's table as a recipe gets it: through lua/unforget and the plan */
            char dir[] = "/tmp/uf_bench_method_XXXXXX";
            struct uf_plan plan;
            char *path = NULL;
            if (!mkdtemp(dir)) {
                fprintf(stderr, "unforget bench: cannot create a temporary folder\n");
                rc = 1;
            } else if (path = uf_sprintf("%s/safety.jsonl", dir), uf_recipe_method_plan(method, path, &plan)) {
                fprintf(stderr, "unforget bench: --method %s: %s\n", method, uf_error());
                rc = 1;
            } else {
                rc = uf_methods_bench(&d, &c, lora, Bsz, T, steps, warmup, &plan.runs[0].methods[0], path, stdout);
                uf_plan_free(&plan);
            }
            free(path);
            rmdir(dir);
        }
        uf_device_free(&d);
        return rc;
    }
    struct uf_model m;
    if (uf_model_init(&m, &d, &c, 1, bf16_base ? UF_MODEL_BF16_BASE | UF_MODEL_NO_INIT : 0)) {
        fprintf(stderr, "unforget bench: %s\n", uf_error());
        uf_device_free(&d);
        return 1;
    }
    if (bf16_base) fill_bf16_base(&m);
    m.checkpointing = ckpt;
    if (lora) {
        struct uf_lora_config lc = {lora, 2.0f * lora, ps.lora_dropout, UF_LORA_ALL};
        if (uf_model_lora_init(&m, &lc, 2)) {
            fprintf(stderr, "unforget bench: %s\n", uf_error());
            uf_model_free(&m), uf_device_free(&d);
            return 2;
        }
    }
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.weight_decay = ps.weight_decay;
    struct uf_optim o;
    if (uf_optim_init(&o, &m, &oc)) {
        fprintf(stderr, "unforget bench: %s\n", uf_error());
        uf_model_free(&m), uf_device_free(&d);
        return 1;
    }
    printf("bench: %s on %s (%s), gemm %s%s\n", uf_family_name(fam), d.name, d.platform_name,
           uf_gemm_backend_name(&d), uf_device_limits_note(&d));
    printf("model: D=%d L=%d H=%d KV=%d hd=%d F=%d vocab=%d | batch %d x seq %d | %.2fM params%s%s%s\n",
           D, L, H, c.n_kv_heads, c.head_dim, F, V, Bsz, T, (double)m.numel / 1e6,
           lora ? " (LoRA)" : "", bf16_base ? ", bf16 base" : "", ckpt ? ", checkpointing" : "");
    for (int l = 0; l < 4; l++) ps.own_gemm[l] = uf_gemm_backend_for(&d, l & 1, l & 2) == UF_GEMM_OWN;

    int64_t N = (int64_t)Bsz * T;
    int32_t *tok = uf_malloc((size_t)N * sizeof *tok), *tgt = uf_malloc((size_t)N * sizeof *tgt);
    struct uf_rng r;
    uf_rng_init(&r, 42);
    double t_total = 0, t_min = 1e30, cpu_total = 0, gemm_flops = 0;
    float loss = 0;
    for (int s = 0; s < warmup + steps; s++) {
        for (int b = 0; b < Bsz; b++) { /* a random sequence of T + 1 tokens, shifted */
            int32_t prev = (int32_t)uf_rng_below(&r, (uint64_t)V);
            for (int t = 0; t < T; t++) {
                int32_t next = (int32_t)uf_rng_below(&r, (uint64_t)V);
                tok[b * T + t] = prev, tgt[b * T + t] = next, prev = next;
            }
        }
        struct uf_model_batch mb = {Bsz, T, tok, tgt, NULL, NULL, 0.0f};
        if (s == warmup && profile) uf_device_profile_enable(&d, 1);
        uf_device_finish(&d);
        double t0 = uf_time_now(), c0 = cpu_seconds(), g0 = uf_gemm_flops_issued(&d);
        uf_model_zero_grad(&m);
        if (uf_model_forward(&m, &mb)) uf_fatal(1, "bench: %s", uf_error());
        uf_model_backward(&m);
        uf_optim_step(&o, 1.0f);
        loss = uf_model_read_loss(&m); /* the one sync of the step */
        double dt = uf_time_now() - t0, dc = cpu_seconds() - c0;
        if (s >= warmup) {
            t_total += dt;
            cpu_total += dc;
            t_min = fmin(t_min, dt);
            gemm_flops += uf_gemm_flops_issued(&d) - g0;
        }
        uf_log(2, "step %d: loss %.4f, %.1f ms\n", s, (double)loss, dt * 1e3);
    }
    double tps = (double)N * steps / t_total;
    double fpt = uf_perf_model_flops(&ps) / (double)N;
    double flops = tps * fpt;
    printf("steps: %d timed (+%d warm-up), %.1f ms/step mean, %.1f ms best, final loss %.4f\n",
           steps, warmup, 1e3 * t_total / steps, 1e3 * t_min, (double)loss);
    printf("throughput: %.1f tokens/s, %.2f GFLOP/s (%.1f MFLOP/token)\n", tps, flops / 1e9, fpt / 1e6);
    if (d.type == CL_DEVICE_TYPE_CPU)
        printf("cpu: %.1f ms CPU time per step (user + system, all threads), %.1f tokens per "
               "CPU-second\n", 1e3 * cpu_total / steps, (double)N * steps / cpu_total);
    struct uf_perf_step st;
    ps.gpu_kernels = !uf_ops_cpu_path(&d);
    if (uf_perf_step_build(&ps, &st)) uf_fatal(1, "bench: %s", uf_error());
    struct uf_profile_row *rows = NULL;
    int nrows = 0;
    if (profile) { /* read before the peak measurements below launch more kernels */
        uf_device_profile_report(&d, stdout);
        nrows = uf_device_profile_rows(&d, &rows);
        uf_device_profile_enable(&d, 0);
        printf("GEMM FLOPs issued: %.4g per step (performance model: %.4g)\n", gemm_flops / steps,
               st.gemm_flops);
        if (!roofline) profile_families(rows, nrows, &st, steps, NULL);
    }
    size_t bytes_peak = d.bytes_peak; /* before the GEMM peak measurement allocates */
    double peak = table_peak(d.name);
    if (peak_given > 0) {
        peak = peak_given * 1e9;
        printf("MFU: %.2f%% of the given %.1f GFLOP/s fp32 peak (--peak-gflops)\n",
               100 * flops / peak, peak / 1e9);
    } else if (peak > 0) {
        printf("MFU: %.2f%% of the %.1f TFLOP/s fp32 peak of the %s (table)\n", 100 * flops / peak,
               peak / 1e12, d.name);
    } else if (peak_gemm) {
        peak = measured_peak(&d, NULL);
        printf("MFU: %.2f%% of the measured uf_gemm peak %.1f GFLOP/s (device not in the table)\n",
               100 * flops / peak, peak / 1e9);
    }
    if (roofline) { /* --roofline here: the medians of the measurements stand for what the
                       kernels got on a shared machine; the best runs are printed beside them */
        double pk_best = 0, pk_med = 0, bw_best = 0, bw_med = 0;
        const char *pk_how = "--peak-gflops", *bw_how = "--bandwidth";
        if (peak_given > 0) pk_med = pk_best = peak_given * 1e9;
        else pk_best = measured_peak(&d, &pk_med), pk_how = "uf_gemm 1024^3";
        if (bw_given > 0) bw_med = bw_best = bw_given * 1e9;
        else bw_best = measured_bandwidth(&d, &bw_med), bw_how = "y += a x, 2 x 128 MiB";
        struct uf_perf_peaks pk = {pk_med, pk_med, bw_med};
        printf("roofline here: compute %.1f GFLOP/s (%s; median of 6, best %.1f), memory %.1f GB/s "
               "(%s; median of 6, best %.1f)\n", pk_med / 1e9, pk_how, pk_best / 1e9, bw_med / 1e9,
               bw_how, bw_best / 1e9);
        peak = pk_med;
        profile_families(rows, nrows, &st, steps, &pk);
        struct uf_perf_pred p;
        uf_perf_predict(&st, &pk, &p);
        printf("step: predicted %.1f ms (MFU %.1f%%), measured %.1f ms mean (MFU %.1f%%)\n",
               1e3 * p.total.time, 100 * fpt * (double)N / p.total.time / peak,
               1e3 * t_total / steps, 100 * flops / peak);
    }
    free(rows);
    uf_perf_step_free(&st);
    const double MiB = 1024.0 * 1024.0;
    size_t acc = m.bytes_params + m.bytes_grads + o.bytes + m.bytes_acts;
    printf("memory: params %.1f MiB, grads %.1f MiB, optimizer %.1f MiB, activations %.1f MiB, "
           "other %.1f MiB; device peak %.1f MiB\n",
           m.bytes_params / MiB, m.bytes_grads / MiB, o.bytes / MiB, m.bytes_acts / MiB,
           (bytes_peak > acc ? bytes_peak - acc : 0) / MiB, bytes_peak / MiB);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("process: peak RSS %.1f MiB (host memory of the whole process; with PoCL the device "
           "buffers live there too)\n", (double)ru.ru_maxrss / 1024.0);
    printf("tokens_per_s: %.1f\n", tps);
    free(tok), free(tgt);
    uf_optim_free(&o);
    uf_model_free(&m);
    uf_device_free(&d);
    return 0;
}
