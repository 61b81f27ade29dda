// cublasLtMatmul's arithmetic on the host (internal/cublas_lt_product.h): operands read as f32
// (TF32 or bf16 converted), a product tiled over m and n and summed in double over k, the epilogue
// (alpha and beta, bias, GELU or its derivative, aux) and the stores in D's type. Holds no global
// state.
#include "tests/testing/cuda_emulator/internal/cublas_lt_product.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <cuda_bf16.h>

namespace usine::testing::cuda_emulator_internal {
namespace {

float Load(const void* base, int32_t type, int64_t i) {
  if (type == CUDA_R_32F) return static_cast<const float*>(base)[i];
  return cuda_emulator::FloatOfBf16Bits(static_cast<const uint16_t*>(base)[i]);
}

void Store(void* base, int32_t type, int64_t i, float value) {
  if (type == CUDA_R_32F) {
    static_cast<float*>(base)[i] = value;
  } else {
    static_cast<uint16_t*>(base)[i] = cuda_emulator::Bf16BitsNearest(value);
  }
}

// To TF32 (10 explicit mantissa bits), rounding to nearest even; infinities and NaNs unchanged.
float RoundToTf32(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) >= 0x7f800000u) return f;
  bits += 0xfffu + ((bits >> 13) & 1u);
  return std::bit_cast<float>(bits & ~0x1fffu);
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;

float Gelu(float x) {
  const float cube = x * x * x;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + 0.044715f * cube)));
}

// d gelu / dx of the tanh approximation above.
float GeluDerivative(float x) {
  const float t = std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x));
  return 0.5f * (1.0f + t) +
         0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x * x);
}

// out[q * out_ld + r] = Y(r, q) for r < rows, q < cols, where Y is the column-major matrix at
// `base` (leading dimension ld) when `direct`, else its transpose; read as f32 (TF32 if `tf32`).
void Gather(const void* base, int32_t type, int64_t ld, bool direct, int64_t rows, int64_t cols,
            bool tf32, double* out, int64_t out_ld) {
  auto read = [&](int64_t i) {
    const float x = Load(base, type, i);
    return static_cast<double>(tf32 ? RoundToTf32(x) : x);
  };
  if (direct) {
    for (int64_t q = 0; q < cols; ++q) {
      for (int64_t r = 0; r < rows; ++r) out[q * out_ld + r] = read(r + q * ld);
    }
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t q = 0; q < cols; ++q) out[q * out_ld + r] = read(q + r * ld);
    }
  }
}

// Output tiles of kTileRows x kTileCols accumulate in double over k, one product at a time and
// in order of increasing k, the inner loop across a row of op(B)^T's tile (vectorizable without
// reordering any sum).
constexpr int64_t kTileRows = 16;
constexpr int64_t kTileCols = 64;

int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// sums[r][s] = the dot product of row r of op(A)'s tile and column s of op(B)'s tile: a_tile
// and b_tile are element (0, 0) of their tiles in a_op ([k][a_ld]) and b_op ([k][b_ld]).
void MultiplyTile(const double* a_tile, int64_t a_ld, const double* b_tile, int64_t b_ld, int64_t k,
                  double (&sums)[kTileRows][kTileCols]) {
  for (int64_t r = 0; r < kTileRows; ++r) {
    for (int64_t s = 0; s < kTileCols; ++s) sums[r][s] = 0;
  }
  for (int64_t q = 0; q < k; ++q) {
    const double* b_row = b_tile + q * b_ld;
    for (int64_t r = 0; r < kTileRows; ++r) {
      const double x = a_tile[q * a_ld + r];
      for (int64_t s = 0; s < kTileCols; ++s) sums[r][s] += x * b_row[s];
    }
  }
}

// One batch's C, D, bias and aux, and what the epilogue does with them.
struct Epilogue {
  const MatmulProblem& p;
  const void* c;
  void* d;
  const void* bias;
  void* aux;
  float alpha, beta;

  // D(i, j) (and aux(i, j)) from `product`, alpha times the dot product of row i of op(A) and
  // column j of op(B).
  void Finish(int64_t i, int64_t j, float product) const {
    float value = product;
    if (c != nullptr) value = value + beta * Load(c, p.c.type, i + j * p.c.ld);
    if (p.bias) value = value + Load(bias, p.bias_vector.type, i);
    if (p.dgelu) {
      value = value * GeluDerivative(Load(aux, p.aux_matrix.type, i + j * p.aux_matrix.ld));
    } else if (p.aux) {
      Store(aux, p.aux_matrix.type, i + j * p.aux_matrix.ld, value);
    }
    if (p.gelu) value = Gelu(value);
    Store(d, p.d.type, i + j * p.d.ld, value);
  }
};

// `pointer` advanced by `elements` of `type`.
template <typename T>
T* Advance(T* pointer, int64_t elements, int32_t type) {
  using Byte = std::conditional_t<std::is_const_v<T>, const char, char>;
  if (pointer == nullptr) return nullptr;
  return reinterpret_cast<T*>(reinterpret_cast<Byte*>(pointer) + elements * ElementBytes(type));
}

}  // namespace

void ComputeMatmul(const MatmulProblem& p, const MatmulPointers& ptr, float alpha, float beta) {
  const int64_t m_padded = RoundUp(p.m, kTileRows), n_padded = RoundUp(p.n, kTileCols);
  // op(A) as [k][m_padded] and op(B) as [k][n_padded], the padding zeros.
  std::vector<double> a_op(static_cast<size_t>(p.k * m_padded), 0.0);
  std::vector<double> b_op(static_cast<size_t>(p.k * n_padded), 0.0);
  double sums[kTileRows][kTileCols], second[kTileRows][kTileCols];
  for (int64_t batch = 0; batch < p.batch; ++batch) {
    Gather(Advance(ptr.a, batch * p.a.batch_stride, p.a.type), p.a.type, p.a.ld, !p.transpose_a,
           p.m, p.k, p.tf32, a_op.data(), m_padded);
    Gather(Advance(ptr.b, batch * p.b.batch_stride, p.b.type), p.b.type, p.b.ld, p.transpose_b, p.n,
           p.k, p.tf32, b_op.data(), n_padded);
    const Epilogue epilogue{
        p,
        Advance(ptr.c, batch * p.c.batch_stride, p.c.type),
        Advance(ptr.d, batch * p.d.batch_stride, p.d.type),
        Advance(ptr.bias, batch * p.bias_vector.batch_stride, p.bias_vector.type),
        Advance(ptr.aux, batch * p.aux_matrix.batch_stride, p.aux_matrix.type),
        alpha,
        beta};
    // With split_k_in_output_type, k's first half goes into `sums` and its second into
    // `second`, each product rounded to D's type and their sum too.
    const int64_t k_first = p.split_k_in_output_type ? p.k / 2 : p.k;
    const auto in_d_type = [&](float x) {
      return p.d.type == CUDA_R_32F
                 ? x
                 : cuda_emulator::FloatOfBf16Bits(cuda_emulator::Bf16BitsNearest(x));
    };
    for (int64_t i0 = 0; i0 < p.m; i0 += kTileRows) {
      for (int64_t j0 = 0; j0 < p.n; j0 += kTileCols) {
        MultiplyTile(&a_op[i0], m_padded, &b_op[j0], n_padded, k_first, sums);
        if (k_first < p.k) {
          MultiplyTile(&a_op[k_first * m_padded + i0], m_padded, &b_op[k_first * n_padded + j0],
                       n_padded, p.k - k_first, second);
        }
        const int64_t rows = std::min(kTileRows, p.m - i0), cols = std::min(kTileCols, p.n - j0);
        for (int64_t s = 0; s < cols; ++s) {
          for (int64_t r = 0; r < rows; ++r) {
            float product = alpha * static_cast<float>(sums[r][s]);
            if (k_first < p.k) {
              product = in_d_type(in_d_type(product) +
                                  in_d_type(alpha * static_cast<float>(second[r][s])));
            }
            epilogue.Finish(i0 + r, j0 + s, product);
          }
        }
      }
    }
  }
}

}  // namespace usine::testing::cuda_emulator_internal
