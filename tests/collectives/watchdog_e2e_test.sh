#!/usr/bin/env bash
# Nothing hangs: 3 ranks all-reduce in a loop; rank 1 is sent SIGNAL (KILL or STOP). Every
# other rank must exit non-zero within the collective timeout + 10 s, and the job's output
# must name the operation, the communicator, its sequence number and the missing rank.
#   watchdog_e2e_test.sh PROGRAM SIGNAL
set -u
program=$1 signal=$2 timeout=3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

mpirun -np 3 "$program" "$dir" "$timeout" >"$dir/log" 2>&1 &
job=$!
for _ in $(seq 300); do
  [[ -f $dir/rank0.pid && -f $dir/rank1.pid && -f $dir/rank2.pid ]] && break
  sleep 0.1
done
[[ -f $dir/rank1.pid ]] || { echo "FAIL: the job did not start"; cat "$dir/log"; exit 1; }
sleep 1
victim=$(cat "$dir/rank1.pid")
start=$(date +%s.%N)
kill -s "$signal" "$victim"
# Wait at most timeout + 30 s; past timeout + 10 s is a failure anyway.
for _ in $(seq $(( (timeout + 30) * 10 ))); do
  kill -0 "$job" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$job" 2>/dev/null; then
  echo "FAIL: the job still runs $((timeout + 30)) s after SIG$signal"
  kill -KILL "$victim" "$job" 2>/dev/null
  cat "$dir/log"
  exit 1
fi
wait "$job"
rc=$?
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
kill -KILL "$victim" 2>/dev/null
echo "--- job output ---"
cat "$dir/log"
echo "--- SIG$signal to rank 1: the job exited with status $rc after ${elapsed} s (limit $((timeout + 10)) s)"
fail=0
[[ $rc -ne 0 ]] || { echo "FAIL: exit status 0"; fail=1; }
(( $(echo "$elapsed <= $timeout + 10" | bc) )) || { echo "FAIL: too slow"; fail=1; }
grep -q "allreduce #[0-9]* on communicator 'world'" "$dir/log" ||
  { echo "FAIL: no message naming the operation, communicator and sequence number"; fail=1; }
grep -q "rank(s) 1 did not arrive" "$dir/log" || { echo "FAIL: rank 1 not named"; fail=1; }
[[ $fail -eq 0 ]] && echo "PASS"
exit $fail
