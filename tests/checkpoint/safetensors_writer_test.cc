// WriteSafetensorsFile: what it writes, SafetensorsFile reads back (names, dtypes, shapes,
// values, metadata), with the header padded to 8 bytes and the data back to back; each bad
// input is an error that leaves the file as it was.
#include "checkpoint/safetensors_writer.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "checkpoint/safetensors_file.h"
#include "runtime/core/float16.h"
#include "tests/testing/device_test.h"
#include "tests/testing/safetensors_image.h"

namespace usine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ReadTensor;

Tensor F32(const Shape& shape, float first) {
  Tensor t = Tensor::Empty(shape, DType::kF32).value();
  for (int64_t i = 0; i < t.numel(); ++i) static_cast<float*>(t.raw_data())[i] = first + i;
  return t;
}

class SafetensorsWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/usine_safetensors_writer_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/model.safetensors";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  int Files() {
    int n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++n;
    return n;
  }
  std::string dir_, path_;
};

TEST_F(SafetensorsWriterTest, WhatIsWrittenReadsBack) {
  Tensor half = Tensor::Empty({3}, DType::kBF16).value();
  const std::vector<float> halves = {1.5f, -2.0f, 0.0078125f};
  for (int i = 0; i < 3; ++i) {
    static_cast<uint16_t*>(half.raw_data())[i] = FloatToBFloat16Bits(halves[i]);
  }
  Tensor ids = Tensor::Empty({2}, DType::kI32).value();
  static_cast<int32_t*>(ids.raw_data())[0] = -7;
  static_cast<int32_t*>(ids.raw_data())[1] = 1 << 30;
  const std::vector<Tensor> tensors = {F32({2, 3}, 1.0f), half, ids, F32({0, 4}, 0.0f)};
  const std::vector<SafetensorsSpec> specs = {{"b.weight", DType::kF32, {2, 3}},
                                              {"a.half", DType::kBF16, {3}},
                                              {"ids", DType::kI32, {2}},
                                              {"empty", DType::kF32, {0, 4}}};
  int asked = 0;
  ASSERT_OK(WriteSafetensorsFile(path_, specs,
                                 [&](size_t i) -> absl::StatusOr<Tensor> {
                                   EXPECT_EQ(static_cast<int>(i), asked++)
                                       << "asked in order, once each";
                                   return tensors[i];
                                 },
                                 {{"format", "pt"}}));
  EXPECT_EQ(asked, 4);

  ASSERT_OK_AND_ASSIGN(const SafetensorsFile file, SafetensorsFile::Open(path_));
  EXPECT_EQ(file.metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(file.entries().size(), 4u);
  const SafetensorsFile::Entry& weight = file.entries().at("b.weight");
  EXPECT_EQ(weight.dtype, "F32");
  EXPECT_EQ(weight.shape, Shape({2, 3}));
  EXPECT_EQ(file.entries().at("a.half").dtype, "BF16");
  EXPECT_EQ(file.entries().at("ids").dtype, "I32");
  EXPECT_EQ(file.entries().at("empty").bytes, 0);
  ASSERT_OK_AND_ASSIGN(Tensor w, file.ReadF32("b.weight"));
  EXPECT_THAT(ReadTensor<float>(w).value(), ElementsAre(1, 2, 3, 4, 5, 6));
  ASSERT_OK_AND_ASSIGN(Tensor h, file.ReadF32("a.half"));
  EXPECT_EQ(ReadTensor<float>(h).value(), halves);

  // The layout: an 8-aligned header, then the data in the order given, back to back.
  const std::string bytes = testing::ReadFileBytes(path_);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  EXPECT_EQ(header % 8, 0u);
  EXPECT_EQ(weight.offset, static_cast<int64_t>(8 + header));
  EXPECT_EQ(file.entries().at("a.half").offset, weight.offset + 24);
  EXPECT_EQ(file.entries().at("ids").offset, weight.offset + 30);
  EXPECT_EQ(bytes.size(), 8 + header + 38);
  int32_t second_id = 0;
  std::memcpy(&second_id, bytes.data() + weight.offset + 34, 4);
  EXPECT_EQ(second_id, 1 << 30);
  EXPECT_EQ(Files(), 1);
}

TEST_F(SafetensorsWriterTest, BadInputIsAnErrorAndTheOldFileStays) {
  testing::WriteBytes(path_, "old");
  const auto given = [](Tensor t) { return [t](size_t) -> absl::StatusOr<Tensor> { return t; }; };
  const Tensor w = F32({2, 2}, 0.0f);
  const std::vector<SafetensorsSpec> one = {{"w", DType::kF32, {2, 2}}};
  struct Case {
    std::vector<SafetensorsSpec> specs;
    Tensor tensor;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{{"w", DType::kF32, {2, 2}}, {"w", DType::kF32, {2, 2}}}, w, "cannot name a tensor 'w'"},
      {{{"__metadata__", DType::kF32, {2, 2}}}, w, "cannot name a tensor '__metadata__'"},
      {{{"", DType::kF32, {2, 2}}}, w, "cannot name a tensor ''"},
      {one, F32({4}, 0.0f), "tensor 'w' was given as"},
      {{{"w", DType::kBF16, {2, 2}}}, w, "its header says BF16 [2, 2] on the cpu"},
  };
  for (const Case& c : cases) {
    const absl::Status status = WriteSafetensorsFile(path_, c.specs, given(c.tensor));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.error;
    EXPECT_THAT(status.message(), HasSubstr(c.error));
    EXPECT_THAT(status.message(), HasSubstr(path_));
  }
  const absl::Status failed = WriteSafetensorsFile(
      path_, one, [](size_t) -> absl::StatusOr<Tensor> { return absl::DataLossError("gone"); });
  EXPECT_EQ(failed, absl::DataLossError("gone"));
  EXPECT_EQ(testing::ReadFileBytes(path_), "old");
  EXPECT_EQ(Files(), 1) << "no temporary file is left";
}

}  // namespace
}  // namespace usine
