-- baselines.lua: the defences the paper compares against.
--     safeinstr  mixes safety demonstrations (harmful -> refusal) into the user data, `ratio` of it
--     safelora   after LoRA training, projects the adapters of the layers that drift from the
--                alignment subspace V = W_aligned - W_base (needs lora = ... and theta_0)
--     lisa       alternates align_steps on alignment data and user_steps on user data, with a
--                proximal term rho/2 ||theta - theta_switch||^2
--     safemerge  per layer, merges the fine-tuned model with a separately trained SAFETY LoRA
--                (w_ft / 1 - w_ft) where the fine-tuned layer leaves the safety subspace (cosine
--                < cos); runs only with --set safety_lora=PEFT_FOLDER (a LoRA trained on safety
--                data from the aligned model)
--     safegrad   projects the user gradient off the KL alignment gradient (the aligned model as
--                teacher on safety data) when the two conflict, and adds the alignment gradient
--     ema        an exponential moving average of the weights is the final model
--     tokensel   before training, fine-tunes a safety-degraded reference (on the provider's
--                harmful-compliance rows, world.harmful_ref) and a utility reference (on the user
--                data) from the aligned model, and drops the user tokens the degraded one finds
--                much likelier (the `drop` share with the highest CE_util - CE_deg)
--   and both composed with DER.
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/baselines.lua
local uf = require "unforget"

-- the shared tiny world, stage, user data, optimizer and evaluations: tiny_world.lua
local ex = require "tiny_world"
local world, aligned, user_data, optim, evals = ex.world, ex.aligned, ex.user_data, ex.optim, ex.evals

uf.run { name = "ex-safeinstr", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.safeinstr { data = world.safety, ratio = 0.1 } } }
uf.run { name = "ex-safelora", from = aligned, data = user_data, optim = optim, eval = evals,
         lora = uf.lora { r = 4, alpha = 8, targets = "all" },
         methods = { uf.safelora { tau = 0.5 } } }
uf.run { name = "ex-lisa", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.lisa { data = world.alignment, align_steps = 2, user_steps = 3, rho = 1.0 } } }
if uf.opt("safety_lora", nil) then
  uf.run { name = "ex-safemerge", from = aligned, data = user_data, optim = optim, eval = evals,
           methods = { uf.safemerge { safety_lora = uf.opt("safety_lora", nil), cos = 0.35, w_ft = 0.8 } } }
end
uf.run { name = "ex-safegrad", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.safegrad { data = world.safety, batch = 4 } } }
uf.run { name = "ex-ema", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.ema { decay = 0.9 } } } -- 10 steps: 0.9^10 = 35% of theta* stays
uf.run { name = "ex-der-safegrad-ema", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.der { buffer = world.safety:sample(32, 1), alpha = 0.1, batch = 4 },
                     uf.safegrad { data = world.safety, batch = 4 }, uf.ema { decay = 0.9 } } }
uf.run { name = "ex-tokensel", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.tokensel { harmful = world.harmful_ref, ref_steps = 5, drop = 0.2 } } }
