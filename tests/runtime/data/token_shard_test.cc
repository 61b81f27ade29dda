#include "runtime/data/token_shard.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

class TokenShardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("usine_shard_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // The bytes of a file, to corrupt and write back.
  std::vector<char> Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(in), {});
  }
  void Write(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
  }
  std::string Error(const std::string& path, int64_t vocab = 50257) {
    return std::string(TokenShard::Open(path, vocab).status().message());
  }

  std::filesystem::path dir_;
};

std::vector<int32_t> Tokens(int n, int32_t modulus) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7919) % modulus;
  return t;
}

TEST_F(TokenShardTest, RoundTripsBothWidthsInLlmcLayout) {
  const std::vector<int32_t> small = Tokens(100003, 50257);
  ASSERT_OK(WriteTokenShard(Path("a.bin"), small, TokenWidth::kUint16));
  EXPECT_EQ(std::filesystem::file_size(Path("a.bin")), 1024u + 2 * small.size());
  ASSERT_OK_AND_ASSIGN(TokenShard a, TokenShard::Open(Path("a.bin"), 50257));
  EXPECT_EQ(a.size(), 100003);
  EXPECT_EQ(a.width(), TokenWidth::kUint16);
  std::vector<int32_t> back(small.size());
  a.CopyTokens(0, a.size(), back.data());
  EXPECT_EQ(back, small);
  EXPECT_EQ(a.token(12345), small[12345]);
  // The header is llm.c's: magic, version 1, count, zeros.
  const std::vector<char> bytes = Read(Path("a.bin"));
  int32_t header[256];
  std::memcpy(header, bytes.data(), sizeof(header));
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 100003);
  for (int i = 3; i < 256; ++i) ASSERT_EQ(header[i], 0);

  const std::vector<int32_t> big = Tokens(5001, 200000);
  ASSERT_OK(WriteTokenShard(Path("b.bin"), big, TokenWidth::kUint32));
  ASSERT_OK_AND_ASSIGN(TokenShard b, TokenShard::Open(Path("b.bin"), 200000));
  EXPECT_EQ(b.width(), TokenWidth::kUint32);
  std::vector<int32_t> middle(10);
  b.CopyTokens(100, 10, middle.data());
  EXPECT_EQ(middle, std::vector<int32_t>(big.begin() + 100, big.begin() + 110));
  EXPECT_EQ(TokenWidthFor(50257), TokenWidth::kUint16);
  EXPECT_EQ(TokenWidthFor(65537), TokenWidth::kUint32);
}

TEST_F(TokenShardTest, WritingLeavesNoTemporaryAndRejectsIdsThatDoNotFit) {
  ASSERT_OK(WriteTokenShard(Path("a.bin"), Tokens(10, 100), TokenWidth::kUint16));
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
  const absl::Status too_big = WriteTokenShard(Path("c.bin"), {1, 70000}, TokenWidth::kUint16);
  EXPECT_THAT(std::string(too_big.message()), HasSubstr("token 1 = 70000 does not fit"));
  EXPECT_FALSE(std::filesystem::exists(Path("c.bin")));
  EXPECT_FALSE(WriteTokenShard(Path("no/such/dir/x.bin"), {1}, TokenWidth::kUint16).ok());
}

TEST_F(TokenShardTest, CorruptShardsAreRejectedNamingTheFileAndOffset) {
  ASSERT_OK(WriteTokenShard(Path("good.bin"), Tokens(1000, 50000), TokenWidth::kUint16));
  const std::vector<char> good = Read(Path("good.bin"));

  std::vector<char> bad = good;
  bad[0] ^= 1;
  Write(Path("magic.bin"), bad);
  EXPECT_THAT(Error(Path("magic.bin")), HasSubstr("magic.bin: magic 20240521 at offset 0"));

  bad = good;
  bad[4] = 7;
  Write(Path("version.bin"), bad);
  EXPECT_THAT(Error(Path("version.bin")), HasSubstr("version 7 at offset 4"));

  bad = std::vector<char>(good.begin(), good.end() - 3);
  Write(Path("truncated.bin"), bad);
  EXPECT_THAT(Error(Path("truncated.bin")),
              HasSubstr("says 1000 tokens (3024 bytes) but the file has 3021 bytes (truncated)"));

  bad = good;
  bad.push_back(0);
  Write(Path("long.bin"), bad);
  EXPECT_THAT(Error(Path("long.bin")), HasSubstr("but the file has 3025 bytes"));

  Write(Path("short.bin"), std::vector<char>(good.begin(), good.begin() + 100));
  EXPECT_THAT(Error(Path("short.bin")), HasSubstr("truncated header (100 bytes"));

  EXPECT_THAT(Error(Path("good.bin"), /*vocab=*/40000), HasSubstr("at offset"));
  EXPECT_THAT(Error(Path("good.bin"), 40000), HasSubstr("is not below the vocabulary size 40000"));
  EXPECT_THAT(Error(Path("missing.bin")), HasSubstr("missing.bin"));

  // A uint32 id of 2^31 or more (found by the fuzzer: it reads back as a negative int32).
  ASSERT_OK(WriteTokenShard(Path("wide.bin"), {1, 2, 3}, TokenWidth::kUint32));
  bad = Read(Path("wide.bin"));
  bad[1024 + 4 + 3] = static_cast<char>(0x80);  // Token 1 becomes 0x80000002.
  Write(Path("wide.bin"), bad);
  EXPECT_THAT(Error(Path("wide.bin")), HasSubstr("token id 2147483650 at offset 1028"));
  EXPECT_TRUE(TokenShard::Open(Path("good.bin"), 50000).ok());
}

TEST_F(TokenShardTest, AnEmptyShardIsValid) {
  ASSERT_OK(WriteTokenShard(Path("empty.bin"), {}, TokenWidth::kUint16));
  ASSERT_OK_AND_ASSIGN(TokenShard s, TokenShard::Open(Path("empty.bin"), 10));
  EXPECT_EQ(s.size(), 0);
}

}  // namespace
}  // namespace usine
