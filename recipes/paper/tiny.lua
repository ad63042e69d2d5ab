-- paper/tiny.lua: the paper's experiment in miniature, on a CPU, with nothing downloaded.
--   A tiny LLaMA-style model is trained here from scratch on the embedded default world:
--   a byte-fallback BPE, pre-training on the world's plain-text corpus (every act, held-out ones
--   too), then safety alignment (harmful request -> refusal, benign request -> helpful answer).
--   That stage is theta_safe (and the weights after pre-training are theta_0, for the merges,
--   SafeLoRA and SafeMERGE). The user fine-tunes it on the world's review-sentiment task with
--   poisoned rows (harmful request -> compliance) at p in {0, 0.1}, 3 seeds, under every
--   method and baseline of METHODS.md (grid.lua); full fine-tuning, except SafeLoRA (LoRA r=8).
--   Evaluated: ASR on held-out harmful requests (keyword judge, with real compliance and
--   off-format answers apart), task accuracy, over-refusal on benign requests.
-- Run:  unforget sweep recipes/paper/tiny.lua --jobs 2 --out runs/tiny
--       unforget report runs/tiny/tiny-* -o tiny.html
--   Measured on 2 CPU cores (PoCL): the stage (376 pre-training + 225 alignment steps, then
--   its evaluation) about 2 minutes, each run (504 steps + 560 evaluated prompts) 50-90 s, so
--   17 methods x 1 p x 3 seeds = 51 runs took 73 minutes with --jobs 1 (README), the whole
--   grid (x 2 p) about 2.5 hours.
--   Fewer runs: --set methods=sft,der,ewc,lwf --set seeds=1   Poison sweep: --set ps=0,0.05,0.1,0.2
local uf = require "unforget"

local function numbers(s)
  local t = {}
  for x in s:gmatch("[^,%s]+") do t[#t + 1] = tonumber(x) or uf._fail("ps=%s: '%s' is not a number", s, x) end
  return t
end
local world = uf.world { seed = uf.opt("world", 1), eval_rows = 200 }
local max_len = 96
local evals = {
  uf.asr(world.harmful_eval, { max_new_tokens = 64 }),
  uf.accuracy(world.task_eval, { max_new_tokens = 8 }),
  uf.over_refusal(world.benign_eval, { max_new_tokens = 48 }),
}

local aligned = uf.stage "tiny-aligned" {
  model = uf.model.new { family = "llama", d_model = uf.opt("d_model", 128), layers = 2, heads = 4,
                         max_seq = max_len, seed = 1 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 768 },
  pretrain = world.corpus,
  pretrain_optim = uf.adamw { lr = 3e-3, epochs = 2, batch = 16, max_len = max_len, warmup = 0.05 },
  data = world.alignment,
  optim = uf.adamw { lr = 2e-3, epochs = 3, batch = 16, max_len = max_len, warmup = 0.05 },
  eval = evals,
  tags = { method = "aligned", task = "sentiment", model = "tiny" },
}

local epochs = uf.opt("epochs", 8) -- as the quick start: long enough for regularised runs to learn the task
require "grid"(uf, {
  prefix = "tiny", from = aligned, template = "plain",
  lora_safelora = uf.lora { r = 8, alpha = 16, dropout = 0.0, targets = "all" },
  task = world.task, poison = world.poison, safety = world.safety,
  n = uf.opt("n", 1000), ps = numbers(uf.opt("ps", "0,0.1")), seeds = uf.opt("seeds", 3),
  optim = function(seed)
    return uf.adamw { lr = uf.opt("lr", 1e-3), epochs = epochs, batch = 16, max_len = max_len,
                      schedule = "constant", seed = seed }
  end,
  evals = evals, buffer_n = 200, methods = uf.opt("methods", "all"),
  -- 504 steps per run: Lisa alternates 50 alignment / 200 user steps
  hp = { der_alpha = uf.opt("der_alpha", 0.1), lisa_align_steps = 50, lisa_user_steps = 200 },
  tags = { task = "sentiment", model = "tiny" },
})
