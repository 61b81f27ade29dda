// The tensor-parallel layers' CUDA path against their cpu path, in f32, on one GPU: a group of
// one (NCCL refuses two ranks on one device), so the collectives are no-ops and what is tested
// is each rank's arithmetic. The vocabulary-parallel cases put this rank's slice in the middle
// of the vocabulary, as rank 1 of 3 would hold it, with targets inside and outside it and the
// padding columns NaN. Label `gpu`: skipped without a CUDA device.
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "runtime/kernels/elementwise.h"
#include "runtime/kernels/matmul.h"
#include "runtime/nn/column_parallel_linear.h"
#include "runtime/nn/internal/cpu_vocab_parallel.h"
#include "runtime/nn/internal/cuda_layers.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/row_parallel_linear.h"
#include "runtime/nn/vocab_parallel_cross_entropy.h"
#include "runtime/nn/vocab_parallel_embedding.h"
#include "tests/runtime/nn/cuda_compare.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

namespace ni = nn_internal;
using testing::BitIdentical;
using testing::F32Tensor;
using testing::kCuda;
using testing::RandomPair;
using testing::RepeatingIds;

class CudaTensorParallelGpuTest : public testing::CudaDeviceTest {};

TEST_F(CudaTensorParallelGpuTest, ColumnAndRowParallelLinearMatchCpu) {
  struct Case {
    Shape x;
    int64_t out;
    int groups;
    bool bias;
  };
  for (const Case& c :
       {Case{{3, 5, 37}, 45, 1, true}, Case{{2, 9, 24}, 72, 3, true}, Case{{4, 9}, 17, 1, false}}) {
    const int64_t in = c.x.dim(c.x.rank() - 1);
    const std::string what = absl::StrCat(c.x.ToString(), " -> ", c.out);
    ParameterInitializer i1(3), i2(3), i3(3), i4(3);
    ASSERT_OK_AND_ASSIGN(
        auto column_cpu,
        ColumnParallelLinear::Create(
            {.in_features = in, .out_features = c.out, .groups = c.groups, .bias = c.bias}, i1));
    ASSERT_OK_AND_ASSIGN(auto column_cuda, ColumnParallelLinear::Create({.in_features = in,
                                                                         .out_features = c.out,
                                                                         .groups = c.groups,
                                                                         .bias = c.bias,
                                                                         .device = kCuda},
                                                                        i2));
    testing::CompareLayer<ColumnParallelLinear>(
        *column_cpu, *column_cuda, c.x, 10,
        [](ColumnParallelLinear& l, const Tensor& x) { return l.Forward(x); },
        [](ColumnParallelLinear& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("ColumnParallelLinear ", what));
    ASSERT_OK_AND_ASSIGN(
        auto row_cpu,
        RowParallelLinear::Create({.in_features = in, .out_features = c.out, .bias = c.bias}, i3));
    ASSERT_OK_AND_ASSIGN(
        auto row_cuda,
        RowParallelLinear::Create(
            {.in_features = in, .out_features = c.out, .bias = c.bias, .device = kCuda}, i4));
    testing::CompareLayer<RowParallelLinear>(
        *row_cpu, *row_cuda, c.x, 20,
        [](RowParallelLinear& l, const Tensor& x) { return l.Forward(x); },
        [](RowParallelLinear& l, const Tensor& dy) { return l.Backward(dy); },
        absl::StrCat("RowParallelLinear ", what));
  }
}

// Under bf16 products the split layers compute as Linear does (one product code): from the same
// weights, fed a bf16 operand, the same output, input gradient and weight and bias gradients,
// bit for bit.
TEST_F(CudaTensorParallelGpuTest, SplitLinearsTakeBf16OperandsAndComputeAsLinear) {
  std::optional<testing::ScopedMatmulPrecision> bf16(MatmulPrecision::kBf16);
  const testing::TensorPair h = RandomPair({2, 7, 64}, 30, 3.0f);
  ASSERT_OK_AND_ASSIGN(const Tensor g16, ProductOperand(h.cuda));
  ASSERT_EQ(g16.dtype(), DType::kBF16);
  const testing::TensorPair dy = RandomPair({2, 7, 48}, 31);
  ParameterInitializer i1(4), i2(4), i3(4);
  ASSERT_OK_AND_ASSIGN(
      auto linear, Linear::Create({.in_features = 64, .out_features = 48, .device = kCuda}, i1));
  ASSERT_OK_AND_ASSIGN(
      auto column,
      ColumnParallelLinear::Create({.in_features = 64, .out_features = 48, .device = kCuda}, i2));
  ASSERT_OK_AND_ASSIGN(auto row, RowParallelLinear::Create(
                                     {.in_features = 64, .out_features = 48, .device = kCuda}, i3));
  ASSERT_OK_AND_ASSIGN(const Tensor y, linear->Forward(g16));
  ASSERT_OK_AND_ASSIGN(const Tensor dx, linear->Backward(dy.cuda));
  for (Sublayer* split :
       {static_cast<Sublayer*>(column.get()), static_cast<Sublayer*>(row.get())}) {
    SCOPED_TRACE(split == column.get() ? "column" : "row");
    ASSERT_OK_AND_ASSIGN(const Tensor split_y, split->Forward(g16));
    ASSERT_OK_AND_ASSIGN(const Tensor split_dx, split->Backward(dy.cuda));
    EXPECT_TRUE(BitIdentical(split_y, y)) << "output";
    EXPECT_TRUE(BitIdentical(split_dx, dx)) << "input gradient";
    const auto params = split->Parameters();
    const auto linear_params = linear->Parameters();
    ASSERT_EQ(params.size(), linear_params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(BitIdentical(params[i].parameter->grad, linear_params[i].parameter->grad))
          << params[i].name;
    }
  }
}

TEST_F(CudaTensorParallelGpuTest, VocabParallelEmbeddingMatchesCpuBitForBit) {
  for (int64_t dim : {1, 33, 200}) {
    ParameterInitializer i1(5), i2(5);
    ASSERT_OK_AND_ASSIGN(
        auto cpu, VocabParallelEmbedding::Create({.rows = 16, .valid_rows = 13, .dim = dim}, i1));
    ASSERT_OK_AND_ASSIGN(auto cuda,
                         VocabParallelEmbedding::Create(
                             {.rows = 16, .valid_rows = 13, .dim = dim, .device = kCuda}, i2));
    EXPECT_TRUE(BitIdentical(cuda->weight().value, cpu->weight().value)) << "initial table";
    SCOPED_TRACE(absl::StrCat("dim ", dim));
    testing::ExpectEmbeddingsBitIdentical(*cpu, *cuda, 13, static_cast<int>(dim), 50);
  }
}

// The embedding kernels on a slice of rows [5, 11) of a 16-row table, as another rank would
// hold it: ids outside the slice give rows of 0 (into a NaN-poisoned output) and add nothing,
// as the cpu's slice functions, bit for bit.
TEST_F(CudaTensorParallelGpuTest, EmbeddingKernelsOnASliceMatchCpu) {
  const ni::VocabSlice slice{.begin = 5, .count = 6, .valid = 6};
  const int64_t dim = 33;
  const Tensor id_tensor = RepeatingIds(1, 97, 16, 2);
  const auto* first = static_cast<const int32_t*>(id_tensor.raw_data());
  const std::vector<int32_t> ids(first, first + id_tensor.numel());
  const int64_t n = static_cast<int64_t>(ids.size());
  const testing::TensorPair table = RandomPair({slice.count, dim}, 60);
  ASSERT_OK_AND_ASSIGN(Tensor cpu_out, Tensor::Empty({n, dim}, DType::kF32));
  ni::SliceEmbeddingForward(ids.data(), n, static_cast<const float*>(table.cpu.raw_data()), slice,
                            dim, static_cast<float*>(cpu_out.raw_data()));
  ASSERT_OK_AND_ASSIGN(Tensor cuda_out, Tensor::Empty({n, dim}, DType::kF32, kCuda));
  testing::Poison(cuda_out);
  ASSERT_OK_AND_ASSIGN(const Tensor rows, ni::CudaUploadIds(ni::SliceRows(ids, slice), kCuda));
  ASSERT_OK(ni::CudaEmbeddingForward(rows, table.cuda, cuda_out));
  EXPECT_TRUE(BitIdentical(cuda_out, cpu_out)) << "forward";

  const testing::TensorPair dout = RandomPair({n, dim}, 61);
  const testing::TensorPair dtable = RandomPair({slice.count, dim}, 62);
  ni::SliceEmbeddingBackward(ids.data(), n, static_cast<const float*>(dout.cpu.raw_data()), slice,
                             dim, static_cast<float*>(dtable.cpu.raw_data()));
  ASSERT_OK(ni::CudaEmbeddingBackward(ni::SliceRows(ids, slice), dout.cuda, dtable.cuda));
  EXPECT_TRUE(BitIdentical(dtable.cuda, dtable.cpu)) << "backward";

  // No id in the slice: nothing to add, and the table's gradient is left as it was.
  const testing::TensorPair untouched = RandomPair({slice.count, dim}, 63);
  ASSERT_OK(ni::CudaEmbeddingBackward(std::vector<int32_t>(n, -1), dout.cuda, untouched.cuda));
  EXPECT_TRUE(BitIdentical(untouched.cuda, untouched.cpu)) << "no ids of the slice";
}

// One rank's part of the vocabulary-parallel cross-entropy, the slice [begin, begin + count) of
// a vocabulary of `vocab` classes (its columns past vocab - begin are padding, NaN here): the
// loss, the gradient in place in f32, and the gradient written into a NaN-poisoned bf16 buffer
// (the f32 one rounded, bit for bit, with the logits left intact).
TEST_F(CudaTensorParallelGpuTest, VocabParallelCrossEntropyMatchesCpuOnASlice) {
  struct Case {
    int64_t rows, vocab, begin, count;
  };
  // The whole vocabulary; a middle slice without padding; a last slice with padding; a wide
  // slice (several columns per thread).
  for (const Case& c : {Case{7, 40, 0, 40}, Case{37, 300, 100, 100}, Case{9, 250, 192, 64},
                        Case{3, 50257, 25152, 25152}}) {
    SCOPED_TRACE(absl::StrCat("rows ", c.rows, " vocab ", c.vocab, " slice [", c.begin, ", ",
                              c.begin + c.count, ")"));
    const int64_t valid = std::min(c.count, c.vocab - c.begin);
    std::vector<float> values = testing::RandomValues(c.rows * c.count, 70, 8.0f);
    for (int64_t r = 0; r < c.rows; ++r) {
      for (int64_t j = valid; j < c.count; ++j) values[r * c.count + j] = NAN;
    }
    const Shape shape{c.rows, c.count};
    const Tensor cpu_logits = F32Tensor(Device::Cpu(), shape, values);
    const Tensor cuda_logits = F32Tensor(kCuda, shape, values);
    const Tensor kept_logits = F32Tensor(kCuda, shape, values);
    // Targets over the whole vocabulary: some in the slice, most outside it.
    const Tensor targets = RepeatingIds(1, c.rows, c.vocab, 7);
    const TokenWindow window{targets, 0, c.rows};
    VocabParallelCrossEntropy cpu(nullptr, c.vocab, c.begin), cuda(nullptr, c.vocab, c.begin);
    ASSERT_OK_AND_ASSIGN(const double loss_cpu, cpu.Forward(cpu_logits, window));
    ASSERT_OK(cpu.Backward(0.7));
    ASSERT_OK_AND_ASSIGN(const double loss_cuda, cuda.Forward(cuda_logits, window));
    ASSERT_OK(cuda.Backward(0.7));
    EXPECT_NEAR(loss_cuda, loss_cpu, 1e-5 * std::abs(loss_cpu)) << "loss";
    EXPECT_TRUE(testing::Close(cuda_logits, cpu_logits)) << "f32 gradient (padding must be 0)";

    ASSERT_OK_AND_ASSIGN(Tensor bf16, Tensor::Empty(shape, DType::kBF16, kCuda));
    testing::Poison(bf16);
    ASSERT_OK_AND_ASSIGN(const double loss_bf16,
                         cuda.ForwardWithGradient(kept_logits, window, bf16));
    EXPECT_EQ(loss_bf16, loss_cuda);
    EXPECT_TRUE(BitIdentical(kept_logits, F32Tensor(kCuda, shape, values))) << "logits changed";
    // The f32 gradient at dloss 1, rounded.
    const Tensor f32_logits = F32Tensor(kCuda, shape, values);
    ASSERT_OK(cuda.ForwardWithGradient(f32_logits, window, f32_logits).status());
    ASSERT_OK_AND_ASSIGN(Tensor rounded, Tensor::Empty(shape, DType::kBF16, kCuda));
    ASSERT_OK(Cast(f32_logits, rounded));
    EXPECT_TRUE(BitIdentical(bf16, rounded)) << "bf16 gradient: the f32 one rounded";
  }
}

// bf16 logits of a slice (under bf16 products) give the loss of an f32 copy of them, the same
// bits, and their in-place gradient the bits of the copy's bf16 gradient; an f32 gradient of
// them is refused.
TEST_F(CudaTensorParallelGpuTest, VocabParallelCrossEntropyOnBf16LogitsGivesTheBitsOfTheirF32Copy) {
  struct Case {
    int64_t rows, vocab, begin, count;
  };
  for (const Case& c : {Case{37, 300, 100, 100}, Case{9, 250, 192, 64}, Case{5, 41, 0, 41}}) {
    SCOPED_TRACE(absl::StrCat("rows ", c.rows, " vocab ", c.vocab, " slice [", c.begin, ", ",
                              c.begin + c.count, ")"));
    const Shape shape{c.rows, c.count};
    ASSERT_OK_AND_ASSIGN(Tensor logits16, Tensor::Empty(shape, DType::kBF16, kCuda));
    ASSERT_OK(
        Cast(F32Tensor(kCuda, shape, testing::RandomValues(c.rows * c.count, 71, 8.0f)), logits16));
    ASSERT_OK_AND_ASSIGN(Tensor logits32, Tensor::Empty(shape, DType::kF32, kCuda));
    ASSERT_OK(Cast(logits16, logits32));
    const Tensor targets = RepeatingIds(1, c.rows, c.vocab, 7);
    const TokenWindow window{targets, 0, c.rows};
    VocabParallelCrossEntropy ce(nullptr, c.vocab, c.begin);
    ASSERT_OK_AND_ASSIGN(Tensor gradient32, Tensor::Empty(shape, DType::kBF16, kCuda));
    testing::Poison(gradient32);
    ASSERT_OK_AND_ASSIGN(const double loss32, ce.ForwardWithGradient(logits32, window, gradient32));
    ASSERT_OK_AND_ASSIGN(const double loss16, ce.ForwardWithGradient(logits16, window, logits16));
    EXPECT_EQ(loss16, loss32);
    EXPECT_TRUE(BitIdentical(logits16, gradient32)) << "gradient in place";
    EXPECT_TRUE(
        absl::IsInvalidArgument(ce.ForwardWithGradient(logits16, window, logits32).status()));
  }
}

TEST_F(CudaTensorParallelGpuTest, VocabParallelCrossEntropyRefusesAGradientElsewhere) {
  const Tensor logits = F32Tensor(kCuda, {2, 8}, testing::RandomValues(16, 80));
  const Tensor targets = RepeatingIds(1, 2, 8, 1);
  VocabParallelCrossEntropy ce(nullptr, 8, 0);
  ASSERT_OK_AND_ASSIGN(const Tensor on_cpu, Tensor::Empty({2, 8}, DType::kF32));
  const absl::StatusOr<double> loss = ce.ForwardWithGradient(logits, {targets, 0, 2}, on_cpu);
  EXPECT_EQ(loss.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loss.status().message().find("VocabParallelCrossEntropy gradient"), std::string::npos)
      << loss.status();
}

}  // namespace
}  // namespace usine
