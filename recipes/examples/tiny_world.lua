-- tiny_world.lua: the tiny world, "aligned" stage, user data, optimizer and evaluations that the
--   examples share (loaded with `require "tiny_world"`: a recipe can require modules that
--   sit next to it). Same stage name and content everywhere: one cache entry under --out.
--   Not a recipe on its own: it declares the stage and no run.
local uf = require "unforget"

local world = uf.world { seed = 1, task_rows = 200, eval_rows = 40, corpus_rows = 300 }

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

return { world = world, aligned = aligned, user_data = user_data, optim = optim, evals = evals }
