#!/usr/bin/env bash
# Strict-device CI: the engine on oclgrind (Debian `oclgrind`, installed by ./setup.sh test), an
# OpenCL simulator that reports itself as a GPU (32 KiB local memory, 1,024 work-items per group),
# with its data-race (--data-races) and API (--check-api) checks. PoCL runs a work-group's items
# in loops on one core, which hides races, missing barriers and out-of-bounds accesses.
#  1. `unforget selftest --full` under oclgrind: every kernel family forward and backward on tiny
#     shapes, both GEMM backends (CLBlast and the own kernels), bf16 GEMM, every attention
#     head-dim instance that fits 32 KiB of local memory with both backward forms, one tiny
#     training step (loss and every gradient vs the reference model, AdamW) and one KV-cache
#     generation (logits vs the reference's full forward). Zero oclgrind reports, every case ok.
#  2. `unforget selftest` (the quick cases, among them the in-place cross-entropy) with
#     -DUF_TEST_RACE=1 in the kernels' build options (a test-only build of opencl/loss.cl without
#     the barrier that orders the in-place dlogits writes after the reads): oclgrind must report a
#     data race, so the check can fail.
# UNFORGET_GEMM=clblast skips the GEMM backend measurement (minutes on a simulator); the cases
# force each backend themselves. A fresh kernel cache per run (UNFORGET_CACHE_DIR). Exit 77
# (skip) without oclgrind.
set -u
bin=${UF_BIN:?}
if ! command -v oclgrind >/dev/null 2>&1; then
  echo "skip: oclgrind not installed (Debian package 'oclgrind'; ./setup.sh test installs it)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

run() { # name, log, selftest option ("--full" or ""), extra oclgrind args...
  local name=$1 log=$2 mode=$3; shift 3
  local t0=$SECONDS
  mkdir -p "$work/cache-$name"
  UNFORGET_CACHE_DIR="$work/cache-$name" UNFORGET_GEMM=clblast \
    oclgrind --data-races --check-api --log "$log" "$@" "$bin" selftest $mode \
    > "$work/$name.out" 2>&1
  local rc=$?
  local n; n=$(grep -c . "$log" 2>/dev/null)
  echo "$name: exit $rc, $((SECONDS - t0)) s, ${n:-0} oclgrind log lines"
  return $rc
}

run strict "$work/strict.log" --full; rc=$?
cat "$work/strict.out"
if [ $rc -ne 0 ]; then echo "FAIL selftest --full under oclgrind exited $rc"; fail=1; fi
grep -q "Oclgrind" "$work/strict.out" || { echo "FAIL did not run on the Oclgrind device"; fail=1; }
if [ -s "$work/strict.log" ]; then
  echo "FAIL oclgrind reported errors:"; head -60 "$work/strict.log"; fail=1
else
  echo "ok   no oclgrind reports (races, API misuse, out-of-bounds)"
fi

run racy "$work/racy.log" "" --build-options -DUF_TEST_RACE=1
if grep -q "data race" "$work/racy.log"; then
  echo "ok   the deliberately racy build is caught: $(grep -c 'data race' "$work/racy.log") race reports ($(grep -m1 'Kernel:' "$work/racy.log" | tr -d '\t'))"
else
  echo "FAIL the racy build (UF_TEST_RACE) was not caught"; tail -20 "$work/racy.out"; fail=1
fi
exit $fail
