// cuBLASLt's matrix product, computed on the host, for code compiled as host C++ under the CUDA
// emulator (../README.md), in place of the toolkit's header of the same name: the subset that
// runtime/kernels/cuda/matmul.cc uses (cublas_lt.cc). Names and enum values are cuBLASLt's, so
// that a message shows what cuBLASLt's would; a call outside the subset returns
// CUBLAS_STATUS_NOT_SUPPORTED, and every refusal also writes its reason on stderr.
//
// What cublasLtMatmul computes, as cuBLASLt does, column-major:
//   D = epilogue(alpha op(A) op(B) + beta C), op(A) [m, k], op(B) [k, n], C and D [m, n],
// each matrix i of a strided batch at its pointer + i * CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET
// elements (a stride of 0 repeats one matrix in every product). Supported, as cuBLASLt's table
// of data types lists them: compute type CUBLAS_COMPUTE_32F with scale type CUDA_R_32F and A/B,
// C/D types bf16/bf16, bf16/f32 or f32/f32; CUBLAS_COMPUTE_32F_FAST_TF32 with all f32. Epilogues
// DEFAULT, BIAS, GELU, GELU_BIAS, GELU_AUX, GELU_AUX_BIAS. Alpha and beta are host floats.
//
// The arithmetic, fixed so that tests may ask for exact bits:
// - A's and B's elements are read as f32 (under FAST_TF32 each is first rounded to TF32, 10
//   explicit mantissa bits, to nearest even); each dot product is summed in double in order of
//   increasing k (every product is exact) and rounded once to f32.
// - Then, in f32: r = alpha * dot, r = r + beta * c (C is not read when beta == 0, so it may
//   hold NaNs), r = r + bias[row] (BIAS), aux = r (AUX), r = gelu(r) (GELU), with
//   gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in f32 with the host's tanhf.
// - D and aux are stored in D's type, bf16 rounded to nearest even.
// - Split-K in D's type: where the preference's REDUCTION_SCHEME_MASK allows INPLACE or
//   OUTPUT_TYPE (the default allows every scheme) and D is bf16, cuBLASLt may choose an
//   algorithm that adds the parts of a split dot product in bf16. The emulator's heuristic
//   then chooses one for every k >= 2: the dot product over k in two halves, [0, k/2) and
//   [k/2, k), each alpha * (its sum rounded to f32) rounded to bf16, their f32 sum rounded to
//   bf16 again and then the epilogue (beta C, bias, GELU) on it. A caller that wants one
//   rounding restricts the mask to NONE and COMPUTE_TYPE.
// D may be C (in place: the same pointer and an equal layout); C's element is read before D's
// is written.
//
// The bias is D's rows elements of D's type (batch i's at + i * BIAS_BATCH_STRIDE); the GELU
// input (aux) is an m x n matrix of D's type with leading dimension EPILOGUE_AUX_LD (a multiple
// of 8, at least m), batch i's at + i * EPILOGUE_AUX_BATCH_STRIDE (a multiple of 8; default 0,
// so a batch of several needs one that keeps them apart).
//
// What it checks, returning CUBLAS_STATUS_INVALID_VALUE (or NOT_SUPPORTED for what it does not
// emulate) where cuBLASLt could compute garbage or fault: shapes, leading dimensions, equal batch
// counts, outputs whose batches overlap, the types, every operand's extent (all batches), bias,
// aux and workspace within one device allocation of the emulator (a host pointer is refused),
// outputs overlapping inputs, pointers less aligned than the algorithm was chosen for (the
// preference's MIN_ALIGNMENT attributes, 256 bytes by default, and the bias and aux pointers'
// own alignments at the heuristic query), a workspace smaller than the algorithm's, not
// 256-byte aligned or overlapping an operand, a destroyed or unknown stream.
//
// The heuristic gives one algorithm per supported problem, with a workspace of
// min(1 MiB, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES); cublasLtMatmul fills that much of the
// workspace with 0xFF bytes, so that a workspace shared by mistake shows. Streams are only
// checked: the product is done when cublasLtMatmul returns. Safe to call from several host threads
// on distinct descriptors (one handle may be shared); a descriptor may be read by several threads
// at once but not changed while another uses it, as with cuBLASLt.
//
//   cublasLtHandle_t lt;                   cublasLtCreate(&lt);
//   cublasLtMatmulDesc_t desc;             cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F,
//                                                                   CUDA_R_32F);
//   cublasLtMatrixLayout_t a_layout, ...;  cublasLtMatrixLayoutCreate(&a_layout, CUDA_R_16BF,
//                                                                     m, k, m);  // and b, c
//   cublasLtMatmulPreference_t pref;       cublasLtMatmulPreferenceCreate(&pref);
//   cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
//                                        &max_bytes, sizeof(max_bytes));  // uint64_t
//   cublasLtMatmulHeuristicResult_t result;
//   int found = 0;
//   cublasLtMatmulAlgoGetHeuristic(lt, desc, a_layout, b_layout, c_layout, c_layout, pref, 1,
//                                  &result, &found);
//   cublasLtMatmul(lt, desc, &alpha, a, a_layout, b, b_layout, &beta, c, c_layout, c, c_layout,
//                  &result.algo, workspace, result.workspaceSize, stream);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUBLASLT_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUBLASLT_H_

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>
#include <library_types.h>

// cuBLAS's status codes (cublas_api.h).
typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
} cublasStatus_t;

// op(X): X itself or its transpose (C, the conjugate transpose, is the transpose of real data).
typedef enum {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_OP_C = 2,
  CUBLAS_OP_CONJG = 3,  // Not supported (nor by cuBLAS).
} cublasOperation_t;

// The multiply-accumulate type. Only CUBLAS_COMPUTE_32F and CUBLAS_COMPUTE_32F_FAST_TF32 are
// emulated.
typedef enum {
  CUBLAS_COMPUTE_16F = 64,
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  CUBLAS_COMPUTE_64F = 70,
  CUBLAS_COMPUTE_32I = 72,
  CUBLAS_COMPUTE_32F_FAST_16F = 74,
  CUBLAS_COMPUTE_32F_FAST_16BF = 75,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
} cublasComputeType_t;

// Where alpha and beta live. Only CUBLASLT_POINTER_MODE_HOST (the default) is emulated.
typedef enum {
  CUBLASLT_POINTER_MODE_HOST = 0,
  CUBLASLT_POINTER_MODE_DEVICE = 1,
} cublasLtPointerMode_t;

// A matrix's memory order. Only CUBLASLT_ORDER_COL (the default) is emulated.
typedef enum {
  CUBLASLT_ORDER_COL = 0,
  CUBLASLT_ORDER_ROW = 1,
} cublasLtOrder_t;

// What is applied to alpha op(A) op(B) + beta C before D holds it. The AUX variants also store
// the activation's input (after the bias) at CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER.
typedef enum {
  CUBLASLT_EPILOGUE_DEFAULT = 1,
  CUBLASLT_EPILOGUE_RELU = 2,  // The ReLU and gradient epilogues are not emulated.
  CUBLASLT_EPILOGUE_BIAS = 4,
  CUBLASLT_EPILOGUE_RELU_BIAS = 6,
  CUBLASLT_EPILOGUE_GELU = 32,
  CUBLASLT_EPILOGUE_GELU_BIAS = 36,
  CUBLASLT_EPILOGUE_RELU_AUX = 130,
  CUBLASLT_EPILOGUE_RELU_AUX_BIAS = 134,
  CUBLASLT_EPILOGUE_DRELU = 136,
  CUBLASLT_EPILOGUE_DRELU_BGRAD = 152,
  CUBLASLT_EPILOGUE_GELU_AUX = 160,
  CUBLASLT_EPILOGUE_GELU_AUX_BIAS = 164,
  CUBLASLT_EPILOGUE_DGELU = 192,
  CUBLASLT_EPILOGUE_DGELU_BGRAD = 208,
  CUBLASLT_EPILOGUE_BGRADA = 256,
  CUBLASLT_EPILOGUE_BGRADB = 512,
} cublasLtEpilogue_t;

// Each attribute's value has the type named (sizeInBytes must be its size).
typedef enum {
  CUBLASLT_MATRIX_LAYOUT_TYPE = 0,                  // uint32_t (cudaDataType)
  CUBLASLT_MATRIX_LAYOUT_ORDER = 1,                 // int32_t. Default: CUBLASLT_ORDER_COL.
  CUBLASLT_MATRIX_LAYOUT_ROWS = 2,                  // uint64_t
  CUBLASLT_MATRIX_LAYOUT_COLS = 3,                  // uint64_t
  CUBLASLT_MATRIX_LAYOUT_LD = 4,                    // int64_t
  CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT = 5,           // int32_t. Default: 1.
  CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET = 6,  // int64_t, in elements. Default: 0.
} cublasLtMatrixLayoutAttribute_t;

typedef enum {
  CUBLASLT_MATMUL_DESC_COMPUTE_TYPE = 0,  // int32_t (cublasComputeType_t)
  CUBLASLT_MATMUL_DESC_SCALE_TYPE = 1,    // int32_t (cudaDataType)
  CUBLASLT_MATMUL_DESC_POINTER_MODE = 2,  // int32_t. Default: CUBLASLT_POINTER_MODE_HOST.
  CUBLASLT_MATMUL_DESC_TRANSA = 3,        // int32_t (cublasOperation_t). Default: CUBLAS_OP_N.
  CUBLASLT_MATMUL_DESC_TRANSB = 4,        // int32_t. Default: CUBLAS_OP_N.
  CUBLASLT_MATMUL_DESC_TRANSC = 5,        // int32_t. Only CUBLAS_OP_N, the default.
  CUBLASLT_MATMUL_DESC_EPILOGUE = 7,      // uint32_t. Default: CUBLASLT_EPILOGUE_DEFAULT.
  CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,  // const void*, D's rows elements. Default: null.
  CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE = 10,          // int64_t, in elements. Default: 0.
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER = 11,       // void*. Default: null.
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD = 12,            // int64_t. Default: 0.
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE = 13,  // int64_t, in elements. Default: 0.
  CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE = 22,     // int32_t. Default: -1, D's type.
  CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE = 26,             // int32_t. Default: -1, D's type.
} cublasLtMatmulDescAttributes_t;

typedef enum {
  CUBLASLT_SEARCH_BEST_FIT = 0,
} cublasLtMatmulSearch_t;

// How the parts of a dot product split over k are added (cuBLASLt's names and values).
typedef enum {
  CUBLASLT_REDUCTION_SCHEME_NONE = 0,          // No split.
  CUBLASLT_REDUCTION_SCHEME_INPLACE = 1,       // Parts added in the output buffer and type.
  CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE = 2,  // Parts kept in the compute type (f32).
  CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE = 4,   // Parts kept in the output type.
  CUBLASLT_REDUCTION_SCHEME_MASK = 0x7,
} cublasLtReductionScheme_t;

typedef enum {
  CUBLASLT_MATMUL_PREF_SEARCH_MODE = 0,          // uint32_t. Only CUBLASLT_SEARCH_BEST_FIT.
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,  // uint64_t. Default: 0.
  // uint32_t, the reduction schemes allowed (cublasLtReductionScheme_t bits). Default:
  // CUBLASLT_REDUCTION_SCHEME_MASK, all of them.
  CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3,
  // The alignments (bytes) that the caller promises for A, B, C and D's pointers: uint32_t.
  // Default: 256.
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
} cublasLtMatmulPreferenceAttributes_t;

typedef struct cublasLtContext* cublasLtHandle_t;

// Descriptors, created and destroyed by the calls below (their contents are cublas_lt.cc's).
struct cublasLtMatrixLayoutOpaque_t;
typedef cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
struct cublasLtMatmulDescOpaque_t;
typedef cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
struct cublasLtMatmulPreferenceOpaque_t;
typedef cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;

// An algorithm that the heuristic chose: plain data, which may be copied and kept (as matmul.cc
// caches it). It records the alignments it was chosen for and the workspace it needs.
typedef struct {
  uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;  // The workspace bytes that cublasLtMatmul needs with `algo`.
  cublasStatus_t state;  // CUBLAS_STATUS_SUCCESS for every result returned.
  float wavesCount;      // 1.
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;

// Handles hold nothing; cublasLtDestroy releases one.
cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle);

// "CUBLAS_STATUS_INVALID_VALUE" and a sentence saying what it means. Static strings.
const char* cublasLtGetStatusName(cublasStatus_t status);
const char* cublasLtGetStatusString(cublasStatus_t status);

// A column-major rows x cols matrix whose columns start `ld` elements apart; a batch of 1.
// The caller destroys it with cublasLtMatrixLayoutDestroy (null is accepted).
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout);
// CUBLAS_STATUS_INVALID_VALUE when `buf` is null or `size` is not the attribute's size.
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                cublasLtMatrixLayoutAttribute_t attribute,
                                                const void* buf, size_t size);

// The caller destroys it with cublasLtMatmulDescDestroy (null is accepted).
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc,
                                        cublasComputeType_t compute_type,
                                        cudaDataType_t scale_type);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attribute,
                                              const void* buf, size_t size);

// The caller destroys it with cublasLtMatmulPreferenceDestroy (null is accepted).
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute,
                                                    const void* buf, size_t size);

// One algorithm (*returned = 1) for a supported problem; CUBLAS_STATUS_NOT_SUPPORTED and
// *returned = 0 for one that is not emulated; CUBLAS_STATUS_INVALID_VALUE for an inconsistent
// one. Reads the bias and aux pointers' values (for their alignment), never what they point to.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a_layout,
    cublasLtMatrixLayout_t b_layout, cublasLtMatrixLayout_t c_layout,
    cublasLtMatrixLayout_t d_layout, cublasLtMatmulPreference_t preference, int requested,
    cublasLtMatmulHeuristicResult_t results[], int* returned);

// D = epilogue(alpha op(A) op(B) + beta C), as the top of this file says. A null `algo` is
// chosen as the heuristic would with default preferences (no workspace, 256-byte alignments).
// A null `c_layout` is taken to be `d_layout`. Runs on the calling thread before it returns.
cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* a, cublasLtMatrixLayout_t a_layout, const void* b,
                              cublasLtMatrixLayout_t b_layout, const void* beta, const void* c,
                              cublasLtMatrixLayout_t c_layout, void* d,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t* algo,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream);

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_CUBLASLT_H_
