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

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

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
