// cpu elementwise kernels: plain loops over contiguous memory, vectorised by the compiler and
// cut over ParallelFor's threads (each element is written by one thread, from its own inputs
// alone, so the threads change no bit of the result).
#include <cstring>

#include "runtime/core/parallel_for.h"
#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/float_types.h"

namespace usine::kernels_internal::cpu {
namespace {

// Elements per thread at least: these loops are bound by memory, a few microseconds each.
constexpr int64_t kGrain = 1 << 15;

}  // namespace

void Fill(const Tensor& t, FillBits bits) {
  const size_t size = DTypeSize(t.dtype());
  char* out = static_cast<char*>(t.raw_data());
  ParallelFor(t.numel(), kGrain, [&](int64_t begin, int64_t end) {
    if (bits == 0) {
      std::memset(out + begin * size, 0, (end - begin) * size);
      return;
    }
    for (int64_t i = begin; i < end; ++i) std::memcpy(out + i * size, &bits, size);
  });
}

void Cast(const Tensor& src, const Tensor& dst) {
  const int64_t n = src.numel();
  VisitFloatType(src.dtype(), [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    VisitFloatType(dst.dtype(), [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      const In* in = static_cast<const In*>(src.raw_data());
      Out* out = static_cast<Out*>(dst.raw_data());
      ParallelFor(n, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = FromFloat<Out>(ToFloat(in[i]));
      });
    });
  });
}

void Scale(const Tensor& x, float alpha) {
  VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(x.raw_data());
    ParallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) p[i] = FromFloat<T>(alpha * ToFloat(p[i]));
    });
  });
}

void Axpy(float alpha, const Tensor& x, const Tensor& y) {
  VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    ParallelFor(x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        py[i] = FromFloat<T>(alpha * ToFloat(px[i]) + ToFloat(py[i]));
      }
    });
  });
}

void Add(const Tensor& a, const Tensor& b, const Tensor& out) {
  VisitFloatType(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    ParallelFor(a.numel(), kGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) po[i] = FromFloat<T>(ToFloat(pa[i]) + ToFloat(pb[i]));
    });
  });
}

}  // namespace usine::kernels_internal::cpu
