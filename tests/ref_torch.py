#!/usr/bin/env python3
"""ref_torch.py: an independent PyTorch implementation of the tiny decoder-only transformers that
tests/test_ref_model_host --dump writes out, compared with the C reference (runtime/ref).

Written from the formulas of the Hugging Face modeling code (LlamaRMSNorm / GemmaRMSNorm,
rotate_half + apply_rotary_pos_emb, _compute_llama3_parameters, repeat_kv, eager attention with
the causal / sliding-window / padding mask, LlamaMLP / GemmaMLP, Gemma's embedding normalizer,
PEFT LoRA Linear), in float64 with autograd, NOT from the C code. Two documented conventions of
unforget differ from a literal HF run and are reproduced here on purpose: query rows at padded
positions (t >= length) output zeros from attention, and targets are given per position (no
shift inside the loss): loss = sum(mask * CE) / sum(mask).

Usage: ref_torch.py DUMP_DIR   (one sub-folder per case); exit 0 when every case is within the
bounds below, 1 otherwise. Bounds, per tensor, on max |C - torch| / max(1e-3, max |torch|):
logits, hidden and every gradient tensor 1e-6 (observed: about 6e-8, one f32 rounding);
loss and objective (double on both sides): absolute 1e-9."""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
BOUND_OUT, BOUND_GRAD, BOUND_LOSS = 1e-6, 1e-6, 1e-9


def read_cfg(d):
    cfg = {}
    for line in open(os.path.join(d, "config.txt")):
        k, v = line.split()
        try:
            cfg[k] = int(v)
        except ValueError:
            try:
                cfg[k] = float(v)
            except ValueError:
                cfg[k] = v
    return cfg


def raw(d, name, dtype):
    return np.fromfile(os.path.join(d, name), dtype=dtype)


def layout(c):
    """The canonical parameter order (model_config.h): name -> (rows, cols)."""
    D, F_, V = c["d_model"], c["d_ff"], c["vocab"]
    QD, KD = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
    out = [("model.embed_tokens.weight", V, D)]
    for l in range(c["n_layers"]):
        p = "model.layers.%d." % l
        out += [(p + "input_layernorm.weight", 1, D), (p + "self_attn.q_proj.weight", QD, D),
                (p + "self_attn.k_proj.weight", KD, D), (p + "self_attn.v_proj.weight", KD, D),
                (p + "self_attn.o_proj.weight", D, QD), (p + "post_attention_layernorm.weight", 1, D),
                (p + "mlp.gate_proj.weight", F_, D), (p + "mlp.up_proj.weight", F_, D),
                (p + "mlp.down_proj.weight", D, F_)]
    out.append(("model.norm.weight", 1, D))
    if not c["tied_embeddings"]:
        out.append(("lm_head.weight", V, D))
    return out


def lora_layout(c, r):
    """PEFT adapters on q, k, v, o, gate, up, down of every layer: lora_A (r, in), lora_B (out, r)."""
    D, F_ = c["d_model"], c["d_ff"]
    QD, KD = c["n_heads"] * c["head_dim"], c["n_kv_heads"] * c["head_dim"]
    mods = [("self_attn.q_proj", QD, D), ("self_attn.k_proj", KD, D), ("self_attn.v_proj", KD, D),
            ("self_attn.o_proj", D, QD), ("mlp.gate_proj", F_, D), ("mlp.up_proj", F_, D),
            ("mlp.down_proj", D, F_)]
    out = []
    for l in range(c["n_layers"]):
        for m, o, i in mods:
            base = "model.layers.%d.%s" % (l, m)
            out += [(base + ".lora_A.weight", r, i), (base + ".lora_B.weight", o, r)]
    return out


def split(flat, lay):
    t, off = {}, 0
    for name, r, c in lay:
        t[name] = torch.tensor(flat[off:off + r * c].astype(np.float64)).reshape(r, c).requires_grad_(True)
        off += r * c
    assert off == len(flat), "layout size %d != dumped %d" % (off, len(flat))
    return t


def inv_freq_of(c):
    # HF: inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))  (float32 buffer)
    dim, base = c["head_dim"], c["rope_theta"]
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).double() / dim))
    if c["rope_factor"] > 0:  # HF _compute_llama3_parameters
        factor, low, high = c["rope_factor"], c["rope_low_freq_factor"], c["rope_high_freq_factor"]
        old = c["rope_original_max_pos"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
        is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq_llama = torch.where(is_medium, smoothed, inv_freq_llama)
        inv_freq = inv_freq_llama
    return inv_freq.float().double()  # stored as a float32 buffer, as in HF


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rms_norm(x, w, eps, plus_one):
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return x * (1.0 + w) if plus_one else w * x


def forward(c, P, LP, tokens, lengths):
    B, T = tokens.shape
    D, H, KV, hd = c["d_model"], c["n_heads"], c["n_kv_heads"], c["head_dim"]
    eps = float(np.float32(c["norm_eps"]))
    po = c["norm_plus_one"]
    r = c["lora_rank"]
    scaling = c["lora_alpha"] / r if r else 0.0

    def linear(x, name):
        y = x @ P[name + ".weight"].T
        if LP is not None:
            a, b = LP[name + ".lora_A.weight"], LP[name + ".lora_B.weight"]
            y = y + ((x @ a.T) @ b.T) * scaling
        return y

    emb = P["model.embed_tokens.weight"]
    h = emb[tokens.long()]
    if c["embed_scale"]:
        h = h * torch.tensor(D ** 0.5, dtype=torch.float32).double()
    inv_freq = inv_freq_of(c)
    pos = torch.arange(T).double()
    freqs = torch.outer(pos, inv_freq)
    embf = torch.cat((freqs, freqs), dim=-1)
    cos, sin = embf.cos()[None, None], embf.sin()[None, None]  # (1, 1, T, hd)
    # mask (B, 1, T, T): causal, sliding window, padded keys
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = (j <= i)
    if c["sliding_window"] > 0:
        allowed = allowed & ~(j <= i - c["sliding_window"])
    allowed = allowed[None, None] & (j[None, None] < lengths.view(B, 1, 1, 1))
    qvalid = (torch.arange(T)[None, :] < lengths.view(B, 1)).double()  # (B, T)
    act = (lambda g: F.gelu(g, approximate="tanh")) if c["act"] == "gelu_tanh" else F.silu
    for l in range(c["n_layers"]):
        p = "model.layers.%d." % l
        x = rms_norm(h, P[p + "input_layernorm.weight"][0], eps, po)
        q = linear(x, p + "self_attn.q_proj").view(B, T, H, hd).transpose(1, 2)
        k = linear(x, p + "self_attn.k_proj").view(B, T, KV, hd).transpose(1, 2)
        v = linear(x, p + "self_attn.v_proj").view(B, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(B, KV, H // KV, T, hd).reshape(B, H, T, hd)  # repeat_kv
        v = v[:, :, None].expand(B, KV, H // KV, T, hd).reshape(B, H, T, hd)
        w = (q @ k.transpose(2, 3)) / math.sqrt(hd)
        w = w.masked_fill(~allowed, float("-inf"))
        w = torch.where(allowed.any(-1, keepdim=True), w, torch.zeros_like(w))  # fully masked rows
        w = F.softmax(w, dim=-1)
        o = (w @ v).transpose(1, 2) * qvalid[:, :, None, None]  # padded query rows give 0
        o = o.reshape(B, T, H * hd)
        h = h + linear(o, p + "self_attn.o_proj")
        x = rms_norm(h, P[p + "post_attention_layernorm.weight"][0], eps, po)
        m = act(linear(x, p + "mlp.gate_proj")) * linear(x, p + "mlp.up_proj")
        h = h + linear(m, p + "mlp.down_proj")
    hidden = rms_norm(h, P["model.norm.weight"][0], eps, po)
    lm = emb if c["tied_embeddings"] else P["lm_head.weight"]
    return hidden @ lm.T, hidden


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b))) / max(1e-3, float(np.max(np.abs(b)))), float(np.max(np.abs(a - b)))


def run_case(d):
    c = read_cfg(d)
    B, T, V, D = c["B"], c["T"], c["vocab"], c["d_model"]
    P = split(raw(d, "params.f32", np.float32), layout(c))
    LP = split(raw(d, "lora.f32", np.float32), lora_layout(c, c["lora_rank"])) if c["lora_rank"] else None
    tokens = torch.tensor(raw(d, "tokens.i32", np.int32).reshape(B, T).astype(np.int64))
    targets = torch.tensor(raw(d, "targets.i32", np.int32).reshape(B, T).astype(np.int64))
    mask = torch.tensor(raw(d, "mask.f32", np.float32).reshape(B, T).astype(np.float64))
    lengths = torch.tensor(raw(d, "lengths.i32", np.int32).astype(np.int64))
    logits, hidden = forward(c, P, LP, tokens, lengths)
    ce = F.cross_entropy(logits.reshape(-1, V), torch.where(mask > 0, targets, 0).reshape(-1),
                         reduction="none")
    loss = (ce * mask.reshape(-1)).sum() / mask.sum()
    obj = loss
    if c["ext"]:
        gl = torch.tensor(raw(d, "g_logits.f32", np.float32).astype(np.float64)).reshape(B, T, V)
        gh = torch.tensor(raw(d, "g_hidden.f32", np.float32).astype(np.float64)).reshape(B, T, D)
        obj = obj + (gl * logits).sum() + (gh * hidden).sum()
    obj.backward()
    c_loss, c_obj = [float(x) for x in open(os.path.join(d, "loss.txt")).read().split()]
    ok = True
    worst = []

    def judge(what, val, bound):
        nonlocal ok
        r, a = val
        worst.append((r, what))
        if not r <= bound:
            print("  FAIL %s: %s max |C - torch| = %.3g (relative %.3g > %.1g)" % (os.path.basename(d), what, a, r, bound))
            ok = False

    judge("loss", (abs(c_loss - loss.item()), abs(c_loss - loss.item())), BOUND_LOSS)
    judge("objective", (abs(c_obj - obj.item()), abs(c_obj - obj.item())), BOUND_LOSS)
    judge("logits", rel(raw(d, "logits.f32", np.float32), logits.detach().numpy().ravel()), BOUND_OUT)
    judge("hidden", rel(raw(d, "hidden.f32", np.float32), hidden.detach().numpy().ravel()), BOUND_OUT)
    grad = raw(d, "grad.f32", np.float32)
    off = 0
    for name, r_, c_ in layout(c):
        g = grad[off:off + r_ * c_]
        off += r_ * c_
        if LP is None:  # full fine-tuning: every base gradient
            judge("d " + name, rel(g, P[name].grad.numpy().ravel()), BOUND_GRAD)
    if LP is not None:
        lg = raw(d, "lora_grad.f32", np.float32)
        off = 0
        for name, r_, c_ in lora_layout(c, c["lora_rank"]):
            judge("d " + name, rel(lg[off:off + r_ * c_], LP[name].grad.numpy().ravel()), BOUND_GRAD)
            off += r_ * c_
        # the base gradients (frozen weights) are returned too when asked for
        off = 0
        for name, r_, c_ in layout(c):
            judge("d " + name, rel(grad[off:off + r_ * c_], P[name].grad.numpy().ravel()), BOUND_GRAD)
            off += r_ * c_
    r, what = max(worst)
    print("%-18s loss C %.9f torch %.9f; %d tensors compared, worst relative diff %.3g (%s) %s" %
          (os.path.basename(d), c_loss, loss.item(), len(worst), r, what, "ok" if ok else "FAILED"))
    return ok


def main():
    if len(sys.argv) != 2:
        print("usage: ref_torch.py DUMP_DIR", file=sys.stderr)
        return 2
    root = sys.argv[1]
    cases = sorted(x for x in os.listdir(root) if os.path.isdir(os.path.join(root, x)))
    if not cases:
        print("ref_torch.py: no cases under %s" % root, file=sys.stderr)
        return 1
    ok = all([run_case(os.path.join(root, x)) for x in cases])
    print("torch comparison: %d cases, %s" % (len(cases), "all within bounds" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
