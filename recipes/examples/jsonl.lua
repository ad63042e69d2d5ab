-- jsonl.lua: your own data from a JSONL file, with a field mapping and on_bad = "skip".
--   The file's keys are "question", "answer", "topic"; `fields` maps them onto the example
--   roles (prompt, input, response, label, messages, category). Line 7 of the file is malformed:
--   with on_bad = "error" (the default) the run stops with "tiny_qa.jsonl:7: ..."; with "skip"
--   the row is dropped and counted in the log. Paths are relative to the working directory.
-- Run:  unforget run recipes/examples/jsonl.lua
local uf = require "unforget"

local qa = uf.jsonl {
  path = uf.opt("data", "recipes/examples/data/tiny_qa.jsonl"),
  fields = { prompt = "question", response = "answer", category = "topic" },
  kind = "task",       -- task | harmful | benign | safety
  on_bad = "skip",     -- "error" stops at the first malformed row (file:line)
}

uf.run {
  name = "ex-jsonl",
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 96 },
  tokenizer = uf.tokenizer.train { corpus = qa, vocab = 300 },
  data = qa,
  optim = uf.adamw { lr = 3e-3, steps = 10, batch = 4, max_len = 96 },
  eval = { uf.accuracy(qa:take(4), { max_new_tokens = 6 }) },
}
