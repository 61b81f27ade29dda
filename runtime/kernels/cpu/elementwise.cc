// cpu elementwise kernels: plain loops over contiguous memory, vectorised by the compiler.
#include <cstring>

#include "runtime/kernels/internal/backends.h"
#include "runtime/kernels/internal/float_types.h"

namespace usine::kernels_internal::cpu {

void Fill(const Tensor& t, FillBits bits) {
  const size_t size = DTypeSize(t.dtype());
  char* out = static_cast<char*>(t.raw_data());
  const int64_t n = t.numel();
  if (bits == 0) {
    std::memset(out, 0, t.nbytes());
    return;
  }
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * size, &bits, size);
}

void Cast(const Tensor& src, const Tensor& dst) {
  const int64_t n = src.numel();
  VisitFloatType(src.dtype(), [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    VisitFloatType(dst.dtype(), [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      const In* in = static_cast<const In*>(src.raw_data());
      Out* out = static_cast<Out*>(dst.raw_data());
      for (int64_t i = 0; i < n; ++i) out[i] = FromFloat<Out>(ToFloat(in[i]));
    });
  });
}

void Scale(const Tensor& x, float alpha) {
  VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = static_cast<T*>(x.raw_data());
    for (int64_t i = 0, n = x.numel(); i < n; ++i) p[i] = FromFloat<T>(alpha * ToFloat(p[i]));
  });
}

void Axpy(float alpha, const Tensor& x, const Tensor& y) {
  VisitFloatType(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x.raw_data());
    T* py = static_cast<T*>(y.raw_data());
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      py[i] = FromFloat<T>(alpha * ToFloat(px[i]) + ToFloat(py[i]));
    }
  });
}

void Add(const Tensor& a, const Tensor& b, const Tensor& out) {
  VisitFloatType(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for (int64_t i = 0, n = a.numel(); i < n; ++i) {
      po[i] = FromFloat<T>(ToFloat(pa[i]) + ToFloat(pb[i]));
    }
  });
}

}  // namespace usine::kernels_internal::cpu
