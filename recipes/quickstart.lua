-- quickstart.lua: the whole story on the embedded default world, on one CPU in minutes.
--   1. train a byte-fallback BPE tokenizer on the world's text;
--   2. pre-train a tiny LLaMA-style model on plain text about every act (held-out ones too), 6 epochs;
--   3. safety-align it (harmful request -> refusal, benign request -> helpful answer);
--   4. fine-tune on the user's tasks (review sentiment + fact lookup), benign (p = 0) and poisoned (p = 0.1), under
--      plain fine-tuning (SFT) and four continual-learning methods (DER, ER, EWC, LwF), every
--      run for the same 8 epochs (long enough for the regularised runs to learn the task too),
--      lr 1e-3 with a cosine decay;
--   5. evaluate harm (world judge: harmful_rate on acts unseen in alignment, buffer and poison;
--      seen acts beside; keyword ASR for comparison), both tasks' accuracy, helpfulness and
--      over-refusal on benign requests, with intervals that resample acts.
-- Run:   unforget run recipes/quickstart.lua          (then: unforget report runs/qs-* -o report.html)
-- Knobs: --set seed=2   --set steps_scale=0.1 --set eval_n=20 (a short version, e.g. for CI)
local uf = require "unforget"

local seed = uf.opt("seed", 1)
local scale = uf.opt("steps_scale", 1.0)
local eval_n = uf.opt("eval_n", 0) -- prompts per evaluation (0 = all)
local n = uf.opt("n", 1000)                    -- user rows per fine-tuning run
local pt_epochs = uf.opt("pt_epochs", 6)      -- pre-training epochs
local ft_epochs = uf.opt("ft_epochs", 8)
local ft_lr = uf.opt("ft_lr", 1e-3)
local ft_schedule = uf.opt("ft_schedule", "cosine")
local only = uf.opt("only", "")                -- e.g. --set only=sft to run one method
local der_alpha = uf.opt("der_alpha", 0.1)
local world = uf.world { seed = seed, eval_rows = 200 }

local function adamw(t) -- scale the number of epochs for short runs
  t.epochs = t.epochs * scale
  return uf.adamw(t)
end

local evals = {
  uf.asr(world.harmful_eval, { max_new_tokens = 64, n = eval_n }),
  uf.accuracy(world.task_eval, { max_new_tokens = 8, n = eval_n }),
  uf.accuracy(world.lookup_eval, { max_new_tokens = 12, n = eval_n, metric = "lookup" }),
  uf.over_refusal(world.benign_eval, { max_new_tokens = 48, n = eval_n }),
}

local aligned = uf.stage "qs-aligned" {
  model = uf.model.new { family = "llama", d_model = 128, layers = 2, heads = 4, max_seq = 96, seed = seed },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 1024 },
  pretrain = world.corpus,
  pretrain_optim = adamw { lr = 2e-3, epochs = pt_epochs, batch = 16, max_len = 96, warmup = 0.05 },
  data = world.alignment,
  optim = adamw { lr = 1e-3, epochs = 3, batch = 16, max_len = 96, warmup = 0.05 },
  eval = evals,
}

-- world.safety holds only the buffer acts: the buffer, the poison and the evaluation share no act
local buffer = world.safety:sample(200, seed)
local methods = {
  sft = {},
  der = { uf.der { buffer = buffer, alpha = der_alpha, reduction = "sum" } },
  er = { uf.er { buffer = buffer } },
  ewc = { uf.ewc { data = world.safety } },  -- defaults: lambda 50, 200 samples, per-example summed-loss Fisher
  lwf = { uf.lwf {} },                       -- defaults: logits at temperature 2 (Li & Hoiem), beta 1
}

for _, p in ipairs { 0.0, 0.1 } do
  for _, name in ipairs { "sft", "der", "er", "ewc", "lwf" } do
    if only == "" or only == name then uf.run {
      name = ("qs-%s-p%.2f-s%d"):format(name, p, seed),
      from = aligned,
      data = uf.mix { task = world.task:concat(world.lookup), poison = world.poison, p = p, n = n, seed = seed },
      methods = methods[name],
      optim = adamw { lr = ft_lr, epochs = ft_epochs, batch = 16, max_len = 96, schedule = ft_schedule },
      eval = evals,
      tags = { method = name, p = p, seed = seed, task = "sentiment+lookup" },
    } end
  end
end
