#!/usr/bin/env bash
# World under SLURM: a private one-node cluster runs the allreduce example with
# `srun --mpi=pmix` (it must work), then without a PMI (it must fail with usine's message).
#   srun_e2e_test.sh ALLREDUCE_PROGRAM
set -u
program=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap '"$here/../../testing/slurm_cluster.sh" stop "$dir"; rm -rf "$dir"' EXIT
eval "$("$here/../../testing/slurm_cluster.sh" start "$dir")" || { echo "FAIL: no cluster"; exit 1; }
fail=0

out=$(timeout 120 srun --mpi=pmix -n 2 "$program" 2>&1); rc=$?
echo "$out"
[[ $rc -eq 0 ]] || { echo "FAIL: srun --mpi=pmix exited $rc"; fail=1; }
for r in 0 1; do
  grep -q "rank $r of 2 .*sum = 3 (expected 3)" <<<"$out" || { echo "FAIL: rank $r missing"; fail=1; }
done

out=$(timeout 120 srun --mpi=none -n 2 "$program" 2>&1); rc=$?
echo "$out"
[[ $rc -ne 0 ]] || { echo "FAIL: a launch without PMI succeeded"; fail=1; }
grep -q "launch with \`srun --mpi=pmix\`" <<<"$out" || { echo "FAIL: no clear message"; fail=1; }

[[ $fail -eq 0 ]] && echo PASS
exit $fail
