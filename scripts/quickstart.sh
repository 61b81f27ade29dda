#!/usr/bin/env bash
# Sets up usine and runs the main job. Until the trainer lands (issue 7), the main job is a
# short self-check: build, then run the tensor_ops example on the first GPU (or the cpu).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$root/build-release"

"$root/scripts/install-deps.sh"
echo "quickstart: building usine (Release) in $build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUSINE_BUILD_TESTS=OFF \
  -DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$build" -j "$(nproc)" --target tensor_ops
"$build/examples/tensor_ops/tensor_ops" "$@"
