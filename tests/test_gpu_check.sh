#!/usr/bin/env bash
# tests/gpu_check.sh (the prepared GPU run) without a GPU: its syntax, its --dry-run plan (every
# step named, the 7B-shaped LoRA step) and its usage errors. The real run is
# `tests/gpu_check.sh --device cpu` (minutes), not part of CI.
set -u
src=${UF_SOURCE_DIR:?}
fail=0; pass=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
script="$src/tests/gpu_check.sh"
bash -n "$script" && ok "syntax" || bad "bash -n"
for dev in gpu cpu; do
  out=$(bash "$script" --dry-run --device "$dev" 2>&1); rc=$?
  echo "$out"
  [ $rc -eq 0 ] && ok "--dry-run --device $dev exits 0" || bad "--dry-run --device $dev rc=$rc"
  for s in devices "selftest --full" "ctest -L device" "bench d256" "bench d512" "bench 7B-shaped LoRA" "torch d256"; do
    echo "$out" | grep -q "] $s (limit" || bad "$dev: step '$s' missing"
  done
  echo "$out" | grep -q -- "--config llama2-7b --layers [0-9]" && ok "$dev: 7B-shaped LoRA step planned" \
    || bad "$dev: no 7B-shaped step"
done
# the GPU plan on whatever device is here (selector 0): the 7B layer count from its memory is
# 1..32, and nothing is written into the working folder
bin=${UF_BIN:-}
if [ -n "$bin" ] && [ -x "$bin" ]; then
  work=$(mktemp -d)
  out=$(cd "$work" && bash "$script" --dry-run --device 0 --build "$(dirname "$bin")" 2>&1); rc=$?
  layers=$(echo "$out" | sed -n 's/.*--config llama2-7b --layers \([0-9]*\) .*/\1/p')
  [ $rc -eq 0 ] && [ -n "$layers" ] && [ "$layers" -ge 1 ] && [ "$layers" -le 32 ] \
    && ok "7B layers from the device memory: $layers" || bad "7B layers: rc=$rc '$layers' $out"
  [ -z "$(ls -A "$work")" ] && ok "--dry-run writes nothing" || bad "--dry-run wrote: $(ls -A "$work")"
  rm -rf "$work"
fi
bash "$script" --bogus >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "unknown option -> exit 2" || bad "unknown option rc=$rc"
bash "$script" --budget soon --dry-run >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "bad --budget -> exit 2" || bad "bad --budget rc=$rc"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
