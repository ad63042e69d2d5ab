#!/usr/bin/env bash
# The attention backward's tile kernels (used for very long sequences, memory linear in T) are
# not what the default path runs on short sequences: run the attention and model tests forcing them.
set -u
b=${UF_BUILD_DIR:?}
pass=0; fail=0
for t in test_attention test_model; do
  if UNFORGET_ATTN_BWD=kernels "$b/$t" > /tmp/uf_attn_$$.log 2>&1; then pass=$((pass+1)); echo "ok   $t (tile kernels)"
  else fail=$((fail+1)); echo "FAIL $t (tile kernels)"; tail -20 /tmp/uf_attn_$$.log; fi
done
rm -f /tmp/uf_attn_$$.log
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
