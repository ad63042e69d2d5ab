-- baselines.lua: the defences the paper compares against.
--     safeinstr  mixes safety demonstrations (harmful -> refusal) into the user data, `ratio` of it
--     safelora   after LoRA training, projects the adapters of the layers that drift from the
--                alignment subspace V = W_aligned - W_base (needs lora = ... and theta_0)
--     lisa       alternates align_steps on alignment data and user_steps on user data, with a
--                proximal term rho/2 ||theta - theta_switch||^2
--     safemerge  per layer, merges fine-tuned and aligned weights (w_ft / 1 - w_ft) where the
--                fine-tuned layer leaves the safety subspace (cosine < cos)
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/baselines.lua
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

uf.run { name = "ex-safeinstr", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.safeinstr { data = world.safety, ratio = 0.1 } } }
uf.run { name = "ex-safelora", from = aligned, data = user_data, optim = optim, eval = evals,
         lora = uf.lora { r = 4, alpha = 8, targets = "all" },
         methods = { uf.safelora { tau = 0.5 } } }
uf.run { name = "ex-lisa", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.lisa { data = world.alignment, align_steps = 2, user_steps = 3, rho = 1.0 } } }
uf.run { name = "ex-safemerge", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.safemerge { cos = 0.35, w_ft = 0.8 } } }
