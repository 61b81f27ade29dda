// The AdamW kernel (cuda_adamw.h) on the CPU, under the CUDA emulator
// (tests/testing/cuda_emulator/README.md): one launch over tensors of many sizes (one element,
// none, fewer than a block, more than a launch's blocks cover without striding), weight decay on
// some, a gradient scale. Checked: every element of every tensor gets the bits of the cpu's
// update (adamw_update.cc's formula, written out below in the same order of operations): the
// kernel's rounded operations, its tensor of each block row and its grid-stride loop.
#include <bit>
#include <cmath>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"

#include "runtime/optim/internal/cuda_adamw.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/emulated_kernel_test.h"

namespace usine {
namespace {

namespace oc = optim_internal::cuda;
using testing::cuda_emulator::DeviceArray;
using testing::cuda_emulator::EmulatedKernelTest;

struct HostTensor {
  std::vector<float> grad, value, exp_avg, exp_avg_sq;
};

// adamw_update.cc's AdamWUpdate for one element, operation by operation.
void UpdateOnTheCpu(const oc::AdamWStep& s, bool decay, float grad, float& value, float& exp_avg,
                    float& exp_avg_sq) {
  const double g = s.grad_scale * grad;
  const double m = s.beta1 * exp_avg + (1 - s.beta1) * g;
  const double v = s.beta2 * exp_avg_sq + (1 - s.beta2) * g * g;
  const double x = value - (decay ? s.decay : 0.0) * value;
  value =
      static_cast<float>(x - s.lr * (m / s.correction1) / (std::sqrt(v / s.correction2) + s.eps));
  exp_avg = static_cast<float>(m);
  exp_avg_sq = static_cast<float>(v);
}

using AdamWEmulation = EmulatedKernelTest<>;

TEST_F(AdamWEmulation, OneLaunchUpdatesEveryTensorAsTheCpuBitForBit) {
  // 300,000 elements need more than the kernel's 1,024 blocks of 256 threads: a grid-stride loop.
  const int64_t sizes[] = {1, 300000, 0, 768, 257, 3, 4096};
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<HostTensor> host;
  std::deque<DeviceArray<float>> arrays;  // Not movable: a deque constructs them in place.
  oc::AdamWTensors tensors;
  for (const int64_t n : sizes) {
    HostTensor h;
    for (int64_t i = 0; i < n; ++i) {
      h.grad.push_back(normal(rng));
      h.value.push_back(normal(rng));
      h.exp_avg.push_back(0.1f * normal(rng));
      h.exp_avg_sq.push_back(std::fabs(0.01f * normal(rng)));
    }
    oc::AdamWTensor& t = tensors.tensors[tensors.count++];
    for (const std::vector<float>* v : {&h.grad, &h.value, &h.exp_avg, &h.exp_avg_sq}) {
      arrays.emplace_back(v->size(), "adamw");
      std::copy(v->begin(), v->end(), arrays.back().data());
    }
    const size_t a = arrays.size() - 4;
    t = {arrays[a].data(),    arrays[a + 1].data(), arrays[a + 2].data(), arrays[a + 3].data(), n,
         /*decay=*/n % 2 == 0};
    host.push_back(std::move(h));
  }
  const oc::AdamWStep step{.lr = 6e-4,
                           .beta1 = 0.9,
                           .beta2 = 0.95,
                           .eps = 1e-8,
                           .decay = 6e-4 * 0.1,
                           .correction1 = 1 - std::pow(0.9, 3),
                           .correction2 = 1 - std::pow(0.95, 3),
                           .grad_scale = 0.37f};
  ASSERT_EQ(oc::LaunchAdamW(step, tensors, nullptr), cudaSuccess);
  for (int k = 0; k < tensors.count; ++k) {
    const oc::AdamWTensor& t = tensors.tensors[k];
    HostTensor& h = host[k];
    for (int64_t i = 0; i < t.n; ++i) {
      UpdateOnTheCpu(step, t.decay, h.grad[i], h.value[i], h.exp_avg[i], h.exp_avg_sq[i]);
      ASSERT_EQ(std::bit_cast<uint32_t>(t.value[i]), std::bit_cast<uint32_t>(h.value[i]))
          << "tensor " << k << " element " << i;
      ASSERT_EQ(std::bit_cast<uint32_t>(t.exp_avg[i]), std::bit_cast<uint32_t>(h.exp_avg[i]));
      ASSERT_EQ(std::bit_cast<uint32_t>(t.exp_avg_sq[i]), std::bit_cast<uint32_t>(h.exp_avg_sq[i]));
    }
  }
}

}  // namespace
}  // namespace usine
