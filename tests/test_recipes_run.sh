#!/usr/bin/env bash
# A chosen few example recipes run end to end (train, evaluate, results.json) on the default
# device, all into one output folder so the shared tiny stage "ex-aligned" is trained once and
# reused (one stages/ex-aligned-* folder; derta.lua adds its own DeRTa stage, ex-derta-aligned).
# Each run's results.json must hold the metrics its evaluations name. Bounded to a few minutes on
# a 2-core CPU (PoCL).
set -u
bin=${UF_BIN:?}; src=${UF_SOURCE_DIR:?}
cd "$src"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fail=0
t0=$(date +%s)

run() { # recipe [args...]
  local r=$1; shift
  local s=$(date +%s)
  if ! "$bin" -q run "recipes/examples/$r" --out "$out" "$@" > "$out/log-${r%.lua}.txt" 2>&1; then
    echo "FAIL run $r $*"; tail -5 "$out/log-${r%.lua}.txt"; fail=1; return
  fi
  echo "ok   run $r $* ($(( $(date +%s) - s )) s)"
}
expect() { # run-name metric...
  local name=$1; shift
  local f="$out/$name/results.json"
  if [ ! -f "$f" ]; then echo "FAIL $name: no results.json"; fail=1; return; fi
  for m in "$@"; do
    if ! grep -q "\"$m\":" "$f"; then echo "FAIL $name: results.json lacks metric '$m'"; fail=1; fi
  done
  for p in model/model.safetensors model/config.json model/tokenizer.json metrics.jsonl samples.jsonl; do
    [ -s "$out/$name/$p" ] || { echo "FAIL $name: missing $p"; fail=1; }
  done
}

run jsonl.lua
expect ex-jsonl accuracy
run mix.lua --set p=0.2
expect ex-mix-p0.20 harmful_rate compliance refusal_rate keyword_asr task_label accuracy helpfulness over_refusal
grep -q '"poison_ratio":[[:space:]]*0.2' "$out/ex-mix-p0.20/results.json" || { echo "FAIL ex-mix-p0.20: poison_ratio is not 0.2"; fail=1; }
run memory.lua
for r in ex-er ex-der ex-der-top8 ex-derpp ex-agem ex-refresh; do expect $r harmful_rate keyword_asr accuracy over_refusal; done
grep -q '"der":' "$out/ex-der/metrics.jsonl" || { echo "FAIL ex-der: metrics.jsonl has no der loss term"; fail=1; }
run composition.lua
expect ex-der-ewc-ties harmful_rate accuracy over_refusal
grep -q '"method":[[:space:]]*"der+ewc+ties"' "$out/ex-der-ewc-ties/results.json" || { echo "FAIL composition: method label"; fail=1; }
run baselines.lua
for r in ex-safeinstr ex-safelora ex-lisa ex-safegrad ex-ema ex-der-safegrad-ema ex-tokensel; do expect $r harmful_rate keyword_asr accuracy over_refusal; done
grep -q '"safegrad":' "$out/ex-der-safegrad-ema/metrics.jsonl" || { echo "FAIL ex-der-safegrad-ema: metrics.jsonl has no safegrad loss term"; fail=1; }
grep -q '"tokensel":' "$out/ex-tokensel/metrics.jsonl" || { echo "FAIL ex-tokensel: metrics.jsonl has no tokensel term"; fail=1; }
run regularisation.lua
for r in ex-ewc ex-ewc-true ex-l2sp ex-lwf; do expect $r harmful_rate keyword_asr accuracy over_refusal; done
run merging.lua
for r in ex-magmax ex-linear ex-task-arith ex-ties; do expect $r harmful_rate keyword_asr accuracy over_refusal; done
run lora.lua
for r in ex-lora ex-lora-qv-der; do expect $r harmful_rate keyword_asr accuracy over_refusal; done
run opt.lua --set method=lwf --set name=ex-opt-lwf --set steps=5
expect ex-opt-lwf harmful_rate
[ "$(wc -l < "$out/ex-opt-lwf/metrics.jsonl")" -eq 5 ] || { echo "FAIL opt.lua: --set steps=5 did not give 5 metric lines"; fail=1; }
run derta.lua
expect ex-derta-der harmful_rate keyword_asr accuracy over_refusal
# the DeRTa stage: every harmful row of its 80 alignment rows got a world harmful answer, one RTO row each
grep -q 'derta: 40 of 40 harmful rows with a harmful response; prefix on .*, 40 RTO rows of weight 1' \
  "$out"/stages/ex-derta-aligned-*/log.txt || { echo "FAIL ex-derta-aligned: no derta line in its log"; fail=1; }
grep -q '120 rows, 10 steps' "$out"/stages/ex-derta-aligned-*/log.txt || { echo "FAIL ex-derta-aligned: not 80 + 40 rows"; fail=1; }

n_stage=$(ls -d "$out"/stages/ex-aligned-* 2>/dev/null | wc -l)
[ "$n_stage" -eq 1 ] || { echo "FAIL: expected one cached ex-aligned stage, found $n_stage"; fail=1; }
[ -d "$out"/stages/ex-aligned-*/pretrain/model ] || { echo "FAIL: the stage did not save its pre-alignment weights (pretrain/model)"; fail=1; }
# the runs make one report (every results.json has method, model, task, setting)
if "$bin" -q report "$out"/ex-* -o "$out/report.html" --csv "$out/report.csv" > "$out/report.log" 2>&1; then
  grep -q '^der+ewc+ties,' "$out/report.csv" || { echo "FAIL: report.csv lacks the composed run"; fail=1; }
  echo "ok   report over $(ls -d "$out"/ex-* | wc -l) runs"
else
  echo "FAIL: unforget report"; tail -3 "$out/report.log"; fail=1
fi
echo "total $(( $(date +%s) - t0 )) s"
exit $fail
