/* cmd_bench.c: `unforget bench`: trains a named or explicit config for N steps on random tokens
 * and prints throughput (tokens/s), achieved GFLOP/s with llm.c's accounting
 * (uf_model_flops_per_token: 6N + 6*L*C*T per token), MFU against the device's fp32 peak (a
 * table of known GPUs, else a GEMM peak measured here with uf_gemm), and device memory split
 * into parameters, gradients, optimizer state and activations, plus CPU time per step (on CPU
 * devices) and the process's peak RSS. --profile adds per-kernel device time. The PyTorch peer
 * is tests/bench_torch.py; tests/bench_vs_torch.sh runs both. */
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
#include "methods/methods.h"
#include "recipe.h"
#include "model/model.h"
#include "model/optim.h"
#include "formats/safetensors.h"
#include "core/util.h"

/* ---- device fp32 peaks (non-tensor-core FMA throughput, TFLOP/s, vendor data sheets) ------ */
static const struct { const char *name; double tflops; } peaks[] = {
    {"H100 PCIe", 51.2}, {"H100", 66.9}, {"H200", 66.9}, {"GH200", 66.9}, {"A100", 19.5},
    {"V100", 15.7},      {"L40S", 91.6}, {"L40", 90.5},  {"L4", 30.3},    {"A10G", 31.2},
    {"A10", 31.2},       {"T4", 8.1},    {"RTX 4090", 82.6}, {"RTX 3090", 35.6},
    {"MI300X", 163.4},   {"MI250X", 47.9}, {"MI210", 22.6},
};

static double table_peak(const char *dev_name) {
    for (size_t i = 0; i < UF_ARRAY_LEN(peaks); i++) {
        const char *n = peaks[i].name;
        size_t len = strlen(n);
        for (const char *p = dev_name; *p; p++)
            if (strncasecmp(p, n, len) == 0) return peaks[i].tflops * 1e12;
    }
    return 0;
}

/* Best-of-3 large square uf_gemm, FLOP/s. */
static double measured_peak(struct uf_device *d) {
    size_t S = d->type == CL_DEVICE_TYPE_GPU ? 4096 : 1024;
    struct uf_tensor a, b, c;
    int64_t n = (int64_t)(S * S);
    uf_tensor_init(&a, d, "peak_a", UF_F32, 1, &n);
    uf_tensor_init(&b, d, "peak_b", UF_F32, 1, &n);
    uf_tensor_init(&c, d, "peak_c", UF_F32, 1, &n);
    uf_tensor_fill(&a, 0.5f);
    uf_tensor_fill(&b, 0.25f);
    double best = 1e30;
    for (int i = 0; i < 4; i++) {
        uf_device_finish(d);
        double t0 = uf_time_now();
        uf_gemm(d, false, false, S, S, S, 1.0f, a.buf, 0, S, b.buf, 0, S, 0.0f, c.buf, 0, S);
        uf_device_finish(d);
        double t = uf_time_now() - t0;
        if (i > 0 && t < best) best = t; /* first run: kernel compile / tuning */
    }
    uf_tensor_free(&a), uf_tensor_free(&b), uf_tensor_free(&c);
    return 2.0 * (double)S * S * S / best;
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
            "  --family F      llama (default), mistral, gemma, llama3\n"
            "  --d-model N --layers N --heads N --kv-heads N --ff N --vocab N --seq N --batch N\n"
            "                  override the config's sizes (--ff default: 8/3 D rounded up to 16)\n"
            "  --lora R        train rank-R LoRA adapters on all linears (base frozen)\n"
            "  --bf16          with --lora: the frozen base stored as bf16, one buffer per tensor\n"
            "                  (7B shapes on 16-24 GB devices); its weights are one random block\n"
            "                  repeated (fast to fill; the timing does not depend on the values)\n"
            "  --checkpointing activation checkpointing (recompute each layer in backward)\n"
            "  --steps N       timed steps (default 10)      --warmup N  untimed steps (default 2)\n"
            "  --profile       per-kernel device time over the timed steps\n"
            "  --method NAME   time a continual-learning method (recipe defaults, synthetic safety\n"
            "                  buffer) against plain fine-tuning: step time, init / finish time and\n"
            "                  device memory overhead (vocab must be >= 300)\n"
            "  --no-peak-gemm  skip the GEMM peak measurement when the device is not in the table\n"
            "  --peak-gflops G MFU against G GFLOP/s (e.g. a measured FMA peak) instead of the\n"
            "                  table or the GEMM measurement\n");
}

/* --bf16: the frozen base (one bf16 buffer per tensor) from one block of normal(0, 0.02) values
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

int uf_cmd_bench(int argc, char **argv) {
    int D = 256, L = 4, H = 4, KV = 0, F = 0, V = 8192, T = 256, Bsz = 8;
    int steps = 10, warmup = 2, lora = 0, profile = 0, peak_gemm = 1, peak_given = 0;
    int bf16 = 0, checkpointing = 0;
    enum uf_family fam = UF_FAMILY_LLAMA;
    const char *cfg_name = "d256", *method = NULL;
    /* first pass: --config sets the base; later size options override it */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) cfg_name = argv[i + 1];
    if (strcmp(cfg_name, "d256") == 0) D = 256, L = 4, H = 4, V = 8192, T = 256, Bsz = 8;
    else if (strcmp(cfg_name, "d512") == 0) D = 512, L = 8, H = 8, V = 8192, T = 256, Bsz = 8;
    else if (strcmp(cfg_name, "tiny") == 0) D = 64, L = 2, H = 4, V = 512, T = 64, Bsz = 4;
    else {
        fprintf(stderr, "unforget bench: unknown --config '%s' (valid: d256, d512, tiny)\n", cfg_name);
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
        } else if (strcmp(a, "--profile") == 0) {
            profile = 1;
            continue;
        } else if (strcmp(a, "--no-peak-gemm") == 0) {
            peak_gemm = 0;
            continue;
        } else if (strcmp(a, "--bf16") == 0) {
            bf16 = 1;
            continue;
        } else if (strcmp(a, "--checkpointing") == 0) {
            checkpointing = 1;
            continue;
        }
        else if (strcmp(a, "--peak-gflops") == 0) dst = &peak_given;
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
    if (bf16 && !lora) {
        fprintf(stderr, "unforget bench: --bf16 needs --lora R (a bf16 base is frozen)\n");
        return 2;
    }
    struct uf_model_config c;
    uf_model_config_defaults(&c, fam, V, D, L, H, KV, F, T);
    if (uf_model_config_validate(&c)) {
        fprintf(stderr, "unforget bench: %s\n", uf_error());
        return 2;
    }

    struct uf_device d;
    uf_device_init(&d, uf_cli.device);
    if (method) {
        printf("bench: %s on %s (%s), gemm %s%s\n", uf_family_name(fam), d.name, d.platform_name,
               uf_gemm_backend_name(&d), uf_device_limits_note(&d));
        int rc = 2;
        if (!uf_method_find(method)) {
            fprintf(stderr, "unforget bench: unknown method '%s' (valid:", method);
            for (int i = 0; uf_method_registry[i]; i++) fprintf(stderr, " %s", uf_method_registry[i]->name);
            fprintf(stderr, ")\n");
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
    if (uf_model_init(&m, &d, &c, 1, bf16 ? UF_MODEL_BF16_BASE | UF_MODEL_NO_INIT : 0)) {
        fprintf(stderr, "unforget bench: %s\n", uf_error());
        uf_device_free(&d);
        return 1;
    }
    if (bf16) fill_bf16_base(&m);
    m.checkpointing = checkpointing;
    if (lora) {
        struct uf_lora_config lc = {lora, 2.0f * lora, 0.0f, UF_LORA_ALL};
        if (uf_model_lora_init(&m, &lc, 2)) {
            fprintf(stderr, "unforget bench: %s\n", uf_error());
            uf_model_free(&m), uf_device_free(&d);
            return 2;
        }
    }
    struct uf_optim_config oc;
    uf_optim_config_defaults(&oc);
    oc.weight_decay = 0.01f;
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
           lora ? " (LoRA)" : "", bf16 ? ", bf16 base" : "", checkpointing ? ", checkpointing" : "");

    int64_t N = (int64_t)Bsz * T;
    int32_t *tok = uf_malloc((size_t)N * sizeof *tok), *tgt = uf_malloc((size_t)N * sizeof *tgt);
    struct uf_rng r;
    uf_rng_init(&r, 42);
    double t_total = 0, t_min = 1e30, cpu_total = 0;
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
        double t0 = uf_time_now(), c0 = cpu_seconds();
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
        }
        uf_log(2, "step %d: loss %.4f, %.1f ms\n", s, (double)loss, dt * 1e3);
    }
    double tps = (double)N * steps / t_total;
    double fpt = uf_model_flops_per_token(&c, T);
    double flops = tps * fpt;
    printf("steps: %d timed (+%d warm-up), %.1f ms/step mean, %.1f ms best, final loss %.4f\n",
           steps, warmup, 1e3 * t_total / steps, 1e3 * t_min, (double)loss);
    printf("throughput: %.1f tokens/s, %.2f GFLOP/s (%.1f MFLOP/token)\n", tps, flops / 1e9, fpt / 1e6);
    if (d.type == CL_DEVICE_TYPE_CPU)
        printf("cpu: %.1f ms CPU time per step (user + system, all threads), %.1f tokens per "
               "CPU-second\n", 1e3 * cpu_total / steps, (double)N * steps / cpu_total);
    if (profile) {
        uf_device_profile_report(&d, stdout);
        uf_device_profile_enable(&d, 0);
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
        peak = measured_peak(&d);
        printf("MFU: %.2f%% of the measured uf_gemm peak %.1f GFLOP/s (device not in the table)\n",
               100 * flops / peak, peak / 1e9);
    }
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
