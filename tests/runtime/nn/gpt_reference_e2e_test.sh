#!/usr/bin/env bash
# usine's tiny GPT against the same model in PyTorch (gpt_reference.py), in f64 and f32: the
# loss and every parameter gradient; and scripts/export_to_torch.py's state_dict loaded into
# a Hugging Face-shaped GPT-2 gives usine's logits (export_to_torch_check.py). Skips (exit 77)
# without python3-torch and python3-h5py.
#   gpt_reference_e2e_test.sh EXPORT_TOOL REFERENCE_SCRIPT EXPORT_CHECK EXPORT_TO_TORCH
set -euo pipefail
tool=$1
script=$2
export_check=$3
export_to_torch=$4
source "$(dirname "${BASH_SOURCE[0]}")/../../testing/python_with.sh"
python_or_skip torch h5py
dir=$(mktemp -d /tmp/usine_gpt_reference_XXXXXX)
trap 'rm -rf "$dir"' EXIT
for dtype in f64 f32; do
  "$tool" "$dir/$dtype.h5" "$dtype"
  "$python" "$script" "$dir/$dtype.h5"
done
"$python" "$export_check" "$export_to_torch" "$dir/f32.h5"
