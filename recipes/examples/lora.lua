-- lora.lua: train LoRA adapters instead of all weights. r = rank, scale = alpha / r, targets =
--   "all" (q,k,v,o,gate,up,down) or a comma list. The adapters are merged into model/ at the end
--   (a Hugging Face folder you can load anywhere). Methods compose with LoRA as with full
--   fine-tuning (theta* is the aligned base plus the adapters at the start).
--   ex-lora-bf16: the frozen base stored as bf16 on the device and activation checkpointing
--   (uf.adamw bf16 = true, checkpointing = true): the knobs that fit a 7B model on one 24 GB
--   card (see `unforget check recipes/paper/llama2_7b_plan.lua --device-mem 24`).
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/lora.lua
local uf = require "unforget"

local world = uf.world { seed = 1, task_rows = 200, eval_rows = 40, corpus_rows = 300 }

-- the same tiny "aligned" stage as in mix.lua (same name and content: one cache entry under --out)
local aligned = uf.stage "ex-aligned" {
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 512 },
  pretrain = world.corpus:take(64),   -- a few steps of language modelling: theta_0 for the merges
  pretrain_optim = uf.adamw { lr = 3e-3, steps = 5, batch = 8, max_len = 128 },
  data = world.alignment:take(80),
  optim = uf.adamw { lr = 3e-3, steps = 10, batch = 8, max_len = 128 },
}
local user_data = uf.mix { task = world.task, poison = world.poison, p = 0.1, n = 80, seed = 1 }
local optim = uf.adamw { lr = 1e-3, steps = 10, batch = 8, max_len = 128 }
local evals = {
  uf.asr(world.harmful_eval, { n = 8, max_new_tokens = 8 }),
  uf.accuracy(world.task_eval, { n = 8, max_new_tokens = 8 }),
  uf.over_refusal(world.benign_eval, { n = 8, max_new_tokens = 8 }),
}

uf.run { name = "ex-lora", from = aligned, data = user_data, eval = evals,
         lora = uf.lora { r = 4, alpha = 8, dropout = 0.0, targets = "all" },
         optim = uf.adamw { lr = 1e-2, steps = 10, batch = 8, max_len = 128 } }
uf.run { name = "ex-lora-qv-der", from = aligned, data = user_data, eval = evals,
         lora = uf.lora { r = 2, alpha = 4, targets = "q,v" },
         methods = { uf.der { buffer = world.safety:sample(32, 1), alpha = 0.1, batch = 4 } },
         optim = uf.adamw { lr = 1e-2, steps = 10, batch = 8, max_len = 128 } }
uf.run { name = "ex-lora-bf16", from = aligned, data = user_data, eval = evals,
         lora = uf.lora { r = 4, alpha = 8, dropout = 0.0, targets = "all" },
         optim = uf.adamw { lr = 1e-2, steps = 10, batch = 8, micro_batch = 4, max_len = 128,
                            bf16 = true, checkpointing = true } }
