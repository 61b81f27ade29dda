// The CUDA backend's elementwise, reduction and random operations: each unpacks its Tensors
// into raw pointers, element counts and C++ element types, calls a launcher of launch.h and
// translates the launch error. The caller (Dispatch) has made the tensors' device current.
#include <cuda_runtime_api.h>

#include "absl/status/status.h"

#include "runtime/core/caching_allocator.h"
#include "runtime/core/cuda_status.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/float_types.h"

namespace usine::kernels_internal::cuda {

absl::Status Fill(const Tensor& t, FillBits bits, StreamHandle stream) {
  const cudaError_t launch =
      LaunchFill(t.raw_data(), t.numel(), static_cast<int>(DTypeSize(t.dtype())), bits, stream);
  return USINE_CUDA_STATUS(launch);
}

absl::Status Cast(const Tensor& src, const Tensor& dst, StreamHandle stream) {
  const cudaError_t launch = VisitFloatType(src.dtype(), [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    return VisitFloatType(dst.dtype(), [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      return LaunchCast(static_cast<const In*>(src.raw_data()), static_cast<Out*>(dst.raw_data()),
                        src.numel(), stream);
    });
  });
  return USINE_CUDA_STATUS(launch);
}

absl::Status Scale(const Tensor& x, float alpha, StreamHandle stream) {
  const cudaError_t launch = VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return LaunchScale(static_cast<T*>(x.raw_data()), x.numel(), alpha, stream);
  });
  return USINE_CUDA_STATUS(launch);
}

namespace {

// Launches over `xs` in groups of Group::kMaxTensors: fills each group's x and n, lets
// `add(group, i, x)` set the rest of its entry i, then calls `launch(group, first)` (first: the
// group's first index in xs) until a launch fails.
template <typename Group, typename Add, typename Launch>
cudaError_t ForEachGroup(absl::Span<const Tensor> xs, const Add& add, const Launch& launch) {
  cudaError_t err = cudaSuccess;
  for (size_t first = 0; first < xs.size() && err == cudaSuccess; first += Group::kMaxTensors) {
    Group group;
    for (size_t i = first; i < xs.size() && group.count < Group::kMaxTensors; ++i) {
      group.x[group.count] = xs[i].raw_data();
      group.n[group.count] = xs[i].numel();
      add(group, static_cast<size_t>(group.count), xs[i]);
      ++group.count;
    }
    err = launch(group, first);
  }
  return err;
}

// For groups that need nothing beyond x and n.
void AddNothing(TensorGroup&, size_t, const Tensor&) {}

}  // namespace

absl::Status Scale(absl::Span<const Tensor> xs, float alpha, StreamHandle stream) {
  return USINE_CUDA_STATUS(
      ForEachGroup<TensorGroup>(xs, AddNothing, [&](const TensorGroup& group, size_t) {
        return VisitFloatType(xs[0].dtype(), [&](auto tag) {
          using T = typename decltype(tag)::type;
          return LaunchScaleTensors<T>(group, alpha, stream);
        });
      }));
}

absl::Status Fill(absl::Span<const Tensor> ts, FillBits bits, StreamHandle stream) {
  const int element_size = ts.empty() ? 1 : static_cast<int>(DTypeSize(ts[0].dtype()));
  return USINE_CUDA_STATUS(
      ForEachGroup<TensorGroup>(ts, AddNothing, [&](const TensorGroup& group, size_t) {
        return LaunchFillTensors(group, element_size, bits, stream);
      }));
}

absl::Status Axpy(float alpha, const Tensor& x, const Tensor& y, StreamHandle stream) {
  const cudaError_t launch = VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return LaunchAxpy(alpha, static_cast<const T*>(x.raw_data()), static_cast<T*>(y.raw_data()),
                      x.numel(), stream);
  });
  return USINE_CUDA_STATUS(launch);
}

absl::Status Add(const Tensor& a, const Tensor& b, const Tensor& out, StreamHandle stream) {
  const cudaError_t launch = VisitFloatType(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return LaunchAdd(static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()),
                     static_cast<T*>(out.raw_data()), a.numel(), stream);
  });
  return USINE_CUDA_STATUS(launch);
}

absl::Status Sum(const Tensor& x, const Tensor& out, bool squares, bool square_root,
                 StreamHandle stream) {
  ASSIGN_OR_RETURN(CachingAllocator * allocator, CudaCachingAllocator(x.device().index()));
  ASSIGN_OR_RETURN(void* partials,
                   allocator->Allocate(SumPartialCount(x.numel()) * sizeof(float), stream));
  const cudaError_t launch = VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return LaunchSum(static_cast<const T*>(x.raw_data()), x.numel(), squares, square_root,
                     static_cast<float*>(partials), static_cast<float*>(out.raw_data()), stream);
  });
  // Freed while the kernels may still run: the allocator hands the block out again only for
  // work on this same stream, which the stream orders after them.
  allocator->Deallocate(partials);
  return USINE_CUDA_STATUS(launch);
}

absl::Status L2Norms(absl::Span<const Tensor> xs, const Tensor& out, StreamHandle stream) {
  if (xs.empty()) return absl::OkStatus();
  int64_t partial_count = 0;
  for (const Tensor& x : xs) partial_count += SumPartialCount(x.numel());
  ASSIGN_OR_RETURN(CachingAllocator * allocator, CudaCachingAllocator(out.device().index()));
  ASSIGN_OR_RETURN(void* partials, allocator->Allocate(partial_count * sizeof(float), stream));
  // Each group's partials after the last group's.
  int64_t offset = 0;
  const cudaError_t launch = ForEachGroup<SumTensors>(
      xs,
      [&](SumTensors& group, size_t i, const Tensor& x) {
        group.partial_offset[i] = offset;
        offset += SumPartialCount(x.numel());
      },
      [&](const SumTensors& group, size_t first) {
        return VisitFloatType(xs[0].dtype(), [&](auto tag) {
          using T = typename decltype(tag)::type;
          return LaunchL2Norms<T>(group, static_cast<float*>(partials),
                                  static_cast<float*>(out.raw_data()) + first, stream);
        });
      });
  allocator->Deallocate(partials);  // As in Sum: reused only by later work on this stream.
  return USINE_CUDA_STATUS(launch);
}

absl::Status RandomUniform(const Tensor& t, uint64_t seed, uint64_t offset, float low, float high,
                           StreamHandle stream) {
  const cudaError_t launch = VisitFloatType(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return LaunchRandomUniform(static_cast<T*>(t.raw_data()), t.numel(), seed, offset, low, high,
                               stream);
  });
  return USINE_CUDA_STATUS(launch);
}

absl::Status RandomNormal(const Tensor& t, uint64_t seed, uint64_t offset, float mean, float stddev,
                          StreamHandle stream) {
  const cudaError_t launch = VisitFloatType(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return LaunchRandomNormal(static_cast<T*>(t.raw_data()), t.numel(), seed, offset, mean, stddev,
                              stream);
  });
  return USINE_CUDA_STATUS(launch);
}

}  // namespace usine::kernels_internal::cuda
