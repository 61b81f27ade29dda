#!/usr/bin/env bash
# Sets up and runs usine's tests: installs the Debian dependencies, configures, builds
# (with ccache) and runs CTest. This is the command CI runs (.ci/run).
#
#   scripts/test.sh                         # the default set: every label but e2e and fuzz
#   scripts/test.sh -L unit                 # one tier (unit, gpu, emu, mpi, package, e2e, fuzz)
#   scripts/test.sh --sanitize address      # an ASan build of its own (build-address/)
#   scripts/test.sh --cpu-only              # without the CUDA path
#
# Extra arguments after `--` go to ctest. The build directory is build/ (or build-<sanitizer>/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sanitize=""
cuda_flag=()
labels=()
ctest_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --sanitize) sanitize=$2; shift 2 ;;
    --cpu-only) cuda_flag=(-DUSINE_WITH_CUDA=OFF); shift ;;
    -L) labels=(-L "$2"); shift 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument '$1' (see the header of $0)" >&2; exit 2 ;;
  esac
done

"$root/scripts/install-deps.sh"

build="$root/build${sanitize:+-$sanitize}"
jobs=$(nproc)
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DUSINE_BUILD_TESTS=ON -DUSINE_WERROR=ON -DUSINE_SANITIZE="$sanitize" \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache "${cuda_flag[@]}" >/dev/null
cmake --build "$build" -j "$jobs"

[[ ${#labels[@]} -gt 0 ]] || labels=(-LE "e2e|fuzz")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Allocation failures are tested: the sanitizers must return null rather than abort.
export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export TSAN_OPTIONS="allocator_may_return_null=1:suppressions=$root/tests/tsan_suppressions.txt${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
ctest --test-dir "$build" -j "$jobs" --output-on-failure "${labels[@]}" "${ctest_args[@]}"
