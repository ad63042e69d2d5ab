#!/bin/bash
# bench_vs_torch.sh: `unforget bench` against tests/bench_torch.py (the same LLaMA-style model,
# fp32, AdamW, random tokens) on the CPU, alternating the two ROUNDS times in one invocation so
# both see the same machine load, then prints the median tokens/s of each, the ratio, MFU, CPU
# time per step and peak memory of each.
# usage: tests/bench_vs_torch.sh [--config d256|d512|tiny] [--steps N] [--warmup N] [--rounds N]
#                                [--threads N] [--peak-gflops G]
#   UF_BIN (default build/unforget) is the unforget binary; the device is the CPU (PoCL) unless
#   UNFORGET_DEVICE says otherwise. torch gets --threads threads (default: nproc, what PoCL uses).
#   MFU = achieved GFLOP/s (llm.c accounting, wall clock) / G; without --peak-gflops G is the
#   uf_gemm peak that `unforget bench` measures (a lower bar than the hardware FMA peak).
#   On a shared machine wall-clock tokens/s depend on the other load; the CPU time per step
#   (user + system of each process, all threads) does much less, so both are printed, and MFU
#   per CPU-second = tokens per CPU-second x FLOP/token / (G / threads).
# The torch peer runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (they may be set for
# the OpenBLAS that CLBlast's host side or numpy see; torch is measured with its own defaults).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${UF_BIN:-$here/../build/unforget}"
config=d256 steps=5 warmup=2 rounds=2 threads="$(nproc)" peak=0
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --peak-gflops) peak="$2"; shift 2 ;;
    *) echo "bench_vs_torch.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "bench_vs_torch.sh: $bin not built (set UF_BIN)" >&2; exit 2; }
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "bench_vs_torch.sh: /usr/bin/python3 has no torch" >&2; exit 77; }
export UNFORGET_DEVICE="${UNFORGET_DEVICE:-cpu}"
peakopt=()
[ "$peak" != 0 ] && peakopt=(--peak-gflops "$peak")
uf=() pt=() ufg=() ptg=() ufc=() ptc=() ufs=() pts=() ufm="" ptm="" ufpk="" mflop=""
field() { awk -v k="$1" -v n="$2" '$1 == k {print $n; exit}'; }
for r in $(seq "$rounds"); do
  out="$("$bin" bench --config "$config" --steps "$steps" --warmup "$warmup" "${peakopt[@]}")"
  echo "$out" | sed "s/^/[unforget round $r] /"
  uf+=("$(echo "$out" | field tokens_per_s: 2)")
  ufg+=("$(echo "$out" | field throughput: 4)")
  ufc+=("$(echo "$out" | field cpu: 2)")
  ufs+=("$(echo "$out" | field cpu: 13)")
  mflop="$(echo "$out" | field throughput: 6 | tr -d '(')"
  ufm="$(echo "$out" | sed -n 's/.*device peak \([0-9.]*\) MiB.*/\1/p')"
  [ "$peak" = 0 ] && ufpk="$(echo "$out" | sed -n 's/.*measured uf_gemm peak \([0-9.]*\) GFLOP.*/\1/p')"
  out="$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 "$here/bench_torch.py" \
        --config "$config" --steps "$steps" --warmup "$warmup" --threads "$threads")"
  echo "$out" | sed "s/^/[torch    round $r] /"
  pt+=("$(echo "$out" | field tokens_per_s: 2)")
  ptg+=("$(echo "$out" | field throughput: 4)")
  ptc+=("$(echo "$out" | field cpu: 2)")
  pts+=("$(echo "$out" | field cpu: 13)")
  ptm="$(echo "$out" | sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p')"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mu="$(median "${uf[@]}")" mt="$(median "${pt[@]}")"
gu="$(median "${ufg[@]}")" gt="$(median "${ptg[@]}")"
cu="$(median "${ufc[@]}")" ct="$(median "${ptc[@]}")"
su="$(median "${ufs[@]}")" st="$(median "${pts[@]}")"
[ "$peak" = 0 ] && peak="${ufpk:-0}" && peakwhat="the uf_gemm peak measured by unforget bench" \
  || peakwhat="given (--peak-gflops)"
echo "median tokens/s: unforget $mu, torch $mt (torch: $threads threads, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset)"
awk -v a="$mu" -v b="$mt" 'BEGIN {printf "ratio unforget/torch: %.3f\n", a / b}'
awk -v a="$gu" -v b="$gt" -v p="$peak" -v w="$peakwhat" 'BEGIN {
  if (p > 0) printf "MFU: unforget %.2f%%, torch %.2f%% of %.1f GFLOP/s (%s)\n", 100 * a / p, 100 * b / p, p, w }'
awk -v a="$cu" -v b="$ct" 'BEGIN {printf "median CPU ms per step: unforget %.1f, torch %.1f (ratio torch/unforget %.3f)\n", a, b, b / a}'
awk -v a="$su" -v b="$st" -v f="$mflop" -v p="$peak" -v n="$threads" 'BEGIN {
  if (p > 0) printf "MFU per CPU-second (tokens per CPU-second x FLOP/token / (peak / %d threads)): unforget %.2f%%, torch %.2f%%\n", n, 100 * a * f * 1e-3 / (p / n), 100 * b * f * 1e-3 / (p / n) }'
echo "peak memory: unforget device $ufm MiB, torch process RSS $ptm MiB"
