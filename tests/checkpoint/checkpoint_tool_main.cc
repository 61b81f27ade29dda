// A program for the checkpoint tests that need whole processes (alone or under mpirun):
//
//   checkpoint_tool save DIR STEPS MIB   saves steps 1..STEPS of the test model plus a tensor
//                                        "big" of MIB MiB, at TP = the world size
//   checkpoint_tool verify DIR           loads `latest` at TP = the world size and checks
//                                        every element; prints "verified step N"
//
// Element values are known (checkpoint_test_util.h; big[i] = i % 1000003 + step), so a
// load checks exactly what the save of that step wrote. Exit code 0 on success.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "checkpoint/checkpointer.h"
#include "runtime/launch/world.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace usine {
namespace {

using testing::Fill;

absl::Status AddBig(StateDict& state, const World& world, int64_t mib, int64_t step, bool fill) {
  const int64_t rows = mib * (1 << 18) / 1024;  // f32 rows of 1024 elements.
  const int64_t mine = rows / world.size();
  ASSIGN_OR_RETURN(Tensor piece, Tensor::Empty({mine, 1024}, DType::kF32));
  ASSIGN_OR_RETURN(absl::Span<float> values, piece.host_span<float>());
  const int64_t first = mine * world.rank() * 1024;
  for (int64_t i = 0; i < piece.numel(); ++i) {
    values[i] = fill ? static_cast<float>((first + i) % 1000003 + step) : -1.0f;
  }
  state.SetInt("big_mib", mib);
  return state.AddShard("big", piece, Shape{mine * world.size(), 1024}, {mine * world.rank(), 0});
}

absl::Status Save(const World& world, const std::string& dir, int64_t steps, int64_t mib) {
  CheckpointerOptions options;
  options.directory = dir;
  ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Create(world.comm(), options));
  for (int64_t step = 1; step <= steps; ++step) {
    ASSIGN_OR_RETURN(StateDict state,
                     testing::MakeModel(world.rank(), world.size(), Fill::kValues, world.rank()));
    RETURN_IF_ERROR(AddBig(state, world, mib, step, true));
    state.SetInt("step", step);
    RETURN_IF_ERROR(ckpt->Save(step, state));
  }
  return ckpt->Wait();
}

absl::Status Verify(const World& world, const std::string& dir) {
  CheckpointerOptions options;
  options.directory = dir;
  ASSIGN_OR_RETURN(auto ckpt, Checkpointer::Create(world.comm(), options));
  // The size of "big" comes from the file's metadata: load the model first.
  ASSIGN_OR_RETURN(StateDict state,
                   testing::MakeModel(world.rank(), world.size(), Fill::kSentinel));
  ASSIGN_OR_RETURN(int64_t step, ckpt->LoadLatest(state));
  const std::string wrong = testing::CheckModel(state);
  if (!wrong.empty()) return absl::DataLossError(wrong);
  ASSIGN_OR_RETURN(int64_t mib, state.GetInt("big_mib"));
  StateDict big;
  RETURN_IF_ERROR(AddBig(big, world, mib, step, false));
  ASSIGN_OR_RETURN(int64_t loaded, ckpt->LoadLatest(big));
  if (loaded != step) return absl::InternalError("latest changed while loading");
  const TensorPiece& piece = big.tensors().at("big").pieces.front();
  ASSIGN_OR_RETURN(absl::Span<float> values, piece.tensor.host_span<float>());
  const int64_t first = piece.offset[0] * 1024;
  for (size_t i = 0; i < values.size(); ++i) {
    const float want = static_cast<float>((first + static_cast<int64_t>(i)) % 1000003 + step);
    if (values[i] != want) {
      return absl::DataLossError(
          absl::StrCat("big[", first + i, "] = ", values[i], ", want ", want));
    }
  }
  if (world.rank() == 0) std::printf("verified step %ld\n", static_cast<long>(step));
  return absl::OkStatus();
}

absl::Status Main(int argc, char** argv) {
  WorldOptions world_options;
  world_options.bind_device = false;
  ASSIGN_OR_RETURN(std::unique_ptr<World> world, World::Init(world_options));
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "save" && argc == 5) {
    int64_t steps = 0, mib = 0;
    if (!absl::SimpleAtoi(argv[3], &steps) || !absl::SimpleAtoi(argv[4], &mib)) {
      return absl::InvalidArgumentError("STEPS and MIB are integers");
    }
    return Save(*world, argv[2], steps, mib);
  }
  if (mode == "verify" && argc == 3) return Verify(*world, argv[2]);
  return absl::InvalidArgumentError("usage: checkpoint_tool save DIR STEPS MIB | verify DIR");
}

}  // namespace
}  // namespace usine

int main(int argc, char** argv) {
  const absl::Status status = usine::Main(argc, argv);
  if (!status.ok()) {
    std::fprintf(stderr, "checkpoint_tool: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
