#!/usr/bin/env bash
# A real full disk: a 2 MiB tmpfs (root only; skipped, exit 77, where it cannot be mounted),
# checkpoints of 1 MiB at 1 and 2 ranks. The second save fails with ENOSPC: the program
# exits 1 with the error (no crash), the partial file is gone, `latest` names step 1, which
# loads with every element right.
#   checkpoint_disk_full_e2e_test.sh TOOL MPIEXEC
set -euo pipefail
tool=$1
mpiexec=$2
mnt=$(mktemp -d /tmp/usine_disk_full_XXXXXX)
if ! mount -t tmpfs -o size=2m tmpfs "$mnt" 2>/dev/null; then
  rmdir "$mnt"
  echo "SKIP: cannot mount a tmpfs here (needs root); checkpointer_test covers a file-size limit"
  exit 77
fi
trap 'umount "$mnt"; rmdir "$mnt"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

for np in 1 2; do
  dir=$mnt/np$np
  set +e
  "$mpiexec" -np "$np" "$tool" save "$dir" 3 1 >"$mnt/log" 2>&1
  rc=$?
  set -e
  grep -q "No space left on device" "$mnt/log" || { cat "$mnt/log"; echo "FAIL: no ENOSPC error"; exit 1; }
  grep -q "Segmentation fault\|signal" "$mnt/log" && { cat "$mnt/log"; echo "FAIL: crashed"; exit 1; }
  [[ $rc -ne 0 ]] || { echo "FAIL: np $np: save on a full disk exited 0"; exit 1; }
  [[ $(cat "$dir/latest") == step-00000001.h5 ]] || { echo "FAIL: latest: $(cat "$dir/latest")"; exit 1; }
  if compgen -G "$dir/*.tmp" >/dev/null; then echo "FAIL: partial file left: $(ls "$dir")"; exit 1; fi
  "$mpiexec" -np "$np" "$tool" verify "$dir"
  rm -rf "$dir" "$mnt/log"
  echo "np $np: ENOSPC reported, step 1 intact"
done
echo PASS
