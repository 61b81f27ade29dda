#!/usr/bin/env bash
# `usine` on the emulated CUDA path (usine_emulated; tests/testing/cuda_emulator/README.md), so
# that a machine without a GPU runs what a GPU session runs first, at a tiny size:
#   - `usine bench train --device cuda --profile` at two rungs of scripts/gpu-bench.sh (bf16
#     products with flash attention, TF32 ones with the unfused attention), without the
#     PyTorch peer (about 30 s each: the emulator's cost grows with the threads launched), with
#     the floors' rates measured at small sizes (--product-size, --copy-mib);
#   - `usine bench attention --device cuda` at the bf16 flash rung, without the peer;
#   - `usine train` of a 2-layer GPT on "cuda" with bf16 products, flash attention and ZeRO,
#     then resumed: its losses are finite and fall, and the resumed run picks up the checkpoint.
#   usine_emulated_cuda_test.sh USINE_EMULATED TOKENIZER_DIR SOURCE_DIR MPIEXEC
set -u
source "$3/tests/testing/cli_test_lib.sh"
cli_test_setup usine_emulated_cuda "$@"

for rung in "bf16 flash" "tf32 unfused"; do
  read -r precision attention <<<"$rung"
  "$usine" bench train --device cuda --model tiny --batch 2 --seq 32 --steps 1 --warmup 1 \
    --matmul-precision "$precision" --attention "$attention" --peer '' --profile \
    --product-size 64 --copy-mib 1 >"$dir/bench.out" 2>&1
  if [[ $? -ne 0 ]]; then
    failed "bench train ($rung): $(tail -5 "$dir/bench.out")"
    continue
  fi
  grep -q "usine  *[0-9]* tokens/s" "$dir/bench.out" ||
    failed "bench train ($rung) gives no tokens/s: $(cat "$dir/bench.out")"
  # The floors, at the small sizes given, and each op against its own.
  grep -q "floors: products .*Matmul $precision 64^3" "$dir/bench.out" &&
    grep -qE "attn.core forward .* ms +[0-9.]+x +(products|memory)$" "$dir/bench.out" ||
    failed "bench train ($rung) gives no floors: $(cat "$dir/bench.out")"
  grep -qi "flash" "$dir/bench.out" || [[ $attention != flash ]] ||
    failed "bench train ($rung): the profile names no flash attention kernel: $(cat "$dir/bench.out")"
done

# The attention core's bench at the bf16 flash rung, without the PyTorch peer.
"$usine" bench attention --device cuda --matmul-precision bf16 --attention flash --batch 1 \
  --seq 40 --heads 2 --embd 64 --reps 1 --warmup 1 --peer '' >"$dir/attention.out" 2>&1 ||
  failed "bench attention: $(tail -5 "$dir/attention.out")"
grep -qE "usine attn.core +forward +[0-9.]+ ms .* TFLOP/s +backward" "$dir/attention.out" ||
  failed "bench attention times no core: $(cat "$dir/attention.out")"

prep_docs "$dir/data" 0.1
write_config() {  # write_config MAX_STEPS
  {
    tiny_model_toml
    cat <<TOML
device = "cuda"
matmul_precision = "bf16"
attention = "flash"
[parallel]
zero = true
[run]
dir = "$dir/run"
[data]
dir = "$dir/data"
seq_len = 32
batch_size = 4
micro_batch_size = 2
[optim]
lr = 3e-3
warmup_steps = 2
[train]
max_steps = $1
eval_every = 3
eval_batches = 1
[checkpoint]
every_steps = 3
TOML
  } >"$dir/run.toml"
}
write_config 3
"$usine" train --config "$dir/run.toml" >"$dir/train.log" 2>&1 ||
  failed "usine train on cuda: $(tail -5 "$dir/train.log")"
write_config 6
"$usine" train --config "$dir/run.toml" >"$dir/resume.log" 2>&1 ||
  failed "usine train on cuda, resumed: $(tail -5 "$dir/resume.log")"
python3 - "$dir/run/metrics.jsonl" <<'PY' || failed "the losses of the run on cuda"
import json, math, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l and '"eval"' not in l]
losses = [s["loss"] for s in steps]
assert len(losses) == 6, "%d training steps logged, want 6 (3, then 3 more resumed)" % len(losses)
assert all(math.isfinite(x) for x in losses), losses
assert losses[-1] < losses[0], losses
PY
exit $fail
