#!/usr/bin/env python3
"""The peer of `usine bench train`: the same GPT-2 and training step in PyTorch.

GPT-2 (pre-norm blocks, tanh GELU, tied token embedding, learned positions, vocabulary padded
to a multiple of 128 with the padding never predicted), random token ids, AdamW (betas 0.9 and
0.95, weight decay 0.1 on matrices only) and global-norm clipping at 1.0: one step is forward,
backward, clip, update, as usine's. On the CPU it computes in f32 with `--threads` threads; on
CUDA in bf16 autocast with f32 master weights, scaled_dot_product_attention, fused AdamW and,
with --compile, torch.compile -- the fastest stock PyTorch recipe.

Prints one JSON object: tokens_per_s (median step), step_ms (median), loss (last), and what
ran. Usage: torch_gpt_train.py --layers 12 --heads 12 --embd 768 --vocab 50257 --block 1024
--batch 16 --seq 1024 --steps 20 --warmup 5 --device cuda --compile
"""
import argparse
import contextlib
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v):
    """Causal attention: PyTorch's fused kernel where there is one (2.0 and later)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v


class Block(nn.Module):
    def __init__(self, embd, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(embd)
        self.c_attn = nn.Linear(embd, 3 * embd)
        self.c_proj = nn.Linear(embd, embd)
        self.ln_2 = nn.LayerNorm(embd)
        self.c_fc = nn.Linear(embd, 4 * embd)
        self.mlp_proj = nn.Linear(4 * embd, embd)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = attention(q, k, v)
        x = x + self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, layers, heads, embd, vocab, block):
        super().__init__()
        self.vocab = vocab
        padded = (vocab + 127) // 128 * 128
        self.wte = nn.Embedding(padded, embd)
        self.wpe = nn.Embedding(block, embd)
        self.h = nn.ModuleList(Block(embd, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(embd)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight[: self.vocab].t()  # padding never predicted
        return F.cross_entropy(logits.float().view(-1, self.vocab), targets.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in [("layers", 12), ("heads", 12), ("embd", 768), ("vocab", 50257),
                          ("block", 1024), ("batch", 4), ("seq", 256), ("steps", 10),
                          ("warmup", 3), ("threads", 0), ("seed", 1337)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = Gpt(args.layers, args.heads, args.embd, args.vocab, args.block).to(args.device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-4, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if cuda else {"foreach": True}))
    step_model = torch.compile(model) if args.compile else model
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq + 1), device=args.device)
    inputs, targets = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext():
            loss = step_model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    times, loss = [], None
    for i in range(args.warmup + args.steps):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        if cuda:
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    step_s = statistics.median(times)
    print(json.dumps({
        "tokens_per_s": args.batch * args.seq / step_s,
        "step_ms": step_s * 1e3,
        "loss": loss.item(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "recipe": ("bf16 autocast, SDPA, fused AdamW" + (", torch.compile" if args.compile else "")
                   if cuda else "f32, foreach AdamW" +
                   (", torch.compile" if args.compile else "")),
    }))


if __name__ == "__main__":
    main()
