-- adapters.lua: the public datasets of ../shared/datasets (datasets/README.md says where each
--   comes from) through their named adapters. Each adapter knows its file's fields:
--     uf.advbench       harmful_behaviors.jsonl: goal -> prompt, target -> response   (harmful)
--     uf.sst2/_dev      sentence + label 0/1 -> instruction prompt, "positive"/"negative" (task)
--     uf.gsm8k/_test    question -> prompt, answer -> response, label = the final "#### N" (task)
--     uf.safety_llamas  Safety-Tuned LLaMAs: harmful instruction -> refusal         (safety)
--     uf.beavertails    unsafe prompt -> harmful response (the poison)              (harmful)
--     uf.alpaca         instruction (+ input) -> output                             (benign)
--   Each takes an optional path (default under uf.shared = $UNFORGET_DATA or ../shared/datasets)
--   and on_bad = "error" | "skip". This recipe only declares a tiny run over each; `unforget
--   check` verifies that every file exists.
-- Run:  unforget run recipes/examples/adapters.lua      (from the repository root)
local uf = require "unforget"

local data = {
  advbench = uf.advbench(),
  sst2 = uf.sst2(),
  sst2_dev = uf.sst2_dev(),
  gsm8k = uf.gsm8k { on_bad = "skip" },
  gsm8k_test = uf.gsm8k_test(),
  safety = uf.safety_llamas(),
  beavertails = uf.beavertails(),
  alpaca = uf.alpaca(uf.shared .. "/alpaca/alpaca_en_demo.jsonl"),   -- an explicit path
}

local model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 }
local tok = uf.tokenizer.train { corpus = data.alpaca:take(200), vocab = 512 }
local optim = uf.adamw { lr = 1e-3, steps = 2, batch = 4, max_len = 128 }
for _, name in ipairs { "advbench", "sst2", "gsm8k", "safety", "beavertails", "alpaca" } do
  uf.run { name = "ex-adapter-" .. name, model = model, tokenizer = tok,
           data = data[name]:take(16), optim = optim }
end
-- evaluation sets: ASR on AdvBench, accuracy on SST-2 dev and GSM8K test, over-refusal on Alpaca
uf.run { name = "ex-adapter-evals", model = model, tokenizer = tok, data = data.sst2:take(8), optim = optim,
         eval = { uf.asr(data.advbench, { n = 4, max_new_tokens = 8 }),
                  uf.accuracy(data.sst2_dev, { n = 4, max_new_tokens = 2 }),
                  uf.accuracy(data.gsm8k_test, { n = 4, max_new_tokens = 8 }),
                  uf.over_refusal(data.alpaca, { n = 4, max_new_tokens = 8 }) } }
