#!/usr/bin/env bash
# `unforget check` prints the memory plan of recipes/paper/llama2_7b_plan.lua (Llama-2-7B shape,
# LoRA r 8, seq 512, micro-batch 4, bf16 base, checkpointing) for a 24 GiB card: exit 0, the
# printed total is below 22 GiB and at least the bf16 weights (2 bytes x the printed parameter
# count); without checkpointing and bf16 the plan does not fit: exit 1 naming the knobs.
set -u
bin=${UF_BIN:?}; src=${UF_SOURCE_DIR:?}
r="$src/recipes/paper/llama2_7b_plan.lua"
cd "$src"
out=$("$bin" check "$r" --device-mem 24 2>&1) || { echo "FAIL: check exited non-zero"; echo "$out"; exit 1; }
echo "$out" | grep -E "weights|activations|KV|total|peak"
# the first run is Llama-2-7B (the recipe also plans Mistral-7B and Gemma-2B: all must fit too)
total=$(echo "$out" | sed -n 's/.*memory     total [0-9.]* GiB (\([0-9]*\) bytes).*/\1/p' | head -1)
mparams=$(echo "$out" | sed -n 's/.*: \([0-9.]*\)M params.*/\1/p' | head -1)
echo "$out" | grep -q "run   llama2-7b-lora-plan" || { echo "FAIL: the first run is not the Llama-2-7B plan"; exit 1; }
echo "$out" | grep -q "3 run(s): ok" || { echo "FAIL: not every plan fits"; exit 1; }
[ -n "$total" ] && [ -n "$mparams" ] || { echo "FAIL: no total / parameter count printed"; exit 1; }
limit=$((22 * 1024 * 1024 * 1024))
floor=$(awk -v m="$mparams" 'BEGIN { printf "%.0f", m * 1e6 * 2 * 0.999 }')
[ "$total" -lt "$limit" ] || { echo "FAIL: total $total >= 22 GiB"; exit 1; }
[ "$total" -gt "$floor" ] || { echo "FAIL: total $total below the bf16 weights ($floor)"; exit 1; }
echo "ok: total $total bytes < 22 GiB ($limit), > bf16 weights $floor"
if out2=$("$bin" check "$r" --device-mem 24 --set checkpointing=false --set bf16=false 2>&1); then
  echo "FAIL: an f32, no-checkpointing 7B plan fits 24 GiB?"; exit 1
fi
echo "$out2" | grep -q "checkpointing = true" && echo "$out2" | grep -q "bf16 = true" ||
  { echo "FAIL: the refusal does not name the knobs"; echo "$out2"; exit 1; }
echo "ok: refused: $(echo "$out2" | grep 'memory plan' | head -1)"
