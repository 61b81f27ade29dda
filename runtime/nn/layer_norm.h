// Layer normalisation over the last dimension: y = (x - mean) / sqrt(var + eps) * weight +
// bias, parameters "weight" (init 1) and "bias" (init 0), neither weight-decayed.
// Module contract: module.h.
//
//   ASSIGN_OR_RETURN(auto ln, LayerNorm::Create({.dim = 768}));
//   ASSIGN_OR_RETURN(Tensor y, ln->Forward(x));       // x [B, T, 768]
//   ASSIGN_OR_RETURN(Tensor dx, ln->Backward(dy));
//   // In a residual block, x's gradient joined with the skip connection's in the same pass:
//   ASSIGN_OR_RETURN(Tensor dx_total, ln->BackwardWithSkip(dy, dresidual));
#ifndef USINE_RUNTIME_NN_LAYER_NORM_H_
#define USINE_RUNTIME_NN_LAYER_NORM_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"

#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine {

struct LayerNormOptions {
  int64_t dim = 0;
  double eps = 1e-5;              // Default: 1e-5, GPT-2's.
  DType dtype = DType::kF32;      // f32 or f64. Default: f32.
  Device device = Device::Cpu();  // Default: the cpu.
  bool gradients = true;          // ParameterInitOptions::gradients. Default: true.
};

class LayerNorm : public Module {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LayerNorm>> Create(
      const LayerNormOptions& options);

  // x [..., dim] -> y, same shape. Saves x and each row's mean and 1/stddev.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x);
  // Forward's output as the next product reads it, ProductOperand(Forward(x)) (matmul.h): on
  // CUDA under bf16 products written in bf16 at once, with no f32 pass and cast in between;
  // elsewhere Forward's. For a LayerNorm whose only reader is a product, as in a block.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardOperand(const Tensor& x);
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy);
  // Backward(dy) + skip, the same bits: the gradient of an x that a residual connection also
  // reads, skip being the gradient that reaches x along it. On CUDA one pass writes it, with no
  // pass of its own for the sum. skip: x's shape, in the layer's dtype and on its device.
  [[nodiscard]] absl::StatusOr<Tensor> BackwardWithSkip(const Tensor& dy, const Tensor& skip);

 private:
  explicit LayerNorm(const LayerNormOptions& options) : options_(options) {}
  void ClearSaved() override { saved_.reset(); }
  // Forward with y in `y_dtype`: the layer's, or bf16 on CUDA.
  absl::StatusOr<Tensor> ForwardTo(const Tensor& x, DType y_dtype);
  // Backward, plus `skip` unless it is undefined.
  absl::StatusOr<Tensor> BackwardTo(const Tensor& dy, const Tensor& skip);

  LayerNormOptions options_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  struct Saved {
    Tensor x, mean, rstd;
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_LAYER_NORM_H_
