#include "runtime/nn/gpt.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/internal/real_types.h"
#include "runtime/nn/tensor_parallel.h"

namespace usine {

absl::StatusOr<std::unique_ptr<Gpt>> Gpt::Create(const GptOptions& options) {
  const GptConfig& c = options.config;
  RETURN_IF_ERROR(c.Validate());
  RETURN_IF_ERROR(nn_internal::CheckLayerPlacement(options.dtype, options.device, "Gpt"));
  auto gpt = std::unique_ptr<Gpt>(new Gpt(options));
  ParameterInitializer init(options.seed,
                            {.draw = options.initialize, .gradients = options.gradients});
  RETURN_IF_ERROR(gpt->CreateTokenEmbedding(init));
  ASSIGN_OR_RETURN(
      gpt->wpe_,
      PositionEmbedding::Create(
          {.rows = c.block_size, .dim = c.n_embd, .dtype = options.dtype, .device = options.device},
          init));
  if (gpt->wte_ != nullptr) {
    gpt->AddChild("wte", gpt->wte_.get());
  } else {
    gpt->AddChild("wte", gpt->tp_wte_.get());
  }
  gpt->AddChild("wpe", gpt->wpe_.get());
  const double proj_stddev = 0.02 / std::sqrt(2.0 * static_cast<double>(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    ASSIGN_OR_RETURN(auto block, Block::Create({.n_embd = c.n_embd,
                                                .n_head = c.n_head,
                                                .proj_init_stddev = proj_stddev,
                                                .recompute = options.recompute,
                                                .dtype = options.dtype,
                                                .device = options.device,
                                                .tp = gpt->tp(),
                                                .attention = options.attention},
                                               init));
    gpt->AddChild(absl::StrCat("h.", i), block.get());
    gpt->h_.push_back(std::move(block));
  }
  ASSIGN_OR_RETURN(gpt->ln_f_, LayerNorm::Create({.dim = c.n_embd,
                                                  .dtype = options.dtype,
                                                  .device = options.device,
                                                  .gradients = options.gradients}));
  gpt->AddChild("ln_f", gpt->ln_f_.get());
  return gpt;
}

absl::Status Gpt::CreateTokenEmbedding(ParameterInitializer& init) {
  const GptConfig& c = options_.config;
  if (TensorParallelSize(options_.tp) == 1) {
    ASSIGN_OR_RETURN(wte_, Embedding::Create({.rows = c.padded_vocab(),
                                              .dim = c.n_embd,
                                              .dtype = options_.dtype,
                                              .device = options_.device},
                                             init));
    ASSIGN_OR_RETURN(Tensor padding, wte_->weight().value.Slice(c.vocab_size, c.padded_vocab()));
    return Fill(padding, 0.0);
  }
  ASSIGN_OR_RETURN(tp_wte_, VocabParallelEmbedding::Create({.rows = c.padded_vocab(),
                                                            .valid_rows = c.vocab_size,
                                                            .dim = c.n_embd,
                                                            .dtype = options_.dtype,
                                                            .device = options_.device,
                                                            .tp = options_.tp},
                                                           init));
  tp_cross_entropy_.emplace(options_.tp, c.vocab_size, tp_wte_->row_begin());
  return absl::OkStatus();
}

absl::StatusOr<double> Gpt::Forward(const Tensor& tokens) {
  return Loss(tokens, options_.gradients);
}

absl::StatusOr<double> Gpt::InferenceLoss(const Tensor& tokens) {
  return Loss(tokens, /*keep=*/false);
}

absl::StatusOr<double> Gpt::Loss(const Tensor& tokens, bool keep) {
  const GptConfig& c = options_.config;
  if (tokens.rank() != 2 || tokens.dim(1) < 2 || tokens.dim(1) - 1 > c.block_size) {
    return absl::InvalidArgumentError(absl::StrCat("Gpt tokens: expected [B, T+1] with 1 <= T <= ",
                                                   c.block_size, ", got ", tokens.DebugString()));
  }
  const int64_t batch = tokens.dim(0), seq = tokens.dim(1) - 1;
  if (tokens.device().is_cuda()) {
    // The ids are read on the host (checked, then grouped for the embedding's gradient).
    MarkOp("tokens to host", tokens.device());
    ASSIGN_OR_RETURN(Tensor host_tokens, Tensor::Empty(tokens.shape(), tokens.dtype()));
    RETURN_IF_ERROR(WithContext(Copy(tokens, host_tokens), "Gpt tokens"));
    return Loss(host_tokens, keep);
  }
  ASSIGN_OR_RETURN(const Tensor hidden, ForwardHidden({tokens, 0, seq}, keep));
  MarkOp("lm_head forward", options_.device);
  const Stream stream = nn_internal::LayerStream(options_.device);
  ASSIGN_OR_RETURN(const Tensor hidden_operand, ProductOperand(hidden, stream));
  ASSIGN_OR_RETURN(const Tensor table_operand, ProductOperand(wte_weight().value, stream));
  ASSIGN_OR_RETURN(Tensor x, hidden_operand.Reshape({batch, seq, c.n_embd}));
  // Under bf16 products the loss reads the logits in bf16, as the product writes them on CUDA:
  // half the bytes of the model's largest tensor, written once and read twice.
  ASSIGN_OR_RETURN(Tensor logits,
                   ProjectToVocab(hidden_operand, table_operand,
                                  ProductOperandDType(options_.dtype, options_.device)));
  RETURN_IF_ERROR(EmulateProductOperandOutput(logits));
  const TokenWindow targets{tokens, 1, seq};
  if (!keep) {
    MarkOp("cross_entropy forward", options_.device);
    ASSIGN_OR_RETURN(const double loss, tp_cross_entropy_
                                            ? tp_cross_entropy_->Forward(logits, targets)
                                            : cross_entropy_.Forward(logits, targets));
    ReleaseActivations();
    return loss;
  }
  // The loss is the model's last operation: its gradient is written now, in the precision the
  // backward products read, and Backward's dloss scales those products.
  MarkOp("cross_entropy forward and backward", options_.device);
  ASSIGN_OR_RETURN(const Tensor dlogits, ProductOperandBuffer(logits, stream));
  ASSIGN_OR_RETURN(const double loss,
                   tp_cross_entropy_
                       ? tp_cross_entropy_->ForwardWithGradient(logits, targets, dlogits)
                       : cross_entropy_.ForwardWithGradient(logits, targets, dlogits));
  saved_ = Saved{x, table_operand, dlogits};
  return loss;
}

void Gpt::ClearSaved() {
  saved_.reset();
  cross_entropy_.Release();
  if (tp_cross_entropy_) tp_cross_entropy_->Release();
}

absl::StatusOr<Tensor> Gpt::EmbedTokens(const TokenWindow& inputs) {
  return wte_ != nullptr ? wte_->Forward(inputs, options_.config.vocab_size)
                         : tp_wte_->Forward(inputs);
}

absl::StatusOr<Tensor> Gpt::ForwardHidden(const TokenWindow& inputs, bool keep) {
  const GptConfig& c = options_.config;
  const int64_t batch = inputs.batch(), seq = inputs.length;
  MarkOp("embed forward", options_.device);
  ASSIGN_OR_RETURN(Tensor x, EmbedTokens(inputs));
  RETURN_IF_ERROR(wpe_->Forward(x));
  for (auto& block : h_) {
    ASSIGN_OR_RETURN(x, block->Forward(x));
    // With no Backward to come, a block's activations go as soon as it has its output: the
    // pass holds one block's at a time, not every block's.
    if (!keep) block->ReleaseActivations();
  }
  MarkOp("ln_f forward", options_.device);
  ASSIGN_OR_RETURN(x, ln_f_->Forward(x));
  if (!keep) ReleaseActivations();
  return x.Reshape({batch * seq, c.n_embd});
}

absl::StatusOr<Tensor> Gpt::ProjectToVocab(const Tensor& hidden, const Tensor& table, DType dtype) {
  ASSIGN_OR_RETURN(Tensor logits,
                   Tensor::Empty({hidden.dim(0), table.dim(0)}, dtype, options_.device));
  const Stream stream = nn_internal::LayerStream(options_.device);
  RETURN_IF_ERROR(Matmul(hidden, table, logits, {.transpose_b = true}, stream));
  return logits;
}

absl::StatusOr<Tensor> Gpt::InferenceHidden(const Tensor& inputs, absl::string_view what) {
  const GptConfig& c = options_.config;
  if (inputs.rank() != 2 || inputs.dim(1) < 1 || inputs.dim(1) > c.block_size) {
    return absl::InvalidArgumentError(absl::StrCat(what, " inputs: expected [B, T] with 1 <= T <= ",
                                                   c.block_size, ", got ", inputs.DebugString()));
  }
  Tensor host_inputs = inputs;
  if (inputs.device().is_cuda()) {
    ASSIGN_OR_RETURN(host_inputs, Tensor::Empty(inputs.shape(), inputs.dtype()));
    RETURN_IF_ERROR(WithContext(Copy(inputs, host_inputs), absl::StrCat(what, " inputs")));
  }
  return ForwardHidden({host_inputs, 0, inputs.dim(1)}, /*keep=*/false);
}

absl::StatusOr<Tensor> Gpt::GatherVocab(const Tensor& local) {
  const GptConfig& c = options_.config;
  ASSIGN_OR_RETURN(Tensor host, Tensor::Empty(local.shape(), local.dtype()));
  RETURN_IF_ERROR(Copy(local, host));  // Waits for the device.
  // Each TP rank holds the columns of its vocabulary slice: gathered, then interleaved.
  const int tp_size = TensorParallelSize(tp());
  const int64_t rows = host.dim(0), slice = host.dim(1);
  Tensor all = host;
  if (tp_size > 1) {
    ASSIGN_OR_RETURN(all, Tensor::Empty({tp_size, rows, slice}, host.dtype()));
    RETURN_IF_ERROR(tp()->AllGather(host, all));
  }
  ASSIGN_OR_RETURN(Tensor out, Tensor::Empty({rows, c.vocab_size}, host.dtype()));
  const size_t width = DTypeSize(host.dtype());
  const auto* src = static_cast<const char*>(all.raw_data());
  auto* dst = static_cast<char*>(out.raw_data());
  for (int r = 0; r < tp_size; ++r) {
    const int64_t begin = r * slice;
    const int64_t n = std::min(slice, c.vocab_size - begin);  // The padding is left out.
    if (n <= 0) break;
    for (int64_t row = 0; row < rows; ++row) {
      std::memcpy(dst + (row * c.vocab_size + begin) * width,
                  src + ((r * rows + row) * slice) * width, n * width);
    }
  }
  return out;
}

absl::StatusOr<Tensor> Gpt::Logits(const Tensor& inputs) {
  ASSIGN_OR_RETURN(const Tensor hidden, InferenceHidden(inputs, "Gpt::Logits"));
  ASSIGN_OR_RETURN(const Tensor local, ProjectToVocab(hidden, wte_weight().value, options_.dtype));
  ASSIGN_OR_RETURN(const Tensor logits, GatherVocab(local));
  return logits.Reshape({inputs.dim(0), inputs.dim(1), options_.config.vocab_size});
}

absl::StatusOr<Tensor> Gpt::NextTokenLogits(const Tensor& inputs) {
  ASSIGN_OR_RETURN(const Tensor hidden, InferenceHidden(inputs, "Gpt::NextTokenLogits"));
  return LastPositionLogits(hidden, inputs.dim(0), inputs.dim(1));
}

absl::StatusOr<Tensor> Gpt::LastPositionLogits(const Tensor& hidden, int64_t batch, int64_t seq) {
  // Row b's last position is hidden row b*T + T-1: one view for one row, else copied together.
  ASSIGN_OR_RETURN(Tensor last, hidden.Slice(seq - 1, seq));
  if (batch > 1) {
    ASSIGN_OR_RETURN(last, Tensor::Empty({batch, hidden.dim(1)}, hidden.dtype(), hidden.device()));
    const Stream stream = nn_internal::LayerStream(options_.device);
    for (int64_t b = 0; b < batch; ++b) {
      ASSIGN_OR_RETURN(const Tensor from, hidden.Slice(b * seq + seq - 1, b * seq + seq));
      ASSIGN_OR_RETURN(const Tensor to, last.Slice(b, b + 1));
      RETURN_IF_ERROR(Copy(from, to, stream));
    }
  }
  ASSIGN_OR_RETURN(const Tensor local, ProjectToVocab(last, wte_weight().value, options_.dtype));
  return GatherVocab(local);
}

absl::Status Gpt::Backward(double dloss, const GradientsFinal& on_final) {
  const auto final = [&](Module& m) { return on_final ? on_final(m) : absl::OkStatus(); };
  if (!options_.gradients) {
    return absl::FailedPreconditionError(
        "Gpt::Backward: the model was built without gradients (GptOptions::gradients)");
  }
  if (!saved_) return absl::FailedPreconditionError("Gpt::Backward before Forward");
  const GptConfig& c = options_.config;
  MarkOp("lm_head backward", options_.device);
  const Tensor& dlogits = saved_->dlogits;
  Parameter& wte = wte_weight();
  ASSIGN_OR_RETURN(Tensor xf, saved_->xf.Reshape({dlogits.dim(0), c.n_embd}));
  const Stream stream = nn_internal::LayerStream(options_.device);
  const auto scale = static_cast<float>(dloss);
  RETURN_IF_ERROR(
      Matmul(dlogits, xf, wte.grad, {.transpose_a = true, .alpha = scale, .beta = 1.0f}, stream));
  ASSIGN_OR_RETURN(Tensor dxf, Tensor::Empty(xf.shape(), options_.dtype, options_.device));
  RETURN_IF_ERROR(Matmul(dlogits, saved_->table, dxf, {.alpha = scale}, stream));
  // With TP, each rank's dxf is its vocabulary slice's part: the input of a column-parallel
  // projection, whose gradient is the sum over the group.
  RETURN_IF_ERROR(AllReduceOverTensorParallel(tp(), dxf, ReduceOp::kSum));
  ASSIGN_OR_RETURN(Tensor dx, dxf.Reshape(saved_->xf.shape()));
  MarkOp("ln_f backward", options_.device);
  ASSIGN_OR_RETURN(dx, ln_f_->Backward(dx));
  RETURN_IF_ERROR(final(*ln_f_));
  for (auto it = h_.rbegin(); it != h_.rend(); ++it) {
    ASSIGN_OR_RETURN(dx, (*it)->Backward(dx));
    RETURN_IF_ERROR(final(**it));
  }
  MarkOp("embed backward", options_.device);
  RETURN_IF_ERROR(wpe_->Backward(dx));
  RETURN_IF_ERROR(final(*wpe_));
  if (wte_ != nullptr) {
    RETURN_IF_ERROR(wte_->Backward(dx));
    RETURN_IF_ERROR(final(*wte_));
  } else {
    RETURN_IF_ERROR(tp_wte_->Backward(dx));
    RETURN_IF_ERROR(final(*tp_wte_));
  }
  ReleaseActivations();
  return absl::OkStatus();
}

}  // namespace usine
