// The AdamW kernel behind cuda_adamw.h. Each line mirrors AdamW::Step's cpu loop (adamw.cc);
// the _rn intrinsics keep nvcc from fusing a multiply and an add that the cpu rounds apart.
#include <algorithm>

#include "runtime/optim/internal/cuda_adamw.h"

namespace usine::optim_internal::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;

__global__ void AdamWKernel(AdamWStep s, const float* grad, int64_t n, float* value, float* m,
                            float* v) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const double g = grad[i];
    // mi = b1 * m + (1 - b1) * g;  vi = b2 * v + (1 - b2) * g * g
    const double mi = __dadd_rn(__dmul_rn(s.beta1, m[i]), __dmul_rn(1 - s.beta1, g));
    const double vi = __dadd_rn(__dmul_rn(s.beta2, v[i]), __dmul_rn(__dmul_rn(1 - s.beta2, g), g));
    // x = value - decay * value
    const double x = __dsub_rn(value[i], __dmul_rn(s.decay, value[i]));
    // value = x - lr * (mi / c1) / (sqrt(vi / c2) + eps)
    const double step = __ddiv_rn(__dmul_rn(s.lr, __ddiv_rn(mi, s.correction1)),
                                  __dadd_rn(__dsqrt_rn(__ddiv_rn(vi, s.correction2)), s.eps));
    value[i] = static_cast<float>(__dsub_rn(x, step));
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

}  // namespace

cudaError_t LaunchAdamW(const AdamWStep& step, const float* grad, int64_t n, float* value,
                        float* exp_avg, float* exp_avg_sq, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(std::min((n + kThreads - 1) / kThreads, kMaxBlocks));
  AdamWKernel<<<blocks, kThreads, 0, stream>>>(step, grad, n, value, exp_avg, exp_avg_sq);
  return cudaGetLastError();
}

}  // namespace usine::optim_internal::cuda
