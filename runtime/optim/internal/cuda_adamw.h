// The AdamW update (adamw.h's formula) on a CUDA device: one thread per element, computed in
// double with explicitly rounded operations in the cpu's order, stored in f32, so that the
// CUDA and cpu updates agree bit for bit (std::sqrt and __dsqrt_rn are both correctly
// rounded). Up to kAdamWTensorsPerLaunch parameters go in one launch: a model's parameters
// are many and most are small (GPT-2 124M has 148, 98 of them biases and LayerNorm vectors),
// and a launch each made the update wait on the host's launches rather than on memory.
// Work is enqueued on `stream` (nullptr: the legacy default stream) of the current device;
// the result is the launch error. Only for translation units compiled with the CUDA toolkit.
#ifndef USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_H_
#define USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::optim_internal::cuda {

struct AdamWStep {
  double lr = 0;
  double beta1 = 0, beta2 = 0, eps = 0;
  double decay = 0;                         // lr * weight_decay, applied to the tensors that decay.
  double correction1 = 0, correction2 = 0;  // 1 - beta^t.
  float grad_scale = 1.0f;                  // Each gradient is read times this, in f32.
};

// One parameter's arrays, of n elements each, on the current device.
struct AdamWTensor {
  const float* grad = nullptr;
  float* value = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  int64_t n = 0;
  bool decay = false;  // Whether AdamWStep::decay applies (weights: yes; biases, norms: no).
};

// The tensors of one launch: passed by value as a kernel argument (about 2 KB, within the
// 4 KB that every CUDA version takes).
inline constexpr int kAdamWTensorsPerLaunch = 48;
struct AdamWTensors {
  AdamWTensor tensors[kAdamWTensorsPerLaunch];
  int count = 0;
};

// Updates tensors[0, count) in one launch. count == 0, or tensors of n == 0, enqueue nothing
// for them. REQUIRES: count <= kAdamWTensorsPerLaunch.
cudaError_t LaunchAdamW(const AdamWStep& step, const AdamWTensors& tensors, cudaStream_t stream);

}  // namespace usine::optim_internal::cuda

#endif  // USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_H_
