#!/usr/bin/env python3
"""Converts a PyTorch state_dict file to a safetensors file, the format `usine import` reads.

    scripts/torch_to_safetensors.py IN.bin OUT.safetensors

IN is what torch.save wrote of a dict name -> tensor: a Hugging Face pytorch_model.bin, or the
.pt of scripts/export_to_torch.py. Each tensor is written whole (contiguous, little-endian), tied
ones (GPT-2's lm_head.weight and wte) once per name, as the format has it: an 8-byte length, the
JSON header (padded with spaces to a multiple of 8 bytes), then the data. A GPT-2 directory for
`usine import` then holds OUT as model.safetensors beside the model's config.json.

Needs python3-torch (Debian's). Errors name the file and the entry.
"""
import argparse
import json
import struct
import sys

try:
    import torch
except ImportError as e:
    print(f"torch_to_safetensors: {e} (python3-torch is needed)", file=sys.stderr)
    sys.exit(2)

DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def load_state_dict(path):
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch before 1.13 has no weights_only
        state = torch.load(path, map_location="cpu")
    except Exception as e:  # a file torch cannot read: say which
        raise SystemExit(f"torch_to_safetensors: {path}: not a torch.save file ({e})")
    if not isinstance(state, dict):
        raise SystemExit(f"torch_to_safetensors: {path} holds a {type(state).__name__}, not a state_dict")
    return state


def tensor_bytes(name, tensor, path):
    if not isinstance(tensor, torch.Tensor):
        raise SystemExit(f"torch_to_safetensors: {path}: '{name}' is a {type(tensor).__name__}, not a tensor")
    if tensor.dtype not in DTYPES:
        raise SystemExit(f"torch_to_safetensors: {path}: '{name}' has dtype {tensor.dtype}, which safetensors lacks")
    t = tensor.detach().contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
        t = t.view(torch.int16)
    return DTYPES[tensor.dtype], list(tensor.shape), t.numpy().tobytes()


def convert(source, out):
    state = load_state_dict(source)
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        dtype, shape, data = tensor_bytes(name, state[name], source)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    return len(header), offset


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a torch.save'd state_dict (pytorch_model.bin, .pt)")
    parser.add_argument("out", help="the safetensors file to write")
    args = parser.parse_args()
    count, size = convert(args.source, args.out)
    print(f"torch_to_safetensors: {args.source} -> {args.out} ({count} tensors, {size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
