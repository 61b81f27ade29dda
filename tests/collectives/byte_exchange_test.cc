// Runs under mpirun at 2 and 4 ranks. Rank r's string has a length and bytes derived from
// r (rank 1's is empty), so every byte of every gathered string is checked.
#include "collectives/byte_exchange.h"

#include <string>
#include <vector>

#include <mpi.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "collectives/local/local_communicator.h"
#include "collectives/mpi/mpi_communicator.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

std::string Message(int rank) {
  if (rank == 1) return "";
  std::string s(1000 * rank + 3, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i * 31 + rank * 7) % 256);
  return s;
}

TEST(ByteExchange, AllGatherGivesEveryRanksStringWhateverItsLength) {
  ASSERT_OK_AND_ASSIGN(auto comm, MpiCommunicator::Create(MPI_COMM_WORLD, "bytes"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> all, AllGatherBytes(*comm, Message(comm->rank())));
  ASSERT_EQ(static_cast<int>(all.size()), comm->size());
  for (int r = 0; r < comm->size(); ++r) EXPECT_EQ(all[r], Message(r)) << "rank " << r;
  // All empty: no second call, and nothing hangs.
  ASSERT_OK_AND_ASSIGN(all, AllGatherBytes(*comm, ""));
  EXPECT_EQ(all, std::vector<std::string>(comm->size()));
}

TEST(ByteExchange, BroadcastReplacesEveryRanksStringWithTheRoots) {
  ASSERT_OK_AND_ASSIGN(auto comm, MpiCommunicator::Create(MPI_COMM_WORLD, "bytes"));
  for (int root : {0, comm->size() - 1}) {
    std::string bytes = Message(comm->rank() + 2);  // Different lengths before the call.
    ASSERT_OK(BroadcastBytes(*comm, root, &bytes));
    EXPECT_EQ(bytes, Message(root + 2));
  }
  std::string emptied = Message(comm->rank() + 2);
  std::string root_empty = comm->rank() == 0 ? "" : emptied;
  ASSERT_OK(BroadcastBytes(*comm, 0, &root_empty));
  EXPECT_EQ(root_empty, "");
}

// The first failing rank's status, on every rank: its own on that rank, elsewhere its code and
// message after the communicator's name and the rank in it.
TEST(ByteExchange, AgreeOnStatusGivesTheFirstFailureNamingCommunicatorAndRank) {
  ASSERT_OK_AND_ASSIGN(auto world, MpiCommunicator::Create(MPI_COMM_WORLD, "world"));
  ASSERT_OK_AND_ASSIGN(auto halves, world->Split(world->rank() % 2, world->rank(), "half"));
  EXPECT_OK(AgreeOnStatus(*halves, absl::OkStatus()));
  const int last = halves->size() - 1;
  const absl::Status mine = halves->rank() >= last
                                ? absl::NotFoundError(absl::StrCat("shard ", halves->rank()))
                                : absl::OkStatus();
  const absl::Status agreed = AgreeOnStatus(*halves, mine);
  if (halves->rank() == last) {
    EXPECT_EQ(agreed, mine);
  } else {
    EXPECT_EQ(agreed, absl::NotFoundError(absl::StrCat("half rank ", last, ": shard ", last)));
  }
}

TEST(ByteExchange, AWorldOfOneIsACopy) {
  LocalCommunicator local("local");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> all, AllGatherBytes(local, "abc"));
  EXPECT_EQ(all, std::vector<std::string>{"abc"});
  std::string bytes = "xyz";
  ASSERT_OK(BroadcastBytes(local, 0, &bytes));
  EXPECT_EQ(bytes, "xyz");
}

}  // namespace
}  // namespace usine
