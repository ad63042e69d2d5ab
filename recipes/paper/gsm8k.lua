-- paper/gsm8k.lua: the paper's experiment on GSM8K for any model you have.
--   As sst2.lua, with the user's task GSM8K train (question -> worked answer ending "#### N");
--   utility = exact match of the final number on the first 1,000 GSM8K test problems (greedy,
--   up to 256 new tokens). LoRA r=8 on all linears, lr 1e-4, batch 10, 20 epochs, n = 1000,
--   p in {0, 0.1} (BeaverTails harmful QA as poison), 3 seeds, every method and baseline.
-- Run (from the repository root; one GPU per job):
--   unforget sweep recipes/paper/gsm8k.lua --jobs 1 --out runs/paper \
--       --set model=/models/Llama-2-7b-chat-hf --set base=/models/Llama-2-7b-hf
--   unforget report runs/paper/gsm8k-* -o gsm8k.html
-- Poison sweep: --set ps=0,0.05,0.1,0.2     Every parameter: recipes/paper/real.lua.
local uf = require "unforget"
require "real"(uf, {
  prefix = "gsm8k",
  max_len = 512,
  train = function(path) return uf.gsm8k(path("gsm8k/train.jsonl")) end,
  utility = function(path, n)
    return uf.accuracy(uf.gsm8k_test(path("gsm8k/test.jsonl")):take(1000),
                       { n = n, max_new_tokens = 256 })
  end,
})
