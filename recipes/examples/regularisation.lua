-- regularisation.lua: the regularisation family of continual-learning methods, each keeping
--   the fine-tuned weights near the aligned ones theta* (CL task 1 = safety, task 2 = the user's):
--     ewc   sum_i lambda/2 F_i (theta_i - theta*_i)^2, F = diagonal Fisher of the safety loss,
--           estimated once before training on `samples` rows of `data` (empirical or true labels;
--           per example: squared gradients of each row's summed response loss, or per token)
--     l2sp  lambda/2 ||theta - theta*||^2 (EWC with F = 1)
--     lwf   beta * T^2 * mean KL(softmax(z*/T) || softmax(z/T)) over the logits of the user's
--           response tokens (Li & Hoiem, T = 2; target = "hidden": beta * mean ||h - h*||^2 over
--           the last hidden states), teacher = the frozen aligned model
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/regularisation.lua     (one run: --only ex-ewc)
local uf = require "unforget"

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

local runs = {
  ["ex-ewc"] = uf.ewc { data = world.safety, lambda = 50, samples = 16, fisher = "empirical" },
  ["ex-ewc-true"] = uf.ewc { data = world.safety, lambda = 50, samples = 16, fisher = "true", per = "token", normalize = true },
  ["ex-l2sp"] = uf.l2sp { lambda = 0.01 },
  ["ex-lwf"] = uf.lwf { beta = 1.0 },
}
for _, name in ipairs { "ex-ewc", "ex-ewc-true", "ex-l2sp", "ex-lwf" } do
  uf.run { name = name, from = aligned, data = user_data, methods = { runs[name] },
           optim = optim, eval = evals, tags = { method = name:sub(4), p = 0.1 } }
end
