// The job that watchdog_e2e_test.sh breaks: every rank all-reduces in a loop, writing its
// pid to DIR/rank<r>.pid first.   Usage: watchdog_e2e_main DIR TIMEOUT_SECONDS
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "runtime/kernels/elementwise.h"
#include "runtime/launch/world.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR TIMEOUT_SECONDS\n", argv[0]);
    return 2;
  }
  usine::WorldOptions options;
  options.communicator.timeout = absl::Seconds(std::atoi(argv[2]));
  absl::StatusOr<std::unique_ptr<usine::World>> world = usine::World::Init(options);
  if (!world.ok()) usine::World::Abort(world.status());
  std::ofstream(absl::StrCat(argv[1], "/rank", (*world)->rank(), ".pid")) << getpid() << "\n";
  absl::StatusOr<usine::Tensor> t = usine::Tensor::Empty({1024}, usine::DType::kF32);
  if (!t.ok()) usine::World::Abort(t.status());
  for (int step = 0; step < 100000; ++step) {
    absl::Status status = usine::Fill(*t, 1.0);
    if (status.ok()) status = (*world)->comm().AllReduce(*t, usine::ReduceOp::kSum);
    if (!status.ok()) usine::World::Abort(status);
    usleep(10000);
  }
  return 0;
}
