#include "runtime/cli/internal/printable_text.h"

#include <string>

#include "gtest/gtest.h"

namespace usine::cli_internal {
namespace {

TEST(PrintableTextTest, KeepsTextNewlinesTabsAndUtf8) {
  const std::string text = "The checkpoint\tis\nsaved \xc3\xa9t\xc3\xa9 ~";
  EXPECT_EQ(PrintableText(text), text);
}

TEST(PrintableTextTest, WritesEveryOtherControlByteAsHex) {
  EXPECT_EQ(PrintableText(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(PrintableText("\x1b[2J\r\x7f\x1f"), "\\x1b[2J\\x0d\\x7f\\x1f");
  EXPECT_EQ(PrintableText(""), "");
}

}  // namespace
}  // namespace usine::cli_internal
