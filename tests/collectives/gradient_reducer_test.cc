// GradientReducer over every backend, under mpirun at 2 and 4 ranks: `Cpu` on the MPI
// backend, `Cuda` on NCCL (gradient_reducer_gpu_test.cc adds the CUDA stream ordering at one
// rank). Gradients are filled through the host, so on CUDA they are written before MarkReady.
#include "collectives/gradient_reducer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/kernels/copy.h"
#include "tests/testing/communicator_on_device.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

float Value(int rank, int grad, int64_t i) {
  return static_cast<float>((i * 5 + grad * 11 + rank * 3) % 23) - 11.0f;
}

// A small model's gradients: 6 parameters of assorted sizes, 4 bytes each element.
std::vector<GradientSpec> Specs() {
  return {{"wte", {64, 16}, DType::kF32},  {"ln.w", {16}, DType::kF32},
          {"ln.b", {16}, DType::kF32},     {"fc", {16, 48}, DType::kF32},
          {"proj", {48, 16}, DType::kF32}, {"head.b", {7}, DType::kF32}};
}

// world_ is the data-parallel group.
class GradientReducerTest : public testing::MultiRankDeviceTest {
 protected:
  // Gradient g += scale * this rank's values, through the host (synchronous copies).
  void FillGradient(GradientReducer& reducer, int g, float scale = 1) {
    const Tensor& grad = reducer.gradient(g);
    ASSERT_OK_AND_ASSIGN(std::vector<float> v, testing::ReadTensor<float>(grad));
    for (size_t i = 0; i < v.size(); ++i) v[i] += scale * Value(world_->rank(), g, i);
    ASSERT_OK_AND_ASSIGN(Tensor host, testing::MakeTensor(Device::Cpu(), grad.shape(), v));
    ASSERT_OK(Copy(host, grad));
  }
};

TEST_P(GradientReducerTest, BucketsFollowReverseRegistrationOrderAndTheSizeBound) {
  // 2 KiB buckets: proj (3 KiB) and fc (3 KiB) are alone; wte (4 KiB) alone.
  ASSERT_OK_AND_ASSIGN(auto reducer,
                       GradientReducer::Create(*world_, Specs(), {.bucket_bytes = 2048}));
  EXPECT_EQ(reducer->num_gradients(), 6);
  EXPECT_EQ(reducer->bucket_of(5), 0);  // head.b first: backward produces it first.
  EXPECT_EQ(reducer->bucket_of(4), 1);  // proj does not fit with head.b.
  EXPECT_EQ(reducer->bucket_of(3), 2);
  EXPECT_EQ(reducer->bucket_of(2), 3);  // ln.b and ln.w share a bucket.
  EXPECT_EQ(reducer->bucket_of(1), 3);
  EXPECT_EQ(reducer->bucket_of(0), 4);
  EXPECT_EQ(reducer->num_buckets(), 5);
  EXPECT_EQ(reducer->gradient(3).shape(), Shape({16, 48}));
  ASSERT_OK_AND_ASSIGN(auto one_bucket, GradientReducer::Create(*world_, Specs()));
  EXPECT_EQ(one_bucket->num_buckets(), 1);  // 25 MiB default holds the whole model.
}

TEST_P(GradientReducerTest, EqualsAPlainAllReduceExactlyAndStartsBeforeBackwardEnds) {
  ASSERT_OK_AND_ASSIGN(auto reducer,
                       GradientReducer::Create(*world_, Specs(), {.bucket_bytes = 2048}));
  ASSERT_OK(reducer->BeginStep(/*reduce=*/true));
  std::vector<Tensor> reference;
  for (int g = 5; g >= 0; --g) {  // Backward: last parameter first.
    FillGradient(*reducer, g);
    ASSERT_OK_AND_ASSIGN(Tensor copy, Tensor::Empty(reducer->gradient(g).shape(), DType::kF32));
    ASSERT_OK(Copy(reducer->gradient(g), copy));  // On the host: world_'s host twin reduces it.
    reference.insert(reference.begin(), copy);
    ASSERT_OK(reducer->MarkReady(g));
    if (g == 5) {
      EXPECT_EQ(reducer->launched_buckets(), 1)
          << "the first bucket starts with backward still running";
    }
  }
  EXPECT_EQ(reducer->launched_buckets(), 5);
  ASSERT_OK(reducer->Finish());
  for (int g = 0; g < 6; ++g) {
    ASSERT_OK(world_->AllReduce(reference[g], ReduceOp::kAvg));
    ASSERT_OK_AND_ASSIGN(std::vector<float> want, testing::ReadTensor<float>(reference[g]));
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, testing::ReadTensor<float>(reducer->gradient(g)));
    EXPECT_EQ(got, want) << reducer->gradient(g).DebugString();
    // And the value itself: the average of small integers over 2 or 4 ranks is exact.
    for (size_t i = 0; i < got.size(); ++i) {
      float sum = 0;
      for (int r = 0; r < world_->size(); ++r) sum += Value(r, g, i);
      ASSERT_EQ(got[i], sum / world_->size());
    }
  }
}

TEST_P(GradientReducerTest, BucketsLaunchInOrderWhateverOrderGradientsBecomeReady) {
  ASSERT_OK_AND_ASSIGN(auto reducer,
                       GradientReducer::Create(*world_, Specs(), {.bucket_bytes = 2048}));
  ASSERT_OK(reducer->BeginStep(true));
  ASSERT_OK(reducer->MarkReady(0));  // Completes bucket 4, which must wait for buckets 0-3.
  EXPECT_EQ(reducer->launched_buckets(), 0);
  ASSERT_OK(reducer->MarkReady(5));
  EXPECT_EQ(reducer->launched_buckets(), 1);
  for (int g : {1, 2, 3}) ASSERT_OK(reducer->MarkReady(g));
  EXPECT_EQ(reducer->launched_buckets(), 1);  // Bucket 1 (proj) still open.
  ASSERT_OK(reducer->MarkReady(4));
  EXPECT_EQ(reducer->launched_buckets(), 5);
  ASSERT_OK(reducer->Finish());
}

TEST_P(GradientReducerTest, OnlyTheLastMicroStepReduces) {
  ASSERT_OK_AND_ASSIGN(auto reducer, GradientReducer::Create(*world_, Specs()));
  for (int micro = 0; micro < 3; ++micro) {
    ASSERT_OK(reducer->BeginStep(/*reduce=*/micro == 2));
    for (int g = 5; g >= 0; --g) {
      FillGradient(*reducer, g, /*scale=*/micro + 1.0f);  // Accumulates 1x + 2x + 3x.
      ASSERT_OK(reducer->MarkReady(g));
    }
    if (micro < 2) {
      EXPECT_EQ(reducer->launched_buckets(), 0);
    }
    ASSERT_OK(reducer->Finish());
  }
  ASSERT_OK_AND_ASSIGN(std::vector<float> got, testing::ReadTensor<float>(reducer->gradient(3)));
  for (size_t i = 0; i < got.size(); ++i) {
    float sum = 0;
    for (int r = 0; r < world_->size(); ++r) sum += 6 * Value(r, 3, i);
    ASSERT_EQ(got[i], sum / world_->size());
  }
  ASSERT_OK(reducer->ZeroGradients());
  ASSERT_OK_AND_ASSIGN(std::vector<float> zero, testing::ReadTensor<float>(reducer->gradient(3)));
  EXPECT_EQ(zero, std::vector<float>(got.size(), 0.0f));
}

TEST_P(GradientReducerTest, MisuseIsAnErrorThatNamesTheGradients) {
  ASSERT_OK_AND_ASSIGN(auto reducer, GradientReducer::Create(*world_, Specs()));
  ASSERT_OK(reducer->BeginStep(true));
  ASSERT_OK(reducer->MarkReady(2));
  EXPECT_THAT(std::string(reducer->MarkReady(2).message()), HasSubstr("'ln.b' marked ready twice"));
  EXPECT_TRUE(absl::IsInvalidArgument(reducer->MarkReady(6)));
  const absl::Status missing = reducer->Finish();
  EXPECT_THAT(std::string(missing.message()),
              HasSubstr("never marked ready: wte, ln.w, fc, proj, head.b"));
  EXPECT_TRUE(absl::IsInvalidArgument(
      GradientReducer::Create(*world_, {{"ids", {4}, DType::kI32}}).status()));
}

USINE_INSTANTIATE_DEVICE_TESTS(GradientReducerTest);

}  // namespace
}  // namespace usine
