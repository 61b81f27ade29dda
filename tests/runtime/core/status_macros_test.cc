#include "runtime/core/status_macros.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace usine {
namespace {

absl::Status FailIf(bool fail) { return fail ? absl::NotFoundError("missing") : absl::OkStatus(); }

absl::Status Twice(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  ++*reached;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(bool fail) {
  if (fail) return absl::InvalidArgumentError("bad");
  return std::make_unique<int>(7);
}

absl::StatusOr<int> Unwrap(bool fail) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> p, MakeInt(fail));  // A move-only value.
  return *p + 1;
}

TEST(StatusMacros, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_TRUE(Twice(false, &reached).ok());
  EXPECT_EQ(reached, 1);
  const absl::Status s = Twice(true, &reached);
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacros, AssignOrReturnMovesTheValueOrPropagates) {
  EXPECT_EQ(*Unwrap(false), 8);
  const absl::StatusOr<int> bad = Unwrap(true);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_EQ(bad.status().message(), "bad");
}

TEST(StatusMacros, WithContextPrefixesAndKeepsTheCode) {
  const absl::Status s = WithContext(absl::DataLossError("crc mismatch"), "shard_0001.bin");
  EXPECT_TRUE(absl::IsDataLoss(s));
  EXPECT_EQ(s.message(), "shard_0001.bin: crc mismatch");
  EXPECT_TRUE(WithContext(absl::OkStatus(), "x").ok());
}

TEST(StatusMacros, SourceLocationDropsTheDirectory) {
  EXPECT_EQ(SourceLocation("/a/b/tensor.cc", 42), "tensor.cc:42");
  EXPECT_EQ(SourceLocation("tensor.cc", 7), "tensor.cc:7");
}

}  // namespace
}  // namespace usine
