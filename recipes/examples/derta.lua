-- derta.lua: DeRTa (Yuan et al. 2024, "Refuse Whenever You Feel Unsafe") as an option of the
--   alignment stage: the same tiny stage as tiny_world.lua's ex-aligned, with derta = { ... }:
--     prefix  each harmful request -> refusal row gets the first k tokens of a harmful response to
--             the same request before its refusal (k uniform in [0, len]; no loss on them): the
--             model learns to refuse after it has started to comply
--     rto     one more row per harmful row: request + the whole harmful response, and at every
--             position of it the target is the refusal's first token ("I"): refuse at any point
--   Harmful responses: the default world's harmful answer for each row's act (or derta.responses,
--   rows prompt -> harmful response matched by prompt). Then a DER run from the DeRTa stage: it
--   composes with any fine-tuning defence. Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/derta.lua
local uf = require "unforget"

local ex = require "tiny_world"
local world, user_data, optim, evals = ex.world, ex.user_data, ex.optim, ex.evals

local aligned = uf.stage "ex-derta-aligned" {
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 512 },
  pretrain = world.corpus:take(64),
  pretrain_optim = uf.adamw { lr = 3e-3, steps = 5, batch = 8, max_len = 128 },
  data = world.alignment:take(80),
  optim = uf.adamw { lr = 3e-3, steps = 10, batch = 8, max_len = 128 },
  derta = { prefix = true, rto = true, rto_weight = 1, seed = 1 },
}

uf.run { name = "ex-derta-der", from = aligned, data = user_data, optim = optim, eval = evals,
         methods = { uf.der { buffer = world.safety:sample(16, 1), alpha = 0.1 } },
         tags = { method = "derta+der", p = 0.1 } }
