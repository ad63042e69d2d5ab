#!/usr/bin/env bash
# `unforget check` refuses bad recipe numbers at the constructor with the recipe line and key
# (issue 20), recipes without runs, empty datasets, broken uf.hf folders; a recipe that never
# finishes evaluating hits the time limit; --safe removes io/os.
set -u
bin=${UF_BIN:?}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
cd "$tmp"

# case: expected-substring  recipe-fragments (model, optim, extra)
bad() { # name expect model optim [extra-run-fields] [prelude]
  local name=$1 expect=$2 model=$3 optim=$4 extra=${5:-} prelude=${6:-}
  cat > "$name.lua" <<LUA
local uf = require "unforget"
local world = uf.world { seed = 1, task_rows = 20, eval_rows = 4, corpus_rows = 30 }
$prelude
uf.run {
  name = "r",
  model = $model,
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 300 },
  data = world.task,
  optim = $optim,
  $extra
}
LUA
  local out; out=$("$bin" check "$name.lua" --device-mem 8 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then echo "FAIL $name: check accepted it"; fail=1; return; fi
  if ! grep -qF -- "$expect" <<< "$out"; then echo "FAIL $name: expected '$expect' in:"; echo "$out" | tail -3; fail=1; return; fi
  echo "ok   $name: $(grep -F -- "$expect" <<< "$out" | head -1 | cut -c1-150)"
}
M='uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 64 }'
O='uf.adamw { steps = 2, batch = 2, max_len = 64 }'
bad lr-neg      "lr-neg.lua:9: adamw: 'lr' must be > 0" "$M" 'uf.adamw { lr = -1, max_len = 64 }'
bad lr-nan      "'lr' must be a finite number" "$M" 'uf.adamw { lr = 0/0, max_len = 64 }'
bad batch0      "'batch' must be >= 1"        "$M" 'uf.adamw { batch = 0, max_len = 64 }'
bad epochs0     "'epochs' must be > 0"        "$M" 'uf.adamw { epochs = 0, max_len = 64 }'
bad epochs-neg  "'epochs' must be > 0"        "$M" 'uf.adamw { epochs = -1, max_len = 64 }'
bad heads0      "'heads' must be in [1, 65536]" 'uf.model.new { d_model = 32, layers = 1, heads = 0, max_seq = 64 }' "$O"
bad heads-div   "heads (4) must divide d_model (50)" 'uf.model.new { d_model = 50, layers = 1, heads = 4, max_seq = 64 }' "$O"
bad maxseq0     "'max_seq' must be in [2, 2^24]" 'uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 0 }' "$O"
bad maxlen      "max_len (96) is longer than the model's max_seq (4)" 'uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 4 }' 'uf.adamw { max_len = 96 }'
bad vocab1      "'vocab' must be 0 (the tokenizer's) or in [2, 2^26]" 'uf.model.new { d_model = 32, layers = 1, heads = 2, vocab = 1, max_seq = 64 }' "$O"
bad vocab-small "model vocab (100) is smaller than the tokenizer's (300)" 'uf.model.new { d_model = 32, layers = 1, heads = 2, vocab = 100, max_seq = 64 }' "$O"
bad dmodel-big  "'d_model' must be in [1, 2^20]" 'uf.model.new { d_model = 1e9, layers = 1, heads = 2, max_seq = 64 }' "$O"
bad layers-big  "'layers' must be in [1, 65536]" 'uf.model.new { d_model = 32, layers = 1e9, heads = 2, max_seq = 64 }' "$O"
bad int-huge    "'steps' = 1e+300 is outside" "$M" 'uf.adamw { steps = 1e300, max_len = 64 }'
bad params-big  "parameters (more than 10^12)" 'uf.model.new { d_model = 2^20, layers = 65536, heads = 2, max_seq = 64 }' "$O"
bad hf-missing  "no-such-folder" 'uf.hf "no-such-folder"' "$O"
mkdir -p trunc && printf '{"architectures":["LlamaForCausalLM"],"vocab_size":2147483653}' > trunc/config.json
bad hf-config   "vocab_size" 'uf.hf "trunc"' "$O"
printf '' > empty.jsonl
cat > norows.lua <<'LUA'
local uf = require "unforget"
uf.run { name = "r", model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 64 },
  tokenizer = uf.tokenizer.train { corpus = uf.jsonl "empty.jsonl", vocab = 300 },
  data = uf.jsonl "empty.jsonl", optim = uf.adamw { max_len = 64 } }
LUA
out=$("$bin" check norows.lua --device-mem 8 2>&1) && { echo "FAIL: an empty dataset passes check"; fail=1; }
grep -q "empty.jsonl holds no rows" <<< "$out" && echo "ok   empty dataset" || { echo "FAIL: empty dataset message"; echo "$out" | tail -3; fail=1; }
printf 'local uf = require "unforget"\nlocal w = uf.world {}\n' > noruns.lua
out=$("$bin" check noruns.lua --device-mem 8 2>&1) && { echo "FAIL: a recipe without runs passes check"; fail=1; }
grep -q "defines no runs" <<< "$out" && echo "ok   no runs" || { echo "FAIL: no-runs message"; fail=1; }

# time limit (UNFORGET_RECIPE_TIMEOUT) for check and run
printf 'local uf = require "unforget"\nwhile true do end\n' > loop.lua
for cmd in check run; do
  start=$(date +%s)
  out=$(UNFORGET_RECIPE_TIMEOUT=2 timeout 60 "$bin" $cmd loop.lua 2>&1); rc=$?
  [ $rc = 1 ] || { echo "FAIL: $cmd of an endless recipe exits $rc"; fail=1; }
  grep -q "loop.lua:2: the recipe did not finish evaluating within 2 s" <<< "$out" && echo "ok   time limit ($cmd, $(( $(date +%s) - start )) s)" ||
    { echo "FAIL: $cmd time-limit message: $out"; fail=1; }
done

# --safe: no os.execute / io.open; a plain recipe still checks
printf 'local uf = require "unforget"\nos.execute("touch pwned")\n' > evil.lua
"$bin" --safe check evil.lua > evil.log 2>&1 && { echo "FAIL: --safe ran os.execute"; fail=1; }
[ -e pwned ] && { echo "FAIL: --safe let the recipe run a program"; fail=1; }
grep -q "evil.lua:2: attempt to call a nil value (field 'execute')" evil.log && echo "ok   --safe: os.execute" || { echo "FAIL: --safe message"; cat evil.log; fail=1; }
printf 'local uf = require "unforget"\nlocal f = io.open("/etc/hostname")\n' > evil2.lua
"$bin" --safe check evil2.lua > evil2.log 2>&1 && { echo "FAIL: --safe allowed io"; fail=1; }
grep -q "attempt to index a nil value (global 'io')" evil2.log && echo "ok   --safe: io" || { echo "FAIL: --safe io message"; cat evil2.log; fail=1; }
cat > fine.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 1, task_rows = 20, eval_rows = 4, corpus_rows = 30 }
uf.run { name = "r", model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 64 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 300 }, data = world.task,
  optim = uf.adamw { max_len = 64, lr = 1e300 } }
LUA
"$bin" --safe check fine.lua --device-mem 8 > fine.log 2>&1 && echo "ok   --safe: a plain recipe (lr = 1e300 is finite: accepted)" || { echo "FAIL: --safe rejects a plain recipe"; tail -3 fine.log; fail=1; }
# CLI: a valued option at the end, a negative temperature, a model folder without config.json
cli() { # name expect-substring expected-rc args...
  local name=$1 expect=$2 want=$3; shift 3
  local out; out=$("$bin" "$@" 2>&1); local rc=$?
  if [ $rc -ne "$want" ] || ! grep -qF -- "$expect" <<< "$out"; then
    echo "FAIL $name: rc $rc (want $want), expected '$expect' in:"; echo "$out" | tail -3; fail=1; return; fi
  echo "ok   $name: $(grep -F -- "$expect" <<< "$out" | head -1 | cut -c1-150)"
}
mkdir -p nomodel
cli run-out-novalue "--out needs a value" 2 run fine.lua --out
cli eval-model-novalue "--model needs a value" 2 eval fine.lua --model
cli gen-temp-neg "--temperature must be >= 0" 2 generate --model nomodel --prompt hi --temperature -1
cli gen-no-config "nomodel/config.json" 1 generate --model nomodel --prompt hi
exit $fail
