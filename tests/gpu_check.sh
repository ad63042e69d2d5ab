#!/usr/bin/env bash
# gpu_check.sh: the prepared GPU run (README "Running on a GPU"). On a machine with a GPU and this
# repository built (./setup.sh build), in under 10 minutes, each step under its own time limit
# and all under one deadline:
#   1. the devices: `clinfo -l` (when installed) and `unforget devices`
#   2. `unforget selftest --full` on the device
#   3. the device tests (ctest -L device, which needs no oclgrind; not the *_gpulimits entries,
#      and with --device cpu not test_bigshape)
#   4. `unforget bench` d256 (--profile), d512 and a Llama-2-7B-shaped LoRA step (`--config
#      llama2-7b`: bf16 base, LoRA r 8 on all linears, checkpointing, 4 x 512 tokens; as many of
#      the 32 layers as the device memory holds, at about 0.45 GiB each), the last two with
#      --roofline here (the performance model's prediction from this device's measured peaks
#      beside the measured time, per kernel family)
#   5. the PyTorch peer, tests/bench_torch.py d256 and d512 (--device cuda), when $PYTHON
#      (default: python3, else /usr/bin/python3, whichever imports torch) has torch and torch
#      sees a GPU
# Logs: OUT/NN-step.log; one line per step (status, seconds) and its figures from the log in
# OUT/summary.txt (also printed). Exit 0 when every step that ran passed, 1 otherwise.
#
# usage: tests/gpu_check.sh [--device SEL] [--out DIR] [--build DIR] [--budget S] [--dry-run]
#   --device SEL  unforget's device selector (default gpu). `--device cpu` runs the same steps on
#                 PoCL with shapes small enough for a CPU (1-2 bench steps, 7B widths with 1 layer
#                 and 1 x 128 tokens, the torch peer on the CPU): it checks this script.
#   --out DIR     where logs and summary.txt go (default gpu_check-DATE-TIME)
#   --build DIR   the build folder with unforget and the tests (default build)
#   --budget S    the deadline in seconds (default 570)
#   --dry-run     print the steps' commands, run nothing (CI checks the script this way)
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
dev=gpu out="" build="$root/build" budget=570 dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) dev="${2:?--device needs a selector}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --build) build="$(cd "${2:?--build needs a folder}" 2>/dev/null && pwd)" || { echo "gpu_check.sh: no folder '$2'" >&2; exit 2; }; shift 2 ;;
    --budget) budget="${2:?--budget needs seconds}"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$budget" in ''|*[!0-9]*) echo "gpu_check.sh: --budget needs whole seconds" >&2; exit 2 ;; esac
bin="$build/unforget"
py="${PYTHON:-}" # the first of python3, /usr/bin/python3 that imports torch
if [ -z "$py" ] && [ $dry -eq 0 ]; then
  for p in python3 /usr/bin/python3; do
    "$p" -c 'import torch' >/dev/null 2>&1 && { py=$p; break; }
  done
fi
py=${py:-python3}
out="${out:-gpu_check-$(date +%Y%m%d-%H%M%S)}"
cpu=0
[ "$dev" = cpu ] && cpu=1
if [ $dry -eq 0 ]; then
  [ -x "$bin" ] || { echo "gpu_check.sh: $bin not built (./setup.sh build, or --build DIR)" >&2; exit 2; }
  mkdir -p "$out" || exit 2
fi
export UNFORGET_DEVICE="$dev"
unset UNFORGET_DEVICE_LIMITS   # the device's own limits and kernel variants
t_start=$SECONDS n=0 failed=0
summary="$out/summary.txt"

note() { # a line into the summary (and on stdout)
  echo "$*"
  [ $dry -eq 1 ] || echo "$*" >> "$summary"
}

# step NAME CAP_SECONDS FIGURES_FN CMD...: runs CMD with a limit of min(CAP, time left), its
# output into OUT/NN-NAME.log; FIGURES_FN LOG prints the figures for the summary line.
step() {
  local name=$1 cap=$2 fig=$3; shift 3
  n=$((n + 1))
  local log; log="$out/$(printf '%02d' $n)-${name// /_}.log"
  last_log=$log
  if [ $dry -eq 1 ]; then
    echo "[$n] $name (limit ${cap} s): $*"
    return 0
  fi
  local left=$((budget - (SECONDS - t_start)))
  if [ $left -lt 15 ]; then
    note "$(printf '%-22s %-8s %6s  %s' "$name" skipped - "the ${budget} s deadline is reached")"
    return 0
  fi
  [ $cap -gt $left ] && cap=$left
  local t0=$SECONDS rc status
  echo "== [$n] $name (limit ${cap} s): $*" > "$log"
  timeout -k 10 "$cap" "$@" >> "$log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    77) status=skipped ;;
    124|137) status=timeout; failed=1 ;;
    *) status="exit $rc"; failed=1 ;;
  esac
  note "$(printf '%-22s %-8s %6s  %s' "$name" "$status" "$((SECONDS - t0))" "$(basename "$log")")"
  $fig "$log" | sed 's/^/      /' | while IFS= read -r line; do note "$line"; done
}

# ---- figures read from the logs ----
fig_head() { sed -n '2,9p' "$1"; }
fig_devices() { grep -E "^(selected|used with):" "$1"; }
fig_selftest() { grep -E "^(selftest on|FAIL|all ok|[0-9]+ case)" "$1"; }
fig_ctest() { grep -E "tests passed|tests failed out of|^\s+[0-9]+ - |Total Test time" "$1" | head -12; }
fig_bench() { # the bench's figures, its 6 slowest kernels, with --roofline here the prediction
  grep -E "^(bench|model|steps|throughput|MFU|memory|roofline here|step):|^measured kernel time" "$1"
  awk '/^kernel +ms +calls/ { p = 7 } p-- > 0' "$1"
}
fig_torch() { grep -E "^(torch |steps:|throughput:|memory:|gpu memory:)" "$1"; }

# ---- plan ----
if [ $cpu -eq 1 ]; then
  bsteps=(--steps 2 --warmup 1) bsteps512=(--steps 1 --warmup 1) big_layers=1
  big_shape=(--seq 128 --batch 1) tdev=(--device cpu --threads "$(nproc)")
  ctest_skip="gpulimits|bigshape" # test_bigshape: 2.5 min on 2 cores; the 7B step covers the widths
else
  bsteps=(--steps 10 --warmup 2) bsteps512=(--steps 10 --warmup 2) big_shape=()
  tdev=(--device cuda) ctest_skip=gpulimits
  big_layers=32
  if [ -x "$bin" ]; then # layers that fit: the selected device's global memory (also --dry-run)
    gib=$("$bin" devices 2>/dev/null | awk '
      /^\[[0-9]+\] / { name = substr($0, index($0, " ") + 1) }
      /^    global memory/ { mem[name] = $3 }
      /^selected: / { s = substr($0, 11); sub(/ \([^(]*\)$/, "", s); print mem[s] + 0; exit }')
    big_layers=$(awk -v g="${gib:-0}" 'BEGIN { l = int((0.85 * g - 3) / 0.45); print (l > 32 ? 32 : (l < 1 ? 1 : l)) }')
  fi
fi
big=(bench --config llama2-7b --layers "$big_layers" "${big_shape[@]}" --steps 2 --warmup 1 --roofline here)

[ $dry -eq 1 ] || : > "$summary"
note "gpu_check: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown), host $(hostname), $(nproc) CPUs, device selector '$dev', deadline ${budget} s"
note "$(printf '%-22s %-8s %6s  %s' step status seconds figures)"

if command -v clinfo >/dev/null 2>&1; then step "clinfo" 20 fig_head clinfo -l
else note "$(printf '%-22s %-8s %6s  %s' clinfo skipped - "clinfo not installed (apt-get install clinfo)")"; fi
step "devices" 30 fig_devices "$bin" devices
if [ $failed -ne 0 ]; then
  note "no usable device for selector '$dev' (see $last_log): stopping"
  exit 1
fi
step "selftest --full" 120 fig_selftest "$bin" selftest --full
step "ctest -L device" 200 fig_ctest ctest --test-dir "$build" -L device -E "$ctest_skip" -j 4 --timeout 150 --output-on-failure
step "bench d256" 60 fig_bench "$bin" bench --config d256 "${bsteps[@]}" --profile
step "bench d512" 90 fig_bench "$bin" bench --config d512 "${bsteps512[@]}" --roofline here
step "bench 7B-shaped LoRA" 150 fig_bench "$bin" "${big[@]}"
torch_ok=0
if [ $dry -eq 1 ]; then torch_ok=1
elif "$py" -c 'import torch' 2>/dev/null; then
  if [ $cpu -eq 1 ] || "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then torch_ok=1
  else note "$(printf '%-22s %-8s %6s  %s' "torch peer" skipped - "torch sees no GPU (torch.cuda.is_available() is false)")"; fi
else note "$(printf '%-22s %-8s %6s  %s' "torch peer" skipped - "$py has no torch")"; fi
if [ $torch_ok -eq 1 ]; then
  step "torch d256" 60 fig_torch "$py" "$here/bench_torch.py" --config d256 "${bsteps[@]}" "${tdev[@]}"
  step "torch d512" 90 fig_torch "$py" "$here/bench_torch.py" --config d512 "${bsteps512[@]}" "${tdev[@]}"
fi
if [ $dry -eq 0 ]; then
  note "total: $((SECONDS - t_start)) s; logs in $out; $([ $failed -eq 0 ] && echo 'every step that ran passed' || echo 'FAILED steps above')"
fi
exit $failed
