// The NCCL backend when NCCL fails a call after taking it in, as when a peer dies while the call
// runs: a failure a GPU does not make on demand, made here by the emulated NCCL
// (cuda_emulator.h's FailNextNcclCallInTheBackground), in a world of one. Checked: a waited call
// fails its Wait; a stream-ordered call, which nobody waits on, fails the communicator's next
// call before that one starts, or, when no call follows, is found by the watchdog, which logs
// it and aborts the communicator; destroying the communicator reports it.
// (FailNextNcclCallInTheBackground is process-wide, and each case consumes it.) In every case the
// error names the call that failed and NCCL's reason, and later calls fail instead of running.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "collectives/nccl/nccl_communicator.h"
#include "runtime/core/logging.h"
#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::AllOf;
using ::testing::Each;
using ::testing::HasSubstr;
using testing::MakeTensor;
using testing::ReadTensor;
using testing::cuda_emulator::FailNextNcclCallInTheBackground;

constexpr Device kGpu = Device::Cuda(0);
constexpr int64_t kN = 1024;
// NCCL's text for ncclRemoteError, which the emulated failure reports.
constexpr char kRemoteError[] = "remote process exited or there was a network error";
// How long a case waits for the watchdog, which runs its completion tests every 100 ms or so.
constexpr auto kWatchdogPatience = std::chrono::seconds(30);

class NcclFailureGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Log lines go to logs_[sink_], never read while it is the sink (LoggedSoFar).
    SetLogSinkForTesting(&logs_[sink_]);
    ASSERT_OK_AND_ASSIGN(comm_, NcclCommunicator::Create(nullptr, kGpu, "world"));
    ASSERT_OK_AND_ASSIGN(tensor_, MakeTensor(kGpu, {kN}, std::vector<float>(kN, 1.0f)));
    ASSERT_OK_AND_ASSIGN(gathered_, MakeTensor(kGpu, {kN}, std::vector<float>(kN, -7.0f)));
    // A non-blocking communicator's first call is answered as still in progress, so its caller
    // would find the failure while taking the call in; the calls under test come after it.
    ASSERT_OK(comm_->AllReduce(tensor_, ReduceOp::kSum));
  }

  void TearDown() override { SetLogSinkForTesting(nullptr); }

  // Whether gathered_ still holds what SetUp wrote: no all-gather into it has run.
  void ExpectNothingGathered() {
    ASSERT_OK_AND_ASSIGN(const std::vector<float> values, ReadTensor<float>(gathered_));
    EXPECT_THAT(values, Each(-7.0f));
  }

  // What has been logged since SetUp: the sink moves to the other string, and the one it left
  // is read (the logger's lock orders its writes before the move).
  std::string LoggedSoFar() {
    const int idle = sink_;
    sink_ = 1 - sink_;
    SetLogSinkForTesting(&logs_[sink_]);
    logged_ += logs_[idle];
    logs_[idle].clear();
    return logged_;
  }

  // The log once it holds `text`, or after kWatchdogPatience.
  std::string LoggedOnceItHolds(const std::string& text) {
    const auto give_up = std::chrono::steady_clock::now() + kWatchdogPatience;
    std::string logged = LoggedSoFar();
    while (logged.find(text) == std::string::npos && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      logged = LoggedSoFar();
    }
    return logged;
  }

  std::unique_ptr<NcclCommunicator> comm_;
  Tensor tensor_;
  Tensor gathered_;
  std::string logs_[2];
  int sink_ = 0;
  std::string logged_;
};

TEST_F(NcclFailureGpuTest, AWaitedCallFailsItsWaitAndTheCallsAfterItDoNotRun) {
  FailNextNcclCallInTheBackground();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Work> work,
                       comm_->AllReduceAsync(tensor_, tensor_, ReduceOp::kSum));
  const absl::Status waited = work->Wait();
  EXPECT_TRUE(absl::IsAborted(waited)) << waited;
  EXPECT_THAT(std::string(waited.message()),
              AllOf(HasSubstr("allreduce #2 on communicator 'world'"), HasSubstr(kRemoteError)));

  const absl::Status later = comm_->AllGather(tensor_, gathered_);
  EXPECT_TRUE(absl::IsFailedPrecondition(later)) << later;
  EXPECT_THAT(std::string(later.message()),
              AllOf(HasSubstr("allgather #3"), HasSubstr("was aborted after an error"),
                    HasSubstr(kRemoteError)));
  ExpectNothingGathered();
}

TEST_F(NcclFailureGpuTest, AStreamOrderedCallFailsTheNextCallBeforeItStarts) {
  FailNextNcclCallInTheBackground();
  ASSERT_OK(comm_->AllReduce(tensor_, ReduceOp::kSum, {.stream_ordered = true}));
  // The watchdog may have found the failure first (aborting the communicator): either way the
  // next call fails before it starts, naming itself, the stream-ordered call and NCCL's reason.
  const absl::Status next = comm_->AllGather(tensor_, gathered_);
  EXPECT_TRUE(absl::IsAborted(next) || absl::IsFailedPrecondition(next)) << next;
  EXPECT_THAT(std::string(next.message()),
              AllOf(HasSubstr("allgather #3 on communicator 'world' (rank 0 of 1): not started"),
                    HasSubstr("allreduce #2 on communicator 'world'"), HasSubstr(kRemoteError)));
  ExpectNothingGathered();
}

TEST_F(NcclFailureGpuTest, TheWatchdogAbortsTheCommunicatorOfAFailedCallNobodyWaitsOn) {
  FailNextNcclCallInTheBackground();
  ASSERT_OK(comm_->AllReduce(tensor_, ReduceOp::kSum, {.stream_ordered = true}));
  // No call follows: only the watchdog can find the failure.
  EXPECT_THAT(LoggedOnceItHolds(kRemoteError),
              AllOf(HasSubstr("allreduce #2 on communicator 'world'"), HasSubstr(kRemoteError)));

  // Aborted already, not by this call's check.
  const absl::Status next = comm_->AllGather(tensor_, gathered_);
  EXPECT_TRUE(absl::IsFailedPrecondition(next)) << next;
  EXPECT_THAT(std::string(next.message()),
              AllOf(HasSubstr("allgather #3"), HasSubstr("not started"),
                    HasSubstr("was aborted after an error"), HasSubstr(kRemoteError)));
  ExpectNothingGathered();
}

TEST_F(NcclFailureGpuTest, DestroyingTheCommunicatorReportsAFailedCallNobodyWaitedOn) {
  FailNextNcclCallInTheBackground();
  ASSERT_OK(comm_->AllReduce(tensor_, ReduceOp::kSum, {.stream_ordered = true}));
  comm_.reset();  // Whether the watchdog or the destructor reports it, it is reported.
  EXPECT_THAT(LoggedSoFar(),
              AllOf(HasSubstr("allreduce #2 on communicator 'world'"), HasSubstr(kRemoteError)));
}

}  // namespace
}  // namespace usine
