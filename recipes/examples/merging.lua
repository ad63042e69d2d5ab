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

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

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
