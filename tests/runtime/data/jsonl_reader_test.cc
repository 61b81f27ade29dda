#include "runtime/data/jsonl_reader.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(ParseJsonlLine, ReturnsTheUnescapedStringOfTheTopLevelField) {
  ASSERT_OK_AND_ASSIGN(
      std::string text,
      ParseJsonlLine(R"({"id": 3, "text": "caf\u00e9 \"q\"\n\t", "x": [1]})", "text"));
  EXPECT_EQ(text, "caf\xc3\xa9 \"q\"\n\t");
  ASSERT_OK_AND_ASSIGN(text,
                       ParseJsonlLine(R"({"a.b": "dotted key", "a": {"b": "nested"}})", "a.b"));
  EXPECT_EQ(text, "dotted key") << "a dot is part of the key, not a path";
  ASSERT_OK_AND_ASSIGN(text, ParseJsonlLine(R"( {"t": "nul\u0000byte"} )", "t"));
  EXPECT_EQ(text, std::string("nul\0byte", 8));
}

TEST(ParseJsonlLine, SaysWhatIsWrong) {
  EXPECT_THAT(Message(ParseJsonlLine(R"({"text": "a",})", "text").status()),
              HasSubstr("not JSON (byte 14: syntax error"));
  EXPECT_THAT(Message(ParseJsonlLine("[1, 2]", "text").status()),
              HasSubstr("not a JSON object (got array)"));
  EXPECT_THAT(Message(ParseJsonlLine(R"({"body": "x"})", "text").status()),
              HasSubstr("no field \"text\""));
  EXPECT_THAT(Message(ParseJsonlLine(R"({"text": null})", "text").status()),
              HasSubstr("field \"text\" is not a string (got null)"));
  EXPECT_THAT(Message(ParseJsonlLine(R"({"text": {"s": "x"}})", "text").status()),
              HasSubstr("is not a string (got object)"));
  EXPECT_EQ(ParseJsonlLine("{} {}", "text").status().code(), absl::StatusCode::kInvalidArgument);
  // A number beyond double's range (found by the fuzzer: nlohmann throws out_of_range).
  EXPECT_THAT(Message(ParseJsonlLine(R"({"n": 1e99999, "text": "x"})", "text").status()),
              HasSubstr("not JSON (number overflow parsing '1e99999')"));
  // Invalid UTF-8 inside a JSON string is not JSON.
  EXPECT_THAT(Message(ParseJsonlLine("{\"text\": \"\xff\"}", "text").status()),
              HasSubstr("not JSON"));
}

class JsonlReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("usine_jsonl_test_" + std::to_string(::getpid()) + ".jsonl"))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void Write(const std::string& content) { std::ofstream(path_, std::ios::binary) << content; }
  std::string path_;
};

TEST_F(JsonlReaderTest, YieldsEveryGoodLineAndNamesPathAndLineOfEachBadOne) {
  Write(
      "{\"text\": \"one\"}\n"    // 1
      "\n"                       // 2: blank
      "{\"text\": \"two\"}\r\n"  // 3: CRLF
      "  \t\r\n"                 // 4: blank
      "{\"text\": 2}\n"          // 5: not a string
      "not json\n"               // 6
      "[\"text\"]\n"             // 7: not an object
      "{\"body\": \"x\"}\n"      // 8: no field
      "{\"text\": \"last\"}");   // 9: no final newline
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<JsonlReader> reader, JsonlReader::Open(path_));
  std::vector<std::string> texts, errors;
  std::string text;
  while (true) {
    absl::StatusOr<bool> more = reader->Next("text", &text);
    if (!more.ok()) {
      EXPECT_EQ(more.status().code(), absl::StatusCode::kInvalidArgument);
      errors.push_back(Message(more.status()));
      continue;
    }
    if (!*more) break;
    texts.push_back(text);
  }
  EXPECT_THAT(texts, ElementsAre("one", "two", "last"));
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_THAT(errors[0], HasSubstr(path_ + ":5: field \"text\" is not a string (got number)"));
  EXPECT_THAT(errors[1], HasSubstr(path_ + ":6: not JSON"));
  EXPECT_THAT(errors[2], HasSubstr(path_ + ":7: not a JSON object"));
  EXPECT_THAT(errors[3], HasSubstr(path_ + ":8: no field \"text\""));
  EXPECT_EQ(reader->bytes_read(), static_cast<int64_t>(std::filesystem::file_size(path_)));
}

TEST_F(JsonlReaderTest, NextLineGivesRawLinesWithTheirNumbers) {
  std::string long_text(3 << 20, 'x');  // Longer than the read buffer.
  Write("\n{\"text\": \"" + long_text + "\"}\n\n\n{}\n");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<JsonlReader> reader, JsonlReader::Open(path_));
  std::string line;
  int64_t number = 0;
  ASSERT_OK_AND_ASSIGN(bool more, reader->NextLine(&line, &number));
  ASSERT_TRUE(more);
  EXPECT_EQ(number, 2);
  EXPECT_EQ(line.size(), long_text.size() + 12);
  ASSERT_OK_AND_ASSIGN(more, reader->NextLine(&line, &number));
  ASSERT_TRUE(more);
  EXPECT_EQ(number, 5);
  EXPECT_EQ(line, "{}");
  ASSERT_OK_AND_ASSIGN(more, reader->NextLine(&line, &number));
  EXPECT_FALSE(more);
  ASSERT_OK_AND_ASSIGN(more, reader->NextLine(&line, &number));
  EXPECT_FALSE(more) << "stays at the end";
}

TEST_F(JsonlReaderTest, AFileThatCannotBeOpenedIsAnErrorNamingIt) {
  const absl::StatusOr<std::unique_ptr<JsonlReader>> missing = JsonlReader::Open(path_ + ".no");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(missing.status()), HasSubstr(path_ + ".no: cannot open"));
  // A directory (or a FIFO, which would block) is refused at once.
  const absl::StatusOr<std::unique_ptr<JsonlReader>> dir =
      JsonlReader::Open(std::filesystem::temp_directory_path().string());
  EXPECT_THAT(Message(dir.status()), HasSubstr(": cannot open: not a regular file"));
}

}  // namespace
}  // namespace usine
