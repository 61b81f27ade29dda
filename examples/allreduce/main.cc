// allreduce: the smallest distributed usine program. Every rank contributes rank + 1 and
// every rank receives the sum, over MPI under mpirun (or alone without a launcher).
//
//   mpirun -np 4 allreduce
//   rank 0 of 4 on host: sum = 10 (expected 10)
#include <cstdio>

#include "collectives/communicator.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/launch/world.h"

namespace {

absl::Status Run() {
  ASSIGN_OR_RETURN(std::unique_ptr<usine::World> world, usine::World::Init());
  ASSIGN_OR_RETURN(usine::Tensor t, usine::Tensor::Empty({1024}, usine::DType::kF32));
  RETURN_IF_ERROR(usine::Fill(t, world->rank() + 1.0));
  RETURN_IF_ERROR(world->comm().AllReduce(t, usine::ReduceOp::kSum));
  ASSIGN_OR_RETURN(absl::Span<float> values, t.host_span<float>());
  const float expected = world->size() * (world->size() + 1) / 2.0f;
  std::printf("rank %d of %d on %s: sum = %g (expected %g)\n", world->rank(), world->size(),
              world->hostname().c_str(), values[0], expected);
  for (float v : values) {
    if (v != expected) return absl::InternalError("wrong sum");
  }
  return absl::OkStatus();
}

}  // namespace

int main() {
  if (absl::Status status = Run(); !status.ok()) {
    std::fprintf(stderr, "allreduce: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
