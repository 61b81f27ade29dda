// GPT-2's feed-forward block (mlp.h) split over a tensor-parallel group (Megatron-LM's):
// c_fc is a ColumnParallelLinear (rank r computes hidden units [r 4C / tp, (r + 1) 4C / tp)),
// GELU runs on those units alone, and c_proj is a RowParallelLinear over them: input and
// output whole on every rank, one all-reduce forward (c_proj) and one backward (c_fc's input
// gradient). Children "c_fc", "gelu", "c_proj" with Mlp's parameter names, each rank holding
// its shard of the full weights Mlp draws from the same ParameterInitializer. Module
// contract: module.h.
//
//   ASSIGN_OR_RETURN(auto mlp, ParallelMlp::Create({.n_embd = 768, .tp = &tp_comm}, init));
//   ASSIGN_OR_RETURN(Tensor y, mlp->Forward(x));   // a collective
//   ASSIGN_OR_RETURN(Tensor dx, mlp->Backward(dy));
#ifndef USINE_RUNTIME_NN_PARALLEL_MLP_H_
#define USINE_RUNTIME_NN_PARALLEL_MLP_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/column_parallel_linear.h"
#include "runtime/nn/gelu.h"
#include "runtime/nn/init.h"
#include "runtime/nn/row_parallel_linear.h"
#include "runtime/nn/sublayer.h"

namespace usine {

struct ParallelMlpOptions {
  int64_t n_embd = 0;              // REQUIRES: 4 n_embd is a multiple of the TP size.
  double init_stddev = 0.02;       // c_fc's weights. Default: GPT-2's.
  double proj_init_stddev = 0.02;  // c_proj's (GPT-2: 0.02 / sqrt(2 * n_layer)).
  DType dtype = DType::kF32;       // f32 or f64. Default: f32.
  Device device = Device::Cpu();   // Default: the cpu.
  Communicator* tp = nullptr;      // The TP group; outlives the layer. Default: a group of one.
};

class ParallelMlp : public Sublayer {
 public:
  // Draws c_fc's full weights, then c_proj's, from `init`, as Mlp does.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ParallelMlp>> Create(
      const ParallelMlpOptions& options, ParameterInitializer& init);

  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x) override;
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy) override;

 private:
  explicit ParallelMlp(DType dtype) : gelu_(dtype) {}

  std::unique_ptr<ColumnParallelLinear> c_fc_;
  Gelu gelu_;
  std::unique_ptr<RowParallelLinear> c_proj_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_PARALLEL_MLP_H_
