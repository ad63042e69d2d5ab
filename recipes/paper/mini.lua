-- paper/mini.lua: the paper's grid in miniature, TUNED, on the quick start's world and model (CPU).
--   Two phases, one recipe:
--   1. tune (`unforget tune ... --set phase=tune`): each method's main knob over a declared grid
--      (a decade or so either side of its default), fine-tuned at p = 0.1 with seed 1 and
--      evaluated on the world's validation split (acts and prompts disjoint from the test
--      split); the rule "min harmful_rate where utility >= ref - 2" (utility: the run's first
--      accuracy, sentiment; ref: SFT's validation value) picks one setting per method.
--   2. grid (`unforget sweep ... --set phase=grid --set der_alpha=...`): every method at its
--      chosen setting (passed as --set keys; README: "The miniature grid, tuned" lists them), at
--      p in {0, 0.1} over 5 seeds for the paper's methods and the related defences (SafeGrad, EMA,
--      TokenSel, and DeRTa: plain SFT from a DeRTa-aligned stage; DeRTa + DER at p = 0.1, 3 seeds),
--      p = 0.1 over 3 seeds for the others, and a poison sweep p in {0, 0.05, 0.1, 0.2} for SFT,
--      DER and SafeGrad (3 seeds). Evaluated on the test split only.
--   World seed 1 and one aligned stage throughout; a seed varies the user data sample, the
--   replay buffer, the data order and the method's own randomness.
-- Run:   unforget tune recipes/paper/mini.lua --set phase=tune --jobs 2 --out runs/mini
--        unforget sweep recipes/paper/mini.lua --set phase=grid --jobs 2 --out runs/mini [--set KNOB=V ...]
--        unforget report runs/mini/mini-* -o mini.html --csv mini.csv
-- Knobs: --set part=paper|related|others|sweep|all (which rows of the grid)  --set seeds=5
--        --set methods=sft,der (tune: a subset)  --set tune_seeds=1 (seeds 1..N, which the rule
--        averages; one seed chose TokenSel's drop wrongly, see README)  --set steps_scale=1  --set eval_n=0
local uf = require "unforget"
local grid = require "grid"

local phase = uf.opt("phase", "grid")
local part = uf.opt("part", "all")
local n_seeds = uf.opt("seeds", 5)
local tune_seeds = {}
for s = 1, uf.opt("tune_seeds", 1) do tune_seeds[s] = s end
local scale = uf.opt("steps_scale", 1.0)
local eval_n = uf.opt("eval_n", 0)
local world = uf.world { seed = 1, eval_rows = 200 }

local function adamw(t) -- scale the number of epochs for short runs
  t.epochs = t.epochs * scale
  return uf.adamw(t)
end

-- the quick start's model and aligned stage (recipes/quickstart.lua, seed 1); the DeRTa stage is
-- the same with derta = {} (its RTO rows make each epoch 1.5x longer)
local function aligned_stage(name, derta)
  return uf.stage(name) {
    model = uf.model.new { family = "llama", d_model = 128, layers = 2, heads = 4, max_seq = 96, seed = 1 },
    tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 1024 },
    pretrain = world.corpus,
    pretrain_optim = adamw { lr = 2e-3, epochs = 6, batch = 16, max_len = 96, warmup = 0.05 },
    data = world.alignment,
    optim = adamw { lr = 1e-3, epochs = 3, batch = 16, max_len = 96, warmup = 0.05 },
    derta = derta,
  }
end
local aligned = aligned_stage("mini-aligned", nil)

local function evals(harmful, task, lookup, benign)
  return {
    uf.asr(harmful, { max_new_tokens = 64, n = eval_n }),
    uf.accuracy(task, { max_new_tokens = 8, n = eval_n }),
    uf.accuracy(lookup, { max_new_tokens = 12, n = eval_n, metric = "lookup" }),
    uf.over_refusal(benign, { max_new_tokens = 48, n = eval_n }),
  }
end
local test = evals(world.harmful_eval, world.task_eval, world.lookup_eval, world.benign_eval)
local val = evals(world.harmful_val, world.task_val, world.lookup_val, world.benign_val)

-- the tuned knobs: method, then per knob the hp key of grid.lua, its short name and its grid.
-- First grids: a decade or so either side of the default; where no setting met the rule, the grid
-- was extended toward the weaker side once (EWC lambda 0.05, 0.5; SafeLoRA tau 0.1, 0.2; Refresh
-- DER++ alpha 0.01; Lisa 10 alignment steps per cycle; TokenSel drop 0.01), before any grid run.
-- World v5 (longer pre-training, cosine decay): no DER or EWC setting met the rule, extended once
-- more (DER alpha 0.001, EWC lambda 0.005), and Refresh (delta 1e-6, DER++ alpha 0.001).
local knobs = {
  { "ewc", { "ewc_lambda", "lambda", { 0.005, 0.05, 0.5, 5, 50, 500 } } },
  { "lwf", { "lwf_beta", "beta", { 0.1, 1, 10 } } },
  { "der", { "der_alpha", "alpha", { 0.001, 0.01, 0.1, 1 } } },
  { "refresh", { "refresh_delta", "delta", { 1e-6, 1e-5, 1e-4, 1e-3 } }, { "refresh_alpha", "alpha", { 0.001, 0.01, 0.1 } } },
  { "magmax", { "magmax_lambda", "lambda", { 0.5, 1, 1.5 } } },
  { "safeinstr", { "safeinstr_ratio", "ratio", { 0.01, 0.03, 0.1 } } },
  { "safelora", { "safelora_tau", "tau", { 0.1, 0.2, 0.3, 0.5, 0.7 } } },
  { "lisa", { "lisa_rho", "rho", { 0.1, 1, 10 } }, { "lisa_align_steps", "align", { 10, 50 } } },
  { "safegrad", { "safegrad_weight", "weight", { 0.1, 1, 10 } } },
  { "ema", { "ema_decay", "decay", { 0.99, 0.995, 0.999 } } },
  { "tokensel", { "tokensel_drop", "drop", { 0.01, 0.05, 0.1, 0.2 } } },
}
local untuned = { agem = true } -- A-GEM has no knob besides the buffer

-- grid.lua's configuration; hp: Lisa cycles scaled to ~500 steps, then the chosen settings (--set)
local hp = { der_alpha = 0.1, lisa_align_steps = 50, lisa_user_steps = 200 }
for _, k in ipairs(knobs) do
  for i = 2, #k do
    local v = uf.opt(k[i][1], 0.0)
    if v ~= 0.0 then hp[k[i][1]] = v end
  end
end
local lora_safelora = uf.lora { r = 8, alpha = 16, dropout = 0.0, targets = "all" }
local function cfg(ps, seeds, methods, from, prefix, tags)
  return {
    prefix = prefix or "mini", from = from or aligned, template = "plain", lora_safelora = lora_safelora,
    task = world.task:concat(world.lookup), poison = world.poison, safety = world.safety,
    harmful_ref = world.harmful_ref,
    n = 1000, ps = ps, seeds = seeds,
    optim = function(seed)
      return adamw { lr = 1e-3, epochs = 8, batch = 16, max_len = 96, schedule = "cosine", seed = seed }
    end,
    evals = test, buffer_n = 200, methods = methods, hp = hp,
    tags = tags or { task = "sentiment+lookup", model = "mini" },
  }
end

if phase == "tune" then
  local want = nil
  local only = uf.opt("methods", "")
  if only ~= "" then
    want = {}
    for m in only:gmatch("[^,%s]+") do want[m] = true end
  end
  local base = cfg({ 0.1 }, 1, "all")
  local candidates = { { name = "sft" } }
  local function add(name, ks)
    if want and not want[name] then return end
    local c = { name = name, grid = {} }
    for _, kk in ipairs(ks or {}) do c.grid[kk[2]] = kk[3] end
    c.methods = function(k, seed)
      local over = {}
      for _, kk in ipairs(ks or {}) do over[kk[1]] = k[kk[2]] end
      for _, e in ipairs(grid.methods(uf, base, seed, over)) do
        if e[1] == name then return e[2] end
      end
    end
    if name == "safelora" then c.run = { lora = lora_safelora } end
    candidates[#candidates + 1] = c
  end
  for _, k in ipairs(knobs) do add(k[1], { table.unpack(k, 2) }) end
  for name in pairs(untuned) do add(name) end
  uf.tune {
    name = "mini-tune",
    seeds = tune_seeds,
    run = function(seed) return {
      from = aligned,
      data = uf.mix { task = base.task, poison = world.poison, p = 0.1, n = base.n, seed = seed },
      optim = base.optim(seed),
    } end,
    test = test, val = val, methods = candidates, reference = "sft",
    rule = "min harmful_rate where utility >= ref - 2",
    tags = { p = 0.1, task = "sentiment+lookup", model = "mini" },
  }
elseif phase == "grid" then
  local paper = "sft,ewc,lwf,agem,der,refresh,magmax,safeinstr,safelora,lisa"
  local related = "safegrad,ema,tokensel"
  local others = "er,derpp,l2sp,linear,task_arith,ties"
  local function want(p) return part == "all" or part == p end
  local derta = aligned_stage("mini-aligned-derta", {}) -- DeRTa's defaults: prefix and RTO, weight 1
  local function derta_cfg(ps, seed, method)
    return cfg(ps, { seed }, method, derta, "mini-derta",
               { task = "sentiment+lookup", model = "mini", method = method == "sft" and "derta" or "derta+" .. method })
  end
  for seed = 1, n_seeds do -- seed by seed, so that a partial sweep has every row
    if want("paper") then grid(uf, cfg({ 0, 0.1 }, { seed }, paper)) end
    if want("related") then grid(uf, cfg({ 0, 0.1 }, { seed }, related)) end
    if want("related") then grid(uf, derta_cfg({ 0, 0.1 }, seed, "sft")) end
    if seed <= 3 and want("related") then grid(uf, derta_cfg({ 0.1 }, seed, "der")) end
    if seed <= 3 and want("others") then grid(uf, cfg({ 0.1 }, { seed }, others)) end
    if seed <= 3 and want("sweep") then grid(uf, cfg({ 0.05, 0.2 }, { seed }, "sft,der,safegrad")) end
  end
else
  uf._fail("phase=%s: expected tune or grid", phase)
end
