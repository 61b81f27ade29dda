#include "collectives/process_grid.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"

namespace usine {

absl::string_view ParallelAxisName(ParallelAxis axis) {
  return axis == ParallelAxis::kTensor ? "tp" : "dp";
}

absl::StatusOr<std::unique_ptr<ProcessGrid>> ProcessGrid::Create(Communicator& world, int tp_size) {
  if (tp_size < 1 || world.size() % tp_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tensor-parallel size ", tp_size, " does not divide the world size ", world.size()));
  }
  const int tp_rank = world.rank() % tp_size;
  const int dp_rank = world.rank() / tp_size;
  std::array<std::unique_ptr<Communicator>, kNumParallelAxes> comms;
  // Ranks of one TP group share dp_rank (the color) and are ordered by tp_rank; DP groups
  // are the ranks with the same tp_rank.
  ASSIGN_OR_RETURN(comms[static_cast<int>(ParallelAxis::kTensor)],
                   world.Split(/*color=*/dp_rank, /*key=*/tp_rank, "tp"));
  ASSIGN_OR_RETURN(comms[static_cast<int>(ParallelAxis::kData)],
                   world.Split(/*color=*/tp_rank, /*key=*/dp_rank, "dp"));
  return std::unique_ptr<ProcessGrid>(new ProcessGrid(world, std::move(comms)));
}

std::string ProcessGrid::DebugString() const {
  return absl::StrCat("dp ", size(ParallelAxis::kData), " x tp ", size(ParallelAxis::kTensor),
                      " (this rank: dp ", rank(ParallelAxis::kData), ", tp ",
                      rank(ParallelAxis::kTensor), ")");
}

}  // namespace usine
