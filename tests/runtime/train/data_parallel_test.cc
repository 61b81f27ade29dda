// AttachGradientReducer and GradientReadyMarker under mpirun (the world is the DP group).
#include "runtime/train/data_parallel.h"

#include <vector>

#include "gtest/gtest.h"

#include "collectives/mpi/mpi_communicator.h"
#include "runtime/kernels/copy.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/gpt.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using testing::MakeTensor;
using testing::ReadTensor;

class DataParallelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dp = MpiCommunicator::Create(MPI_COMM_WORLD, "dp");
    ASSERT_TRUE(dp.ok()) << dp.status();
    dp_ = std::move(*dp);
    ASSERT_OK_AND_ASSIGN(model_,
                         Gpt::Create({.config = GptConfigNamed("tiny").value(), .seed = 5}));
  }

  // [2, 9] ids that differ between ranks, so the average over ranks is not any rank's.
  Tensor RankTokens() const {
    std::vector<int32_t> ids(2 * 9);
    for (size_t i = 0; i < ids.size(); ++i) {
      ids[i] = static_cast<int32_t>((i * 13 + dp_->rank() * 101) % 500);
    }
    return MakeTensor(Device::Cpu(), {2, 9}, ids).value();
  }

  std::unique_ptr<MpiCommunicator> dp_;
  std::unique_ptr<Gpt> model_;
};

TEST_F(DataParallelTest, GradientsBecomeBucketViewsKeepingTheirValues) {
  const std::vector<NamedParameter> params = model_->Parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_OK(Fill(params[i].parameter->grad, 0.5 + static_cast<double>(i)));
  }
  ASSERT_OK_AND_ASSIGN(auto reducer, AttachGradientReducer(*model_, *dp_));
  ASSERT_EQ(reducer->num_gradients(), static_cast<int>(params.size()));
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& grad = params[i].parameter->grad;
    EXPECT_TRUE(grad.SharesMemoryWith(reducer->gradient(static_cast<int>(i)))) << params[i].name;
    EXPECT_EQ(grad.raw_data(), reducer->gradient(static_cast<int>(i)).raw_data());
    ASSERT_OK_AND_ASSIGN(std::vector<float> v, ReadTensor<float>(grad));
    EXPECT_EQ(v.front(), 0.5f + static_cast<float>(i)) << params[i].name;
    EXPECT_EQ(v.back(), 0.5f + static_cast<float>(i)) << params[i].name;
  }
}

TEST_F(DataParallelTest, BucketsReduceWhileBackwardRunsAndAverageTheRanksGradients) {
  // The gradients this rank computes alone, for the expected average.
  ASSERT_OK(model_->Forward(RankTokens()).status());
  ASSERT_OK(model_->Backward());
  std::vector<Tensor> own;
  for (const NamedParameter& p : model_->Parameters()) {
    ASSERT_OK_AND_ASSIGN(Tensor copy, Tensor::Empty(p.parameter->grad.shape(), DType::kF32));
    ASSERT_OK(Copy(p.parameter->grad, copy));
    own.push_back(copy);
  }
  ASSERT_OK(model_->ZeroGrad());

  ASSERT_OK_AND_ASSIGN(auto reducer,
                       AttachGradientReducer(*model_, *dp_, {.bucket_bytes = 16 << 10}));
  ASSERT_GT(reducer->num_buckets(), 2);
  GradientReadyMarker marker(*model_, *reducer);
  ASSERT_OK(reducer->BeginStep(/*reduce=*/true));
  ASSERT_OK(model_->Forward(RankTokens()).status());
  std::vector<int> launched;  // Buckets launched after each child's gradients were final.
  ASSERT_OK(model_->Backward(1.0, [&](Module& m) {
    absl::Status s = marker.MarkModule(m);
    launched.push_back(reducer->launched_buckets());
    return s;
  }));
  ASSERT_EQ(launched.size(), 5u);  // ln_f, h.1, h.0, wpe, wte.
  EXPECT_GT(launched[1], 0) << "a bucket started before backward reached the first block";
  EXPECT_LT(launched[1], reducer->num_buckets());
  EXPECT_EQ(launched.back(), reducer->num_buckets());
  ASSERT_OK(reducer->Finish());

  const std::vector<NamedParameter> params = model_->Parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_OK(dp_->AllReduce(own[i], ReduceOp::kAvg));
    ASSERT_OK_AND_ASSIGN(std::vector<float> want, ReadTensor<float>(own[i]));
    ASSERT_OK_AND_ASSIGN(std::vector<float> got, ReadTensor<float>(params[i].parameter->grad));
    EXPECT_EQ(got, want) << params[i].name;
  }
}

TEST_F(DataParallelTest, MarkingAForeignModuleIsAnError) {
  ASSERT_OK_AND_ASSIGN(auto reducer, AttachGradientReducer(*model_, *dp_));
  GradientReadyMarker marker(*model_, *reducer);
  ASSERT_OK_AND_ASSIGN(auto other, Gpt::Create({.config = GptConfigNamed("tiny").value()}));
  ASSERT_OK(reducer->BeginStep(/*reduce=*/true));
  EXPECT_FALSE(marker.MarkModule(*other).ok());
}

}  // namespace
}  // namespace usine
