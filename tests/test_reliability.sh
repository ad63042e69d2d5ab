#!/usr/bin/env bash
# Reliability of `unforget run` under bad numbers, damaged caches, restarts and signals (issue 20):
#  1. lr = 1e300 stops with an error naming the run and the step (exit != 0), metrics.jsonl holds
#     no nan; on_nonfinite = "skip" finishes and counts the skipped steps;
#  2. a damaged EWC Fisher cache entry (NaN) and damaged kernel binaries (truncated to half, a
#     zeroed 4 KiB block) are discarded with a notice and rebuilt; the results equal a clean run;
#  3. metrics.jsonl holds exactly one line per logged step after restarts from step 0 (killed
#     before the first checkpoint; ckpt/latest lost);
#  4. SIGINT finishes the step, checkpoints, says "interrupted at step N", exits 130; the same
#     command resumes to the same weights as an uninterrupted run;
#  5. stale .tmp files are removed; a garbage ckpt/latest falls back to the newest checkpoint; a
#     truncated results.json is not taken for "done".
set -u
bin=${UF_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
cd "$tmp"
export UNFORGET_CACHE_DIR=$tmp/cache

recipe() { # file steps ckpt_every extra-run-fields
  cat > "$1" <<LUA
local uf = require "unforget"
local world = uf.world { seed = 3, task_rows = 200, eval_rows = 20, corpus_rows = 300 }
uf.run {
  name = "r",
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 300 },
  data = world.task:take(64),
  optim = uf.adamw { lr = uf.opt("lr", 1e-3), steps = $2, batch = 4, max_len = 128, checkpoint_every = $3,
                     on_nonfinite = uf.opt("mode", "stop") },
  $4
  eval = { uf.asr(world.harmful_eval, { n = 2, max_new_tokens = 2 }) },
}
LUA
}
no_nan() { # metrics file: every line a JSON object without nan/inf
  if grep -qiE ':-?(nan|inf)' "$1"; then echo "FAIL: $1 holds nan/inf (not JSON)"; fail=1; fi
  if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$1" ||
      { echo "FAIL: $1 is not JSON lines"; fail=1; }
  fi
}
count_steps() { # metrics file -> "lines unique-steps"
  local n=$(wc -l < "$1") u=$(sed 's/.*"step":\([0-9]*\).*/\1/' "$1" | sort -u | wc -l)
  echo "$n $u"
}

# ---- 1. non-finite training ---------------------------------------------------------------------
recipe nan.lua 20 5 ""
"$bin" run nan.lua --out o1 --set lr=1e300 > o1.log 2>&1; rc=$?
[ $rc -ne 0 ] || { echo "FAIL: lr = 1e300 exits 0"; fail=1; }
grep -q "non-finite values (NaN or Inf) at step 2 of r" o1.log ||
  { echo "FAIL: the error does not name the step and the run:"; tail -3 o1.log; fail=1; }
grep -q "loss term 'ce'" o1.log || { echo "FAIL: the error does not name the loss term"; fail=1; }
[ -e o1/r/results.json ] && { echo "FAIL: a non-finite run wrote results.json"; fail=1; }
no_nan o1/r/metrics.jsonl
"$bin" run nan.lua --out o1s --set lr=1e300 --set mode=skip > o1s.log 2>&1 ||
  { echo "FAIL: on_nonfinite = skip did not finish"; tail -3 o1s.log; fail=1; }
grep -q '"skipped_nonfinite":19' o1s/r/metrics.jsonl || { echo "FAIL: skipped steps not counted"; tail -1 o1s/r/metrics.jsonl; fail=1; }
grep -q "skipped 19 non-finite step(s), the first at step 2" o1s/r/log.txt || { echo "FAIL: skip count not logged"; fail=1; }
no_nan o1s/r/metrics.jsonl

# ---- 2. damaged cache entries -------------------------------------------------------------------
recipe ewc.lua 12 100 "methods = { uf.ewc { data = world.safety, samples = 8, lambda = 100 } },"
"$bin" -q run ewc.lua --out clean > clean.log 2>&1 || { echo "FAIL: clean EWC run"; tail clean.log; fail=1; }
fisher=$(ls cache/fisher/* 2>/dev/null | head -1)
if [ -z "$fisher" ]; then echo "FAIL: no Fisher cache entry"; fail=1; else
  size=$(stat -c %s "$fisher")
  printf '\x00\x00\xc0\x7f%.0s' $(seq 1 $((size / 4))) > "$fisher" # float NaN, same size
  "$bin" run ewc.lua --out fisher-nan > fisher-nan.log 2>&1 || { echo "FAIL: run with a NaN Fisher cache"; tail -3 fisher-nan.log; fail=1; }
  grep -q "EWC Fisher cache entry .* is damaged" fisher-nan.log || { echo "FAIL: no notice for the NaN Fisher"; fail=1; }
  cmp -s clean/r/model/model.safetensors fisher-nan/r/model/model.safetensors ||
    { echo "FAIL: a NaN Fisher cache changes the results"; fail=1; }
  cmp -s clean/r/metrics.jsonl fisher-nan/r/metrics.jsonl 2>/dev/null ||
    [ "$(sed 's/"tokens_per_s":[0-9.]*//' clean/r/metrics.jsonl)" = "$(sed 's/"tokens_per_s":[0-9.]*//' fisher-nan/r/metrics.jsonl)" ] ||
    { echo "FAIL: a NaN Fisher cache changes the losses"; fail=1; }
fi
k1=$(ls cache/kernels/optim.cl-* 2>/dev/null | head -1) k2=$(ls cache/kernels/act.cl-* 2>/dev/null | head -1)
if [ -z "$k1" ] || [ -z "$k2" ]; then echo "FAIL: no kernel cache entries"; fail=1; else
  truncate -s $(( $(stat -c %s "$k1") / 2 )) "$k1"
  dd if=/dev/zero of="$k2" bs=4096 seek=3 count=1 conv=notrunc 2>/dev/null
  for g in cache/kernels/gemm-select-*; do printf 'garbage' > "$g"; done
  "$bin" run ewc.lua --out kern > kern.log 2>&1 || { echo "FAIL: run with damaged kernel binaries"; tail -3 kern.log; fail=1; }
  [ "$(grep -c "kernel cache entry .* is damaged" kern.log)" = 2 ] || { echo "FAIL: expected 2 kernel cache notices"; grep notice kern.log; fail=1; }
  grep -q "gemm choice cache entry .* is damaged" kern.log || { echo "FAIL: no notice for the gemm choice"; fail=1; }
  cmp -s clean/r/model/model.safetensors kern/r/model/model.safetensors ||
    { echo "FAIL: damaged kernel binaries change the results"; fail=1; }
  "$bin" run ewc.lua --out kern2 > kern2.log 2>&1 || { echo "FAIL: the run after the rebuild"; fail=1; }
  grep -q "is damaged" kern2.log && { echo "FAIL: rebuilt entries are damaged again"; fail=1; }
fi

# ---- 3. metrics after restarts from step 0 ------------------------------------------------------
recipe long.lua 150 1000 ""
for attempt in 1 2; do # killed before its first checkpoint (only the final step checkpoints)
  "$bin" -q run long.lua --out o3 > o3-$attempt.log 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do [ "$( (wc -l < o3/r/metrics.jsonl) 2>/dev/null || echo 0)" -ge $((attempt * 10)) ] && break; sleep 0.05; done
  kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
done
[ -e o3/r/ckpt/latest ] && { echo "FAIL: a checkpoint appeared before the kill (make the run longer)"; fail=1; }
"$bin" -q run long.lua --out o3 > o3-3.log 2>&1 || { echo "FAIL: restarted run"; tail -3 o3-3.log; fail=1; }
read -r n u <<< "$(count_steps o3/r/metrics.jsonl)"
echo "restarts from 0: $n metrics lines, $u distinct steps (150 logged)"
[ "$n" = 150 ] && [ "$u" = 150 ] || { echo "FAIL: metrics.jsonl has $n lines / $u steps after restarts, expected 150"; fail=1; }

# ---- 4. SIGINT ------------------------------------------------------------------------------------
recipe sig.lua 150 1000 ""
"$bin" -q run sig.lua --out full4 > full4.log 2>&1 || { echo "FAIL: uninterrupted run"; fail=1; }
"$bin" -q run sig.lua --out o4 > o4.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ "$( (wc -l < o4/r/metrics.jsonl) 2>/dev/null || echo 0)" -ge 20 ] && break; sleep 0.05; done
kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] || { echo "FAIL: SIGINT exit status $rc, expected 130"; fail=1; }
grep -qE "interrupted at step [0-9]+; run the same command to resume" o4.log || { echo "FAIL: no interrupt message"; cat o4.log; fail=1; }
at=$(sed -n 's/.*interrupted at step \([0-9]*\);.*/\1/p' o4.log)
[ -e o4/r/ckpt/step-$(printf %06d "${at:-0}").ckpt ] || { echo "FAIL: no checkpoint at the interrupted step $at"; fail=1; }
"$bin" -q run sig.lua --out o4 > o4b.log 2>&1 || { echo "FAIL: resume after SIGINT"; tail -3 o4b.log; fail=1; }
cmp -s full4/r/model/model.safetensors o4/r/model/model.safetensors || { echo "FAIL: weights differ after SIGINT + resume"; fail=1; }
read -r n u <<< "$(count_steps o4/r/metrics.jsonl)"
[ "$n" = 150 ] && [ "$u" = 150 ] || { echo "FAIL: metrics.jsonl has $n lines / $u steps after SIGINT + resume"; fail=1; }
echo "SIGINT: stopped at step ${at:-?} with exit $rc, resumed to identical weights"

# ---- 5. resume hygiene -----------------------------------------------------------------------------
recipe hy.lua 30 10 ""
"$bin" -q run hy.lua --out o5 > o5.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -e o5/r/ckpt/step-000010.ckpt ] && break; sleep 0.05; done
kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
echo junk > o5/r/ckpt/step-000020.ckpt.tmp.12345
echo garbage > o5/r/ckpt/latest
"$bin" run hy.lua --out o5 > o5b.log 2>&1 || { echo "FAIL: resume with a garbage latest"; tail -3 o5b.log; fail=1; }
grep -q "resumed from .*step-0000[1-3]0.ckpt" o5/r/log.txt || { echo "FAIL: did not resume from the newest valid checkpoint"; cat o5/r/log.txt; fail=1; }
[ -e o5/r/ckpt/step-000020.ckpt.tmp.12345 ] && { echo "FAIL: a stale .tmp file stays"; fail=1; }
head -c 20 o5/r/results.json > t && mv t o5/r/results.json
"$bin" run hy.lua --out o5 > o5c.log 2>&1 || { echo "FAIL: rerun with a truncated results.json"; tail -3 o5c.log; fail=1; }
grep -q "done already" o5c.log && { echo "FAIL: a truncated results.json counts as done"; fail=1; }
"$bin" report o5 > /dev/null 2>&1 || { echo "FAIL: report rejects the re-evaluated run"; fail=1; }

exit $fail
