// A token embedding (embedding.h's Embedding) split by vocabulary over a tensor-parallel
// group (Megatron-LM's VocabParallelEmbedding): each rank holds a contiguous slice of rows
// [rank * rows / tp, (rank + 1) * rows / tp) of the padded table, looks up the ids in its slice
// and gives zero for the others, and the all-reduce (sum) of those partial embeddings is the
// whole embedding on every rank. Backward needs no communication: each rank adds dx into its
// own rows. Parameter "weight" [rows / tp, dim] (Parameter::split along rows), drawn as the
// full table (the same counters as Embedding) with the padding rows [valid_rows, rows) zeroed.
// Gpt ties its output projection to this table (logits of this rank's vocabulary slice,
// vocab_parallel_cross_entropy.h). Module contract: module.h.
//
//   ASSIGN_OR_RETURN(auto wte, VocabParallelEmbedding::Create(
//       {.rows = 50304, .valid_rows = 50257, .dim = 768, .tp = &tp_comm}, init));
//   ASSIGN_OR_RETURN(Tensor x, wte->Forward({tokens, /*begin=*/0, /*length=*/T}));  // collective
//   RETURN_IF_ERROR(wte->Backward(dx));
#ifndef USINE_RUNTIME_NN_VOCAB_PARALLEL_EMBEDDING_H_
#define USINE_RUNTIME_NN_VOCAB_PARALLEL_EMBEDDING_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/module.h"
#include "runtime/nn/tokens.h"

namespace usine {

struct VocabParallelEmbeddingOptions {
  int64_t rows = 0;         // The padded vocabulary. REQUIRES: a multiple of the TP size.
  int64_t valid_rows = -1;  // Ids are < valid_rows; rows past it are padding (kept at 0).
                            // Default (-1): every row is a token.
  int64_t dim = 0;
  double init_stddev = 0.02;      // Default: GPT-2's.
  DType dtype = DType::kF32;      // f32 or f64 (f32 only on CUDA). Default: f32.
  Device device = Device::Cpu();  // Default: the cpu.
  // The TP group; must outlive the layer. Default: null, a group of one.
  Communicator* tp = nullptr;
};

class VocabParallelEmbedding : public Module {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<VocabParallelEmbedding>> Create(
      const VocabParallelEmbeddingOptions& options, ParameterInitializer& init);

  // ids [B, length] -> x [B, length, dim], the same on every rank (a collective). An id >=
  // valid_rows is an error naming its position. Saves the ids.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const TokenWindow& ids);
  // Adds dx [B, length, dim] into the gradients of this rank's rows.
  [[nodiscard]] absl::Status Backward(const Tensor& dx);

  Parameter& weight() { return *weight_; }
  // The first row (token id) of this rank's slice, and the slice's row count.
  int64_t row_begin() const;
  int64_t local_rows() const;

 private:
  explicit VocabParallelEmbedding(const VocabParallelEmbeddingOptions& options)
      : options_(options) {}
  void ClearSaved() override { ids_.clear(); }

  VocabParallelEmbeddingOptions options_;
  Parameter* weight_ = nullptr;
  std::vector<int32_t> ids_;  // Saved by Forward, row by row.
  int64_t ids_batch_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_VOCAB_PARALLEL_EMBEDDING_H_
