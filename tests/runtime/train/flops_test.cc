// FLOPs per token against a hand computation for GPT-2 124M, the parameter count against the
// model itself, the peak table by CUDA device name, and the cpu's measured sgemm rate.
#include "runtime/train/flops.h"

#include <cmath>
#include <memory>
#include <string>

#include "gtest/gtest.h"

#include "runtime/nn/gpt.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

TEST(Flops, Gpt2At1024IsTheHandComputation) {
  ASSERT_OK_AND_ASSIGN(GptConfig gpt2, GptConfigNamed("gpt2"));
  // N: wte 50304 x 768 = 38,633,472; per block 12 x 768^2 + 13 x 768 = 7,087,872, times 12 =
  // 85,054,464; ln_f 1,536. N = 123,689,472 (124M less wpe's 786,432).
  EXPECT_EQ(MatmulParameterCount(gpt2), 123689472);
  // 6 N = 742,136,832; 12 L C T = 12 x 12 x 768 x 1024 = 113,246,208.
  EXPECT_EQ(TrainingFlopsPerToken(gpt2, 1024), 855383040.0);
  // At T = 256 only the attention term changes: 12 x 12 x 768 x 256 = 28,311,552.
  EXPECT_EQ(TrainingFlopsPerToken(gpt2, 256), 742136832.0 + 28311552.0);
}

TEST(Flops, ParameterCountIsTheModelsWithoutThePositionEmbedding) {
  GptConfig config = GptConfigNamed("tiny").value();
  config.n_layer = 3;  // Not the preset's, so that the count cannot be a remembered number.
  config.n_embd = 48;
  config.n_head = 6;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Gpt> model, Gpt::Create({.config = config, .seed = 1}));
  int64_t n = 0;
  bool saw_wpe = false;
  for (const NamedParameter& p : model->Parameters()) {
    if (p.name == "wpe.weight") {
      saw_wpe = true;
    } else {
      n += p.parameter->value.numel();
    }
  }
  EXPECT_TRUE(saw_wpe);
  EXPECT_EQ(MatmulParameterCount(config), n);
}

TEST(PeakTable, FindsGpusByTheirCudaNames) {
  constexpr double kT = 1e12;
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 80GB HBM3", MatmulPrecision::kBf16), 989.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 80GB HBM3", MatmulPrecision::kTf32), 494.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 80GB HBM3", MatmulPrecision::kF32), 67 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 PCIe", MatmulPrecision::kBf16), 756.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 PCIe", MatmulPrecision::kF32), 51 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H100 NVL", MatmulPrecision::kBf16), 835.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA A100-SXM4-80GB", MatmulPrecision::kBf16), 312 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA A100-SXM4-40GB", MatmulPrecision::kTf32), 156 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA A100 80GB PCIe", MatmulPrecision::kF32), 19.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H200", MatmulPrecision::kBf16), 989.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA H200 NVL", MatmulPrecision::kBf16), 835.5 * kT);
  EXPECT_EQ(GpuPeakFlops("NVIDIA GH200 480GB", MatmulPrecision::kTf32), 494.5 * kT);
}

TEST(PeakTable, AnUnknownGpuHasNoPeak) {
  EXPECT_FALSE(GpuPeakFlops("Tesla T4", MatmulPrecision::kF32).has_value());
  EXPECT_FALSE(GpuPeakFlops("", MatmulPrecision::kBf16).has_value());
}

TEST(DevicePeak, AnOverrideWinsOverTheMeasurement) {
  ASSERT_OK_AND_ASSIGN(PeakFlops peak,
                       DevicePeakFlops(Device::Cpu(), {.override_flops_per_second = 3.5e11}));
  EXPECT_EQ(peak.flops_per_second, 3.5e11);
  EXPECT_EQ(peak.source, "override");
}

TEST(DevicePeak, TheCpusIsAMeasuredPositiveRate) {
  ASSERT_OK_AND_ASSIGN(PeakFlops peak, DevicePeakFlops(Device::Cpu(), {.cpu_matrix_size = 128}));
  ASSERT_TRUE(peak.flops_per_second.has_value());
  EXPECT_TRUE(std::isfinite(*peak.flops_per_second));
  EXPECT_GT(*peak.flops_per_second, 0);
  EXPECT_NE(peak.source.find("sgemm 128^3 measured at"), std::string::npos) << peak.source;
}

TEST(DevicePeak, AMissingCudaDeviceIsAnError) {
  if (CudaDeviceCount() > 0) GTEST_SKIP() << "this machine has a CUDA device";
  EXPECT_FALSE(DevicePeakFlops(Device::Cuda(0)).ok());
}

TEST(MeasureCpuMatmulFlops, RejectsAnEmptyProduct) {
  EXPECT_EQ(MeasureCpuMatmulFlops(0).status().code(), absl::StatusCode::kInvalidArgument);
}

class FlopsGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device: " << CudaUnavailableReason();
  }
};

TEST_F(FlopsGpuTest, AGpuOfTheTableHasItsPeak) {
  const std::string name = ListCudaDevices().at(0).name;
  if (!GpuPeakFlops(name, MatmulPrecision::kBf16).has_value()) {
    GTEST_SKIP() << "'" << name << "' is not in the peak table";
  }
  ASSERT_OK_AND_ASSIGN(PeakFlops peak,
                       DevicePeakFlops(Device::Cuda(0), {.precision = MatmulPrecision::kBf16}));
  EXPECT_EQ(peak.flops_per_second, GpuPeakFlops(name, MatmulPrecision::kBf16));
  EXPECT_NE(peak.source.find(name), std::string::npos) << peak.source;
  EXPECT_NE(peak.source.find("bf16 dense"), std::string::npos) << peak.source;
}

}  // namespace
}  // namespace usine
