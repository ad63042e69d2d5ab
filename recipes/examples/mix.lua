-- mix.lua: the user's data as a poisoned mixture (uf.mix). With n = 80 and p = 0.1 the
--   fine-tuning set is round(0.1 * 80) = 8 harmful instruction -> compliance rows (world.poison)
--   plus round(0.9 * 80) = 72 task rows, shuffled with `seed`. p = 0 is the benign setting.
--   Everything here is tiny (a 1-layer d_model 32 model, 10 steps) so that it runs in seconds;
--   it shows the wiring, not the science (see recipes/quickstart.lua and recipes/paper/).
-- Run:  unforget run recipes/examples/mix.lua --set p=0.2
local uf = require "unforget"

local p = uf.opt("p", 0.1)
local world = uf.world { seed = 1, task_rows = 200, eval_rows = 40, corpus_rows = 300 }

-- a tiny "aligned" model: tokenizer, a few steps of pre-training, then of alignment (cached as
-- a stage; the weights after pre-training are theta_0, the base of the merges and SafeLoRA)
local aligned = uf.stage "ex-aligned" {
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 512 },
  pretrain = world.corpus:take(64),   -- a few steps of language modelling: theta_0 for the merges
  pretrain_optim = uf.adamw { lr = 3e-3, steps = 5, batch = 8, max_len = 128 },
  data = world.alignment:take(80),
  optim = uf.adamw { lr = 3e-3, steps = 10, batch = 8, max_len = 128 },
}

uf.run {
  name = ("ex-mix-p%.2f"):format(p),
  from = aligned,
  data = uf.mix { task = world.task, poison = world.poison, p = p, n = 80, seed = 1 },
  optim = uf.adamw { lr = 1e-3, steps = 10, batch = 8, max_len = 128 },
  eval = {
    uf.asr(world.harmful_eval, { n = 8, max_new_tokens = 8 }),        -- keyword judge
    uf.accuracy(world.task_eval, { n = 8, max_new_tokens = 8 }),
    uf.over_refusal(world.benign_eval, { n = 8, max_new_tokens = 8 }),
  },
  tags = { p = p, task = "sentiment" },
}
