-- opt.lua: recipe parameters from the command line. uf.opt(name, default) returns the value of
--   `--set name=value`, converted to the default's type (number, boolean or string), or the
--   default. A --set the recipe never reads is an error (catches typos such as --set sed=2).
-- Run:  unforget run recipes/examples/opt.lua --set lr=3e-3 --set steps=20 --set lora=true \
--          --set method=der --set name=mine
local uf = require "unforget"

local lr = uf.opt("lr", 1e-3)              -- number
local steps = uf.opt("steps", 10)          -- number (integers stay integers: "20" -> 20)
local use_lora = uf.opt("lora", false)     -- boolean: true/false/1/0
local method = uf.opt("method", "sft")     -- string
local name = uf.opt("name", "ex-opt")
local seed = uf.opt("seed", 1)

local ex = require "tiny_world" -- the tiny world and its "aligned" stage
local world, aligned = ex.world, ex.aligned
local methods = {
  sft = {},
  der = { uf.der { buffer = world.safety:sample(32, seed), alpha = 0.1, batch = 4 } },
  lwf = { uf.lwf { beta = 1.0 } },
}
if not methods[method] then uf._fail("--set method=%s: expected sft, der or lwf", method) end

uf.run {
  name = name,
  from = aligned,
  data = uf.mix { task = world.task, poison = world.poison, p = uf.opt("p", 0.1), n = 80, seed = seed },
  methods = methods[method],
  lora = use_lora and uf.lora { r = 4, alpha = 8 } or nil,
  optim = uf.adamw { lr = lr, steps = steps, batch = 8, max_len = 128, seed = seed },
  eval = { uf.asr(world.harmful_eval, { n = 8, max_new_tokens = 8 }) },
  tags = { method = method, seed = seed },
}
