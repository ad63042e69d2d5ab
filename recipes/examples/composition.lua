-- composition.lua: methods compose. The list runs in order at each hook: DER adds its replay
--   passes, EWC its penalty gradient, and the TIES merge runs after training on the result.
--   results.json labels the run "der+ewc+ties" (or tags.method when given).
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/composition.lua
local uf = require "unforget"

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

uf.run {
  name = "ex-der-ewc-ties",
  from = aligned,
  data = user_data,
  methods = {
    uf.der { buffer = world.safety:sample(32, 1), alpha = 0.1, batch = 4 },
    uf.ewc { data = world.safety, lambda = 10, samples = 16 },
    uf.ties { density = 0.2, lambda_user = 1.0 },
  },
  optim = optim,
  eval = evals,
}
