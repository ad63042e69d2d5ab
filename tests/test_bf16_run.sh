#!/usr/bin/env bash
# `unforget run` honours uf.adamw { bf16 = true, checkpointing = true }: the run ex-lora-bf16 of
# recipes/examples/lora.lua logs a bf16 base with checkpointing, trains, evaluates and writes
# results.json and the merged model; bf16 = true without uf.lora is refused with the reason.
set -u
bin=${UF_BIN:?}; src=${UF_SOURCE_DIR:?}
cd "$src"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
if ! "$bin" run recipes/examples/lora.lua --out "$out" --only ex-lora-bf16 > "$out/log.txt" 2>&1; then
  echo "FAIL: run failed"; tail -5 "$out/log.txt"; exit 1
fi
grep -q "model: base weights bf16, activation checkpointing on" "$out/log.txt" ||
  { echo "FAIL: the run did not use a bf16 base with checkpointing"; grep "model:" "$out/log.txt"; exit 1; }
for f in results.json model/model.safetensors model/config.json metrics.jsonl; do
  [ -s "$out/ex-lora-bf16/$f" ] || { echo "FAIL: missing $f"; exit 1; }
done
echo "ok: $(grep 'model: base' "$out/log.txt" | tail -1)"
cat > "$out/nolora.lua" <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 1, task_rows = 20, eval_rows = 4, corpus_rows = 100 }
uf.run { name = "x", model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 64 },
         tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 300 },
         data = world.task, optim = uf.adamw { steps = 1, batch = 2, max_len = 32, bf16 = true } }
LUA
if "$bin" run "$out/nolora.lua" --out "$out/r2" > "$out/log2.txt" 2>&1; then
  echo "FAIL: bf16 = true without LoRA was accepted"; exit 1
fi
grep -q "needs uf.lora" "$out/log2.txt" || { echo "FAIL: no reason given"; tail -3 "$out/log2.txt"; exit 1; }
echo "ok: refused: $(grep -o 'optim bf16.*' "$out/log2.txt" | head -1)"
