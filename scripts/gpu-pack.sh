#!/usr/bin/env bash
# Packs what a GPU machine without Debian's libraries needs to run usine's gpu tests and
# benchmarks: the test binaries that hold gpu cases, `usine`, `nccl_perf`, and the shared
# libraries they use except the C/C++ runtime and the CUDA, NCCL and cuDNN ones (the GPU
# machine brings its own), stripped of debug information and compressed into one file.
#
# With LLMC_DIR, an llm.c checkout, the pack also holds llm.c's CUDA trainer built here
# (scripts/bench/llmc_gpt_train.py --build), which scripts/gpu-bench.sh then runs beside usine.
#
#   [LLMC_DIR=~/llm.c] scripts/gpu-pack.sh [BUILD_DIR] [OUT]   # default build/, .gpu/pack.tar.xz
#   then, on the GPU machine, from the repository root:  scripts/gpu-run.sh [OUT]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$root/build}
out=${2:-$root/.gpu/pack.tar.xz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
# Every test binary whose sources hold a gpu suite (cmake/UsineHelpers.cmake's rule), but those
# run under mpirun (label mpi; CTest names them <binary>.np<N>): the GPU machine has no MPI
# launcher, and their gpu cases need a GPU per rank.
mpi_tests=" $(ctest --test-dir "$build" -N -L mpi |
  sed -nE 's/^ *Test +#[0-9]+: ([A-Za-z0-9_]+)\.np[0-9]+$/\1/p' | sort -u | tr '\n' ' ') "
for src in $(grep -lE "USINE_INSTANTIATE_DEVICE_TESTS|GpuTest" -r "$root/tests" --include=*.cc); do
  name=$(basename "$src" .cc)
  [[ $mpi_tests == *" $name "* ]] && continue
  bin=$(find "$build/tests" -name "$name" -type f -perm -u+x | head -1)
  [[ -n $bin ]] && strip --strip-debug -o "$work/bin/$name" "$bin"
done
strip --strip-debug -o "$work/usine" "$build/runtime/cli/usine"
if [[ -n ${LLMC_DIR:-} ]]; then
  python3 "$root/scripts/bench/llmc_gpt_train.py" --llmc "$LLMC_DIR" --build "$work/bin/llmc_train_gpt2cu" \
    --nvcc "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
fi
[[ -f $build/examples/nccl_perf/nccl_perf ]] &&
  strip --strip-debug -o "$work/bin/nccl_perf" "$build/examples/nccl_perf/nccl_perf"
# The shared libraries, as ldd resolves them here, but those the GPU machine has already.
mkdir -p "$work/lib"
keep_out='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s|libstdc\+\+|libcuda|libcudart|libcublas|libnccl|libcudnn|libnvidia|libnvrtc|libnvJitLink|libcupti)'
for program in "$work"/bin/* "$work/usine"; do
  [[ -x $program ]] || continue  # llm.c's commit, beside its trainer
  ldd "$program" | awk '/=> \//{print $1, $3}' | while read -r name path; do
    [[ $name =~ $keep_out ]] || cp -Lu "$path" "$work/lib/$name"
  done
done
mkdir -p "$(dirname "$out")"
tar -C "$work" -cf - lib bin usine | xz -6 -T0 >"$out"
echo "gpu-pack.sh: $(ls "$work/bin" | wc -l) binaries and usine in $out ($(du -h "$out" | cut -f1))"
