-- regularisation.lua: the regularisation family of continual-learning methods, each keeping
--   the fine-tuned weights near the aligned ones theta* (CL task 1 = safety, task 2 = the user's):
--     ewc   sum_i lambda/2 F_i (theta_i - theta*_i)^2, F = diagonal Fisher of the safety loss,
--           estimated once before training on `samples` rows of `data` (empirical or true)
--     l2sp  lambda/2 ||theta - theta*||^2 (EWC with F = 1)
--     lwf   beta * mean ||h - h*||^2 over the last hidden states of the user's inputs, teacher
--           = the frozen aligned model
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/regularisation.lua     (one run: --only ex-ewc)
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
  ["ex-ewc"] = uf.ewc { data = world.safety, lambda = 50, samples = 16, fisher = "empirical" },
  ["ex-ewc-true"] = uf.ewc { data = world.safety, lambda = 50, samples = 16, fisher = "true", normalize = true },
  ["ex-l2sp"] = uf.l2sp { lambda = 0.01 },
  ["ex-lwf"] = uf.lwf { beta = 1.0 },
}
for _, name in ipairs { "ex-ewc", "ex-ewc-true", "ex-l2sp", "ex-lwf" } do
  uf.run { name = name, from = aligned, data = user_data, methods = { runs[name] },
           optim = optim, eval = evals, tags = { method = name:sub(4), p = 0.1 } }
end
