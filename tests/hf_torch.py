#!/usr/bin/env python3
"""hf_torch.py: `unforget score` and `unforget generate` on Hugging Face model folders, against an
independent PyTorch implementation written from the Hugging Face modeling formulas
(LlamaRMSNorm / GemmaRMSNorm, rotate_half + apply_rotary_pos_emb, _compute_llama3_parameters,
repeat_kv, eager causal attention with Mistral's sliding window, LlamaMLP / GemmaMLP, Gemma's
embedding normalizer, tied lm_head), in float64, NOT from the C code.

For each family (llama, mistral with sliding_window 4 < the sequence lengths, gemma with
head_dim != hidden/heads and tied embeddings, llama3 with rope_scaling "llama3") it writes a tiny
random model folder: config.json, the weights (safetensors written with struct + json since the
safetensors package is absent; llama F32, mistral BF16, gemma F16, llama3 BF16 sharded over two
files with model.safetensors.index.json), and a hand-made SentencePiece-style tokenizer.json
(byte fallback, no merges, so the expected ids are computed here directly). Then:
  - score: the token ids must equal the ones computed here; log-probs max abs diff <= 2e-4
    (the device computes in f32; the reference in f64 from the same rounded weights);
  - generate --bf16: the same against the reference with its weights rounded to bf16;
  - generate (greedy, 3 prompts of different lengths batched, 10 new tokens, EOS = 2): the new
    token ids must equal greedy decoding here (a mismatch is tolerated only where the reference's
    top-2 logit margin is below 1e-4, i.e. a genuine near-tie, and then the rest is not compared);
  - a stop string taken from the greedy completion ends generation there and is cut from the text;
  - sampling (temperature 0.8, top-p 0.9, seed 3): the same output with --batch 1 and --batch 3.

Usage: hf_torch.py WORK_DIR UNFORGET_BIN. Exit 0 when everything is within bounds, 1 otherwise."""
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
BOUND_LOGPROB, TIE_MARGIN = 2e-4, 1e-4
V_LETTERS = "abcdefghijklmnopqrstuvwxyz"
SP = "\u2581"

# ---- tokenizer --------------------------------------------------------------------------------


def tokenizer_vocab():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = 3 + b
    for ch in SP + V_LETTERS:
        vocab[ch] = len(vocab)
    return vocab


def tokenizer_json(vocab):
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for c, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SP},
            {"type": "Replace", "pattern": {"String": " "}, "content": SP}]},
        "pre_tokenizer": None, "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SP}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


def encode(vocab, text):
    """SentencePiece-style with byte fallback and no merges: one piece per character."""
    ids = [1]
    for ch in SP + text.replace(" ", SP):
        if ch in vocab:
            ids.append(vocab[ch])
        else:
            ids.extend(3 + b for b in ch.encode("utf-8"))
    return ids

# ---- safetensors writer -----------------------------------------------------------------------


def st_bytes(t, dtype):
    t = t.detach().to(torch.float32).contiguous()
    if dtype == "F32":
        return t.numpy().tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().tobytes()
    return t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()  # BF16


def rounded(t, dtype):
    """The f64 value of t after storage in dtype (what the C loader reads)."""
    t = t.to(torch.float32)
    if dtype == "F16":
        t = t.to(torch.float16)
    elif dtype == "BF16":
        t = t.to(torch.bfloat16)
    return t.to(torch.float64)


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors:
        b = st_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

# ---- models -----------------------------------------------------------------------------------


FAMILIES = {
    "llama": dict(arch="LlamaForCausalLM", model_type="llama", dtype="F32", heads=4, kv=2,
                  head_dim=None, act="silu", tied=False, theta=10000.0, window=None, scaling=None),
    "mistral": dict(arch="MistralForCausalLM", model_type="mistral", dtype="BF16", heads=4, kv=1,
                    head_dim=None, act="silu", tied=False, theta=10000.0, window=4, scaling=None),
    "gemma": dict(arch="GemmaForCausalLM", model_type="gemma", dtype="F16", heads=4, kv=1,
                  head_dim=16, act="gelu_pytorch_tanh", tied=True, theta=10000.0, window=None,
                  scaling=None),
    "llama3": dict(arch="LlamaForCausalLM", model_type="llama", dtype="BF16", heads=4, kv=2,
                   head_dim=None, act="silu", tied=False, theta=500.0, window=None,
                   scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
}
D, L, FF, MAXPOS = 48, 2, 96, 128


def make_model(name, spec, V, out_dir, seed):
    g = torch.Generator().manual_seed(seed)
    H, KV = spec["heads"], spec["kv"]
    hd = spec["head_dim"] or D // H
    gemma = name == "gemma"
    eps = 1e-6 if gemma else 1e-5

    def rnd(*shape, sd):
        return torch.randn(*shape, generator=g) * sd

    def norm_w():
        return rnd(D, sd=0.1) + (0.0 if gemma else 1.0)

    # Gemma ties lm_head to the (sqrt(D)-scaled) embeddings: with small layer outputs greedy
    # decoding would just repeat the last token, so its residual branches are made larger
    big = 4.0 if gemma else 1.0

    tensors = [("model.embed_tokens.weight", rnd(V, D, sd=1.0 if not gemma else 0.2))]
    for l in range(L):
        p = "model.layers.%d." % l
        tensors += [
            (p + "input_layernorm.weight", norm_w()),
            (p + "self_attn.q_proj.weight", rnd(H * hd, D, sd=D ** -0.5)),
            (p + "self_attn.k_proj.weight", rnd(KV * hd, D, sd=D ** -0.5)),
            (p + "self_attn.v_proj.weight", rnd(KV * hd, D, sd=D ** -0.5)),
            (p + "self_attn.o_proj.weight", rnd(D, H * hd, sd=big * (H * hd) ** -0.5)),
            (p + "post_attention_layernorm.weight", norm_w()),
            (p + "mlp.gate_proj.weight", rnd(FF, D, sd=D ** -0.5)),
            (p + "mlp.up_proj.weight", rnd(FF, D, sd=D ** -0.5)),
            (p + "mlp.down_proj.weight", rnd(D, FF, sd=big * FF ** -0.5)),
        ]
    tensors.append(("model.norm.weight", norm_w()))
    if not spec["tied"]:
        tensors.append(("lm_head.weight", rnd(V, D, sd=D ** -0.5 * 3)))
    os.makedirs(out_dir, exist_ok=True)
    dtype = spec["dtype"]
    if name == "llama3":  # sharded
        half = len(tensors) // 2
        shards = [("model-00001-of-00002.safetensors", tensors[:half]),
                  ("model-00002-of-00002.safetensors", tensors[half:])]
        wm = {}
        for fn, ts in shards:
            write_safetensors(os.path.join(out_dir, fn), ts, dtype)
            wm.update({n: fn for n, _ in ts})
        json.dump({"metadata": {}, "weight_map": wm},
                  open(os.path.join(out_dir, "model.safetensors.index.json"), "w"))
    else:
        write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors, dtype)
    cfg = {"architectures": [spec["arch"]], "model_type": spec["model_type"], "vocab_size": V,
           "hidden_size": D, "intermediate_size": FF, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "max_position_embeddings": MAXPOS,
           "rms_norm_eps": eps, "rope_theta": spec["theta"], "hidden_act": spec["act"],
           "tie_word_embeddings": spec["tied"], "bos_token_id": 1, "eos_token_id": 2,
           "attention_bias": False, "torch_dtype": {"F32": "float32", "F16": "float16",
                                                    "BF16": "bfloat16"}[dtype]}
    if gemma:
        cfg["head_dim"] = hd
        cfg["hidden_activation"] = spec["act"]
    if spec["window"]:
        cfg["sliding_window"] = spec["window"]
    if spec["scaling"]:
        cfg["rope_scaling"] = spec["scaling"]
    json.dump(cfg, open(os.path.join(out_dir, "config.json"), "w"), indent=1)
    W = {n: rounded(t, dtype) for n, t in tensors}
    return dict(W=W, H=H, KV=KV, hd=hd, eps=eps, gemma=gemma, cfg=cfg, spec=spec)


def inv_freq(m):
    hd, theta = m["hd"], m["spec"]["theta"]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).to(torch.float64) / hd))
    inv = inv.to(torch.float32).to(torch.float64)  # unforget stores inv_freq as f32
    s = m["spec"]["scaling"]
    if s:  # _compute_llama3_parameters
        factor, lo, hi, orig = (s["factor"], s["low_freq_factor"], s["high_freq_factor"],
                                s["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > orig / lo, inv / factor, inv)
        smooth = (orig / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < orig / hi) & ~(wavelen > orig / lo)
        inv = torch.where(medium, smoothed, scaled).to(torch.float32).to(torch.float64)
    return inv


def rms(x, w, eps, gemma):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * (1.0 + w) if gemma else y * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward(m, ids):
    """logits (T, V) of one sequence"""
    W, H, KV, hd, eps, gemma = m["W"], m["H"], m["KV"], m["hd"], m["eps"], m["gemma"]
    T = len(ids)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    if gemma:
        x = x * torch.tensor(D ** 0.5, dtype=torch.float32).to(torch.float64)
    pos = torch.arange(T, dtype=torch.float64)
    ang = pos[:, None] * inv_freq(m)[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    win = m["spec"]["window"]
    if win:
        allowed = allowed & (i - j < win)
    for l in range(L):
        p = "model.layers.%d." % l
        a = rms(x, W[p + "input_layernorm.weight"], eps, gemma)
        q = (a @ W[p + "self_attn.q_proj.weight"].T).view(T, H, hd)
        k = (a @ W[p + "self_attn.k_proj.weight"].T).view(T, KV, hd)
        v = (a @ W[p + "self_attn.v_proj.weight"].T).view(T, KV, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)  # repeat_kv
        v = v.repeat_interleave(H // KV, dim=1)
        s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)
        s = s.masked_fill(~allowed[None], float("-inf"))
        o = torch.einsum("hts,shd->thd", torch.softmax(s, dim=-1), v).reshape(T, H * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        a = rms(x, W[p + "post_attention_layernorm.weight"], eps, gemma)
        gt = a @ W[p + "mlp.gate_proj.weight"].T
        act = torch.nn.functional.gelu(gt, approximate="tanh") if gemma else torch.nn.functional.silu(gt)
        x = x + (act * (a @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    h = rms(x, W["model.norm.weight"], eps, gemma)
    lm = W["model.embed_tokens.weight"] if m["spec"]["tied"] else W["lm_head.weight"]
    return h @ lm.T


def greedy(m, ids, n_new, eos=2):
    ids, out, margins = list(ids), [], []
    for _ in range(n_new):
        lg = forward(m, ids)[-1]
        top = torch.topk(lg, 2)
        t = int(top.indices[0])
        out.append(t)
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(t)
        if t == eos:
            break
    return out, margins

# ---- the checks -------------------------------------------------------------------------------


def run(bin_, args):
    r = subprocess.run([bin_] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("unforget %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def main():
    work, bin_ = sys.argv[1], sys.argv[2]
    vocab = tokenizer_vocab()
    V = len(vocab)
    ok = True
    text = "hello world, the cat sat on the mat caf\u00e9 again and again"
    prompts = ["the quick brown fox", "a", "once upon a time there was"]
    for fi, (name, spec) in enumerate(FAMILIES.items()):
        d = os.path.join(work, name)
        m = make_model(name, spec, V, d, 1234 + fi)
        json.dump(tokenizer_json(vocab), open(os.path.join(d, "tokenizer.json"), "w"),
                  ensure_ascii=False)
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
                  open(os.path.join(d, "tokenizer_config.json"), "w"))
        # score
        want_ids = encode(vocab, text)
        res = json.loads(run(bin_, ["score", "--model", d, "--text", text]))
        if res["tokens"] != want_ids:
            print("FAIL %s score: token ids %s, expected %s" % (name, res["tokens"], want_ids))
            ok = False
            continue
        lg = forward(m, want_ids)
        lp = torch.log_softmax(lg, dim=-1)
        ref = [float(lp[i, want_ids[i + 1]]) for i in range(len(want_ids) - 1)]
        diff = max(abs(a - b) for a, b in zip(res["logprobs"], ref))
        tot = abs(res["total"] - sum(ref))
        good = len(res["logprobs"]) == len(ref) and diff <= BOUND_LOGPROB and \
            tot <= BOUND_LOGPROB * len(ref)
        print("%s %s score: %d tokens, log-prob max abs diff %.3g (bound %g), total diff %.3g"
              % ("ok  " if good else "FAIL", name, len(ref), diff, BOUND_LOGPROB, tot))
        ok &= good
        # greedy generation, batched
        pf = os.path.join(d, "prompts.jsonl")
        with open(pf, "w") as f:
            for p in prompts:
                f.write(json.dumps({"prompt": p}) + "\n")
        lines = run(bin_, ["generate", "--model", d, "--prompts", pf, "--max-new-tokens", "10",
                           "--batch", "3"]).strip().split("\n")
        if len(lines) != len(prompts):
            print("FAIL %s generate: %d output lines for %d prompts" % (name, len(lines), len(prompts)))
            ok = False
            continue
        for p, line in zip(prompts, lines):
            got = json.loads(line)
            want, margins = greedy(m, encode(vocab, p), 10)
            same = got["prompt"] == p and got["n_prompt_tokens"] == len(encode(vocab, p))
            n_cmp = len(want)
            for k in range(min(len(want), len(got["tokens"]))):
                if got["tokens"][k] != want[k]:
                    if margins[k] < TIE_MARGIN:
                        print("note %s: near-tie at new token %d (margin %.2g)" % (name, k, margins[k]))
                        n_cmp = k
                    break
            same &= got["tokens"][:n_cmp] == want[:n_cmp] and \
                (n_cmp < len(want) or len(got["tokens"]) == len(want))
            print("%s %s generate %r: %s (reference %s) stop=%s"
                  % ("ok  " if same else "FAIL", name, p, got["tokens"], want, got["stop"]))
            ok &= same
        # --bf16: weights stored as bf16 on the device (rounded to nearest even, f32 accumulation)
        # give greedy decoding of the reference model with its weights rounded to bf16
        m16 = dict(m, W={n: t.to(torch.float32).to(torch.bfloat16).to(torch.float64)
                         for n, t in m["W"].items()})
        lines16 = run(bin_, ["generate", "--model", d, "--prompts", pf, "--max-new-tokens", "10",
                             "--batch", "3", "--bf16"]).strip().split("\n")
        for p, line in zip(prompts, lines16):
            got = json.loads(line)
            want, margins = greedy(m16, encode(vocab, p), 10)
            n_cmp = len(want)
            for k in range(min(len(want), len(got["tokens"]))):
                if got["tokens"][k] != want[k]:
                    if margins[k] < TIE_MARGIN:
                        n_cmp = k
                    break
            same = len(lines16) == len(prompts) and got["tokens"][:n_cmp] == want[:n_cmp] and \
                (n_cmp < len(want) or len(got["tokens"]) == len(want))
            print("%s %s generate --bf16 %r: %s (bf16 reference %s)"
                  % ("ok  " if same else "FAIL", name, p, got["tokens"], want))
            ok &= same
        # a stop string cuts the completion before its first occurrence and ends generation
        full = json.loads(lines[0])
        txt = full["completion"]
        k = next((k for k in range(len(txt) - 1) if all(32 < ord(ch) < 127 for ch in txt[k:k + 2])), None)
        if k is not None:
            stop = txt[k:k + 2]
            got = json.loads(run(bin_, ["generate", "--model", d, "--prompt", prompts[0],
                                        "--max-new-tokens", "10", "--stop", stop]))
            good = got["stop"] == "stop_string" and got["completion"] == txt[:txt.index(stop)] \
                and got["tokens"] == full["tokens"][:len(got["tokens"])]
            print("%s %s stop string %r: completion %r" % ("ok  " if good else "FAIL", name, stop,
                                                         got["completion"]))
            ok &= good
        # sampling is reproducible and independent of the batch size
        outs = [run(bin_, ["generate", "--model", d, "--prompts", pf, "--max-new-tokens", "8",
                           "--temperature", "0.8", "--top-p", "0.9", "--seed", "3",
                           "--batch", b]) for b in ("1", "3")]
        same = outs[0] == outs[1]
        print("%s %s sampling: batch 1 and batch 3 give the same output" % ("ok  " if same else "FAIL", name))
        ok &= same
    print("all ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
