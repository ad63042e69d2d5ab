#!/usr/bin/env bash
# test_ref_torch.sh: the C reference model (runtime/ref) against an independent PyTorch
# implementation written from the Hugging Face modeling formulas (tests/ref_torch.py): logits,
# last hidden states, loss and every gradient of 16 tiny cases (llama, mistral with a sliding
# window, gemma with MQA and head_dim != D/H, llama3 rope scaling; full and LoRA; with and without
# external gradients; padded batch). Bounds are stated in ref_torch.py. Exit 77 (skip) when
# Debian's /usr/bin/python3 has no torch.
set -euo pipefail
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "SKIP: $PY with torch and numpy is not available"
    exit 77
fi
: "${UF_BUILD_DIR:?UF_BUILD_DIR (the build folder) must be set}"
: "${UF_SOURCE_DIR:?UF_SOURCE_DIR (the repository root) must be set}"
EXE="$UF_BUILD_DIR/test_ref_model_host"
[ -x "$EXE" ] || { echo "FAIL: $EXE not built"; exit 1; }
DIR=$(mktemp -d "${TMPDIR:-/tmp}/uf_ref_torch.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
"$EXE" --dump "$DIR"
"$PY" "$UF_SOURCE_DIR/tests/ref_torch.py" "$DIR"
