// Tensor and data parallelism change how a step is computed, not what it computes: 20
// training steps of the tiny GPT in f32 give the same losses, within 1e-5 relative, at
// TP 1 x DP 1 (the plain model, no communicator), TP 2, DP 2 and TP 2 x DP 2 (and, at 4
// ranks, TP 4 and DP 4). The global batch is the same in every layout: the DP ranks split its
// rows and the reported loss is their average. Runs under mpirun at 2 and 4 ranks; a layout
// needing more ranks than the world has is skipped. On every device: `Cpu` over MPI, `Cuda`
// (f32 products) over NCCL, a GPU per rank (the emulated twins where there are not several:
// label emu), against the plain model on the same device.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "collectives/process_grid.h"
#include "runtime/core/status_macros.h"
#include "runtime/nn/gpt.h"
#include "runtime/optim/adamw.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/train_step.h"
#include "tests/testing/communicator_on_device.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::MakeTensor;
using testing::ReadTensor;

constexpr int kSteps = 20;
constexpr int64_t kBatch = 8;  // Global rows; DP 1, 2 and 4 split it evenly.
constexpr int64_t kSeq = 16;
constexpr double kLr = 1e-3;
constexpr double kMaxGradNorm = 0.5;  // Below every step's norm: clipping always acts.
constexpr uint64_t kSeed = 1337;

GptConfig Tiny() { return GptConfigNamed("tiny").value(); }

// The global batch of `step`, [kBatch, kSeq + 1] u16: two batches in turn, so that the
// model has something to learn within 20 steps.
Tensor GlobalBatch(int step, int64_t vocab) {
  std::vector<uint16_t> ids(kBatch * (kSeq + 1));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<uint16_t>((i * 31 + (step % 2) * 17 + i / 7) % vocab);
  }
  return MakeTensor(Device::Cpu(), {kBatch, kSeq + 1}, ids).value();
}

struct LossCurve {
  std::vector<double> losses;
  std::vector<double> grad_norms;  // Before clipping.
};

// Trains on `device` with tp = null and no data parallelism: the reference.
absl::StatusOr<LossCurve> TrainUnsplitOnce(Device device) {
  ASSIGN_OR_RETURN(auto model, Gpt::Create({.config = Tiny(), .seed = kSeed, .device = device}));
  ASSIGN_OR_RETURN(auto adamw, AdamW::Create(model->Parameters()));
  LossCurve curve;
  for (int step = 0; step < kSteps; ++step) {
    ASSIGN_OR_RETURN(TrainStepResult r,
                     TrainStep(*model, {GlobalBatch(step, Tiny().vocab_size)}, *adamw,
                               {.lr = kLr, .max_grad_norm = kMaxGradNorm}));
    curve.losses.push_back(r.loss);
    curve.grad_norms.push_back(r.grad_norm);
  }
  return curve;
}

// TrainUnsplitOnce(device), trained at the first call for each device of the process.
absl::StatusOr<LossCurve> TrainUnsplit(Device device) {
  static std::map<std::string, LossCurve> curves;
  if (auto it = curves.find(device.ToString()); it != curves.end()) return it->second;
  ASSIGN_OR_RETURN(LossCurve curve, TrainUnsplitOnce(device));
  curves[device.ToString()] = curve;
  return curve;
}

class TpDpEquivalenceTest : public testing::MultiRankDeviceTest {
 protected:
  // Trains at `tp` x `dp` on the first tp * dp ranks of the world (the others wait) and
  // expects their losses to match the unsplit model's.
  void ExpectSameLosses(int tp, int dp) {
    const int group = tp * dp;
    if (group > world_->size()) GTEST_SKIP() << "needs " << group << " ranks";
    const bool member = world_->rank() < group;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Communicator> layout,
                         world_->Split(member ? 0 : 1, world_->rank(), "layout"));
    if (!member) return;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessGrid> grid, ProcessGrid::Create(*layout, tp));
    Communicator& tp_comm = grid->comm(ParallelAxis::kTensor);
    Communicator& dp_comm = grid->comm(ParallelAxis::kData);
    ASSERT_OK_AND_ASSIGN(
        auto model,
        Gpt::Create({.config = Tiny(), .seed = kSeed, .device = here(), .tp = &tp_comm}));
    std::unique_ptr<GradientReducer> reducer;
    if (dp > 1) {
      // Small buckets, so that several all-reduces run per step.
      ASSERT_OK_AND_ASSIGN(reducer,
                           AttachGradientReducer(*model, dp_comm, {.bucket_bytes = 16 << 10}));
      ASSERT_GT(reducer->num_buckets(), 1);
    }
    ASSERT_OK_AND_ASSIGN(auto adamw, AdamW::Create(model->Parameters()));
    ASSERT_OK_AND_ASSIGN(const LossCurve reference, TrainUnsplit(here()));
    // The model is split as asked: this rank holds 1/tp of c_attn's rows.
    const Parameter& c_attn = *model->Parameters()[4].parameter;
    ASSERT_EQ(model->Parameters()[4].name, "h.0.attn.c_attn.weight");
    EXPECT_EQ(c_attn.value.dim(0), 3 * Tiny().n_embd / tp);

    const int64_t rows = kBatch / dp;
    for (int step = 0; step < kSteps; ++step) {
      const Tensor global = GlobalBatch(step, Tiny().vocab_size);
      ASSERT_OK_AND_ASSIGN(Tensor local,
                           global.Slice(dp_comm.rank() * rows, (dp_comm.rank() + 1) * rows));
      ASSERT_OK_AND_ASSIGN(TrainStepResult r, TrainStep(*model, {local}, *adamw,
                                                        {.lr = kLr,
                                                         .max_grad_norm = kMaxGradNorm,
                                                         .reducer = reducer.get(),
                                                         .dp = &dp_comm}));
      const double want = reference.losses[step];
      EXPECT_NEAR(r.loss, want, 1e-5 * want)
          << "step " << step << " at tp " << tp << " x dp " << dp;
      // Adam hardly sees a gradient's scale, so the norm (the whole model's gradient: shards
      // summed over TP, averaged over DP) is checked on its own.
      const double norm = reference.grad_norms[step];
      EXPECT_NEAR(r.grad_norm, norm, 1e-5 * norm)
          << "step " << step << " at tp " << tp << " x dp " << dp;
    }
    // The losses fell: the 20 steps trained the model, so matching them is not trivial.
    EXPECT_LT(reference.losses.back(), reference.losses.front() - 0.3);
    // Replicated parameters (LayerNorms, wpe, row-parallel biases) are updated on every TP
    // rank from the same gradients, so after 20 steps they are still the same bits; and so
    // is every parameter across DP ranks.
    for (const NamedParameter& p : model->Parameters()) {
      if (!p.parameter->split.sharded()) ExpectSameBitsAcross(tp_comm, p);
      ExpectSameBitsAcross(dp_comm, p);
    }
  }

  // Expects `p`'s value to be bit-identical on every rank of `comm`.
  static void ExpectSameBitsAcross(Communicator& comm, const NamedParameter& p) {
    const Tensor& value = p.parameter->value;
    ASSERT_OK_AND_ASSIGN(
        Tensor all, Tensor::Empty({comm.size(), value.numel()}, value.dtype(), value.device()));
    ASSERT_OK(comm.AllGather(value, all));
    ASSERT_OK_AND_ASSIGN(std::vector<float> v, ReadTensor<float>(all));
    for (int r = 1; r < comm.size(); ++r) {
      const size_t bytes = value.nbytes();
      EXPECT_EQ(std::memcmp(v.data(), v.data() + r * value.numel(), bytes), 0)
          << p.name << " differs between ranks 0 and " << r << " of " << comm.name();
    }
  }
};

TEST_P(TpDpEquivalenceTest, Tp2MatchesTheUnsplitModel) { ExpectSameLosses(2, 1); }
TEST_P(TpDpEquivalenceTest, Dp2MatchesTheUnsplitModel) { ExpectSameLosses(1, 2); }
TEST_P(TpDpEquivalenceTest, Tp2Dp2MatchesTheUnsplitModel) { ExpectSameLosses(2, 2); }
TEST_P(TpDpEquivalenceTest, Tp4MatchesTheUnsplitModel) { ExpectSameLosses(4, 1); }
TEST_P(TpDpEquivalenceTest, Dp4MatchesTheUnsplitModel) { ExpectSameLosses(1, 4); }

// Logits gathered from a TP group are the unsplit model's (the columns interleaved back from
// the vocabulary slices, the padding left out).
TEST_P(TpDpEquivalenceTest, TensorParallelLogitsAreTheUnsplitModels) {
  const int tp = world_->size();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProcessGrid> grid, ProcessGrid::Create(*world_, tp));
  ASSERT_OK_AND_ASSIGN(auto split, Gpt::Create({.config = Tiny(),
                                                .seed = kSeed,
                                                .device = here(),
                                                .tp = &grid->comm(ParallelAxis::kTensor)}));
  ASSERT_OK_AND_ASSIGN(auto whole,
                       Gpt::Create({.config = Tiny(), .seed = kSeed, .device = here()}));
  const Tensor batch = GlobalBatch(0, Tiny().vocab_size);
  ASSERT_OK_AND_ASSIGN(Tensor inputs, Tensor::Empty({kBatch, kSeq}, DType::kU16));
  for (int64_t b = 0; b < kBatch; ++b) {
    std::memcpy(static_cast<uint16_t*>(inputs.raw_data()) + b * kSeq,
                static_cast<const uint16_t*>(batch.raw_data()) + b * (kSeq + 1),
                kSeq * sizeof(uint16_t));
  }
  ASSERT_OK_AND_ASSIGN(Tensor want, whole->Logits(inputs));
  ASSERT_OK_AND_ASSIGN(Tensor got, split->Logits(inputs));
  ASSERT_EQ(got.shape(), want.shape());
  ASSERT_OK_AND_ASSIGN(std::vector<float> w, ReadTensor<float>(want));
  ASSERT_OK_AND_ASSIGN(std::vector<float> g, ReadTensor<float>(got));
  for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(g[i], w[i], 1e-5) << "logit " << i;
}

USINE_INSTANTIATE_DEVICE_TESTS(TpDpEquivalenceTest);

}  // namespace
}  // namespace usine
