#!/usr/bin/env bash
# Every recipe in recipes/ passes `unforget check` (keys valid, files present). Recipes that read
# ../shared/datasets are checked only when that folder exists. A recipe planned for another card
# than this machine's names the check arguments on a line "-- check-args: --device-mem 24".
# Recipes whose only problems are absent Hugging Face model folders (7B weights) are skipped.
set -u
bin=${UF_BIN:?}; src=${UF_SOURCE_DIR:?}
pass=0; fail=0; skip=0
cd "$src"
while IFS= read -r r; do
  if grep -q "uf\.shared\|advbench\|gsm8k\|sst2" "$r" && [ ! -d ../shared/datasets ]; then
    skip=$((skip+1)); echo "skip $r (../shared/datasets absent)"; continue
  fi
  args=$(sed -n 's/^-- check-args: //p' "$r" | head -1)
  # shellcheck disable=SC2086
  if out=$("$bin" check "$r" $args 2>&1); then pass=$((pass+1)); echo "ok   $r"
  elif n=$(grep -c "missing model folder" <<< "$out") && [ "$n" -gt 0 ] &&
       grep -q "has $n problem(s)" <<< "$out"; then # only Hugging Face folders it names are absent
    skip=$((skip+1)); echo "skip $r (model folders absent: $(grep -o 'missing model folder: [^ ]*' <<< "$out" | sort -u | cut -d' ' -f4 | tr '\n' ' '))"
  else fail=$((fail+1)); echo "FAIL $r"; echo "$out" | tail -5; fi
done < <(find recipes -name '*.lua' | sort)
# act roles: a buffer drawn from the alignment data shares acts with the harmful evaluation (and
# the poison): check refuses it, unless the run says allow_overlap = true
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed 's/local buffer = world.safety:sample(200, seed)/local buffer = world.alignment:sample(200, seed)/' \
  recipes/quickstart.lua > "$tmp/overlap.lua"
if out=$("$bin" check "$tmp/overlap.lua" 2>&1); then fail=$((fail+1)); echo "FAIL overlapping buffer/eval acts accepted"
elif echo "$out" | grep -q "replay buffer and the harmful evaluation share 10 act(s)" \
     && echo "$out" | grep -q "allow_overlap = true"; then pass=$((pass+1)); echo "ok   overlapping acts refused"
else fail=$((fail+1)); echo "FAIL overlap message: $(echo "$out" | tail -3)"; fi
sed 's/      tags = {/      allow_overlap = true, tags = {/' "$tmp/overlap.lua" > "$tmp/allowed.lua"
if out=$("$bin" check "$tmp/allowed.lua" 2>&1); then pass=$((pass+1)); echo "ok   allow_overlap = true accepted"
else fail=$((fail+1)); echo "FAIL allow_overlap: $(echo "$out" | tail -3)"; fi
# the time estimate of a DeRTa stage with RTO bounds its rows at twice the data's (one RTO row per
# harmful row at most); derta.lua's stage and its run train on the same 80-row mixture
out=$("$bin" check recipes/examples/derta.lua 2>&1)
n=$(grep -o 'time       train: [0-9]* rows' <<< "$out" | head -1 | grep -o '[0-9]*')
if [ -n "$n" ] && grep -q "train (with DeRTa RTO rows, at most 2x): $((2 * n)) rows" <<< "$out"; then
  pass=$((pass+1)); echo "ok   DeRTa stage time estimate counts RTO rows"
else fail=$((fail+1)); echo "FAIL DeRTa time estimate: $(grep 'time ' <<< "$out")"; fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
