#!/usr/bin/env bash
# `usine eval` and `usine sample` on a checkpoint of `usine train` (a 2-layer GPT trained 20
# steps at np 2 on the repository's docs, tokenised with the test tokenizer):
#   - eval at np 2 gives the validation loss the Trainer logged at step 20 on the same batches,
#     and alone (DP 1, twice the batches) the same loss; --json is one JSON object; with
#     --matmul-precision bf16 a loss within 1% of it, not the same;
#   - sample at temperature 0 is the same text twice, with the run's tokenizer (from the data's
#     manifest) and with --tokenizer-dir, and at np 2 with --tp 2;
#   - a missing checkpoint, a --tp that does not divide the ranks and a model whose vocabulary
#     is wider than the tokenizer's are one-line errors.
#   eval_sample_test.sh USINE TOKENIZER_DIR SOURCE_DIR MPIEXEC
set -u
source "$3/tests/testing/cli_test_lib.sh"
cli_test_setup eval_sample "$@"
prep_docs "$dir/data" 0.1
{
  tiny_model_toml
  cat <<TOML
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
max_steps = 20
eval_every = 20
eval_batches = 2
TOML
} >"$dir/run.toml"
"${mpirun[@]}" -np 2 "$usine" train --config "$dir/run.toml" >"$dir/train.log" 2>&1 ||
  { cat "$dir/train.log"; echo "FAIL: usine train"; exit 1; }
logged=$(python3 -c "
import json, sys
print(repr([json.loads(l) for l in open(sys.argv[1]) if '\"eval\"' in l][-1]['val_loss']))" \
  "$dir/run/metrics.jsonl")

# eval_loss NP ARGS...: the loss that `usine eval --json` prints.
eval_loss() {
  local np=$1
  shift
  "${mpirun[@]}" -np "$np" "$usine" eval "$dir/run" --json "$@" >"$dir/eval.json" 2>"$dir/eval.err" ||
    { failed "usine eval $*: $(cat "$dir/eval.err")"; return; }
  python3 -c "import json, sys; print(repr(json.load(open(sys.argv[1]))['loss']))" "$dir/eval.json"
}
close() { python3 -c "import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 1e-5)" "$1" "$2"; }
two=$(eval_loss 2 --batches 2 --batch-size 2)
close "$two" "$logged" || failed "eval at np 2: loss $two, the Trainer logged $logged"
one=$(eval_loss 1 --batches 4 --batch-size 2)
close "$one" "$logged" || failed "eval alone: loss $one, the Trainer logged $logged"
bf16=$(eval_loss 1 --batches 4 --batch-size 2 --matmul-precision bf16)
python3 -c "import sys; a, b = map(float, sys.argv[1:]); sys.exit(not (a != b and abs(a - b) < 1e-2 * b))" \
  "$bf16" "$one" || failed "eval with bf16 products: loss $bf16, not near (and not equal to) $one"
grep -q '"step":20' "$dir/eval.json" || failed "eval --json names no step 20: $(cat "$dir/eval.json")"
"$usine" eval "$dir/run" --batches 1 --batch-size 2 >"$dir/eval.out" 2>&1 ||
  failed "usine eval: $(cat "$dir/eval.out")"
grep -q "^usine eval: .*step-00000020.h5 (step 20) on .*/data/val: loss [0-9.]*, perplexity" \
  "$dir/eval.out" || failed "eval's line: $(cat "$dir/eval.out")"

# sample NP ARGS...: the header and text of one greedy sample (what rank 0 prints but its
# first line, which names the checkpoint).
sample() {
  local np=$1
  shift
  "${mpirun[@]}" -np "$np" "$usine" sample "$dir/run" --prompt "The checkpoint" --tokens 16 \
    --temperature 0 "$@" 2>"$dir/sample.err" >"$dir/sample.out" ||
    failed "usine sample $*: $(cat "$dir/sample.err")"
  sed -n '2,$p' "$dir/sample.out"
}
first=$(sample 1)
grep -q "^--- sample 1 of 1 (seed 1337, \([1-9]\|1[0-6]\) tokens) ---$" "$dir/sample.out" ||
  failed "no sample of 1 to 16 tokens: $(cat "$dir/sample.out")"
python3 -c "import sys; sys.exit(any(b < 32 and b not in b'\\n\\t' or b == 127 for b in
  open(sys.argv[1], 'rb').read()))" "$dir/sample.out" ||
  failed "sample prints a control byte: $(od -c "$dir/sample.out")"
[[ $(sed -n 3p "$dir/sample.out") == "The checkpoint"* ]] ||
  failed "sample does not start with the prompt: $(cat "$dir/sample.out")"
[[ $(sample 1) == "$first" ]] || failed "greedy samples differ"
[[ $(sample 1 --tokenizer-dir "$tokenizer") == "$first" ]] ||
  failed "the manifest's tokenizer and --tokenizer-dir differ"
[[ $(sample 2 --tp 2) == "$first" ]] || failed "sample at --tp 2 differs: '$(sample 2 --tp 2)'"
"$usine" sample "$dir/run" --tokens 8 --top-k 5 --temperature 1 --samples 2 >"$dir/two" 2>&1 ||
  failed "sampling two: $(cat "$dir/two")"
[[ $(grep -c "^--- sample [12] of 2 (seed 133[78], [0-9]* tokens) ---$" "$dir/two") -eq 2 ]] ||
  failed "two samples: $(cat "$dir/two")"

# A model with a wider vocabulary than the tokenizer's: refused before any token is drawn (rank
# 0 could not decode what it draws), with one line naming both sizes.
{
  tiny_model_toml | sed 's/^vocab_size = 50257$/vocab_size = 50400/'
  cat <<TOML
[run]
dir = "$dir/wide"
[data]
dir = "$dir/data"
seq_len = 32
batch_size = 2
[train]
max_steps = 1
TOML
} >"$dir/wide.toml"
"$usine" train --config "$dir/wide.toml" >"$dir/wide.log" 2>&1 || failed "usine train (wide): $(cat "$dir/wide.log")"
"$usine" sample "$dir/wide" --tokens 4 >"$dir/out" 2>"$dir/err"
[[ $? -eq 1 ]] || failed "a model wider than its tokenizer exits 1"
grep -q "^usine sample: .*the model's vocabulary (50400 tokens) is larger than the tokenizer's (50257)" \
  "$dir/err" && [[ $(wc -l <"$dir/err") -eq 1 ]] || failed "a wide model: $(cat "$dir/err")"

"$usine" eval "$dir/absent" >"$dir/out" 2>"$dir/err"
[[ $? -eq 1 ]] || failed "a missing checkpoint exits 1"
grep -q "^usine eval: .*$dir/absent" "$dir/err" && [[ $(wc -l <"$dir/err") -eq 1 ]] ||
  failed "a missing checkpoint is one line naming it: $(cat "$dir/err")"
"${mpirun[@]}" -np 2 "$usine" sample "$dir/run" --tp 3 >"$dir/out" 2>"$dir/err"
[[ $? -ne 0 ]] || failed "--tp 3 at np 2 fails"
grep -q -- "--tp 3 does not divide the 2 ranks" "$dir/err" || failed "--tp 3: $(cat "$dir/err")"

[[ $fail -eq 0 ]] && echo PASS
exit $fail
