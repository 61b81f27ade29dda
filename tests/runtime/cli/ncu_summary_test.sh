#!/usr/bin/env bash
# scripts/ncu_summary.py (the table of scripts/gpu-ncu.sh) on hand-written CSV in Nsight
# Compute's two layouts, as ncu 2025 writes them (no GPU here): a details page with ncu's own
# lines before the table, durations in microseconds and milliseconds, a number with thousands
# separators; a raw page with its row of units; a file that is missing.
#   ncu_summary_test.sh SOURCE_DIR
set -u
source "$1/tests/testing/cli_test_lib.sh"  # failed, check
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
summary="$1/scripts/ncu_summary.py"
head='"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC"'
launch() { echo "\"$1\",\"1\",\"usine\",\"h\",\"$2\",\"1\",\"7\",\"(128, 1, 1)\",\"(3072, 1, 1)\",\"0\",\"9.0\""; }
{
  echo "==PROF== Connected to process 123"
  echo "$head,\"Section Name\",\"Metric Name\",\"Metric Unit\",\"Metric Value\""
  echo "$(launch 0 Forward),\"SOL\",\"Duration\",\"usecond\",\"112.35\""
  echo "$(launch 0 Forward),\"SOL\",\"Compute (SM) Throughput\",\"%\",\"61.2\""
  echo "$(launch 0 Forward),\"SOL\",\"Elapsed Cycles\",\"cycle\",\"1,234,567\""
  echo "$(launch 1 Forward),\"SOL\",\"Duration\",\"usecond\",\"120.00\""
  echo "$(launch 2 Forward),\"SOL\",\"Duration\",\"usecond\",\"130.00\""
  echo "$(launch 3 QueryGrad),\"SOL\",\"Duration\",\"msecond\",\"0.21\""
  echo "$(launch 3 QueryGrad),\"Launch Statistics\",\"Registers Per Thread\",\"register/thread\",\"162\""
} >"$dir/details.csv"
{
  echo "$head,\"sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active\""
  echo '"","","","","","","","","","","","%"'
  echo "$(launch 0 Forward),\"40.2\""
  echo "$(launch 3 QueryGrad),\"35.0\""
} >"$dir/raw.csv"
python3 "$summary" "$dir/details.csv" "$dir/raw.csv" "$dir/missing.csv" >"$dir/out" 2>"$dir/err"
check "the summary exits 0" test $? -eq 0
check "the median of three launches, in microseconds" \
  grep -qE "^Forward +3 +120\.0 +61\.2 .* 40\.2 +- *$" "$dir/out"
check "milliseconds become microseconds, with the registers and the raw page's pipe" \
  grep -qE "^QueryGrad +1 +210\.0 +- +- +- +- +162\.0 +- +35\.0 +- *$" "$dir/out"
python3 "$summary" "$dir/missing.csv" >"$dir/out" 2>"$dir/err"
check "no figures exit 1" test $? -eq 1
check "and say so" grep -q "no kernel figures in $dir/missing.csv" "$dir/out"
if [[ $fail -ne 0 ]]; then
  echo "--- stdout ---"; cat "$dir/out"; echo "--- stderr ---"; cat "$dir/err"
  exit 1
fi
echo PASS
