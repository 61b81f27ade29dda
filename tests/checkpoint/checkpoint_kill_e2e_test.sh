#!/usr/bin/env bash
# A rank SIGKILLed in the middle of a save (2 ranks under mpirun, checkpoints of 64 MiB):
# `latest` still names a complete checkpoint, which loads at 2 ranks and at 1 with every
# element right, and the next start removes the partial file.
#   checkpoint_kill_e2e_test.sh TOOL MPIEXEC
set -euo pipefail
tool=$1
mpiexec=$2
dir=$(mktemp -d /tmp/usine_ckpt_kill_XXXXXX)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

"$mpiexec" -np 2 "$tool" save "$dir" 1000 64 >"$dir.log" 2>&1 &
launcher=$!
# Wait for a committed checkpoint, then for the next one's temporary file: a save in flight.
for _ in $(seq 600); do
  [[ -f $dir/latest ]] && compgen -G "$dir/*.h5.tmp" >/dev/null && break
  sleep 0.05
done
compgen -G "$dir/*.h5.tmp" >/dev/null || { echo "no save in flight"; cat "$dir.log"; exit 1; }
victim=$(pgrep -f "$tool save $dir" | grep -v "^$launcher\$" | tail -1)
echo "killing rank pid $victim during $(ls "$dir" | tr '\n' ' ')"
kill -KILL "$victim"
if wait "$launcher"; then echo "mpirun exited 0 after a rank was killed"; exit 1; fi
rm -f "$dir.log"

echo "after the kill: $(ls "$dir" | tr '\n' ' ') latest -> $(cat "$dir/latest")"
"$mpiexec" -np 2 "$tool" verify "$dir"
"$tool" verify "$dir"
if compgen -G "$dir/*.tmp*" >/dev/null; then echo "leftovers not removed: $(ls "$dir")"; exit 1; fi
echo "PASS"
