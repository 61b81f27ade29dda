#!/usr/bin/env bash
# `usine import` of a model that went out through scripts/export_to_torch.py (whose state_dict
# loads into a Hugging Face-shaped GPT-2 with usine's logits: gpt_reference_e2e) and
# scripts/torch_to_safetensors.py: every weight comes back to the bit, wte's padding rows zero;
# a second import onto the same file is refused and leaves it whole. Skips (exit 77) without
# python3-torch and python3-h5py.
#   hf_import_e2e_test.sh USINE EXPORT_TOOL EXPORT_TO_TORCH TORCH_TO_SAFETENSORS
set -euo pipefail
usine=$1
tool=$2
export_to_torch=$3
torch_to_safetensors=$4
source "$(dirname "${BASH_SOURCE[0]}")/../../testing/python_with.sh"
python_or_skip torch h5py
dir=$(mktemp -d /tmp/usine_hf_import_XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/hf"
"$tool" "$dir/original.h5" f32
"$python" "$export_to_torch" "$dir/original.h5" "$dir/hf/pytorch_model.bin" --config "$dir/hf/config.json"
# A directory with only pytorch_model.bin: the error names the conversion.
if "$usine" import "$dir/hf" "$dir/imported.h5" 2> "$dir/err"; then
  echo "FAIL: import without model.safetensors succeeded"; exit 1
fi
grep -q "torch_to_safetensors.py" "$dir/err" || { cat "$dir/err"; echo "FAIL: no hint"; exit 1; }
"$python" "$torch_to_safetensors" "$dir/hf/pytorch_model.bin" "$dir/hf/model.safetensors"
"$usine" import "$dir/hf" "$dir/imported.h5" | tee "$dir/out"
grep -q "left out (not weights, or tied to wte): lm_head.weight" "$dir/out"
"$usine" inspect --verify "$dir/imported.h5" > /dev/null
"$python" - "$dir/original.h5" "$dir/imported.h5" <<'PY'
import json
import sys

import h5py
import numpy as np

with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    config = json.loads(a["metadata/model_config"][()])
    imported = json.loads(b["metadata/model_config"][()])
    for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "padded_vocab"):
        assert config[key] == imported[key], (key, config[key], imported[key])
    assert int(b["metadata/step"][()]) == 0
    names = []
    a["tensors/model"].visit(lambda n: names.append(n) if isinstance(a["tensors/model"][n], h5py.Dataset) else None)
    theirs = []
    b["tensors/model"].visit(lambda n: theirs.append(n) if isinstance(b["tensors/model"][n], h5py.Dataset) else None)
    assert sorted(names) == sorted(theirs), set(names) ^ set(theirs)
    vocab = config["vocab_size"]
    for name in names:
        x = np.asarray(a["tensors/model"][name][()])
        y = np.asarray(b["tensors/model"][name][()])
        assert x.shape == y.shape and x.dtype == y.dtype, name
        if name == "wte.weight":
            assert not y[vocab:].any(), "wte's padding rows are not zero"
            x, y = x[:vocab], y[:vocab]
        assert np.array_equal(x.view(np.uint32), y.view(np.uint32)), name
    print(f"hf_import: {len(names)} tensors back to the bit (vocab {vocab}, padded {config['padded_vocab']})")
PY
before=$(sha256sum "$dir/imported.h5")
if "$usine" import "$dir/hf" "$dir/imported.h5" 2> "$dir/err"; then
  echo "FAIL: import onto an existing file succeeded"; exit 1
fi
grep -q "exists" "$dir/err"
[[ $(sha256sum "$dir/imported.h5") == "$before" ]]
echo "PASS"
