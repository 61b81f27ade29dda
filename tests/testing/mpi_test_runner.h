// Runs a gtest binary's tests under mpirun (usine_mpi_test and usine_emulated_mpi_test in
// cmake/): every rank runs every test. Rank 0 prints gtest's usual output; other ranks print
// only their failures, each line prefixed with the rank, so a failure on any rank is visible
// without N copies of the same report.
//
//   int main(int argc, char** argv) { return usine::testing::RunTestsOnEveryRank(argc, argv); }
#ifndef USINE_TESTS_TESTING_MPI_TEST_RUNNER_H_
#define USINE_TESTS_TESTING_MPI_TEST_RUNNER_H_

#include <functional>

#include "gtest/gtest.h"

namespace usine::testing {

// Initialises MPI (MPI_THREAD_MULTIPLE) and gtest, runs the tests, finalises MPI, and returns
// the process's exit code, the same on every rank: non-zero if any rank failed. `listener`,
// when given, is appended to gtest's listeners (which own it); `failed_here`, when given, is
// asked after the tests whether this rank failed by a measure of the caller's own (errors no
// assertion sees), and counts as a failure of the rank when true.
int RunTestsOnEveryRank(int argc, char** argv, ::testing::TestEventListener* listener = nullptr,
                        const std::function<bool()>& failed_here = nullptr);

}  // namespace usine::testing

#endif  // USINE_TESTS_TESTING_MPI_TEST_RUNNER_H_
