// The grid of one kernel launch over many tensors of different sizes (a model's parameters: a
// few large, most of them small): tensor i gets blocks [first[i], first[i + 1]) of a 1-D grid,
// as many as its elements need up to a cap, back to back, so that no block is launched without
// work (a 2-D grid as wide as the largest tensor launched, for GPT-2's 98 bias and LayerNorm
// vectors of 768 elements, over a thousand idle blocks each). For .cu files only; part of the
// kernels' CUDA launch interface that the CUDA kernels of other components use too (optim's
// AdamW), which is why it is not under internal/.
//
//   TensorBlocks blocks;
//   const int grid = AssignTensorBlocks(n, count, kThreads, kMaxBlocksPerTensor, blocks);
//   if (grid > 0) Kernel<<<grid, kThreads, 0, stream>>>(..., blocks);
//   // In the kernel: tensor i = blocks.TensorOf(blockIdx.x), its block blockIdx.x - first[i]
//   // of blocks.Count(i), in a grid-stride loop of Count(i) * blockDim.x.
#ifndef USINE_RUNTIME_KERNELS_CUDA_TENSOR_BLOCKS_H_
#define USINE_RUNTIME_KERNELS_CUDA_TENSOR_BLOCKS_H_

#include <algorithm>
#include <cstdint>

namespace usine::kernels_internal::cuda {

// Passed by value as a kernel argument (about 200 bytes).
struct TensorBlocks {
  static constexpr int kMaxTensors = 48;
  int first[kMaxTensors + 1] = {};
  int count = 0;

  // The tensor that block `block` belongs to: the last i < count with first[i] <= block (the
  // tensors without blocks are never found). REQUIRES: 0 <= block < first[count].
  __device__ int TensorOf(int block) const {
    int low = 0, high = count - 1;
    while (low < high) {
      const int mid = (low + high + 1) / 2;
      if (first[mid] <= block) {
        low = mid;
      } else {
        high = mid - 1;
      }
    }
    return low;
  }
  // Blocks of tensor i.
  __device__ int Count(int i) const { return first[i + 1] - first[i]; }
};

// Gives tensor i (of n[i] elements, i < count) ceil(n[i] / threads) blocks, at most
// max_blocks (none for an empty tensor), and returns the grid's size, first[count].
// REQUIRES: 0 <= count <= TensorBlocks::kMaxTensors; max_blocks * count fits in an int.
inline int AssignTensorBlocks(const int64_t* n, int count, int threads, int64_t max_blocks,
                              TensorBlocks& blocks) {
  count = std::max(count, 0);
  blocks.count = count;
  blocks.first[0] = 0;
  for (int i = 0; i < count; ++i) {
    const int64_t wanted = std::min((n[i] + threads - 1) / threads, max_blocks);
    blocks.first[i + 1] = blocks.first[i] + static_cast<int>(std::max<int64_t>(wanted, 0));
  }
  return blocks.first[count];
}

}  // namespace usine::kernels_internal::cuda

#endif  // USINE_RUNTIME_KERNELS_CUDA_TENSOR_BLOCKS_H_
