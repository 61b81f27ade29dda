// CUDA's data type tags (cudaDataType_t), which the CUDA math libraries take to say what a
// void* operand holds, for code compiled as host C++ under the CUDA emulator (../README.md), in
// place of the toolkit's header of the same name. The values are CUDA's, so that a message or a
// cache key shows the number CUDA would. Add to it what another emulated file needs.
//
//   cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, rows, cols, ld);  // cublasLt.h
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_LIBRARY_TYPES_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_LIBRARY_TYPES_H_

typedef enum cudaDataType_t {
  CUDA_R_32F = 0,       // float
  CUDA_R_64F = 1,       // double
  CUDA_R_16F = 2,       // half
  CUDA_R_8I = 3,        // int8_t
  CUDA_C_32F = 4,       // a pair of floats (complex)
  CUDA_C_64F = 5,       // a pair of doubles (complex)
  CUDA_R_32I = 10,      // int32_t
  CUDA_R_16BF = 14,     // __nv_bfloat16
  CUDA_R_8F_E4M3 = 28,  // fp8, 4 exponent bits
  CUDA_R_8F_E5M2 = 29,  // fp8, 5 exponent bits
} cudaDataType;

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_LIBRARY_TYPES_H_
