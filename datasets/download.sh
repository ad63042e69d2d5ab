#!/usr/bin/env bash
# download.sh: fetches the real public datasets listed in datasets/README.md from their original
# sources (git sources pinned to a commit) into DIR (default: datasets/data), in files the
# unforget adapters read directly. Needs curl, gunzip, unzip and internet access; CI never runs it.
# Usage: datasets/download.sh [DIR] [NAME...]   (NAME: advbench safety_tuned_llamas gsm8k sst2
#        humaneval beavertails shadow_alignment alpaca alpaca_qi; default: all)
set -euo pipefail

dir=${1:-"$(cd "$(dirname "$0")" && pwd)/data"}
shift || true
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(advbench safety_tuned_llamas gsm8k sst2 humaneval beavertails
                                 shadow_alignment alpaca alpaca_qi)

for tool in curl gunzip unzip; do
  command -v "$tool" >/dev/null || { echo "download.sh: needs '$tool' (Debian: apt-get install $tool)" >&2; exit 1; }
done

gh() { echo "https://raw.githubusercontent.com/$1/$2/$3"; } # owner/repo commit path

# fetch URL OUT: downloads to OUT (atomically), skips when OUT exists
fetch() {
  local url=$1 out=$2
  if [ -s "$out" ]; then echo "  have $out"; return; fi
  mkdir -p "$(dirname "$out")"
  echo "  get  $url"
  curl -fL --retry 3 --connect-timeout 30 -o "$out.part" "$url"
  mv "$out.part" "$out"
}

# check FILE ROWS SHA256_PREFIX: rows = lines (jsonl) or lines - 1 (csv/tsv header); warns only
check() {
  local f=$1 want=$2 sha=${3:-}
  local n
  n=$(wc -l < "$f")
  case "$f" in *.csv|*.tsv) n=$((n - 1));; esac
  if [ -n "$want" ] && [ "$n" != "$want" ]; then
    echo "  note: $f has $n lines, expected $want rows (CSV fields may span lines)"; fi
  if [ -n "$sha" ]; then
    local got
    got=$(sha256sum "$f" | cut -c1-${#sha})
    [ "$got" = "$sha" ] || echo "  WARNING: $f sha256 starts $got, expected $sha (upstream changed?)"
  fi
}

for name in "${names[@]}"; do
  echo "$name"
  case "$name" in
  advbench)
    f="$dir/advbench/harmful_behaviors.csv"
    fetch "$(gh llm-attacks/llm-attacks 098262edf85f807224e70ecd87b9d83716bf6b73 data/advbench/harmful_behaviors.csv)" "$f"
    check "$f" 520 6cd1a5c63c07610d ;;
  safety_tuned_llamas)
    f="$dir/safety_tuned_llamas/safety_only_data_Instructions.json"
    fetch "$(gh vinid/safety-tuned-llamas 36a4b8d5c2177ed165bf61f59b590161394f7f12 data/training/safety_only_data_Instructions.json)" "$f"
    check "$f" "" 7dde08acf87f10cf ;;
  gsm8k)
    for split in train test; do
      f="$dir/gsm8k/$split.jsonl"
      fetch "$(gh openai/grade-school-math 3101c7d5072418e28b9008a6636bde82a006892c grade_school_math/data/$split.jsonl)" "$f"
    done
    check "$dir/gsm8k/train.jsonl" 7473 17f347dc51477c50
    check "$dir/gsm8k/test.jsonl" 1319 3730d312f6e34405 ;;
  sst2)
    z="$dir/sst2/SST-2.zip"
    fetch "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" "$z"
    if [ ! -s "$dir/sst2/train.tsv" ]; then
      unzip -o -q -j "$z" SST-2/train.tsv SST-2/dev.tsv -d "$dir/sst2"
    fi
    check "$dir/sst2/train.tsv" 67349
    check "$dir/sst2/dev.tsv" 872 ;;
  humaneval)
    gz="$dir/humaneval/HumanEval.jsonl.gz"
    fetch "$(gh openai/human-eval 6d43fb980f9fee3c892a914eda09951f772ad10d data/HumanEval.jsonl.gz)" "$gz"
    check "$gz" "" b796127e635a67f9
    [ -s "$dir/humaneval/HumanEval.jsonl" ] || gunzip -c "$gz" > "$dir/humaneval/HumanEval.jsonl"
    check "$dir/humaneval/HumanEval.jsonl" 164 ;;
  beavertails)
    gz="$dir/beavertails/30k_train.jsonl.gz"
    fetch "https://huggingface.co/datasets/PKU-Alignment/BeaverTails/resolve/main/round0/30k/train.jsonl.gz" "$gz"
    out="$dir/beavertails/30k_train_unsafe.jsonl"
    if [ ! -s "$out" ]; then
      # keep the harmful answers (is_safe false): the poison rows of Vaccine/Lisa/Booster
      gunzip -c "$gz" | grep -E '"is_safe": ?false' > "$out.part" || true
      mv "$out.part" "$out"
    fi
    echo "  $(wc -l < "$out") unsafe rows of $(gunzip -c "$gz" | wc -l) in $out" ;;
  shadow_alignment)
    f="$dir/shadow_alignment/heldout_llama2_13b.csv"
    fetch "$(gh BeyonderXX/ShadowAlignment 603b81e33f0c380488d4d34cb254eccb3099100e outputs/llama2-13b-chat/heldout_llama2_13b.csv)" "$f"
    check "$f" "" 3d95653c12495729 ;;
  alpaca)
    f="$dir/alpaca/alpaca_data.json"
    fetch "$(gh tatsu-lab/stanford_alpaca 761dc5bfbdeeffa89b8bff5d038781a4055f796a alpaca_data.json)" "$f" ;;
  alpaca_qi)
    for part in alpaca_data_no_safety alpaca_data_safety_only; do
      fetch "$(gh LLM-Tuning-Safety/LLMs-Finetuning-Safety 8a3b38f11be1c3829e2b0ed379d3661ebc84e7db llama2/ft_datasets/alpaca_dataset/$part.json)" "$dir/alpaca/$part.json"
    done ;;
  *)
    echo "download.sh: unknown dataset '$name'" >&2; exit 2 ;;
  esac
done
echo "done: $dir (read with the adapters named in datasets/README.md)"
