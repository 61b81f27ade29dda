// A pre-norm transformer block, GPT-2's: x + attn(ln_1(x)), then + mlp(ln_2(.)). Children
// "ln_1", "attn", "ln_2", "mlp". Module contract: module.h.
//
// With a tensor-parallel group `tp` of more than one rank, attn and mlp are split over it
// (their `tp` options: attention.h, mlp.h): the same parameter names and full weights, each
// rank holding its shard; the LayerNorms are replicated.
//
// With `recompute`, Forward keeps only its input and drops its children's activations;
// Backward runs Forward again from that input first (the same kernels on the same data, so
// the gradients are bit-identical) -- activation memory traded for one more forward.
//
// ForwardCached is the decoding step (cpu and CUDA): attention against the keys and values of the
// earlier positions (attention.h's AttentionCache), the rest row by row as in Forward.
//
//   ASSIGN_OR_RETURN(auto block, Block::Create({.n_embd = 768, .n_head = 12}, init));
//   ASSIGN_OR_RETURN(Tensor y, block->Forward(x));
//   ASSIGN_OR_RETURN(Tensor dx, block->Backward(dy));
//
//   ASSIGN_OR_RETURN(AttentionCache cache, block->CreateCache(/*batch=*/1, /*capacity=*/1024));
//   ASSIGN_OR_RETURN(Tensor y, block->ForwardCached(x, cache));   // x [1, Tn, 768]
#ifndef USINE_RUNTIME_NN_BLOCK_H_
#define USINE_RUNTIME_NN_BLOCK_H_

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/init.h"
#include "runtime/nn/layer_norm.h"
#include "runtime/nn/mlp.h"
#include "runtime/nn/module.h"
#include "runtime/nn/sublayer.h"

namespace usine {

struct BlockOptions {
  int64_t n_embd = 0;
  int64_t n_head = 0;
  double init_stddev = 0.02;       // c_attn's and c_fc's weights. Default: GPT-2's.
  double proj_init_stddev = 0.02;  // Both c_proj's (GPT-2: 0.02 / sqrt(2 * n_layer)).
  bool recompute = false;          // Default: keep the activations (see above).
  DType dtype = DType::kF32;       // f32 or f64. Default: f32.
  Device device = Device::Cpu();   // Default: the cpu.
  Communicator* tp = nullptr;      // The TP group; outlives the block. Default: none.
  AttentionKernel attention = AttentionKernel::kUnfused;  // attention.h. Default: unfused.
};

class Block : public Module {
 public:
  // Draws attn's weights, then mlp's, from `init`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Block>> Create(const BlockOptions& options,
                                                                     ParameterInitializer& init);

  // x [B, T, C] -> [B, T, C].
  [[nodiscard]] absl::StatusOr<Tensor> Forward(const Tensor& x);
  [[nodiscard]] absl::StatusOr<Tensor> Backward(const Tensor& dy);

  // The attention's cache (CausalSelfAttention::CreateCache, its contract and errors).
  [[nodiscard]] absl::StatusOr<AttentionCache> CreateCache(int64_t batch, int64_t capacity) const;
  // x [B, Tn, C], the next Tn positions after those `cache` holds -> [B, Tn, C], their rows of
  // Forward over all of them (up to the order of sums); appends their keys and values to
  // `cache`. Keeps nothing for a Backward (and drops what a Forward saved). Contract and errors:
  // CausalSelfAttention::ForwardCached's; after an error past the attention, cache.length has
  // advanced by Tn.
  [[nodiscard]] absl::StatusOr<Tensor> ForwardCached(const Tensor& x, AttentionCache& cache);

 private:
  explicit Block(const BlockOptions& options) : options_(options) {}
  // Forward's computation; with a cache, ForwardCached's (the attention against it).
  absl::StatusOr<Tensor> ForwardChildren(const Tensor& x, AttentionCache* cache = nullptr);
  void ClearSaved() override { x_.reset(); }

  BlockOptions options_;
  std::unique_ptr<LayerNorm> ln_1_;
  std::unique_ptr<CausalSelfAttention> attn_;
  std::unique_ptr<LayerNorm> ln_2_;
  std::unique_ptr<Mlp> mlp_;  // Split over TP when options_.tp is.
  std::optional<Tensor> x_;   // The input, kept only with recompute.
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_BLOCK_H_
