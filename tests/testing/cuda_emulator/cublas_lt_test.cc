// The cuBLASLt emulation (shim/cublasLt.h) against naive loops written here from the header's
// contract: every transpose, strided batches, bf16 and f32, TF32 rounding, the bias and GELU
// epilogues with the GELU input's own leading dimension, beta == 0 and in-place products,
// runtime/kernels/cuda/matmul.cc's row-major use, and the refusals.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <cublasLt.h>
#include <cuda_bf16.h>

#include "gtest/gtest.h"

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/emulated_kernel_test.h"

namespace usine::testing::cuda_emulator {
namespace {

constexpr cublasStatus_t kOk = CUBLAS_STATUS_SUCCESS;

// A value in [-2, 2) with a full f32 mantissa, from `seed` and `i`.
float Value(uint32_t seed, int64_t i) {
  uint64_t x = (uint64_t{seed} << 32) + static_cast<uint64_t>(i) + 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  x ^= x >> 31;
  return static_cast<float>(static_cast<double>(x >> 40) / double{1 << 22} - 2.0);
}

float Bf16(float x) { return FloatOfBf16Bits(Bf16BitsNearest(x)); }

// x with an 11-bit significand (TF32's 10 explicit bits), rounded to nearest even.
float Tf32(float x) {
  if (x == 0 || !std::isfinite(x)) return x;
  int exponent = 0;
  const double significand = std::frexp(static_cast<double>(x), &exponent);  // [0.5, 1)
  return static_cast<float>(std::ldexp(std::nearbyint(std::ldexp(significand, 11)), exponent - 11));
}

// A column-major matrix (or strided batch of them) in device memory, f32 or bf16, with the
// f32 values it holds kept on the host.
class Matrix {
 public:
  Matrix(cudaDataType type, int64_t rows, int64_t cols, int64_t ld, int32_t batch = 1,
         int64_t stride = 0)
      : type_(type),
        rows_(rows),
        cols_(cols),
        ld_(ld),
        batch_(batch),
        stride_(stride),
        elements_(static_cast<size_t>((batch - 1) * stride + (cols - 1) * ld + rows)),
        device_(elements_ * (type == CUDA_R_32F ? 4 : 2), "matrix") {}

  // Every element, the gaps between columns and batches included, from Value(seed, index).
  void Fill(uint32_t seed) {
    for (size_t i = 0; i < elements_; ++i) Set(i, Value(seed, static_cast<int64_t>(i)));
  }
  void FillWith(float value) {
    for (size_t i = 0; i < elements_; ++i) Set(i, value);
  }
  void Set(size_t i, float value) {
    if (type_ == CUDA_R_32F) {
      std::memcpy(device_.data() + 4 * i, &value, 4);
    } else {
      const uint16_t bits = Bf16BitsNearest(value);
      std::memcpy(device_.data() + 2 * i, &bits, 2);
    }
  }
  float At(size_t i) const {
    if (type_ == CUDA_R_32F) {
      float value;
      std::memcpy(&value, device_.data() + 4 * i, 4);
      return value;
    }
    uint16_t bits;
    std::memcpy(&bits, device_.data() + 2 * i, 2);
    return FloatOfBf16Bits(bits);
  }
  // Element (r, c) of batch b.
  size_t Index(int64_t b, int64_t r, int64_t c) const {
    return static_cast<size_t>(b * stride_ + c * ld_ + r);
  }
  std::vector<float> Values() const {
    std::vector<float> values(elements_);
    for (size_t i = 0; i < elements_; ++i) values[i] = At(i);
    return values;
  }

  void* data() const { return device_.data(); }
  cudaDataType type() const { return type_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t ld() const { return ld_; }
  int32_t batch() const { return batch_; }
  int64_t stride() const { return stride_; }
  size_t elements() const { return elements_; }

 private:
  cudaDataType type_;
  int64_t rows_, cols_, ld_;
  int32_t batch_;
  int64_t stride_;
  size_t elements_;
  DeviceArray<unsigned char> device_;
};

// A handle, a descriptor, layouts for A, B and C (also D's) and a preference, destroyed with it.
class LtProduct {
 public:
  LtProduct(cublasComputeType_t compute, const Matrix& a, const Matrix& b, const Matrix& c) {
    EXPECT_EQ(cublasLtCreate(&handle_), kOk);
    EXPECT_EQ(cublasLtMatmulDescCreate(&desc_, compute, CUDA_R_32F), kOk);
    a_ = Layout(a);
    b_ = Layout(b);
    c_ = Layout(c);
    EXPECT_EQ(cublasLtMatmulPreferenceCreate(&preference_), kOk);
    // One rounding of a bf16 D, as matmul.cc asks (ReductionSchemes... below has the default).
    EXPECT_EQ(
        Prefer(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
               uint32_t{CUBLASLT_REDUCTION_SCHEME_NONE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE}),
        kOk);
  }
  ~LtProduct() {
    cublasLtMatmulPreferenceDestroy(preference_);
    for (cublasLtMatrixLayout_t layout : {a_, b_, c_}) cublasLtMatrixLayoutDestroy(layout);
    cublasLtMatmulDescDestroy(desc_);
    cublasLtDestroy(handle_);
  }

  template <typename T>
  cublasStatus_t Set(cublasLtMatmulDescAttributes_t attribute, const T& value) {
    return cublasLtMatmulDescSetAttribute(desc_, attribute, &value, sizeof(value));
  }
  template <typename T>
  cublasStatus_t Prefer(cublasLtMatmulPreferenceAttributes_t attribute, const T& value) {
    return cublasLtMatmulPreferenceSetAttribute(preference_, attribute, &value, sizeof(value));
  }
  void Transpose(bool a, bool b) {
    EXPECT_EQ(Set(CUBLASLT_MATMUL_DESC_TRANSA, a ? CUBLAS_OP_T : CUBLAS_OP_N), kOk);
    EXPECT_EQ(Set(CUBLASLT_MATMUL_DESC_TRANSB, b ? CUBLAS_OP_T : CUBLAS_OP_N), kOk);
  }

  cublasStatus_t FindAlgo() {
    found_ = -1;
    return cublasLtMatmulAlgoGetHeuristic(handle_, desc_, a_, b_, c_, c_, preference_, 1, &result_,
                                          &found_);
  }
  // With the algorithm FindAlgo found (calling it first if it has not found one).
  cublasStatus_t Run(const void* a, const void* b, const void* c, void* d, float alpha, float beta,
                     void* workspace = nullptr, size_t workspace_bytes = 0,
                     cudaStream_t stream = nullptr) {
    if (found_ != 1) {
      const cublasStatus_t status = FindAlgo();
      if (status != kOk) return status;
    }
    return cublasLtMatmul(handle_, desc_, &alpha, a, a_, b, b_, &beta, c, c_, d, c_, &result_.algo,
                          workspace, workspace_bytes, stream);
  }

  // With `algo` in place of FindAlgo's (null: cuBLASLt's implicit choice).
  cublasStatus_t RunWith(const cublasLtMatmulAlgo_t* algo, const void* a, const void* b, void* d) {
    const float alpha = 1, beta = 0;
    return cublasLtMatmul(handle_, desc_, &alpha, a, a_, b, b_, &beta, nullptr, c_, d, c_, algo,
                          nullptr, 0, nullptr);
  }

  const cublasLtMatmulHeuristicResult_t& result() const { return result_; }
  int found() const { return found_; }

 private:
  static cublasLtMatrixLayout_t Layout(const Matrix& m) {
    cublasLtMatrixLayout_t layout = nullptr;
    EXPECT_EQ(cublasLtMatrixLayoutCreate(&layout, m.type(), m.rows(), m.cols(), m.ld()), kOk);
    if (m.batch() > 1) {
      const int32_t batch = m.batch();
      const int64_t stride = m.stride();
      EXPECT_EQ(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                                                 sizeof(batch)),
                kOk);
      EXPECT_EQ(cublasLtMatrixLayoutSetAttribute(
                    layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)),
                kOk);
    }
    return layout;
  }

  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulPreference_t preference_ = nullptr;
  cublasLtMatmulHeuristicResult_t result_ = {};
  int found_ = -1;
};

// Element (i, j) of batch `batch` of alpha op(A) op(B) + beta C, computed as the header says:
// products summed in double in order of k, rounded to f32, then alpha and beta in f32.
float Reference(const Matrix& a, bool ta, const std::vector<float>& a_values, const Matrix& b,
                bool tb, const std::vector<float>& b_values, const Matrix& c,
                const std::vector<float>& c_values, int64_t batch, int64_t i, int64_t j,
                float alpha, float beta) {
  const int64_t k = ta ? a.rows() : a.cols();
  double sum = 0;
  for (int64_t p = 0; p < k; ++p) {
    const float x = a_values[ta ? a.Index(batch, p, i) : a.Index(batch, i, p)];
    const float y = b_values[tb ? b.Index(batch, j, p) : b.Index(batch, p, j)];
    sum += static_cast<double>(x) * static_cast<double>(y);
  }
  float r = alpha * static_cast<float>(sum);
  if (beta != 0) r = r + beta * c_values[c.Index(batch, i, j)];
  return r;
}

double GeluReference(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

// Expects the bits of `actual` to be those of `expected` (NaNs compared as NaNs).
void ExpectSame(float actual, float expected, const std::string& where, int* failures) {
  const bool same = std::bit_cast<uint32_t>(actual) == std::bit_cast<uint32_t>(expected) ||
                    (std::isnan(actual) && std::isnan(expected));
  if (!same && ++*failures <= 5) {
    ADD_FAILURE() << where << ": got " << actual << ", expected " << expected;
  }
}

std::string Where(int64_t batch, int64_t i, int64_t j) {
  return "batch " + std::to_string(batch) + " (" + std::to_string(i) + ", " + std::to_string(j) +
         ")";
}

// Runs D = alpha op(A) op(B) + beta C and checks every element of D against Reference, and that
// D's gaps (rows past m, elements between batches) kept their old values.
void CheckProduct(cublasComputeType_t compute, cudaDataType ab_type, cudaDataType cd_type, bool ta,
                  bool tb, int64_t m, int64_t n, int64_t k, int32_t batch, int64_t a_stride_extra,
                  bool broadcast_b) {
  SCOPED_TRACE(std::string("transpose a ") + (ta ? "T" : "N") + ", b " + (tb ? "T" : "N"));
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k;
  const int64_t b_cols = tb ? k : n;
  Matrix a(ab_type, a_rows, a_cols, a_rows + 3, batch, (a_rows + 3) * a_cols + a_stride_extra);
  Matrix b(ab_type, b_rows, b_cols, b_rows + 1, batch, broadcast_b ? 0 : (b_rows + 1) * b_cols);
  Matrix c(cd_type, m, n, m + 5, batch, (m + 5) * n + 2);
  Matrix d(cd_type, m, n, m + 5, batch, (m + 5) * n + 2);
  a.Fill(1);
  b.Fill(2);
  c.Fill(3);
  d.Fill(4);
  std::vector<float> a_values = a.Values(), b_values = b.Values();
  if (compute == CUBLAS_COMPUTE_32F_FAST_TF32) {
    for (float& x : a_values) x = Tf32(x);
    for (float& x : b_values) x = Tf32(x);
  }
  const std::vector<float> c_values = c.Values(), d_before = d.Values();
  LtProduct product(compute, a, b, c);
  product.Transpose(ta, tb);
  const float alpha = 0.75f, beta = -1.25f;
  ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), d.data(), alpha, beta), kOk);
  EXPECT_EQ(product.found(), 1);

  std::vector<bool> written(d.elements(), false);
  int failures = 0;
  for (int64_t t = 0; t < batch; ++t) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t i = 0; i < m; ++i) {
        float expected =
            Reference(a, ta, a_values, b, tb, b_values, c, c_values, t, i, j, alpha, beta);
        if (cd_type == CUDA_R_16BF) expected = Bf16(expected);
        ExpectSame(d.At(d.Index(t, i, j)), expected, Where(t, i, j), &failures);
        written[d.Index(t, i, j)] = true;
      }
    }
  }
  for (size_t i = 0; i < d.elements(); ++i) {
    if (!written[i]) ExpectSame(d.At(i), d_before[i], "gap " + std::to_string(i), &failures);
  }
  EXPECT_EQ(failures, 0);
}

class CublasLt : public EmulatedKernelTest<> {};

TEST_F(CublasLt, F32MatchesTheReferenceForEveryTranspose) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CheckProduct(CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_32F, ta, tb, 37, 70, 45, 1, 0, false);
    }
  }
}

TEST_F(CublasLt, Bf16InputsWithBf16OrF32Outputs) {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CheckProduct(CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, ta, tb, 33, 65, 40, 1, 0, false);
      CheckProduct(CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_32F, ta, tb, 33, 65, 40, 1, 0, false);
    }
  }
}

// Under the default REDUCTION_SCHEME_MASK, which lets cuBLASLt add the parts of a split dot
// product in D's type, a bf16 D is rounded twice, as the header says: each half of k rounded to
// bf16, then their sum. An f32 D is not affected.
TEST_F(CublasLt, DefaultReductionSchemesMayAddSplitKPartsInBf16) {
  constexpr int64_t m = 33, n = 65;
  for (const auto& [cd_type, k] :
       {std::pair{CUDA_R_16BF, int64_t{40}}, std::pair{CUDA_R_16BF, int64_t{41}},
        std::pair{CUDA_R_32F, int64_t{40}}}) {
    SCOPED_TRACE(std::string(cd_type == CUDA_R_16BF ? "bf16 D" : "f32 D") + ", k " +
                 std::to_string(k));
    Matrix a(CUDA_R_16BF, m, k, m, 1, m * k), b(CUDA_R_16BF, k, n, k, 1, k * n);
    Matrix c(cd_type, m, n, m, 1, m * n), d(cd_type, m, n, m, 1, m * n);
    a.Fill(1);
    b.Fill(2);
    c.Fill(3);
    const std::vector<float> av = a.Values(), bv = b.Values(), cv = c.Values();
    LtProduct product(CUBLAS_COMPUTE_32F, a, b, c);
    ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                             uint32_t{CUBLASLT_REDUCTION_SCHEME_MASK}),
              kOk);
    const float alpha = 0.75f, beta = -1.25f;
    ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), d.data(), alpha, beta), kOk);
    int failures = 0, twice_differs = 0;
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t i = 0; i < m; ++i) {
        double half[2] = {0, 0};
        for (int64_t p = 0; p < k; ++p) {
          half[p < k / 2 ? 0 : 1] +=
              static_cast<double>(av[a.Index(0, i, p)]) * static_cast<double>(bv[b.Index(0, p, j)]);
        }
        const float once = Bf16(Reference(a, false, av, b, false, bv, c, cv, 0, i, j, alpha, beta));
        const float split = Bf16(Bf16(Bf16(alpha * static_cast<float>(half[0])) +
                                      Bf16(alpha * static_cast<float>(half[1]))) +
                                 beta * cv[c.Index(0, i, j)]);
        if (cd_type == CUDA_R_32F) {
          ExpectSame(d.At(d.Index(0, i, j)),
                     Reference(a, false, av, b, false, bv, c, cv, 0, i, j, alpha, beta),
                     Where(0, i, j), &failures);
          continue;
        }
        ExpectSame(d.At(d.Index(0, i, j)), split, Where(0, i, j), &failures);
        twice_differs += split != once;
      }
    }
    EXPECT_EQ(failures, 0);
    if (cd_type == CUDA_R_16BF) {
      EXPECT_GT(twice_differs, 0) << "the two roundings never showed";
    }
  }
}

TEST_F(CublasLt, StridedBatchesWithGapsAndABroadcastB) {
  CheckProduct(CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_32F, false, true, 20, 24, 18, 3, 7, true);
  CheckProduct(CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16BF, true, false, 17, 9, 30, 4, 0, false);
}

TEST_F(CublasLt, LargerProductAcrossManyTiles) {
  CheckProduct(CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_32F, false, true, 130, 200, 96, 1, 0, false);
}

// 1 + 2^-11 + 2^-13 rounds up to 1 + 2^-10 in TF32; 1 + 2^-11 is a tie, to even: 1; so is
// 1 + 3 * 2^-11, which goes up to 1 + 2^-9. Under CUBLAS_COMPUTE_32F they stay as they are.
TEST_F(CublasLt, FastTf32RoundsAAndBToNearestEven) {
  const float inputs[3] = {1 + 0x1p-11f + 0x1p-13f, 1 + 0x1p-11f, 1 + 3 * 0x1p-11f};
  const float tf32[3] = {1 + 0x1p-10f, 1, 1 + 0x1p-9f};
  Matrix a(CUDA_R_32F, 3, 1, 3), b(CUDA_R_32F, 1, 1, 1), d(CUDA_R_32F, 3, 1, 3);
  for (int i = 0; i < 3; ++i) a.Set(i, inputs[i]);
  b.Set(0, 1 + 0x1p-12f);  // TF32: 1 (below half an ulp).
  for (cublasComputeType_t compute : {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32}) {
    LtProduct product(compute, a, b, d);
    ASSERT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0), kOk);
    for (int i = 0; i < 3; ++i) {
      const double x = compute == CUBLAS_COMPUTE_32F ? double{inputs[i]} * (1 + 0x1p-12) : tf32[i];
      EXPECT_EQ(d.At(i), static_cast<float>(x)) << "compute " << compute << ", row " << i;
    }
  }
  // And across a product of f32 values: TF32 results differ from the f32 ones.
  CheckProduct(CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, CUDA_R_32F, false, false, 8, 8, 8, 1, 0,
               false);
}

// TF32's rounding shows: on full f32 mantissas most results differ from CUBLAS_COMPUTE_32F's.
TEST_F(CublasLt, FastTf32DiffersFromF32OnFullMantissas) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d32(CUDA_R_32F, 8, 8, 8);
  Matrix dtf32(CUDA_R_32F, 8, 8, 8);
  a.Fill(5);
  b.Fill(6);
  LtProduct f32(CUBLAS_COMPUTE_32F, a, b, d32), tf32(CUBLAS_COMPUTE_32F_FAST_TF32, a, b, dtf32);
  ASSERT_EQ(f32.Run(a.data(), b.data(), nullptr, d32.data(), 1, 0), kOk);
  ASSERT_EQ(tf32.Run(a.data(), b.data(), nullptr, dtf32.data(), 1, 0), kOk);
  int differ = 0;
  for (size_t i = 0; i < 64; ++i) differ += d32.At(i) != dtf32.At(i);
  EXPECT_GT(differ, 32);
}

// A pointer into `buffer` aligned to 256 bytes, with `bytes` after it: host memory that only
// its being host memory makes wrong.
void* AlignedHost(std::vector<unsigned char>& buffer, size_t bytes) {
  buffer.resize(bytes + 256);
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (256 - address % 256) % 256;
}

struct EpilogueCase {
  cublasLtEpilogue_t epilogue;
  bool bias, gelu, aux;
  const char* name;
};

constexpr EpilogueCase kEpilogues[] = {
    {CUBLASLT_EPILOGUE_BIAS, true, false, false, "BIAS"},
    {CUBLASLT_EPILOGUE_GELU, false, true, false, "GELU"},
    {CUBLASLT_EPILOGUE_GELU_BIAS, true, true, false, "GELU_BIAS"},
    {CUBLASLT_EPILOGUE_GELU_AUX, false, true, true, "GELU_AUX"},
    {CUBLASLT_EPILOGUE_GELU_AUX_BIAS, true, true, true, "GELU_AUX_BIAS"},
};

// The epilogue's D, and its GELU input at aux (leading dimension 40, more than D's 24 rows),
// against r = alpha op(A) op(B) + beta C + bias: D = gelu(r) within a few f32 rounding steps of
// a double GELU (one bf16 step for bf16), aux = r exactly, aux's other elements untouched.
void CheckEpilogue(cudaDataType ab_type, cudaDataType cd_type, const EpilogueCase& e) {
  SCOPED_TRACE(e.name);
  const int64_t m = 24, n = 16, k = 12, aux_ld = 40;
  constexpr float kUntouched = -77;
  Matrix a(ab_type, m, k, m), b(ab_type, n, k, n), c(cd_type, m, n, m), d(cd_type, m, n, m);
  Matrix bias(cd_type, m, 1, m), aux(cd_type, m, n, aux_ld);
  a.Fill(7);
  b.Fill(8);
  c.Fill(9);
  bias.Fill(10);
  d.FillWith(std::numeric_limits<float>::quiet_NaN());
  aux.FillWith(kUntouched);
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, c);
  product.Transpose(false, true);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, e.epilogue), kOk);
  if (e.bias) {
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias.data())),
              kOk);
  }
  if (e.aux) {
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux.data()), kOk);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld), kOk);
  }
  const float alpha = 0.5f, beta = 0.25f;
  ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), d.data(), alpha, beta), kOk);

  const std::vector<float> a_values = a.Values(), b_values = b.Values(), c_values = c.Values();
  const float step = cd_type == CUDA_R_16BF ? 0x1p-7f : 0x1p-20f;
  int failures = 0;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < aux_ld; ++i) {
      if (i >= m) {  // The gap between columns (the last column has none).
        if (j + 1 < n) {
          ExpectSame(aux.At(aux.Index(0, i, j)), kUntouched, "aux gap " + Where(0, i, j),
                     &failures);
        }
        continue;
      }
      float r = Reference(a, false, a_values, b, true, b_values, c, c_values, 0, i, j, alpha, beta);
      if (e.bias) r = r + bias.At(i);
      const float stored = cd_type == CUDA_R_16BF ? Bf16(r) : r;
      ExpectSame(aux.At(aux.Index(0, i, j)), e.aux ? stored : kUntouched, "aux " + Where(0, i, j),
                 &failures);
      const float got = d.At(d.Index(0, i, j));
      if (!e.gelu) {
        ExpectSame(got, stored, "D " + Where(0, i, j), &failures);
        continue;
      }
      const double expected = GeluReference(r);
      if (!(std::abs(got - expected) <= step * std::abs(expected) + 1e-6) && ++failures <= 5) {
        ADD_FAILURE() << "D " << Where(0, i, j) << ": got " << got << ", expected gelu(" << r
                      << ") = " << expected;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST_F(CublasLt, BiasAndGeluEpiloguesWithTheGeluInputAtItsOwnLeadingDimension) {
  for (const EpilogueCase& e : kEpilogues) {
    CheckEpilogue(CUDA_R_32F, CUDA_R_32F, e);
    CheckEpilogue(CUDA_R_16BF, CUDA_R_16BF, e);
    CheckEpilogue(CUDA_R_16BF, CUDA_R_32F, e);
  }
}

// DGELU reads the GELU input at aux (leading dimension 40, more than D's 24 rows) and writes
// D = r gelu'(aux), r = alpha op(A) op(B) + beta C, within a few rounding steps of |r| of a
// double derivative (one bf16 step for bf16); aux, gaps included, is as it was.
TEST_F(CublasLt, DgeluEpilogueMultipliesByTheGeluDerivativeAtAux) {
  for (const cudaDataType type : {CUDA_R_32F, CUDA_R_16BF}) {
    SCOPED_TRACE(type == CUDA_R_32F ? "f32" : "bf16");
    const int64_t m = 24, n = 16, k = 12, aux_ld = 40;
    Matrix a(type, m, k, m), b(type, n, k, n), c(type, m, n, m), d(type, m, n, m);
    Matrix aux(type, m, n, aux_ld);
    a.Fill(11);
    b.Fill(12);
    c.Fill(13);
    aux.Fill(14);
    d.FillWith(std::numeric_limits<float>::quiet_NaN());
    const std::vector<float> aux_before = aux.Values();
    LtProduct product(CUBLAS_COMPUTE_32F, a, b, c);
    product.Transpose(false, true);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_DGELU), kOk);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux.data()), kOk);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld), kOk);
    const float alpha = 0.5f, beta = 0.25f;
    ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), d.data(), alpha, beta), kOk);

    const std::vector<float> a_values = a.Values(), b_values = b.Values(), c_values = c.Values();
    const float step = type == CUDA_R_16BF ? 0x1p-7f : 0x1p-20f;
    int failures = 0;
    for (size_t i = 0; i < aux_before.size(); ++i) {
      ExpectSame(aux.At(i), aux_before[i], "aux element " + std::to_string(i), &failures);
    }
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t i = 0; i < m; ++i) {
        const float r =
            Reference(a, false, a_values, b, true, b_values, c, c_values, 0, i, j, alpha, beta);
        const double x = aux.At(aux.Index(0, i, j));
        const double u = std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
        const double slope =
            0.5 * (1 + std::tanh(u)) + 0.5 * x * (1 - std::tanh(u) * std::tanh(u)) *
                                           std::sqrt(2 / M_PI) * (1 + 3 * 0.044715 * x * x);
        const double expected = r * slope;
        const float got = d.At(d.Index(0, i, j));
        // The derivative cancels near x = -0.75: its error scales with |r|, not the result.
        if (!(std::abs(got - expected) <= step * (std::abs(expected) + std::abs(r))) &&
            ++failures <= 5) {
          ADD_FAILURE() << "D " << Where(0, i, j) << ": got " << got << ", expected " << r
                        << " gelu'(" << x << ") = " << expected;
        }
      }
    }
    EXPECT_EQ(failures, 0);
  }
}

// Batch t's bias at + t * BIAS_BATCH_STRIDE and GELU input at + t * EPILOGUE_AUX_BATCH_STRIDE;
// with the stride's default of 0 the batches' GELU inputs would overlap, which is refused.
TEST_F(CublasLt, BatchedEpilogueUsesTheBiasAndAuxBatchStrides) {
  const int64_t m = 8, n = 4, k = 5;
  Matrix a(CUDA_R_32F, m, k, m, 2, m * k), b(CUDA_R_32F, k, n, k, 2, k * n);
  Matrix c(CUDA_R_32F, m, n, m, 2, m * n), bias(CUDA_R_32F, m, 1, m, 2, m);
  Matrix aux(CUDA_R_32F, m, n, m, 2, m * n);
  a.Fill(26);
  b.Fill(27);
  c.Fill(28);
  bias.Fill(29);
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, c);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_GELU_AUX_BIAS), kOk);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias.data())),
            kOk);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, m), kOk);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux.data()), kOk);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, m), kOk);
  EXPECT_EQ(product.FindAlgo(), CUBLAS_STATUS_INVALID_VALUE);  // Aux batch stride 0.
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, m * n), kOk);
  const std::vector<float> a_values = a.Values(), b_values = b.Values(), c_values = c.Values();
  ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), c.data(), 1, 1), kOk);
  int failures = 0;
  for (int64_t t = 0; t < 2; ++t) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t i = 0; i < m; ++i) {
        const float r =
            Reference(a, false, a_values, b, false, b_values, c, c_values, t, i, j, 1, 1) +
            bias.At(bias.Index(t, i, 0));
        ExpectSame(aux.At(aux.Index(t, i, j)), r, "aux " + Where(t, i, j), &failures);
        const double expected = GeluReference(r);
        const float got = c.At(c.Index(t, i, j));
        if (!(std::abs(got - expected) <= 0x1p-20 * std::abs(expected) + 1e-6) && ++failures <= 5) {
          ADD_FAILURE() << "D " << Where(t, i, j) << ": got " << got << ", expected " << expected;
        }
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST_F(CublasLt, BetaZeroNeverReadsC) {
  Matrix a(CUDA_R_32F, 9, 7, 9), b(CUDA_R_32F, 7, 11, 7), c(CUDA_R_32F, 9, 11, 9);
  Matrix d(CUDA_R_32F, 9, 11, 9);
  a.Fill(11);
  b.Fill(12);
  c.FillWith(std::numeric_limits<float>::quiet_NaN());
  d.FillWith(std::numeric_limits<float>::quiet_NaN());
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, c);
  ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), d.data(), 1.5f, 0), kOk);
  const std::vector<float> a_values = a.Values(), b_values = b.Values();
  int failures = 0;
  for (int64_t j = 0; j < 11; ++j) {
    for (int64_t i = 0; i < 9; ++i) {
      const float expected =
          Reference(a, false, a_values, b, false, b_values, c, {}, 0, i, j, 1.5f, 0);
      ASSERT_FALSE(std::isnan(expected));
      ExpectSame(d.At(d.Index(0, i, j)), expected, Where(0, i, j), &failures);
    }
  }
  // In place: D is C, full of NaNs.
  ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), c.data(), 1.5f, 0), kOk);
  for (size_t i = 0; i < c.elements(); ++i) ExpectSame(c.At(i), d.At(i), "in place", &failures);
  EXPECT_EQ(failures, 0);
}

TEST_F(CublasLt, InPlaceWithBetaOneReadsEachElementOfCBeforeWritingIt) {
  Matrix a(CUDA_R_16BF, 20, 30, 20), b(CUDA_R_16BF, 30, 70, 30), c(CUDA_R_32F, 20, 70, 20);
  a.Fill(13);
  b.Fill(14);
  c.Fill(15);
  const std::vector<float> a_values = a.Values(), b_values = b.Values(), before = c.Values();
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, c);
  ASSERT_EQ(product.Run(a.data(), b.data(), c.data(), c.data(), 1, 1), kOk);
  int failures = 0;
  for (int64_t j = 0; j < 70; ++j) {
    for (int64_t i = 0; i < 20; ++i) {
      ExpectSame(c.At(c.Index(0, i, j)),
                 Reference(a, false, a_values, b, false, b_values, c, before, 0, i, j, 1, 1),
                 Where(0, i, j), &failures);
    }
  }
  EXPECT_EQ(failures, 0);
}

uint32_t Alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t alignment = 256;
  while (address % alignment != 0) alignment /= 2;
  return alignment;
}

// runtime/kernels/cuda/matmul.cc's use, as its header comment describes it: the row-major
// c [m, n] = op(a) op(b) + bias (on every row) is the column-major c^T = op(b)^T op(a)^T, so
// cuBLASLt's A is b as stored (column-major [n, k], [k, n] with transpose_b), its B is a as stored
// ([k, m], [m, k] with transpose_a), each with its own transpose flag, and C = D is c as
// column-major [n, m] with a bias of n elements; the preference and workspace as matmul.cc sets
// them. Checked against a row-major reference.
TEST_F(CublasLt, RowMajorProductTheWayMatmulCcAsksForIt) {
  const int64_t m = 24, n = 40, k = 32;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string("transpose_a ") + (ta ? "1" : "0") + ", transpose_b " +
                   (tb ? "1" : "0"));
      Matrix a(CUDA_R_16BF, ta ? m : k, ta ? k : m, ta ? m : k);  // Row-major [m, k] or [k, m].
      Matrix b(CUDA_R_16BF, tb ? k : n, tb ? n : k, tb ? k : n);  // Row-major [k, n] or [n, k].
      Matrix c(CUDA_R_32F, n, m, n), bias(CUDA_R_32F, n, 1, n);
      a.Fill(16);
      b.Fill(17);
      c.Fill(18);
      bias.Fill(19);
      const std::vector<float> a_rm = a.Values(), b_rm = b.Values(), c_rm = c.Values();
      LtProduct product(CUBLAS_COMPUTE_32F, /*A=*/b, /*B=*/a, c);
      product.Transpose(/*a=*/tb, /*b=*/ta);
      ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS), kOk);
      ASSERT_EQ(
          product.Set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias.data())),
          kOk);
      ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F), kOk);
      ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{32} << 20), kOk);
      ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, Alignment(b.data())),
                kOk);
      ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, Alignment(a.data())),
                kOk);
      ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, Alignment(c.data())),
                kOk);
      ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, Alignment(c.data())),
                kOk);
      ASSERT_EQ(product.FindAlgo(), kOk);
      ASSERT_EQ(product.found(), 1);
      DeviceArray<unsigned char> workspace(product.result().workspaceSize, "workspace");
      const float alpha = 1.5f, beta = 0.5f;
      ASSERT_EQ(product.Run(b.data(), a.data(), c.data(), c.data(), alpha, beta, workspace.data(),
                            product.result().workspaceSize),
                kOk);
      int failures = 0;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double sum = 0;
          for (int64_t p = 0; p < k; ++p) {
            const float x = ta ? a_rm[p * m + i] : a_rm[i * k + p];
            const float y = tb ? b_rm[j * k + p] : b_rm[p * n + j];
            sum += static_cast<double>(x) * y;
          }
          const float expected =
              alpha * static_cast<float>(sum) + beta * c_rm[i * n + j] + bias.At(j);
          ExpectSame(c.At(i * n + j), expected,
                     "row-major c(" + std::to_string(i) + ", " + std::to_string(j) + ")",
                     &failures);
        }
      }
      EXPECT_EQ(failures, 0);
    }
  }
}

TEST_F(CublasLt, RefusesHostMemoryAndRangesPastAnArraysEnd) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  a.Fill(20);
  b.Fill(21);
  std::vector<unsigned char> host_buffer;
  void* host = AlignedHost(host_buffer, 64 * sizeof(float));
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  EXPECT_EQ(product.Run(host, b.data(), nullptr, d.data(), 1, 0), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), host, nullptr, d.data(), 1, 0), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, host, 1, 0), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), host, d.data(), 1, 1), CUBLAS_STATUS_INVALID_VALUE);
  DeviceArray<float> short_d(63, "one element short");
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, short_d.data(), 1, 0),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, nullptr, 1, 0), CUBLAS_STATUS_INVALID_VALUE);
  // The same product with device memory goes through.
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0), kOk);
  // A bias in host memory.
  std::vector<unsigned char> bias_buffer;
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS), kOk);
  ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                        static_cast<const void*>(AlignedHost(bias_buffer, 8 * sizeof(float)))),
            kOk);
  EXPECT_EQ(product.FindAlgo(), kOk);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0), CUBLAS_STATUS_INVALID_VALUE);
}

TEST_F(CublasLt, RefusesPointersLessAlignedThanTheAlgorithmWasChosenFor) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  Matrix bias(CUDA_R_32F, 9, 1, 9);
  DeviceArray<float> a_storage(65, "a, one element in");
  float* const a_at_4 = a_storage.data() + 1;
  {
    LtProduct promised_256(CUBLAS_COMPUTE_32F, a, b, d);  // The default promise.
    EXPECT_EQ(promised_256.Run(a_at_4, b.data(), nullptr, d.data(), 1, 0),
              CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(promised_256.Run(a.data(), b.data(), nullptr, d.data(), 1, 0), kOk);
  }
  {
    LtProduct promised_4(CUBLAS_COMPUTE_32F, a, b, d);
    ASSERT_EQ(promised_4.Prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t{4}), kOk);
    EXPECT_EQ(promised_4.Run(a_at_4, b.data(), nullptr, d.data(), 1, 0), kOk);
  }
  {
    LtProduct promised_2(CUBLAS_COMPUTE_32F, a, b, d);  // Less than an f32 element: no algorithm.
    ASSERT_EQ(promised_2.Prefer(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t{2}), kOk);
    EXPECT_EQ(promised_2.FindAlgo(), CUBLAS_STATUS_NOT_SUPPORTED);
    EXPECT_EQ(promised_2.found(), 0);
  }
  {
    // The heuristic reads the bias pointer's alignment; its algorithm refuses a less aligned one.
    LtProduct with_bias(CUBLAS_COMPUTE_32F, a, b, d);
    ASSERT_EQ(with_bias.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS), kOk);
    ASSERT_EQ(
        with_bias.Set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias.data())),
        kOk);
    ASSERT_EQ(with_bias.FindAlgo(), kOk);
    const void* bias_at_4 = static_cast<const float*>(bias.data()) + 1;
    ASSERT_EQ(with_bias.Set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_at_4), kOk);
    EXPECT_EQ(with_bias.Run(a.data(), b.data(), nullptr, d.data(), 1, 0),
              CUBLAS_STATUS_INVALID_VALUE);
  }
}

TEST_F(CublasLt, RefusesBadLeadingDimensionsAndShapes) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  Matrix a_ld_7(CUDA_R_32F, 8, 8, 7), b_9_rows(CUDA_R_32F, 9, 8, 9);
  {
    LtProduct product(CUBLAS_COMPUTE_32F, a_ld_7, b, d);
    EXPECT_EQ(product.FindAlgo(), CUBLAS_STATUS_INVALID_VALUE);
    EXPECT_EQ(product.found(), 0);
  }
  {
    LtProduct product(CUBLAS_COMPUTE_32F, a, b_9_rows, d);  // k = 8 against 9.
    EXPECT_EQ(product.FindAlgo(), CUBLAS_STATUS_INVALID_VALUE);
  }
  Matrix aux(CUDA_R_32F, 8, 8, 16);
  for (int64_t aux_ld : {int64_t{0}, int64_t{4}, int64_t{12}, int64_t{16}}) {
    LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_GELU_AUX), kOk);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux.data()), kOk);
    ASSERT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, aux_ld), kOk);
    EXPECT_EQ(product.FindAlgo(), aux_ld == 16 ? kOk : CUBLAS_STATUS_INVALID_VALUE)
        << "aux ld " << aux_ld;
  }
  // An attribute of the wrong size.
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  EXPECT_EQ(product.Set(CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, int32_t{16}),
            CUBLAS_STATUS_INVALID_VALUE);
}

TEST_F(CublasLt, RefusesWhatItsTableOfTypesDoesNotList) {
  struct Case {
    cublasComputeType_t compute;
    cudaDataType ab, cd;
  };
  for (const Case& t : {Case{CUBLAS_COMPUTE_32F, CUDA_R_16F, CUDA_R_16F},
                        Case{CUBLAS_COMPUTE_32F, CUDA_R_16F, CUDA_R_32F},
                        Case{CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF},
                        Case{CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_16BF, CUDA_R_16BF},
                        Case{CUBLAS_COMPUTE_32F_FAST_TF32, CUDA_R_32F, CUDA_R_16BF},
                        Case{CUBLAS_COMPUTE_32F_FAST_16BF, CUDA_R_32F, CUDA_R_32F},
                        Case{CUBLAS_COMPUTE_64F, CUDA_R_32F, CUDA_R_32F}}) {
    Matrix a(t.ab, 8, 8, 8), b(t.ab, 8, 8, 8), d(t.cd, 8, 8, 8);
    LtProduct product(t.compute, a, b, d);
    EXPECT_EQ(product.FindAlgo(), CUBLAS_STATUS_NOT_SUPPORTED)
        << "compute " << t.compute << ", A/B " << t.ab << ", C/D " << t.cd;
    EXPECT_EQ(product.found(), 0);
  }
  Matrix a(CUDA_R_16BF, 8, 8, 8), b(CUDA_R_16BF, 8, 8, 8), d(CUDA_R_16BF, 8, 8, 8);
  LtProduct f32_bias(CUBLAS_COMPUTE_32F, a, b, d);  // A bf16 D takes a bf16 bias.
  ASSERT_EQ(f32_bias.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS), kOk);
  ASSERT_EQ(f32_bias.Set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_32F), kOk);
  EXPECT_EQ(f32_bias.FindAlgo(), CUBLAS_STATUS_NOT_SUPPORTED);
  LtProduct relu(CUBLAS_COMPUTE_32F, a, b, d);
  ASSERT_EQ(relu.Set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_RELU), kOk);
  EXPECT_EQ(relu.FindAlgo(), CUBLAS_STATUS_NOT_SUPPORTED);
}

TEST_F(CublasLt, WorkspaceIsCheckedAndClobbered) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  a.Fill(22);
  b.Fill(23);
  {
    LtProduct no_workspace(CUBLAS_COMPUTE_32F, a, b, d);  // The default: none allowed.
    ASSERT_EQ(no_workspace.FindAlgo(), kOk);
    EXPECT_EQ(no_workspace.result().workspaceSize, 0u);
    LtProduct small(CUBLAS_COMPUTE_32F, a, b, d);
    ASSERT_EQ(small.Prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{4096}), kOk);
    ASSERT_EQ(small.FindAlgo(), kOk);
    EXPECT_EQ(small.result().workspaceSize, 4096u);
  }
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{32} << 20), kOk);
  ASSERT_EQ(product.FindAlgo(), kOk);
  const size_t bytes = product.result().workspaceSize;
  ASSERT_EQ(bytes, size_t{1} << 20);
  DeviceArray<unsigned char> workspace(bytes + 256, "workspace");
  std::memset(workspace.data(), 0, bytes + 256);
  std::vector<unsigned char> host_buffer;
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, workspace.data(), bytes - 1),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, nullptr, 0),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0,
                        AlignedHost(host_buffer, bytes), bytes),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, workspace.data() + 128, bytes),
            CUBLAS_STATUS_INVALID_VALUE);  // cuBLASLt wants 256-byte alignment.
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, workspace.data() + 512, bytes),
            CUBLAS_STATUS_INVALID_VALUE);  // Runs past the array's end.
  for (size_t i = 0; i < bytes + 256; ++i) ASSERT_EQ(workspace[i], 0) << i;  // Untouched.
  ASSERT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, workspace.data(), bytes), kOk);
  for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(workspace[i], 0xFF) << i;
}

// cuBLASLt writes the part of the workspace its algorithm uses: an operand there is refused,
// one just past it is not.
TEST_F(CublasLt, RefusesAWorkspaceOverlappingAnOperand) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  a.Fill(26);
  b.Fill(27);
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  ASSERT_EQ(product.Prefer(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t{4096}), kOk);
  ASSERT_EQ(product.FindAlgo(), kOk);
  const size_t bytes = product.result().workspaceSize;
  ASSERT_EQ(bytes, 4096u);
  const size_t a_bytes = 64 * sizeof(float);
  DeviceArray<unsigned char> shared(2 * bytes, "workspace and A");
  unsigned char* const inside = shared.data() + bytes - 256;  // A's first 256 bytes in it.
  std::memcpy(inside, a.data(), a_bytes);
  EXPECT_EQ(product.Run(inside, b.data(), nullptr, d.data(), 1, 0, shared.data(), bytes),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, inside, 1, 0, shared.data(), bytes),
            CUBLAS_STATUS_INVALID_VALUE);  // D in it.
  unsigned char* const past = shared.data() + bytes;
  std::memcpy(past, a.data(), a_bytes);
  EXPECT_EQ(product.Run(past, b.data(), nullptr, d.data(), 1, 0, shared.data(), bytes), kOk);
}

TEST_F(CublasLt, RefusesADestroyedStream) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  a.Fill(28);
  b.Fill(29);
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, nullptr, 0, stream), kOk);
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, nullptr, 0, stream),
            CUBLAS_STATUS_INVALID_VALUE);
}

// The product's operands are its accesses for the checks of the order between streams
// (internal/stream_order.h): A written on another stream is read safely after an event; B
// written there while the product may still read it is a race. (Not a CublasLt case: those
// fail on any error the emulator reports.)
TEST(CublasLtStreamOrder, AnOperandWrittenOnAnotherStreamNeedsAnEventBetween) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  a.Fill(30);
  b.Fill(31);
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  cudaStream_t writer = nullptr, reader = nullptr;
  cudaEvent_t written = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&writer, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&reader, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  const int errors = ErrorCount();
  ASSERT_EQ(cudaMemsetAsync(a.data(), 0, 64 * sizeof(float), writer), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(written, writer), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(reader, written, 0), cudaSuccess);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, d.data(), 1, 0, nullptr, 0, reader), kOk);
  EXPECT_EQ(ErrorCount(), errors);
  ASSERT_EQ(cudaMemsetAsync(b.data(), 0, 64 * sizeof(float), writer), cudaSuccess);
  EXPECT_EQ(ErrorCount(), errors + 1);
  EXPECT_NE(LastErrorMessage().find("which cublasLtMatmul B on stream #"), std::string::npos)
      << LastErrorMessage();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaEventDestroy(written), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(writer), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(reader), cudaSuccess);
}

TEST_F(CublasLt, RefusesAnOutputOverlappingAnInputAndAForeignAlgo) {
  Matrix a(CUDA_R_32F, 8, 8, 8), b(CUDA_R_32F, 8, 8, 8), d(CUDA_R_32F, 8, 8, 8);
  a.Fill(24);
  b.Fill(25);
  LtProduct product(CUBLAS_COMPUTE_32F, a, b, d);
  EXPECT_EQ(product.Run(a.data(), b.data(), nullptr, a.data(), 1, 0), CUBLAS_STATUS_INVALID_VALUE);
  const cublasLtMatmulAlgo_t zeros = {};
  EXPECT_EQ(product.RunWith(&zeros, a.data(), b.data(), d.data()), CUBLAS_STATUS_INVALID_VALUE);
  // A null algo: cuBLASLt's implicit query, with default preferences (256-byte pointers).
  EXPECT_EQ(product.RunWith(nullptr, a.data(), b.data(), d.data()), kOk);
  DeviceArray<float> a_storage(65, "a, one element in");
  std::memcpy(a_storage.data() + 1, a.data(), 64 * sizeof(float));
  EXPECT_EQ(product.RunWith(nullptr, a_storage.data() + 1, b.data(), d.data()),
            CUBLAS_STATUS_INVALID_VALUE);
}

TEST_F(CublasLt, ProductsFromSeveralThreadsAtOnce) {
  constexpr int kThreads = 4;
  std::vector<std::unique_ptr<Matrix>> as, bs, ds;
  for (int t = 0; t < kThreads; ++t) {
    as.push_back(std::make_unique<Matrix>(CUDA_R_16BF, 40, 50, 40));
    bs.push_back(std::make_unique<Matrix>(CUDA_R_16BF, 50, 60, 50));
    ds.push_back(std::make_unique<Matrix>(CUDA_R_32F, 40, 60, 40));
    as[t]->Fill(30 + t);
    bs[t]->Fill(40 + t);
  }
  std::vector<cublasStatus_t> statuses(kThreads, CUBLAS_STATUS_INTERNAL_ERROR);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      LtProduct product(CUBLAS_COMPUTE_32F, *as[t], *bs[t], *ds[t]);
      for (int repeat = 0; repeat < 5; ++repeat) {
        statuses[t] = product.Run(as[t]->data(), bs[t]->data(), nullptr, ds[t]->data(), 1, 0);
        if (statuses[t] != kOk) break;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(statuses[t], kOk) << "thread " << t;
    const std::vector<float> a_values = as[t]->Values(), b_values = bs[t]->Values();
    int failures = 0;
    for (int64_t j = 0; j < 60; ++j) {
      for (int64_t i = 0; i < 40; ++i) {
        ExpectSame(
            ds[t]->At(ds[t]->Index(0, i, j)),
            Reference(*as[t], false, a_values, *bs[t], false, b_values, *ds[t], {}, 0, i, j, 1, 0),
            "thread " + std::to_string(t) + " " + Where(0, i, j), &failures);
      }
    }
    EXPECT_EQ(failures, 0);
  }
}

TEST(CublasLtStatus, NamesAndDescribesEachStatus) {
  EXPECT_STREQ(cublasLtGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cublasLtGetStatusName(CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED");
  EXPECT_STRNE(cublasLtGetStatusString(CUBLAS_STATUS_ALLOC_FAILED),
               cublasLtGetStatusString(CUBLAS_STATUS_SUCCESS));
}

}  // namespace
}  // namespace usine::testing::cuda_emulator
