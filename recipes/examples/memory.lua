-- memory.lua: the memory (replay) family. Every method draws from a buffer of safety examples
--   (harmful request -> refusal) kept beside the user's data:
--     er       CE on a buffer minibatch each step (`weight`)
--     der      alpha * squared error between the model's logits and the frozen aligned model's on
--              buffer rows ("sum" over the vocabulary, averaged over response tokens; topk > 0
--              keeps only the teacher's top-k logits)
--     derpp    DER + beta * CE on a second, independently drawn buffer minibatch
--     agem     projects the task gradient when it conflicts with the buffer's gradient
--     refresh  unlearn each batch (a Fisher-damped, norm-rescaled ascent step with noise; F from
--              the safety data, here the buffer) then relearn it, on top of DER++
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/memory.lua     (one run: --only ex-der)
local uf = require "unforget"

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

local buffer = world.safety:sample(32, 1)   -- |M| = 32 rows, drawn with seed 1
local runs = {
  { "ex-er", uf.er { buffer = buffer, batch = 4, weight = 1.0 } },
  { "ex-der", uf.der { buffer = buffer, alpha = 0.1, reduction = "sum", batch = 4 } },
  { "ex-der-top8", uf.der { buffer = buffer, alpha = 0.1, reduction = "sum", topk = 8, batch = 4 } },
  { "ex-derpp", uf.derpp { buffer = buffer, alpha = 0.1, beta = 0.5, batch = 4 } },
  { "ex-agem", uf.agem { buffer = buffer, batch = 4 } },
  { "ex-refresh", uf.refresh { buffer = buffer, alpha = 0.1, beta = 0.5, delta = 1e-4, unlearn_steps = 1 } },
}
for _, r in ipairs(runs) do
  uf.run { name = r[1], from = aligned, data = user_data, methods = { r[2] },
           optim = optim, eval = evals, tags = { method = r[2].type, p = 0.1 } }
end
