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
# Variants: DER draws replay rows from the trainer's RNG (resuming must restore it as well as
# the weights, the AdamW moments, the step and the data order; its teacher must be the start
# weights, not the checkpoint's); LoRA with dropout + EWC + L2-SP (anchor = the start adapters;
# the EWC Fisher is computed by the uninterrupted run and read from the cache by the others, which
# must not change the numbers). A fresh cache folder, sharing only the compiled kernels.
kc=${UNFORGET_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/unforget}/kernels
[ -n "${UNFORGET_CACHE_DIR:-}" ] || { [ -n "${XDG_CACHE_HOME:-}" ] && kc=$XDG_CACHE_HOME/unforget/kernels; }
mkdir -p "$tmp/cache"; [ -d "$kc" ] && ln -s "$kc" "$tmp/cache/kernels"
export UNFORGET_CACHE_DIR=$tmp/cache
resume_case() { # tag methods-and-lora
  local tag=$1 extra=$2
  cat > resume-$tag.lua <<LUA
local uf = require "unforget"
local world = uf.world { seed = 3, task_rows = 200, eval_rows = 20, corpus_rows = 300 }
uf.run {
  name = "r",
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 400 },
  data = uf.mix { task = world.task, poison = world.poison, p = 0.1, n = 120, seed = 2 },
  $extra,
  optim = uf.adamw { lr = 2e-3, steps = 60, batch = 8, max_len = 128, checkpoint_every = 3, warmup = 0.1 },
  eval = { uf.asr(world.harmful_eval, { n = 4, max_new_tokens = 4 }) },
}
LUA
  "$bin" -q run resume-$tag.lua --out full-$tag > full-$tag.log 2>&1 || { echo "FAIL $tag: uninterrupted run"; tail full-$tag.log; fail=1; return; }
  "$bin" -q run resume-$tag.lua --out cut-$tag > cut1-$tag.log 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do [ -e cut-$tag/r/ckpt/latest ] && break; sleep 0.05; done
  kill -KILL $pid 2>/dev/null; wait $pid 2>/dev/null
  [ -e cut-$tag/r/ckpt/latest ] || { echo "FAIL $tag: no checkpoint appeared within 30 s"; fail=1; }
  [ -e cut-$tag/r/results.json ] && { echo "FAIL $tag: the run finished before it was killed (make it longer)"; fail=1; }
  local killed_at=$(tail -1 cut-$tag/r/metrics.jsonl 2>/dev/null | sed 's/.*"step":\([0-9]*\).*/\1/')
  "$bin" -q run resume-$tag.lua --out cut-$tag > cut2-$tag.log 2>&1 || { echo "FAIL $tag: resumed run"; tail cut2-$tag.log; fail=1; }
  grep -q "resumed from" cut-$tag/r/log.txt || { echo "FAIL $tag: log.txt does not say it resumed"; fail=1; }
  local loss_full=$(tail -1 full-$tag/r/metrics.jsonl | sed 's/.*\("loss":{[^}]*}\).*/\1/')
  local loss_cut=$(tail -1 cut-$tag/r/metrics.jsonl | sed 's/.*\("loss":{[^}]*}\).*/\1/')
  local step_cut=$(tail -1 cut-$tag/r/metrics.jsonl | sed 's/.*"step":\([0-9]*\).*/\1/')
  echo "$tag: killed at step ${killed_at:-?}; final: uninterrupted $loss_full, resumed $loss_cut"
  [ "$step_cut" = 60 ] || { echo "FAIL $tag: resumed run ends at step $step_cut, not 60"; fail=1; }
  [ -n "$loss_full" ] && [ "$loss_full" = "$loss_cut" ] || { echo "FAIL $tag: final loss differs after resume"; fail=1; }
  local n_lines=$(wc -l < cut-$tag/r/metrics.jsonl)
  [ "$n_lines" -eq 60 ] || { echo "FAIL $tag: metrics.jsonl has $n_lines lines after resume, expected 60"; fail=1; }
  cmp -s full-$tag/r/model/model.safetensors cut-$tag/r/model/model.safetensors || { echo "FAIL $tag: final weights differ after resume"; fail=1; }
}
resume_case der 'methods = { uf.der { buffer = world.safety:sample(24, 1), alpha = 0.2, batch = 4 } }'
resume_case lora-ewc 'lora = uf.lora { r = 4, dropout = 0.05 }, methods = { uf.ewc { data = world.safety, samples = 16, lambda = 100 }, uf.l2sp { lambda = 1 } }'
# methods with state of their own in the checkpoint (uf_method_ops.state): Lisa's theta_switch and
# alignment-data position (a cycle of 5 + 7 steps, so the cut falls between switches); Refresh,
# whose safety Fisher is recomputed (read from the cache) at the start weights and whose noise is
# keyed by (seed, step) (a step and noise large enough to show)
resume_case lisa 'methods = { uf.lisa { data = world.alignment, align_steps = 5, user_steps = 7, rho = 0.5 } }'
resume_case refresh 'methods = { uf.refresh { buffer = world.safety:sample(24, 1), samples = 16, delta = 1e-3, noise = 0.05, unlearn_steps = 2 } }'
# a finished run is skipped by the same command
"$bin" run resume-der.lua --out cut-der > cut3.log 2>&1 || { echo "FAIL: rerun of a finished run"; fail=1; }
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
         tokenizer = uf.tokenizer.train { corpus = d, vocab = 300 }, data = d,
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
