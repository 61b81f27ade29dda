// cuda::Matmul through cuBLASLt. usine's matrices are row-major and cuBLASLt's column-major;
// a row-major [r, c] matrix is, in the same memory, the column-major [c, r] matrix, so the
// row-major c = op(a) op(b) is computed as the column-major c^T = op(b)^T op(a)^T: cuBLASLt's
// A is usine's b and its B is usine's a, each keeping its own transpose flag. The bias and
// GELU are cuBLASLt's epilogues, applied after alpha and beta, as matmul.h specifies.
#include "runtime/kernels/matmul.h"

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/caching_allocator.h"
#include "runtime/core/cublas_status.h"
#include "runtime/core/cuda_status.h"
#include "runtime/core/float16.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/internal/backends.h"

namespace usine::kernels_internal::cuda {
namespace {

// The most workspace an algorithm may use; 32 MiB is what cuBLAS recommends for Hopper.
constexpr uint64_t kMaxWorkspaceBytes = uint64_t{32} << 20;

// One cuBLASLt handle per device, created at first use and never destroyed (at exit the
// device's context may already be gone). Safe for concurrent use: cuBLASLt allows calls on one
// handle from several threads, and the handle holds no per-call state (the stream and the
// workspace are arguments of each cublasLtMatmul).
class LtHandles {
 public:
  // The handle of CUDA device `device`. REQUIRES: `device` is the current device.
  absl::StatusOr<cublasLtHandle_t> Get(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = handles_.find(device); it != handles_.end()) return it->second;
    cublasLtHandle_t handle = nullptr;
    RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtCreate(&handle)));
    handles_.emplace(device, handle);
    return handle;
  }

 private:
  std::mutex mu_;
  std::unordered_map<int, cublasLtHandle_t> handles_ ABSL_GUARDED_BY(mu_);
};

LtHandles& Handles() {
  static LtHandles* const handles = new LtHandles;
  return *handles;
}

// What decides cuBLASLt's choice of algorithm for a product: its operands' types, shapes,
// transposes, alignments, epilogue and compute type, on one device.
struct AlgoKey {
  int device;
  cudaDataType_t ab_type, c_type, bias_type;
  bool bias, transpose_a, transpose_b, tf32;
  MatmulEpilogue epilogue;
  int64_t m, n, k, batch;
  uint32_t align_a, align_b, align_c, align_addend, align_bias, align_gelu_input;

  friend bool operator==(const AlgoKey&, const AlgoKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const AlgoKey& key) {
    return H::combine(std::move(h), key.device, key.ab_type, key.c_type, key.bias_type, key.bias,
                      key.transpose_a, key.transpose_b, key.tf32, key.epilogue, key.m, key.n, key.k,
                      key.batch, key.align_a, key.align_b, key.align_c, key.align_addend,
                      key.align_bias, key.align_gelu_input);
  }
};

// The heuristic's answer for each product seen, so that it is asked once per kind of product
// rather than on every call. A training step makes the same few kinds of product hundreds of
// times, and the query is likely the host's largest cost in a call (not measured yet); the
// smaller products of a step are short on the device (GPT-2's attention projection at B = 8 is
// about 10 GFLOP, some 16 us of bf16 work), so host time per call can leave the device waiting.
// The same key gives the same algorithm, as the heuristic did. Thread-safe.
class AlgoCache {
 public:
  std::optional<cublasLtMatmulHeuristicResult_t> Find(const AlgoKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = results_.find(key); it != results_.end()) return it->second;
    return std::nullopt;
  }
  void Insert(const AlgoKey& key, const cublasLtMatmulHeuristicResult_t& result) {
    std::lock_guard<std::mutex> lock(mu_);
    results_.emplace(key, result);
  }

 private:
  std::mutex mu_;
  absl::flat_hash_map<AlgoKey, cublasLtMatmulHeuristicResult_t> results_ ABSL_GUARDED_BY(mu_);
};

AlgoCache& Algos() {
  static AlgoCache* const cache = new AlgoCache;
  return *cache;
}

// Owners of cuBLASLt descriptors, so that every return path destroys them.
template <typename Opaque, cublasStatus_t (*kDestroy)(Opaque*)>
struct LtDestroy {
  void operator()(Opaque* descriptor) const { kDestroy(descriptor); }
};
using MatmulDesc =
    std::unique_ptr<cublasLtMatmulDescOpaque_t,
                    LtDestroy<cublasLtMatmulDescOpaque_t, cublasLtMatmulDescDestroy>>;
using MatrixLayout =
    std::unique_ptr<cublasLtMatrixLayoutOpaque_t,
                    LtDestroy<cublasLtMatrixLayoutOpaque_t, cublasLtMatrixLayoutDestroy>>;
using MatmulPreference =
    std::unique_ptr<cublasLtMatmulPreferenceOpaque_t,
                    LtDestroy<cublasLtMatmulPreferenceOpaque_t, cublasLtMatmulPreferenceDestroy>>;

// f32 accumulation and alpha/beta; f32 operands multiply in f32 (close to the cpu's sgemm)
// unless `tf32` (the product's F32MatmulPrecision; its bf16 mode reaches here as bf16
// operands).
absl::StatusOr<MatmulDesc> MakeMatmulDesc(cudaDataType_t ab_type, bool tf32) {
  const cublasComputeType_t compute =
      ab_type == CUDA_R_32F && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasLtMatmulDesc_t desc = nullptr;
  RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F)));
  return MatmulDesc(desc);
}

// A contiguous column-major [rows, cols] matrix: the leading dimension is the row count. With
// batch > 1, that many such matrices one after another (a strided batch).
absl::StatusOr<MatrixLayout> MakeLayout(cudaDataType_t type, int64_t rows, int64_t cols,
                                        int64_t batch) {
  cublasLtMatrixLayout_t layout = nullptr;
  RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtMatrixLayoutCreate(
      &layout, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), rows)));
  MatrixLayout owned(layout);
  if (batch > 1) {
    const auto count = static_cast<int32_t>(batch);  // <= INT_MAX (BatchedMatmul checks)
    const int64_t stride = rows * cols;
    RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtMatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count))));
    RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtMatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride))));
  }
  return owned;
}

absl::StatusOr<MatmulPreference> MakePreference() {
  cublasLtMatmulPreference_t preference = nullptr;
  RETURN_IF_ERROR(USINE_CUBLAS_STATUS(cublasLtMatmulPreferenceCreate(&preference)));
  return MatmulPreference(preference);
}

template <typename T>
absl::Status SetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute,
                          const T& value) {
  return WithContext(
      USINE_CUBLAS_STATUS(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value))),
      absl::StrCat("matmul descriptor attribute ", static_cast<int>(attribute)));
}

template <typename T>
absl::Status SetAttribute(cublasLtMatmulPreference_t preference,
                          cublasLtMatmulPreferenceAttributes_t attribute, const T& value) {
  return WithContext(USINE_CUBLAS_STATUS(cublasLtMatmulPreferenceSetAttribute(
                         preference, attribute, &value, sizeof(value))),
                     absl::StrCat("matmul preference attribute ", static_cast<int>(attribute)));
}

// REQUIRES: f32 or bf16, the dtypes that Matmul admits on CUDA.
cudaDataType_t CudaDataType(DType dtype) {
  return dtype == DType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
}

// The largest power of two, up to 256, that divides the address. cuBLASLt's heuristic
// assumes 256 unless told otherwise, but a view (Slice, View) may start at any element.
uint32_t Alignment(const void* ptr) {
  const auto address = reinterpret_cast<uintptr_t>(ptr);
  uint32_t alignment = 256;
  while (address % alignment != 0) alignment /= 2;
  return alignment;
}

// With k == 0 the product is empty: c <- beta * c (+ bias). c is f32 or bf16; the batch's
// matrices are rows of one.
absl::Status EmptyProduct(const Tensor& c, const MatmulOptions& o, const MatmulDims& d,
                          StreamHandle stream) {
  const void* bias = o.bias != nullptr ? o.bias->raw_data() : nullptr;
  const cudaError_t launch =
      c.dtype() == DType::kBF16
          ? LaunchScaleAndAddBias(static_cast<BFloat16*>(c.raw_data()), d.batch * d.m, d.n, o.beta,
                                  static_cast<const BFloat16*>(bias), stream)
          : LaunchScaleAndAddBias(static_cast<float*>(c.raw_data()), d.batch * d.m, d.n, o.beta,
                                  static_cast<const float*>(bias), stream);
  return USINE_CUDA_STATUS(launch);
}

// The bias and GELU epilogues. Set before the heuristic query, which reads the pointers'
// alignments.
absl::Status SetEpilogue(cublasLtMatmulDesc_t desc, const MatmulOptions& o, const MatmulDims& d) {
  const bool gelu = o.epilogue != MatmulEpilogue::kNone;
  if (o.bias == nullptr && !gelu) return absl::OkStatus();
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  if (o.epilogue == MatmulEpilogue::kGeluGradient) {
    epilogue = CUBLASLT_EPILOGUE_DGELU;  // Matmul refused a bias.
  } else if (gelu) {
    epilogue = o.bias != nullptr ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
  }
  RETURN_IF_ERROR(SetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue));
  if (o.bias != nullptr) {
    // A vector of length n (the rows of the column-major c^T) added to every column of c^T,
    // that is to every row of c.
    const void* bias = o.bias->raw_data();
    const cudaDataType_t bias_type = CudaDataType(o.bias->dtype());
    RETURN_IF_ERROR(SetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias));
    RETURN_IF_ERROR(SetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type));
  }
  if (gelu) {
    // The GELU's input (written by GELU_AUX, read by DGELU), laid out as c^T (column-major
    // [n, m]) in c's type (the default). cuBLASLt wants its leading dimension divisible by 8.
    if (d.n % 8 != 0) {
      return absl::UnimplementedError(absl::StrCat(
          "cuBLASLt's GELU epilogues need the output's last dimension divisible by 8, got ", d.n));
    }
    void* aux = o.gelu_input->raw_data();
    const int64_t ld = d.n;
    RETURN_IF_ERROR(SetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux));
    RETURN_IF_ERROR(SetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, ld));
  }
  return absl::OkStatus();
}

std::string Describe(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& o,
                     const MatmulDims& d) {
  return absl::StrCat(
      d.batch > 1 ? absl::StrCat(d.batch, " products of ") : "", "op(a) [", d.m, ", ", d.k,
      "] x op(b) [", d.k, ", ", d.n, "]", o.transpose_a ? " (a transposed)" : "",
      o.transpose_b ? " (b transposed)" : "", ", a and b ", DTypeName(a.dtype()), ", c ",
      DTypeName(c.dtype()), o.bias != nullptr ? " with bias" : "",
      o.epilogue == MatmulEpilogue::kGelu ? " and GELU" : "",
      o.epilogue == MatmulEpilogue::kGeluGradient ? " and GELU's derivative" : "",
      ", alignments a ", Alignment(a.raw_data()), " B, b ", Alignment(b.raw_data()), " B, c ",
      Alignment(c.raw_data()), " B",
      o.addend != nullptr ? absl::StrCat(", addend ", Alignment(o.addend->raw_data()), " B") : "");
}

}  // namespace

absl::Status Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const MatmulOptions& o,
                    const MatmulDims& d, StreamHandle stream) {
  if (d.k == 0) return EmptyProduct(c, o, d, stream);
  const int device = c.device().index();
  ASSIGN_OR_RETURN(const cublasLtHandle_t handle, Handles().Get(device));
  const cudaDataType_t ab_type = CudaDataType(a.dtype()), c_type = CudaDataType(c.dtype());
  const bool tf32 = d.f32_precision == MatmulPrecision::kTf32;

  ASSIGN_OR_RETURN(const MatmulDesc desc, MakeMatmulDesc(ab_type, tf32));
  const cublasOperation_t b_op = o.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t a_op = o.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  RETURN_IF_ERROR(SetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSA, b_op));
  RETURN_IF_ERROR(SetAttribute(desc.get(), CUBLASLT_MATMUL_DESC_TRANSB, a_op));
  RETURN_IF_ERROR(SetEpilogue(desc.get(), o, d));

  // cuBLASLt's A: b as stored, column-major [n, k] ([k, n] with transpose_b).
  ASSIGN_OR_RETURN(const MatrixLayout b_layout, MakeLayout(ab_type, o.transpose_b ? d.k : d.n,
                                                           o.transpose_b ? d.n : d.k, d.batch));
  // cuBLASLt's B: a as stored, column-major [k, m] ([m, k] with transpose_a).
  ASSIGN_OR_RETURN(const MatrixLayout a_layout, MakeLayout(ab_type, o.transpose_a ? d.m : d.k,
                                                           o.transpose_a ? d.k : d.m, d.batch));
  // cuBLASLt's D: c, column-major [n, m]; its C the addend, laid out as c, or else c itself.
  ASSIGN_OR_RETURN(const MatrixLayout c_layout, MakeLayout(c_type, d.n, d.m, d.batch));
  const void* addend = o.addend != nullptr ? o.addend->raw_data() : c.raw_data();

  ASSIGN_OR_RETURN(const MatmulPreference preference, MakePreference());
  RETURN_IF_ERROR(
      SetAttribute(preference.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, kMaxWorkspaceBytes));
  // A split dot product's parts are added in f32, never in c's type: a bf16 c is rounded once,
  // from the f32 sum (matmul.h; the cpu's emulation rounds there). The default allows every
  // reduction scheme, and a split-K algorithm that adds its parts in bf16 would round twice.
  RETURN_IF_ERROR(SetAttribute(
      preference.get(), CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
      uint32_t{CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE}));
  RETURN_IF_ERROR(SetAttribute(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                               Alignment(b.raw_data())));
  RETURN_IF_ERROR(SetAttribute(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                               Alignment(a.raw_data())));
  RETURN_IF_ERROR(SetAttribute(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                               Alignment(addend)));
  RETURN_IF_ERROR(SetAttribute(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                               Alignment(c.raw_data())));

  const AlgoKey key{
      .device = device,
      .ab_type = ab_type,
      .c_type = c_type,
      .bias_type = o.bias != nullptr ? CudaDataType(o.bias->dtype()) : CUDA_R_32F,
      .bias = o.bias != nullptr,
      .transpose_a = o.transpose_a,
      .transpose_b = o.transpose_b,
      .tf32 = tf32,
      .epilogue = o.epilogue,
      .m = d.m,
      .n = d.n,
      .k = d.k,
      .batch = d.batch,
      .align_a = Alignment(a.raw_data()),
      .align_b = Alignment(b.raw_data()),
      .align_c = Alignment(c.raw_data()),
      .align_addend = Alignment(addend),
      .align_bias = o.bias != nullptr ? Alignment(o.bias->raw_data()) : 0,
      .align_gelu_input = o.gelu_input != nullptr ? Alignment(o.gelu_input->raw_data()) : 0};
  std::optional<cublasLtMatmulHeuristicResult_t> cached = Algos().Find(key);
  if (!cached.has_value()) {
    cublasLtMatmulHeuristicResult_t heuristic = {};
    int found = 0;
    const cublasStatus_t search = cublasLtMatmulAlgoGetHeuristic(
        handle, desc.get(), b_layout.get(), a_layout.get(), c_layout.get(), c_layout.get(),
        preference.get(), /*requestedAlgoCount=*/1, &heuristic, &found);
    if (search == CUBLAS_STATUS_NOT_SUPPORTED || (search == CUBLAS_STATUS_SUCCESS && found == 0)) {
      return absl::UnimplementedError(
          absl::StrCat("cuBLASLt has no algorithm for ", Describe(a, b, c, o, d)));
    }
    RETURN_IF_ERROR(USINE_CUBLAS_STATUS(search));
    if (heuristic.state != CUBLAS_STATUS_SUCCESS) {  // An algorithm that cannot run after all.
      return absl::UnimplementedError(
          absl::StrCat("cuBLASLt's algorithm for ", Describe(a, b, c, o, d),
                       " cannot run: ", cublasLtGetStatusString(heuristic.state)));
    }
    Algos().Insert(key, heuristic);
    cached = heuristic;
  }
  const cublasLtMatmulHeuristicResult_t& heuristic = *cached;

  // The workspace comes from the caching allocator on this stream rather than from one buffer
  // per device, which matmuls running at once on two streams would share.
  ASSIGN_OR_RETURN(CachingAllocator * allocator, CudaCachingAllocator(device));
  ASSIGN_OR_RETURN(void* workspace, allocator->Allocate(heuristic.workspaceSize, stream));
  absl::Status status = USINE_CUBLAS_STATUS(
      cublasLtMatmul(handle, desc.get(), &o.alpha, b.raw_data(), b_layout.get(), a.raw_data(),
                     a_layout.get(), &o.beta, addend, c_layout.get(), c.raw_data(), c_layout.get(),
                     &heuristic.algo, workspace, heuristic.workspaceSize, stream));
  // Freed while the matmul may still run: the allocator hands the block out again only for
  // work on this same stream, which the stream orders after it.
  allocator->Deallocate(workspace);
  return status;
}

}  // namespace usine::kernels_internal::cuda
