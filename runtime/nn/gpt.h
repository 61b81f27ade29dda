// GPT-2: token and learned position embeddings, n_layer pre-norm blocks, a final LayerNorm and
// an output projection tied to the token embedding (logits = x wte^T), with the softmax
// cross-entropy fused over the logits. Parameter names are Hugging Face's without the
// "transformer." prefix: "wte.weight", "wpe.weight", "h.0.ln_1.weight",
// "h.0.attn.c_attn.weight", ..., "ln_f.bias" (linear weights are [out, in], the transpose of
// HF's Conv1D). wte has padded_vocab() rows; the padding rows start at zero and, since no id
// reaches them and the loss never predicts them, stay zero but for weight decay.
//
// Initialisation (GPT-2's): weights ~ normal(0, 0.02), the residual projections (attn.c_proj,
// mlp.c_proj) ~ normal(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weights 1; all drawn
// from one Philox stream of `seed` (ParameterInitializer), in parameter order.
//
//   ASSIGN_OR_RETURN(GptConfig config, GptConfigNamed("gpt2"));
//   ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = config, .seed = 1337}));
//   ASSIGN_OR_RETURN(Batch batch, stream->Next());                // tokens [B, T+1], u16
//   ASSIGN_OR_RETURN(double loss, model->Forward(batch.tokens));  // inputs [0, T), targets [1, T]
//   RETURN_IF_ERROR(model->Backward());                           // adds into the gradients
//
// Tensor parallelism (GptOptions::tp, a group of more than one rank; Megatron-LM's layout):
// the blocks' attention heads and MLP units are split over the group (block.h), wte is a
// VocabParallelEmbedding (each rank a contiguous slice of the padded vocabulary) and the tied
// output projection gives each rank the logits of its slice, for a vocab-parallel
// cross-entropy. Parameter names stay GPT-2's; each rank holds its shard
// (Parameter::split), cut from the same full weights the seed gives without TP, so runs at
// any TP size start from the same model. Forward and Backward are then collectives over the
// group, and every rank gets the same loss.
//
// Incremental decoding with a key/value cache: GptDecoder (gpt_decoder.h), a friend that runs
// these layers on its own caches.
//
// Module contract: module.h and token_model.h. Thread-compatible.
#ifndef USINE_RUNTIME_NN_GPT_H_
#define USINE_RUNTIME_NN_GPT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"
#include "runtime/nn/block.h"
#include "runtime/nn/cross_entropy.h"
#include "runtime/nn/embedding.h"
#include "runtime/nn/gpt_config.h"
#include "runtime/nn/layer_norm.h"
#include "runtime/nn/module.h"
#include "runtime/nn/token_model.h"
#include "runtime/nn/tokens.h"
#include "runtime/nn/vocab_parallel_cross_entropy.h"
#include "runtime/nn/vocab_parallel_embedding.h"

namespace usine {

struct GptOptions {
  GptConfig config;
  uint64_t seed = 0;  // Of the initial weights.
  // false: the weights are left unset (ParameterInitializer draws nothing), for a model whose
  // weights are read next, as LoadGptCheckpoint's are. Default: true.
  bool initialize = true;
  // false: the parameters get no gradients (ParameterInitOptions::gradients), for a model that
  // only runs forward, as LoadGptCheckpoint's: Backward, ZeroGrad and the optimizers refuse
  // it, and Forward keeps one block's activations at a time. Default: true.
  bool gradients = true;
  bool recompute = false;         // Every block recomputes its activations (block.h).
  DType dtype = DType::kF32;      // f32 or f64. Default: f32.
  Device device = Device::Cpu();  // Default: the cpu. CUDA devices compute in f32 only.
  // The tensor-parallel group (see above); it outlives the model. REQUIRES: its size divides
  // n_head and padded_vocab(). Default: null, no tensor parallelism (as is a group of one).
  Communicator* tp = nullptr;
  // The blocks' attention kernel on a CUDA device (attention.h; kFlash is refused on the cpu).
  // Default: kUnfused.
  AttentionKernel attention = AttentionKernel::kUnfused;
};

class Gpt : public TokenModel {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Gpt>> Create(const GptOptions& options);

  // The mean cross-entropy of predicting tokens[:, 1:] from tokens[:, :-1]. tokens: [B, T+1]
  // u16 or i32 ids < vocab_size, 1 <= T <= block_size, on the cpu (a DataStream batch as it
  // comes) or on any CUDA device (then first copied to the host, where the ids are checked).
  // Saves the activations for Backward, and the logits' gradient: the loss is the model's last
  // operation, so the forward pass writes it (SoftmaxCrossEntropy::ForwardWithGradient) and
  // Backward's dloss scales the products that read it. On a CUDA model the work runs on the
  // device's default stream and the call returns once the loss has reached the host.
  [[nodiscard]] absl::StatusOr<double> Forward(const Tensor& tokens) override;
  // Forward's loss, keeping one block's activations at a time and none after it.
  [[nodiscard]] absl::StatusOr<double> InferenceLoss(const Tensor& tokens) override;
  // Adds the gradients of dloss * (the last Forward's loss) into the parameters' gradients
  // (dloss = 1 / micro-batches averages over gradient accumulation), then drops the
  // activations. `on_final` (may be null) is told of each child ("ln_f", "h.<n_layer - 1>",
  // ..., "h.0", "wpe", "wte", in that order) as soon as its gradients are final.
  [[nodiscard]] absl::Status Backward(double dloss = 1.0,
                                      const GradientsFinal& on_final = nullptr) override;

  // The logits of the next token after each position of `inputs` ([B, T] u16 or i32 ids,
  // 1 <= T <= block_size, cpu or CUDA): [B, T, vocab_size] in the model's dtype on the cpu
  // (the padding columns left out; with TP, gathered from the group, a collective). Keeps no
  // activations: for evaluation and sampling, not for training.
  [[nodiscard]] absl::StatusOr<Tensor> Logits(const Tensor& inputs);
  // The logits of the token after each row of `inputs`: [B, vocab_size], Logits(inputs)[:, T-1]
  // (the same inputs and contract), with the output projection and the gather done for those
  // B positions only: what sampling needs.
  [[nodiscard]] absl::StatusOr<Tensor> NextTokenLogits(const Tensor& inputs);

  const GptConfig& config() const { return options_.config; }
  Device device() const { return options_.device; }
  // The tensor-parallel group, or null without tensor parallelism.
  Communicator* tp() const override { return tp_wte_ != nullptr ? options_.tp : nullptr; }

 private:
  explicit Gpt(const GptOptions& options)
      : options_(options), cross_entropy_(options.config.vocab_size) {}
  void ClearSaved() override;
  friend class GptDecoder;

  absl::Status CreateTokenEmbedding(ParameterInitializer& init);
  // Forward's loss; `keep`: its activations are saved for Backward.
  absl::StatusOr<double> Loss(const Tensor& tokens, bool keep);
  // The token embeddings of `inputs`, [B, T, C] (a collective with TP), saving the ids.
  absl::StatusOr<Tensor> EmbedTokens(const TokenWindow& inputs);
  // Embeddings, blocks and ln_f: ln_f's output, [B*T, C]. `keep`: their activations are saved
  // for Backward; else each block's are dropped once it has its output.
  absl::StatusOr<Tensor> ForwardHidden(const TokenWindow& inputs, bool keep);
  // This rank's logits of the rows of `hidden` ([N, C]): [N, padded_vocab / tp] in `dtype`
  // (the layers' or ProductOperandDType's), the product with `table`, the token embedding (this
  // rank's slice) or its ProductOperand.
  absl::StatusOr<Tensor> ProjectToVocab(const Tensor& hidden, const Tensor& table, DType dtype);
  // ForwardHidden of Logits' `inputs` (checked; errors name `what`), keeping no activations.
  absl::StatusOr<Tensor> InferenceHidden(const Tensor& inputs, absl::string_view what);
  // The host logits [N, vocab_size] from every TP rank's ProjectToVocab rows (a collective
  // with TP), the padding columns left out.
  absl::StatusOr<Tensor> GatherVocab(const Tensor& local);
  // The host logits [B, vocab_size] of the last of each sequence's `seq` rows of `hidden`
  // ([B*seq, C]): ProjectToVocab and GatherVocab of those B rows only.
  absl::StatusOr<Tensor> LastPositionLogits(const Tensor& hidden, int64_t batch, int64_t seq);
  Parameter& wte_weight() { return tp_wte_ != nullptr ? tp_wte_->weight() : wte_->weight(); }

  GptOptions options_;
  std::unique_ptr<Embedding> wte_;  // Without tensor parallelism; else:
  std::unique_ptr<VocabParallelEmbedding> tp_wte_;
  std::unique_ptr<PositionEmbedding> wpe_;
  std::vector<std::unique_ptr<Block>> h_;
  std::unique_ptr<LayerNorm> ln_f_;
  SoftmaxCrossEntropy cross_entropy_;
  std::optional<VocabParallelCrossEntropy> tp_cross_entropy_;  // With tensor parallelism.
  // What the output projection's backward needs; the two operands as the products read them
  // (ProductOperand: cast once a step under MatmulPrecision::kBf16 on CUDA).
  struct Saved {
    Tensor xf;     // ln_f's output, [B, T, C].
    Tensor table;  // The token embedding (this rank's slice).
    // d(loss)/dlogits, [B*T, padded_vocab / tp]: written by the forward pass (the loss is the
    // last operation), in the products' operand dtype (ProductOperandBuffer).
    Tensor dlogits;
  };
  std::optional<Saved> saved_;
};

}  // namespace usine

#endif  // USINE_RUNTIME_NN_GPT_H_
