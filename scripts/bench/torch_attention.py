#!/usr/bin/env python3
"""The peer of `usine bench attention`: causal attention's forward and backward in PyTorch.

q, k and v are views of one [B, T, 3C] tensor, as c_attn writes them in a GPT-2 block (and as
torch_gpt_train.py's model takes them), and the output's gradient is drawn once. On CUDA each
of scaled_dot_product_attention's backends that takes the shape runs on its own (flash,
cudnn, efficient; PyTorch's choice is among them), in bf16 (--dtype bf16) or f32; on the CPU
scaled_dot_product_attention where there is one (PyTorch 2.0 and later), else the products,
mask and softmax written out, with --threads threads. The times are medians of --reps calls
after --warmup, each between two CUDA events (on the CPU, the wall clock): the forward call
(recording for autograd, as in training), then the backward call into the [B, T, 3C] gradient.

Prints one JSON object: torch (version), threads, and kernels, a list of {name, forward_ms,
backward_ms} or {name, error} for a backend that refused. Usage: torch_attention.py --batch 16
--seq 1024 --heads 12 --head-dim 64 --device cuda --dtype bf16
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F


def written_out(q, k, v):
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    mask = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1) @ v


def kernels(device):
    """(name, function) of each attention to time."""
    if not hasattr(F, "scaled_dot_product_attention"):
        return [("written out", written_out)]  # No scaled_dot_product_attention before 2.0.

    def sdpa(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    if device != "cuda":
        return [("scaled_dot_product_attention", sdpa)]
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def on(backend):
        def run(q, k, v):
            with sdpa_kernel(backend):
                return sdpa(q, k, v)

        return run

    backends = [("flash", "FLASH_ATTENTION"), ("cudnn", "CUDNN_ATTENTION"),
                ("efficient", "EFFICIENT_ATTENTION")]
    return [(f"sdpa {name}", on(getattr(SDPBackend, member)))
            for name, member in backends if hasattr(SDPBackend, member)]


class Clock:
    """Milliseconds of one call: CUDA events on a GPU, the wall clock on the CPU."""

    def __init__(self, device):
        self.cuda = device == "cuda"

    def time(self, call):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        begin = time.perf_counter()
        call()
        return 1e3 * (time.perf_counter() - begin)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--seq", type=int, required=True)
    parser.add_argument("--heads", type=int, required=True)
    parser.add_argument("--head-dim", type=int, required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    b, t, h, d = args.batch, args.seq, args.heads, args.head_dim
    c = h * d
    generator = torch.Generator(device="cpu").manual_seed(7)
    qkv_init = torch.randn(b, t, 3 * c, generator=generator).to(args.device, dtype)
    dout = torch.randn(b, h, t, d, generator=generator).to(args.device, dtype)
    clock = Clock(args.device)
    results = []
    for name, attend in kernels(args.device):
        qkv = qkv_init.clone().requires_grad_(True)

        def forward():
            q, k, v = (z.view(b, t, h, d).transpose(1, 2) for z in qkv.split(c, dim=2))
            return attend(q, k, v)

        try:
            forwards, backwards = [], []
            for i in range(args.warmup + args.reps):
                outs = []
                forward_ms = clock.time(lambda: outs.append(forward()))
                out = outs.pop()
                qkv.grad = None
                backward_ms = clock.time(lambda: out.backward(dout))
                if i >= args.warmup:
                    forwards.append(forward_ms)
                    backwards.append(backward_ms)
            results.append({"name": name, "forward_ms": statistics.median(forwards),
                            "backward_ms": statistics.median(backwards)})
        except RuntimeError as error:  # A backend that does not take this shape or machine.
            results.append({"name": name, "error": str(error).splitlines()[0][:200]})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "kernels": results}))


if __name__ == "__main__":
    main()
