// The arithmetic of cublasLtMatmul (shim/cublasLt.h), apart from its checks: cublas_lt.cc
// validates a call (shapes, types, epilogue, then each operand's pointer: extent, alignment,
// overlap) and hands the product it describes to ComputeMatmul (cublas_lt_product.cc), which
// converts the operands, multiplies them tile by tile and applies the epilogue, with the bits
// that shim/cublasLt.h states.
//
//   MatmulProblem problem;  // As Analyze (cublas_lt.cc) fills it in.
//   const MatmulPointers pointers{a, b, beta != 0.0f ? c : nullptr, d, desc->bias, desc->aux};
//   ComputeMatmul(problem, pointers, alpha, beta);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_CUBLAS_LT_PRODUCT_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_CUBLAS_LT_PRODUCT_H_

#include <cstddef>
#include <cstdint>

#include <library_types.h>

namespace usine::testing::cuda_emulator_internal {

// Bytes per element of the types emulated (f32, bf16); 0 for any other.
inline size_t ElementBytes(int32_t type) {
  if (type == CUDA_R_32F) return 4;
  if (type == CUDA_R_16BF) return 2;
  return 0;
}

// One matrix operand as the product reads or writes it (column-major, strided batch).
struct MatmulOperand {
  int32_t type = CUDA_R_32F;
  int64_t rows = 0, cols = 0, ld = 0, batch_stride = 0;
  int64_t span = 0;  // Elements, all batches.
};

// A product that Analyze (cublas_lt.cc) found consistent and emulated.
struct MatmulProblem {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  bool transpose_a = false, transpose_b = false, tf32 = false;
  MatmulOperand a, b, c, d;
  // aux: the GELU input, written by the GELU_AUX epilogues, read by DGELU (dgelu: D times the
  // GELU's derivative at aux).
  bool bias = false, gelu = false, aux = false, dgelu = false;
  MatmulOperand bias_vector;  // m x 1, its batch stride BIAS_BATCH_STRIDE.
  MatmulOperand aux_matrix;   // m x n, ld EPILOGUE_AUX_LD, batch stride EPILOGUE_AUX_BATCH_STRIDE.
  // The algorithm adds the two halves of each dot product in D's type (shim/cublasLt.h:
  // "Split-K in D's type"); set from the algorithm, not by Analyze.
  bool split_k_in_output_type = false;
};

// Where the operands start: batch i of each at + i * its batch_stride elements.
struct MatmulPointers {
  const void* a;
  const void* b;
  const void* c;  // Null when beta == 0.
  void* d;
  const void* bias;
  void* aux;
};

// Writes D (and, with p.aux but not p.dgelu, the GELU input) for each of p.batch products:
// D = epilogue(alpha op(A) op(B) + beta C), the dot products summed in double in order of
// increasing k (TF32 operands when p.tf32) and rounded once to f32 (with
// p.split_k_in_output_type, each half of k so, and the halves added as shim/cublasLt.h says),
// the epilogue in f32, bf16 stored to nearest even. C is not read when ptr.c is null. Holds no
// state: calls with disjoint outputs may run on several threads at once. REQUIRES: p as Analyze
// leaves it (consistent and emulated); each pointer that p uses holds its operand's span (all
// batches); D and a written aux overlap no input, except that D may be C with C's layout (in place:
// each element of C is read before D's is written).
void ComputeMatmul(const MatmulProblem& p, const MatmulPointers& ptr, float alpha, float beta);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_CUBLAS_LT_PRODUCT_H_
