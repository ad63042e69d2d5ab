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
out=$("$bin" bench --config tiny --lora 2 --steps 1 --warmup 0 --no-peak-gemm 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "(LoRA)" && ok "bench --lora runs" || bad "bench --lora rc=$rc $out"
out=$("$bin" bench --config tiny --lora 2 --bf16 --checkpointing --steps 1 --warmup 0 --no-peak-gemm 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "(LoRA), bf16 base, checkpointing" && echo "$out" | grep -Eq "final loss [0-9]+\.[0-9]+" \
  && ok "bench --lora --bf16 --checkpointing runs (finite loss)" || bad "bench --bf16 rc=$rc $out"
"$bin" bench --config tiny --bf16 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "--bf16 without --lora -> exit 2" || bad "--bf16 without --lora rc=$rc"
"$bin" bench --config nope >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "unknown config -> exit 2" || bad "unknown config rc=$rc"
"$bin" bench --steps -3 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad --steps -> exit 2" || bad "bad --steps rc=$rc"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
