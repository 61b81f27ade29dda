#include "runtime/core/crc32c.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/internal/crc32c_kernels.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::HasSubstr;

TEST(Crc32c, MatchesTheKnownAnswersOfRfc3720) {
  std::vector<uint8_t> bytes(32, 0x00);
  EXPECT_EQ(Crc32c(bytes), 0x8A9136AAu);
  bytes.assign(32, 0xFF);
  EXPECT_EQ(Crc32c(bytes), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) bytes[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(bytes), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) bytes[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(Crc32c(bytes), 0x113FDB5Cu);
  EXPECT_EQ(Crc32c(absl::string_view("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(absl::string_view("")), 0u);
}

// The 8-byte step and the byte step must agree for every length and alignment.
TEST(Crc32c, ExtendingPieceByPieceEqualsOneCall) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>((i * 131 + 7) % 256));
  const uint32_t whole = Crc32c(data);
  for (size_t split = 0; split <= data.size(); split += 37) {
    const absl::string_view head = absl::string_view(data).substr(0, split);
    const absl::string_view tail = absl::string_view(data).substr(split);
    EXPECT_EQ(
        Crc32cExtend(Crc32c(head), absl::Span<const uint8_t>(
                                       reinterpret_cast<const uint8_t*>(tail.data()), tail.size())),
        whole)
        << "split at " << split;
  }
  // Unaligned starts over the same bytes.
  for (size_t start = 1; start < 9; ++start) {
    uint32_t crc = 0;
    for (size_t i = start; i < data.size(); ++i) {
      crc = Crc32cExtend(
          crc, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()) + i, 1));
    }
    EXPECT_EQ(crc, Crc32c(absl::string_view(data).substr(start)));
  }
}

// Bit at a time, straight from the definition.
uint32_t ReferenceCrc32c(const uint8_t* p, size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
  }
  return ~crc;
}

// Lengths around the 48 KiB blocks of the three-stream path, at several alignments.
TEST(Crc32c, LargeBuffersMatchTheBitwiseDefinition) {
  std::vector<uint8_t> data(200 << 10);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  for (size_t start : {0, 1, 5}) {
    for (size_t n :
         {size_t{49151}, size_t{49152}, size_t{49153}, size_t{98304 + 13}, data.size() - 5}) {
      EXPECT_EQ(Crc32c(absl::Span<const uint8_t>(data.data() + start, n)),
                ReferenceCrc32c(data.data() + start, n))
          << "start " << start << " length " << n;
    }
  }
}

// Every kernel this cpu runs, from several registers, over lengths around its steps (the
// folding kernel's 256 bytes and 512-byte minimum, the streams' 48 KiB) at several alignments.
TEST(Crc32c, EveryKernelMatchesTheBitwiseDefinition) {
  using core_internal::Crc32cKernel;
  std::vector<uint8_t> data(100 << 10);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 2654435761u) >> 11);
  int kernels_run = 0;
  for (Crc32cKernel kernel :
       {Crc32cKernel::kSoftware, Crc32cKernel::kSse42, Crc32cKernel::kFoldAvx512}) {
    if (!core_internal::Crc32cKernelRuns(kernel)) continue;
    ++kernels_run;
    for (size_t start : {0, 3, 64}) {
      for (size_t n :
           {0, 1, 15, 255, 256, 511, 512, 513, 767, 768, 1024 + 100, 49152 + 300, 98304 + 777}) {
        const uint8_t* p = data.data() + start;
        const uint32_t expected = ReferenceCrc32c(p, n);
        EXPECT_EQ(core_internal::Crc32cExtendWith(kernel, 0, absl::MakeConstSpan(p, n)), expected)
            << "kernel " << static_cast<int>(kernel) << " start " << start << " length " << n;
        // Continued from the CRC of a head, which enters the first bytes' register.
        const size_t head = n / 3;
        EXPECT_EQ(core_internal::Crc32cExtendWith(kernel, ReferenceCrc32c(p, head),
                                                  absl::MakeConstSpan(p + head, n - head)),
                  expected)
            << "kernel " << static_cast<int>(kernel) << " start " << start << " length " << n
            << " after " << head;
      }
    }
  }
  EXPECT_GE(kernels_run, 1);
}

TEST(Crc32c, CombineJoinsTheCrcsOfTwoPieces) {
  const std::string data = "The quick brown fox jumps over the lazy dog, twice over.";
  for (size_t split : {size_t{0}, size_t{1}, size_t{20}, data.size()}) {
    const absl::string_view a = absl::string_view(data).substr(0, split);
    const absl::string_view b = absl::string_view(data).substr(split);
    EXPECT_EQ(Crc32cCombine(Crc32c(a), Crc32c(b), b.size()), Crc32c(data)) << split;
  }
}

TEST(Crc32c, OfAFileEqualsOfItsBytesAndErrorsNameThePath) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("usine_crc32c_test_" + std::to_string(::getpid())))
          .string();
  std::string data(3 << 20, '\0');  // Several read blocks.
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 2654435761u >> 24);
  std::ofstream(path, std::ios::binary)
      .write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_OK_AND_ASSIGN(uint32_t crc, Crc32cOfFile(path));
  EXPECT_EQ(crc, Crc32c(data));
  std::remove(path.c_str());
  const absl::StatusOr<uint32_t> missing = Crc32cOfFile(path);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(path));
}

}  // namespace
}  // namespace usine
