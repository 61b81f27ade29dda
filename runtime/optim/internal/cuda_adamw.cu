// The AdamW kernel behind cuda_adamw.h. Each line mirrors AdamW::Step's cpu loop (adamw.cc);
// the _rn intrinsics keep nvcc from fusing a multiply and an add that the cpu rounds apart.
#include "runtime/kernels/cuda/tensor_blocks.h"
#include "runtime/optim/internal/cuda_adamw.h"

namespace usine::optim_internal::cuda {
namespace {

using ::usine::kernels_internal::cuda::AssignTensorBlocks;
using ::usine::kernels_internal::cuda::TensorBlocks;

constexpr int kThreads = 256;
// Blocks per tensor at most (a grid-stride loop covers the rest): with 132 SMs of an H100 and
// 8 blocks of 256 threads resident on each, 1024 blocks fill the device for a large tensor.
constexpr int64_t kMaxBlocksPerTensor = 1024;

// Block b of tensor y (tensor_blocks.h): tensor y's elements from b * kThreads on, with a
// stride of its blocks' width.
__global__ void AdamWKernel(AdamWStep s, AdamWTensors all, TensorBlocks blocks) {
  const int y = blocks.TensorOf(static_cast<int>(blockIdx.x));
  const AdamWTensor& t = all.tensors[y];
  const double decay = t.decay ? s.decay : 0.0;
  const int64_t stride = static_cast<int64_t>(blocks.Count(y)) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x - blocks.first[y]) * blockDim.x + threadIdx.x;
       i < t.n; i += stride) {
    const double g = __fmul_rn(s.grad_scale, t.grad[i]);  // As the Scale kernel rounds it.
    // mi = b1 * m + (1 - b1) * g;  vi = b2 * v + (1 - b2) * g * g
    const double mi = __dadd_rn(__dmul_rn(s.beta1, t.exp_avg[i]), __dmul_rn(1 - s.beta1, g));
    const double vi =
        __dadd_rn(__dmul_rn(s.beta2, t.exp_avg_sq[i]), __dmul_rn(__dmul_rn(1 - s.beta2, g), g));
    // x = value - decay * value
    const double x = __dsub_rn(t.value[i], __dmul_rn(decay, t.value[i]));
    // value = x - lr * (mi / c1) / (sqrt(vi / c2) + eps)
    const double step = __ddiv_rn(__dmul_rn(s.lr, __ddiv_rn(mi, s.correction1)),
                                  __dadd_rn(__dsqrt_rn(__ddiv_rn(vi, s.correction2)), s.eps));
    t.value[i] = static_cast<float>(__dsub_rn(x, step));
    t.exp_avg[i] = static_cast<float>(mi);
    t.exp_avg_sq[i] = static_cast<float>(vi);
  }
}

}  // namespace

cudaError_t LaunchAdamW(const AdamWStep& step, const AdamWTensors& tensors, cudaStream_t stream) {
  static_assert(kAdamWTensorsPerLaunch <= TensorBlocks::kMaxTensors);
  int64_t n[kAdamWTensorsPerLaunch];
  for (int i = 0; i < tensors.count; ++i) n[i] = tensors.tensors[i].n;
  TensorBlocks blocks;
  const int grid = AssignTensorBlocks(n, tensors.count, kThreads, kMaxBlocksPerTensor, blocks);
  if (grid == 0) return cudaSuccess;
  AdamWKernel<<<grid, kThreads, 0, stream>>>(step, tensors, blocks);
  return cudaGetLastError();
}

}  // namespace usine::optim_internal::cuda
