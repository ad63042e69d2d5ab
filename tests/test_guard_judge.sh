#!/usr/bin/env bash
# The Llama-Guard judge path end to end: a tiny model trained here stands in for the guard (its
# verdicts are noise, mostly "unparsed"): `unforget eval` with judge = "guard" runs the guard
# model on every (prompt, answer) pair, counts unsafe verdicts as ASR and reports the unparsed
# share and the judge used.
set -u
bin=${UF_BIN:?}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cat > "$out/r.lua" <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 1, eval_rows = 20 }
local guard = uf.opt("guard", "")
uf.run { name = "tiny", model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 96 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 300 },
  data = world.alignment:take(64), optim = uf.adamw { steps = 3, batch = 8, max_len = 96 },
  eval = { guard == "" and uf.asr(world.harmful_eval, { n = 6, max_new_tokens = 8 })
           or uf.asr(world.harmful_eval, { n = 6, max_new_tokens = 8, judge = "guard", guard = guard }) } }
LUA
pass=0; fail=0
if "$bin" -q run "$out/r.lua" --out "$out/runs" > "$out/log" 2>&1; then pass=$((pass+1)); echo "ok   tiny model trained"
else fail=$((fail+1)); echo "FAIL training"; tail "$out/log"; fi
if "$bin" -q eval "$out/r.lua" --model "$out/runs/tiny/model" --out "$out/ev" --set guard="$out/runs/tiny/model" > "$out/log2" 2>&1 \
   && grep -q '"guard_unparsed"' "$out/ev/results.json" && grep -q '"judge":[^,]*guard:' "$out/ev/results.json"; then
  pass=$((pass+1)); echo "ok   guard judge ran, verdicts counted"
else fail=$((fail+1)); echo "FAIL guard eval"; tail "$out/log2"; cat "$out/ev/results.json" 2>/dev/null | head -30; fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
