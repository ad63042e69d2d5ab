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
grep -q '"asr"' "$out"/qs-der-p0.10-s1/results.json 2>/dev/null && grep -q '"over_refusal"' "$out"/qs-der-p0.10-s1/results.json \
  && ok "metrics present" || bad "metrics missing"
"$bin" run "$src/recipes/quickstart.lua" --out "$out" --set steps_scale=0.1 --set eval_n=20 > "$out/log2" 2>&1
[ "$(grep -c 'done already' "$out/log2")" -ge 10 ] && ! grep -q " step " "$out/log2" && ok "second run reuses every stage and run" \
  || bad "second run retrained: $(tail -3 "$out/log2")"
"$bin" report "$out" -o "$out/report.html" --csv "$out/table.csv" >/dev/null 2>&1 && grep -q "<svg" "$out/report.html" \
  && ok "report renders" || bad "report"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
