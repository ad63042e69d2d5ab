-- sweep.lua: a grid in plain Lua: methods x poison ratios x seeds, one uf.run each, with tags
--   that `unforget report` groups by (method, p) and averages over seeds. Run it with
--     unforget sweep recipes/examples/sweep.lua --jobs 2 --out runs/sweep
--   (N runs at a time, each its own process; finished runs are skipped on a restart) and then
--     unforget report runs/sweep/ex-sweep-* -o report.html
--   Shrink or grow the grid from the command line: --set seeds=1 --set ps=0,0.1 --set methods=sft,der
--   On Slurm: unforget sweep recipes/examples/sweep.lua --out runs/sweep --slurm sweep.sbatch --submit
--   Tiny sizes: it shows the wiring, not the science.
local uf = require "unforget"

local function words(s) -- "sft,der" -> { "sft", "der" }
  local t = {}
  for x in s:gmatch("[^,]+") do t[#t + 1] = x end
  return t
end
local function numbers(s) -- "0,0.1" -> { 0, 0.1 }
  local t = {}
  for x in s:gmatch("[^,]+") do t[#t + 1] = assert(tonumber(x), "not a number: " .. x) end
  return t
end
local ps = numbers(uf.opt("ps", "0,0.1"))
local n_seeds = uf.opt("seeds", 2)
local ex = require "tiny_world" -- the tiny world and its "aligned" stage
local world, aligned = ex.world, ex.aligned

local function methods(name, seed)
  local buffer = world.safety:sample(32, seed)
  if name == "sft" then return {} end
  if name == "der" then return { uf.der { buffer = buffer, alpha = 0.1, batch = 4 } } end
  if name == "ewc" then return { uf.ewc { data = world.safety, lambda = 50, samples = 16 } } end
  if name == "lwf" then return { uf.lwf { beta = 1.0 } } end
  error("unknown method " .. name)
end

for _, name in ipairs(words(uf.opt("methods", "sft,der,ewc,lwf"))) do
  for _, p in ipairs(ps) do
    for seed = 1, n_seeds do
      uf.run {
        name = ("ex-sweep-%s-p%.2f-s%d"):format(name, p, seed),
        from = aligned,
        data = uf.mix { task = world.task, poison = world.poison, p = p, n = 80, seed = seed },
        methods = methods(name, seed),
        optim = uf.adamw { lr = 1e-3, steps = 10, batch = 8, max_len = 128, seed = seed },
        eval = { uf.asr(world.harmful_eval, { n = 8, max_new_tokens = 8 }),
                 uf.accuracy(world.task_eval, { n = 8, max_new_tokens = 8 }) },
        tags = { method = name, p = p, seed = seed, task = "sentiment" },
      }
    end
  end
end
