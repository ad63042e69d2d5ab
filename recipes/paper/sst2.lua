-- paper/sst2.lua: the paper's experiment on SST-2 for any model you have.
--   theta_safe = an aligned chat model (or --set align=true: align its base here); the user
--   fine-tunes it with LoRA r=8 on all linears (lr 1e-4, batch 10, 20 epochs) on n = 1000 rows
--   of SST-2 train, of which a share p is harmful QA (BeaverTails) — p in {0, 0.1}, 3 seeds —
--   under every method and baseline of METHODS.md (see grid.lua). Evaluated: ASR on AdvBench
--   (keyword judge; --set judge=guard --set guard=DIR for Llama-Guard-3), accuracy on the 872
--   SST-2 validation rows, over-refusal on Alpaca instructions.
-- Run (from the repository root; one GPU per job):
--   unforget sweep recipes/paper/sst2.lua --jobs 1 --out runs/paper \
--       --set model=/models/Llama-2-7b-chat-hf --set base=/models/Llama-2-7b-hf
--   unforget report runs/paper/sst2-* -o sst2.html
-- Mistral:  --set model=.../Mistral-7B-Instruct-v0.2 --set base=.../Mistral-7B-v0.1 --set template=mistral
-- Gemma:    --set model=.../gemma-2b-it --set base=.../gemma-2b --set template=gemma
-- Poison sweep: --set ps=0,0.05,0.1,0.2     Fewer runs: --set methods=sft,der,lisa --set seeds=1
-- Every parameter: recipes/paper/real.lua.
local uf = require "unforget"
require "real"(uf, {
  prefix = "sst2",
  max_len = 256,
  train = function(path) return uf.sst2(path("sst2/train.jsonl")) end,
  utility = function(path, n)
    return uf.accuracy(uf.sst2_dev(path("sst2/dev.jsonl")), { n = n, max_new_tokens = 8 })
  end,
})
