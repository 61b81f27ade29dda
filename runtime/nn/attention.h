// Causal multi-head self-attention, GPT-2's: c_attn (Linear C -> 3C, q|k|v), scaled dot
// product per head with a causal mask and softmax, c_proj (Linear C -> C). Children "c_attn"
// and "c_proj". Module contract: module.h.
//
// Split over a tensor-parallel group (AttentionOptions::tp, Megatron-LM's): the heads are
// divided among the ranks; c_attn is a ColumnParallelLinear cut per q|k|v block (rank r holds
// the q, k and v columns of its heads), the heads run locally, and c_proj is a
// RowParallelLinear over their outputs: input and output whole on every rank, one all-reduce
// forward and one backward. Same parameter names; each rank holds its shard of the weights
// the unsplit layer draws. The split runs on the cpu only so far.
//
//   ASSIGN_OR_RETURN(auto attn, CausalSelfAttention::Create({.n_embd = 768, .n_head = 12}, init));
//   ASSIGN_OR_RETURN(Tensor y, attn->Forward(x));   // x [B, T, 768]
//   ASSIGN_OR_RETURN(Tensor dx, attn->Backward(dy));
#ifndef USINE_RUNTIME_NN_ATTENTION_H_
#define USINE_RUNTIME_NN_ATTENTION_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/internal/cpu_attention.h"
#include "runtime/nn/module.h"
#include "runtime/nn/sublayer.h"

namespace usine {

struct AttentionOptions {
  int64_t n_embd = 0;
  int64_t n_head = 0;              // REQUIRES: divides n_embd.
  double init_stddev = 0.02;       // c_attn's weights. Default: GPT-2's.
  double proj_init_stddev = 0.02;  // c_proj's (GPT-2: 0.02 / sqrt(2 * n_layer)).
  DType dtype = DType::kF32;       // f32 or f64. Default: f32.
  Device device = Device::Cpu();   // Default: the cpu.
  // The TP group; outlives the layer. REQUIRES: its size divides n_head. Default: null, no
  // split (as is a group of one).
  Communicator* tp = nullptr;
};

class CausalSelfAttention : public Sublayer {
 public:
  // Draws c_attn's weights, then c_proj's, from `init`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CausalSelfAttention>> Create(
      const AttentionOptions& options, ParameterInitializer& init);

  // x [B, T, C] -> y [B, T, C]. Saves q|k|v [B, T, 3C] and the probabilities [B, H, T, T].
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;

 private:
  explicit CausalSelfAttention(const AttentionOptions& options) : options_(options) {}
  void ClearSaved() override { saved_.reset(); }

  AttentionOptions options_;
  std::unique_ptr<Sublayer> c_attn_;  // Linear, or ColumnParallelLinear under TP.
  std::unique_ptr<Sublayer> c_proj_;  // Linear, or RowParallelLinear under TP.
  struct Saved {
    // cpu: c_attn's output [B, T, 3C]. CUDA: the same values with each head contiguous,
    // [3, B, H, T, D] (nn/internal/cuda_layers.h).
    Tensor qkv;
    Tensor probs;
    nn_internal::AttentionDims dims;
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_ATTENTION_H_
