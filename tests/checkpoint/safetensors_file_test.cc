// SafetensorsFile: every float dtype read back as f32 with the values written, the metadata, and
// a clear error (never a crash) for each way a header can be wrong.
#include "checkpoint/safetensors_file.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/float16.h"
#include "tests/testing/device_test.h"
#include "tests/testing/safetensors_image.h"

namespace usine {
namespace {

using ::testing::ElementsAre;
using testing::F32Bytes;
using ::testing::HasSubstr;
using testing::SafetensorsEntry;
using testing::SafetensorsImage;
using testing::SafetensorsImageWithHeader;

class SafetensorsFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/usine_safetensors_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& image) {
    const std::string path = dir_ + "/model.safetensors";
    testing::WriteBytes(path, image);
    return path;
  }
  // Open's error for `image`.
  absl::Status OpenError(const std::string& image) {
    absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Open(Write(image));
    EXPECT_FALSE(file.ok());
    return file.status();
  }
  std::vector<float> Values(const SafetensorsFile& file, const std::string& name) {
    absl::StatusOr<Tensor> t = file.ReadF32(name);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return {};
    const absl::Span<float> span = t->host_span<float>().value();
    return {span.begin(), span.end()};
  }

  std::string dir_;
};

TEST_F(SafetensorsFileTest, ReadsEveryFloatDtypeAsF32WithTheValuesWritten) {
  std::vector<uint16_t> bf16, f16;
  for (float x : {1.5f, -2.25f, 65504.0f}) {
    bf16.push_back(FloatToBFloat16Bits(x));
    f16.push_back(FloatToFloat16Bits(x));
  }
  const std::vector<SafetensorsEntry> entries = {
      {"a.weight", "F32", {2, 3}, F32Bytes({1, 2, 3, 4, 5, -6.5f})},
      {"b", "BF16", {3}, testing::ElementBytes(bf16)},
      {"c", "F16", {3, 1}, testing::ElementBytes(f16)},
      {"d", "F64", {2}, testing::ElementBytes(std::vector<double>{0.1, -3.0})},
      {"ids", "I64", {1}, testing::ElementBytes(std::vector<int64_t>{7})},
      {"empty", "F32", {0, 4}, ""},
  };
  ASSERT_OK_AND_ASSIGN(
      SafetensorsFile file,
      SafetensorsFile::Open(Write(SafetensorsImage(entries, R"({"format":"pt"})"))));
  ASSERT_EQ(file.entries().size(), 6u);
  EXPECT_EQ(file.entries().at("a.weight").shape, Shape({2, 3}));
  EXPECT_EQ(file.entries().at("c").dtype, "F16");
  EXPECT_THAT(file.metadata(),
              ElementsAre(std::pair<const std::string, std::string>("format", "pt")));
  EXPECT_THAT(Values(file, "a.weight"), ElementsAre(1, 2, 3, 4, 5, -6.5f));
  // bf16 keeps 8 bits of mantissa: 65504 rounds to 65536; f16 holds all three exactly.
  EXPECT_THAT(Values(file, "b"), ElementsAre(1.5f, -2.25f, 65536.0f));
  EXPECT_THAT(Values(file, "c"), ElementsAre(1.5f, -2.25f, 65504.0f));
  EXPECT_THAT(Values(file, "d"), ElementsAre(0.1f, -3.0f));
  EXPECT_TRUE(Values(file, "empty").empty());
  EXPECT_EQ(file.ReadF32("ids").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(file.ReadF32("ids").status().message(), HasSubstr("'ids' is I64"));
  EXPECT_EQ(file.ReadF32("none").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SafetensorsFileTest, RefusesMalformedHeadersNamingTheEntry) {
  const std::vector<SafetensorsEntry> one = {{"w", "F32", {2}, F32Bytes({1, 2})}};
  struct Case {
    std::string image;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"abc", "fewer than a header's 8"},
      {std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}", "header length"},
      {SafetensorsImageWithHeader("{\"w\": [", one), "not JSON"},
      {SafetensorsImageWithHeader("[1, 2]", one), "not a JSON object"},
      {SafetensorsImageWithHeader(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", one),
       "'w' has no dtype"},
      {SafetensorsImageWithHeader(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})",
                                  one),
       "unknown dtype 'F8_E4M3'"},
      {SafetensorsImageWithHeader(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                                  one),
       "not a dimension"},
      {SafetensorsImageWithHeader(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})",
                                  one),
       "not within the file's 8 bytes"},
      {SafetensorsImageWithHeader(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", one),
       "holds 8 bytes; its shape [3] of F32 takes 12"},
      {SafetensorsImageWithHeader(R"({"w":{"dtype":"F32","shape":[2]}})", one), "no data_offsets"},
      {SafetensorsImageWithHeader(R"({"__metadata__":{"n":1}})", {}), "'n' is not a string"},
  };
  for (const Case& c : cases) {
    const absl::Status error = OpenError(c.image);
    EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss) << c.message;
    EXPECT_THAT(error.message(), HasSubstr(c.message));
    EXPECT_THAT(error.message(), HasSubstr(dir_ + "/model.safetensors"));
  }
  EXPECT_EQ(SafetensorsFile::Open(dir_ + "/none.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SafetensorsFileTest, AFileCutAfterOpenIsDataLossOnRead) {
  const std::string image = SafetensorsImage({{"w", "F32", {2}, F32Bytes({1, 2})}});
  const std::string path = Write(image);
  ASSERT_OK_AND_ASSIGN(SafetensorsFile file, SafetensorsFile::Open(path));
  std::filesystem::resize_file(path, image.size() - 4);
  const absl::Status error = file.ReadF32("w").status();
  EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(error.message(), HasSubstr("'w' cannot be read"));
}

}  // namespace
}  // namespace usine
