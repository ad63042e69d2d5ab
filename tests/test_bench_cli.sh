#!/usr/bin/env bash
# `unforget bench` end to end on a tiny config: it trains, prints throughput, MFU and the memory
# split, the loss is finite; LoRA, bf16 base and checkpointing run; bad options are usage errors
# (exit 2).
set -u
bin=${UF_BIN:?}
fail=0; pass=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

out=$("$bin" bench --config tiny --layers 1 --seq 16 --steps 2 --warmup 1 --profile 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && ok "bench tiny runs" || bad "bench rc=$rc"
echo "$out" | grep -Eq "^tokens_per_s: [0-9]+\.[0-9]" && ok "tokens/s printed" || bad "no tokens/s"
echo "$out" | grep -q "MFU: " && ok "MFU printed" || bad "no MFU"
echo "$out" | grep -Eq "memory: params [0-9.]+ MiB, grads [0-9.]+ MiB, optimizer [0-9.]+ MiB, activations [0-9.]+ MiB" \
  && ok "memory split printed" || bad "no memory split"
echo "$out" | grep -Eq "final loss [0-9]+\.[0-9]+" && ok "finite loss" || bad "loss not finite"
echo "$out" | grep -q "uf_rmsnorm_forward\|rmsnorm" && ok "profile lists kernels" || bad "no profile"
# the performance model beside the profile: per family, and the GEMM FLOPs equal to uf_gemm's count
echo "$out" | grep -q "^per kernel family" && echo "$out" | grep -Eq "^gemm +[0-9]+ +[0-9.]+ " \
  && ok "profile lists kernel families" || bad "no family table"
g=$(echo "$out" | sed -n 's/^GEMM FLOPs issued: \([^ ]*\) per step (performance model: \([^)]*\))$/\1 \2/p')
[ -n "$g" ] && [ "$(echo "$g" | cut -d' ' -f1)" = "$(echo "$g" | cut -d' ' -f2)" ] \
  && ok "GEMM FLOPs issued = model ($g)" || bad "GEMM FLOPs line '$g'"
# --roofline GPU: on paper, no device run
out=$("$bin" bench --config d512 --roofline h200 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^predicted, fp32 GEMMs (as built): [0-9.]* ms/step" \
  && echo "$out" | grep -q "^predicted, bf16 matrix GEMMs" && ! echo "$out" | grep -q "^steps:" \
  && ok "--roofline h200 predicts without running" || bad "--roofline h200 rc=$rc $out"
out=$("$bin" bench --config llama2-7b --roofline all 2>&1); rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | grep -c '^| llama2-7b | ')" -eq 6 ] \
  && echo "$out" | grep -q "LoRA r 8 (dropout 0.05), bf16 base, checkpointing" \
  && ok "--roofline all: 6 GPUs, the 7B LoRA setup" || bad "--roofline all rc=$rc $out"
"$bin" bench --roofline nosuchgpu >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "unknown GPU -> exit 2" || bad "unknown GPU rc=$rc"
"$bin" bench --config tiny --bf16-base >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "--bf16-base without --lora -> exit 2" || bad "--bf16-base alone rc=$rc"
out=$("$bin" bench --config tiny --layers 1 --seq 16 --lora 2 --lora-dropout 0.1 --bf16-base \
  --checkpointing --steps 1 --warmup 1 --roofline here --peak-gflops 50 --bandwidth 10 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^roofline here: compute 50.0 GFLOP/s" \
  && echo "$out" | grep -Eq "^step: predicted [0-9.]+ ms" && echo "$out" | grep -Eq "^dropout +[0-9]+ " \
  && ok "--roofline here with LoRA, bf16 base, checkpointing" || bad "--roofline here rc=$rc $out"
out=$("$bin" bench --config tiny --lora 2 --steps 1 --warmup 0 --no-peak-gemm 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "(LoRA)" && ok "bench --lora runs" || bad "bench --lora rc=$rc $out"
out=$("$bin" bench --config tiny --lora 2 --bf16-base --checkpointing --steps 1 --warmup 0 --no-peak-gemm 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "(LoRA), bf16 base, checkpointing" && echo "$out" | grep -Eq "final loss [0-9]+\.[0-9]+" \
  && ok "bench --lora --bf16-base --checkpointing trains (finite loss)" || bad "bench --bf16-base rc=$rc $out"
"$bin" bench --config nope >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "unknown config -> exit 2" || bad "unknown config rc=$rc"
"$bin" bench --steps -3 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad --steps -> exit 2" || bad "bad --steps rc=$rc"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
