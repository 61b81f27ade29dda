// cuBLASLt's matrix product on the host (shim/cublasLt.h): the descriptors, the heuristic and the
// checks that the header states; the arithmetic is cublas_lt_product.cc's
// (internal/cublas_lt_product.h). Holds no global state.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include <cublasLt.h>

#include "tests/testing/cuda_emulator/internal/api_counts.h"
#include "tests/testing/cuda_emulator/internal/cublas_lt_product.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"
#include "tests/testing/cuda_emulator/internal/streams.h"

struct cublasLtContext {};

struct cublasLtMatrixLayoutOpaque_t {
  int32_t type = CUDA_R_32F;
  int32_t order = CUBLASLT_ORDER_COL;
  uint64_t rows = 0;
  uint64_t cols = 0;
  int64_t ld = 0;
  int32_t batch_count = 1;
  int64_t batch_stride = 0;  // Elements.
};

struct cublasLtMatmulDescOpaque_t {
  int32_t compute_type = CUBLAS_COMPUTE_32F;
  int32_t scale_type = CUDA_R_32F;
  int32_t pointer_mode = CUBLASLT_POINTER_MODE_HOST;
  int32_t trans_a = CUBLAS_OP_N;
  int32_t trans_b = CUBLAS_OP_N;
  int32_t trans_c = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
  int64_t bias_batch_stride = 0;
  void* aux = nullptr;
  int64_t aux_ld = 0;
  int64_t aux_batch_stride = 0;
  int32_t aux_type = -1;  // -1: D's type.
  int32_t bias_type = -1;
};

struct cublasLtMatmulPreferenceOpaque_t {
  uint32_t search_mode = CUBLASLT_SEARCH_BEST_FIT;
  uint64_t max_workspace_bytes = 0;
  uint32_t reduction_scheme_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
  uint32_t min_alignment[4] = {256, 256, 256, 256};  // A, B, C, D.
};

namespace usine::testing::cuda_emulator_internal {
namespace {

constexpr uint64_t kAlgoTag = 0x75736e4c74416c67;    // Marks an algo that the heuristic wrote.
constexpr size_t kWorkspaceBytes = size_t{1} << 20;  // What every algorithm asks for, at most.
constexpr uint32_t kWorkspaceAlignment = 256;        // cuBLASLt's requirement.
constexpr int64_t kMaxElements = int64_t{1} << 62;   // Beyond, extents are refused.

cublasStatus_t Refuse(const char* call, cublasStatus_t status, const std::string& why) {
  Note("%s returns %s: %s", call, cublasLtGetStatusName(status), why.c_str());
  return status;
}

template <typename T>
cublasStatus_t SetField(T& field, const void* buf, size_t size, const char* call, int attribute) {
  if (buf == nullptr || size != sizeof(T)) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("attribute %d takes %zu bytes at a non-null buffer, got %zu at %p",
                               attribute, sizeof(T), size, buf));
  }
  std::memcpy(&field, buf, sizeof(T));
  return CUBLAS_STATUS_SUCCESS;
}

const char* TypeName(int32_t type) {
  if (type == CUDA_R_32F) return "CUDA_R_32F";
  if (type == CUDA_R_16BF) return "CUDA_R_16BF";
  if (type == CUDA_R_16F) return "CUDA_R_16F";
  return "a type not emulated";
}

// The elements that `batch` matrices of rows x cols span, each column `ld` after the previous
// and each matrix `stride` after the previous: 0 when a matrix is empty; false beyond
// kMaxElements.
bool SpanElements(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride,
                  int64_t* span) {
  if (rows == 0 || cols == 0) {
    *span = 0;
    return true;
  }
  const __int128 elements =
      static_cast<__int128>(cols - 1) * ld + rows + static_cast<__int128>(batch - 1) * stride;
  if (elements > kMaxElements) return false;
  *span = static_cast<int64_t>(elements);
  return true;
}

cublasStatus_t CheckLayout(const char* call, const char* name,
                           const cublasLtMatrixLayoutOpaque_t& layout, bool ld_may_be_zero,
                           MatmulOperand* matrix) {
  if (layout.order != CUBLASLT_ORDER_COL) {
    return Refuse(
        call, CUBLAS_STATUS_NOT_SUPPORTED,
        StringPrintf("%s's order %d: only CUBLASLT_ORDER_COL is emulated", name, layout.order));
  }
  if (ElementBytes(layout.type) == 0) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("%s's type %d (%s): only CUDA_R_32F and CUDA_R_16BF are emulated",
                               name, layout.type, TypeName(layout.type)));
  }
  if (layout.rows > INT32_MAX || layout.cols > INT32_MAX) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("%s is %llu x %llu: beyond int32_t", name,
                               static_cast<unsigned long long>(layout.rows),
                               static_cast<unsigned long long>(layout.cols)));
  }
  const auto rows = static_cast<int64_t>(layout.rows);
  const auto cols = static_cast<int64_t>(layout.cols);
  if (layout.ld < rows && !(ld_may_be_zero && layout.ld == 0)) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("%s's leading dimension %lld is less than its %lld rows", name,
                               static_cast<long long>(layout.ld), static_cast<long long>(rows)));
  }
  if (layout.batch_count < 1) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("%s's batch count %d", name, layout.batch_count));
  }
  if (layout.batch_stride < 0) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("%s's batch stride %lld: negative strides are not emulated", name,
                               static_cast<long long>(layout.batch_stride)));
  }
  *matrix = {layout.type, rows, cols, layout.ld, layout.batch_stride, 0};
  if (!SpanElements(rows, cols, layout.ld, layout.batch_count, layout.batch_stride,
                    &matrix->span)) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("%s spans more than 2^62 elements", name));
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t ReadOperation(const char* call, const char* name, int32_t op, bool* transposed) {
  if (op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C) {
    *transposed = op != CUBLAS_OP_N;  // C, the conjugate transpose, is T on real data.
    return CUBLAS_STATUS_SUCCESS;
  }
  return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                StringPrintf("%s %d: only CUBLAS_OP_N, _T and _C are emulated", name, op));
}

// Whether cuBLASLt's table of data types lists A/B `ab` with C/D `cd` under `compute`, among the
// types emulated: COMPUTE_32F takes bf16/bf16, bf16/f32 and f32/f32, FAST_TF32 only f32/f32.
bool TypesSupported(int32_t compute, int32_t ab, int32_t cd) {
  if (compute == CUBLAS_COMPUTE_32F_FAST_TF32) return ab == CUDA_R_32F && cd == CUDA_R_32F;
  return !(ab == CUDA_R_32F && cd == CUDA_R_16BF);
}

cublasStatus_t AnalyzeTypes(const char* call, const cublasLtMatmulDescOpaque_t& desc,
                            MatmulProblem* p) {
  if (desc.compute_type != CUBLAS_COMPUTE_32F &&
      desc.compute_type != CUBLAS_COMPUTE_32F_FAST_TF32) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("compute type %d: only CUBLAS_COMPUTE_32F and "
                               "CUBLAS_COMPUTE_32F_FAST_TF32 are emulated",
                               desc.compute_type));
  }
  if (desc.scale_type != CUDA_R_32F) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("scale type %d: only CUDA_R_32F is emulated", desc.scale_type));
  }
  if (p->a.type != p->b.type) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("A is %s and B %s: cuBLASLt's table wants one type",
                               TypeName(p->a.type), TypeName(p->b.type)));
  }
  if (p->c.type != p->d.type) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("C is %s and D %s: C and D must have the same type",
                               TypeName(p->c.type), TypeName(p->d.type)));
  }
  if (!TypesSupported(desc.compute_type, p->a.type, p->d.type)) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  StringPrintf("A/B %s with C/D %s under compute type %d is not in cuBLASLt's "
                               "table of data types",
                               TypeName(p->a.type), TypeName(p->d.type), desc.compute_type));
  }
  p->tf32 = desc.compute_type == CUBLAS_COMPUTE_32F_FAST_TF32;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t AnalyzeShapes(const char* call, const cublasLtMatrixLayoutOpaque_t* layouts[4],
                             MatmulProblem* p) {
  p->m = p->transpose_a ? p->a.cols : p->a.rows;
  p->k = p->transpose_a ? p->a.rows : p->a.cols;
  const int64_t k_of_b = p->transpose_b ? p->b.cols : p->b.rows;
  p->n = p->transpose_b ? p->b.rows : p->b.cols;
  if (k_of_b != p->k) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("op(A) is %lld x %lld but op(B) %lld x %lld",
                               static_cast<long long>(p->m), static_cast<long long>(p->k),
                               static_cast<long long>(k_of_b), static_cast<long long>(p->n)));
  }
  for (const MatmulOperand* out : {&p->c, &p->d}) {
    if (out->rows != p->m || out->cols != p->n) {
      return Refuse(
          call, CUBLAS_STATUS_INVALID_VALUE,
          StringPrintf("%s is %lld x %lld, not op(A) op(B)'s %lld x %lld", out == &p->c ? "C" : "D",
                       static_cast<long long>(out->rows), static_cast<long long>(out->cols),
                       static_cast<long long>(p->m), static_cast<long long>(p->n)));
    }
  }
  p->batch = layouts[3]->batch_count;
  for (int i = 0; i < 3; ++i) {
    if (layouts[i]->batch_count != p->batch) {
      return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                    StringPrintf("batch counts differ: %c has %d, D %lld", "ABC"[i],
                                 layouts[i] -> batch_count, static_cast<long long>(p->batch)));
    }
  }
  int64_t one = 0;
  SpanElements(p->m, p->n, p->d.ld, 1, 0, &one);
  if (p->batch > 1 && p->d.batch_stride < one) {
    return Refuse(
        call, CUBLAS_STATUS_INVALID_VALUE,
        StringPrintf("D's batches overlap: stride %lld, each spans %lld elements",
                     static_cast<long long>(p->d.batch_stride), static_cast<long long>(one)));
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t AnalyzeEpilogue(const char* call, const cublasLtMatmulDescOpaque_t& desc,
                               MatmulProblem* p) {
  switch (desc.epilogue) {
    case CUBLASLT_EPILOGUE_DEFAULT:
      break;
    case CUBLASLT_EPILOGUE_BIAS:
      p->bias = true;
      break;
    case CUBLASLT_EPILOGUE_GELU_AUX_BIAS:
      p->aux = p->bias = p->gelu = true;
      break;
    case CUBLASLT_EPILOGUE_GELU_AUX:
      p->aux = p->gelu = true;
      break;
    case CUBLASLT_EPILOGUE_GELU_BIAS:
      p->bias = p->gelu = true;
      break;
    case CUBLASLT_EPILOGUE_GELU:
      p->gelu = true;
      break;
    case CUBLASLT_EPILOGUE_DGELU:
      p->aux = p->dgelu = true;
      break;
    default:
      return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                    StringPrintf("epilogue %u: only DEFAULT, BIAS, the GELU ones and DGELU are "
                                 "emulated",
                                 desc.epilogue));
  }
  if (p->bias) {
    const int32_t type = desc.bias_type == -1 ? p->d.type : desc.bias_type;
    if (type != p->d.type) {
      return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                    StringPrintf("a %s bias with a %s D: cuBLASLt's table gives the bias D's type",
                                 TypeName(type), TypeName(p->d.type)));
    }
    if (desc.bias_batch_stride < 0) {
      return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED, "a negative bias batch stride");
    }
    p->bias_vector = {type, p->m, 1, p->m, desc.bias_batch_stride, 0};
    if (!SpanElements(p->m, 1, p->m, p->batch, desc.bias_batch_stride, &p->bias_vector.span)) {
      return Refuse(call, CUBLAS_STATUS_INVALID_VALUE, "the bias spans more than 2^62 elements");
    }
  }
  if (p->aux) {
    const int32_t type = desc.aux_type == -1 ? p->d.type : desc.aux_type;
    if (type != p->d.type) {
      return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                    StringPrintf("a %s GELU input with a %s D: it has D's type", TypeName(type),
                                 TypeName(p->d.type)));
    }
    if (desc.aux_ld % 8 != 0 || desc.aux_ld < p->m) {
      return Refuse(
          call, CUBLAS_STATUS_INVALID_VALUE,
          StringPrintf("EPILOGUE_AUX_LD %lld: it must be divisible by 8 and at least D's "
                       "%lld rows",
                       static_cast<long long>(desc.aux_ld), static_cast<long long>(p->m)));
    }
    if (desc.aux_batch_stride % 8 != 0 || desc.aux_batch_stride < 0) {
      return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                    StringPrintf("EPILOGUE_AUX_BATCH_STRIDE %lld: it must be divisible by 8",
                                 static_cast<long long>(desc.aux_batch_stride)));
    }
    int64_t one = 0;
    SpanElements(p->m, p->n, desc.aux_ld, 1, 0, &one);
    if (p->batch > 1 && desc.aux_batch_stride < one) {
      return Refuse(
          call, CUBLAS_STATUS_INVALID_VALUE,
          StringPrintf("the GELU input's batches overlap: EPILOGUE_AUX_BATCH_STRIDE %lld "
                       "(default 0), each spans %lld elements",
                       static_cast<long long>(desc.aux_batch_stride), static_cast<long long>(one)));
    }
    p->aux_matrix = {type, p->m, p->n, desc.aux_ld, desc.aux_batch_stride, 0};
    if (!SpanElements(p->m, p->n, desc.aux_ld, p->batch, desc.aux_batch_stride,
                      &p->aux_matrix.span)) {
      return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                    "the GELU input spans more than 2^62 elements");
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

// What the heuristic and the product both check: a consistent product that is emulated.
cublasStatus_t Analyze(const char* call, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                       cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                       MatmulProblem* p) {
  if (desc == nullptr || a == nullptr || b == nullptr || d == nullptr) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE, "a null descriptor");
  }
  if (c == nullptr) c = d;
  if (desc->pointer_mode != CUBLASLT_POINTER_MODE_HOST) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                  "only CUBLASLT_POINTER_MODE_HOST (alpha and beta on the host) is emulated");
  }
  cublasStatus_t status = ReadOperation(call, "TRANSA", desc->trans_a, &p->transpose_a);
  if (status == CUBLAS_STATUS_SUCCESS) {
    status = ReadOperation(call, "TRANSB", desc->trans_b, &p->transpose_b);
  }
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  if (desc->trans_c != CUBLAS_OP_N) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED, "TRANSC: only CUBLAS_OP_N is supported");
  }
  // C's leading dimension may be 0 (its first column repeated), as cuBLASLt allows out of place.
  const cublasLtMatrixLayoutOpaque_t* layouts[4] = {a, b, c, d};
  MatmulOperand* matrices[4] = {&p->a, &p->b, &p->c, &p->d};
  for (int i = 0; i < 4; ++i) {
    const char name[2] = {"ABCD"[i], '\0'};
    status = CheckLayout(call, name, *layouts[i], /*ld_may_be_zero=*/i == 2, matrices[i]);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
  }
  status = AnalyzeTypes(call, *desc, p);
  if (status == CUBLAS_STATUS_SUCCESS) status = AnalyzeShapes(call, layouts, p);
  if (status == CUBLAS_STATUS_SUCCESS) status = AnalyzeEpilogue(call, *desc, p);
  return status;
}

// The largest power of two that divides the address, at most 256 (null: 256).
uint32_t AddressAlignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t alignment = 256;
  while (address % alignment != 0) alignment /= 2;
  return alignment;
}

// What an algorithm records in cublasLtMatmulAlgo_t's data.
struct AlgoRecord {
  uint64_t workspace_bytes = 0;  // At most kWorkspaceBytes.
  uint32_t alignment[6] = {};    // A, B, C, D, bias, aux: what the pointers are promised to be.
  bool split_k_in_output_type = false;  // shim/cublasLt.h: "Split-K in D's type".
};

constexpr uint64_t kSplitKBit = uint64_t{1} << 63;  // In data[1], above the workspace bytes.

void Encode(const AlgoRecord& record, cublasLtMatmulAlgo_t* algo) {
  *algo = {};
  algo->data[0] = kAlgoTag;
  algo->data[1] = record.workspace_bytes | (record.split_k_in_output_type ? kSplitKBit : 0);
  for (int i = 0; i < 6; ++i) algo->data[2 + i] = record.alignment[i];
}

bool Decode(const cublasLtMatmulAlgo_t& algo, AlgoRecord* record) {
  if (algo.data[0] != kAlgoTag) return false;
  record->workspace_bytes = algo.data[1] & ~kSplitKBit;
  record->split_k_in_output_type = (algo.data[1] & kSplitKBit) != 0;
  for (int i = 0; i < 6; ++i) record->alignment[i] = static_cast<uint32_t>(algo.data[2 + i]);
  return true;
}

constexpr const char* kOperandNames[6] = {"A", "B", "C", "D", "bias", "GELU input (aux)"};

// The one algorithm for an analyzed problem: chosen for the alignments that the preference
// promises for A to D and that the bias and aux pointers have now.
cublasStatus_t ChooseAlgo(const char* call, const MatmulProblem& p,
                          const cublasLtMatmulDescOpaque_t& desc,
                          const cublasLtMatmulPreferenceOpaque_t& preference,
                          cublasLtMatmulHeuristicResult_t* result) {
  if (preference.search_mode != CUBLASLT_SEARCH_BEST_FIT) {
    return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED, "only CUBLASLT_SEARCH_BEST_FIT is emulated");
  }
  AlgoRecord record;
  record.workspace_bytes = std::min<uint64_t>(kWorkspaceBytes, preference.max_workspace_bytes);
  const int32_t types[6] = {p.a.type, p.b.type,           p.c.type,
                            p.d.type, p.bias_vector.type, p.aux_matrix.type};
  for (int i = 0; i < 4; ++i) record.alignment[i] = preference.min_alignment[i];
  constexpr uint32_t kOutputTypeSchemes =
      CUBLASLT_REDUCTION_SCHEME_INPLACE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
  record.split_k_in_output_type = (preference.reduction_scheme_mask & kOutputTypeSchemes) != 0 &&
                                  p.d.type != CUDA_R_32F && p.k >= 2;
  record.alignment[4] = p.bias ? AddressAlignment(desc.bias) : 1;
  record.alignment[5] = p.aux ? AddressAlignment(desc.aux) : 1;
  for (int i = 0; i < 6; ++i) {
    const bool used = i < 4 || (i == 4 && p.bias) || (i == 5 && p.aux);
    if (used && record.alignment[i] < ElementBytes(types[i])) {
      return Refuse(call, CUBLAS_STATUS_NOT_SUPPORTED,
                    StringPrintf("no algorithm for %s aligned to %u bytes, less than an element",
                                 kOperandNames[i], record.alignment[i]));
    }
  }
  *result = {};
  Encode(record, &result->algo);
  result->workspaceSize = record.workspace_bytes;
  result->state = CUBLAS_STATUS_SUCCESS;
  result->wavesCount = 1.0f;
  return CUBLAS_STATUS_SUCCESS;
}

// Checks that `bytes` at `p` lie in one device allocation and that `p` is aligned as promised.
cublasStatus_t CheckPointer(const char* call, const char* name, const void* p, size_t bytes,
                            uint32_t promised, const char* promised_by) {
  if (bytes == 0) return CUBLAS_STATUS_SUCCESS;
  if (p == nullptr) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE, StringPrintf("%s is null", name));
  }
  if (!InDeviceAllocation(p, bytes)) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("%s: [%p, +%zu bytes) is not within one device allocation "
                               "(host memory, or past an array's end)",
                               name, p, bytes));
  }
  if (reinterpret_cast<uintptr_t>(p) % promised != 0) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  StringPrintf("%s at %p is aligned to %u bytes, less than the %u %s", name, p,
                               AddressAlignment(p), promised, promised_by));
  }
  return CUBLAS_STATUS_SUCCESS;
}

struct Range {
  uintptr_t begin = 0, end = 0;
};

Range RangeOf(const void* p, size_t bytes) {
  const auto begin = reinterpret_cast<uintptr_t>(p);
  return {begin, begin + bytes};
}

bool Overlap(const Range& x, const Range& y) {
  return x.begin != x.end && y.begin != y.end && x.begin < y.end && y.begin < x.end;
}

size_t Bytes(const MatmulOperand& matrix) {
  return static_cast<size_t>(matrix.span) * ElementBytes(matrix.type);
}

// The pointer checks of cublasLtMatmul: device memory, promised alignments, the workspace, and
// outputs that overlap inputs (D may be C exactly: in place).
cublasStatus_t CheckOperands(const char* call, const MatmulProblem& p, const MatmulPointers& ptr,
                             const AlgoRecord& record, const cublasLtMatrixLayoutOpaque_t& c,
                             const cublasLtMatrixLayoutOpaque_t& d, void* workspace,
                             size_t workspace_bytes) {
  if (workspace_bytes < record.workspace_bytes) {
    return Refuse(
        call, CUBLAS_STATUS_INVALID_VALUE,
        StringPrintf("a workspace of %zu bytes, less than the algorithm's %llu", workspace_bytes,
                     static_cast<unsigned long long>(record.workspace_bytes)));
  }
  cublasStatus_t status =
      CheckPointer(call, "workspace", workspace, workspace_bytes, kWorkspaceAlignment,
                   "that cuBLASLt requires of a workspace");
  const void* pointers[6] = {ptr.a, ptr.b, ptr.c, ptr.d, ptr.bias, ptr.aux};
  const size_t bytes[6] = {Bytes(p.a),
                           Bytes(p.b),
                           ptr.c != nullptr ? Bytes(p.c) : 0,
                           Bytes(p.d),
                           p.bias ? Bytes(p.bias_vector) : 0,
                           p.aux ? Bytes(p.aux_matrix) : 0};
  for (int i = 0; i < 6 && status == CUBLAS_STATUS_SUCCESS; ++i) {
    status = CheckPointer(call, kOperandNames[i], pointers[i], bytes[i], record.alignment[i],
                          "that the algorithm was chosen for");
  }
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  const bool in_place = ptr.c == ptr.d;
  if (in_place && (c.ld != d.ld || c.batch_stride != d.batch_stride)) {
    return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                  "C and D are one pointer with different layouts (in place needs equal ones)");
  }
  Range ranges[6];
  for (int i = 0; i < 6; ++i) ranges[i] = RangeOf(pointers[i], bytes[i]);
  if (in_place) ranges[2] = {};  // C is D's own elements, each read before it is written.
  for (int out : {3, 5}) {
    if (out == 5 && p.dgelu) continue;  // DGELU reads aux: D's check covers it.
    for (int other = 0; other < 6; ++other) {
      if (other != out && Overlap(ranges[out], ranges[other])) {
        return Refuse(
            call, CUBLAS_STATUS_INVALID_VALUE,
            StringPrintf("the output %s overlaps %s", kOperandNames[out], kOperandNames[other]));
      }
    }
  }
  // cuBLASLt writes its workspace: no operand may lie in the part the algorithm uses.
  const Range used_workspace = RangeOf(workspace, static_cast<size_t>(record.workspace_bytes));
  for (int i = 0; i < 6; ++i) {
    if (Overlap(used_workspace, ranges[i])) {
      return Refuse(call, CUBLAS_STATUS_INVALID_VALUE,
                    StringPrintf("the workspace overlaps %s", kOperandNames[i]));
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

const char* StatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "<unrecognized cublasStatus_t>";
}

const char* StatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "a resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an unsupported value or parameter was passed to the function";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "the function requires a feature absent from the device architecture";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "the functionality requested requires a license";
  }
  return "unrecognized status";
}

template <typename T>
cublasStatus_t Create(const char* call, T** out) {
  if (out == nullptr) return Refuse(call, CUBLAS_STATUS_INVALID_VALUE, "a null out pointer");
  *out = new (std::nothrow) T;
  return *out != nullptr ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

}  // namespace
}  // namespace usine::testing::cuda_emulator_internal

namespace lt = usine::testing::cuda_emulator_internal;

cublasStatus_t cublasLtCreate(cublasLtHandle_t* handle) {
  return lt::Create("cublasLtCreate", handle);
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
  if (handle == nullptr) {
    return lt::Refuse("cublasLtDestroy", CUBLAS_STATUS_NOT_INITIALIZED, "a null handle");
  }
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasLtGetStatusName(cublasStatus_t status) { return lt::StatusName(status); }
const char* cublasLtGetStatusString(cublasStatus_t status) { return lt::StatusString(status); }

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
  const cublasStatus_t status = lt::Create("cublasLtMatrixLayoutCreate", layout);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  (*layout)->type = type;
  (*layout)->rows = rows;
  (*layout)->cols = cols;
  (*layout)->ld = ld;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
  delete layout;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                cublasLtMatrixLayoutAttribute_t attribute,
                                                const void* buf, size_t size) {
  constexpr const char* kCall = "cublasLtMatrixLayoutSetAttribute";
  if (layout == nullptr) return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE, "a null layout");
  switch (attribute) {
    case CUBLASLT_MATRIX_LAYOUT_TYPE:
      return lt::SetField(layout->type, buf, size, kCall, attribute);
    case CUBLASLT_MATRIX_LAYOUT_ORDER:
      return lt::SetField(layout->order, buf, size, kCall, attribute);
    case CUBLASLT_MATRIX_LAYOUT_ROWS:
      return lt::SetField(layout->rows, buf, size, kCall, attribute);
    case CUBLASLT_MATRIX_LAYOUT_COLS:
      return lt::SetField(layout->cols, buf, size, kCall, attribute);
    case CUBLASLT_MATRIX_LAYOUT_LD:
      return lt::SetField(layout->ld, buf, size, kCall, attribute);
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
      return lt::SetField(layout->batch_count, buf, size, kCall, attribute);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
      return lt::SetField(layout->batch_stride, buf, size, kCall, attribute);
  }
  return lt::Refuse(kCall, CUBLAS_STATUS_NOT_SUPPORTED,
                    lt::StringPrintf("layout attribute %d is not emulated", attribute));
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc,
                                        cublasComputeType_t compute_type,
                                        cudaDataType_t scale_type) {
  const cublasStatus_t status = lt::Create("cublasLtMatmulDescCreate", desc);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  (*desc)->compute_type = compute_type;
  (*desc)->scale_type = scale_type;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
  delete desc;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attribute,
                                              const void* buf, size_t size) {
  constexpr const char* kCall = "cublasLtMatmulDescSetAttribute";
  if (desc == nullptr) return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE, "a null descriptor");
  switch (attribute) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
      return lt::SetField(desc->compute_type, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
      return lt::SetField(desc->scale_type, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
      return lt::SetField(desc->pointer_mode, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_TRANSA:
      return lt::SetField(desc->trans_a, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_TRANSB:
      return lt::SetField(desc->trans_b, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_TRANSC:
      return lt::SetField(desc->trans_c, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
      return lt::SetField(desc->epilogue, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
      return lt::SetField(desc->bias, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE:
      return lt::SetField(desc->bias_batch_stride, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER:
      return lt::SetField(desc->aux, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD:
      return lt::SetField(desc->aux_ld, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE:
      return lt::SetField(desc->aux_batch_stride, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE:
      return lt::SetField(desc->aux_type, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
      return lt::SetField(desc->bias_type, buf, size, kCall, attribute);
  }
  return lt::Refuse(kCall, CUBLAS_STATUS_NOT_SUPPORTED,
                    lt::StringPrintf("matmul attribute %d is not emulated", attribute));
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* preference) {
  return lt::Create("cublasLtMatmulPreferenceCreate", preference);
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t preference) {
  delete preference;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t preference,
                                                    cublasLtMatmulPreferenceAttributes_t attribute,
                                                    const void* buf, size_t size) {
  constexpr const char* kCall = "cublasLtMatmulPreferenceSetAttribute";
  if (preference == nullptr) {
    return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE, "a null preference");
  }
  switch (attribute) {
    case CUBLASLT_MATMUL_PREF_SEARCH_MODE:
      return lt::SetField(preference->search_mode, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
      return lt::SetField(preference->max_workspace_bytes, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK:
      return lt::SetField(preference->reduction_scheme_mask, buf, size, kCall, attribute);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
      return lt::SetField(
          preference->min_alignment[attribute - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf,
          size, kCall, attribute);
  }
  return lt::Refuse(kCall, CUBLAS_STATUS_NOT_SUPPORTED,
                    lt::StringPrintf("preference attribute %d is not emulated", attribute));
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a_layout,
    cublasLtMatrixLayout_t b_layout, cublasLtMatrixLayout_t c_layout,
    cublasLtMatrixLayout_t d_layout, cublasLtMatmulPreference_t preference, int requested,
    cublasLtMatmulHeuristicResult_t results[], int* returned) {
  constexpr const char* kCall = "cublasLtMatmulAlgoGetHeuristic";
  if (returned != nullptr) *returned = 0;
  if (handle == nullptr) {
    return lt::Refuse(kCall, CUBLAS_STATUS_NOT_INITIALIZED, "a null handle");
  }
  if (preference == nullptr || results == nullptr || returned == nullptr || requested <= 0) {
    return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE,
                      "a null preference, result array or count, or no result requested");
  }
  lt::MatmulProblem problem;
  cublasStatus_t status =
      lt::Analyze(kCall, desc, a_layout, b_layout, c_layout, d_layout, &problem);
  if (status == CUBLAS_STATUS_SUCCESS) {
    status = lt::ChooseAlgo(kCall, problem, *desc, *preference, &results[0]);
  }
  if (status == CUBLAS_STATUS_SUCCESS) *returned = 1;
  return status;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                              const void* a, cublasLtMatrixLayout_t a_layout, const void* b,
                              cublasLtMatrixLayout_t b_layout, const void* beta, const void* c,
                              cublasLtMatrixLayout_t c_layout, void* d,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t* algo,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  constexpr const char* kCall = "cublasLtMatmul";
  if (handle == nullptr) return lt::Refuse(kCall, CUBLAS_STATUS_NOT_INITIALIZED, "a null handle");
  if (!lt::ValidStream(stream)) {
    return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE, "a destroyed or unknown stream");
  }
  if (c_layout == nullptr) c_layout = d_layout;
  lt::MatmulProblem problem;
  cublasStatus_t status =
      lt::Analyze(kCall, desc, a_layout, b_layout, c_layout, d_layout, &problem);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  if (alpha == nullptr || beta == nullptr) {
    return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE, "a null alpha or beta");
  }
  cublasLtMatmulHeuristicResult_t implicit;
  if (algo == nullptr) {  // cuBLASLt's implicit query with default preferences.
    status = lt::ChooseAlgo(kCall, problem, *desc, cublasLtMatmulPreferenceOpaque_t{}, &implicit);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
    algo = &implicit.algo;
  }
  lt::AlgoRecord record;
  if (!lt::Decode(*algo, &record)) {
    return lt::Refuse(kCall, CUBLAS_STATUS_INVALID_VALUE,
                      "the algo was not given by cublasLtMatmulAlgoGetHeuristic");
  }
  float alpha_value = 0.0f, beta_value = 0.0f;
  std::memcpy(&alpha_value, alpha, sizeof(float));
  std::memcpy(&beta_value, beta, sizeof(float));
  const void* c_read = beta_value != 0.0f ? c : nullptr;
  const lt::MatmulPointers pointers{a, b, c_read, d, desc->bias, desc->aux};
  status = lt::CheckOperands(kCall, problem, pointers, record, *c_layout, *d_layout, workspace,
                             workspace_bytes);
  if (status != CUBLAS_STATUS_SUCCESS) return status;
  constexpr auto kRead = lt::DeviceAccess::kRead;
  constexpr auto kWrite = lt::DeviceAccess::kWrite;
  lt::IssueOnStream(
      kCall, stream,
      {{a, lt::Bytes(problem.a), kRead, "A"},
       {b, lt::Bytes(problem.b), kRead, "B"},
       {c_read, c_read != nullptr ? lt::Bytes(problem.c) : 0, kRead, "C"},
       {d, lt::Bytes(problem.d), kWrite, "D"},
       {desc->bias, problem.bias ? lt::Bytes(problem.bias_vector) : 0, kRead, "bias"},
       {desc->aux, problem.aux ? lt::Bytes(problem.aux_matrix) : 0, problem.dgelu ? kRead : kWrite,
        "GELU input (aux)"},
       {workspace, static_cast<size_t>(record.workspace_bytes), kWrite, "workspace"}});
  if (record.workspace_bytes > 0) std::memset(workspace, 0xFF, record.workspace_bytes);
  problem.split_k_in_output_type =
      record.split_k_in_output_type && problem.d.type != CUDA_R_32F && problem.k >= 2;
  lt::ComputeMatmul(problem, pointers, alpha_value, beta_value);
  if (problem.dgelu) lt::Count(lt::ApiCall::kDgeluProduct);
  return CUBLAS_STATUS_SUCCESS;
}
