// usine's tensor operations: one API over the cpu (OpenBLAS and plain C++) and CUDA
// (cuBLASLt and hand-written kernels). Include this header for all of them, or the
// per-concern headers it lists.
//
// Execution contract, for every operation:
// - All tensor arguments are on one device (Copy and Upload excepted) and the call checks dtypes,
//   shapes and devices, returning InvalidArgument that names the argument; nothing is
//   written when a check fails.
// - cpu tensors: the work runs before the call returns, in the calling thread and, when it
//   is large enough, in ParallelFor's workers (runtime/core/parallel_for.h: a cut fixed by
//   the sizes and CpuThreads(), so the same inputs give the same bits); `stream` must be the
//   host stream (the default).
// - CUDA tensors: with a CUDA stream of the tensors' device, the work is enqueued on it and
//   the call returns at once (outputs are ready when the stream reaches that point); with
//   the host stream (the default), the work runs on the device's default stream and the call
//   waits for it, so it is synchronous.
// - Output tensors are passed as `const Tensor&`: a Tensor is a handle, and the operation
//   writes its elements, never its shape.
//
//   RETURN_IF_ERROR(Fill(w, 0.0));
//   RETURN_IF_ERROR(RandomNormal(w, /*seed=*/42, /*offset=*/0, 0.0f, 0.02f, stream));
//   RETURN_IF_ERROR(Matmul(x, w, y, {.transpose_b = true}, stream));
#ifndef USINE_RUNTIME_KERNELS_KERNELS_H_
#define USINE_RUNTIME_KERNELS_KERNELS_H_

#include "runtime/kernels/copy.h"         // IWYU pragma: export
#include "runtime/kernels/elementwise.h"  // IWYU pragma: export
#include "runtime/kernels/matmul.h"       // IWYU pragma: export
#include "runtime/kernels/random.h"       // IWYU pragma: export
#include "runtime/kernels/reduce.h"       // IWYU pragma: export
#include "runtime/kernels/upload.h"       // IWYU pragma: export

#endif  // USINE_RUNTIME_KERNELS_KERNELS_H_
