-- grid.lua: the paper's grid, shared by sst2.lua, gsm8k.lua and tiny.lua (a module: `require "grid"`;
--   on its own it declares nothing). For every seed, poison ratio p and method it declares one
--   run: fine-tune the aligned model on the user data (round(p*n) harmful QA rows + the task
--   rows) with the method, then evaluate ASR, utility and over-refusal. Methods (METHODS.md):
--     reference      sft
--     regularisation ewc l2sp lwf
--     memory         er der derpp agem refresh
--     merging        magmax linear task_arith ties
--     baselines      safeinstr safelora lisa safemerge
--     related        safegrad ema tokensel (TOSS: drops the user tokens a safety-degraded
--                    reference finds much likelier than a utility one; needs cfg.harmful_ref)
--   Method hyper-parameters start from METHODS.md's defaults; the ones worth sweeping are
--   parameters of the calling recipe (--set der_alpha=0.3 ...).
--
-- usage: local grid = require "grid"; grid(uf, cfg) with cfg fields:
--   prefix         run-name prefix ("sst2")
--   from | model   the aligned model: a stage, or a uf.hf / uf.checkpoint model
--   base           pre-alignment weights theta_0 (a model) or nil: from a stage, theta_0 is
--                  the stage's; else the merges fall back to theta_safe and SafeLoRA and
--                  SafeMERGE are skipped (they need it)
--   template       chat template
--   lora           a uf.lora or nil (full fine-tuning; SafeLoRA then gets its own lora_safelora)
--   lora_safelora  the adapters SafeLoRA uses when lora is nil
--   task, poison   datasets: the user's task rows and the harmful QA rows
--   safety         D_safe: harmful instruction -> refusal (EWC's Fisher, replay buffers,
--                  SafeInstr's demonstrations, Lisa's alignment data)
--   harmful_ref    the PROVIDER's harmful instruction -> compliance rows (never the user's poison;
--                  in the default world: world.harmful_ref), TokenSel's safety-degraded
--                  reference; nil: tokensel is skipped with a note
--   n, ps, seeds   user-data size, list of poison ratios, number of seeds (1..seeds) or a list of seeds
--   optim          function(seed) -> uf.adamw
--   evals          list of evaluations
--   buffer_n       replay buffer size |M|
--   methods        "all" or a comma list (e.g. "sft,der")
--   hp             method hyper-parameters (table; see below for the keys and defaults)
--   tags           extra tags (task, model)
-- grid.methods(uf, cfg, seed, hp) is the list { { name, methods }, ... } of one seed, hp over
-- cfg.hp (paper/mini.lua tunes through it).
local M = {}

function M.methods(uf, cfg, seed, over)
  local hp = {}
  for k, v in pairs(cfg.hp or {}) do hp[k] = v end
  for k, v in pairs(over or {}) do hp[k] = v end
  local function h(k, d) if hp[k] == nil then return d end return hp[k] end
  local safe, buf = cfg.safety, cfg.safety:sample(cfg.buffer_n, seed)
  local rows = h("replay_batch", 0) -- 0: the task batch
  return {
    { "sft", {} },
    { "ewc", { uf.ewc { data = safe, lambda = h("ewc_lambda", 50), samples = cfg.buffer_n,
                        fisher = h("ewc_fisher", "true"), normalize = h("ewc_normalize", true),
                        per = h("ewc_per", "example"), space = h("ewc_space", "trainable") } } },
    { "l2sp", { uf.l2sp { lambda = h("l2sp_lambda", 0.01) } } },
    { "lwf", { uf.lwf { beta = h("lwf_beta", 1.0), target = h("lwf_target", "logits"), T = h("lwf_T", 2.0) } } },
    { "er", { uf.er { buffer = buf, batch = rows } } },
    { "der", { uf.der { buffer = buf, alpha = h("der_alpha", 0.3), reduction = "sum", batch = rows } } },
    { "derpp", { uf.derpp { buffer = buf, alpha = h("der_alpha", 0.3), beta = h("derpp_beta", 0.5),
                            reduction = "sum", batch = rows } } },
    { "agem", { uf.agem { buffer = buf, batch = rows } } },
    { "refresh", { uf.refresh { buffer = buf, data = safe, alpha = h("refresh_alpha", h("der_alpha", 0.3)), beta = h("derpp_beta", 0.5),
                                delta = h("refresh_delta", 1e-5), fisher_scale = h("refresh_fisher_scale", 0.001) } } },
    { "magmax", { uf.magmax { lambda = h("magmax_lambda", 1.0) } } },
    { "linear", { uf.linear { a = h("linear_a", 0.5) } } },
    { "task_arith", { uf.task_arith { lambda_safe = h("task_arith_lambda_safe", 1.0), lambda_user = h("task_arith_lambda_user", 0.5) } } },
    { "ties", { uf.ties { density = h("ties_density", 0.2), lambda_user = h("ties_lambda_user", 1.0) } } },
    { "safeinstr", { uf.safeinstr { data = safe, ratio = h("safeinstr_ratio", 0.03) } } },
    { "safelora", { uf.safelora { tau = h("safelora_tau", 0.5) } } },
    { "lisa", { uf.lisa { data = safe, align_steps = h("lisa_align_steps", 100),
                          user_steps = h("lisa_user_steps", 900), rho = h("lisa_rho", 1.0) } } },
    { "safemerge", { uf.safemerge { safety_lora = h("safemerge_safety_lora", nil), cos = h("safemerge_cos", 0.35), w_ft = h("safemerge_w_ft", 0.8) } } },
    { "safegrad", { uf.safegrad { data = safe, weight = h("safegrad_weight", 1.0) } } },
    { "ema", { uf.ema { decay = h("ema_decay", 0.999) } } },
    { "tokensel", cfg.harmful_ref and { uf.tokensel { harmful = cfg.harmful_ref, drop = h("tokensel_drop", 0.1),
                                                     ref_steps = h("tokensel_ref_steps", 50) } } or false },
  }
end

function M.declare(uf, cfg)
  local hp = cfg.hp or {}
  local function h(k, d) if hp[k] == nil then return d end return hp[k] end
  local function methods_for(seed) return M.methods(uf, cfg, seed) end

  local wanted = nil
  if cfg.methods and cfg.methods ~= "all" then
    wanted = {}
    for m in cfg.methods:gmatch("[^,%s]+") do wanted[m] = true end
    local known = {}
    for _, e in ipairs(methods_for(1)) do known[e[1]] = true end
    for m in pairs(wanted) do
      if not known[m] then
        local names = {}
        for k in pairs(known) do names[#names + 1] = k end
        table.sort(names)
        local near = uf._nearest(m, names)
        uf._fail("methods=%s: unknown method '%s'%s; known: %s", cfg.methods, m,
                 near and (" (did you mean '" .. near .. "'?)") or "", table.concat(names, ", "))
      end
    end
  end
  local needs_theta0 = { safelora = true, safemerge = true }
  local have_theta0 = cfg.from ~= nil or cfg.base ~= nil

  local seeds = cfg.seeds
  if type(seeds) ~= "table" then
    seeds = {}
    for s = 1, cfg.seeds do seeds[s] = s end
  end
  for _, seed in ipairs(seeds) do
    for _, p in ipairs(cfg.ps) do
      for _, e in ipairs(methods_for(seed)) do
        local name, methods = e[1], e[2]
        -- SafeMERGE needs a separately trained safety LoRA (hp.safemerge_safety_lora, a PEFT folder)
        local runnable = (name ~= "safemerge" or h("safemerge_safety_lora", nil) ~= nil) and methods ~= false
        if (not wanted or wanted[name]) and runnable and (have_theta0 or not needs_theta0[name]) then
          local tags = { method = name, p = p, seed = seed }
          for k, v in pairs(cfg.tags or {}) do tags[k] = v end
          uf.run {
            name = ("%s-%s-p%.2f-s%d"):format(cfg.prefix, name, p, seed),
            from = cfg.from, model = cfg.model, base = cfg.base, template = cfg.template,
            lora = cfg.lora or (name == "safelora" and cfg.lora_safelora or nil),
            data = uf.mix { task = cfg.task, poison = cfg.poison, p = p, n = cfg.n, seed = seed },
            methods = methods,
            optim = cfg.optim(seed),
            eval = cfg.evals,
            tags = tags,
          }
        elseif not have_theta0 and needs_theta0[name] and (not wanted or wanted[name]) and seed == seeds[1] and p == cfg.ps[1] then
          io.stderr:write(("note: %s skipped: it needs the pre-alignment weights (--set base=DIR)\n"):format(name))
        elseif methods == false and (not wanted or wanted[name]) and seed == seeds[1] and p == cfg.ps[1] then
          io.stderr:write(("note: %s skipped: it needs the provider's harmful-compliance rows (cfg.harmful_ref, "
                           .. "e.g. world.harmful_ref)\n"):format(name))
        end
      end
    end
  end
end

return setmetatable(M, { __call = function(_, uf, cfg) return M.declare(uf, cfg) end })
