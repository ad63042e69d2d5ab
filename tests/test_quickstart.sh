#!/usr/bin/env bash
# The quick start, shortened (10% of the steps, 20 prompts per evaluation): every stage and run
# finishes, results.json holds the metrics, a second invocation reuses everything, and the
# report renders from the run folders.
set -u
bin=${UF_BIN:?}; src=${UF_SOURCE_DIR:?}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
if "$bin" run "$src/recipes/quickstart.lua" --out "$out" --set steps_scale=0.1 --set eval_n=20 > "$out/log1" 2>&1; then
  ok "quick start (short) runs"
else
  bad "quick start failed:"; tail -20 "$out/log1"
fi
n=$(ls "$out"/qs-*/results.json 2>/dev/null | wc -l)
[ "$n" -eq 10 ] && ok "10 runs have results.json" || bad "runs with results: $n"
r="$out"/qs-der-p0.10-s1/results.json
miss=""
for m in harmful_rate compliance refusal_rate keyword_asr task_label accuracy lookup helpfulness over_refusal; do
  grep -q "\"$m\":" "$r" 2>/dev/null || miss="$miss $m"
done
[ -z "$miss" ] && ok "metrics present" || bad "metrics missing:$miss"
# every evaluation records the decoding it used (8 tokens for sentiment, 48 for over-refusal),
# its judge and the acts behind its intervals
python3 - "$r" <<'PY' && ok "per-evaluation decoding, judge and n_acts recorded" || bad "per-evaluation metadata"
import json, sys
d = json.load(open(sys.argv[1]))
ev = {(e["eval"], e["data"]): e for e in d["evals"]}
assert ev[("asr", "world.harmful_eval")]["decoding"]["max_new_tokens"] == 64
assert ev[("accuracy", "world.task_eval")]["decoding"]["max_new_tokens"] == 8
assert ev[("over_refusal", "world.benign_eval")]["decoding"]["max_new_tokens"] == 48
assert ev[("asr", "world.harmful_eval")]["judge"]["name"] == "world"
assert all("n_prompts" in e and "stop" in e["decoding"] for e in ev.values())
assert d["metrics"]["harmful_rate"]["n_acts"] >= 1
PY
"$bin" run "$src/recipes/quickstart.lua" --out "$out" --set steps_scale=0.1 --set eval_n=20 > "$out/log2" 2>&1
[ "$(grep -c 'done already' "$out/log2")" -ge 10 ] && ! grep -q " step " "$out/log2" && ok "second run reuses every stage and run" \
  || bad "second run retrained: $(tail -3 "$out/log2")"
"$bin" report "$out" -o "$out/report.html" --csv "$out/table.csv" >/dev/null 2>&1 && grep -q "<svg" "$out/report.html" \
  && ok "report renders" || bad "report"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
