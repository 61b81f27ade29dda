// Deterministic parameter initialisation from one Philox stream: each tensor drawn takes the
// next numel() counters of (seed, offset), so a model's initial weights depend only on the
// seed and the order its layers draw in (not on the device or the thread count).
//
//   ParameterInitializer init(/*seed=*/1337);
//   RETURN_IF_ERROR(init.Normal(weight, 0.02));   // counters [0, n)
//   RETURN_IF_ERROR(init.Normal(other, 0.02));    // counters [n, n + m)
//
// Not thread-safe (it advances an offset).
#ifndef USINE_RUNTIME_NN_INIT_H_
#define USINE_RUNTIME_NN_INIT_H_

#include <cstdint>

#include "absl/status/status.h"

#include "runtime/core/tensor.h"

namespace usine {

// What a model's layers do with the parameters they create. Default: draw them, with gradients.
struct ParameterInitOptions {
  // false: Normal leaves every tensor as it is (the offsets advance all the same): for a model
  // whose weights are read next, as LoadGptCheckpoint's are.
  bool draw = true;
  // false: the layers create their parameters without gradients (Module::AddParameter), for a
  // model that only runs forward (evaluation, sampling): half the memory of its parameters.
  bool gradients = true;
};

class ParameterInitializer {
 public:
  explicit ParameterInitializer(uint64_t seed, ParameterInitOptions options = {})
      : seed_(seed), options_(options) {}

  // t <- normal(0, stddev) draws (made in f32 by RandomNormal; widened exactly for f64).
  // REQUIRES: t is f32, bf16, f16, or f64 on the cpu.
  [[nodiscard]] absl::Status Normal(const Tensor& t, double stddev);

  uint64_t offset() const { return offset_; }
  // Whether the layers give their parameters gradients (the `gradient` of AddParameter).
  bool gradients() const { return options_.gradients; }

 private:
  // t's draws from offset_.
  absl::Status Draw(const Tensor& t, double stddev) const;

  uint64_t seed_;
  ParameterInitOptions options_;
  uint64_t offset_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_INIT_H_
