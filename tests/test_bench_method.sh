#!/usr/bin/env bash
# `unforget bench --method NAME`: a method's step time, init / finish time and memory against plain
# fine-tuning on a tiny config; DER allocates its (N, V) gradient scratch, so its peak is higher;
# SafeGrad, EMA and TokenSel hold state after training too; DeRTa is timed as the rows it adds;
# an unknown method and safelora without LoRA are usage errors (exit 2).
set -u
bin=${UF_BIN:?}
fail=0; pass=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

out=$("$bin" bench --config tiny --layers 1 --seq 32 --steps 2 --warmup 1 --method der 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] && ok "bench --method der runs" || bad "rc=$rc"
echo "$out" | grep -Eq "step \(best\): [0-9.]+ ms vs [0-9.]+ ms" && ok "step times printed" || bad "no step times"
echo "$out" | grep -Eq "init: +[0-9.]+ ms +finish: [0-9.]+ ms" && ok "init/finish printed" || bad "no init/finish"
extra=$(echo "$out" | sed -n 's/.*memory: held after training .*(\([-+][0-9.]*\) MiB); device peak.*/\1/p')
awk -v x="$extra" 'BEGIN { exit !(x > 0) }' && ok "DER needs more memory ($extra MiB)" || bad "DER memory overhead '$extra'"
# SafeGrad (a KL gradient on a draw, two trainable-vector copies), EMA (one copy) and TokenSel
# (the anchor it restores the weights from after its references) are timed
for m in safegrad ema tokensel; do
  out=$("$bin" bench --config tiny --layers 1 --seq 32 --steps 2 --warmup 1 --method $m 2>&1); rc=$?
  if [ $rc -eq 0 ] && echo "$out" | grep -Eq "step \(best\): [0-9.]+ ms vs [0-9.]+ ms"; then
    extra=$(echo "$out" | sed -n 's/.*memory: held after training .*(\([-+][0-9.]*\) MiB); device peak.*/\1/p')
    awk -v x="$extra" 'BEGIN { exit !(x > 0) }' && ok "bench --method $m ($extra MiB held)" || bad "$m memory '$extra'"
  else bad "bench --method $m rc=$rc: $(echo "$out" | tail -2)"; fi
done
# DeRTa (an alignment-stage option): the rows it adds (64 harmful rows -> 64 more RTO rows), its
# step on the longer rows and the epoch, against plain steps on the same harmful rows
out=$("$bin" bench --config tiny --layers 1 --seq 32 --steps 2 --warmup 1 --method derta 2>&1); rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q "rows: 64 -> 128  (x2.00: 64 RTO rows" &&
   echo "$out" | grep -Eq "step \(mean\): [0-9.]+ ms vs [0-9.]+ ms" &&
   echo "$out" | grep -Eq "epoch \(mean steps\): 32 steps [0-9.]+ ms vs 16 steps [0-9.]+ ms"; then ok "bench --method derta"
else bad "bench --method derta rc=$rc: $(echo "$out" | tail -3)"; fi
out=$("$bin" bench --config tiny --layers 1 --seq 32 --steps 1 --warmup 0 --lora 2 --method safelora 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "(LoRA)" && ok "safelora under LoRA runs" || bad "safelora rc=$rc $out"
"$bin" bench --config tiny --method safelora >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "safelora without LoRA -> exit 2" || bad "safelora without LoRA rc=$rc"
"$bin" bench --config tiny --method nope >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "unknown method -> exit 2" || bad "unknown method rc=$rc"
"$bin" bench --config tiny --method >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "--method without a name -> exit 2" || bad "--method alone rc=$rc"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
