#!/usr/bin/env python3
"""The tiny GPT of gpt_reference_export.cc rebuilt in PyTorch (CPU), as a check of usine's
forward and backward: same weights, same batch; the loss and every parameter gradient must
match usine's.

    gpt_reference.py EXPORT.h5

The model is GPT-2 (nanoGPT's layout): token + position embeddings, pre-norm blocks
(x + attn(ln_1(x)), x + mlp(ln_2(x))), LayerNorm eps 1e-5, tanh GELU, causal attention with
q, k, v side by side in c_attn, a final LayerNorm and logits x wte^T over the padded vocabulary,
of which only the first vocab_size columns enter the softmax cross-entropy (mean over tokens).
Linear weights are [out, in], as torch.nn.Linear's.

Tolerances (relative to the largest magnitude of each tensor, and for the loss to the loss):
f64 1e-9, f32 1e-4. Exit 0 when everything matches, 1 otherwise, 77 when torch or h5py is
missing.
"""
import json
import math
import sys

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: {e} (python3-torch and python3-h5py are needed)")
    sys.exit(77)


def forward(params, tokens, config):
    """The mean cross-entropy of predicting tokens[:, 1:] from tokens[:, :-1]."""
    vocab, n_head = config["vocab_size"], config["n_head"]
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    batch, seq = inputs.shape
    x = params["wte.weight"][inputs] + params["wpe.weight"][:seq]
    channels = x.shape[-1]
    head_dim = channels // n_head

    def layer_norm(x, prefix):
        return F.layer_norm(x, (channels,), params[prefix + ".weight"], params[prefix + ".bias"], 1e-5)

    def linear(x, prefix):
        return F.linear(x, params[prefix + ".weight"], params[prefix + ".bias"])

    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    for i in range(config["n_layer"]):
        h = f"h.{i}"
        qkv = linear(layer_norm(x, h + ".ln_1"), h + ".attn.c_attn")
        q, k, v = (t.view(batch, seq, n_head, head_dim).transpose(1, 2) for t in qkv.split(channels, dim=-1))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
        scores = scores.masked_fill(~causal, float("-inf"))
        attn = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, seq, channels)
        x = x + linear(attn, h + ".attn.c_proj")
        m = linear(layer_norm(x, h + ".ln_2"), h + ".mlp.c_fc")
        x = x + linear(F.gelu(m, approximate="tanh"), h + ".mlp.c_proj")
    x = layer_norm(x, "ln_f")
    logits = x @ params["wte.weight"].T  # [B, T, padded vocabulary]
    return F.cross_entropy(logits[..., :vocab].reshape(-1, vocab), targets.reshape(-1))


def main(path):
    f = h5py.File(path, "r")
    config = json.loads(f["metadata/model_config"][()])
    model = f["tensors/model"]
    dtype = model["wte.weight"].dtype
    tol = 1e-9 if dtype == np.float64 else 1e-4
    # The reference computes in the export's dtype, so f32 rounding is compared with f32's.
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    names = []
    model.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    params = {n: torch.tensor(np.asarray(model[n]), dtype=torch_dtype, requires_grad=True) for n in names}
    tokens = torch.tensor(np.asarray(f["tensors/batch/tokens"]), dtype=torch.long)
    loss = forward(params, tokens, config)
    loss.backward()

    usine_loss = float(f["metadata/loss"][()])
    failures = []
    loss_error = abs(usine_loss - loss.item()) / abs(loss.item())
    print(f"{dtype} loss: usine {usine_loss:.17g} torch {loss.item():.17g} relative error {loss_error:.3g}")
    if not loss_error <= tol:
        failures.append("loss")
    worst = 0.0
    for n in sorted(names):
        want = params[n].grad.numpy().astype(np.float64)
        got = np.asarray(f["tensors/grad/" + n], dtype=np.float64)
        scale = max(np.abs(want).max(), 1e-30)
        error = np.abs(got - want).max() / scale
        worst = max(worst, error)
        if not error <= tol or got.shape != want.shape:
            failures.append(n)
            print(f"  MISMATCH grad {n}: relative error {error:.3g} (tolerance {tol:g})")
    print(f"{len(names)} gradients, largest relative error {worst:.3g} (tolerance {tol:g})")
    if failures:
        print("FAILED:", ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
