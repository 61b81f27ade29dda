// Warp primitives as rendezvous (internal/warp_rendezvous.h), and the two that are not PTX in
// the emulated sources: __syncwarp and __shfl_xor_sync (device_builtins.h).
#include "tests/testing/cuda_emulator/internal/warp_rendezvous.h"

#include "tests/testing/cuda_emulator/device_builtins.h"
#include "tests/testing/cuda_emulator/internal/call_site.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

unsigned FullMask(const EmulatedWarp& warp) {
  return warp.size == kWarpSize ? ~0u : (1u << warp.size) - 1;
}

// __shfl_xor_sync (shfl.sync.bfly): lane l reads lane l ^ lane_mask (its low 5 bits); a lane of a
// later segment of `width` lanes than l's, or past the warp, gives l its own value (an earlier
// segment's lane is read: CUDA C++ Programming Guide, warp shuffle functions).
void CompleteShuffleXor(EmulatedWarp& warp) {
  uint64_t results[kWarpSize];
  for (int l = 0; l < warp.size; ++l) {
    const WarpOperands& operands = warp.lanes[l]->operands;
    if (operands.member_mask != warp.lanes[0]->operands.member_mask) {
      ReportFatal("shfl.sync: lanes %d and 0 of one warp give different member masks", l);
    }
    const int segment = l / operands.width * operands.width;
    int source = l ^ (operands.lane_mask & (kWarpSize - 1));
    if (source >= segment + operands.width || source >= warp.size) source = l;
    results[l] = warp.lanes[source]->operands.value;
  }
  for (int l = 0; l < warp.size; ++l) warp.lanes[l]->operands.result = results[l];
}

// A fatal error unless `mask` holds every lane of the running thread's warp: the emulator runs
// whole warps only.
void CheckFullWarpMask(unsigned mask, const char* what) {
  const EmulatedThread& thread = RunningThread(what);
  const EmulatedWarp& warp = CurrentLaunch().warps[thread.warp];
  if ((mask & FullMask(warp)) != FullMask(warp)) {
    ReportFatal("%s with mask 0x%08x: the emulator runs whole warps only (this one has %d lanes)",
                what, mask, warp.size);
  }
}

}  // namespace

const char* NameOf(WarpPrimitive primitive) {
  switch (primitive) {
    case WarpPrimitive::kSyncWarp:
      return "__syncwarp";
    case WarpPrimitive::kShuffle:
      return "shfl.sync";
    case WarpPrimitive::kMma:
      return "mma.sync";
    case WarpPrimitive::kLdMatrix:
      return "ldmatrix";
  }
  return "?";
}

void ArriveAtWarpPrimitive(WarpPrimitive primitive, const PtxInstruction* instruction,
                           WarpCompletion complete) {
  EmulatedThread& thread = RunningThread(NameOf(primitive));
  const CallSite site = CaptureCallSite(thread.fiber);
  RunningLaunch& launch = CurrentLaunch();
  EmulatedWarp& warp = launch.warps[thread.warp];
  if (warp.exited > 0) {
    ReportFatal("lane %d reached %s at\n        %s\n  but %d lanes of its warp have exited",
                thread.lane, NameOf(primitive), Describe(site).c_str(), warp.exited);
  }
  if (warp.at_barrier > 0) {
    ReportFatal(
        "lanes of one warp at different primitives: lane %d at %s\n        %s\n  while %d "
        "lanes wait at __syncthreads\n        %s",
        thread.lane, NameOf(primitive), Describe(site).c_str(), warp.at_barrier,
        Describe(launch.barrier.site).c_str());
  }
  if (warp.arrived == 0) {
    warp.primitive = primitive;
    warp.instruction = instruction;
    warp.site = site;
    warp.first_lane = thread.lane;
  } else if (warp.primitive != primitive || warp.instruction != instruction ||
             !SameSourceLocation(warp.site, site)) {
    ReportFatal(
        "lanes of one warp at different warp primitives:\n  lane %d at %s\n        %s\n"
        "  lane %d (and %d more) at %s\n        %s",
        thread.lane, NameOf(primitive), Describe(site).c_str(), warp.first_lane, warp.arrived - 1,
        NameOf(warp.primitive), Describe(warp.site).c_str());
  }
  if (++warp.arrived == warp.size) {
    complete(warp);
    warp.arrived = 0;
    for (int l = 0; l < warp.size; ++l) {
      if (warp.lanes[l]->state == ThreadState::kAtWarpPrimitive) {
        warp.lanes[l]->state = ThreadState::kRunnable;
      }
    }
    return;
  }
  thread.state = ThreadState::kAtWarpPrimitive;
  thread.fiber.Yield();
}

}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

using cuda_emulator_internal::ArriveAtWarpPrimitive;
using cuda_emulator_internal::WarpPrimitive;

void SyncWarp(unsigned mask) {
  cuda_emulator_internal::CheckFullWarpMask(mask, "__syncwarp");
  ArriveAtWarpPrimitive(WarpPrimitive::kSyncWarp, nullptr,
                        [](cuda_emulator_internal::EmulatedWarp&) {});
}

uint64_t ShuffleXor(unsigned mask, uint64_t bits, int lane_mask, int width) {
  cuda_emulator_internal::CheckFullWarpMask(mask, "shfl.sync");
  if (width <= 0 || width > cuda_emulator_internal::kWarpSize || (width & (width - 1)) != 0) {
    cuda_emulator_internal::ReportFatal("shfl.sync width %d is not a power of 2 up to 32", width);
  }
  cuda_emulator_internal::WarpOperands& operands =
      cuda_emulator_internal::RunningThread("shfl.sync").operands;
  operands.value = bits;
  operands.member_mask = mask;
  operands.lane_mask = lane_mask;
  operands.width = width;
  ArriveAtWarpPrimitive(WarpPrimitive::kShuffle, nullptr,
                        cuda_emulator_internal::CompleteShuffleXor);
  return operands.result;
}

}  // namespace usine::testing::cuda_emulator
