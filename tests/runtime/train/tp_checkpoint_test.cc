// Checkpoints of a tensor-parallel model and its optimizer, loaded at other layouts. The tiny
// GPT (f32, cpu) trained at TP 2 x DP (world / 2) and saved to one file by a Checkpointer over
// the world is loaded (a) at TP 1 on every rank, (b) at TP = world size, (c) at TP 2 x DP with
// ZeroAdamW: the loaded parameters and AdamW moments are the writer's, bit for bit, and
// training on from them gives the writer's next losses within 1e-5 relative (the layouts add
// in other orders). ZeroAdamW at TP 2 is checked against AdamW at TP 2 (losses and gradient
// norms), and its checkpoint loads into AdamW at TP 1. Runs under mpirun at 2 and 4 ranks.
#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

#include "checkpoint/checkpointer.h"
#include "collectives/byte_exchange.h"
#include "collectives/mpi/mpi_communicator.h"
#include "collectives/process_grid.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/zero_adamw.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/train_step.h"
#include "tests/testing/device_test.h"
#include "tests/testing/training_fixtures.h"

namespace usine {
namespace {

using testing::MakeTensor;

constexpr int kSaveAfter = 3;  // Steps trained before the save.
constexpr int kMore = 3;       // Steps trained on from it.
constexpr int64_t kBatch = 8;  // Global rows; DP 1, 2 and 4 split it evenly.
constexpr int64_t kSeq = 16;
constexpr double kLr = 1e-3;
constexpr double kMaxGradNorm = 0.5;  // Below every step's norm: clipping always acts.
constexpr uint64_t kSeed = 1337;
constexpr uint64_t kOtherSeed = 99;  // Of the loaders: the load must replace every weight.

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

// The global batch of `step`, [kBatch, kSeq + 1] u16.
Tensor GlobalBatch(int step) {
  std::vector<uint16_t> ids(kBatch * (kSeq + 1));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<uint16_t>((i * 31 + static_cast<size_t>(step) * 17 + i / 7) %
                                   static_cast<size_t>(Tiny().vocab_size));
  }
  return MakeTensor(Device::Cpu(), {kBatch, kSeq + 1}, ids).value();
}

enum class Optimizer { kAdamW, kZero };

// A model and its optimizer at one layout: TP tp x DP (world / tp) over `world`, or alone
// (world null: no tensor or data parallelism).
struct Training {
  std::unique_ptr<ProcessGrid> grid;
  std::unique_ptr<Gpt> model;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<AdamW> adamw;
  std::unique_ptr<ZeroAdamW> zero;

  static absl::StatusOr<Training> Create(Communicator* world, int tp, Optimizer optimizer,
                                         uint64_t seed) {
    Training run;
    GptOptions options{.config = Tiny(), .seed = seed};
    if (world != nullptr) {
      ASSIGN_OR_RETURN(run.grid, ProcessGrid::Create(*world, tp));
      options.tp = &run.grid->comm(ParallelAxis::kTensor);
    }
    ASSIGN_OR_RETURN(run.model, Gpt::Create(options));
    if (optimizer == Optimizer::kZero) {
      ASSIGN_OR_RETURN(run.zero, ZeroAdamW::Create(run.grid->comm(ParallelAxis::kData),
                                                   run.model->Parameters(), {}, options.tp));
      return run;
    }
    if (run.dp() != nullptr && run.dp()->size() > 1) {
      ASSIGN_OR_RETURN(run.reducer, AttachGradientReducer(*run.model, *run.dp()));
    }
    ASSIGN_OR_RETURN(run.adamw, AdamW::Create(run.model->Parameters()));
    return run;
  }

  Communicator* dp() const { return grid == nullptr ? nullptr : &grid->comm(ParallelAxis::kData); }

  // Handles on the model's parameters ("model/...") and the optimizer's state ("optim/...").
  absl::StatusOr<StateDict> State() const {
    StateDict state;
    RETURN_IF_ERROR(model->AddToStateDict(state, "model/"));
    RETURN_IF_ERROR(zero != nullptr ? zero->AddToStateDict(state) : adamw->AddToStateDict(state));
    return state;
  }
  absl::Status RestoreStep(const StateDict& state) {
    return zero != nullptr ? zero->RestoreStep(state) : adamw->RestoreStep(state);
  }

  // One training step on this DP rank's rows of the global batch.
  absl::StatusOr<TrainStepResult> Step(int step) {
    const int ranks = dp() == nullptr ? 1 : dp()->size();
    const int rank = dp() == nullptr ? 0 : dp()->rank();
    const int64_t rows = kBatch / ranks;
    ASSIGN_OR_RETURN(Tensor local, GlobalBatch(step).Slice(rank * rows, (rank + 1) * rows));
    const TrainStepOptions options{
        .lr = kLr, .max_grad_norm = kMaxGradNorm, .reducer = reducer.get(), .dp = dp()};
    if (adamw != nullptr) return TrainStep(*model, {local}, *adamw, options);
    return TrainStep(*model, {local}, *zero, options);
  }
};

// Expects every element of every piece of `pieces` to have the bits of the element at its
// place in `whole` (a dict of whole f32 tensors, e.g. loaded at TP 1). Over all ranks, the
// pieces of a writer tile every tensor, so together the ranks compare every element.
void ExpectPiecesOf(const StateDict& pieces, const StateDict& whole, const std::string& what) {
  for (const auto& [name, entry] : pieces.tensors()) {
    ASSERT_EQ(whole.tensors().count(name), 1u) << what << ": " << name;
    const TensorEntry& full = whole.tensors().at(name);
    ASSERT_TRUE(full.whole()) << name;
    ASSERT_EQ(entry.global_shape, full.global_shape) << what << ": " << name;
    const Shape& shape = full.global_shape;
    // f32 compared as bits: equal values with other bits (-0 and 0, NaNs) are not the same.
    const uint32_t* w = static_cast<const uint32_t*>(full.pieces[0].tensor.raw_data());
    for (const TensorPiece& piece : entry.pieces) {
      const uint32_t* p = static_cast<const uint32_t*>(piece.tensor.raw_data());
      for (int64_t i = 0; i < piece.tensor.numel(); ++i) {
        int64_t index = 0, rest = i, scale = 1;
        for (int d = shape.rank() - 1; d >= 0; --d) {
          index += (piece.offset[d] + rest % piece.tensor.dim(d)) * scale;
          rest /= piece.tensor.dim(d);
          scale *= shape.dim(d);
        }
        ASSERT_EQ(p[i], w[index]) << what << ": " << name << "[" << index << "] is "
                                  << std::bit_cast<float>(p[i]) << ", want "
                                  << std::bit_cast<float>(w[index]) << " (piece at ["
                                  << absl::StrJoin(piece.offset, ", ") << "])";
      }
    }
  }
}

class TpCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(world_, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
    if (world_->rank() == 0) {
      char tmpl[] = "/tmp/usine_tp_ckpt_XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
    }
    ASSERT_OK(BroadcastBytes(*world_, 0, &dir_));
    CheckpointerOptions options;
    options.directory = dir_;
    ASSERT_OK_AND_ASSIGN(checkpointer_, Checkpointer::Create(*world_, options));
  }
  void TearDown() override {
    checkpointer_.reset();
    ASSERT_OK(world_->Barrier());
    if (world_->rank() == 0) std::filesystem::remove_all(dir_);
  }

  // Trains `writer` kSaveAfter steps, saves it, and trains kMore steps more. Returns the
  // deep copy of what it saved; *losses gets the kMore losses after the save.
  StateDict TrainSaveAndGoOn(Training& writer, std::vector<double>* losses) {
    for (int step = 0; step < kSaveAfter; ++step) EXPECT_OK(writer.Step(step).status());
    absl::StatusOr<StateDict> state = writer.State();
    EXPECT_OK(state.status());
    EXPECT_OK(checkpointer_->Save(kSaveAfter, *state));
    StateDict saved = testing::DeepCopy(*state).value();
    // The save has copied its snapshot: training on changes nothing saved.
    for (int step = kSaveAfter; step < kSaveAfter + kMore; ++step) {
      absl::StatusOr<TrainStepResult> r = writer.Step(step);
      EXPECT_OK(r.status());
      losses->push_back(r.ok() ? r->loss : 0);
    }
    EXPECT_OK(checkpointer_->Wait());
    return saved;
  }

  // Loads the checkpoint into `run`, then expects the next kMore losses to be `want`'s.
  void LoadAndGoOn(Training& run, StateDict& state, const std::vector<double>& want,
                   const std::string& what) {
    ASSERT_OK_AND_ASSIGN(int64_t step, checkpointer_->LoadLatest(state));
    EXPECT_EQ(step, kSaveAfter);
    ASSERT_OK(run.RestoreStep(state));
    for (int i = 0; i < kMore; ++i) {
      ASSERT_OK_AND_ASSIGN(TrainStepResult r, run.Step(kSaveAfter + i));
      EXPECT_NEAR(r.loss, want[i], 1e-5 * want[i]) << what << ", step " << kSaveAfter + i;
    }
  }

  std::unique_ptr<MpiCommunicator> world_;
  std::string dir_;
  std::unique_ptr<Checkpointer> checkpointer_;
};

TEST_F(TpCheckpointTest, AdamWAtTp2LoadsAtTp1AtTheWorldsSizeAndIntoZeroAdamW) {
  ASSERT_OK_AND_ASSIGN(Training writer,
                       Training::Create(world_.get(), 2, Optimizer::kAdamW, kSeed));
  std::vector<double> want;
  const StateDict written = TrainSaveAndGoOn(writer, &want);
  // c_attn's shards are three boxes (q, k, v) of the weight and of each moment.
  for (const char* name : {"model/h.0.attn.c_attn.weight", "optim/exp_avg/h.0.attn.c_attn.weight",
                           "optim/exp_avg_sq/h.1.attn.c_attn.bias"}) {
    EXPECT_EQ(written.tensors().at(name).pieces.size(), 3u) << name;
  }
  EXPECT_EQ(written.tensors().at("optim/exp_avg/h.0.mlp.c_proj.weight").global_shape,
            Shape({Tiny().n_embd, 4 * Tiny().n_embd}));

  // (a) TP 1 on every rank: whole tensors, equal to every writer's pieces.
  ASSERT_OK_AND_ASSIGN(Training alone, Training::Create(nullptr, 1, Optimizer::kAdamW, kOtherSeed));
  ASSERT_OK_AND_ASSIGN(StateDict whole, alone.State());
  ASSERT_OK_AND_ASSIGN(int64_t step, checkpointer_->LoadLatest(whole));
  EXPECT_EQ(step, kSaveAfter);
  ASSERT_EQ(whole.tensors().size(), written.tensors().size());
  ExpectPiecesOf(written, whole, "writer at TP 2 against TP 1");
  ASSERT_OK_AND_ASSIGN(const StateDict reference, testing::DeepCopy(whole));
  {
    ASSERT_OK_AND_ASSIGN(StateDict state, alone.State());
    LoadAndGoOn(alone, state, want, "TP 1");
  }
  // (b) TP = the world's size (4 at 4 ranks: other pieces than the writer's).
  {
    ASSERT_OK_AND_ASSIGN(Training wide, Training::Create(world_.get(), world_->size(),
                                                         Optimizer::kAdamW, kOtherSeed));
    ASSERT_OK_AND_ASSIGN(StateDict state, wide.State());
    LoadAndGoOn(wide, state, want, absl::StrCat("TP ", world_->size()));
    ASSERT_OK_AND_ASSIGN(StateDict loaded, wide.State());
    EXPECT_EQ(loaded.tensors().size(), written.tensors().size());
  }
  // (c) ZeroAdamW at TP 2 x DP: ranges of the flattened shards, a few boxes each.
  {
    ASSERT_OK_AND_ASSIGN(Training zero,
                         Training::Create(world_.get(), 2, Optimizer::kZero, kOtherSeed));
    ASSERT_OK_AND_ASSIGN(StateDict state, zero.State());
    ASSERT_OK_AND_ASSIGN(int64_t loaded_step, checkpointer_->LoadLatest(state));
    EXPECT_EQ(loaded_step, kSaveAfter);
    ExpectPiecesOf(state, reference, "ZeroAdamW at TP 2");
    ASSERT_OK_AND_ASSIGN(StateDict fresh, zero.State());
    LoadAndGoOn(zero, fresh, want, "ZeroAdamW at TP 2");
  }
}

// The whole model's gradient norm (shards added over TP, replicated parameters once) is what
// AdamW's TrainStep clips by: ZeroAdamW at TP 2 x DP gives the same norms and losses, and
// keeps the replicated parameters equal on the TP ranks.
TEST_F(TpCheckpointTest, ZeroAdamWAtTp2TrainsLikeAdamW) {
  ASSERT_OK_AND_ASSIGN(Training adamw, Training::Create(world_.get(), 2, Optimizer::kAdamW, kSeed));
  ASSERT_OK_AND_ASSIGN(Training zero, Training::Create(world_.get(), 2, Optimizer::kZero, kSeed));
  for (int step = 0; step < 8; ++step) {
    ASSERT_OK_AND_ASSIGN(TrainStepResult want, adamw.Step(step));
    ASSERT_OK_AND_ASSIGN(TrainStepResult got, zero.Step(step));
    EXPECT_NEAR(got.loss, want.loss, 1e-5 * want.loss) << "step " << step;
    EXPECT_NEAR(got.grad_norm, want.grad_norm, 1e-5 * want.grad_norm) << "step " << step;
  }
  Communicator& tp = zero.grid->comm(ParallelAxis::kTensor);
  for (const NamedParameter& p : zero.model->Parameters()) {
    if (p.parameter->split.sharded()) continue;
    const Tensor& value = p.parameter->value;
    ASSERT_OK_AND_ASSIGN(Tensor all, Tensor::Empty({tp.size(), value.numel()}, value.dtype()));
    ASSERT_OK(tp.AllGather(value, all));
    EXPECT_EQ(std::memcmp(all.raw_data(), static_cast<const char*>(all.raw_data()) + value.nbytes(),
                          value.nbytes()),
              0)
        << p.name << " differs between the TP ranks";
  }
}

TEST_F(TpCheckpointTest, ZeroAdamWAtTp2WritesWhatAdamWLoadsAtTp1) {
  ASSERT_OK_AND_ASSIGN(Training writer, Training::Create(world_.get(), 2, Optimizer::kZero, kSeed));
  std::vector<double> want;
  const StateDict written = TrainSaveAndGoOn(writer, &want);
  ASSERT_OK_AND_ASSIGN(Training alone, Training::Create(nullptr, 1, Optimizer::kAdamW, kOtherSeed));
  ASSERT_OK_AND_ASSIGN(StateDict whole, alone.State());
  ASSERT_OK_AND_ASSIGN(int64_t step, checkpointer_->LoadLatest(whole));
  EXPECT_EQ(step, kSaveAfter);
  ExpectPiecesOf(written, whole, "ZeroAdamW writer at TP 2 against TP 1");
  ASSERT_OK_AND_ASSIGN(StateDict state, alone.State());
  LoadAndGoOn(alone, state, want, "AdamW at TP 1 from ZeroAdamW at TP 2");
}

TEST_F(TpCheckpointTest, ZeroAdamWRefusesAShardWithoutItsTensorParallelGroup) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessGrid> grid, ProcessGrid::Create(*world_, 2));
  ASSERT_OK_AND_ASSIGN(
      auto model,
      Gpt::Create({.config = Tiny(), .seed = kSeed, .tp = &grid->comm(ParallelAxis::kTensor)}));
  const absl::Status status =
      ZeroAdamW::Create(grid->comm(ParallelAxis::kData), model->Parameters()).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("ZeroAdamW parameter wte.weight is a shard of a split over 2"),
            std::string::npos)
      << status;
}

}  // namespace
}  // namespace usine
