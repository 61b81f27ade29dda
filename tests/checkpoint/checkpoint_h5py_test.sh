#!/usr/bin/env bash
# A checkpoint read by h5py (python3-h5py): every tensor's values, bf16 and f16 included, and
# the metadata. Skips (exit 77) with a message when no python3 on the machine has h5py.
#   checkpoint_h5py_test.sh TOOL
set -euo pipefail
tool=$1
source "$(dirname "${BASH_SOURCE[0]}")/../testing/python_with.sh"
python_or_skip h5py
dir=$(mktemp -d /tmp/usine_ckpt_h5py_XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$tool" save "$dir" 3 1
"$python" - "$dir/step-00000003.h5" <<'PY'
import sys
import h5py
import numpy as np

f = h5py.File(sys.argv[1], "r")
assert f.attrs["usine_format"] == b"usine-checkpoint", f.attrs["usine_format"]
assert f.attrs["format_version"] == 2
# checkpoint_test_util.h's values: tensor number id, element index i (row-major, global).
def want(dtype, id_, i):
    if dtype == "f32": return id_ * 1000.0 + i * 0.25
    if dtype == "bf16": return (i % 200) - 100.0 + id_
    if dtype == "f16": return i * 0.5 + id_
    if dtype == "i64": return i * 3 - 7 + id_
    return (i * 7 + id_) % 60000
tensors = [("w_col", "f32", (8, 12)), ("w_row", "bf16", (12, 6)), ("emb", "u16", (4, 3, 4)),
           ("blocks/0/ln", "f16", (7,)), ("bias", "i64", (5,)), ("scale", "f32", ()),
           ("empty", "i32", (0, 4)), ("qkv", "f32", (12, 5)), ("qkv_cols", "bf16", (3, 24))]
for id_, (name, dtype, shape) in enumerate(tensors):
    d = f["tensors/" + name]
    assert d.shape == shape, (name, d.shape)
    assert d.attrs["dtype"].decode() == dtype
    values = np.asarray(d[()], dtype=np.float64).reshape(-1)
    expected = np.array([want(dtype, id_, i) for i in range(values.size)], dtype=np.float64)
    assert np.array_equal(values, expected), (name, values[:8], expected[:8])
big = f["tensors/big"][()]
i = np.arange(big.size, dtype=np.int64)
assert np.array_equal(big.reshape(-1), ((i % 1000003) + 3).astype(np.float32)), "big"
assert f["metadata/step"][()] == 3
assert f["metadata/model_config"][()] == b'{"layers": 2, "d_model": 12}'
assert f["metadata/rng/rank0"][()].tobytes() == b"\x00\x01\xff rng 0"
print("h5py read", len(tensors) + 1, "tensors, dtypes", sorted({str(f["tensors/" + n].dtype) for n, _, _ in tensors}))
PY
