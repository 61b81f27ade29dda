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
// A launch runs every thread of the grid before it returns (streams are ignored); a launch
// configuration that CUDA refuses runs nothing and leaves its error for cudaGetLastError.
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_KERNEL_LAUNCH_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_KERNEL_LAUNCH_H_

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include <cuda_runtime_api.h>

namespace usine::testing::cuda_emulator {

// Runs thread_body(closure) in every thread of a grid x block launch of the kernel at `kernel`,
// which keys its cudaFuncSetAttribute limit and, unless `name` is given, names it in reports
// (the function at that address).
void RunKernel(const void* kernel, const char* name, dim3 grid, dim3 block, size_t shared_bytes,
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
               size_t shared_bytes)
      : kernel_(kernel),
        name_(name),
        call_(call),
        grid_(grid),
        block_(block),
        shared_bytes_(shared_bytes) {}

  template <typename... Args>
  void operator()(Args&&... args) const {
    using Arguments = std::conditional_t<sizeof...(Params) == 0, std::tuple<std::decay_t<Args>...>,
                                         std::tuple<std::decay_t<Params>...>>;
    const Closure<Arguments> closure{&call_, Arguments(std::forward<Args>(args)...)};
    RunKernel(kernel_, name_, grid_, block_, shared_bytes_, &RunThread<Arguments>, &closure);
  }

 private:
  template <typename Arguments>
  struct Closure {
    const Call* call;
    Arguments arguments;
  };

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
};

template <typename... Params>
KernelLaunch<void (*)(Params...), Params...> Launch(void (*kernel)(Params...), dim3 grid,
                                                    dim3 block, size_t shared_bytes = 0,
                                                    cudaStream_t = nullptr) {
  return {reinterpret_cast<const void*>(kernel), nullptr, kernel, grid, block, shared_bytes};
}

// A kernel template launched with deduced template arguments: `call` forwards the arguments to
// it, and `name` (a string literal: its address is the kernel's identity) names it.
template <typename Call>
KernelLaunch<Call> LaunchTemplate(const char* name, Call call, dim3 grid, dim3 block,
                                  size_t shared_bytes = 0, cudaStream_t = nullptr) {
  return {name, name, call, grid, block, shared_bytes};
}

}  // namespace usine::testing::cuda_emulator

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_KERNEL_LAUNCH_H_
