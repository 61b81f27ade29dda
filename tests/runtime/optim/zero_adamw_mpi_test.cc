// Runs under mpirun at 2 and 4 ranks: ZeroAdamW against data parallelism with AdamW on every
// rank (all-reduce of the gradients, ClipGradientNorm, AdamW::Step), the ranks feeding
// different micro-batches; and checkpoints of either loaded into the other, at the world's
// size and at one rank. (ZeroAdamW with tensor parallelism: tests/runtime/train/
// tp_checkpoint_test.cc.)
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/checkpoint_directory.h"
#include "checkpoint/checkpoint_file.h"
#include "checkpoint/checkpointer.h"
#include "collectives/byte_exchange.h"
#include "collectives/local/local_communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "runtime/core/allocator.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/grad_clip.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/zero_adamw.h"
#include "tests/testing/device_test.h"
#include "tests/testing/training_fixtures.h"

namespace usine {
namespace {

using testing::MakeTensor;
using testing::ReadTensor;

CheckpointerOptions CheckpointIn(std::string directory) {
  CheckpointerOptions options;
  options.directory = std::move(directory);
  return options;
}

const LrSchedule kSchedule{.max_lr = 1e-2, .min_lr = 1e-3, .warmup_steps = 2, .total_steps = 8};

// The row-major index in a tensor of shape `global` of element `i` of `piece`.
int64_t LogicalIndex(const Shape& global, const TensorPiece& piece, int64_t i) {
  int64_t index = 0, scale = 1;
  for (int d = global.rank() - 1; d >= 0; --d) {
    index += (piece.offset[d] + i % piece.tensor.dim(d)) * scale;
    i /= piece.tensor.dim(d);
    scale *= global.dim(d);
  }
  return index;
}

// Expects every piece of `pieces` to hold the bits of `whole` (whole tensors) at its box.
void ExpectPiecesOf(const StateDict& pieces, const StateDict& whole) {
  for (const auto& [name, entry] : pieces.tensors()) {
    ASSERT_EQ(whole.tensors().count(name), 1u) << name;
    const TensorEntry& full = whole.tensors().at(name);
    ASSERT_TRUE(full.whole() && full.global_shape == entry.global_shape) << name;
    // f32 compared as bits: equal values with other bits (-0 and 0, NaNs) are not the same.
    const uint32_t* w = static_cast<const uint32_t*>(full.pieces[0].tensor.raw_data());
    for (const TensorPiece& piece : entry.pieces) {
      const uint32_t* p = static_cast<const uint32_t*>(piece.tensor.raw_data());
      for (int64_t i = 0; i < piece.tensor.numel(); ++i) {
        const int64_t at = LogicalIndex(entry.global_shape, piece, i);
        ASSERT_EQ(p[i], w[at]) << name << "[" << at << "] = " << std::bit_cast<float>(p[i])
                               << ", want " << std::bit_cast<float>(w[at]);
      }
    }
  }
}

// A module of 332 elements whose sizes are not multiples of 64 (each parameter starts at a
// multiple of 64 elements of the flat vector, the end is padded) and whose weight is cut by the
// shard boundaries: weight [20, 13] and scale [70] decayed, bias [2] not; flat offsets 0, 320
// and 384. At 2 ranks (shards of 256) and at 4 (shards of 128) rank 0 holds whole rows and
// part of a row of the weight: two boxes of each moment.
class ThreeParameters : public Module {
 public:
  static std::unique_ptr<ThreeParameters> Create() {
    auto m = std::make_unique<ThreeParameters>();
    m->AddParameter("weight", {20, 13}, DType::kF32, Device::Cpu(), true).value();
    m->AddParameter("bias", {2}, DType::kF32, Device::Cpu(), false).value();
    m->AddParameter("scale", {70}, DType::kF32, Device::Cpu(), true).value();
    for (const NamedParameter& p : m->Parameters()) {
      absl::Span<float> v = p.parameter->value.host_span<float>().value();
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5f + 0.1f * static_cast<float>(i);
    }
    return m;
  }
};

// Rank r's gradient of parameter p, element i, at step s: different on every rank.
float GradientValue(int rank, int p, size_t i, int s) {
  return static_cast<float>((static_cast<int>(i) * 5 + p * 11 + rank * 3 + s * 7) % 23) / 4.0f -
         2.75f;
}

// Rank r's micro-batch at `step`: [2, 17] ids in the tiny vocabulary.
Tensor Batch(int rank, int step) {
  std::vector<uint16_t> ids(2 * 17);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<uint16_t>(
        (i * 37 + static_cast<size_t>(step) * 101 + static_cast<size_t>(rank) * 211 + 55) % 500);
  }
  return MakeTensor(Device::Cpu(), {2, 17}, ids).value();
}

class ZeroAdamWTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dp_, MpiCommunicator::Create(MPI_COMM_WORLD, "dp"));
  }
  // Plain data parallelism: every gradient averaged over the ranks, then clip and AdamW.
  absl::Status DataParallelStep(Module& model, AdamW& adamw, double lr, double max_norm) {
    for (const NamedParameter& p : model.Parameters()) {
      RETURN_IF_ERROR(dp_->AllReduce(p.parameter->grad, ReduceOp::kAvg));
    }
    RETURN_IF_ERROR(ClipGradientNorm(model.Parameters(), max_norm).status());
    return adamw.Step(lr);
  }
  std::unique_ptr<MpiCommunicator> dp_;
};

TEST_F(ZeroAdamWTest, ShardsThePaddedFlatParametersEvenly) {
  auto model = ThreeParameters::Create();
  ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*dp_, model->Parameters()));
  const int n = dp_->size();
  EXPECT_EQ(zero->numel(), 332);
  EXPECT_EQ(zero->shard_numel(), 512 / n);  // The flat vector's 454 elements in 64-element steps.
  EXPECT_EQ(zero->padded_numel(), 512);
  EXPECT_EQ(zero->shard_begin(), dp_->rank() * zero->shard_numel());
  // The parameters now live in the flat buffer, with their values kept, each at the alignment
  // of an allocation of its own (cuBLASLt's bias epilogue wants at least 16 bytes).
  for (const NamedParameter& p : model->Parameters()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.parameter->value.raw_data()) % kAllocationAlignment, 0u)
        << p.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.parameter->grad.raw_data()) % kAllocationAlignment, 0u)
        << p.name;
    const std::vector<float> v = ReadTensor<float>(p.parameter->value).value();
    for (size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(v[i], 0.5f + 0.1f * static_cast<float>(i)) << p.name << "[" << i << "]";
    }
  }
}

// Three steps, the second and third clipped: the parameters equal those of plain data
// parallelism, and each rank's pieces of the moments equal that range of AdamW's (to 1e-6 of
// the O(1) gradients: at 4 ranks the two collectives add in different orders).
TEST_F(ZeroAdamWTest, MatchesDataParallelAdamWWithPaddingAndClipping) {
  auto plain = ThreeParameters::Create();
  auto sharded = ThreeParameters::Create();
  const AdamWOptions options{.weight_decay = 0.5};
  ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(plain->Parameters(), options));
  ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*dp_, sharded->Parameters(), options));
  const double max_norms[] = {0.0, 1.0, 2.0};
  for (int s = 0; s < 3; ++s) {
    std::vector<NamedParameter> a = plain->Parameters(), b = sharded->Parameters();
    for (size_t p = 0; p < a.size(); ++p) {
      absl::Span<float> ga = a[p].parameter->grad.host_span<float>().value();
      absl::Span<float> gb = b[p].parameter->grad.host_span<float>().value();
      for (size_t i = 0; i < ga.size(); ++i) {
        ga[i] = gb[i] = GradientValue(dp_->rank(), static_cast<int>(p), i, s);
      }
    }
    ASSERT_OK(DataParallelStep(*plain, *adamw, 0.1, max_norms[s]));
    ASSERT_OK_AND_ASSIGN(double norm, zero->Step(0.1, max_norms[s]));
    if (s > 0) {
      EXPECT_GT(norm, max_norms[s]) << "the test means to clip";
    }
    EXPECT_EQ(zero->step(), s + 1);
    for (size_t p = 0; p < a.size(); ++p) {
      ASSERT_OK_AND_ASSIGN(std::vector<float> want, ReadTensor<float>(a[p].parameter->value));
      ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(b[p].parameter->value));
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::abs(want[i])))
            << a[p].name << "[" << i << "] step " << s;
      }
    }
  }
  StateDict want_state, got_state;
  ASSERT_OK(adamw->AddToStateDict(want_state));
  ASSERT_OK(zero->AddToStateDict(got_state));
  EXPECT_EQ(got_state.GetInt("optim/step").value(), 3);
  int64_t elements = 0;
  for (const auto& [name, entry] : got_state.tensors()) {
    const TensorEntry& whole = want_state.tensors().at(name);
    EXPECT_EQ(entry.global_shape, whole.global_shape) << name;
    ASSERT_OK_AND_ASSIGN(std::vector<float> want, ReadTensor<float>(whole.pieces[0].tensor));
    for (const TensorPiece& piece : entry.pieces) {
      ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(piece.tensor));
      for (size_t i = 0; i < got.size(); ++i) {
        const int64_t at = LogicalIndex(entry.global_shape, piece, static_cast<int64_t>(i));
        EXPECT_NEAR(got[i], want[at], 1e-6 * (1 + std::abs(want[at]))) << name << "[" << at << "]";
      }
      elements += piece.tensor.numel();
    }
  }
  if (dp_->rank() == 0) {
    EXPECT_EQ(got_state.tensors().at("optim/exp_avg/weight").pieces.size(), 2u);
  }
  // The pieces of all ranks tile both moments of all 332 elements.
  ASSERT_OK_AND_ASSIGN(Tensor count,
                       MakeTensor(Device::Cpu(), {1}, std::vector<int64_t>{elements}));
  ASSERT_OK(dp_->AllReduce(count, ReduceOp::kSum));
  EXPECT_EQ(ReadTensor<int64_t>(count).value()[0], 2 * 332);

  // Written to a file by every rank (several boxes per rank and moment), read back whole by
  // each rank alone: the ZeroAdamW ranks' moments, bit for bit.
  std::string dir;
  if (dp_->rank() == 0) {
    char tmpl[] = "/tmp/usine_zero_boxes_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  ASSERT_OK(BroadcastBytes(*dp_, 0, &dir));
  ASSERT_OK(WriteCheckpointFile(dir + "/zero.h5", got_state, *dp_));
  auto fresh = ThreeParameters::Create();
  ASSERT_OK_AND_ASSIGN(auto loaded, AdamW::Create(fresh->Parameters(), options));
  StateDict whole;
  ASSERT_OK(loaded->AddToStateDict(whole));
  LocalCommunicator alone("alone");
  ASSERT_OK(ReadCheckpointFile(dir + "/zero.h5", whole, alone));
  ExpectPiecesOf(got_state, whole);
  ASSERT_OK(dp_->Barrier());
  if (dp_->rank() == 0) std::filesystem::remove_all(dir);
}

// The tiny GPT, 8 steps of micro-batches that differ by rank, clipped at 1: the same losses
// (within 1e-6, relative) and parameters as plain data parallelism.
TEST_F(ZeroAdamWTest, TinyGptTrainsLikeDataParallelAdamW) {
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto plain, Gpt::Create({.config = tiny, .seed = 21}));
  ASSERT_OK_AND_ASSIGN(auto sharded, Gpt::Create({.config = tiny, .seed = 21}));
  ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(plain->Parameters()));
  ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*dp_, sharded->Parameters()));
  EXPECT_LT(zero->shard_numel(), zero->numel());
  for (int step = 0; step < 8; ++step) {
    const Tensor batch = Batch(dp_->rank(), step);
    ASSERT_OK(plain->ZeroGrad());
    ASSERT_OK_AND_ASSIGN(double want, plain->Forward(batch));
    ASSERT_OK(plain->Backward());
    ASSERT_OK(DataParallelStep(*plain, *adamw, kSchedule.At(step), 1.0));
    ASSERT_OK(sharded->ZeroGrad());
    ASSERT_OK_AND_ASSIGN(double loss, sharded->Forward(batch));
    ASSERT_OK(sharded->Backward());
    ASSERT_OK(zero->Step(kSchedule.At(step), 1.0).status());
    EXPECT_NEAR(loss, want, 1e-6 * want) << "step " << step;
  }
  // The parameters: at 2 ranks the averaged gradients are the same sums (a + b either way) and
  // the parameters agree to 1e-7. At 4, MPI_Allreduce and MPI_Reduce_scatter_block add in
  // different orders, and everything else is held to 1e-5. Adam scales each element's step to
  // about lr whatever the gradient's size: the attention's key bias, whose gradient is zero but
  // for rounding (the softmax ignores a shift of all scores), takes steps on last-bit noise,
  // which differs between the two models as soon as any product rounds differently (the
  // sharded model's parameters are views into one flat buffer, so OpenBLAS sees other
  // alignments). So the key biases are held to 1e-3 (a tenth of the peak lr) at every size.
  const int64_t c = tiny.n_embd;
  std::vector<NamedParameter> a = plain->Parameters(), b = sharded->Parameters();
  double max_difference = 0, max_key_bias_difference = 0;
  std::string where;
  for (size_t p = 0; p < a.size(); ++p) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> want, ReadTensor<float>(a[p].parameter->value));
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(b[p].parameter->value));
    const bool attn_bias = a[p].name.ends_with("attn.c_attn.bias");
    for (size_t i = 0; i < want.size(); ++i) {
      const double difference = std::abs(static_cast<double>(got[i]) - want[i]);
      const bool key_bias =
          attn_bias && static_cast<int64_t>(i) >= c && static_cast<int64_t>(i) < 2 * c;
      if (key_bias) {
        max_key_bias_difference = std::max(max_key_bias_difference, difference);
      } else if (difference > max_difference) {
        max_difference = difference;
        where = absl::StrCat(a[p].name, "[", i, "]");
      }
    }
  }
  const bool two = dp_->size() == 2;
  EXPECT_LE(max_difference, two ? 1e-7 : 1e-5) << where;
  EXPECT_LE(max_key_bias_difference, 1e-3);
  if (dp_->rank() == 0) {
    std::printf("largest parameter difference: %g at %s; key biases: %g\n", max_difference,
                where.c_str(), max_key_bias_difference);
  }
}

// A ZeroAdamW run checkpointed (Checkpointer, over MPI) after 3 of 6 steps: a fresh ZeroAdamW
// run loading it repeats the last 3 losses exactly, and so does, within 1e-6, data-parallel
// AdamW loading the same file (whole moments assembled from the ranks' pieces); AdamW on one
// rank alone (a data-parallel size of 1) reads the ZeroAdamW ranks' moments bit for bit.
TEST_F(ZeroAdamWTest, CheckpointResumesZeroAndLoadsIntoAdamW) {
  std::string dir;
  if (dp_->rank() == 0) {
    char tmpl[] = "/tmp/usine_zero_ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  ASSERT_OK(BroadcastBytes(*dp_, 0, &dir));
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  ASSERT_OK_AND_ASSIGN(auto checkpointer, Checkpointer::Create(*dp_, CheckpointIn(dir)));
  auto train_step = [&](Gpt& model, int step, auto&& update) -> absl::StatusOr<double> {
    RETURN_IF_ERROR(model.ZeroGrad());
    ASSIGN_OR_RETURN(double loss, model.Forward(Batch(dp_->rank(), step)));
    RETURN_IF_ERROR(model.Backward());
    RETURN_IF_ERROR(update(kSchedule.At(step)));
    return loss;
  };
  std::vector<double> want;
  StateDict saved;  // What this rank saved.
  {
    ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 21}));
    ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*dp_, model->Parameters()));
    auto update = [&](double lr) { return zero->Step(lr, 1.0).status(); };
    for (int step = 0; step < 6; ++step) {
      if (step == 3) {
        StateDict state;
        ASSERT_OK(model->AddToStateDict(state, "model/"));
        ASSERT_OK(zero->AddToStateDict(state));
        ASSERT_OK(checkpointer->Save(step, state));
        ASSERT_OK_AND_ASSIGN(saved, testing::DeepCopy(state));
      }
      ASSERT_OK_AND_ASSIGN(double loss, train_step(*model, step, update));
      want.push_back(loss);
    }
    ASSERT_OK(checkpointer->Wait());
  }
  {
    ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 77}));
    ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*dp_, model->Parameters()));
    StateDict state;
    ASSERT_OK(model->AddToStateDict(state, "model/"));
    ASSERT_OK(zero->AddToStateDict(state));
    ASSERT_OK_AND_ASSIGN(int64_t step, checkpointer->LoadLatest(state));
    EXPECT_EQ(step, 3);
    ASSERT_OK(zero->RestoreStep(state));
    auto update = [&](double lr) { return zero->Step(lr, 1.0).status(); };
    for (int s = 3; s < 6; ++s) {
      ASSERT_OK_AND_ASSIGN(double loss, train_step(*model, s, update));
      EXPECT_EQ(loss, want[s]) << "ZeroAdamW resumed, step " << s;
    }
  }
  {
    ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 77}));
    ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
    StateDict state;
    ASSERT_OK(model->AddToStateDict(state, "model/"));
    ASSERT_OK(adamw->AddToStateDict(state));
    ASSERT_OK_AND_ASSIGN(int64_t step, checkpointer->LoadLatest(state));
    EXPECT_EQ(step, 3);
    ASSERT_OK(adamw->RestoreStep(state));
    auto update = [&](double lr) { return DataParallelStep(*model, *adamw, lr, 1.0); };
    for (int s = 3; s < 6; ++s) {
      ASSERT_OK_AND_ASSIGN(double loss, train_step(*model, s, update));
      EXPECT_NEAR(loss, want[s], 1e-6 * want[s]) << "AdamW resumed, step " << s;
    }
  }
  {
    // Each rank alone, as a job of one rank would.
    LocalCommunicator alone("alone");
    ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 77}));
    ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
    StateDict state;
    ASSERT_OK(model->AddToStateDict(state, "model/"));
    ASSERT_OK(adamw->AddToStateDict(state));
    ASSERT_OK(ReadCheckpointFile(CheckpointPath(dir, 3), state, alone));
    ExpectPiecesOf(saved, state);
  }
  checkpointer.reset();
  ASSERT_OK(dp_->Barrier());
  if (dp_->rank() == 0) std::filesystem::remove_all(dir);
}

// The other way: AdamW on one rank (a job of one rank, every rank training the same model on
// the same batches) writes a checkpoint after 3 steps; ZeroAdamW over every rank reads it
// (each rank a few boxes of each moment it shards), holds the writer's moments bit for bit,
// and trains on as AdamW alone does (the ranks feed the same batches, so the averaged
// gradients are AdamW's but for the rounding of the average).
TEST_F(ZeroAdamWTest, AdamWOnOneRankWritesWhatZeroAdamWLoads) {
  std::string dir;
  if (dp_->rank() == 0) {
    char tmpl[] = "/tmp/usine_zero_ckpt_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  ASSERT_OK(BroadcastBytes(*dp_, 0, &dir));
  const std::string path = dir + "/adamw.h5";
  ASSERT_OK_AND_ASSIGN(GptConfig tiny, GptConfigNamed("tiny"));
  auto train_step = [&](Gpt& model, int step, auto&& update) -> absl::StatusOr<double> {
    RETURN_IF_ERROR(model.ZeroGrad());
    ASSIGN_OR_RETURN(double loss, model.Forward(Batch(0, step)));
    RETURN_IF_ERROR(model.Backward());
    RETURN_IF_ERROR(update(kSchedule.At(step)));
    return loss;
  };
  ASSERT_OK_AND_ASSIGN(auto model, Gpt::Create({.config = tiny, .seed = 21}));
  ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
  auto adamw_update = [&](double lr) -> absl::Status {
    RETURN_IF_ERROR(ClipGradientNorm(model->Parameters(), 1.0).status());
    return adamw->Step(lr);
  };
  for (int step = 0; step < 3; ++step) ASSERT_OK(train_step(*model, step, adamw_update).status());
  StateDict written;
  ASSERT_OK(model->AddToStateDict(written, "model/"));
  ASSERT_OK(adamw->AddToStateDict(written));
  if (dp_->rank() == 0) {
    LocalCommunicator alone("alone");
    ASSERT_OK(WriteCheckpointFile(path, written, alone));
  }
  ASSERT_OK(dp_->Barrier());

  ASSERT_OK_AND_ASSIGN(auto sharded, Gpt::Create({.config = tiny, .seed = 77}));
  ASSERT_OK_AND_ASSIGN(auto zero, ZeroAdamW::Create(*dp_, sharded->Parameters()));
  StateDict state;
  ASSERT_OK(sharded->AddToStateDict(state, "model/"));
  ASSERT_OK(zero->AddToStateDict(state));
  ASSERT_OK(ReadCheckpointFile(path, state, *dp_));
  ASSERT_OK(zero->RestoreStep(state));
  EXPECT_EQ(zero->step(), 3);
  ExpectPiecesOf(state, written);
  auto zero_update = [&](double lr) { return zero->Step(lr, 1.0).status(); };
  for (int step = 3; step < 6; ++step) {
    ASSERT_OK_AND_ASSIGN(double want, train_step(*model, step, adamw_update));
    ASSERT_OK_AND_ASSIGN(double loss, train_step(*sharded, step, zero_update));
    EXPECT_NEAR(loss, want, 1e-6 * want) << "step " << step;
  }
  ASSERT_OK(dp_->Barrier());
  if (dp_->rank() == 0) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace usine
