#!/usr/bin/env bash
# `usine finetune` end to end on the cpu (label e2e): a tiny GPT trained by `usine train` on
# the repository's docs is the base; `mpirun -np 2 usine finetune --watch incoming/ --from
# <base> --publish published/` runs in the background while shards (prepped elsewhere, then
# renamed into incoming/) land. It trains on each landed sample once (the step count is the
# samples' over the batch, exactly), publishes model-v0001.h5 once the validation loss beats
# the base model's, and on SIGUSR1 -- while waiting for data -- checkpoints and exits 75.
# Started again it resumes, trains nothing until a new shard lands, then trains just that
# one; SIGTERM to the ranks ends it with 75 again. `usine inspect` reads a published model.
#   finetune_e2e_test.sh USINE TOKENIZER_DIR SOURCE_DIR MPIEXEC
set -u
source "$3/tests/testing/cli_test_lib.sh"
cli_test_setup finetune_e2e "$@"

prep() {  # prep OUT INPUT...
  local out=$1
  shift
  "$usine" prep "$@" --out "$out" --tokenizer-dir "$tokenizer" --val-fraction 0 \
    >>"$dir/prep.log" 2>&1 || { cat "$dir/prep.log"; echo "FAIL: usine prep $*"; exit 1; }
}
prep_docs "$dir/data" 0.1

{
  tiny_model_toml
  cat <<TOML
[data]
dir = "$dir/data"
seq_len = 32
batch_size = 8
micro_batch_size = 2
[optim]
lr = 2e-3
[train]
max_steps = 20
eval_every = 4
eval_batches = 2
[checkpoint]
every_steps = 10
TOML
} >"$dir/run.toml"

# The base model.
"${mpirun[@]}" -np 2 "$usine" train --config "$dir/run.toml" --set "run.dir=$dir/base" \
  >"$dir/base.log" 2>&1 || { cat "$dir/base.log"; echo "FAIL: the base run"; exit 1; }

# finetune_exec: becomes mpirun (so that `finetune_exec &` gives its pid); no step budget.
mkdir -p "$dir/incoming"
finetune_exec() {
  exec "${mpirun[@]}" -np 2 "$usine" finetune --config "$dir/run.toml" --watch "$dir/incoming" \
    --from "$dir/base/checkpoints" --publish "$dir/published" --set "run.dir=$dir/ft" \
    --set train.max_steps=0 >>"$dir/ft.log" 2>&1
}
# land NAME SOURCE...: preps SOURCE in a staging directory, then renames its shard into
# incoming/NAME.bin (the landing protocol).
land() {
  local name=$1
  shift
  prep "$dir/stage_$name" "$@"
  mv "$dir/stage_$name/train_r0000_000000.bin" "$dir/incoming/$name.bin"
}
# samples NAME...: the landed shards' sequences of 33 tokens; steps: of 8 sequences each.
steps() {
  python3 - "$@" <<'PY'
import struct, sys
samples = 0
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        tokens = struct.unpack("<3i", f.read(12))[2]
    samples += (tokens - 1) // 32
print(samples // 8)
PY
}
last_step() {
  python3 - "$dir/ft/metrics.jsonl" <<'PY'
import json, sys
try:
    steps = [json.loads(l)["step"] for l in open(sys.argv[1]) if '"kind":"train"' in l]
except FileNotFoundError:
    steps = []
print(max(steps, default=0))
PY
}
# wait_until PID SECONDS CONDITION...: true once CONDITION holds, false if the job ended first.
wait_until() {
  local pid=$1 seconds=$2
  shift 2
  for _ in $(seq $((seconds * 5))); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
at_step() { [[ $(last_step) -ge $1 ]]; }
published() { [[ -f $dir/published/model-v0001.h5 ]]; }
# stop PID SIGNAL [ranks]: signals mpirun (which forwards SIGUSR1), or with "ranks" its
# children, the ranks, as SLURM does with SIGTERM (mpirun itself would end the job on
# SIGTERM); the job must exit 75 within 30 s.
stop() {
  local pid=$1 start=$SECONDS
  if [[ ${3:-} == ranks ]]; then
    kill "-$2" $(pgrep -P "$pid")
  else
    kill "-$2" "$pid"
  fi
  wait "$pid"
  local rc=$?
  echo "$2 -> exit $rc after $((SECONDS - start)) s"
  [[ $rc -eq 75 ]] || failed "exit $rc after SIG$2, not 75"
  ((SECONDS - start <= 30)) || failed "SIG$2 took $((SECONDS - start)) s"
}

finetune_exec &
pid=$!
land one "$source_dir/docs/config.md"
land two "$source_dir/docs/formats.md"
first=$(steps "$dir/incoming/one.bin" "$dir/incoming/two.bin")
wait_until "$pid" 120 at_step "$first" || failed "the landed shards were not trained on: step $(last_step) of $first"
wait_until "$pid" 30 published || failed "no model published"
sleep 2  # Waiting for data now: the signal must end the wait.
[[ $(last_step) -eq $first ]] || failed "trained $(last_step) steps on $first steps of data"
stop "$pid" USR1
latest=$(cat "$dir/ft/checkpoints/latest")
echo "first run: $(last_step) steps on $first steps of landed data; checkpoint $latest; published: $(ls "$dir/published" | tr '\n' ' ')"
grep -q "model initialised from $dir/base/checkpoints/step-00000020.h5" "$dir/ft.log" ||
  failed "the run did not start from the base model"

finetune_exec &
pid=$!
wait_until "$pid" 60 grep -q "resumed from" "$dir/ft.log" || failed "the restart did not resume"
sleep 3
[[ $(last_step) -eq $first ]] || failed "the restart trained on consumed shards: step $(last_step), not $first"
land three "$source_dir/docs/metrics.md"
total=$(steps "$dir/incoming/one.bin" "$dir/incoming/two.bin" "$dir/incoming/three.bin")
wait_until "$pid" 120 at_step "$total" || failed "the new shard was not trained on: step $(last_step) of $total"
sleep 2
[[ $(last_step) -eq $total ]] || failed "trained $(last_step) steps on $total steps of data"
stop "$pid" TERM ranks
echo "second run: resumed at $latest, trained to step $(last_step) on $total steps of landed data"
grep -E "publishing|usine finetune: stopped" "$dir/ft.log" | sed 's/^/  /'

"$usine" inspect "$dir/published/model-v0001.h5" >"$dir/inspect.log" 2>&1 ||
  failed "usine inspect of a published model: $(tail -1 "$dir/inspect.log")"
grep -q "val_loss" "$dir/inspect.log" || failed "the published model has no val_loss"

if [[ $fail -ne 0 ]]; then
  for log in "$dir"/*.log; do echo "== $log"; tail -25 "$log"; done
  exit 1
fi
echo "PASS"
