-- memory.lua: the memory (replay) family. Every method draws from a buffer of safety examples
--   (harmful request -> refusal) kept beside the user's data:
--     er       CE on a buffer minibatch each step (`weight`)
--     der      alpha * squared error between the model's logits and the frozen aligned model's on
--              buffer rows ("sum" over the vocabulary, averaged over response tokens; topk > 0
--              keeps only the teacher's top-k logits)
--     derpp    DER + beta * CE on a second, independently drawn buffer minibatch
--     agem     projects the task gradient when it conflicts with the buffer's gradient
--     refresh  unlearn (gradient ascent) then relearn each batch, on top of DER++
--   Tiny sizes: it shows the wiring, not the science.
-- Run:  unforget run recipes/examples/memory.lua     (one run: --only ex-der)
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

local buffer = world.safety:sample(32, 1)   -- |M| = 32 rows, drawn with seed 1
local runs = {
  { "ex-er", uf.er { buffer = buffer, batch = 4, weight = 1.0 } },
  { "ex-der", uf.der { buffer = buffer, alpha = 0.1, reduction = "sum", batch = 4 } },
  { "ex-der-top8", uf.der { buffer = buffer, alpha = 0.1, reduction = "sum", topk = 8, batch = 4 } },
  { "ex-derpp", uf.derpp { buffer = buffer, alpha = 0.1, beta = 0.5, batch = 4 } },
  { "ex-agem", uf.agem { buffer = buffer, batch = 4 } },
  { "ex-refresh", uf.refresh { buffer = buffer, alpha = 0.1, beta = 0.5, unlearn_lr = 0.03, unlearn_steps = 1 } },
}
for _, r in ipairs(runs) do
  uf.run { name = r[1], from = aligned, data = user_data, methods = { r[2] },
           optim = optim, eval = evals, tags = { method = r[2].type, p = 0.1 } }
end
