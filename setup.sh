#!/usr/bin/env bash
# setup.sh: one entry point from a fresh Debian 12 machine.
#   ./setup.sh run    install what is missing, build, run the quick start on the default device
#   ./setup.sh test   install what is missing (with the test extras), build, run every test
#                     (release build, then an ASan+UBSan build of the host-side tests and fuzzers)
#   ./setup.sh build  install the build dependencies and build only
#   ./setup.sh deps   install the dependencies only
# Packages come from Debian's archive; as root apt-get runs directly, else through sudo, else the
# exact command is printed and the script stops.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-run}
jobs=$(nproc 2>/dev/null || echo 2)

build_pkgs="cmake make gcc pkg-config ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
  libclblast-dev liblua5.4-dev lua5.4 libzstd-dev zstd libcjson-dev libutf8proc-dev"
# Test extras: clang for the sanitizer/fuzzer build, PyTorch + numpy as the independent oracle
# (with OpenBLAS so the PyTorch benchmark peer is not on the reference BLAS), Chromium to render
# the HTML report, Python's regex and Jinja2 as the independent oracles of the LLaMA-3 pre-tokenizer
# and the chat templates (the templates themselves are fetched with npm at test time when it is there),
# Slurm + munge for tests/test_slurm.sh, which starts its own one-node cluster on 127.0.0.1 (about
# 20 s more to install; where systemd runs, Debian also enables the packages' own services),
# oclgrind for the strict-device test (tests/test_oclgrind.sh).
test_pkgs="clang python3 python3-torch python3-numpy libopenblas0-pthread chromium python3-regex
  python3-jinja2 slurm-wlm munge oclgrind"

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  local cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${cmd[@]}" -qq
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive "${cmd[@]}" -qq
  else
    echo "setup: missing Debian packages; run as root:"
    echo "  apt-get update && ${cmd[*]}"
    exit 1
  fi
}

build() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$jobs"
}

case "$mode" in
  deps) install_missing $build_pkgs ;;
  build) install_missing $build_pkgs; build ;;
  run)
    install_missing $build_pkgs
    build
    ./build/unforget devices
    ./build/unforget selftest
    ./build/unforget run recipes/quickstart.lua --out runs
    ./build/unforget report runs -o runs/report.html --csv runs/table.csv
    echo "setup: results table (runs/table.csv), report: runs/report.html"
    column -s, -t < runs/table.csv 2>/dev/null || cat runs/table.csv
    ;;
  test)
    install_missing $build_pkgs $test_pkgs
    echo "setup: sanitizer build (clang, ASan+UBSan, fuzzers): host-side tests and the CL methods"
    CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DUF_FUZZ=ON >/dev/null
    cmake --build build-asan -j"$jobs"
    # test_methods drives every method's host code through PoCL (~1 min under ASan on 2 cores)
    (cd build-asan && ctest --output-on-failure -L host -j"$jobs" --no-tests=ignore &&
      ctest --output-on-failure -R '^test_methods$' --no-tests=error)
    echo "setup: release build: every test"
    build
    (cd build && ctest --output-on-failure -j"$jobs")
    ;;
  *) echo "usage: ./setup.sh [run|test|build|deps]"; exit 2 ;;
esac
