// Embedding tables, parameter "weight" [rows, dim] ~ normal(0, init_stddev), weight-decayed:
// - Embedding maps token ids to rows (GPT-2's wte).
// - PositionEmbedding adds row t to position t of every sequence: learned positions (wpe).
// Module contract: module.h.
//
//   ASSIGN_OR_RETURN(auto wte, Embedding::Create({.rows = 50304, .dim = 768}, init));
//   ASSIGN_OR_RETURN(auto wpe, PositionEmbedding::Create({.rows = 1024, .dim = 768}, init));
//   ASSIGN_OR_RETURN(Tensor x, wte->Forward({batch.tokens, /*begin=*/0, /*length=*/T}));
//   RETURN_IF_ERROR(wpe->Forward(x));                    // x += wpe[0:T], in place
//   RETURN_IF_ERROR(wpe->Forward(y, /*first=*/T));       // y [B, 1, 768] += wpe[T]
//   ...
//   RETURN_IF_ERROR(wpe->Backward(dx));                  // dx passes through unchanged
//   RETURN_IF_ERROR(wte->Backward(dx));
#ifndef USINE_RUNTIME_NN_EMBEDDING_H_
#define USINE_RUNTIME_NN_EMBEDDING_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/init.h"
#include "runtime/nn/module.h"
#include "runtime/nn/tokens.h"

namespace usine {

struct EmbeddingOptions {
  int64_t rows = 0;  // Vocabulary (padded) or the longest sequence.
  int64_t dim = 0;
  double init_stddev = 0.02;      // Default: GPT-2's.
  DType dtype = DType::kF32;      // f32 or f64. Default: f32.
  Device device = Device::Cpu();  // Default: the cpu.
};

class Embedding : public Module {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Embedding>> Create(
      const EmbeddingOptions& options, ParameterInitializer& init);

  // ids [B, length] (a window of a token tensor) -> x [B, length, dim]. Saves the ids.
  // An id >= `valid_rows` (default: every row) is an error naming its position.
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const TokenWindow& ids, int64_t valid_rows = -1);
  // Adds dx [B, length, dim] into the rows' gradients.
  [[nodiscard]] absl::Status Backward(const Tensor& dx);

  Parameter& weight() { return *weight_; }

 private:
  explicit Embedding(const EmbeddingOptions& options) : options_(options) {}
  void ClearSaved() override { ids_.clear(); }

  EmbeddingOptions options_;
  Parameter* weight_ = nullptr;
  std::vector<int32_t> ids_;  // Saved by Forward, row by row.
  int64_t ids_batch_ = 0;
};

class PositionEmbedding : public Module {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PositionEmbedding>> Create(
      const EmbeddingOptions& options, ParameterInitializer& init);

  // x [B, T, dim] += weight[first : first + T], in place: x holds positions first, first + 1,
  // ... of its sequences (first > 0: the later positions a decoder appends, gpt_decoder.h).
  // Errors (InvalidArgument): first < 0 or first + T > rows, naming them.
  [[nodiscard]] absl::Status Forward(const Tensor& x, int64_t first = 0);
  // Adds the sum over the batch of dx [B, T, dim] into weight's gradient rows [0, T).
  [[nodiscard]] absl::Status Backward(const Tensor& dx);

 private:
  explicit PositionEmbedding(const EmbeddingOptions& options) : options_(options) {}
  absl::Status CheckInput(const Tensor& x, absl::string_view what) const;

  EmbeddingOptions options_;
  Parameter* weight_ = nullptr;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_EMBEDDING_H_
