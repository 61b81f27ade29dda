#!/usr/bin/env bash
# The GPU training ladder of docs/BENCHMARKS.md in one call, for a session lent a GPU machine:
# GPT-2 124M, T=1024: first the rung of the goal (bf16 products, the flash kernel, next to
# PyTorch compiled) at issue 6's batch, B=16, so that a call cut short by its time limit still
# has it; then the attention core alone at that shape beside PyTorch's kernels (usine bench
# attention); then the same at B=8, the batch of the earlier figures; then, at B=8, every matmul
# precision with the unfused attention, and TF32 with the flash kernel. Each also times one
# more step op by op (--profile), which says where the time goes. Runs the `usine` of a pack unpacked by
# scripts/gpu-run.sh (default /tmp/usine-gpu); each line is one `usine bench train`, and its
# output goes to the terminal and to DIR/bench-<name>.log. Where the pack holds llm.c's CUDA
# trainer (LLMC_DIR given to scripts/gpu-pack.sh), the two bf16 + flash rungs run it too.
#
#   scripts/gpu-run.sh && scripts/gpu-bench.sh [DIR]
set -uo pipefail
dir=${1:-/tmp/usine-gpu}
cuda_dirs=$(find / \( -name "libcudart.so.13" -o -name "libcublasLt.so.13" -o -name "libnccl.so.2" \) \
  -not -path "/proc/*" 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=$dir/lib:$cuda_dirs${LD_LIBRARY_PATH:-}
common=(--device cuda --model gpt2 --layers 0 --heads 0 --embd 0 --seq 1024 --profile)
llmc=()
[[ -x $dir/bin/llmc_train_gpt2cu ]] && llmc=(--llmc "$dir/bin/llmc_train_gpt2cu")
run() {
  local name=$1
  shift
  echo "== $name: usine bench train ${common[*]} $*"
  timeout 300 "$dir/usine" bench train "${common[@]}" "$@" 2>&1 | tee "$dir/bench-$name.log"
}
run bf16-flash-b16 --batch 16 --matmul-precision bf16 --attention flash --compile "${llmc[@]}"
echo "== attention: usine bench attention at the goal's shape, beside PyTorch's SDPA backends"
timeout 300 "$dir/usine" bench attention --device cuda --matmul-precision bf16 --attention flash \
  --batch 16 --seq 1024 --heads 12 --embd 768 2>&1 | tee "$dir/bench-attention.log"
run bf16-flash --batch 8 --matmul-precision bf16 --attention flash --compile "${llmc[@]}"
run f32-unfused --batch 8 --matmul-precision f32 --peer ''
run tf32-unfused --batch 8 --matmul-precision tf32 --peer ''
run bf16-unfused --batch 8 --matmul-precision bf16 --peer ''
run tf32-flash --batch 8 --matmul-precision tf32 --attention flash --peer ''
echo "== summary (each rung's median step; the profiles are in $dir/bench-*.log)"
for name in bf16-flash-b16 bf16-flash f32-unfused tf32-unfused bf16-unfused tf32-flash; do
  printf '%-13s %s\n' "$name" "$(grep -m1 '^  usine ' "$dir/bench-$name.log" 2>/dev/null)"
done
grep -h "PyTorch\|llm.c" "$dir/bench-bf16-flash-b16.log" "$dir/bench-bf16-flash.log" 2>/dev/null
grep -h "usine attn.core\|usine / " "$dir/bench-attention.log" 2>/dev/null
