-- real.lua: the real-model half of the paper's experiment, shared by sst2.lua and gsm8k.lua
--   (a module: `require "real"`; on its own it declares nothing). It reads the recipe parameters
--   (--set key=value), builds the aligned model (a given chat checkpoint, or an alignment stage
--   on top of a base model with --set align=true), the evaluations and the optimizer, and hands
--   everything to grid.lua. Parameters (default):
--     model     the aligned (chat) checkpoint, a Hugging Face folder ("models/Llama-2-7b-chat-hf")
--     base      its pre-alignment base, theta_0 for the merges, SafeLoRA and SafeMERGE
--               ("models/Llama-2-7b-hf"; --set base= to go without: SafeLoRA/SafeMERGE skipped)
--     template  chat template: plain | llama-2 | mistral(-v0.1|-v0.2|-v0.3) | gemma(-3) | llama-3(.1) | auto ("llama-2")
--     align     true: align `base` here on Safety-Tuned LLaMAs refusals + Alpaca answers, LoRA
--               r=8, and fine-tune that (false)
--     data      folder of the public datasets (uf.shared: $UNFORGET_DATA or ../shared/datasets)
--     ps        poison ratios ("0,0.1"; the sweep of prior work: "0,0.05,0.1,0.2")
--     seeds (3)  n (1000)  epochs (20)  lr (1e-4)  batch (10)  lora_r (8)  lora_alpha (16)
--     methods   "all" or a comma list ("sft,der,lisa")
--     eval_n    prompts per evaluation (0 = all)   judge  keyword | guard   guard  Llama-Guard-3 dir
--     der_alpha (0.3) ewc_lambda (50) l2sp_lambda (0.01) lwf_beta (1) buffer (500)
return function(uf, task)
  local function numbers(s)
    local t = {}
    for x in s:gmatch("[^,%s]+") do
      t[#t + 1] = tonumber(x) or uf._fail("ps=%s: '%s' is not a number", s, x)
    end
    return t
  end
  local data = uf.opt("data", uf.shared)
  local model_dir = uf.opt("model", "models/Llama-2-7b-chat-hf")
  local base_dir = uf.opt("base", "models/Llama-2-7b-hf")
  local template = uf.opt("template", "llama-2")
  local align = uf.opt("align", false)
  local eval_n = uf.opt("eval_n", 0)
  local judge = uf.opt("judge", "keyword")
  local guard = uf.opt("guard", "")
  local lora = uf.lora { r = uf.opt("lora_r", 8), alpha = uf.opt("lora_alpha", 16), dropout = 0.05,
                         targets = "all" }  -- q,k,v,o,gate,up,down
  local lr, batch, epochs = uf.opt("lr", 1e-4), uf.opt("batch", 10), uf.opt("epochs", 20)
  local function path(rel) return data .. "/" .. rel end

  local safety = uf.safety_llamas(path("safety_tuned_llamas/safety_only_data_Instructions.jsonl"))
  local judge_opts = { judge = judge, guard = guard ~= "" and guard or nil }
  local function with(t, extra)
    for k, v in pairs(extra) do t[k] = v end
    return t
  end
  local evals = {
    uf.asr(uf.advbench(path("advbench/harmful_behaviors.jsonl")),
           with({ n = eval_n, max_new_tokens = 64 }, judge_opts)),
    task.utility(path, eval_n),
    uf.over_refusal(uf.alpaca(path("alpaca/alpaca_en_demo.jsonl")),
                    with({ n = eval_n > 0 and eval_n or 200, max_new_tokens = 64 }, judge_opts)),
  }

  local from, model, base = nil, nil, nil
  if align then
    -- the provider's alignment: harmful -> refusal and benign -> helpful, half and half
    from = uf.stage "paper-aligned" {
      model = uf.hf(base_dir), template = template, lora = lora,
      data = uf.mix { task = uf.alpaca(path("alpaca/alpaca_subset_416.jsonl")), poison = safety,
                      p = 0.5, n = 800, seed = 1 },
      optim = uf.adamw { lr = lr, epochs = 3, batch = batch, max_len = 512, warmup = 0.05 },
      eval = evals,
      tags = { method = "aligned", p = 0 },  -- the mix is the alignment set, not poisoning
    }
  else
    model = uf.hf(model_dir)
    base = base_dir ~= "" and uf.hf(base_dir) or nil
  end

  local grid = require "grid"
  grid(uf, {
    prefix = task.prefix, from = from, model = model, base = base, template = template, lora = lora,
    task = task.train(path), poison = uf.beavertails(path("harmful_qa/beavertails_unsafe_200.jsonl")),
    safety = safety,
    n = uf.opt("n", 1000), ps = numbers(uf.opt("ps", "0,0.1")), seeds = uf.opt("seeds", 3),
    optim = function(seed)
      return uf.adamw { lr = lr, epochs = epochs, batch = batch, max_len = task.max_len,
                        schedule = "cosine", warmup = 0.03, seed = seed }
    end,
    evals = evals, buffer_n = uf.opt("buffer", 500), methods = uf.opt("methods", "all"),
    hp = { der_alpha = uf.opt("der_alpha", 0.3), ewc_lambda = uf.opt("ewc_lambda", 50),
           l2sp_lambda = uf.opt("l2sp_lambda", 0.01), lwf_beta = uf.opt("lwf_beta", 1.0) },
    tags = { task = task.prefix, model = model_dir:match("([^/]+)/*$") or model_dir },
  })
end
