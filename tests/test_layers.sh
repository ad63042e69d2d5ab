#!/usr/bin/env bash
# test_layers.sh: runtime/ is layered (ARCHITECTURE.md); a file may include headers of its own layer
# or of a layer below, never above. Order (low to high):
#   core < ops = ref < formats < model < data < eval < train < methods < top level < cli
# ref/ (the plain-C reference) may include only core/ and ref/. Fails naming file:line of each
# upward include.
set -euo pipefail
src=${UF_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src/runtime"
rank() {
  case "$1" in
    core) echo 0 ;; ops|ref) echo 1 ;; formats) echo 2 ;; model) echo 3 ;; data) echo 4 ;;
    eval) echo 5 ;; train) echo 6 ;; methods) echo 7 ;; top) echo 8 ;; cli) echo 9 ;;
    *) echo "test_layers: runtime/$1/ is not a known layer: add it to ARCHITECTURE.md and this test" >&2; exit 1 ;;
  esac
}
layer_of() { case "$1" in */*) echo "${1%%/*}" ;; *) echo top ;; esac; }
bad=0 n=0
while IFS= read -r f; do
  f=${f#./}
  from=$(layer_of "$f"); rf=$(rank "$from")
  while IFS=: read -r line inc; do
    [ -f "$inc" ] || continue            # system or test headers
    to=$(layer_of "$inc"); rt=$(rank "$to")
    n=$((n + 1))
    if [ "$rt" -gt "$rf" ] || { [ "$from" = ref ] && [ "$to" != ref ] && [ "$to" != core ]; }; then
      echo "FAIL runtime/$f:$line: $from/ includes $inc ($to/ is above $from/)"
      bad=$((bad + 1))
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed 's/^\([0-9]*\):.*"\([^"]*\)".*/\1:\2/')
done < <(find . -name '*.[ch]' | sort)
[ "$n" -gt 100 ] || { echo "FAIL: only $n project includes found; is UF_SOURCE_DIR right?"; exit 1; }
echo "test_layers: $n includes checked, $bad upward"
[ "$bad" -eq 0 ]
