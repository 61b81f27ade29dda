// The ranks of a job arranged as a grid of parallel axes, innermost first: tensor parallel
// (TP) groups of adjacent ranks, so that a TP group sits on one node, then data parallel
// (DP) across them. world rank = dp_rank * tp_size + tp_rank.
//
//   ASSIGN_OR_RETURN(auto grid, ProcessGrid::Create(world.comm(), /*tp_size=*/2));
//   RETURN_IF_ERROR(grid->comm(ParallelAxis::kData).AllReduce(grads, ReduceOp::kAvg));
//   const int shard = grid->rank(ParallelAxis::kTensor);
//
// Users name axes rather than positions, so that a pipeline axis can be added between TP
// and DP later without changing them. Not thread-safe to create; the communicators follow
// communicator.h.
#ifndef USINE_COLLECTIVES_PROCESS_GRID_H_
#define USINE_COLLECTIVES_PROCESS_GRID_H_

#include <array>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"

namespace usine {

enum class ParallelAxis { kTensor = 0, kData = 1 };
inline constexpr int kNumParallelAxes = 2;

absl::string_view ParallelAxisName(ParallelAxis axis);  // "tp", "dp"

class ProcessGrid {
 public:
  // A collective over `world`, which must outlive the grid. tp_size must divide world.size().
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ProcessGrid>> Create(Communicator& world,
                                                                           int tp_size);

  Communicator& world() const { return world_; }
  // The communicator of the ranks that differ from this one only along `axis`.
  Communicator& comm(ParallelAxis axis) const { return *comms_[static_cast<int>(axis)]; }
  int rank(ParallelAxis axis) const { return comm(axis).rank(); }
  int size(ParallelAxis axis) const { return comm(axis).size(); }

  // "dp 2 x tp 4 (this rank: dp 1, tp 3)".
  std::string DebugString() const;

 private:
  ProcessGrid(Communicator& world,
              std::array<std::unique_ptr<Communicator>, kNumParallelAxes> comms)
      : world_(world), comms_(std::move(comms)) {}
  Communicator& world_;
  std::array<std::unique_ptr<Communicator>, kNumParallelAxes> comms_;
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_PROCESS_GRID_H_
