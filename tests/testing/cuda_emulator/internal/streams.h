// Whether a stream handle may be used (runtime_streams.cc keeps the live ones), for the calls
// that take one besides the runtime's own: cuBLASLt's product and NCCL's collectives.
//
//   if (!ValidStream(stream)) return Refuse(call, ..., "a destroyed or unknown stream");
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_STREAMS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_STREAMS_H_

#include <cuda_runtime_api.h>

namespace usine::testing::cuda_emulator_internal {

// The default stream (null) or one created and not yet destroyed.
bool ValidStream(cudaStream_t stream);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_STREAMS_H_
