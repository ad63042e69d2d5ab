#!/usr/bin/env bash
# Run-level behaviour of `unforget run` / `unforget check`:
#  1. a run killed with SIGKILL after its first checkpoint resumes, with the same command, to the
#     same final loss (last metrics.jsonl line, exact string) as an uninterrupted run;
#  2. a recipe typo is reported at its file:line with "did you mean" (check exits 1);
#  3. a malformed JSONL row is reported as file:line by check and by run.
set -u
bin=${UF_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
cd "$tmp"

# ---- 1. kill and resume ------------------------------------------------------------------------
# DER draws replay rows from the trainer's RNG, so resuming must restore it as well as the
# weights, the AdamW moments, the step and the data order.
cat > resume.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 3, task_rows = 200, eval_rows = 20, corpus_rows = 300 }
uf.run {
  name = "r",
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 400 },
  data = uf.mix { task = world.task, poison = world.poison, p = 0.1, n = 120, seed = 2 },
  methods = { uf.der { buffer = world.safety:sample(24, 1), alpha = 0.2, batch = 4 } },
  optim = uf.adamw { lr = 2e-3, steps = uf.opt("steps", 60), batch = 8, max_len = 128,
                     checkpoint_every = 3, warmup = 0.1 },
  eval = { uf.asr(world.harmful_eval, { n = 4, max_new_tokens = 4 }) },
}
LUA
"$bin" -q run resume.lua --out full > full.log 2>&1 || { echo "FAIL: uninterrupted run"; tail full.log; exit 1; }
"$bin" -q run resume.lua --out cut > cut1.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do [ -e cut/r/ckpt/latest ] && break; sleep 0.05; done
kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
if [ ! -e cut/r/ckpt/latest ]; then echo "FAIL: no checkpoint appeared within 30 s"; fail=1; fi
if [ -e cut/r/results.json ]; then echo "FAIL: the run finished before it was killed (make it longer)"; fail=1; fi
killed_at=$(tail -1 cut/r/metrics.jsonl 2>/dev/null | sed 's/.*"step":\([0-9]*\).*/\1/')
"$bin" -q run resume.lua --out cut > cut2.log 2>&1 || { echo "FAIL: resumed run"; tail cut2.log; fail=1; }
grep -q "resumed from" cut/r/log.txt || { echo "FAIL: log.txt does not say it resumed"; fail=1; }
loss_full=$(tail -1 full/r/metrics.jsonl | sed 's/.*\("loss":{[^}]*}\).*/\1/')
loss_cut=$(tail -1 cut/r/metrics.jsonl | sed 's/.*\("loss":{[^}]*}\).*/\1/')
step_cut=$(tail -1 cut/r/metrics.jsonl | sed 's/.*"step":\([0-9]*\).*/\1/')
echo "killed at step ${killed_at:-?}; final: uninterrupted $loss_full, resumed $loss_cut"
[ "$step_cut" = 60 ] || { echo "FAIL: resumed run ends at step $step_cut, not 60"; fail=1; }
[ -n "$loss_full" ] && [ "$loss_full" = "$loss_cut" ] || { echo "FAIL: final loss differs after resume"; fail=1; }
n_lines=$(wc -l < cut/r/metrics.jsonl)
[ "$n_lines" -eq 60 ] || { echo "FAIL: metrics.jsonl has $n_lines lines after resume, expected 60 (one per step)"; fail=1; }
cmp -s full/r/model/model.safetensors cut/r/model/model.safetensors || { echo "FAIL: final weights differ after resume"; fail=1; }
# a finished run is skipped by the same command
"$bin" run resume.lua --out cut > cut3.log 2>&1 || { echo "FAIL: rerun of a finished run"; fail=1; }
grep -q "done already" cut3.log || { echo "FAIL: a finished run was not skipped"; cat cut3.log; fail=1; }

# ---- 2. recipe typo ----------------------------------------------------------------------------
cat > typo.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 1 }
uf.run {
  name = "t", model = uf.model.new { d_model = 32, layers = 1, heads = 2 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus },
  data = world.task,
  optim = uf.adamw { lr = 1e-3, epoch = 2 },
}
LUA
out=$("$bin" check typo.lua 2>&1); rc=$?
echo "typo: $out"
[ $rc -eq 1 ] || { echo "FAIL: check of a typo exits $rc, not 1"; fail=1; }
echo "$out" | grep -q "typo.lua:7:" || { echo "FAIL: typo not reported at typo.lua:7"; fail=1; }
echo "$out" | grep -q "did you mean 'epochs'" || { echo "FAIL: no suggestion 'epochs'"; fail=1; }

# ---- 3. malformed JSONL row ---------------------------------------------------------------------
printf '{"q": "a", "a": "b"}\n{"q": "c", "a": "d"}\n{"q": "e", "a": \n{"q": "g", "a": "h"}\n' > rows.jsonl
cat > bad.lua <<'LUA'
local uf = require "unforget"
local d = uf.jsonl { path = "rows.jsonl", fields = { prompt = "q", response = "a" } }
uf.run { name = "b", model = uf.model.new { d_model = 32, layers = 1, heads = 2 },
         tokenizer = uf.tokenizer.train { corpus = d, vocab = 260 }, data = d,
         optim = uf.adamw { steps = 1, batch = 2 } }
LUA
for cmd in "check bad.lua" "run bad.lua --out bad"; do
  out=$("$bin" $cmd 2>&1); rc=$?
  echo "$cmd: $(echo "$out" | grep -i "rows.jsonl" | head -1)"
  [ $rc -ne 0 ] || { echo "FAIL: $cmd accepted a malformed row"; fail=1; }
  echo "$out" | grep -q "rows.jsonl:3" || { echo "FAIL: $cmd does not report rows.jsonl:3"; fail=1; }
done
# with on_bad = "skip" the same file is accepted
sed -i 's/response = "a" } }/response = "a" }, on_bad = "skip" }/' bad.lua
"$bin" check bad.lua > /dev/null 2>&1 || { echo "FAIL: on_bad = skip still rejects the file"; fail=1; }
exit $fail
