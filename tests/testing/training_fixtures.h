// Fixtures of the multi-rank training tests (Trainer, fine-tuning, inference, optimizer and
// checkpoint state): a temporary directory that every rank sees, token streams a tiny GPT can
// learn, and a copy of a rank's state as it was when saved.
//
//   ASSERT_OK_AND_ASSIGN(dir_, MakeSharedTempDir(*world_, "usine_trainer_mpi"));
//   if (world_->rank() == 0) ASSERT_OK(WriteTokenShard(dir_ + "/train.bin",
//                                                      LearnableTokens(12000, 0), width));
//   ...
//   ASSERT_OK(RemoveSharedTempDir(*world_, dir_));   // in TearDown
#ifndef USINE_TESTS_TESTING_TRAINING_FIXTURES_H_
#define USINE_TESTS_TESTING_TRAINING_FIXTURES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "checkpoint/state_dict.h"
#include "collectives/communicator.h"

namespace usine::testing {

// Rank 0 of `comm` creates /tmp/<prefix>_XXXXXX; every rank gets its path. A collective.
absl::StatusOr<std::string> MakeSharedTempDir(Communicator& comm, const std::string& prefix);

// After a barrier over `comm`, rank 0 removes `dir` and what it holds. A collective.
absl::Status RemoveSharedTempDir(Communicator& comm, const std::string& dir);

// `n` ids below 161: short repeating phrases with some variety (`salt` shifts them).
std::vector<int32_t> LearnableTokens(int64_t n, int salt);

// A deep copy of `state`'s host pieces and its metadata.
absl::StatusOr<StateDict> DeepCopy(const StateDict& state);

}  // namespace usine::testing

#endif  // USINE_TESTS_TESTING_TRAINING_FIXTURES_H_
