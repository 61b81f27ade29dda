// The emulator's side of CUDA's launch syntax and of dynamic shared memory, which
// transform_cuda_source.py rewrites into calls of these functions:
//
//   Kernel<<<grid, block, bytes, stream>>>(a, b);
//     -> ::usine::testing::cuda_emulator::Launch(Kernel, grid, block, bytes, stream)(a, b);
//   KernelTemplate<<<grid, block>>>(a, b);  // template arguments deduced from a, b
//     -> ::usine::testing::cuda_emulator::LaunchTemplate(
//            "KernelTemplate", [&](auto... args) { KernelTemplate(args...); }, grid, block)(a, b);
//   extern __shared__ __align__(16) float shared[];
//     -> float* const shared =
//            reinterpret_cast<float*>(::usine::testing::cuda_emulator::DynamicShared());
//
// A launch runs every thread of the grid before it returns; its stream and its pointer arguments
// go to the checks of the order between streams (internal/stream_order.h: each pointer into
// device memory as an access from it to the end of its allocation, read through a pointer to
// const, written otherwise). The pointers inside an argument of class type (a multi-tensor
// launch's table, a functor's captures) are not visible as types: each aligned word of the
// argument that holds a device address counts as a read through it, since its const-ness is not
// visible either (what a kernel writes through one is checked against other streams' writes,
// not their reads). So a table's unused entries must be null, or they count as reads. A launch
// configuration that CUDA refuses runs nothing and leaves its error for cudaGetLastError.
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_KERNEL_LAUNCH_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_KERNEL_LAUNCH_H_

#include <cstddef>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

namespace usine::testing::cuda_emulator {

// A pointer argument of a launch, or a word of a class argument: its position among the arguments
// (from 0), and whether it is written (unless it points to const, as the argument's type,
// declared or deduced, says; a class argument's words are read).
struct KernelPointer {
  const void* p;
  int position;
  bool written;
};

// Runs thread_body(closure) in every thread of a grid x block launch of the kernel at `kernel`,
// which keys its cudaFuncSetAttribute limit and, unless `name` is given, names it in reports
// (the function at that address). A launch that runs is issued on `stream` with its pointer
// arguments as its accesses, for the checks of the order between streams.
void RunKernel(const void* kernel, const char* name, dim3 grid, dim3 block, size_t shared_bytes,
               cudaStream_t stream, const std::vector<KernelPointer>& pointers,
               void (*thread_body)(const void* closure), const void* closure);

// The running block's dynamic shared memory: the launch's bytes, 128-byte aligned, poisoned with
// bf16 NaNs (0x7FC1; two of them read as f32 are a NaN too).
unsigned char* DynamicShared();

// A launch of `Call` (a kernel, or a lambda that calls a kernel template) once its arguments
// are given. Each thread gets its own copy of them, as on a GPU.
template <typename Call, typename... Params>
class KernelLaunch {
 public:
  KernelLaunch(const void* kernel, const char* name, Call call, dim3 grid, dim3 block,
               size_t shared_bytes, cudaStream_t stream)
      : kernel_(kernel),
        name_(name),
        call_(call),
        grid_(grid),
        block_(block),
        shared_bytes_(shared_bytes),
        stream_(stream) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    using Arguments = std::conditional_t<sizeof...(Params) == 0, std::tuple<std::decay_t<Args>...>,
                                         std::tuple<std::decay_t<Params>...>>;
    const Closure<Arguments> closure{&call_, Arguments(std::forward<Args>(args)...)};
    std::vector<KernelPointer> pointers;
    AddPointers(pointers, closure.arguments,
                std::make_index_sequence<std::tuple_size_v<Arguments>>());
    RunKernel(kernel_, name_, grid_, block_, shared_bytes_, stream_, pointers,
              &RunThread<Arguments>, &closure);
  }

 private:
  template <typename Arguments>
  struct Closure {
    const Call* call;
    Arguments arguments;
  };

  template <typename Arguments, size_t... kPositions>
  static void AddPointers(std::vector<KernelPointer>& pointers, const Arguments& arguments,
                          std::index_sequence<kPositions...>) {
    (AddIfPointer(pointers, std::get<kPositions>(arguments), static_cast<int>(kPositions)), ...);
  }
  template <typename T>
  static void AddIfPointer(std::vector<KernelPointer>& pointers, const T& argument, int position) {
    if constexpr (std::is_pointer_v<T> && !std::is_function_v<std::remove_pointer_t<T>>) {
      pointers.push_back({const_cast<const void*>(static_cast<const volatile void*>(argument)),
                          position, !std::is_const_v<std::remove_pointer_t<T>>});
    } else if constexpr (std::is_class_v<T> && std::is_trivially_copyable_v<T>) {
      // Every aligned word: the checks ignore what is not device memory. Padding, which may
      // hold anything (an old pointer), is cleared first.
      T copy = argument;
#if __has_builtin(__builtin_clear_padding)
      __builtin_clear_padding(&copy);
#endif
      const auto* bytes = reinterpret_cast<const unsigned char*>(&copy);
      for (size_t offset = 0; offset + sizeof(void*) <= sizeof(T); offset += alignof(void*)) {
        const void* word = nullptr;
        std::memcpy(&word, bytes + offset, sizeof(word));
        if (word != nullptr) pointers.push_back({word, position, false});
      }
    }
  }

  template <typename Arguments>
  static void RunThread(const void* closure) {
    const auto& c = *static_cast<const Closure<Arguments>*>(closure);
    Arguments arguments = c.arguments;
    std::apply(*c.call, arguments);
  }

  const void* kernel_;
  const char* name_;
  Call call_;
  dim3 grid_, block_;
  size_t shared_bytes_;
  cudaStream_t stream_;
};

template <typename... Params>
KernelLaunch<void (*)(Params...), Params...> Launch(void (*kernel)(Params...), dim3 grid,
                                                    dim3 block, size_t shared_bytes = 0,
                                                    cudaStream_t stream = nullptr) {
  return {
      reinterpret_cast<const void*>(kernel), nullptr, kernel, grid, block, shared_bytes, stream};
}

// A kernel template launched with deduced template arguments: `call` forwards the arguments to
// it, and `name` (a string literal: its address is the kernel's identity) names it.
template <typename Call>
KernelLaunch<Call> LaunchTemplate(const char* name, Call call, dim3 grid, dim3 block,
                                  size_t shared_bytes = 0, cudaStream_t stream = nullptr) {
  return {name, name, call, grid, block, shared_bytes, stream};
}

}  // namespace usine::testing::cuda_emulator

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_KERNEL_LAUNCH_H_
