// Every rank's view of what all ranks write or read: the StateDicts' tensor boxes and
// metadata, exchanged once, with the choices that every rank must make alike (which rank
// writes a box that several ranks hold; whether a tensor's boxes tile it).
//
//   ASSIGN_OR_RETURN(CollectivePlan plan, PlanCollectively(state, comm, PlanPurpose::kWrite));
//
// A collective over `comm` (byte_exchange.h's contract). Errors are found from the gathered
// data, so every rank returns the same one (and none waits for another).
#ifndef USINE_CHECKPOINT_INTERNAL_COLLECTIVE_PLAN_H_
#define USINE_CHECKPOINT_INTERNAL_COLLECTIVE_PLAN_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

#include "checkpoint/state_dict.h"
#include "collectives/communicator.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace usine::checkpoint_internal {

struct PlannedBox {
  std::vector<int64_t> offset;
  Shape extent;
  int owner = 0;  // The lowest rank that holds this box: it writes it, or checksums it.
};

struct PlannedTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape global_shape;
  std::vector<PlannedBox> boxes;  // Distinct boxes of all ranks (a rank may hold several), sorted.
  bool tiled = false;             // The boxes cover every element exactly once.
};

struct CollectivePlan {
  std::vector<PlannedTensor> tensors;             // Sorted by name.
  std::map<std::string, MetadataValue> metadata;  // kWrite only: the union of the ranks'.
};

enum class PlanPurpose {
  kWrite,  // Every tensor must be tiled; metadata is merged (a name with two values fails).
  kRead,   // Tensors need not be tiled (only those that are are checksummed on load).
};

[[nodiscard]] absl::StatusOr<CollectivePlan> PlanCollectively(const StateDict& state,
                                                              Communicator& comm,
                                                              PlanPurpose purpose);

// The piece of `entry` whose box is `box`, or null when this rank holds no such piece.
const TensorPiece* FindPiece(const TensorEntry& entry, const PlannedBox& box);

// A non-empty box that `rank` owns, with its piece.
struct OwnedBox {
  const PlannedBox* box;
  const TensorPiece* piece;
};
// The non-empty boxes of `planned` owned by `rank` (whose entry is `entry`), in plan order.
std::vector<OwnedBox> OwnedBoxes(const PlannedTensor& planned, const TensorEntry& entry, int rank);

// The most non-empty boxes of `planned` that one rank owns: the number of collective writes
// of the tensor, in each of which every rank writes one of its boxes or nothing.
int MaxOwnedBoxes(const PlannedTensor& planned);

}  // namespace usine::checkpoint_internal

#endif  // USINE_CHECKPOINT_INTERNAL_COLLECTIVE_PLAN_H_
