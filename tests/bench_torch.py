#!/usr/bin/python3
"""bench_torch.py: the PyTorch peer of `unforget bench` (same model, same accounting).

A LLaMA-style decoder (RMSNorm, RoPE rotate_half, causal attention, SwiGLU, untied head), fp32,
AdamW (weight decay 0.01 on matrices), grad-norm clipping 1.0, random tokens, on the CPU with
--threads threads, or with --device cuda on a GPU (NVIDIA's CUDA or AMD's ROCm build of torch;
fp32 matmuls without TF32, as unforget's fp32 GEMMs; the GPU's peak memory is printed too). Prints tokens/s and GFLOP/s with llm.c's accounting (6N + 6*L*C*T per token),
CPU time per step (user + system of this process, all threads), the peak resident set size
(ru_maxrss: everything the process holds, interpreter and libraries included) and a final
machine-readable line `tokens_per_s: X`. Written for torch 1.13 (Debian's
/usr/bin/python3): no scaled_dot_product_attention there, attention is explicit.
"""
import argparse
import math
import os
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "d256": dict(d=256, layers=4, heads=4, vocab=8192, seq=256, batch=8),
    "d512": dict(d=512, layers=8, heads=8, vocab=8192, seq=256, batch=8),
    "tiny": dict(d=64, layers=2, heads=4, vocab=512, seq=64, batch=4),
}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.h, self.hd = heads, d // heads
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.gate = nn.Linear(d, ff, bias=False)
        self.up = nn.Linear(d, ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        a = self.n1(x)
        q = self.q(a).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k(a).view(B, T, self.h, self.hd).transpose(1, 2)
        v = self.v(a).view(B, T, self.h, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.o(o)
        m = self.n2(x)
        return x + self.down(F.silu(self.gate(m)) * self.up(m))


class Model(nn.Module):
    def __init__(self, vocab, d, layers, heads, ff, seq):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads, ff) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        hd = d // heads
        inv = 10000.0 ** (-torch.arange(0, hd, 2).float() / hd)
        f = torch.outer(torch.arange(seq).float(), inv)
        emb = torch.cat((f, f), -1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tok):
        x = self.emb(tok)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        return self.head(self.norm(x))


def blas_libraries():
    """The BLAS shared objects mapped into this process (Debian's torch calls libblas.so.3, which
    is netlib's reference BLAS unless e.g. libopenblas0-pthread provides the alternative)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if any(k in path for k in ("blas", "mkl_", "blis")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return ", ".join(sorted(libs)) or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="d256", choices=sorted(CONFIGS))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="0 = torch default")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] (also ROCm)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    gpu = dev.type == "cuda"
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    c = CONFIGS[args.config]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, L, H, V, T, B = c["d"], c["layers"], c["heads"], c["vocab"], c["seq"], c["batch"]
    ff = (8 * d // 3 + 15) // 16 * 16
    model = Model(V, d, L, H, ff, T).to(dev)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and not n.startswith("emb")]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and not n.startswith("emb"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": other, "weight_decay": 0.0}], lr=3e-4)
    n_params = sum(p.numel() for p in model.parameters())
    matmul = L * (4 * d * d + 3 * d * ff) + V * d
    fpt = 6 * matmul + 6 * L * d * T
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads | D={d} L={L} H={H} "
          f"F={ff} vocab={V} | batch {B} x seq {T} | {n_params / 1e6:.2f}M params")
    print(f"torch BLAS: {blas_libraries()}")
    if gpu:
        print(f"torch device: {torch.cuda.get_device_name(dev)}")

    def sync():
        if gpu:
            torch.cuda.synchronize(dev)

    g = torch.Generator().manual_seed(42)
    total, best, cpu = 0.0, 1e30, 0.0

    def cpu_now():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    for s in range(args.warmup + args.steps):
        seqs = torch.randint(0, V, (B, T + 1), generator=g).to(dev)
        sync()
        t0, c0 = time.perf_counter(), cpu_now()
        opt.zero_grad(set_to_none=True)
        logits = model(seqs[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), seqs[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lv = loss.item()
        sync()
        dt, dc = time.perf_counter() - t0, cpu_now() - c0
        if s >= args.warmup:
            total += dt
            cpu += dc
            best = min(best, dt)
    tps = B * T * args.steps / total
    print(f"steps: {args.steps} timed, {1e3 * total / args.steps:.1f} ms/step mean, "
          f"{1e3 * best:.1f} ms best, final loss {lv:.4f}")
    print(f"throughput: {tps:.1f} tokens/s, {tps * fpt / 1e9:.2f} GFLOP/s ({fpt / 1e6:.1f} MFLOP/token)")
    print(f"cpu: {1e3 * cpu / args.steps:.1f} ms CPU time per step (user + system, all threads), "
          f"{B * T * args.steps / cpu:.1f} tokens per CPU-second")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(f"memory: peak RSS {rss:.1f} MiB")
    if gpu:
        print(f"gpu memory: peak allocated {torch.cuda.max_memory_allocated(dev) / 2**20:.1f} MiB")
    print(f"tokens_per_s: {tps:.1f}")


if __name__ == "__main__":
    main()
