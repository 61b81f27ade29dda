// Causal self-attention (attention.h) with its heads split over a tensor-parallel group
// (Megatron-LM's): c_attn is a ColumnParallelLinear whose q, k and v blocks are each split by
// heads (rank r computes q|k|v of heads [r H / tp, (r + 1) H / tp)), attention runs on those
// heads alone, and c_proj is a RowParallelLinear over their outputs, so the block's input and
// output are whole on every rank and the forward pass costs one all-reduce (c_proj), the
// backward one (c_attn's input gradient). Children "c_attn" and "c_proj" with
// CausalSelfAttention's parameter names, each rank holding its shard; the full weights are
// those CausalSelfAttention draws from the same ParameterInitializer. Module contract:
// module.h.
//
//   ASSIGN_OR_RETURN(auto attn, ParallelSelfAttention::Create(
//       {.n_embd = 768, .n_head = 12, .tp = &tp_comm}, init));
//   ASSIGN_OR_RETURN(Tensor y, attn->Forward(x));   // x, y [B, T, 768]; a collective
//   ASSIGN_OR_RETURN(Tensor dx, attn->Backward(dy));
#ifndef USINE_RUNTIME_NN_PARALLEL_ATTENTION_H_
#define USINE_RUNTIME_NN_PARALLEL_ATTENTION_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/column_parallel_linear.h"
#include "runtime/nn/init.h"
#include "runtime/nn/row_parallel_linear.h"
#include "runtime/nn/sublayer.h"

namespace usine {

struct ParallelAttentionOptions {
  int64_t n_embd = 0;
  int64_t n_head = 0;              // REQUIRES: divides n_embd; a multiple of the TP size.
  double init_stddev = 0.02;       // c_attn's weights. Default: GPT-2's.
  double proj_init_stddev = 0.02;  // c_proj's (GPT-2: 0.02 / sqrt(2 * n_layer)).
  DType dtype = DType::kF32;       // f32 or f64. Default: f32.
  Device device = Device::Cpu();   // Default: the cpu.
  Communicator* tp = nullptr;      // The TP group; outlives the layer. Default: a group of one.
};

class ParallelSelfAttention : public Sublayer {
 public:
  // Draws c_attn's full weights, then c_proj's, from `init`, as CausalSelfAttention does.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ParallelSelfAttention>> Create(
      const ParallelAttentionOptions& options, ParameterInitializer& init);

  // x [B, T, C] -> y [B, T, C], whole on every rank. Saves this rank's q|k|v and
  // probabilities.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;

 private:
  explicit ParallelSelfAttention(const ParallelAttentionOptions& options) : options_(options) {}
  void ClearSaved() override { saved_.reset(); }
  int64_t local_heads() const;

  ParallelAttentionOptions options_;
  std::unique_ptr<ColumnParallelLinear> c_attn_;
  std::unique_ptr<RowParallelLinear> c_proj_;
  struct Saved {
    Tensor qkv, probs;  // [B, T, 3C / tp], [B, H / tp, T, T].
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_PARALLEL_ATTENTION_H_
