#!/usr/bin/env bash
# `unforget tune` end to end, tiny: an aligned stage, then SFT (the reference) and 2 methods x 2
# grid values (DER alpha, ER weight, the latter declared larger first), each run evaluated on the test split and the world's
# validation split. Checks: the study's 5 runs are trained by the sweep (--jobs 2); tune.json and
# tune.csv are written; for the default rule and two others, the setting tune.json chose for each
# method is the one the rule picks from the candidates' VALIDATION numbers read back from their
# results.json here (an independent reading: the evaluations' positions, the rule re-implemented in
# Python), the reported test numbers are the chosen runs' test metrics; a second invocation starts
# no run; a bad --rule is a usage error; a recipe without uf.tune is refused.
set -u
bin=${UF_BIN:?}
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail=0
cat > tune.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 2, task_rows = 500, eval_rows = 24, corpus_rows = 200 }
local aligned = uf.stage "tt-aligned" {
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 400 },
  data = world.alignment:take(600),
  optim = uf.adamw { lr = 3e-3, steps = 150, batch = 8, max_len = 128 },
}
local n = 12
uf.tune {
  name = "tt",
  run = function(seed) return {
    from = aligned,
    data = uf.mix { task = world.task, poison = world.poison, p = 0.1, n = 400, seed = seed },
    optim = uf.adamw { lr = 3e-3, steps = 100, batch = 8, max_len = 128, seed = seed },
  } end,
  test = { uf.asr(world.harmful_eval, { n = n, max_new_tokens = 6 }),
           uf.accuracy(world.task_eval, { n = n, max_new_tokens = 8 }) },
  val = { uf.asr(world.harmful_val, { n = n, max_new_tokens = 6 }),
          uf.accuracy(world.task_val, { n = n, max_new_tokens = 8 }) },
  methods = {
    { name = "sft" },
    { name = "der", grid = { alpha = { 0.01, 1 } },
      methods = function(k, seed) return { uf.der { buffer = world.safety:sample(16, seed), alpha = k.alpha, batch = 4 } } end },
    { name = "er", grid = { weight = { 2, 0.5 } }, -- declared larger first: ties still go to 0.5
      methods = function(k, seed) return { uf.er { buffer = world.safety:sample(16, seed), weight = k.weight, batch = 4 } } end },
  },
  tags = { task = "sentiment" },
}
LUA
"$bin" -q tune tune.lua --out out --jobs 2 > t1.log 2>&1; rc=$?
tail -25 t1.log
[ $rc -eq 0 ] || { echo "FAIL: tune exited $rc"; fail=1; }
grep -q "5 run(s) to do, 0 already done" t1.log || { echo "FAIL: the sweep did not plan the study's 5 runs"; fail=1; }
[ -s out/tune.json ] && [ -s out/tune.csv ] || { echo "FAIL: no tune.json / tune.csv"; fail=1; }
ls out/*.tmp.* 2>/dev/null && { echo "FAIL: temporary files left"; fail=1; }

# the selection, re-done from the runs' results.json for three rules
check() { # $1: the rule tune.json should hold
  python3 - "$1" <<'PY'
import json, math, re, sys
want_rule = sys.argv[1]
t = json.load(open("out/tune.json"))
assert t["schema"] == "unforget.tune/1"
(st,) = t["studies"]
assert st["rule"] == want_rule, (st["rule"], want_rule)
m = re.fullmatch(r"(min|max) (\S+)(?: where (.*))?", want_rule)
maximize, objective = m.group(1) == "max", m.group(2)
conds = []
for c in (m.group(3).split(" and ") if m.group(3) else []):
    cm = re.fullmatch(r"(\S+) (>=|<=) (ref(?: ([+-]) ([\d.]+))?|-?[\d.]+)", c)
    off = 0.0
    if cm.group(3).startswith("ref"):
        off = (float(cm.group(5)) if cm.group(4) else 0.0) * (-1 if cm.group(4) == "-" else 1) / 100
    else:
        off = float(cm.group(3)) / 100
    conds.append((cm.group(1), cm.group(2), cm.group(3).startswith("ref"), off))

def split(run):  # validation metrics: evaluations 3 and 4 (after the 2 test ones)
    r = json.load(open(f"out/{run}/results.json"))
    ev = r["evals"]
    assert len(ev) == 4, len(ev)
    test, val, named = {}, {}, set()
    for i, e in enumerate(ev):
        for name in e["metrics"]:
            named.add(name)
            base = name[: -len(":" + e["data"])] if name.endswith(":" + e["data"]) else name
            (test if i < 2 else val).setdefault(base, r["metrics"][name]["value"])
    for name, x in r["metrics"].items():
        if name not in named:
            test[name] = val[name] = x["value"]
    for d in (test, val):
        d["utility"] = d["accuracy"]
    return test, val

def mean(xs): return sum(xs) / len(xs)
cands = {}
for meth in st["methods"]:
    for c in meth["candidates"]:
        vals = [split(run)[1] for run in c["runs"]]
        c["_val"] = {k: mean([v[k] for v in vals]) for k in vals[0]}
        cands.setdefault(meth["method"], []).append(c)
(ref,) = cands["sft"]
bad = 0
for meth in st["methods"]:
    cs = cands[meth["method"]]
    for c in cs:
        v = c["_val"]
        short = 0.0
        for metric, op, vs_ref, off in conds:
            bound = (ref["_val"][metric] if vs_ref else 0.0) + off
            miss = (v[metric] - bound) if op == "<=" else (bound - v[metric])
            short += miss if miss > 1e-9 else 0.0
        c["_meets"], c["_short"] = short == 0.0, short
        for k in [objective] + [x[0] for x in conds]:  # what tune.json says it read
            if abs(c["rule_val"][k] - v[k]) > 1e-12:
                print(f"FAIL: {meth['method']} {c['setting']}: tune.json val {k} {c['rule_val'][k]} != {v[k]}"); bad = 1
        if c["meets_rule"] != c["_meets"]:
            print(f"FAIL: {meth['method']} {c['setting']}: meets_rule {c['meets_rule']} != {c['_meets']}"); bad = 1
    pool = [c for c in cs if c["_meets"]] or cs
    key = lambda c: (0 if any(x["_meets"] for x in cs) else round(c["_short"], 9),
                     round(-c["_val"][objective] if maximize else c["_val"][objective], 9),
                     [c["values"][k] for k in sorted(c["values"])])
    best = min(pool, key=key)
    chosen = [c for c in cs if c["chosen"]]
    print(f"{meth['method']}: candidates " + ", ".join(
        f"{c['setting'] or '-'} ({objective} {100*c['_val'][objective]:.1f}" +
        "".join(f", {x[0]} {100*c['_val'][x[0]]:.1f}" for x in conds) + f", meets {c['_meets']})" for c in cs) +
        f"; expected {best['setting'] or '-'}, tune chose {meth['selected'] or '-'}")
    if len(chosen) != 1 or chosen[0]["setting"] != best["setting"] or meth["selected"] != best["setting"]:
        print(f"FAIL: {meth['method']}: chose {meth['selected']!r}, the rule picks {best['setting']!r}"); bad = 1
    test = mean([split(run)[0][objective] for run in best["runs"]])
    if abs(meth["test"][objective]["mean"] - test) > 1e-12:
        print(f"FAIL: {meth['method']}: reported test {objective} {meth['test'][objective]['mean']} != {test}"); bad = 1
sys.exit(bad)
PY
}
check "min harmful_rate where utility >= ref - 2" || { echo "FAIL: the default rule's selection"; fail=1; }
for rule in "max refusal_rate where utility >= ref - 30 and clip_share <= 100" "min accuracy where clip_share >= 90"; do
  "$bin" -q tune tune.lua --out out --rule "$rule" > t2.log 2>&1 || { cat t2.log; echo "FAIL: tune --rule '$rule' failed"; fail=1; }
  grep -q "0 run(s) to do, 5 already done" t2.log || { echo "FAIL: a second tune started runs"; fail=1; }
  grep -q "started" t2.log && { echo "FAIL: a second tune started a run"; fail=1; }
  check "$rule" || { echo "FAIL: the selection under '$rule'"; fail=1; }
done
grep -q '^tt,der,"alpha=1",[01],[01],val,harmful_rate,' out/tune.csv || { echo "FAIL: tune.csv lacks der alpha=1's val harmful_rate"; fail=1; }

# usage errors and refusals
"$bin" tune tune.lua --out out --rule "lowest harmful_rate" > t3.log 2>&1; rc=$?
[ $rc -eq 2 ] && grep -q "expected 'min' or 'max'" t3.log || { cat t3.log; echo "FAIL: a bad --rule is not a usage error ($rc)"; fail=1; }
cat > plain.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 2, task_rows = 20, eval_rows = 4, corpus_rows = 50 }
uf.run { name = "p", model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 64 },
         tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 300 },
         data = world.task, optim = uf.adamw { steps = 1, batch = 2, max_len = 64 } }
LUA
"$bin" tune plain.lua --out out > t4.log 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q "declares no uf.tune study" t4.log || { cat t4.log; echo "FAIL: a recipe without uf.tune was not refused"; fail=1; }
[ $fail -eq 0 ] && echo "tune: ok"
exit $fail
