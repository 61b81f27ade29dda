// Warp primitives as rendezvous: each lane leaves its operands (WarpOperands) and waits; the last
// of the warp's lanes to arrive completes the primitive for all of them and the warp goes on.
// Lanes at different primitives, different instructions or different call sites, a lane that
// exited or waits at __syncthreads while its warp-mates wait here: fatal errors.
//
//   thread.operands.value = bits;
//   ArriveAtWarpPrimitive(WarpPrimitive::kShuffle, nullptr, [](EmulatedWarp& warp) { ... });
//   return thread.operands.result;
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_WARP_RENDEZVOUS_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_WARP_RENDEZVOUS_H_

#include "tests/testing/cuda_emulator/internal/simt_state.h"

namespace usine::testing::cuda_emulator_internal {

using WarpCompletion = void (*)(EmulatedWarp& warp);

// REQUIRES: called by an emulated thread, whose operands are set.
void ArriveAtWarpPrimitive(WarpPrimitive primitive, const PtxInstruction* instruction,
                           WarpCompletion complete);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_WARP_RENDEZVOUS_H_
