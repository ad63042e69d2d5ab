#!/usr/bin/env bash
# `unforget sweep` on a 2-run recipe with --jobs 2: both runs finish (sharing one stage, trained
# once even though two processes need it at the same time); a second invocation skips both.
# `unforget status` (done, running = lock held, failed = error line, pending), and --devices
# (round-robin assignment in --dry-run; two selectors of the one PoCL CPU device in a real sweep).
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
if uf.opt("bad", 0) == 1 then -- a run that fails at run time (its data file is missing)
  uf.run { name = "sw-bad", from = aligned, data = uf.jsonl { path = "missing.jsonl", kind = "task" },
           optim = uf.adamw { steps = 2, batch = 2, max_len = 128 } }
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

# ---- status -----------------------------------------------------------------------------------
"$bin" status out > st1.log; cat st1.log
grep -q "^out: 2 run(s): 2 done, 0 running, 0 failed, 0 stopped, 0 pending$" st1.log || { echo "FAIL: status after the sweep"; fail=1; }
grep -q "^stage  sw-aligned-[0-9a-f]*  *done$" st1.log || { echo "FAIL: status does not list the stage done"; fail=1; }
"$bin" sweep sweep.lua --out out --set bad=1 > s3.log 2>&1 && { echo "FAIL: a sweep with a failing run exited 0"; fail=1; }
"$bin" sweep sweep.lua --out out --set bad=1 --status > st2.log; cat st2.log
grep -q "2 done, 0 running, 1 failed" st2.log || { echo "FAIL: sweep --status does not count the failed run"; fail=1; }
grep -q "^run    sw-bad  *failed  .* error: run sw-bad: .*missing.jsonl" st2.log || { echo "FAIL: status does not show the failed run's error line"; fail=1; }
rm -rf out/sw-p0.1/results.json out/sw-p0.1/model
if command -v python3 >/dev/null; then # hold sw-p0.1's lock as a run process would (fcntl)
  python3 -c 'import fcntl,sys,time; f=open("out/sw-p0.1/.lock","w"); fcntl.lockf(f, fcntl.LOCK_EX); f.write("host test pid 1 since now\n"); f.flush(); print("locked", flush=True); time.sleep(30)' > lk.log &
  lk=$!
  for _ in $(seq 50); do grep -qs locked lk.log && break; sleep 0.1; done
  "$bin" status out > st3.log; cat st3.log
  grep -q "^run    sw-p0.1  *running  host test pid 1 since now" st3.log || { echo "FAIL: status does not show a held lock as running"; fail=1; }
  # a run whose lock is held is not trained by a second process: `run` waits for it
  timeout 3 "$bin" run sweep.lua --out out --only sw-p0.1 > w.log 2>&1
  grep -q "waiting for the process that is training it (host test pid 1 since now)" w.log || { echo "FAIL: run did not wait for the lock"; cat w.log; fail=1; }
  kill $lk; wait $lk 2>/dev/null
fi
rm -rf out/sw-p0.1
"$bin" status out > st4.log; cat st4.log
grep -q "^run    sw-p0.1  *pending$" st4.log || { echo "FAIL: status does not show a run without folder as pending"; fail=1; }

# ---- --devices ---------------------------------------------------------------------------------
"$bin" sweep sweep.lua --out out2 --devices cpu,0,cpu --dry-run > d1.log 2>&1; cat d1.log
grep -q "2 run(s) to do, 0 already done, 3 device(s), one process each" d1.log || { echo "FAIL: --devices dry run header"; fail=1; }
grep -q "would start sw-p0.0 on cpu$" d1.log && grep -q "would start sw-p0.1 on 0$" d1.log \
  || { echo "FAIL: --devices does not assign round-robin"; fail=1; }
[ -e out2 ] && { echo "FAIL: --dry-run created the output folder"; fail=1; }
"$bin" sweep sweep.lua --out out2 --devices nosuchdevice > d2.log 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "'nosuchdevice' matches no device" d2.log || { echo "FAIL: a bad --devices entry is not a usage error (rc $rc)"; fail=1; }
"$bin" sweep sweep.lua --out out2 --devices all --dry-run > d3.log 2>&1
grep -q "1 device(s)" d3.log || { echo "FAIL: --devices all on a machine without GPU is not one device"; cat d3.log; fail=1; }
"$bin" sweep sweep.lua --out out2 --devices cpu,0 > d4.log 2>&1 || { echo "FAIL: the --devices sweep failed"; cat d4.log; fail=1; }
cat d4.log
grep -q "started sw-p0.0 on cpu (1/2)" d4.log && grep -q "started sw-p0.1 on 0 (2/2)" d4.log \
  || { echo "FAIL: the --devices sweep did not start one run per device"; fail=1; }
for r in sw-p0.0 sw-p0.1; do
  cmp out2/$r/model/model.safetensors out/$r/model/model.safetensors 2>/dev/null || [ $r = sw-p0.1 ] \
    || { echo "FAIL: $r differs between the --devices sweep and the plain one"; fail=1; }
done
exit $fail
