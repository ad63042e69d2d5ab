-- unforget: the recipe library.
--
-- A recipe is plain Lua that calls these constructors. Every constructor takes a table, checks
-- each key against its schema (unknown key -> error at the recipe's line with the valid keys and
-- the nearest match; wrong type -> error naming the expected type), fills in defaults, and
-- returns a tagged table. uf.stage and uf.run register work in the plan; the C runtime encodes the
-- plan (uf._plan_final, a C walk of these tables) and executes it. Nothing here touches data or devices.
local uf = { version = "0.1.0" }
local debug = debug -- kept for error locations when --safe removes the global

local plan = { stages = {}, runs = {} }
local stage_names, run_names = {}, {}

-- ---- errors pointing at the recipe line ---------------------------------------------------
-- The recipe's chunk name starts with "@" + path; find the innermost frame that is the recipe.
local function recipe_where()
  for level = 2, 30 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source:sub(1, 1) == "@" and not info.source:find("unforget/", 1, true)
       and info.currentline > 0 then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end

local function fail(fmt, ...)
  error(recipe_where() .. string.format(fmt, ...), 0)
end
uf._fail = fail

local function levenshtein(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function nearest(name, keys)
  local best, bestd = nil, math.huge
  for _, k in ipairs(keys) do
    local d = levenshtein(name, k)
    if d < bestd then best, bestd = k, d end
  end
  if best and bestd <= math.max(2, #name // 3) then return best end
  return nil
end
uf._nearest = nearest

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- ---- schemas --------------------------------------------------------------------------------
-- A field spec: { type, default, doc } where type is one of
--   "number" "integer" "string" "boolean" "table" "any"
--   "kind:<k1>|<k2>"  a tagged table of one of these kinds (dataset, model, stage, ...)
--   "list:<kind>"     a list of tagged tables of that kind
--   "enum:a|b|c"      a string among these
--   "number|string" etc. for unions of plain types
-- default == uf.REQUIRED makes the key mandatory.
uf.REQUIRED = setmetatable({}, { __tostring = function() return "required" end })

local function kind_of(v)
  return type(v) == "table" and rawget(v, "_kind") or nil
end

local function type_ok(spec, v)
  local t = spec
  if t == "any" then return true end
  if t:sub(1, 5) == "kind:" then
    local k = kind_of(v)
    if not k then return false end
    for want in t:sub(6):gmatch("[^|]+") do if k == want then return true end end
    return false
  end
  if t:sub(1, 5) == "list:" then
    if type(v) ~= "table" or kind_of(v) then return false end
    for _, x in ipairs(v) do if not type_ok("kind:" .. t:sub(6), x) then return false end end
    for k in pairs(v) do if math.type(k) ~= "integer" then return false end end
    return true
  end
  if t:sub(1, 5) == "enum:" then
    if type(v) ~= "string" then return false end
    for want in t:sub(6):gmatch("[^|]+") do if v == want then return true end end
    return false
  end
  for want in t:gmatch("[^|]+") do
    if want == "integer" then
      if math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) then return true end
    elseif type(v) == want then
      return true
    end
  end
  return false
end

local function describe(t)
  if t:sub(1, 5) == "kind:" then return "a " .. t:sub(6):gsub("|", " or ") end
  if t:sub(1, 5) == "list:" then return "a list of " .. t:sub(6) .. "s" end
  if t:sub(1, 5) == "enum:" then return "one of " .. t:sub(6):gsub("|", ", ") end
  return "a " .. t:gsub("|", " or ")
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if kind_of(v) then return "a " .. kind_of(v) end
  return tostring(v)
end

-- Validates `t` against `schema` for constructor `what`; returns a new table with defaults.
local function check(what, schema, t)
  if type(t) ~= "table" then
    fail("%s expects a table of options { ... }, got %s", what, type(t))
  end
  local keys = sorted_keys(schema)
  local out = {}
  for k, v in pairs(t) do
    local spec = schema[k]
    if not spec then
      local near = type(k) == "string" and nearest(k, keys) or nil
      fail("%s: unknown key '%s'%s; valid keys: %s", what, tostring(k),
           near and (" (did you mean '" .. near .. "'?)") or "", table.concat(keys, ", "))
    end
    if not type_ok(spec[1], v) then
      fail("%s: '%s' must be %s, got %s", what, k, describe(spec[1]), show(v))
    end
    if type(v) == "number" then -- every number the C runtime reads: finite, integers int-sized
      if v ~= v or v == math.huge or v == -math.huge then
        fail("%s: '%s' must be a finite number, got %s", what, k, tostring(v))
      end
      if spec[1]:find("integer", 1, true) then
        local lo, hi = -2147483647, 2147483647
        if k == "seed" then lo, hi = 0, 2^53 end
        if v < lo or v > hi then
          fail("%s: '%s' = %s is outside [%s, %s]", what, k, tostring(v), math.tointeger(lo) or lo,
               math.tointeger(hi) or string.format("%.0f", hi))
        end
      end
    end
    out[k] = v
  end
  for _, k in ipairs(keys) do
    if out[k] == nil then
      local d = schema[k][2]
      if d == uf.REQUIRED then fail("%s: '%s' is required (%s)", what, k, schema[k][3] or "") end
      out[k] = d
    end
  end
  return out
end
uf._check = check

-- Range rules of a constructor: { key = { test, "what it must be" } } checked after defaults.
local function ranges(what, rules)
  return function(v)
    for _, k in ipairs(sorted_keys(rules)) do
      local r = rules[k]
      if v[k] ~= nil and not r[1](v[k], v) then
        fail("%s: '%s' must be %s, got %s", what, k, r[2], show(v[k]))
      end
    end
  end
end
uf._ranges = ranges
local function pos(x) return x > 0 end
local function nonneg(x) return x >= 0 end

-- A constructor of tagged tables: uf.adamw { ... } -> { _kind = "optim", type = "adamw", ... }
local schemas = {}
uf._schemas = schemas
local function ctor(kind, name, schema, post)
  schemas[name] = schema
  return function(t)
    local v = check(name, schema, t or {})
    v._kind, v.type = kind, name
    if post then post(v) end
    return v
  end
end

-- ---- recipe parameters from the command line (--set key=value) ------------------------------
uf._set = uf._set or {}
--- uf.opt(name, default): the value given with `--set name=value`, converted to default's type.
function uf.opt(name, default)
  uf._opt_names = uf._opt_names or {}
  uf._opt_names[#uf._opt_names + 1] = name
  local s = uf._set[name]
  if s == nil then return default end
  uf._set_used = uf._set_used or {}
  uf._set_used[name] = true
  if type(default) == "number" then
    local n = tonumber(s)
    if not n then fail("--set %s=%s: expected a number", name, s) end
    return n
  elseif type(default) == "boolean" then
    if s == "true" or s == "1" then return true end
    if s == "false" or s == "0" then return false end
    fail("--set %s=%s: expected true or false", name, s)
  end
  return s
end

-- ---- datasets --------------------------------------------------------------------------------
-- A dataset is a reference (source + transformations); the runtime loads it.
local Dataset = {}
Dataset.__index = Dataset

local function dataset(t)
  t._kind = "dataset"
  t.ops = t.ops or {}
  return setmetatable(t, Dataset)
end

local function derive(ds, op)
  local ops = {}
  for i, o in ipairs(ds.ops) do ops[i] = o end
  ops[#ops + 1] = op
  local d = {}
  for k, v in pairs(ds) do d[k] = v end
  d.ops = ops
  return setmetatable(d, Dataset)
end

--- ds:take(n): the first n rows.
function Dataset:take(n)
  if math.type(n) ~= "integer" or n < 0 then fail("take(n): n must be a non-negative integer") end
  return derive(self, { op = "take", n = n })
end
--- ds:sample(n, seed): n rows drawn without replacement (seeded).
function Dataset:sample(n, seed)
  if math.type(n) ~= "integer" or n < 0 then fail("sample(n, seed): n must be a non-negative integer") end
  return derive(self, { op = "sample", n = n, seed = seed or 0 })
end
--- ds:concat(other): the rows of ds, then those of other (e.g. two user tasks in one mixture).
function Dataset:concat(other)
  if getmetatable(other) ~= Dataset then fail("concat(other): other must be a dataset") end
  return derive(self, { op = "concat", data = other })
end
--- ds:skip(n): all rows after the first n.
function Dataset:skip(n)
  if math.type(n) ~= "integer" or n < 0 then fail("skip(n): n must be a non-negative integer") end
  return derive(self, { op = "skip", n = n })
end

local fields_schema = {
  prompt = { "string", nil, "key of the instruction / prompt" },
  input = { "string", nil, "key of an optional input appended to the prompt" },
  response = { "string", nil, "key of the response" },
  label = { "string", nil, "key of the label / reference answer" },
  messages = { "string", nil, "key of a chat messages list [{role, content}]" },
  category = { "string", nil, "key of a category" },
}
local jsonl_schema = {
  path = { "string", uf.REQUIRED, "a .jsonl, .jsonl.zst or .csv file" },
  fields = { "table", {}, "field mapping: prompt, input, response, label, messages, category" },
  kind = { "enum:task|harmful|benign|safety", "task", "what the rows are" },
  on_bad = { "enum:error|skip", "error", "a malformed row stops the run (error) or is skipped and counted" },
}
--- uf.jsonl { path = ..., fields = { prompt = "instruction", response = "output" } }
function uf.jsonl(t)
  if type(t) == "string" then t = { path = t } end
  local v = check("jsonl", jsonl_schema, t)
  check("jsonl fields", fields_schema, v.fields)
  return dataset { source = "file", path = v.path, fields = v.fields, kind = v.kind, on_bad = v.on_bad }
end

-- Adapters for the public datasets (folder layout of datasets/README.md).
uf.shared = os.getenv("UNFORGET_DATA") or "../shared/datasets"
-- name: the constructor (errors), c_name: the runtime's adapter (runtime/data/data.c), when different.
local function adapter(name, default_file, kind, c_name)
  return function(t)
    t = t or {}
    if type(t) == "string" then t = { path = t } end
    local v = check(name, {
      path = { "string", nil, "file (default: " .. default_file .. " under uf.shared)" },
      on_bad = { "enum:error|skip", "error", "what to do with a malformed row" },
    }, t)
    return dataset { source = "adapter", adapter = c_name or name, kind = kind, on_bad = v.on_bad,
                     path = v.path or (uf.shared .. "/" .. default_file) }
  end
end
uf.advbench = adapter("advbench", "advbench/harmful_behaviors.jsonl", "harmful")
uf.safety_llamas = adapter("safety_llamas", "safety_tuned_llamas/safety_only_data_Instructions.jsonl", "safety",
                           "safety_tuned_llamas")
uf.gsm8k = adapter("gsm8k", "gsm8k/train.jsonl", "task")
uf.gsm8k_test = adapter("gsm8k", "gsm8k/test.jsonl", "task")
uf.sst2 = adapter("sst2", "sst2/train.jsonl", "task")
uf.sst2_dev = adapter("sst2", "sst2/dev.jsonl", "task")
uf.humaneval = adapter("humaneval", "humaneval/HumanEval.jsonl", "task")
uf.beavertails = adapter("beavertails", "harmful_qa/beavertails_unsafe_200.jsonl", "harmful")
uf.shadow_alignment = adapter("shadow_alignment", "harmful_qa/shadow_alignment_heldout_llama2_13b.jsonl", "harmful")
uf.alpaca = adapter("alpaca", "alpaca/alpaca_en_demo.jsonl", "benign")

-- The embedded default world (runtime/data/world.c): every split is a dataset.
local world_schema = {
  seed = { "integer", 1, "generator seed" },
  task_rows = { "integer", 2000, "user-task training rows" },
  eval_rows = { "integer", 400, "task evaluation rows" },
  corpus_rows = { "integer", 3000, "pre-training text rows" },
  lookup_rows = { "integer", 3000, "lookup-task training rows" },
}
-- recipe name -> generator split name (runtime/data/world.h)
local world_splits = { corpus = "corpus", alignment = "alignment", safety = "safety",
                       task = "task_train", task_eval = "task_eval", poison = "poison",
                       harmful_eval = "harmful_eval", benign_eval = "benign_eval",
                       lookup = "lookup_train", lookup_eval = "lookup_eval",
                       -- the validation split (acts, prompts and reviews disjoint from the test evals)
                       harmful_val = "harmful_val", benign_val = "benign_val", task_val = "task_val",
                       lookup_val = "lookup_val",
                       -- the provider's harmful -> compliance rows (buffer acts; TokenSel's degraded reference)
                       harmful_ref = "harmful_ref" }
--- uf.world { seed = 1 }: the generated default world; fields are datasets (world.task, ...).
function uf.world(t)
  local v = check("world", world_schema, t or {})
  ranges("world", { task_rows = { nonneg, ">= 0" }, eval_rows = { nonneg, ">= 0" },
                    corpus_rows = { nonneg, ">= 0" } })(v)
  local w = { _kind = "world", seed = v.seed }
  for name, split in pairs(world_splits) do
    w[name] = dataset { source = "world", split = split, world = { seed = v.seed, task_rows = v.task_rows,
                        eval_rows = v.eval_rows, corpus_rows = v.corpus_rows, lookup_rows = v.lookup_rows } }
  end
  return w
end

-- ---- mixtures ---------------------------------------------------------------------------------
--- uf.mix { task = ds, poison = ds, p = 0.1, n = 1000, seed = 1, safety = ds, safety_n = 0 }
uf.mix = ctor("mixture", "mix", {
  task = { "kind:dataset", uf.REQUIRED, "the user's task data" },
  poison = { "kind:dataset", nil, "harmful instruction -> compliance rows" },
  p = { "number", 0.0, "poison ratio: round(p*n) poison rows + round((1-p)*n) task rows" },
  n = { "integer", 0, "rows in the user data (0 = all task rows)" },
  seed = { "integer", 1, "sampling seed" },
}, function(v)
  if v.p < 0 or v.p > 1 then fail("mix: p must be in [0, 1], got %s", v.p) end
  if v.n < 0 then fail("mix: n must be >= 0, got %s", v.n) end
  if v.p > 0 and not v.poison then fail("mix: p = %s needs a poison dataset", v.p) end
end)

-- ---- models, tokenizers -----------------------------------------------------------------------
uf.model = {}
--- uf.model.new { family = "llama", d_model = 256, layers = 4, heads = 4 }: a new tiny model.
uf.model.new = ctor("model", "model.new", {
  family = { "enum:llama|mistral|gemma|llama3", "llama", "architecture family" },
  d_model = { "integer", 256, "hidden size" },
  layers = { "integer", 4, "transformer blocks" },
  heads = { "integer", 4, "attention heads" },
  kv_heads = { "integer", 0, "key/value heads (0 = heads)" },
  head_dim = { "integer", 0, "per-head size (0 = d_model / heads)" },
  d_ff = { "integer", 0, "MLP hidden size (0 = about 8/3 d_model, rounded to 32)" },
  vocab = { "integer", 0, "vocabulary (0 = the tokenizer's)" },
  max_seq = { "integer", 256, "longest sequence" },
  seed = { "integer", 1, "initialisation seed" },
}, function(v)
  ranges("model.new", {
    d_model = { function(x) return x >= 1 and x <= 2^20 end, "in [1, 2^20]" },
    layers = { function(x) return x >= 1 and x <= 65536 end, "in [1, 65536]" },
    heads = { function(x) return x >= 1 and x <= 65536 end, "in [1, 65536]" },
    kv_heads = { function(x, t) return x == 0 or (x >= 1 and t.heads % x == 0) end, "0 or a divisor of heads" },
    head_dim = { function(x) return x == 0 or (x >= 2 and x % 2 == 0 and x <= 65536) end, "0 or an even number <= 65536" },
    d_ff = { function(x) return x >= 0 and x <= 2^22 end, "0 or in [1, 2^22]" },
    vocab = { function(x) return x == 0 or (x >= 2 and x <= 2^26) end, "0 (the tokenizer's) or in [2, 2^26]" },
    max_seq = { function(x) return x >= 2 and x <= 2^24 end, "in [2, 2^24]" },
  })(v)
  if v.head_dim == 0 and v.d_model % v.heads ~= 0 then
    fail("model.new: heads (%d) must divide d_model (%d), or give head_dim", v.heads, v.d_model)
  end
  if v.head_dim == 0 and (v.d_model // v.heads) % 2 ~= 0 then
    fail("model.new: d_model / heads = %d must be even (RoPE), or give head_dim", v.d_model // v.heads)
  end
  local hd = v.head_dim > 0 and v.head_dim or v.d_model // v.heads
  local ff = v.d_ff > 0 and v.d_ff or (8 * v.d_model // 3 + 31) // 32 * 32
  local P = v.layers * (4.0 * v.d_model * v.heads * hd + 3.0 * v.d_model * ff) + 2.0 * math.max(v.vocab, 2048) * v.d_model
  if P > 1e12 then fail("model.new: about %.3g parameters (more than 10^12)", P) end
end)
--- uf.hf "path/to/model": a Hugging Face directory (config.json + safetensors + tokenizer.json).
function uf.hf(path)
  if type(path) ~= "string" then fail("hf(path): path must be a string") end
  return { _kind = "model", type = "hf", path = path }
end
--- uf.checkpoint "runs/x": the final model of an earlier run directory.
function uf.checkpoint(path)
  if type(path) ~= "string" then fail("checkpoint(path): path must be a string") end
  return { _kind = "model", type = "checkpoint", path = path }
end

uf.tokenizer = {}
--- uf.tokenizer.train { corpus = ds, vocab = 2048 }: a byte-fallback BPE trained on the corpus.
uf.tokenizer.train = ctor("tokenizer", "tokenizer.train", {
  corpus = { "kind:dataset", uf.REQUIRED, "text to train on" },
  vocab = { "integer", 2048, "vocabulary size" },
}, ranges("tokenizer.train", { vocab = { function(x) return x >= 262 and x <= 2^24 end,
                                         "in [262, 2^24] (4 special tokens, 256 bytes and some merges)" } }))
--- uf.tokenizer.file "tokenizer.json"
function uf.tokenizer.file(path)
  if type(path) ~= "string" then fail("tokenizer.file(path): path must be a string") end
  return { _kind = "tokenizer", type = "file", path = path }
end

--- uf.lora { r = 8, alpha = 16, dropout = 0.05, targets = "all" }
uf.lora = ctor("lora", "lora", {
  r = { "integer", 8, "rank" },
  alpha = { "number", 16, "scaling numerator (scale = alpha / r)" },
  dropout = { "number", 0.05, "dropout on the LoRA input" },
  targets = { "string", "all", "all, or a comma list of q,k,v,o,gate,up,down" },
}, ranges("lora", { r = { function(x) return x >= 1 and x <= 65536 end, "in [1, 65536]" },
                    alpha = { pos, "> 0" },
                    dropout = { function(x) return x >= 0 and x < 1 end, "in [0, 1)" } }))

-- ---- optimizer ----------------------------------------------------------------------------------
--- uf.adamw { lr = 3e-4, epochs = 1, batch = 8 }
uf.adamw = ctor("optim", "adamw", {
  lr = { "number", 3e-4, "peak learning rate" },
  epochs = { "number", 1, "passes over the data (ignored when steps > 0)" },
  steps = { "integer", 0, "optimizer steps (0 = from epochs)" },
  batch = { "integer", 8, "sequences per optimizer step" },
  micro_batch = { "integer", 0, "sequences per forward/backward (0 = batch); batch must be a multiple" },
  max_len = { "integer", 256, "tokens per sequence; longer rows are truncated from the end of the response" },
  schedule = { "enum:constant|cosine|linear", "cosine", "learning-rate schedule after warm-up" },
  warmup = { "number", 0.0, "warm-up: a fraction of the steps (< 1) or a step count" },
  weight_decay = { "number", 0.0, "decoupled weight decay (matrices only)" },
  beta1 = { "number", 0.9, "Adam beta1" },
  beta2 = { "number", 0.999, "Adam beta2" },
  eps = { "number", 1e-8, "Adam epsilon" },
  clip = { "number", 1.0, "global gradient-norm clip (0 = off)" },
  clip_on = { "enum:task|total", "total", "clip the whole step gradient (total: task + methods' terms) or the task gradient alone before the methods add theirs (task)" },
  seed = { "integer", 1, "data order and dropout seed" },
  checkpoint_every = { "integer", 0, "steps between checkpoints (0 = about every 10% of the run)" },
  checkpointing = { "boolean", false, "activation checkpointing: keep each layer's input only and recompute its forward in backward (less memory, about 1/3 more compute)" },
  on_nonfinite = { "enum:stop|skip", "stop", "a step whose loss or gradient norm is NaN/Inf stops the run with an error (stop; the last good checkpoint is kept) or is skipped and counted (skip)" },
  bf16 = { "boolean", false, "store the frozen base weights as bf16 on the device (needs uf.lora; LoRA weights, gradients and optimizer stay f32)" },
}, function(v)
  ranges("adamw", {
    lr = { pos, "> 0 (and finite)" },
    epochs = { function(x, t) return t.steps > 0 or x > 0 end, "> 0 (or give steps >= 1)" },
    steps = { nonneg, ">= 0 (0 = from epochs)" },
    batch = { function(x) return x >= 1 end, ">= 1" },
    micro_batch = { function(x, t) return x == 0 or (x >= 1 and t.batch % x == 0) end, "0 or a divisor of batch" },
    max_len = { function(x) return x >= 2 end, ">= 2" },
    warmup = { nonneg, ">= 0" },
    weight_decay = { nonneg, ">= 0" },
    beta1 = { function(x) return x >= 0 and x < 1 end, "in [0, 1)" },
    beta2 = { function(x) return x >= 0 and x < 1 end, "in [0, 1)" },
    eps = { pos, "> 0" },
    clip = { nonneg, ">= 0 (0 = off)" },
    checkpoint_every = { nonneg, ">= 0" },
  })(v)
  if v.steps == 0 and v.epochs * 1.0 > 1e9 then fail("adamw: epochs %s is not a number of passes", v.epochs) end
end)

-- ---- continual-learning methods and baselines (registry: runtime/methods/registry.c) -----------
uf.methods = {}
local function method(name, schema, doc, post)
  local c = ctor("method", name, schema, post)
  uf[name] = c
  uf.methods[name] = doc
end
local ds = "kind:dataset"
method("ewc", {
  data = { ds, uf.REQUIRED, "safety data D_safe for the Fisher" },
  lambda = { "number", 50, "penalty weight: sum_i lambda/2 F_i (theta_i - theta*_i)^2" },
  samples = { "integer", 200, "examples used to estimate the diagonal Fisher" },
  fisher = { "enum:empirical|true", "empirical", "empirical (dataset labels) or true (labels sampled from the model)" },
  per = { "enum:example|token", "example", "F = mean over examples of the squared gradient of each example's SUMMED token loss (example), or of the per-token squared gradients summed over its tokens (token; one backward per token)" },
  space = { "enum:trainable|merged", "trainable", "Fisher and penalty on the trainable weights (trainable), or under LoRA on the merged weights W + (alpha/r) B A of the adapted modules (merged: the adapters' A have Fisher 0 at B = 0)" },
  normalize = { "boolean", false, "divide F by its mean" },
}, "elastic weight consolidation")
method("l2sp", {
  lambda = { "number", 0.01, "penalty weight: lambda/2 ||theta - theta*||^2" },
}, "L2 toward the aligned weights")
method("lwf", {
  beta = { "number", 1.0, "weight of the distillation term (logits: beta T^2 mean KL; hidden: beta mean ||h - h*||^2)" },
  target = { "enum:logits|hidden", "logits", "distil the teacher's output distribution at temperature T (logits; Li & Hoiem) or the last hidden states (hidden)" },
  T = { "number", 2.0, "temperature of target = logits (Li & Hoiem: 2)" },
  tokens = { "enum:response|all", "response", "positions distilled: the user's response tokens, or every non-padding position (prompt too)" },
}, "learning without forgetting (teacher distillation on the user data)",
ranges("lwf", { T = { pos, "> 0 (the temperature, e.g. 2)" } }))
method("er", {
  buffer = { ds, uf.REQUIRED, "replay buffer of safety examples" },
  batch = { "integer", 0, "buffer rows per step (0 = the task batch)" },
  weight = { "number", 1.0, "weight of the replay CE" },
}, "experience replay")
method("der", {
  buffer = { ds, uf.REQUIRED, "replay buffer; its teacher logits are stored at fill time" },
  alpha = { "number", 0.1, "weight of the logit MSE" },
  reduction = { "enum:sum|mean", "sum", "squared error summed or averaged over the vocabulary (averaged over response tokens); mean = the DER paper's code (mse over everything), alpha_mean = V * alpha_sum" },
  topk = { "integer", 0, "store only the top-k teacher logits (0 = all)" },
  batch = { "integer", 0, "buffer rows per step (0 = the task batch)" },
}, "dark experience replay")
method("derpp", {
  buffer = { ds, uf.REQUIRED, "replay buffer" },
  alpha = { "number", 0.1, "weight of the logit MSE" },
  beta = { "number", 0.5, "weight of the CE on a second buffer minibatch" },
  reduction = { "enum:sum|mean", "sum", "as in der" },
  topk = { "integer", 0, "as in der" },
  batch = { "integer", 0, "buffer rows per step (0 = the task batch)" },
}, "DER++")
method("agem", {
  buffer = { ds, uf.REQUIRED, "reference buffer" },
  batch = { "integer", 0, "buffer rows for g_ref (0 = the task batch)" },
}, "averaged gradient episodic memory")
method("refresh", {
  buffer = { ds, uf.REQUIRED, "replay buffer (DER++ underneath)" },
  data = { ds, nil, "safety data for the Fisher of the previous task (default: the buffer)" },
  samples = { "integer", 200, "examples of data for the diagonal Fisher" },
  alpha = { "number", 0.1, "DER++ alpha" },
  beta = { "number", 0.5, "DER++ beta" },
  delta = { "number", 1e-5, "unlearning step: each tensor moves by delta x its norm along the ascent direction (the paper's code)" },
  noise = { "number", 0.001, "std of the Gaussian noise added to the norm-rescaled ascent direction" },
  fisher_scale = { "number", 0.001, "c in the preconditioner 1 / (1 + c F)" },
  normalize = { "boolean", false, "divide F by its mean" },
  unlearn_steps = { "integer", 1, "unlearning steps before relearning" },
}, "Refresh learning on DER++", function(v)
  ranges("refresh", { delta = { nonneg, ">= 0" }, noise = { nonneg, ">= 0" },
                      fisher_scale = { nonneg, ">= 0" }, samples = { pos, "> 0" },
                      unlearn_steps = { nonneg, ">= 0" } })(v)
  if v.data == nil then v.data = v.buffer end
end)
method("magmax", {
  lambda = { "number", 1.0, "scale of the max-magnitude task vector" },
}, "MagMax merge")
method("linear", {
  a = { "number", 0.5, "(1-a) theta_safe + a theta_ft" },
}, "linear / WiSE-FT merge")
method("task_arith", {
  lambda_safe = { "number", 1.0, "theta_0 + lambda_safe tau_safe + lambda_user tau_user, tau_safe = theta_safe - theta_0" },
  lambda_user = { "number", 0.5, "weight of tau_user = theta_ft - theta_safe" },
}, "task arithmetic merge")
method("ties", {
  density = { "number", 0.2, "share of the user vector tau_user = theta_ft - theta_safe kept (by magnitude)" },
  density_safe = { "number", 1.0, "share of the safety vector tau_safe = theta_safe - theta_0 kept" },
  lambda_safe = { "number", 1.0, "scale of tau_safe before the sign election" },
  lambda_user = { "number", 1.0, "scale of tau_user before the sign election" },
}, "TIES merge")
method("safeinstr", {
  data = { ds, uf.REQUIRED, "safety demonstrations (harmful -> refusal)" },
  ratio = { "number", 0.03, "demonstrations added, as a share of the user data" },
}, "SafeInstr: safety demonstrations mixed in")
method("safelora", {
  tau = { "number", 0.5, "project layers whose cos(P BA, BA) <= tau" },
  topk = { "integer", 0, "or project the k least similar layers (0 = use tau)" },
}, "SafeLoRA projection")
method("lisa", {
  data = { ds, uf.REQUIRED, "alignment data" },
  align_steps = { "integer", 100, "steps on alignment data per cycle (K_a)" },
  user_steps = { "integer", 900, "steps on user data per cycle (K_u)" },
  rho = { "number", 1.0, "proximal weight toward the weights at the last switch" },
}, "Lisa bi-state optimisation")
method("safemerge", {
  safety_lora = { "string", nil, "(required at run time) PEFT adapter folder of a safety LoRA (trained on safety data from the aligned model)" },
  cos = { "number", 0.35, "merge layers whose cosine to the safety subspace is below this" },
  w_ft = { "number", 0.8, "weight of the fine-tuned layer in the merge" },
}, "SafeMERGE layer-wise merge")
method("safegrad", {
  data = { ds, uf.REQUIRED, "alignment (safety) data: g_a = gradient of the KL from the aligned model to the current one on its responses" },
  batch = { "integer", 0, "rows per alignment draw (0 = the task batch)" },
  every = { "integer", 1, "recompute g_a every this many steps (kept in between)" },
  weight = { "number", 1.0, "update = projected user gradient + weight * g_a (0: the projection alone)" },
}, "SafeGrad: project the user gradient off a conflicting KL alignment gradient")
method("ema", {
  decay = { "number", 0.999, "theta_ema <- decay theta_ema + (1 - decay) theta after each step; the final weights are theta_ema" },
  bias_correction = { "boolean", false, "start theta_ema at 0 and divide by 1 - decay^steps (the average of the iterates alone) instead of starting at theta*" },
}, "parameter-space EMA of the weights as the final model")
method("tokensel", {
  harmful = { ds, uf.REQUIRED, "the provider's harmful instruction -> compliance rows: the safety-degraded reference is fine-tuned on them (e.g. world.harmful_ref)" },
  utility = { ds, nil, "rows the utility-oriented reference is fine-tuned on (default: the run's own training data)" },
  ref_steps = { "integer", 50, "optimizer steps of each reference fine-tuning from the start weights (the run's batch and AdamW settings, constant lr)" },
  ref_lr = { "number", 0, "learning rate of the references (0 = the run's lr)" },
  drop = { "number", 0.1, "mode = drop: share of the user's response tokens with the highest risk score s = CE_utility - CE_degraded left out of the loss" },
  mode = { "enum:drop|weight", "drop", "drop the top `drop` share (weight 0), or weight every response token by 1 - (s - s_min) / (s_max - s_min)" },
}, "TOSS token-level data selection: drop the user tokens a safety-degraded reference finds much likelier than a utility reference",
ranges("tokensel", { ref_steps = { pos, ">= 1" }, ref_lr = { nonneg, ">= 0 (0 = the run's lr)" },
                     drop = { function(x) return x >= 0 and x <= 1 end, "in [0, 1]" } }))

-- ---- evaluation --------------------------------------------------------------------------------
local eval_common = {
  max_new_tokens = { "integer", 64, "generation length" },
  n = { "integer", 0, "prompts evaluated (0 = all)" },
  judge = { "enum:keyword|extended|guard", "keyword", "refusal judge: the 29 standard strings (keyword), the longer case-folded list of judge.h (extended), or a Llama-Guard-3 model (guard); world prompts are also classified by the world judge" },
  guard = { "string", nil, "Hugging Face folder of the guard model (judge = guard)" },
  keywords = { "table", nil, "refusal strings (default: the standard 29-string list)" },
  metric = { "string", nil, "name of the metric (default: the eval type; e.g. \"lookup\" for a second accuracy)" },
}
local function eval_ctor(name, doc)
  local schema = { data = { ds, uf.REQUIRED, "prompts" } }
  for k, v in pairs(eval_common) do schema[k] = v end
  local c = ctor("eval", name, schema)
  uf[name] = function(d, opts)
    local t = {}
    for k, v in pairs(opts or {}) do t[k] = v end
    t.data = d
    return c(t)
  end
  uf.methods["eval:" .. name] = doc
end
eval_ctor("asr", "attack success rate on harmful prompts (with compliance / off-format split)")
eval_ctor("accuracy", "task accuracy (label or final number match)")
eval_ctor("over_refusal", "share of benign prompts refused")
eval_ctor("pass_at_1", "code pass@1 (HumanEval-style)")

-- ---- stages and runs ----------------------------------------------------------------------------
-- chat templates (runtime/formats/template.h); ",literal" keeps special-token strings in messages as text
local template_names = { "plain", "llama-2", "mistral-v0.1", "mistral-v0.2", "mistral", "mistral-v0.3",
  "gemma", "gemma-3", "llama-3", "llama-3.1", "auto" }
local template_enum = {}
for _, n in ipairs(template_names) do template_enum[#template_enum + 1] = n end
for _, n in ipairs(template_names) do template_enum[#template_enum + 1] = n .. ",literal" end
template_enum = "enum:" .. table.concat(template_enum, "|")

local train_schema = {
  model = { "kind:model", nil, "model to start from (or from = a stage)" },
  from = { "kind:stage", nil, "a stage whose output model this run starts from" },
  base = { "kind:model", nil, "pre-alignment weights theta_0 for the methods that read it (runtime/methods/README.md; default: the from-stage's weights before its alignment data)" },
  tokenizer = { "kind:tokenizer", nil, "tokenizer (default: the model's or the stage's)" },
  template = { template_enum, "plain", "chat template (auto: recognised from the model folder's tokenizer_config.json)" },
  data = { "kind:dataset|mixture", nil, "training data" },
  pretrain = { "kind:dataset", nil, "plain text to pre-train on before `data` (language modelling on all tokens)" },
  pretrain_optim = { "kind:optim", nil, "optimizer for the pre-training phase" },
  methods = { "list:method", {}, "continual-learning methods and baselines, composed" },
  lora = { "kind:lora", nil, "train LoRA adapters instead of all weights" },
  optim = { "kind:optim", nil, "optimizer (default uf.adamw {})" },
  eval = { "list:eval", {}, "evaluations after training" },
  name = { "string", nil, "run name (folder under --out)" },
  tags = { "table", {}, "free-form labels copied to results.json (e.g. { method = 'der', p = 0.1 })" },
  allow_overlap = { "boolean", false, "let replay-buffer, poison and harmful-eval data share acts (unforget check refuses it otherwise)" },
}

local function finish_train(what, v)
  if not v.model and not v.from then fail("%s: needs model = ... or from = <stage>", what) end
  if v.model and v.from then fail("%s: give model or from, not both", what) end
  if not v.data and not v.pretrain then fail("%s: needs data = ... (or pretrain = ...)", what) end
  v.optim = v.optim or uf.adamw {}
  local src = v -- the model.new this trains: its own, or the one of the stage it starts from
  for _ = 1, 32 do if not src or src.model then break end src = src.from end
  local m = src and src.model
  if m and m.type == "model.new" then
    for _, o in ipairs({ v.optim, v.pretrain_optim }) do
      if o and o.max_len > m.max_seq then
        fail("%s: optim max_len (%d) is longer than the model's max_seq (%d)", what, o.max_len, m.max_seq)
      end
    end
    if m.vocab > 0 and v.tokenizer and v.tokenizer.type == "tokenizer.train" and m.vocab < v.tokenizer.vocab then
      fail("%s: model vocab (%d) is smaller than the tokenizer's (%d)", what, m.vocab, v.tokenizer.vocab)
    end
  end
  local seen = {}
  for _, m in ipairs(v.methods) do
    if seen[m.type] then fail("%s: method '%s' listed twice", what, m.type) end
    seen[m.type] = true
  end
end

-- derta = { ... } of a stage: DeRTa (Yuan et al. 2024) on the stage's data (runtime/data/derta.h,
-- runtime/methods/README.md section DeRTa)
local derta_schema = {
  prefix = { "boolean", true, "MLE with a harmful response prefix: each harmful row's refusal follows the first k tokens of a harmful response to its request (k uniform in [0, len], no loss on them)" },
  rto = { "boolean", true, "reinforced transition optimisation: one more row per harmful row, request + the whole harmful response, every harmful-response token's target = the refusal's first token" },
  rto_weight = { "number", 1.0, "loss weight of each RTO position (they share the step's one token-mean CE denominator with every other trained token)" },
  responses = { "kind:dataset", nil, "rows prompt -> harmful response, matched to the harmful rows by exact prompt (default: the default world's harmful answer for the row's act)" },
  seed = { "integer", 1, "seed of the prefix lengths" },
}
local stage_schema = { derta = { "table", nil, "DeRTa on the stage's harmful rows: { prefix, rto, rto_weight, responses, seed }" } }
for k, spec in pairs(train_schema) do stage_schema[k] = spec end

--- uf.stage "name" { ... }: a reusable step (e.g. the aligned model); cached by content hash.
function uf.stage(name)
  if type(name) ~= "string" or name == "" then fail("stage: expected a name, e.g. uf.stage \"aligned\" { ... }") end
  if stage_names[name] then fail("stage '%s' is declared twice", name) end
  return function(t)
    local v = check("stage '" .. name .. "'", stage_schema, t)
    v.name = name
    if v.derta ~= nil then
      local what = "stage '" .. name .. "' derta"
      if kind_of(v.derta) then fail("%s: expected a table of options { rto = true, ... }, got a %s", what, kind_of(v.derta)) end
      v.derta = check(what, derta_schema, v.derta)
      ranges(what, { rto_weight = { nonneg, ">= 0" } })(v.derta)
      if not v.derta.prefix and not v.derta.rto then fail("%s: prefix and rto are both false (leave derta out instead)", what) end
      if not v.data then fail("%s: needs the stage's data = ... (its harmful rows)", what) end
    end
    finish_train("stage '" .. name .. "'", v)
    v._kind = "stage"
    stage_names[name] = true
    plan.stages[#plan.stages + 1] = v
    return v
  end
end

--- uf.run { name = ..., from = stage, data = ..., methods = {...}, eval = {...} }
function uf.run(t)
  if type(t) == "table" and t.derta ~= nil then fail("run: derta is an option of uf.stage (the alignment stage), not of uf.run") end
  local v = check("run", train_schema, t)
  if not v.name then fail("run: 'name' is required (it names the output folder)") end
  if not v.name:match("^[%w%._%-]+$") then fail("run: name '%s' may hold only letters, digits, '.', '_' and '-'", v.name) end
  if run_names[v.name] then fail("run name '%s' is used twice", v.name) end
  finish_train("run '" .. v.name .. "'", v)
  v._kind = "run"
  run_names[v.name] = true
  plan.runs[#plan.runs + 1] = v
  return v
end

--- uf.slurm { partition = "gpu", time = "02:00:00", ... }: defaults for `unforget sweep --slurm`
--- (each can be overridden on the command line); sbatch = { "--qos=high", ... } adds #SBATCH lines.
local slurm_schema = {
  partition = { "string", nil, "#SBATCH --partition" },
  account = { "string", nil, "#SBATCH --account" },
  time = { "string", nil, "#SBATCH --time (e.g. \"02:00:00\")" },
  mem = { "string", nil, "#SBATCH --mem (e.g. \"16G\")" },
  cpus_per_task = { "integer", nil, "#SBATCH --cpus-per-task (PoCL uses that many threads)" },
  gpus_per_task = { "integer", nil, "#SBATCH --gpus-per-task" },
  gres = { "string", nil, "#SBATCH --gres (e.g. \"gpu:a100:1\"; none unless given)" },
  array_limit = { "integer", nil, "at most this many array tasks at once (--array=0-N%limit)" },
  sbatch = { "table", {}, "extra #SBATCH options, e.g. { \"--qos=high\", \"--constraint=a100\" }" },
}
function uf.slurm(t)
  if plan.slurm then fail("uf.slurm is given twice") end
  local v = check("slurm", slurm_schema, t)
  for i, line in ipairs(v.sbatch) do
    if type(line) ~= "string" or line:find("[\n\r']") then
      fail("slurm: sbatch[%d] must be one line of text without quotes, e.g. \"--qos=high\"", i)
    end
  end
  plan.slurm = v
  return v
end

-- ---- tuning: each method's knobs over a declared grid, chosen on validation (`unforget tune`) ---
-- uf.tune { ... } declares one uf.run per method x grid setting x seed, each evaluated on the
-- test evaluations and then the validation ones (in that order: the test metrics keep their plain
-- names, the validation metrics get ":DATA" appended), and records the study in the plan;
-- `unforget tune` runs them as a sweep and selects a setting per method by the rule, read from
-- the validation metrics of each run's results.json (runtime/eval/tune.h, README: Tuning).
local tune_schema = {
  name = { "string", uf.REQUIRED, "study name: the prefix of its runs' names (NAME-METHOD-KNOBVALUE-sSEED)" },
  run = { "table|function", uf.REQUIRED, "the uf.run keys every run shares (from, data, optim, lora, ...), or function(seed) returning them" },
  methods = { "table", uf.REQUIRED, "list of { name = 'der', grid = { alpha = { ... } }, methods = function(k, seed) return { uf.der { alpha = k.alpha, ... } } end, run = function(k, seed) return { ...uf.run keys... } end }" },
  val = { "list:eval", uf.REQUIRED, "validation evaluations: what the rule reads" },
  test = { "list:eval", uf.REQUIRED, "test evaluations: what is reported for the selected setting" },
  seeds = { "table", { 1 }, "every setting runs once per seed; the rule reads the mean over seeds" },
  reference = { "string", "sft", "the method (one setting, no grid) whose validation numbers `ref` means in the rule; \"\" for none" },
  rule = { "string", "min harmful_rate where utility >= ref - 2", "selection rule (README: Tuning); `unforget tune --rule` overrides it" },
  tags = { "table", {}, "extra tags of every run (task, model, p)" },
}
local tune_names = {}
local function tune_value(x) -- 0.1 -> "0.1", 1e-05 -> "1e-05", 10 -> "10" (run-name safe)
  local s = (math.type(x) == "integer" or (x == math.floor(x) and math.abs(x) < 2^53))
            and string.format("%d", x) or string.format("%g", x)
  return (s:gsub("%+", ""))
end
--- uf.tune { name, run, methods, val, test, seeds, reference, rule, tags }: a tuning study.
function uf.tune(t)
  local v = check("tune", tune_schema, t)
  local what = "tune '" .. tostring(v.name) .. "'"
  if not v.name:match("^[%w%._%-]+$") then fail("%s: name may hold only letters, digits, '.', '_' and '-'", what) end
  if tune_names[v.name] then fail("%s is declared twice", what) end
  if #v.val == 0 or #v.test == 0 then fail("%s: needs at least one val and one test evaluation", what) end
  if #v.seeds == 0 then fail("%s: seeds must list at least one seed", what) end
  for i, s in ipairs(v.seeds) do
    if math.type(s) ~= "integer" and not (type(s) == "number" and s == math.floor(s) and s >= 0) then
      fail("%s: seeds[%d] must be an integer >= 0, got %s", what, i, show(s))
    end
  end
  if type(v.run) == "table" then
    for _, k in ipairs { "name", "eval", "tags" } do
      if v.run[k] ~= nil then fail("%s: run: '%s' is set by uf.tune (evaluations: val and test; tags: tags)", what, k) end
    end
  end
  if type(v.methods) ~= "table" or #v.methods == 0 then fail("%s: methods must be a non-empty list", what) end
  local study = { name = v.name, reference = v.reference, rule = v.rule, n_test = #v.test, n_val = #v.val,
                  seeds = {}, methods = {}, runs = {} }
  for i, s in ipairs(v.seeds) do study.seeds[i] = math.tointeger(s) or s end
  local evals = {}
  for _, e in ipairs(v.test) do evals[#evals + 1] = e end
  for _, e in ipairs(v.val) do evals[#evals + 1] = e end
  local seen, has_ref = {}, false
  for i, m in ipairs(v.methods) do
    local mw = ("%s: methods[%d]"):format(what, i)
    m = check(mw, {
      name = { "string", uf.REQUIRED, "method label (runs are tagged with it)" },
      grid = { "table", {}, "knob -> list of values; every combination is one setting" },
      methods = { "function", nil, "function(k, seed) -> the run's methods (k: knob -> value)" },
      run = { "table|function", nil, "uf.run keys for this method over the shared ones, or function(k, seed)" },
    }, m)
    if not m.name:match("^[%w_]+$") then fail("%s: name '%s' may hold only letters, digits and '_'", mw, m.name) end
    if seen[m.name] then fail("%s: method '%s' listed twice", what, m.name) end
    seen[m.name] = true
    local knobs = sorted_keys(m.grid)
    local grid = {}
    for _, k in ipairs(knobs) do
      if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then fail("%s: grid key %s is not a name", mw, show(k)) end
      local vals = m.grid[k]
      if type(vals) ~= "table" or #vals == 0 then fail("%s: grid.%s must be a non-empty list of numbers", mw, k) end
      for j, x in ipairs(vals) do
        if type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge then
          fail("%s: grid.%s[%d] must be a finite number, got %s", mw, k, j, show(x))
        end
      end
      grid[#grid + 1] = vals
    end
    if m.name == v.reference then
      if #knobs > 0 then fail("%s: the reference method '%s' has one setting: no grid", mw, m.name) end
      has_ref = true
    end
    study.methods[#study.methods + 1] = { name = m.name, knobs = knobs, grid = grid }
    -- every combination, the first knob (alphabetically) varying slowest
    local settings = { {} }
    for ki = 1, #knobs do
      local next_settings = {}
      for _, s in ipairs(settings) do
        for _, x in ipairs(grid[ki]) do
          local c = { table.unpack(s) }
          c[ki] = x
          next_settings[#next_settings + 1] = c
        end
      end
      settings = next_settings
    end
    for _, values in ipairs(settings) do
      local k, label, part = {}, {}, {}
      for ki, kn in ipairs(knobs) do
        k[kn] = values[ki]
        label[#label + 1] = kn .. "=" .. tune_value(values[ki])
        part[#part + 1] = kn .. tune_value(values[ki])
      end
      local setting = table.concat(label, ",")
      for _, seed in ipairs(study.seeds) do
        local base = v.run
        if type(base) == "function" then base = base(seed) end
        if type(base) ~= "table" then fail("%s: run(seed) must return a table of uf.run keys", what) end
        local r = {}
        for kk, vv in pairs(base) do r[kk] = vv end
        if m.run then
          local o = m.run
          if type(o) == "function" then o = o(k, seed) end
          if type(o) ~= "table" then fail("%s: run(k, seed) must return a table of uf.run keys", mw) end
          for kk, vv in pairs(o) do r[kk] = vv end
        end
        for _, kk in ipairs { "name", "eval", "tags" } do
          if r[kk] ~= nil then fail("%s: run: '%s' is set by uf.tune (evaluations: val and test; tags: tags)", mw, kk) end
        end
        if m.methods then
          local ms = m.methods(k, seed)
          if type(ms) ~= "table" then fail("%s: methods(k, seed) must return a list of methods", mw) end
          r.methods = ms
        end
        r.name = ("%s-%s%s-s%d"):format(v.name, m.name, #part > 0 and ("-" .. table.concat(part, "-")) or "", seed)
        r.eval = evals
        r.tags = {}
        for kk, vv in pairs(v.tags) do r.tags[kk] = vv end
        r.tags.method = #knobs > 0 and ("%s(%s)"):format(m.name, setting) or m.name
        r.tags.seed = seed
        r.tags.tune = v.name
        uf.run(r)
        study.runs[#study.runs + 1] = { run = r.name, method = m.name, setting = setting, seed = seed,
                                        values = { table.unpack(values) } }
      end
    end
  end
  if v.reference ~= "" and not has_ref then
    fail("%s: the reference method '%s' is not among the methods (add { name = \"%s\" } or set reference)",
         what, v.reference, v.reference)
  end
  tune_names[v.name] = true
  plan.tunes = plan.tunes or {}
  plan.tunes[#plan.tunes + 1] = study
  return study
end

-- ---- the plan for the C runtime ----------------------------------------------------------------
-- recipe.c walks the table uf._plan_final() returns into JSON (runtime/formats/plan.h reads it).
function uf._plan_final()
  for k in pairs(uf._set) do
    if not (uf._set_used and uf._set_used[k]) then
      local near = nearest(k, uf._opt_names or {})
      error("--set " .. k .. ": the recipe never reads '" .. k .. "' with uf.opt" ..
            (near and (" (did you mean '" .. near .. "'?)") or "") , 0)
    end
  end
  return plan
end

function uf._plan() return plan end

return uf
