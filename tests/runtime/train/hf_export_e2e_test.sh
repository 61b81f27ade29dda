#!/usr/bin/env bash
# `usine export` against scripts/export_to_torch.py (whose state_dict loads into a Hugging
# Face-shaped GPT-2 with usine's logits: gpt_reference_e2e): model.safetensors holds that
# state_dict's tensors to the bit (bf16: torch's rounding of them), lm_head.weight left out as
# save_pretrained leaves a tied one out; the header is the format's (8-byte aligned, data back
# to back, metadata format "pt"); config.json has the same shape. Skips (exit 77) without
# python3-torch and python3-h5py.
#   hf_export_e2e_test.sh USINE EXPORT_TOOL EXPORT_TO_TORCH
set -euo pipefail
usine=$1
tool=$2
export_to_torch=$3
source "$(dirname "${BASH_SOURCE[0]}")/../../testing/python_with.sh"
python_or_skip torch h5py
dir=$(mktemp -d /tmp/usine_hf_export_XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$tool" "$dir/original.h5" f32
"$python" "$export_to_torch" "$dir/original.h5" "$dir/reference.pt" --config "$dir/reference.json"
"$usine" export "$dir/original.h5" "$dir/f32" | tee "$dir/out"
grep -q "no tokenizer files" "$dir/out"
"$usine" export "$dir/original.h5" "$dir/bf16" --dtype bf16 > /dev/null
"$python" - "$dir" <<'PY'
import json
import struct
import sys

import torch

DTYPES = {"F32": (torch.float32, 4), "BF16": (torch.bfloat16, 2)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, f"header of {n} bytes is not 8-byte aligned"
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors, spans = {}, []
    for name, e in header.items():
        dtype, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        spans.append((begin, end))
        count = 1
        for d in e["shape"]:
            count *= d
        assert end - begin == count * size, name
        tensors[name] = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype).reshape(e["shape"])
    spans.sort()
    assert spans[0][0] == 0 and spans[-1][1] == len(body), "data do not fill the file"
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "gaps between tensors"
    return metadata, tensors


out = sys.argv[1]
reference = torch.load(f"{out}/reference.pt")
assert "lm_head.weight" in reference
expected = {k: v for k, v in reference.items() if k != "lm_head.weight"}
for dtype, cast in (("f32", torch.float32), ("bf16", torch.bfloat16)):
    metadata, tensors = read_safetensors(f"{out}/{dtype}/model.safetensors")
    assert metadata == {"format": "pt"}, metadata
    assert sorted(tensors) == sorted(expected), set(tensors) ^ set(expected)
    for name, want in expected.items():
        got = tensors[name]
        want = want.to(cast)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        view = torch.int32 if cast == torch.float32 else torch.int16
        assert torch.equal(got.view(view), want.contiguous().view(view)), f"{dtype} {name}"
    config = json.load(open(f"{out}/{dtype}/config.json"))
    shape = json.load(open(f"{out}/reference.json"))
    for key, value in shape.items():
        assert config[key] == value, (key, config[key], value)
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert config["torch_dtype"] == {"f32": "float32", "bf16": "bfloat16"}[dtype]
print(f"hf_export: {len(expected)} tensors equal export_to_torch.py's, in f32 and in bf16")
PY
# A second export onto the same directory is refused and leaves it whole.
before=$(cat "$dir/f32"/* | sha256sum)
if "$usine" export "$dir/original.h5" "$dir/f32" 2> "$dir/err"; then
  echo "FAIL: export onto an existing directory succeeded"; exit 1
fi
grep -q "exists; name a new directory" "$dir/err"
[[ $(cat "$dir/f32"/* | sha256sum) == "$before" ]]
echo "PASS"
