#!/usr/bin/env bash
# Nsight Compute's view of the kernels that the step's figures point at, for a session lent a
# GPU machine (after scripts/gpu-run.sh has unpacked the pack): the bf16 flash attention kernels
# (usine bench attention at GPT-2 124M's shape, B=16, T=1024) and the cross-entropy, LayerNorm
# and AdamW kernels (one usine bench train step at that shape). Each kernel launch is replayed
# alone with the clocks left as they are (--clock-control none; METHOD.md); the sections give
# its time, its throughput against the SM's and memory's peaks, occupancy and why warps stall,
# and the extra metrics the shared-memory and tensor pipes' use. Writes DIR/ncu-<name>.csv
# (every metric) and prints one line per kernel: the median over its launches of the figures
# that say whether it waits on shared memory, the tensor cores, DRAM or barriers.
#
#   scripts/gpu-run.sh && scripts/gpu-ncu.sh [DIR]
set -uo pipefail
dir=${1:-/tmp/usine-gpu}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cuda_dirs=$(find / \( -name "libcudart.so.13" -o -name "libcublasLt.so.13" -o -name "libnccl.so.2" \) \
  -not -path "/proc/*" 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=$dir/lib:$cuda_dirs${LD_LIBRARY_PATH:-}
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
if [[ -z $ncu ]]; then
  echo "gpu-ncu.sh: no ncu on this machine" >&2
  exit 1
fi
sections=(--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats
  --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis)
metrics=sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed
profile() {  # profile NAME KERNEL_REGEX [NCU FLAGS] COMMAND...: DIR/ncu-NAME.csv
  local name=$1 kernels=$2
  shift 2
  echo "== $name: ncu on $*"
  # The extra metrics are asked for apart from the sections: a name this ncu does not know
  # fails its own run only.
  timeout 300 "$ncu" --clock-control none --csv --page details --print-kernel-base function \
    --kernel-name "regex:$kernels" "${sections[@]}" "$@" >"$dir/ncu-$name.csv" 2>"$dir/ncu-$name.err" ||
    { echo "ncu ($name) failed: $(tail -3 "$dir/ncu-$name.err")"; }
  timeout 300 "$ncu" --clock-control none --csv --page raw --print-kernel-base function \
    --kernel-name "regex:$kernels" --metrics "$metrics" "$@" >"$dir/ncu-$name-pipes.csv" \
    2>"$dir/ncu-$name-pipes.err" ||
    { echo "ncu ($name, pipes) failed: $(tail -3 "$dir/ncu-$name-pipes.err")"; }
}
shape=(--batch 16 --seq 1024)
profile attention 'Flash' "$dir/usine" bench attention --device cuda --matmul-precision bf16 \
  --attention flash "${shape[@]}" --heads 12 --embd 768 --reps 1 --warmup 0 --peer ''
# The first 60 matching launches of one step: the cross-entropy, the LayerNorms of the forward
# pass and of the backward pass's first blocks.
profile step 'CachedRow|CrossEntropy|LayerNorm|AdamW' --launch-count 60 "$dir/usine" bench train \
  --device cuda --model gpt2 --layers 0 --heads 0 --embd 0 "${shape[@]}" --matmul-precision bf16 \
  --attention flash --steps 1 --warmup 0 --peer '' --product-size 2048 --copy-mib 64
python3 "$root/scripts/ncu_summary.py" "$dir"/ncu-attention.csv "$dir"/ncu-attention-pipes.csv \
  "$dir"/ncu-step.csv "$dir"/ncu-step-pipes.csv
