#include "examples/allreduce_perf/reducer_overlap.h"

#include <cstdio>
#include <string>
#include <vector>

#include <mpi.h>

#include "absl/strings/str_cat.h"

#include "collectives/gradient_reducer.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/matmul.h"
#include "runtime/kernels/random.h"

namespace usine {
namespace {

// The slowest rank's value.
double Max(double seconds) {
  MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return seconds;
}

}  // namespace

absl::Status MeasureReducerOverlap(World& world, const OverlapShape& shape) {
  const int64_t h = shape.hidden, t = shape.tokens;
  // (out, in) of each weight, in registration (forward) order.
  std::vector<std::pair<int64_t, int64_t>> dims;
  std::vector<GradientSpec> specs;
  for (int l = 0; l < shape.layers; ++l) {
    for (auto [name, out, in] : {std::tuple<const char*, int64_t, int64_t>{"qkv", 3 * h, h},
                                 {"proj", h, h},
                                 {"fc", 4 * h, h},
                                 {"fc_proj", h, 4 * h}}) {
      specs.push_back({absl::StrCat("layer", l, ".", name), Shape{out, in}, DType::kF32});
      dims.emplace_back(out, in);
    }
  }
  ASSIGN_OR_RETURN(auto reducer, GradientReducer::Create(world.comm(), specs));
  // Activations and output gradients: one (dY, X) pair per weight shape, shared by layers.
  ASSIGN_OR_RETURN(Tensor x_h, Tensor::Empty({t, h}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor x_4h, Tensor::Empty({t, 4 * h}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor dy_3h, Tensor::Empty({t, 3 * h}, DType::kF32));
  ASSIGN_OR_RETURN(Tensor dy_4h, Tensor::Empty({t, 4 * h}, DType::kF32));
  for (const Tensor* a : {&x_h, &x_4h, &dy_3h, &dy_4h}) {
    RETURN_IF_ERROR(RandomNormal(*a, world.rank() + 1, 0));
  }
  auto input = [&](int64_t in) -> const Tensor& { return in == h ? x_h : x_4h; };
  auto output_grad = [&](int64_t out) -> const Tensor& {
    return out == 3 * h ? dy_3h : out == 4 * h ? dy_4h : x_h;
  };
  // One backward pass: gradients in reverse order, each dW += dY^T X.
  auto backward = [&](bool reduce) -> absl::Status {
    RETURN_IF_ERROR(reducer->BeginStep(reduce));
    for (int i = static_cast<int>(dims.size()) - 1; i >= 0; --i) {
      const auto [out, in] = dims[i];
      RETURN_IF_ERROR(Matmul(output_grad(out), input(in), reducer->gradient(i),
                             {.transpose_a = true, .beta = 1.0f}));
      RETURN_IF_ERROR(reducer->MarkReady(i));
    }
    return absl::OkStatus();
  };

  RETURN_IF_ERROR(backward(true));  // Warm-up.
  RETURN_IF_ERROR(reducer->Finish());
  double backward_with = 1e30, exposed = 1e30, backward_alone = 1e30, after = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime();
    RETURN_IF_ERROR(backward(true));
    const double backward_end = MPI_Wtime();
    RETURN_IF_ERROR(reducer->Finish());
    const double done = MPI_Wtime();
    backward_with = std::min(backward_with, Max(backward_end - start));
    exposed = std::min(exposed, Max(done - backward_end));

    MPI_Barrier(MPI_COMM_WORLD);
    start = MPI_Wtime();
    RETURN_IF_ERROR(backward(false));
    backward_alone = std::min(backward_alone, Max(MPI_Wtime() - start));
    RETURN_IF_ERROR(reducer->Finish());

    MPI_Barrier(MPI_COMM_WORLD);
    start = MPI_Wtime();
    for (int i = 0; i < reducer->num_gradients(); ++i) {
      RETURN_IF_ERROR(world.comm().AllReduce(reducer->gradient(i), ReduceOp::kAvg));
    }
    after = std::min(after, Max(MPI_Wtime() - start));
  }
  if (world.rank() == 0) {
    int64_t bytes = 0;
    for (const GradientSpec& s : specs) bytes += s.shape.numel() * 4;
    std::printf(
        "# GradientReducer overlap: %d ranks, %d layers x hidden %d, %d tokens, %.1f MB of "
        "gradients in %d buckets\n"
        "  backward with reductions %.1f ms | exposed communication %.1f ms = %.1f%% of backward "
        "| backward alone %.1f ms | reductions after backward, not overlapped %.1f ms\n",
        world.size(), shape.layers, shape.hidden, shape.tokens, bytes / 1e6, reducer->num_buckets(),
        backward_with * 1e3, exposed * 1e3, 100 * exposed / backward_with, backward_alone * 1e3,
        after * 1e3);
  }
  return absl::OkStatus();
}

}  // namespace usine
