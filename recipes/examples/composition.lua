-- composition.lua: methods compose. The list runs in order at each hook: DER adds its replay
--   passes, EWC its penalty gradient, and the TIES merge runs after training on the result.
--   results.json labels the run "der+ewc+ties" (or tags.method when given).
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/composition.lua
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

uf.run {
  name = "ex-der-ewc-ties",
  from = aligned,
  data = user_data,
  methods = {
    uf.der { buffer = world.safety:sample(32, 1), alpha = 0.1, batch = 4 },
    uf.ewc { data = world.safety, lambda = 10, samples = 16 },
    uf.ties { density = 0.2, lambda = 1.0 },
  },
  optim = optim,
  eval = evals,
}
