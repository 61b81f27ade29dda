#!/bin/bash
# `usine bench train --llmc`: the llm.c peer (scripts/bench/llmc_gpt_train.py).
#   - without LLMC_DIR: a directory that is no llm.c checkout; the bench, run from outside the
#     source tree, still finds the peer script and exits 0, and its llm.c line says "not
#     measured" and why, in the peer's words, which name what is missing;
#   - with LLMC_DIR, an llm.c checkout: the peer builds and runs llm.c's cpu trainer beside
#     usine on a small GPT; a tokens/s figure, a loss within 5% of usine's and a ratio.
#   llmc_peer_test.sh USINE SOURCE_DIR [LLMC_DIR]
set -u
usine=$1 source_dir=$2 llmc=${3:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
failed() { echo "FAILED: $*"; failures=$((failures + 1)); }
cd "$source_dir" || exit 1
tiny=(--model tiny --batch 2 --seq 32 --steps 2 --warmup 1 --peer '' --product-size 64 --copy-mib 1)

if [[ -z $llmc ]]; then
  (cd "$dir" && OPENBLAS_NUM_THREADS=1 "$usine" bench train "${tiny[@]}" --llmc "$dir/absent" \
    >"$dir/out" 2>"$dir/err")
  [[ $? -eq 0 ]] || failed "the bench fails without llm.c: $(cat "$dir/out" "$dir/err")"
  grep -q "^  llm.c     not measured: .*/scripts/bench/llmc_gpt_train.py" "$dir/out" ||
    failed "no 'llm.c not measured' line naming the script's path: $(cat "$dir/out")"
  grep -qE "^  llm.c     not measured: .*failed \(exit [0-9]+\): .*(no train_gpt2.c there|has no numpy)" \
    "$dir/out" || failed "the line does not say what is missing: $(cat "$dir/out")"
  grep -qE "no train_gpt2.c there|has no numpy" "$dir/err" ||
    failed "the peer's standard error is not passed on: $(cat "$dir/err")"
else
  OPENBLAS_NUM_THREADS=1 "$usine" bench train "${tiny[@]}" --llmc "$llmc" >"$dir/out" 2>&1 ||
    failed "the bench with llm.c fails: $(cat "$dir/out")"
  usine_loss=$(sed -nE 's/^  usine .* loss ([0-9.]+)$/\1/p' "$dir/out")
  llmc_loss=$(sed -nE 's/^  llm.c +[0-9]+ tokens\/s .* loss ([0-9.]+) +\(train_gpt2.c.*/\1/p' "$dir/out")
  [[ -n $usine_loss && -n $llmc_loss ]] || failed "no losses: $(cat "$dir/out")"
  # The same recipe, initialisation and batch size, other draws: after three steps on one
  # batch the two losses agree within 5% (usine 4.1369, llm.c 4.1378 when written).
  awk -v u="${usine_loss:-0}" -v l="${llmc_loss:-0}" \
    'BEGIN { d = u - l; if (d < 0) d = -d; exit !(u > 0 && d < 0.05 * u) }' ||
    failed "llm.c's loss ${llmc_loss:-none} is not within 5% of usine's ${usine_loss:-none}"
  grep -qE "^  usine / llm.c: [0-9.]+x$" "$dir/out" || failed "no usine / llm.c ratio: $(cat "$dir/out")"
fi
[[ $failures -eq 0 ]] && echo "PASSED"
exit $((failures > 0))
