// Counts of the runtime API calls that cuda_emulator::Statistics reports (cuda_emulator.h), kept
// by the calls themselves from any host thread.
//
//   Count(ApiCall::kHostWait);  // in cudaStreamSynchronize
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_API_COUNTS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_API_COUNTS_H_

#include <cstdint>

namespace usine::testing::cuda_emulator_internal {

enum class ApiCall {
  kHostWait,          // A call that holds the host until enqueued device work has run.
  kPageableUpload,    // A copy from pageable host memory into device memory.
  kDeviceAllocation,  // cudaMalloc.
  kDeviceFree,        // cudaFree.
  kDgeluProduct,      // cublasLtMatmul with the DGELU epilogue, run.
  kCount,             // How many kinds there are.
};

void Count(ApiCall call);
int64_t CountOf(ApiCall call);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_API_COUNTS_H_
