// The tensor-parallel layers against their unsplit counterparts, in f64, under mpirun (every
// rank of the world is one TP group: 2 or 4 ranks). Each check builds the unsplit layer and
// the split one from the same seed, expects the split one's initial weights to be shards of
// the unsplit one's, then gives both the same random weights (the unsplit ones, cut into
// shards) and inputs, and expects the outputs and every gradient to agree to ~1e-12: f64
// rounding of differently ordered sums, far below any missing or doubled term.
#include "runtime/nn/tensor_parallel.h"

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "checkpoint/state_dict.h"
#include "collectives/mpi/mpi_communicator.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/attention.h"
#include "runtime/nn/column_parallel_linear.h"
#include "runtime/nn/cross_entropy.h"
#include "runtime/nn/embedding.h"
#include "runtime/nn/gpt.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/mlp.h"
#include "runtime/nn/row_parallel_linear.h"
#include "runtime/nn/splittable_linear.h"
#include "runtime/nn/sublayer.h"
#include "runtime/nn/vocab_parallel_cross_entropy.h"
#include "runtime/nn/vocab_parallel_embedding.h"
#include "tests/runtime/nn/gradient_check.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::MakeTensor;
using testing::RandomF64;
using testing::RandomizeParameters;
using testing::ReadTensor;

constexpr DType kF64 = DType::kF64;
constexpr double kTolerance = 1e-12;

// Expects got == want elementwise within kTolerance * (1 + |want|), naming `what`.
void ExpectClose(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  ASSERT_OK_AND_ASSIGN(std::vector<double> g, ReadTensor<double>(got));
  ASSERT_OK_AND_ASSIGN(std::vector<double> w, ReadTensor<double>(want));
  int failures = 0;
  for (size_t i = 0; i < g.size() && failures < 5; ++i) {
    if (std::abs(g[i] - w[i]) > kTolerance * (1 + std::abs(w[i]))) {
      ADD_FAILURE() << what << "[" << i << "]: " << g[i] << " vs " << w[i];
      ++failures;
    }
  }
}

// The shard `split` describes of `full`.
Tensor Shard(const Tensor& full, const TensorParallelSplit& split) {
  Tensor shard = Tensor::Empty(ShardShape(full.shape(), split), full.dtype()).value();
  EXPECT_OK(CopyShard(full, shard, split));
  return shard;
}

// The split of the last dimension of `shape` (groups blocks) over `tp`.
TensorParallelSplit LastDimSplit(const Communicator& tp, const Shape& shape, int groups = 1) {
  return {.dim = shape.rank() - 1, .groups = groups, .rank = tp.rank(), .size = tp.size()};
}

// Expects `split_module`'s parameters (values, or gradients) to be the shards of
// `full_module`'s, by name and in the same order.
void ExpectShardsOf(Module& full_module, Module& split_module, bool gradients) {
  const std::vector<NamedParameter> full = full_module.Parameters();
  const std::vector<NamedParameter> split = split_module.Parameters();
  ASSERT_EQ(full.size(), split.size());
  for (size_t i = 0; i < full.size(); ++i) {
    ASSERT_EQ(full[i].name, split[i].name);
    const Parameter& f = *full[i].parameter;
    const Parameter& s = *split[i].parameter;
    ExpectClose(gradients ? s.grad : s.value, Shard(gradients ? f.grad : f.value, s.split),
                full[i].name + (gradients ? " gradient" : " value"));
  }
}

// Overwrites `split_module`'s parameters with the shards of `full_module`'s.
void LoadShards(Module& full_module, Module& split_module) {
  const std::vector<NamedParameter> full = full_module.Parameters();
  const std::vector<NamedParameter> split = split_module.Parameters();
  ASSERT_EQ(full.size(), split.size());
  for (size_t i = 0; i < full.size(); ++i) {
    ASSERT_OK(
        CopyShard(full[i].parameter->value, split[i].parameter->value, split[i].parameter->split));
  }
}

class TensorParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tp = MpiCommunicator::Create(MPI_COMM_WORLD, "tp");
    ASSERT_TRUE(tp.ok()) << tp.status();
    tp_ = std::move(*tp);
    ASSERT_GT(tp_->size(), 1) << "run under mpirun with 2 or more ranks";
  }

  using Step = std::function<absl::StatusOr<Tensor>(const Tensor&)>;

  // Runs x through the unsplit layer and x_split through the split one, then dy (and its
  // split form) back, and compares outputs, input gradients and parameter gradients.
  // y_split / dx_split say how the split layer's output / input gradient are cut (whole if
  // size 1).
  void CompareLayers(Module& full, const Step& full_forward, const Step& full_backward,
                     Module& split, const Step& split_forward, const Step& split_backward,
                     const Tensor& x, const Tensor& x_split, const TensorParallelSplit& y_split,
                     const TensorParallelSplit& dx_split) {
    ASSERT_OK_AND_ASSIGN(Tensor y, full_forward(x));
    ASSERT_OK_AND_ASSIGN(Tensor ys, split_forward(x_split));
    ExpectClose(ys, Shard(y, y_split), "output");
    const Tensor dy = RandomF64(y.shape(), 99);
    ASSERT_OK(full.ZeroGrad());
    ASSERT_OK(split.ZeroGrad());
    ASSERT_OK_AND_ASSIGN(Tensor dx, full_backward(dy));
    ASSERT_OK_AND_ASSIGN(Tensor dxs, split_backward(Shard(dy, y_split)));
    ExpectClose(dxs, Shard(dx, dx_split), "input gradient");
    ExpectShardsOf(full, split, /*gradients=*/true);
  }

  TensorParallelSplit Whole() const { return {}; }

  std::unique_ptr<MpiCommunicator> tp_;
};

TEST_F(TensorParallelTest, ColumnParallelLinearMatchesLinearOnItsOutputColumns) {
  const int64_t in = 6, out = 4 * tp_->size();
  ParameterInitializer full_init(7), split_init(7);
  ASSERT_OK_AND_ASSIGN(
      auto fc, Linear::Create({.in_features = in, .out_features = out, .dtype = kF64}, full_init));
  ASSERT_OK_AND_ASSIGN(
      auto cfc,
      ColumnParallelLinear::Create(
          {.in_features = in, .out_features = out, .dtype = kF64, .tp = tp_.get()}, split_init));
  EXPECT_EQ(cfc->weight().value.shape(), Shape({out / tp_->size(), in}));
  ExpectShardsOf(*fc, *cfc, /*gradients=*/false);
  EXPECT_EQ(split_init.offset(), full_init.offset()) << "the full weight is drawn";
  RandomizeParameters(*fc, 10);
  LoadShards(*fc, *cfc);
  const Tensor x = RandomF64({2, 3, in}, 1);
  CompareLayers(
      *fc, [&](const Tensor& t) { return fc->Forward(t); },
      [&](const Tensor& t) { return fc->Backward(t); }, *cfc,
      [&](const Tensor& t) { return cfc->Forward(t); },
      [&](const Tensor& t) { return cfc->Backward(t); }, x, x, LastDimSplit(*tp_, {2, 3, out}),
      Whole());
  // Through a GELU below (linear_sublayer.h): each rank's partial dx times gelu'(h), summed.
  const Tensor h = RandomF64({2, 3, in}, 2, 2.0);
  CompareLayers(
      *fc, [&](const Tensor& t) { return fc->Forward(t); },
      [&](const Tensor& t) { return fc->BackwardThroughGelu(t, h); }, *cfc,
      [&](const Tensor& t) { return cfc->Forward(t); },
      [&](const Tensor& t) { return cfc->BackwardThroughGelu(t, h); }, x, x,
      LastDimSplit(*tp_, {2, 3, out}), Whole());
}

TEST_F(TensorParallelTest, ColumnParallelLinearSplitsEachOutputGroup) {
  // c_attn's layout: q|k|v, each split by heads, so rank r holds rows of all three.
  const int64_t in = 4, out = 3 * 2 * tp_->size();
  ParameterInitializer full_init(8), split_init(8);
  ASSERT_OK_AND_ASSIGN(
      auto fc, Linear::Create({.in_features = in, .out_features = out, .dtype = kF64}, full_init));
  ASSERT_OK_AND_ASSIGN(
      auto cfc,
      ColumnParallelLinear::Create(
          {.in_features = in, .out_features = out, .groups = 3, .dtype = kF64, .tp = tp_.get()},
          split_init));
  ExpectShardsOf(*fc, *cfc, /*gradients=*/false);
  // Row 0 of this rank's k block is row out/3 + rank*2 of the full weight.
  ASSERT_OK_AND_ASSIGN(std::vector<double> full_w, ReadTensor<double>(fc->weight().value));
  ASSERT_OK_AND_ASSIGN(std::vector<double> split_w, ReadTensor<double>(cfc->weight().value));
  EXPECT_EQ(split_w[2 * in], full_w[(out / 3 + tp_->rank() * 2) * in]);
  RandomizeParameters(*fc, 11);
  LoadShards(*fc, *cfc);
  const Tensor x = RandomF64({5, in}, 2);
  CompareLayers(
      *fc, [&](const Tensor& t) { return fc->Forward(t); },
      [&](const Tensor& t) { return fc->Backward(t); }, *cfc,
      [&](const Tensor& t) { return cfc->Forward(t); },
      [&](const Tensor& t) { return cfc->Backward(t); }, x, x,
      LastDimSplit(*tp_, {5, out}, /*groups=*/3), Whole());
}

// Forward, and ForwardAdding (sublayer.h), whose residual joins the all-reduced sum once; a
// residual of another shape is refused on every rank before the collective (none is left
// waiting in it).
TEST_F(TensorParallelTest, RowParallelLinearMatchesLinearAndAddsTheBiasAndTheResidualOnce) {
  const int64_t in = 3 * tp_->size(), out = 5;
  ParameterInitializer full_init(9), split_init(9);
  ASSERT_OK_AND_ASSIGN(
      auto fc, Linear::Create({.in_features = in, .out_features = out, .dtype = kF64}, full_init));
  ASSERT_OK_AND_ASSIGN(
      auto rfc,
      RowParallelLinear::Create(
          {.in_features = in, .out_features = out, .dtype = kF64, .tp = tp_.get()}, split_init));
  EXPECT_EQ(rfc->weight().value.shape(), Shape({out, in / tp_->size()}));
  ExpectShardsOf(*fc, *rfc, /*gradients=*/false);
  RandomizeParameters(*fc, 12);  // A non-zero bias, which a sum of partial outputs would repeat.
  LoadShards(*fc, *rfc);
  const Tensor x = RandomF64({2, 3, in}, 3);
  const TensorParallelSplit x_split = LastDimSplit(*tp_, x.shape());
  const Tensor residual = RandomF64({2, 3, out}, 4);
  for (const Tensor* r : {static_cast<const Tensor*>(nullptr), &residual}) {
    SCOPED_TRACE(r != nullptr ? "ForwardAdding" : "Forward");
    const auto forward = [r](Sublayer& layer, const Tensor& t) {
      return r != nullptr ? layer.ForwardAdding(t, *r) : layer.Forward(t);
    };
    CompareLayers(
        *fc, [&](const Tensor& t) { return forward(*fc, t); },
        [&](const Tensor& t) { return fc->Backward(t); }, *rfc,
        [&](const Tensor& t) { return forward(*rfc, t); },
        [&](const Tensor& t) { return rfc->Backward(t); }, x, Shard(x, x_split), Whole(), x_split);
  }
  const absl::Status wrong =
      rfc->ForwardAdding(Shard(x, x_split), RandomF64({2, 3, out + 1}, 5)).status();
  EXPECT_TRUE(absl::IsInvalidArgument(wrong)) << wrong;
  EXPECT_NE(wrong.message().find("residual"), absl::string_view::npos) << wrong;
  // The group still works: no rank entered the all-reduce alone.
  ASSERT_OK(rfc->Forward(Shard(x, x_split)).status());
}

TEST_F(TensorParallelTest, AttentionSplitByHeadsMatchesTheUnsplitAttention) {
  const int64_t heads = 2 * tp_->size(), embd = 3 * heads;
  ParameterInitializer full_init(3), split_init(3);
  ASSERT_OK_AND_ASSIGN(auto attn, CausalSelfAttention::Create(
                                      {.n_embd = embd, .n_head = heads, .dtype = kF64}, full_init));
  ASSERT_OK_AND_ASSIGN(
      auto pattn,
      CausalSelfAttention::Create({.n_embd = embd, .n_head = heads, .dtype = kF64, .tp = tp_.get()},
                                  split_init));
  ExpectShardsOf(*attn, *pattn, /*gradients=*/false);
  RandomizeParameters(*attn, 13);
  LoadShards(*attn, *pattn);
  const Tensor x = RandomF64({2, 5, embd}, 4);
  CompareLayers(
      *attn, [&](const Tensor& t) { return attn->Forward(t); },
      [&](const Tensor& t) { return attn->Backward(t); }, *pattn,
      [&](const Tensor& t) { return pattn->Forward(t); },
      [&](const Tensor& t) { return pattn->Backward(t); }, x, x, Whole(), Whole());
}

TEST_F(TensorParallelTest, MlpSplitOverTheGroupMatchesMlp) {
  const int64_t embd = 6;
  ParameterInitializer full_init(4), split_init(4);
  ASSERT_OK_AND_ASSIGN(auto mlp, Mlp::Create({.n_embd = embd, .dtype = kF64}, full_init));
  ASSERT_OK_AND_ASSIGN(auto pmlp,
                       Mlp::Create({.n_embd = embd, .dtype = kF64, .tp = tp_.get()}, split_init));
  ExpectShardsOf(*mlp, *pmlp, /*gradients=*/false);
  RandomizeParameters(*mlp, 14);
  LoadShards(*mlp, *pmlp);
  const Tensor x = RandomF64({3, 4, embd}, 5, 2.0);
  CompareLayers(
      *mlp, [&](const Tensor& t) { return mlp->Forward(t); },
      [&](const Tensor& t) { return mlp->Backward(t); }, *pmlp,
      [&](const Tensor& t) { return pmlp->Forward(t); },
      [&](const Tensor& t) { return pmlp->Backward(t); }, x, x, Whole(), Whole());
}

// [rows, cols] i32 ids: every id of [0, vocab) appears, in a scrambled order.
Tensor Ids(int64_t rows, int64_t cols, int64_t vocab) {
  std::vector<int32_t> ids(rows * cols);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7 + 3) % vocab);
  return MakeTensor(Device::Cpu(), {rows, cols}, ids).value();
}

TEST_F(TensorParallelTest, VocabParallelEmbeddingMatchesEmbedding) {
  const int64_t rows = 8 * tp_->size(), valid = rows - 3, dim = 5;
  ParameterInitializer full_init(5), split_init(5);
  ASSERT_OK_AND_ASSIGN(auto wte,
                       Embedding::Create({.rows = rows, .dim = dim, .dtype = kF64}, full_init));
  ASSERT_OK_AND_ASSIGN(Tensor padding, wte->weight().value.Slice(valid, rows));
  ASSERT_OK(Fill(padding, 0.0));  // As Gpt does; the split layer zeroes its own.
  ASSERT_OK_AND_ASSIGN(
      auto pwte,
      VocabParallelEmbedding::Create(
          {.rows = rows, .valid_rows = valid, .dim = dim, .dtype = kF64, .tp = tp_.get()},
          split_init));
  EXPECT_EQ(pwte->row_begin(), tp_->rank() * 8);
  ExpectShardsOf(*wte, *pwte, /*gradients=*/false);
  RandomizeParameters(*wte, 15);
  LoadShards(*wte, *pwte);
  const Tensor ids = Ids(3, 2 * valid, valid);
  ASSERT_OK_AND_ASSIGN(Tensor x, wte->Forward({ids, 1, 2 * valid - 1}, valid));
  ASSERT_OK_AND_ASSIGN(Tensor xs, pwte->Forward({ids, 1, 2 * valid - 1}));
  ExpectClose(xs, x, "embedding");
  const Tensor dx = RandomF64(x.shape(), 6);
  ASSERT_OK(wte->Backward(dx));
  ASSERT_OK(pwte->Backward(dx));
  ExpectShardsOf(*wte, *pwte, /*gradients=*/true);
  // An id past the valid rows is refused, as by Embedding.
  std::vector<int32_t> padding_id = {static_cast<int32_t>(valid), 0};
  ASSERT_OK_AND_ASSIGN(Tensor bad_ids, MakeTensor(Device::Cpu(), {1, 2}, padding_id));
  EXPECT_FALSE(pwte->Forward({bad_ids, 0, 2}).ok());
}

TEST_F(TensorParallelTest, VocabParallelCrossEntropyMatchesSoftmaxCrossEntropy) {
  // Padded vocabulary 8 per rank, 5 + 8 (tp - 1) / 2 classes: one rank holds classes and
  // padding, and at 4 ranks one holds padding only.
  const int64_t padded = 8 * tp_->size(), vocab = 5 + 8 * (tp_->size() - 1) / 2, rows = 12;
  const Tensor logits = RandomF64({rows, padded}, 7, 3.0);
  const Tensor targets = Ids(1, rows, vocab);
  ASSERT_OK_AND_ASSIGN(Tensor full, Tensor::Empty(logits.shape(), kF64));
  ASSERT_OK(Copy(logits, full));
  SoftmaxCrossEntropy ce(vocab);
  ASSERT_OK_AND_ASSIGN(double loss, ce.Forward(full, {targets, 0, rows}));
  const TensorParallelSplit split = LastDimSplit(*tp_, logits.shape());
  const Tensor local = Shard(logits, split);
  VocabParallelCrossEntropy pce(tp_.get(), vocab, tp_->rank() * 8);
  ASSERT_OK_AND_ASSIGN(double ploss, pce.Forward(local, {targets, 0, rows}));
  EXPECT_NEAR(ploss, loss, kTolerance * loss);
  EXPECT_GT(loss, 0.5);  // Not a degenerate case.
  ASSERT_OK(ce.Backward(0.7));
  ASSERT_OK(pce.Backward(0.7));
  ExpectClose(local, Shard(full, split), "logits gradient");
}

// Small enough for f64; tp 2 and 4 divide its 4 heads and 128 padded vocabulary rows.
GptConfig Small() { return GptConfig{"small", 50, 8, 2, 4, 16}; }

TEST_F(TensorParallelTest, GptMatchesTheUnsplitModelInLossAndEveryGradient) {
  ASSERT_OK_AND_ASSIGN(auto gpt, Gpt::Create({.config = Small(), .seed = 3, .dtype = kF64}));
  ASSERT_OK_AND_ASSIGN(auto tp_gpt,
                       Gpt::Create({.config = Small(), .seed = 3, .dtype = kF64, .tp = tp_.get()}));
  ASSERT_EQ(tp_gpt->tp(), tp_.get());
  ExpectShardsOf(*gpt, *tp_gpt, /*gradients=*/false);
  RandomizeParameters(*gpt, 16);
  LoadShards(*gpt, *tp_gpt);
  const Tensor tokens = Ids(3, 8, 50);
  ASSERT_OK_AND_ASSIGN(double loss, gpt->Forward(tokens));
  ASSERT_OK_AND_ASSIGN(double tp_loss, tp_gpt->Forward(tokens));
  EXPECT_NEAR(tp_loss, loss, kTolerance * loss);
  ASSERT_OK(gpt->Backward(0.5));
  ASSERT_OK(tp_gpt->Backward(0.5));
  ExpectShardsOf(*gpt, *tp_gpt, /*gradients=*/true);
  // Sharded where Megatron shards, replicated elsewhere.
  for (const NamedParameter& p : tp_gpt->Parameters()) {
    const bool sharded = p.name == "wte.weight" || p.name.find("c_attn") != std::string::npos ||
                         p.name.find("c_fc") != std::string::npos ||
                         p.name.find("c_proj.weight") != std::string::npos;
    EXPECT_EQ(p.parameter->split.sharded(), sharded) << p.name;
  }
}

// A split model's StateDict holds, under the unsplit names and shapes, this rank's boxes of
// the unsplit model's tensors: one box per q|k|v block for c_attn, this rank's columns for the
// row-parallel c_proj, its vocabulary rows for wte; the whole tensor elsewhere.
TEST_F(TensorParallelTest, AStateDictOfASplitModelHoldsThisRanksBoxesOfTheUnsplitTensors) {
  ASSERT_OK_AND_ASSIGN(auto gpt, Gpt::Create({.config = Small(), .seed = 3, .dtype = kF64}));
  ASSERT_OK_AND_ASSIGN(auto split,
                       Gpt::Create({.config = Small(), .seed = 3, .dtype = kF64, .tp = tp_.get()}));
  StateDict full_state, state;
  ASSERT_OK(gpt->AddToStateDict(full_state, "model/"));
  ASSERT_OK(split->AddToStateDict(state, "model/"));
  ASSERT_EQ(state.tensors().size(), full_state.tensors().size());
  for (const NamedParameter& p : split->Parameters()) {
    const std::string name = "model/" + p.name;
    ASSERT_EQ(state.tensors().count(name), 1u) << name;
    const TensorEntry& entry = state.tensors().at(name);
    const TensorEntry& full = full_state.tensors().at(name);
    EXPECT_EQ(entry.global_shape, full.global_shape) << name;
    const size_t boxes = p.name.find("c_attn") != std::string::npos ? 3 : 1;
    ASSERT_EQ(entry.pieces.size(), boxes) << name;
    const Shape& shape = full.global_shape;
    ASSERT_OK_AND_ASSIGN(std::vector<double> whole, ReadTensor<double>(full.pieces[0].tensor));
    int64_t elements = 0;
    for (const TensorPiece& piece : entry.pieces) {
      ASSERT_OK_AND_ASSIGN(std::vector<double> got, ReadTensor<double>(piece.tensor));
      for (int64_t i = 0; i < piece.tensor.numel(); ++i) {
        int64_t index = 0, rest = i, scale = 1;
        for (int d = shape.rank() - 1; d >= 0; --d) {
          index += (piece.offset[d] + rest % piece.tensor.dim(d)) * scale;
          rest /= piece.tensor.dim(d);
          scale *= shape.dim(d);
        }
        ASSERT_EQ(got[i], whole[index]) << name << " element " << i << " of a piece";
      }
      elements += piece.tensor.numel();
    }
    EXPECT_EQ(elements, shape.numel() / (p.parameter->split.sharded() ? tp_->size() : 1)) << name;
  }
}

// A column-parallel layer's input gradient is all-reduced in f32: it refuses to write it as a
// product's operand; a row-parallel one, whose input gradient is its own slice, takes it.
TEST_F(TensorParallelTest, OnlyARowSplitWritesItsInputGradientAsAnOperand) {
  ParameterInitializer init(3);
  const absl::Status column = CreateSplittableLinear({.in_features = 8,
                                                      .out_features = 8,
                                                      .split = LinearSplit::kColumns,
                                                      .tp = tp_.get(),
                                                      .input_gradient_operand = true},
                                                     init)
                                  .status();
  EXPECT_TRUE(absl::IsInvalidArgument(column)) << column;
  EXPECT_OK(CreateSplittableLinear({.in_features = 8,
                                    .out_features = 8,
                                    .split = LinearSplit::kRows,
                                    .tp = tp_.get(),
                                    .input_gradient_operand = true},
                                   init)
                .status());
}

TEST_F(TensorParallelTest, GptRefusesATensorParallelSizeThatDoesNotDivideTheHeads) {
  GptConfig c = Small();
  c.n_head = 1;
  EXPECT_FALSE(Gpt::Create({.config = c, .seed = 3, .dtype = kF64, .tp = tp_.get()}).ok());
}

}  // namespace
}  // namespace usine
