-- mix.lua: the user's data as a poisoned mixture (uf.mix). With n = 80 and p = 0.1 the
--   fine-tuning set is round(0.1 * 80) = 8 harmful instruction -> compliance rows (world.poison)
--   plus round(0.9 * 80) = 72 task rows, shuffled with `seed`. p = 0 is the benign setting.
--   Everything here is tiny (a 1-layer d_model 32 model, 10 steps) so that it runs in seconds;
--   it shows the wiring, not the science (see recipes/quickstart.lua and recipes/paper/).
-- Run:  unforget run recipes/examples/mix.lua --set p=0.2
local uf = require "unforget"

local p = uf.opt("p", 0.1)
-- the tiny world and its "aligned" stage (tokenizer, a few steps of pre-training, then of
-- alignment), shared with the other examples: tiny_world.lua
local ex = require "tiny_world"
local world, aligned = ex.world, ex.aligned

uf.run {
  name = ("ex-mix-p%.2f"):format(p),
  from = aligned,
  data = uf.mix { task = world.task, poison = world.poison, p = p, n = 80, seed = 1 },
  optim = ex.optim,  -- 10 AdamW steps
  eval = ex.evals,   -- ASR (keyword judge), task accuracy, over-refusal
  tags = { p = p, task = "sentiment" },
}
