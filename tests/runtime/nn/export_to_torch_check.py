#!/usr/bin/env python3
"""The check of scripts/export_to_torch.py: the exported state_dict, loaded into a GPT-2 built
the way Hugging Face's GPT2LMHeadModel is (Conv1D layers, weights [in, out], its module
names), gives usine's logits on the same inputs.

    export_to_torch_check.py EXPORT_SCRIPT EXPORT.h5

EXPORT.h5 is gpt_reference_export's file (f32): the model, the batch and Gpt::Logits of its
inputs. Exit 0 when the logits agree within 1e-4 (relative to the largest), 1 otherwise,
77 without torch or h5py.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: {e} (python3-torch and python3-h5py are needed)")
    sys.exit(77)


class Conv1D(nn.Module):  # Hugging Face's: y = x @ weight + bias, weight [in, out].
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Block(nn.Module):
    def __init__(self, c, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.attn = nn.Module()
        self.attn.c_attn = Conv1D(c, 3 * c)
        self.attn.c_proj = Conv1D(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.c_fc = Conv1D(c, 4 * c)
        self.mlp.c_proj = Conv1D(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(c, dim=-1)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.n_head)
        scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
        y = scores.softmax(dim=-1) @ v
        x = x + self.attn.c_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2LMHeadModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        c = config["n_embd"]
        self.transformer = nn.Module()
        self.transformer.wte = nn.Embedding(config["vocab_size"], c)
        self.transformer.wpe = nn.Embedding(config["n_positions"], c)
        self.transformer.h = nn.ModuleList(Block(c, config["n_head"]) for _ in range(config["n_layer"]))
        self.transformer.ln_f = nn.LayerNorm(c, eps=1e-5)
        self.lm_head = nn.Linear(c, config["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # Tied.

    def forward(self, ids):
        x = self.transformer.wte(ids) + self.transformer.wpe(torch.arange(ids.shape[1]))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def main():
    script, path = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "model.pt")
        subprocess.run([sys.executable, script, path, out], check=True)
        state = torch.load(out)
        with open(os.path.join(tmp, "model.json")) as f:
            config = json.load(f)
    model = GPT2LMHeadModel(config)
    model.load_state_dict(state, strict=True)  # Every name and shape as Hugging Face's.
    with h5py.File(path, "r") as f:
        tokens = torch.from_numpy(np.asarray(f["tensors/batch/tokens"][()]).astype(np.int64))
        want = torch.from_numpy(np.asarray(f["tensors/logits"][()]))
    with torch.no_grad():
        got = model(tokens[:, :-1])
    scale = want.abs().max().item()
    error = (got - want).abs().max().item()
    print(f"export_to_torch: logits {tuple(got.shape)}, max |torch - usine| = {error:.3g} "
          f"(largest logit {scale:.3g})")
    if got.shape != want.shape or not error <= 1e-4 * max(scale, 1.0):
        print("FAIL: the exported model's logits differ from usine's")
        sys.exit(1)


if __name__ == "__main__":
    main()
