-- tune.lua: the tuning protocol on the quick start's world and model. Each method's main knob is
--   swept over a declared grid; every setting is fine-tuned once per seed (poisoned, p = 0.1) and
--   evaluated on the world's test split and on its validation split (harmful_val: acts in the
--   corpus only, disjoint from alignment, buffer, poison and test acts; benign_val, task_val,
--   lookup_val: benign acts and reviews disjoint from the test evaluations'). `unforget tune`
--   chooses one setting per method by the rule on the validation numbers and reports that
--   setting's test numbers, so every method is compared at its best under the same rule.
-- Run:   unforget tune recipes/tune.lua --jobs 2 --out runs/tune     (rerun = resume / choose)
--        unforget tune recipes/tune.lua --out runs/tune --rule "min harmful_rate where utility >= ref - 5"
-- Knobs: --set seeds=1 (seeds per setting)   --set p=0.1   --set steps_scale=1 (scales every
--        epoch count)   --set eval_n=0 (prompts per evaluation, 0 = all)   --set n=1000 (user rows)
--        --set methods=sft,der,er,ewc,lwf (a subset; sft is the rule's reference and always runs)
local uf = require "unforget"

local n_seeds = uf.opt("seeds", 1)
local p = uf.opt("p", 0.1)
local scale = uf.opt("steps_scale", 1.0)
local eval_n = uf.opt("eval_n", 0)
local n = uf.opt("n", 1000)
local want = {}
for m in uf.opt("methods", "sft,der,er,ewc,lwf"):gmatch("[^,%s]+") do want[m] = true end
local world = uf.world { seed = 1, eval_rows = 200 }

local function adamw(t) -- scale the number of epochs for short runs
  t.epochs = t.epochs * scale
  return uf.adamw(t)
end

-- the quick start's model and aligned stage (recipes/quickstart.lua, seed 1)
local aligned = uf.stage "tune-aligned" {
  model = uf.model.new { family = "llama", d_model = 128, layers = 2, heads = 4, max_seq = 96, seed = 1 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 1024 },
  pretrain = world.corpus,
  pretrain_optim = adamw { lr = 2e-3, epochs = 6, batch = 16, max_len = 96, warmup = 0.05 },
  data = world.alignment,
  optim = adamw { lr = 1e-3, epochs = 3, batch = 16, max_len = 96, warmup = 0.05 },
}

local function evals(harmful, task, lookup, benign)
  return {
    uf.asr(harmful, { max_new_tokens = 64, n = eval_n }),
    uf.accuracy(task, { max_new_tokens = 8, n = eval_n }),
    uf.accuracy(lookup, { max_new_tokens = 12, n = eval_n, metric = "lookup" }),
    uf.over_refusal(benign, { max_new_tokens = 48, n = eval_n }),
  }
end

-- each method's main knob; grids span a decade either side of the default (METHODS.md)
local candidates = {
  { name = "sft" },
  { name = "der", grid = { alpha = { 0.01, 0.1, 1 } },
    methods = function(k, seed) return { uf.der { buffer = world.safety:sample(200, seed), alpha = k.alpha } } end },
  { name = "er", grid = { weight = { 0.1, 0.3, 1 } },
    methods = function(k, seed) return { uf.er { buffer = world.safety:sample(200, seed), weight = k.weight } } end },
  { name = "ewc", grid = { lambda = { 5, 50, 500 } },
    methods = function(k) return { uf.ewc { data = world.safety, lambda = k.lambda, samples = 200 } } end },
  { name = "lwf", grid = { beta = { 0.1, 1, 10 } },
    methods = function(k) return { uf.lwf { beta = k.beta } } end },
}
local methods = {}
for _, c in ipairs(candidates) do
  if c.name == "sft" or want[c.name] then methods[#methods + 1] = c end
end
local seeds = {}
for s = 1, n_seeds do seeds[s] = s end

uf.tune {
  name = ("tune-p%.2f"):format(p),
  seeds = seeds,
  run = function(seed) return {
    from = aligned,
    data = uf.mix { task = world.task:concat(world.lookup), poison = world.poison, p = p, n = n, seed = seed },
    optim = adamw { lr = 1e-3, epochs = 8, batch = 16, max_len = 96, schedule = "cosine", seed = seed },
  } end,
  test = evals(world.harmful_eval, world.task_eval, world.lookup_eval, world.benign_eval),
  val = evals(world.harmful_val, world.task_val, world.lookup_val, world.benign_val),
  methods = methods,
  reference = "sft",
  rule = "min harmful_rate where utility >= ref - 2",
  tags = { p = p, task = "sentiment+lookup" },
}
