#!/usr/bin/env bash
# `unforget sweep` on a 2-run recipe with --jobs 2: both runs finish (sharing one stage, trained
# once even though two processes need it at the same time); a second invocation skips both.
set -u
bin=${UF_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
cat > sweep.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 2, task_rows = 100, eval_rows = 20, corpus_rows = 200 }
local aligned = uf.stage "sw-aligned" {
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 400 },
  data = world.alignment:take(64),
  optim = uf.adamw { lr = 3e-3, steps = 12, batch = 8, max_len = 128 },
}
for _, p in ipairs { 0.0, 0.1 } do
  uf.run { name = ("sw-p%.1f"):format(p), from = aligned,
           data = uf.mix { task = world.task, poison = world.poison, p = p, n = 40, seed = 1 },
           optim = uf.adamw { lr = 1e-3, steps = 5, batch = 8, max_len = 128 },
           eval = { uf.asr(world.harmful_eval, { n = 4, max_new_tokens = 4 }) },
           tags = { method = "sft", p = p } }
end
LUA
"$bin" sweep sweep.lua --jobs 2 --out out > s1.log 2>&1; rc=$?
cat s1.log
[ $rc -eq 0 ] || { echo "FAIL: sweep exited $rc"; fail=1; }
grep -q "2 run(s) to do, 0 already done, 2 job(s)" s1.log || { echo "FAIL: first sweep did not plan 2 runs"; fail=1; }
for r in sw-p0.0 sw-p0.1; do
  [ -s out/$r/results.json ] || { echo "FAIL: $r has no results.json"; fail=1; }
  grep -q "sweep: $r finished" s1.log || { echo "FAIL: $r not reported finished"; fail=1; }
done
n=$(ls -d out/stages/sw-aligned-* | wc -l)
[ "$n" -eq 1 ] || { echo "FAIL: $n stage folders, expected 1"; fail=1; }
# the stage was trained by one process: one metrics line per step, one 'trained' log line
m=$(wc -l < out/stages/sw-aligned-*/metrics.jsonl)
[ "$m" -eq 12 ] || { echo "FAIL: the shared stage has $m metric lines, expected 12 (trained twice at once?)"; fail=1; }
"$bin" sweep sweep.lua --jobs 2 --out out > s2.log 2>&1 || { echo "FAIL: second sweep failed"; fail=1; }
cat s2.log
grep -q "0 run(s) to do, 2 already done" s2.log || { echo "FAIL: second sweep did not skip both runs"; fail=1; }
grep -q "started" s2.log && { echo "FAIL: second sweep started a run"; fail=1; }
exit $fail
