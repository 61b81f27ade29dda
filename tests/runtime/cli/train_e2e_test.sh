#!/usr/bin/env bash
# `usine train` end to end on the cpu (label e2e), on a small corpus (the repository's docs,
# tokenised with the test tokenizer) and a 2-layer GPT:
#   resume   at np 2 with DP=2, and with TP=2: a run
#            stopped by SIGUSR1 near step 30 (checkpoint, exit 75) and started again to step
#            60 logs the same losses, bit for bit, as a run that was never stopped;
#   kill     SIGKILL of one rank mid-run: the job ends (mpirun takes the others down) within
#            60 s, and a restart resumes from the last committed checkpoint and finishes with
#            the uninterrupted run's losses;
#   layout   a run at np 4 with TP=2 stopped near step 30 resumes at np 2 with TP=1 and goes
#            on with a loss close to the uninterrupted run's;
#   slurm    a real one-node SLURM cluster (tests/testing/slurm_cluster.sh) runs
#            scripts/slurm/train.sbatch with 2 tasks; `scancel --signal=USR1` near step 30
#            makes it checkpoint and requeue itself, and the requeued job finishes with the
#            uninterrupted run's losses, bit for bit.
#   train_e2e_test.sh USINE TOKENIZER_DIR SOURCE_DIR MPIEXEC [SCENARIO...]
set -u
source "$3/tests/testing/cli_test_lib.sh"
cli_test_setup train_e2e "$1" "$2" "$3" "$4"
shift 4
scenarios=("$@")
[[ ${#scenarios[@]} -eq 0 ]] && scenarios=(resume kill layout slurm)
cleanup() {
  [[ -d $dir/cluster ]] && "$source_dir/tests/testing/slurm_cluster.sh" stop "$dir/cluster"
  rm -rf "$dir"
}
trap cleanup EXIT

prep_docs "$dir/data" 0.1

{
  tiny_model_toml
  cat <<EOF
[data]
dir = "$dir/data"
seq_len = 32
batch_size = 8
micro_batch_size = 2
[optim]
lr = 2e-3
warmup_steps = 5
[train]
max_steps = 60
eval_every = 20
eval_batches = 2
[checkpoint]
every_steps = 10
EOF
} >"$dir/run.toml"

# train NP RUN [--set ...]: trains in the foreground; the exit code is usine's.
train() { (train_exec "$@"); }
# train_exec NP RUN [--set ...]: becomes mpirun (so that `train_exec ... &` gives its pid).
train_exec() {
  local np=$1 run=$2
  shift 2
  exec "${mpirun[@]}" -np "$np" "$usine" train --config "$dir/run.toml" \
    --set "run.dir=$dir/$run" "$@" >>"$dir/$run.log" 2>&1
}

# losses RUN: "step loss grad_norm" of each training step (its last record), exactly as logged.
losses() {
  python3 - "$dir/$1/metrics.jsonl" <<'PY'
import json, sys
last = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] == "train":
        last[r["step"]] = (repr(r["loss"]), repr(r["grad_norm"]))
for step in sorted(last):
    print(step, *last[step])
PY
}

# wait_for_step RUN STEP PID: until metrics.jsonl has STEP (or the job ended).
wait_for_step() {
  local run=$1 step=$2 pid=$3
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -f $dir/$run/metrics.jsonl ]] &&
      grep -q "\"step\":$step," "$dir/$run/metrics.jsonl"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# interrupted NP RUN [--set ...]: trains in the background, SIGUSR1 once step 30 is logged;
# expects exit 75.
interrupted() {
  local np=$1 run=$2
  shift 2
  train_exec "$np" "$run" "$@" &
  local pid=$!
  wait_for_step "$run" 30 "$pid" || failed "$run: step 30 never logged"
  kill -USR1 "$pid"
  wait "$pid"
  local rc=$?
  [[ $rc -eq 75 ]] || failed "$run: exit $rc after SIGUSR1, not 75"
}

train 2 straight || failed "the uninterrupted run (see $dir/straight.log)"
losses straight >"$dir/straight.losses"
[[ $(wc -l <"$dir/straight.losses") -eq 60 ]] || failed "the uninterrupted run logged no 60 steps"

for scenario in "${scenarios[@]}"; do
  case $scenario in
    resume)
      interrupted 2 dp2
      train 2 dp2 || failed "dp2: the resumed run"
      grep -q "resumed from" "$dir/dp2.log" || failed "dp2: did not resume"
      losses dp2 >"$dir/dp2.losses"
      diff "$dir/straight.losses" "$dir/dp2.losses" >/dev/null ||
        failed "dp2: losses differ from the uninterrupted run: $(diff "$dir/straight.losses" "$dir/dp2.losses" | head -4)"
      # The same at TP=2, against an uninterrupted TP=2 run (TP sums in another order).
      train 2 straight_tp2 --set parallel.tp=2 || failed "tp2: the uninterrupted run"
      interrupted 2 tp2 --set parallel.tp=2
      train 2 tp2 --set parallel.tp=2 || failed "tp2: the resumed run"
      grep -q "resumed from" "$dir/tp2.log" || failed "tp2: did not resume"
      diff <(losses straight_tp2) <(losses tp2) >/dev/null ||
        failed "tp2: losses differ from the uninterrupted run"
      ;;
    kill)
      train_exec 2 killed &
      pid=$!
      wait_for_step killed 25 "$pid" || failed "killed: step 25 never logged"
      victim=$(pgrep -P "$pid" -f "usine train" | head -1)
      [[ -z $victim ]] && victim=$(pgrep -f "run.dir=$dir/killed" | grep -v "^$pid\$" | tail -1)
      start=$SECONDS
      kill -KILL "$victim"
      wait "$pid"
      rc=$?
      ((SECONDS - start <= 60)) || failed "killed: the job took $((SECONDS - start)) s to end"
      [[ $rc -ne 0 ]] || failed "killed: mpirun exited 0 after a rank was killed"
      latest=$(cat "$dir/killed/checkpoints/latest")  # step-00000020.h5
      latest=${latest#step-}
      latest=$((10#${latest%.h5}))
      train 2 killed || failed "killed: the restart"
      grep -q "resumed from .* at step $latest " "$dir/killed.log" ||
        failed "killed: the restart did not resume from step $latest"
      losses killed >"$dir/killed.losses"
      diff "$dir/straight.losses" "$dir/killed.losses" >/dev/null ||
        failed "killed: losses differ from the uninterrupted run"
      ;;
    layout)
      interrupted 4 layout --set parallel.tp=2
      train 2 layout --set parallel.tp=1 || failed "layout: the resumed run at tp 1"
      grep -q "resumed from" "$dir/layout.log" || failed "layout: did not resume"
      python3 - "$dir/straight.losses" <(losses layout) <<'PY' || failed "layout: losses"
import sys
straight = {int(l.split()[0]): float(l.split()[1]) for l in open(sys.argv[1])}
got = {int(l.split()[0]): float(l.split()[1]) for l in open(sys.argv[2])}
worst = max(abs(got[s] - straight[s]) / straight[s] for s in straight)
print(f"layout: largest relative loss difference to the uninterrupted run {worst:.2e}")
sys.exit(0 if worst < 1e-3 and got[60] < got[1] else 1)
PY
      ;;
    slurm)
      eval "$("$source_dir/tests/testing/slurm_cluster.sh" start "$dir/cluster")" ||
        { failed "slurm: no cluster"; continue; }
      job=$(USINE_CONFIG="$dir/run.toml" USINE="$usine" USINE_SET="run.dir=$dir/slurm" \
        sbatch --parsable --ntasks=2 --ntasks-per-node=2 --output="$dir/slurm.log" -D "$dir" \
        "$source_dir/scripts/slurm/train.sbatch")
      for _ in $(seq 600); do
        grep -q '"step":30,' "$dir/slurm/metrics.jsonl" 2>/dev/null && break
        sleep 0.2
      done
      scancel --signal=USR1 "$job" || failed "slurm: scancel --signal=USR1"
      # The job checkpoints, requeues itself, starts again, resumes and finishes.
      for _ in $(seq 900); do
        [[ -z $(squeue -h -j "$job" 2>/dev/null) ]] && break
        sleep 1
      done
      [[ -z $(squeue -h -j "$job" 2>/dev/null) ]] || failed "slurm: job $job still queued after 15 min"
      grep -q "requeueing job $job" "$dir/slurm.log" || failed "slurm: the job did not requeue itself"
      grep -q "resumed from" "$dir/slurm.log" || failed "slurm: the requeued job did not resume"
      losses slurm >"$dir/slurm.losses"
      diff "$dir/straight.losses" "$dir/slurm.losses" >/dev/null ||
        failed "slurm: losses differ from the uninterrupted run"
      ;;
    *) failed "unknown scenario $scenario" ;;
  esac
done

if [[ $fail -ne 0 ]]; then
  for log in "$dir"/*.log; do echo "== $log"; tail -20 "$log"; done
  exit 1
fi
echo "PASS: ${scenarios[*]}"
