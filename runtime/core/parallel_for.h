// Data-parallel loops over the cpu's cores: the cpu kernels' loops, and the matrix products,
// which runtime/kernels cuts into pieces over these threads (OpenBLAS itself runs
// single-threaded, so that one pool of threads, not two, shares the cores).
//
//   ParallelFor(rows, /*grain=*/16, [&](int64_t begin, int64_t end) {
//     for (int64_t r = begin; r < end; ++r) NormaliseRow(r);
//   });
//
// [0, n) is cut into at most CpuThreads() contiguous ranges of at least `grain` items, the
// same cut for the same n on every call, and `body` runs once per range: the caller runs the
// first, a pool of worker threads (started on first use) the others; ParallelFor returns
// when all have returned. Results are deterministic as long as each item's output is
// written by the item alone (reductions across items belong after the loop, in item order).
// A ParallelFor inside a body runs serially. Thread-safe: concurrent calls take turns.
// Between loops the workers poll for the next one for up to 50 microseconds (the loops of a
// training step follow each other closer than a blocked thread wakes up), then block.
#ifndef USINE_RUNTIME_CORE_PARALLEL_FOR_H_
#define USINE_RUNTIME_CORE_PARALLEL_FOR_H_

#include <cstdint>

#include "absl/functional/function_ref.h"

namespace usine {

// The threads ParallelFor uses: USINE_CPU_THREADS if set (>= 1), else OPENBLAS_NUM_THREADS
// (so that both libraries use the same cores), else every core. Read once.
int CpuThreads();

void ParallelFor(int64_t n, int64_t grain, absl::FunctionRef<void(int64_t, int64_t)> body);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_PARALLEL_FOR_H_
