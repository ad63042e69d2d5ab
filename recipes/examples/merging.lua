-- merging.lua: the merging family, applied once after fine-tuning (finish hook). With
--   tau_1 = theta_safe - theta_0 and tau_2 = theta_ft - theta_0 (theta_0: the weights before
--   alignment; here the stage's weights after its short pre-training):
--     magmax      theta_0 + lambda * (per entry, the task-vector entry of largest magnitude)
--     linear      (1 - a) theta_safe + a theta_ft          (WiSE-FT)
--     task_arith  theta_0 + lambda (tau_1 + tau_2)
--     ties        trim each tau to its top `density`, elect signs, disjoint mean, scale lambda
--   When theta_0 is unknown (a run from an HF chat model without base = ...), the merges use
--   theta_safe as the base (tau_1 = 0) and say so in the log.
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/merging.lua
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

local runs = {
  { "ex-magmax", uf.magmax { lambda = 1.0 } },
  { "ex-linear", uf.linear { a = 0.5 } },
  { "ex-task-arith", uf.task_arith { lambda = 0.5 } },
  { "ex-ties", uf.ties { density = 0.2, lambda = 1.0 } },
}
for _, r in ipairs(runs) do
  uf.run { name = r[1], from = aligned, data = user_data, methods = { r[2] },
           optim = optim, eval = evals, tags = { method = r[2].type, p = 0.1 } }
end
