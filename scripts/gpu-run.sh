#!/usr/bin/env bash
# Runs every gpu test case of a pack made by scripts/gpu-pack.sh, on a GPU machine that has the
# CUDA 13 and NCCL libraries (from PyTorch's wheels or a toolkit) but not Debian's packages.
# Prints one line per test binary and the failures; exits non-zero if any failed.
#
#   scripts/gpu-run.sh [PACK] [DIR]     # default .gpu/pack.tar.xz, unpacked into /tmp/usine-gpu
set -uo pipefail
pack=${1:-.gpu/pack.tar.xz}
dir=${2:-/tmp/usine-gpu}
rm -rf "$dir" && mkdir -p "$dir"
python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$pack" "$dir"
# The CUDA and NCCL libraries wherever this machine keeps them.
cuda_dirs=$(find / \( -name "libcudart.so.13" -o -name "libcublasLt.so.13" -o -name "libnccl.so.2" \) \
  -not -path "/proc/*" 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=$dir/lib:$cuda_dirs${LD_LIBRARY_PATH:-}
failed=0
for t in "$dir"/bin/*_test; do
  name=$(basename "$t")
  log=$dir/$name.log
  timeout 600 "$t" --gtest_filter='Cuda/*:*GpuTest.*' --gtest_color=no >"$log" 2>&1
  rc=$?
  echo "$name: exit $rc, $(grep -E '^\[  PASSED  \]' "$log" | sed 's/\[  PASSED  \] //')"
  if [[ $rc != 0 ]]; then
    failed=1
    grep -E "^\[  FAILED  \] [A-Z]|Failure|Expected|Actual|Which is" "$log" | head -40
  fi
done
exit $failed
