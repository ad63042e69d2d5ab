-- llama2_7b_plan.lua: the memory plan of LoRA fine-tuning a Llama-2-7B-shaped model on one 24 GB
-- card (bf16 frozen base, LoRA r = 8 on every linear, 512 tokens, micro-batch 4, activation
-- checkpointing), plus the same recipe for Mistral-7B and Gemma-2B shapes (runs
-- "mistral-7b-lora-plan", "gemma-2b-lora-plan"). For `unforget check` (prints the plan, refuses one that does not fit):
--   unforget check recipes/paper/llama2_7b_plan.lua --device-mem 24
-- The model is uf.model.new with Llama-2-7B's sizes (random weights): point `model` at a real
-- checkpoint with uf.hf "path/to/Llama-2-7b-hf" to train it (the plan reads only config.json).
-- check-args: --device-mem 24
-- Knobs: --set micro_batch=8  --set max_len=1024  --set checkpointing=false  --set bf16=false
--        --set method=der (or lwf, ewc, l2sp, agem, refresh, lisa): the method's device state
--        (frozen teacher, anchor, Fisher, ...) joins the plan
local uf = require "unforget"

local world = uf.world { seed = 1 }
local method = uf.opt("method", "")
local with = {
  der = function() return uf.der { buffer = world.safety:sample(200) } end,
  lwf = function() return uf.lwf {} end,
  ewc = function() return uf.ewc { data = world.safety } end,
  l2sp = function() return uf.l2sp {} end,
  agem = function() return uf.agem { buffer = world.safety:sample(200) } end,
  refresh = function() return uf.refresh { buffer = world.safety:sample(200) } end,
  lisa = function() return uf.lisa { data = world.alignment } end,
}
if method ~= "" and not with[method] then uf._fail("--set method=%s: one of der, lwf, ewc, l2sp, agem, refresh, lisa", method) end
local function methods() return method ~= "" and { with[method]() } or {} end

uf.run {
  name = "llama2-7b-lora-plan",
  model = uf.model.new { family = "llama", d_model = 4096, layers = 32, heads = 32, d_ff = 11008,
                         vocab = 32000, max_seq = 4096 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 32000 },
  data = world.task,
  methods = methods(),
  lora = uf.lora { r = 8, alpha = 16, dropout = 0.05, targets = "all" },
  optim = uf.adamw { lr = 2e-4, steps = 1, batch = 4,
                     micro_batch = uf.opt("micro_batch", 4), max_len = uf.opt("max_len", 512),
                     checkpointing = uf.opt("checkpointing", true), bf16 = uf.opt("bf16", true) },
  eval = { uf.accuracy(world.task_eval, { max_new_tokens = 16 }) },
}

-- the same knobs for the other two families' 7B / 2B shapes
local function plan(name, model)
  uf.run {
    name = name, model = model,
    tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 32000 },
    data = world.task,
    methods = methods(),
    lora = uf.lora { r = 8, alpha = 16, dropout = 0.05, targets = "all" },
    optim = uf.adamw { lr = 2e-4, steps = 1, batch = 4,
                       micro_batch = uf.opt("micro_batch", 4), max_len = uf.opt("max_len", 512),
                       checkpointing = uf.opt("checkpointing", true), bf16 = uf.opt("bf16", true) },
    eval = { uf.accuracy(world.task_eval, { max_new_tokens = 16 }) },
  }
end
plan("mistral-7b-lora-plan", uf.model.new { family = "mistral", d_model = 4096, layers = 32, heads = 32,
                                             kv_heads = 8, d_ff = 14336, vocab = 32000, max_seq = 4096 })
plan("gemma-2b-lora-plan", uf.model.new { family = "gemma", d_model = 2048, layers = 18, heads = 8,
                                           kv_heads = 1, head_dim = 256, d_ff = 16384, vocab = 256000,
                                           max_seq = 4096 })
