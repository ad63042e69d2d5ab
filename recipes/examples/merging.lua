-- merging.lua: the merging family, applied once after fine-tuning (finish hook). theta_0: the
--   weights before alignment (here the stage's weights after its short pre-training).
--     magmax      theta_0 + lambda * (per entry, the larger-magnitude entry of tau_1 = theta_safe -
--                 theta_0 and tau_2 = theta_ft - theta_0: MagMax's sequential task vectors)
--     linear      (1 - a) theta_safe + a theta_ft          (WiSE-FT)
--     task_arith  theta_0 + lambda_safe tau_safe + lambda_user tau_user, with tau_safe =
--                 theta_safe - theta_0 and tau_user = theta_ft - theta_safe
--     ties        trim tau_user to its top `density` (tau_safe to `density_safe`, default 1),
--                 scale each by its lambda, elect signs, disjoint mean, add to theta_0
--   When theta_0 is unknown (a run from an HF chat model without base = ...), the merges use
--   theta_safe as the base (tau_safe = 0) and say so in the log.
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/merging.lua
local uf = require "unforget"

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

local runs = {
  { "ex-magmax", uf.magmax { lambda = 1.0 } },
  { "ex-linear", uf.linear { a = 0.5 } },
  { "ex-task-arith", uf.task_arith { lambda_safe = 1.0, lambda_user = 0.5 } },
  { "ex-ties", uf.ties { density = 0.2, lambda_user = 1.0 } },
}
for _, r in ipairs(runs) do
  uf.run { name = r[1], from = aligned, data = user_data, methods = { r[2] },
           optim = optim, eval = evals, tags = { method = r[2].type, p = 0.1 } }
end
