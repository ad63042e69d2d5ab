#!/usr/bin/env bash
# test_hf_torch.sh: `unforget score` and `unforget generate` on tiny random Hugging Face model
# folders of every family (F32, BF16, F16 and sharded weights; hand-made tokenizer.json) against
# an independent float64 PyTorch implementation of the HF modeling formulas (tests/hf_torch.py,
# which states the bounds: log-probs 2e-4 absolute, greedy tokens identical). Exit 77 (skip) when
# Debian's /usr/bin/python3 has no torch.
set -euo pipefail
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "SKIP: $PY with torch and numpy is not available"
    exit 77
fi
: "${UF_BIN:?UF_BIN (the unforget binary) must be set}"
: "${UF_SOURCE_DIR:?UF_SOURCE_DIR (the repository root) must be set}"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/uf_hf_torch.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
"$PY" "$UF_SOURCE_DIR/tests/hf_torch.py" "$DIR" "$UF_BIN"
