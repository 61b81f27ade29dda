#!/usr/bin/env bash
# Builds usine with clang, AddressSanitizer and libFuzzer (build-fuzz/) and runs every fuzz
# target (CTest label `fuzz`) for SECONDS each (default 120).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-120}
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DUSINE_WITH_CUDA=OFF \
  -DUSINE_SANITIZE=address -DUSINE_FUZZ=ON -DUSINE_FUZZ_SECONDS="$seconds" \
  -DUSINE_BUILD_EXAMPLES=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$root/build-fuzz" -j "$(nproc)" --target token_shard_fuzz gpt2_tokenizer_fuzz \
  jsonl_reader_fuzz checkpoint_fuzz run_config_fuzz safetensors_fuzz
export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
ctest --test-dir "$root/build-fuzz" -L fuzz --output-on-failure
