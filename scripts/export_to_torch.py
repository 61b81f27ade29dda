#!/usr/bin/env python3
"""Converts a usine GPT checkpoint to a PyTorch state_dict with Hugging Face GPT-2 names.

    scripts/export_to_torch.py CKPT OUT.pt [--config OUT_CONFIG.json]

CKPT is a checkpoint file (runs/x/checkpoints/step-00000400.h5) or a checkpoint directory
(the checkpoint its `latest` names). OUT.pt gets `torch.save` of a dict name -> tensor that
`transformers.GPT2LMHeadModel.load_state_dict` takes: "transformer.wte.weight",
"transformer.h.0.attn.c_attn.weight", ..., "lm_head.weight" (tied to wte). Conversions:
- usine's linear weights are [out, in] (torch.nn.Linear's); GPT-2's Conv1D weights are
  [in, out]: c_attn, c_proj, c_fc and mlp.c_proj are transposed;
- wte has usine's padded vocabulary (a multiple of 128); the padding rows are dropped;
- the optimizer state ("optim/...") is left out.
OUT_CONFIG.json (default: OUT.pt with .json) is the model's shape in Hugging Face's GPT2Config
keys (vocab_size, n_positions, n_embd, n_layer, n_head), from the checkpoint's model_config.

Needs python3-h5py and python3-torch (Debian's). Errors name the checkpoint and the tensor.
"""
import argparse
import json
import os
import sys

try:
    import h5py
    import numpy as np
    import torch
except ImportError as e:
    print(f"export_to_torch: {e} (python3-h5py and python3-torch are needed)", file=sys.stderr)
    sys.exit(2)

# usine's Linear layers whose weights Hugging Face's GPT-2 stores as Conv1D ([in, out]).
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def checkpoint_path(path):
    if not os.path.isdir(path):
        return path
    with open(os.path.join(path, "latest")) as f:
        return os.path.join(path, f.read().strip())


def read_metadata_json(f, name, path):
    if f"metadata/{name}" not in f:
        raise SystemExit(f"export_to_torch: {path} has no metadata '{name}' (not written by usine train?)")
    value = f[f"metadata/{name}"][()]
    return json.loads(value.decode() if isinstance(value, bytes) else value)


def export(path):
    with h5py.File(path, "r") as f:
        if f.attrs.get("usine_format") not in (b"usine-checkpoint", "usine-checkpoint"):
            raise SystemExit(f"export_to_torch: {path} is not a usine checkpoint")
        config = read_metadata_json(f, "model_config", path)
        vocab = config["vocab_size"]
        state = {}
        model = f.get("tensors/model")
        if model is None:
            raise SystemExit(f"export_to_torch: {path} holds no model/ tensors")
        names = []
        model.visit(lambda n: names.append(n) if isinstance(model[n], h5py.Dataset) else None)
        for name in sorted(names):
            array = np.asarray(model[name][()])
            if name == "wte.weight":
                if array.shape[0] < vocab:
                    raise SystemExit(f"export_to_torch: {path}: wte has {array.shape[0]} rows, fewer than vocab {vocab}")
                array = array[:vocab]
            elif name.endswith(CONV1D):
                array = array.T
            state[f"transformer.{name}"] = torch.from_numpy(np.ascontiguousarray(array))
    for needed in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight"):
        if needed not in state:
            raise SystemExit(f"export_to_torch: {path} lacks the tensor {needed[len('transformer.'):]}")
    state["lm_head.weight"] = state["transformer.wte.weight"]
    hf_config = {
        "model_type": "gpt2",
        "vocab_size": vocab,
        "n_positions": config["block_size"],
        "n_ctx": config["block_size"],
        "n_embd": config["n_embd"],
        "n_layer": config["n_layer"],
        "n_head": config["n_head"],
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": True,
    }
    return state, hf_config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint file, or a checkpoint directory (its latest)")
    parser.add_argument("out", help="where the state_dict goes (torch.save)")
    parser.add_argument("--config", help="where the GPT2Config-style JSON goes (default: OUT with .json)")
    args = parser.parse_args()
    path = checkpoint_path(args.checkpoint)
    state, hf_config = export(path)
    torch.save(state, args.out)
    config_path = args.config or os.path.splitext(args.out)[0] + ".json"
    with open(config_path, "w") as f:
        json.dump(hf_config, f, indent=2)
    print(f"export_to_torch: {path} -> {args.out} ({len(state)} tensors), {config_path}")


if __name__ == "__main__":
    main()
