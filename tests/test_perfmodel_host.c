/* test_perfmodel_host.c: the performance model (model/perfmodel.h) against hand counts: each
 * kernel family's FLOPs, bytes and launches on tiny shapes, worked out in the comments; one
 * whole training step of a 1-layer model (launches per family and GEMM FLOPs counted by hand
 * from model.c); the roofline arithmetic; the GPU table and the kernel-name mapping. The same
 * model against a profiled step on the device: tests/test_perfmodel.c. */
#include <math.h>
#include <string.h>

#include "model/perfmodel.h"
#include "uf_test.h"

#define CHECK_COST(c, f, b, l)                                                               \
    do {                                                                                     \
        CHECK_NEAR((c).flops, (f), 1e-9);                                                    \
        CHECK_NEAR((c).bytes, (b), 1e-9);                                                    \
        CHECK_NEAR((c).launches, (l), 1e-9);                                                 \
    } while (0)

static void test_gemm_costs(void) {
    /* CLBlast, C (10, 40) += A (10, 3) B (3, 40), B bf16: 2*10*40*3 = 2400 FLOPs; A 30 * 4 +
     * B 120 * 2 + C 400 * 8 (read and written) = 120 + 240 + 3200 bytes; one launch */
    CHECK_COST(uf_perf_gemm(0, 0, 0, 10, 40, 3, 1, 2, 1, 0), 2400, 3560, 1);
    /* the same twice (batch 2), f32 B, beta 0: 2 * (120 + 480 + 1600) */
    CHECK_COST(uf_perf_gemm(0, 0, 0, 10, 40, 3, 2, 4, 0, 0), 4800, 4400, 1);
    /* own, y = x W^T with 10 <= 128 rows: uf_gemm_nt_small reads W in place: 120 + 480 + 1600 */
    CHECK_COST(uf_perf_gemm(1, 0, 1, 10, 40, 3, 1, 4, 0, 0), 2400, 2200, 1);
    /* own, ta: m 10 -> 16 padded (MR 8), n 40 -> 64 (NR 32); one chunk of each.
     * pack B: read 3*40 floats, write 3*64 = 480 + 768; pack A: read 3*10, write 3*16 = 120 +
     * 192; block: packed A 3*16 + packed B 3*64 floats = 192 + 768; C written 400 floats = 1600.
     * Total 1248 + 312 + 960 + 1600 = 4120 bytes, 3 launches. */
    CHECK_COST(uf_perf_gemm(1, 1, 0, 10, 40, 3, 1, 4, 0, 0), 2400, 4120, 3);
    /* own, nn with a bf16 B: pack B reads 3*40 bf16 (240) and writes 768; block reads A 3*10
     * floats (120) and the panel (768); C 1600: 3496 bytes, 2 launches */
    CHECK_COST(uf_perf_gemm(1, 0, 0, 10, 40, 3, 1, 2, 0, 0), 2400, 3496, 2);
    /* own with a scratch limit of 512 floats (2048 bytes), nn, k = 4, n = 40: column chunks of
     * 512 / (4*32) * 32 = 128 >= 64 padded -> one chunk; with limit 128 floats: 128 / 128 * 32
     * = 32 columns per chunk -> 2 chunks: 2 packs + 2 blocks */
    CHECK_NEAR(uf_perf_gemm(1, 0, 0, 10, 40, 4, 1, 4, 0, 2048).launches, 2, 0);
    CHECK_NEAR(uf_perf_gemm(1, 0, 0, 10, 40, 4, 1, 4, 0, 512).launches, 4, 0);
    CHECK_COST(uf_perf_gemm(1, 0, 0, 0, 40, 4, 1, 4, 0, 0), 0, 0, 0);
}

static void test_attention_costs(void) {
    /* B 1, T 4, H 2, KV 1, hd 4 -> padded to 32, key tiles of 64: every row computes 1 tile.
     * Per head: q scale + normalise 2*32*4 = 256; 4 row-tiles * (scores 2*32*64 + softmax 4*64
     * + rescale 32) = 4 * 4384 = 17536; 10 visible pairs * 2*32 = 640: 18432; 2 heads 36864.
     * Bytes: q and o 2 * 4*2*4 floats, k and v 2 * 4*1*4, lse 4*2: (32 + 32 + 8) * 4 ... */
    struct uf_perf_cost c = uf_perf_attn_fwd(1, 4, 2, 1, 4);
    CHECK_COST(c, 36864, 4.0 * (2 * 4 * 2 * 4 + 2 * 4 * 1 * 4 + 4 * 2), 1);
    /* P/dS kernel, 1 sequence x 2 heads, T 4, hd 4: per head 3*32*4 = 384 + 4 * (4*32*64 +
     * 6*64) = 4 * 8576 = 34304 -> 34688, 2 heads 69376. Bytes per head: 4 rows of (q, o, dO: 3*4
     * floats, lse 1, P and dS 2*4) = 4 * 21 floats + K, V 2*4*4 floats = 84 + 32 floats */
    CHECK_COST(uf_perf_attn_bwd_pds(1, 2, 4, 4), 69376, 2 * 4.0 * (84 + 32), 1);
    /* tile form: 2 launches; FLOPs per head: dq 384 + 34304 + 2*32*10 = 35328; dkdv 34304 +
     * 4*32*10 = 35584; 2 heads -> 141824 */
    CHECK_COST(uf_perf_attn_bwd_tiles(1, 4, 2, 1, 4), 141824,
               5 * 4.0 * 32 + 6 * 4.0 * 16 + 4.0 * 8, 2);
    /* GPU variant, same shapes: D 32, forward blocks of 64 queries x 32 keys: one block of 4 rows
     * and one tile of 4 keys per head: 2*32*4 + (4*32 + 4)*4*4 + 32*4 = 2496, 2 heads 4992 */
    CHECK_COST(uf_perf_attn_fwd_gpu(1, 4, 2, 1, 4), 4992,
               4.0 * (2 * 4 * 2 * 4 + 2 * 4 * 1 * 4 + 4 * 2), 1);
    /* backward 32 x 32 tiles: dq 3*32*4 + (6*32 + 6)*16 = 3552, dkdv (8*32 + 6)*16 = 4192 per
     * head, 2 heads 15488; bytes as the tile form plus Delta written and read (2 * 4 * 8) */
    CHECK_COST(uf_perf_attn_bwd_gpu(1, 4, 2, 1, 4), 15488,
               5 * 4.0 * 32 + 6 * 4.0 * 16 + 3 * 4.0 * 8, 2);
    /* hd 128: D 128, forward blocks of 16 x 16, T 40: query blocks of 16, 16, 8 see 1, 2, 3 key
     * tiles (the last of 8 keys): per head 2*128*40 + 516 * (16*16 + 2*16*16 + 8*16 + 8*16 +
     * 8*8) + 128 * (16 + 2*16 + 3*8) */
    CHECK_NEAR(uf_perf_attn_fwd_gpu(1, 40, 1, 1, 128).flops,
               2.0 * 128 * 40 + 516.0 * (256 + 512 + 128 + 128 + 64) + 128.0 * (16 + 32 + 24), 1e-9);
    /* hd 128: padded 128, tiles of 32; T 40: rows 0..31 one tile, 32..39 two: 48 row-tiles */
    struct uf_perf_cost d = uf_perf_attn_fwd(1, 40, 1, 1, 128);
    CHECK_NEAR(d.flops, 2.0 * 128 * 40 + 48 * (2.0 * 128 * 32 + 4 * 32 + 128) + 2.0 * 128 * 820, 1e-9);
}

static void test_row_costs(void) {
    /* rmsnorm forward (3, 4): 4 FLOPs per element = 48; x and y 12 floats each, w 4, rstd 3 */
    CHECK_COST(uf_perf_rmsnorm_fwd(3, 4), 48, 4 * (12 + 12 + 4 + 3), 1);
    /* backward without dw: 8 per element; x, dy, dx read, dx written (4 * 12), rstd 3, w 4 */
    CHECK_COST(uf_perf_rmsnorm_bwd(3, 4, 0), 96, 4 * (48 + 3 + 4), 1);
    /* with dw: 40 rows -> 2 chunks of 32; + 3 * 160 + 2 * 4 FLOPs; x, dy, rstd read (2*160 +
     * 40), partials written (8) and read (8), dw read and written (8) */
    CHECK_COST(uf_perf_rmsnorm_bwd(40, 4, 1), 8 * 160 + 3 * 160 + 8,
               4 * (4 * 160 + 40 + 4) + 4 * (2 * 160 + 40 + 8) + 4 * (8 + 8), 3);
    /* rope (N 2, 3 heads of 4): 24 elements, 3 FLOPs each forward, 4 backward, + 2 per (row,
     * frequency) = 2*2*2 = 8; forward reads and writes 24 floats, backward also reads dx */
    CHECK_COST(uf_perf_rope(2, 3, 4, 0), 72 + 8, 8 * 24, 1);
    CHECK_COST(uf_perf_rope(2, 3, 4, 1), 96 + 8, 12 * 24, 1);
    CHECK_COST(uf_perf_act_fwd(10, 0), 50, 120, 1);
    CHECK_COST(uf_perf_act_fwd(10, 1), 110, 120, 1);
    CHECK_COST(uf_perf_act_bwd(10, 0), 140, 280, 1);
    CHECK_COST(uf_perf_dropout(10, 0), 10, 80, 1);
    CHECK_COST(uf_perf_dropout(10, 1), 20, 120, 1);
    /* embedding (N 3, D 5), bf16 table: tokens 12 bytes, 15 elements read (2) and written (4) */
    CHECK_COST(uf_perf_embed_fwd(3, 5, 2), 15, 12 + 6 * 15, 1);
    CHECK_COST(uf_perf_embed_bwd(3, 5), 30, 4 * 9 + 12 * 15 + 24, 2);
    /* cross-entropy (2, 7) with the gradient: 7 per element; logits read, dlogits written,
     * targets, mask and loss 3 floats per row */
    CHECK_COST(uf_perf_cross_entropy(2, 7, 1), 98, 8 * 14 + 24, 1);
    CHECK_COST(uf_perf_cross_entropy(2, 7, 0), 56, 4 * 14 + 24, 1);
    CHECK_COST(uf_perf_reduce(100, 1), 200, 400, 2);
    CHECK_COST(uf_perf_adamw(10), 180, 280, 1);
    CHECK_COST(uf_perf_fill(10), 0, 40, 1);
    CHECK_COST(uf_perf_axpby(10), 30, 120, 1);
    CHECK_COST(uf_perf_copy(10), 0, 80, 1);
    CHECK_COST(uf_perf_convert(10), 0, 60, 1);
}

/* One step of a 1-layer model: D 8, H 2 (hd 4), F 16, V 32, B 1 x T 4, full fine-tuning, own
 * GEMMs. Launches counted from model.c / optim.c:
 *   zero_grad: fill (tensor 1). Forward: embed; rmsnorm; q (gemm: nt_small, 4 rows), rope, k,
 *   rope, v, attention, copy, o, rmsnorm, gate, up, act, copy, down; final rmsnorm; lm head;
 *   cross-entropy; loss sum (reduce 2); scale (axpby).
 *   Backward: lm head dx (nn: pack + block) and dW (tn: pack B, pack A, block); fill dres;
 *   final rmsnorm backward with dw (3); then the layer: per linear dx 2 + dW 3 = 5 launches,
 *   7 linears; fills 2 + 3 + 2; act backward; 2 rmsnorm backwards (3 each); attention: the P/dS
 *   kernel and per head (2) dq (2 launches), dk (3), dv (3); 2 rope backwards; embedding (2).
 *   Optimizer: gradient norm (reduce 2); AdamW per segment of equal decay: [embed, attn norm],
 *   [q k v o], [mlp norm], [gate up down], [final norm], [lm head] = 6.
 * GEMM FLOPs: forward 4 * 2*4*8*8 + 3 * 2*4*8*16 + 2*4*8*32 = 2048 + 3072 + 2048 = 7168;
 * backward lm head 2 * 2048, layer 2 * (2048 + 3072), attention 2 heads * 3 * 2*4*4*4 = 768:
 * 7168 + 4096 + 10240 + 768 = 22272. */
static void test_step_hand_count(void) {
    struct uf_model_config c;
    uf_model_config_defaults(&c, UF_FAMILY_LLAMA, 32, 8, 1, 2, 2, 16, 4);
    struct uf_perf_setup s;
    uf_perf_setup_defaults(&s, &c, 1, 4);
    struct uf_perf_step st;
    CHECK(uf_perf_step_build(&s, &st) == 0);
    CHECK_NEAR(st.gemm_flops, 22272, 0);
    struct uf_perf_peaks one = {1, 1, 1};
    struct uf_perf_pred p;
    uf_perf_predict(&st, &one, &p);
    static const int want[UF_PF_N] = {
        [UF_PF_GEMM] = 8 + 5 + 35 + 16, [UF_PF_ATTN_FWD] = 1, [UF_PF_ATTN_BWD] = 1,
        [UF_PF_NORM_FWD] = 3, [UF_PF_NORM_BWD] = 9, [UF_PF_ROPE] = 4, [UF_PF_ACT_FWD] = 1,
        [UF_PF_ACT_BWD] = 1, [UF_PF_EMBED_FWD] = 1, [UF_PF_EMBED_BWD] = 2, [UF_PF_LOSS] = 1,
        [UF_PF_REDUCE] = 4, [UF_PF_ADAMW] = 6, [UF_PF_TENSOR] = 12};
    for (int f = 0; f < UF_PF_N; f++)
        CHECK_MSG(p.fam[f].launches == want[f], "%s: %g launches, hand count %d",
                  uf_perf_family_name(f), p.fam[f].launches, want[f]);
    /* GEMM family FLOPs = the GEMM total; full fine-tuning model FLOPs: llm.c's 6N + 6LCT with
     * N = 4*64 + 3*128 + 256 = 896 matmul weights: (6*896 + 6*1*8*4) * 4 tokens = 22272 too */
    CHECK_NEAR(p.fam[UF_PF_GEMM].flops, 22272, 0);
    CHECK_NEAR(uf_perf_model_flops(&s), 22272, 0);
    /* weight decay 0 merges every AdamW segment into one */
    s.weight_decay = 0;
    struct uf_perf_step st0;
    CHECK(uf_perf_step_build(&s, &st0) == 0);
    uf_perf_predict(&st0, &one, &p);
    CHECK_NEAR(p.fam[UF_PF_ADAMW].launches, 1, 0);
    uf_perf_step_free(&st0);
    uf_perf_step_free(&st);

    /* LoRA r 2 on all 7 linears, bf16 base on CLBlast (widened per chunk: 1 convert + 1
     * launch), dropout, checkpointing: model FLOPs 4 N + 6 N_lora + 6 LCT per token with N_lora
     * = 2 * (q 8+8, k 16, v 16, o 16, gate 8+16, up 24, down 16+8) = 2 * 136 = 272 */
    s.weight_decay = 0.01f, s.lora_rank = 2, s.lora_dropout = 0.1f, s.bf16_base = 1;
    s.checkpointing = 1;
    for (int l = 0; l < 4; l++) s.own_gemm[l] = 0;
    CHECK(uf_perf_step_build(&s, &st) == 0);
    CHECK_NEAR(uf_perf_model_flops(&s), (4.0 * 896 + 6 * 272 + 6 * 32) * 4, 1e-9);
    uf_perf_predict(&st, &one, &p);
    /* dropout: forward 7 (+7 recomputed), backward 7 recomputed masks + 7 input gradients */
    CHECK_NEAR(p.fam[UF_PF_DROPOUT].launches, 28, 0);
    CHECK_NEAR(p.fam[UF_PF_ADAMW].launches, 1, 0);
    CHECK_NEAR(p.fam[UF_PF_EMBED_BWD].launches, 0, 0);
    /* no weight gradient of the base: every norm backward is the dx kernel alone (1 + 2) */
    CHECK_NEAR(p.fam[UF_PF_NORM_BWD].launches, 3, 0);
    /* forward twice (checkpointing): 2 * (2 per layer + 1 final) - 1 = 5 norm forwards... the
     * final norm once: 2 * 2 + 1 */
    CHECK_NEAR(p.fam[UF_PF_NORM_FWD].launches, 5, 0);
    uf_perf_step_free(&st);
    /* a bf16 base without LoRA is refused */
    s.lora_rank = 0;
    CHECK(uf_perf_step_build(&s, &st) != 0);
}

static void test_roofline(void) {
    struct uf_perf_op ops[3] = {
        {UF_PF_GEMM, {100, 10, 1}},  /* GEMM peak 50: 2 s compute vs 1 s memory */
        {UF_PF_GEMM, {100, 400, 1}}, /* 2 s vs 40 s: memory */
        {UF_PF_ROPE, {30, 10, 2}},   /* vector peak 10: 3 s vs 1 s */
    };
    struct uf_perf_step st = {ops, 3, 3, 0};
    struct uf_perf_peaks pk = {50, 10, 10};
    struct uf_perf_pred p;
    uf_perf_predict(&st, &pk, &p);
    CHECK_NEAR(p.fam[UF_PF_GEMM].time, 2 + 40, 1e-12);
    CHECK_NEAR(p.fam[UF_PF_GEMM].time_mem, 40, 1e-12);
    CHECK_NEAR(p.fam[UF_PF_ROPE].time, 3, 1e-12);
    CHECK_NEAR(p.fam[UF_PF_ROPE].time_mem, 0, 1e-12);
    CHECK_NEAR(p.total.time, 45, 1e-12);
    CHECK_NEAR(p.total.flops, 230, 0);
    CHECK_NEAR(p.total.bytes, 420, 0);
    CHECK_NEAR(p.total.launches, 4, 0);
}

static void test_tables(void) {
    CHECK(uf_perf_device_find("h200") == &uf_perf_devices[4]);
    CHECK(uf_perf_device_find("NVIDIA H200 NVL") == &uf_perf_devices[4]);
    CHECK(uf_perf_device_find("AMD Instinct MI300X") != NULL);
    CHECK(uf_perf_device_find("Intel(R) Data Center GPU Max 1550") != NULL);
    CHECK(uf_perf_device_find("pthread-skylake-avx512") == NULL);
    CHECK(uf_perf_device_find("") == NULL);
    for (int i = 0; i < uf_perf_n_devices; i++) {
        const struct uf_perf_device *g = &uf_perf_devices[i];
        CHECK(g->fp32 > 1 && g->matrix > g->fp32 && g->bw > 100);
    }
    CHECK(uf_perf_family_of_kernel("uf_gemm_pack32_bf16") == UF_PF_GEMM);
    CHECK(uf_perf_family_of_kernel("clblast_sgemm_batched") == UF_PF_GEMM);
    CHECK(uf_perf_family_of_kernel("uf_attn_bwd_pds_d64") == UF_PF_ATTN_BWD);
    CHECK(uf_perf_family_of_kernel("uf_embed_forward_bf16") == UF_PF_EMBED_FWD);
    CHECK(uf_perf_family_of_kernel("uf_embed_links") == UF_PF_EMBED_BWD);
    CHECK(uf_perf_family_of_kernel("copy_buffer") == UF_PF_TENSOR);
    CHECK(uf_perf_family_of_kernel("uf_adamw_v16") == UF_PF_ADAMW);
    CHECK(uf_perf_family_of_kernel("dec_rope") == UF_PF_N);
    CHECK_STR(uf_perf_family_name(UF_PF_LOSS), "cross_entropy");
}

int main(void) {
    UF_RUN(test_gemm_costs);
    UF_RUN(test_attention_costs);
    UF_RUN(test_row_costs);
    UF_RUN(test_step_hand_count);
    UF_RUN(test_roofline);
    UF_RUN(test_tables);
    return uf_test_summary();
}
