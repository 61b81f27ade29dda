// The AdamW update (adamw.h's formula) on a CUDA device: one thread per element, computed in
// double with explicitly rounded operations in the cpu's order, stored in f32, so that the
// CUDA and cpu updates agree bit for bit (std::sqrt and __dsqrt_rn are both correctly
// rounded). Work is enqueued on `stream` (nullptr: the legacy default stream) of the current
// device; the result is the launch error. n == 0 enqueues nothing. Only for translation units
// compiled with the CUDA toolkit.
#ifndef USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_H_
#define USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_H_

#include <cstdint>

#include <cuda_runtime_api.h>

namespace usine::optim_internal::cuda {

struct AdamWStep {
  double lr = 0;
  double beta1 = 0, beta2 = 0, eps = 0;
  double decay = 0;  // lr * weight_decay, or 0 for a parameter without decay.
  double correction1 = 0, correction2 = 0;  // 1 - beta^t.
};

cudaError_t LaunchAdamW(const AdamWStep& step, const float* grad, int64_t n, float* value,
                        float* exp_avg, float* exp_avg_sq, cudaStream_t stream);

}  // namespace usine::optim_internal::cuda

#endif  // USINE_RUNTIME_OPTIM_INTERNAL_CUDA_ADAMW_H_
