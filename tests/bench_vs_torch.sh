#!/bin/bash
# bench_vs_torch.sh: `unforget bench` against tests/bench_torch.py (the same LLaMA-style model,
# fp32, AdamW, random tokens) on the CPU, alternating the two ROUNDS times in one invocation so
# both see the same machine load, then prints the median tokens/s of each and the ratio.
# usage: tests/bench_vs_torch.sh [--config d256|d512|tiny] [--steps N] [--rounds N] [--threads N]
#   UF_BIN (default build/unforget) is the unforget binary; the device is the CPU (PoCL) unless
#   UNFORGET_DEVICE says otherwise. torch gets --threads threads (default: nproc, what PoCL uses).
# The torch peer runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (they may be set for
# the OpenBLAS that CLBlast's host side or numpy see; torch is measured with its own defaults).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${UF_BIN:-$here/../build/unforget}"
config=d256 steps=5 rounds=2 threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "bench_vs_torch.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "bench_vs_torch.sh: $bin not built (set UF_BIN)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "bench_vs_torch.sh: /usr/bin/python3 has no torch" >&2; exit 77; }
export UNFORGET_DEVICE="${UNFORGET_DEVICE:-cpu}"
uf=() pt=()
for r in $(seq "$rounds"); do
  out="$("$bin" bench --config "$config" --steps "$steps" --no-peak-gemm)"
  echo "$out" | sed "s/^/[unforget round $r] /"
  uf+=("$(echo "$out" | awk '/^tokens_per_s:/ {print $2}')")
  out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$here/bench_torch.py" \
        --config "$config" --steps "$steps" --threads "$threads")"
  echo "$out" | sed "s/^/[torch    round $r] /"
  pt+=("$(echo "$out" | awk '/^tokens_per_s:/ {print $2}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mu="$(median "${uf[@]}")" mt="$(median "${pt[@]}")"
echo "median tokens/s: unforget $mu, torch $mt (torch: $threads threads, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset)"
awk -v a="$mu" -v b="$mt" 'BEGIN {printf "ratio unforget/torch: %.3f\n", a / b}'
