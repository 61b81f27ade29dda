// A tensor-parallel MLP (Megatron-LM's) trained tensor- and data-parallel with usine's layers,
// and checked against the same model trained unsplit.
//
//   mpirun -np 2 tp_mlp --tp 2        # TP 2
//   mpirun -np 4 tp_mlp --tp 2        # TP 2 x DP 2
//
// The model is ColumnParallelLinear (each TP rank computes kHidden / tp of the hidden units)
// -> GELU (on those units alone) -> RowParallelLinear (the partial products all-reduced over
// TP, so every rank gets the whole output); runtime/nn/mlp.h is the library's own form of it.
// It learns to regress a fixed random "teacher" MLP, y = W2 gelu(W1 x), from Gaussian inputs.
// Each step's global batch of kBatch rows is split over the DP ranks; a GradientReducer
// averages their gradients; AdamW updates every rank's shard.
//
// Rank 0 also trains a plain copy of the model (Linear layers) on the whole batch. The
// tensor-parallel layers draw the full weights from the seed and keep their shard
// (tensor_parallel.h), so both start from the same model, and the two must give the same loss
// at every step, up to f32 rounding of differently ordered sums. Exit 0 when they do and the
// loss has fallen.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"

#include "collectives/process_grid.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/random.h"
#include "runtime/launch/world.h"
#include "runtime/nn/column_parallel_linear.h"
#include "runtime/nn/gelu.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/row_parallel_linear.h"
#include "runtime/optim/adamw.h"
#include "runtime/train/data_parallel.h"

ABSL_FLAG(int, tp, 2, "tensor-parallel size; must divide the number of ranks");
ABSL_FLAG(int, steps, 300, "training steps");

namespace {

using usine::Tensor;

constexpr int64_t kIn = 32, kHidden = 64, kOut = 16;
constexpr int64_t kBatch = 64;  // Rows per step, over all DP ranks.
constexpr uint64_t kTeacherSeed = 7, kStudentSeed = 1, kDataSeed = 3;
constexpr double kLr = 1e-2;
constexpr double kTolerance = 1e-5;  // On the loss, relative to the unsplit model's.

// x [rows, kIn] -> y [rows, kOut] through c_fc, GELU, c_proj. With `tp` null, plain Linear
// layers; otherwise their tensor-parallel forms over `tp`. Both draw the same initial
// weights from `seed` (the biases start at zero).
class TwoLayerMlp : public usine::Module {
 public:
  using Finished = std::function<absl::Status(usine::Module&)>;

  static absl::StatusOr<std::unique_ptr<TwoLayerMlp>> Create(uint64_t seed, double init_stddev,
                                                             usine::Communicator* tp) {
    auto m = std::unique_ptr<TwoLayerMlp>(new TwoLayerMlp);
    usine::ParameterInitializer init(seed);
    if (tp == nullptr) {
      ASSIGN_OR_RETURN(
          m->c_fc_,
          usine::Linear::Create(
              {.in_features = kIn, .out_features = kHidden, .init_stddev = init_stddev}, init));
      ASSIGN_OR_RETURN(
          m->c_proj_,
          usine::Linear::Create(
              {.in_features = kHidden, .out_features = kOut, .init_stddev = init_stddev}, init));
    } else {
      ASSIGN_OR_RETURN(
          m->c_fc_,
          usine::ColumnParallelLinear::Create(
              {.in_features = kIn, .out_features = kHidden, .init_stddev = init_stddev, .tp = tp},
              init));
      ASSIGN_OR_RETURN(
          m->c_proj_,
          usine::RowParallelLinear::Create(
              {.in_features = kHidden, .out_features = kOut, .init_stddev = init_stddev, .tp = tp},
              init));
    }
    m->AddChild("c_fc", m->c_fc_.get());
    m->AddChild("gelu", &m->gelu_);
    m->AddChild("c_proj", m->c_proj_.get());
    return m;
  }

  absl::StatusOr<Tensor> Forward(const Tensor& x) {
    ASSIGN_OR_RETURN(Tensor h, c_fc_->Forward(x));  // [rows, kHidden / tp]
    ASSIGN_OR_RETURN(h, gelu_.Forward(h));
    return c_proj_->Forward(h);  // [rows, kOut] on every TP rank
  }

  // Adds the gradients of dy into the parameters. `finished`, if set, is called with each
  // layer as soon as its gradients are final, so that their DP reduction can start while
  // backward goes on.
  absl::Status Backward(const Tensor& dy, const Finished& finished) {
    ASSIGN_OR_RETURN(Tensor dh, c_proj_->Backward(dy));
    if (finished) RETURN_IF_ERROR(finished(*c_proj_));
    ASSIGN_OR_RETURN(dh, gelu_.Backward(dh));
    RETURN_IF_ERROR(c_fc_->Backward(dh).status());  // All-reduces dx over TP; unused here.
    if (finished) RETURN_IF_ERROR(finished(*c_fc_));
    return absl::OkStatus();
  }

 private:
  TwoLayerMlp() : gelu_(usine::DType::kF32) {}

  std::unique_ptr<usine::Sublayer> c_fc_;  // Linear or ColumnParallelLinear.
  usine::Gelu gelu_;
  std::unique_ptr<usine::Sublayer> c_proj_;  // Linear or RowParallelLinear.
};

// Rows [first, first + rows) of step `step`'s global batch of inputs. Philox counters make a
// DP rank's rows the same values as the matching rows of the whole batch, so each rank draws
// only its own.
absl::StatusOr<Tensor> Inputs(int step, int64_t first, int64_t rows) {
  ASSIGN_OR_RETURN(Tensor x, Tensor::Empty({rows, kIn}, usine::DType::kF32));
  RETURN_IF_ERROR(usine::RandomNormal(x, kDataSeed, (step * kBatch + first) * kIn));
  return x;
}

// The mean squared error of y against `target`; writes its gradient, 2 (y - target) / n, to dy.
absl::StatusOr<double> MeanSquaredError(const Tensor& y, const Tensor& target, const Tensor& dy) {
  ASSIGN_OR_RETURN(auto ys, y.host_span<const float>());
  ASSIGN_OR_RETURN(auto ts, target.host_span<const float>());
  ASSIGN_OR_RETURN(auto ds, dy.host_span<float>());
  const double n = static_cast<double>(ys.size());
  double sum = 0;
  for (size_t i = 0; i < ys.size(); ++i) {
    const double diff = static_cast<double>(ys[i]) - ts[i];
    sum += diff * diff;
    ds[i] = static_cast<float>(2 * diff / n);
  }
  return sum / n;
}

// One training step of `model` on inputs x: forward, loss, backward, then AdamW. With a
// reducer, the gradients are averaged over its DP group before the update. (For a TokenModel,
// runtime/train/train_step.h is the library's step, with clipping and non-finite checks.)
absl::StatusOr<double> TrainMlpStep(TwoLayerMlp& model, TwoLayerMlp& teacher, usine::AdamW& adamw,
                                    usine::GradientReducer* reducer, const Tensor& x) {
  ASSIGN_OR_RETURN(Tensor target, teacher.Forward(x));
  RETURN_IF_ERROR(model.ZeroGrad());
  ASSIGN_OR_RETURN(Tensor y, model.Forward(x));
  ASSIGN_OR_RETURN(Tensor dy, Tensor::Empty(y.shape(), y.dtype()));
  ASSIGN_OR_RETURN(double loss, MeanSquaredError(y, target, dy));
  if (reducer == nullptr) {
    RETURN_IF_ERROR(model.Backward(dy, nullptr));
  } else {
    RETURN_IF_ERROR(reducer->BeginStep(/*reduce=*/true));
    usine::GradientReadyMarker marker(model, *reducer);
    RETURN_IF_ERROR(
        model.Backward(dy, [&](usine::Module& layer) { return marker.MarkModule(layer); }));
    RETURN_IF_ERROR(reducer->Finish());  // Every gradient is now the average over DP.
  }
  RETURN_IF_ERROR(adamw.Step(kLr));
  return loss;
}

absl::Status Run(int tp_size, int steps) {
  ASSIGN_OR_RETURN(auto world, usine::World::Init());
  ASSIGN_OR_RETURN(auto grid, usine::ProcessGrid::Create(world->comm(), tp_size));
  usine::Communicator& tp = grid->comm(usine::ParallelAxis::kTensor);
  usine::Communicator& dp = grid->comm(usine::ParallelAxis::kData);
  const bool rank0 = world->rank() == 0;
  if (steps < 1) return absl::InvalidArgumentError(absl::StrFormat("--steps %d < 1", steps));
  if (kBatch % dp.size() != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d DP ranks do not divide the batch of %d rows", dp.size(), kBatch));
  }
  const int64_t rows = kBatch / dp.size();  // This DP rank's share of each batch.

  // The teacher, whole on every rank: W ~ normal(0, 1 / sqrt(kIn)) keeps its outputs O(1).
  ASSIGN_OR_RETURN(auto teacher, TwoLayerMlp::Create(kTeacherSeed, 1 / std::sqrt(kIn), nullptr));
  ASSIGN_OR_RETURN(auto model, TwoLayerMlp::Create(kStudentSeed, 0.02, &tp));
  // From here on each parameter's gradient lives in the reducer's buckets.
  ASSIGN_OR_RETURN(auto reducer, usine::AttachGradientReducer(*model, dp));
  ASSIGN_OR_RETURN(auto adamw, usine::AdamW::Create(model->Parameters(), {.weight_decay = 0}));

  // Rank 0's unsplit replica, the TP 1 x DP 1 reference.
  std::unique_ptr<TwoLayerMlp> reference;
  std::unique_ptr<usine::AdamW> reference_adamw;
  if (rank0) {
    ASSIGN_OR_RETURN(reference, TwoLayerMlp::Create(kStudentSeed, 0.02, nullptr));
    ASSIGN_OR_RETURN(reference_adamw,
                     usine::AdamW::Create(reference->Parameters(), {.weight_decay = 0}));
    std::printf("tp_mlp: %s; MLP %lld -> %lld -> %lld, batch %lld\n", grid->DebugString().c_str(),
                (long long)kIn, (long long)kHidden, (long long)kOut, (long long)kBatch);
    for (const usine::NamedParameter& p : model->Parameters()) {
      std::printf("  %-14s this rank holds %s\n", p.name.c_str(),
                  p.parameter->value.DebugString().c_str());
    }
  }

  ASSIGN_OR_RETURN(Tensor global_loss, Tensor::Empty({1}, usine::DType::kF32));
  double first_loss = 0, loss = 0, worst = 0;  // worst: relative difference to the reference.
  for (int step = 0; step < steps; ++step) {
    ASSIGN_OR_RETURN(Tensor x, Inputs(step, dp.rank() * rows, rows));
    ASSIGN_OR_RETURN(double local, TrainMlpStep(*model, *teacher, *adamw, reducer.get(), x));
    // The same on every TP rank; the DP ranks' equal-sized batches average to the global mean.
    ASSIGN_OR_RETURN(auto value, global_loss.host_span<float>());
    value[0] = static_cast<float>(local);
    RETURN_IF_ERROR(dp.AllReduce(global_loss, usine::ReduceOp::kAvg));
    loss = value[0];
    if (step == 0) first_loss = loss;
    if (!rank0) continue;

    ASSIGN_OR_RETURN(Tensor whole, Inputs(step, 0, kBatch));
    ASSIGN_OR_RETURN(double want,
                     TrainMlpStep(*reference, *teacher, *reference_adamw, nullptr, whole));
    worst = std::max(worst, std::abs(loss - want) / want);
    if (step % 50 == 0 || step == steps - 1) {
      std::printf("step %4d  loss %.6f  unsplit %.6f\n", step, loss, want);
    }
  }

  if (!rank0) return absl::OkStatus();
  std::printf("largest relative difference from the unsplit model: %.2e (tolerance %.0e)\n", worst,
              kTolerance);
  if (!(worst <= kTolerance)) {
    return absl::InternalError("the tensor-parallel model differs from the unsplit one");
  }
  if (!(loss < 0.1 * first_loss)) {
    return absl::InternalError(
        absl::StrFormat("the loss did not fall: %g -> %g", first_loss, loss));
  }
  std::printf("OK: loss %.4f -> %.4f, same as the unsplit model\n", first_loss, loss);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = Run(absl::GetFlag(FLAGS_tp), absl::GetFlag(FLAGS_steps));
  // Aborts the whole job, so that ranks still in a collective do not wait for this one.
  if (!status.ok()) usine::World::Abort(status);
  return 0;
}
