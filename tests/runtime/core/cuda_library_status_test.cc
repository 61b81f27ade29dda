// The CUDA-side translators: they need the libraries (for their message tables), not a GPU.
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/cublas_status.h"
#include "runtime/core/cuda_status.h"
#include "runtime/core/nccl_status.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

TEST(CudaStatus, NamesTheErrorAndMapsTheCode) {
  EXPECT_TRUE(USINE_CUDA_STATUS(cudaSuccess).ok());
  const absl::Status oom = USINE_CUDA_STATUS(cudaErrorMemoryAllocation);
  EXPECT_TRUE(absl::IsResourceExhausted(oom));
  const std::string message(oom.message());
  EXPECT_THAT(message, HasSubstr("cuda_library_status_test.cc:"));
  EXPECT_THAT(message, HasSubstr("cudaErrorMemoryAllocation failed: out of memory"));
  EXPECT_TRUE(absl::IsFailedPrecondition(USINE_CUDA_STATUS(cudaErrorNoDevice)));
  EXPECT_TRUE(absl::IsInvalidArgument(USINE_CUDA_STATUS(cudaErrorInvalidValue)));
}

TEST(CudaStatus, CarriesTheFailedCall) {
  void* p = nullptr;
  // A request no device can meet, or no device (or driver) at all: an error either way.
  const absl::Status s = USINE_CUDA_STATUS(cudaMalloc(&p, size_t{1} << 62));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("cudaMalloc(&p, size_t{1} << 62) failed"));
}

// Without a driver CUDA's initialisation error persists in every call; with a device, a
// failed allocation is a non-sticky error that the translator must clear.
TEST(CudaStatusGpuTest, ClearsTheLastErrorOfAFailedCall) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    GTEST_SKIP() << "no CUDA device";
  }
  void* p = nullptr;
  EXPECT_TRUE(absl::IsResourceExhausted(USINE_CUDA_STATUS(cudaMalloc(&p, size_t{1} << 62))));
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(CublasStatus, NamesTheStatus) {
  EXPECT_TRUE(USINE_CUBLAS_STATUS(CUBLAS_STATUS_SUCCESS).ok());
  const absl::Status s = USINE_CUBLAS_STATUS(CUBLAS_STATUS_NOT_SUPPORTED);
  EXPECT_TRUE(absl::IsUnimplemented(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("CUBLAS_STATUS_NOT_SUPPORTED"));
  EXPECT_TRUE(absl::IsResourceExhausted(USINE_CUBLAS_STATUS(CUBLAS_STATUS_ALLOC_FAILED)));
}

TEST(NcclStatus, NamesTheResult) {
  EXPECT_TRUE(USINE_NCCL_STATUS(ncclSuccess).ok());
  const absl::Status s = USINE_NCCL_STATUS(ncclInvalidArgument);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("invalid argument"));
  EXPECT_TRUE(absl::IsAborted(USINE_NCCL_STATUS(ncclRemoteError)));
  EXPECT_TRUE(absl::IsUnavailable(USINE_NCCL_STATUS(ncclInProgress)));
}

}  // namespace
}  // namespace usine
