#!/usr/bin/env bash
# Device selection and the kernel cache through the CLI:
#  - `unforget devices` lists the CPU device; a bad selector fails with exit code 2 and a message;
#  - the second run with the same cache dir reports "kernel cache hit" and compiles nothing.
set -u
bin=${UF_BIN:?}
fail=0; pass=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

out=$("$bin" devices 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "type *CPU" && ok "devices lists a CPU device" || bad "devices: rc=$rc $out"

out=$(UNFORGET_DEVICE=nonsense "$bin" devices 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "no OpenCL device matches 'nonsense'" && ok "bad UNFORGET_DEVICE -> exit 2" || bad "bad selector: rc=$rc $out"

out=$("$bin" --device gpu:7 devices 2>&1); rc=$?
[ $rc -eq 2 ] && ok "bad --device -> exit 2" || bad "bad --device: rc=$rc"

out=$("$bin" --device cpu devices 2>&1); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^selected:" && ok "--device cpu selects" || bad "--device cpu: rc=$rc"

out=$("$bin" nosuchcommand 2>&1); rc=$?
[ $rc -eq 2 ] && ok "unknown command -> exit 2" || bad "unknown command rc=$rc"

"$bin" --help | grep -q "devices" && ok "--help lists commands" || bad "--help"

cache=$(mktemp -d)
out1=$(UNFORGET_CACHE_DIR=$cache "$bin" -v --device cpu selftest 2>&1); rc1=$?
out2=$(UNFORGET_CACHE_DIR=$cache "$bin" -v --device cpu selftest 2>&1); rc2=$?
echo "$out1" | grep -q "kernel cache miss" && [ $rc1 -eq 0 ] && ok "first run compiles" || bad "first run: $out1"
echo "$out2" | grep -q "kernel cache hit" && ! echo "$out2" | grep -q "kernel cache miss" && [ $rc2 -eq 0 ] \
  && ok "second run: kernel cache hit, no compile" || bad "second run: $out2"
rm -rf "$cache"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
