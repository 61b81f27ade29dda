// Force-included (-include) before every CUDA source that the emulator runs: CUDA's keywords as
// host C++, and the emulator's replacements for what nvcc provides (device_builtins.h,
// kernel_launch.h, inline_ptx.h; <cuda_runtime_api.h> and <cuda_bf16.h> come from shim/).
// usine_cuda_emulation_test (cmake/UsineCudaEmulation.cmake) adds it.
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_CUDA_EMULATOR_PRELUDE_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_CUDA_EMULATOR_PRELUDE_H_

#define __global__
#define __device__
#define __host__
#define __launch_bounds__(...)
// Static __shared__ variables become one static variable per declaration (blocks run one after
// another), neither poisoned nor bounds-checked; only dynamic shared memory is.
#define __shared__ static

#include <cmath>

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include "tests/testing/cuda_emulator/device_builtins.h"
#include "tests/testing/cuda_emulator/inline_ptx.h"
#include "tests/testing/cuda_emulator/kernel_launch.h"

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_CUDA_EMULATOR_PRELUDE_H_
