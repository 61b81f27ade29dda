#include "runtime/data/gpt2_tokenizer.h"

#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/data/internal/pretokenize.h"
#include "tests/testing/device_test.h"
#include <nlohmann/json.hpp>

namespace usine {
namespace {

using data_internal::CharClass;
using data_internal::ClassifyAt;
using data_internal::Pretokenizer;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kDataDir = absl::StrCat(USINE_TEST_DATA_DIR, "/gpt2");
const std::string kVocabBpe = absl::StrCat(kDataDir, "/vocab.bpe");
const std::string kEncoderJson = absl::StrCat(kDataDir, "/encoder.json");

// Loaded once: the vocabulary takes a moment to parse, and the tokenizer is immutable.
const Gpt2Tokenizer& Tokenizer() {
  static const Gpt2Tokenizer* tokenizer = [] {
    absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> loaded =
        Gpt2Tokenizer::Load(kVocabBpe, kEncoderJson);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    return loaded.ok() ? loaded->release() : nullptr;
  }();
  if (tokenizer == nullptr) std::abort();
  return *tokenizer;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

struct Fixture {
  std::string name;
  std::string text;
  std::vector<int32_t> ids;
};

// fixtures.json: texts with the ids gpt-3-encoder gives them (see make_fixtures.js).
std::vector<Fixture> ReadFixtures() {
  nlohmann::json json = nlohmann::json::parse(ReadText(absl::StrCat(kDataDir, "/fixtures.json")));
  std::vector<Fixture> fixtures;
  for (const nlohmann::json& f : json) {
    fixtures.push_back({f.at("name"), f.at("text"), f.at("ids").get<std::vector<int32_t>>()});
  }
  return fixtures;
}

std::vector<std::string> Pieces(absl::string_view text) {
  std::vector<std::string> pieces;
  Pretokenizer pretokenizer(text);
  absl::string_view piece;
  while (pretokenizer.Next(&piece)) pieces.emplace_back(piece);
  return pieces;
}

TEST(Gpt2Tokenizer, EncodesEveryFixtureToTheReferenceIds) {
  const std::vector<Fixture> fixtures = ReadFixtures();
  ASSERT_GE(fixtures.size(), 20u);
  for (const Fixture& f : fixtures) {
    SCOPED_TRACE(f.name);
    ASSERT_FALSE(f.ids.empty());
    EXPECT_EQ(Tokenizer().Encode(f.text), f.ids);
    ASSERT_OK_AND_ASSIGN(std::string decoded, Tokenizer().Decode(f.ids));
    EXPECT_EQ(decoded, f.text);
  }
}

TEST(Gpt2Tokenizer, KnownIdsAndVocabulary) {
  EXPECT_EQ(Tokenizer().vocab_size(), 50257);
  EXPECT_THAT(Tokenizer().Encode("Hello world"), ElementsAre(15496, 995));
  EXPECT_THAT(Tokenizer().Encode(""), ElementsAre());
  ASSERT_OK_AND_ASSIGN(std::string eot, Tokenizer().Decode({Gpt2Tokenizer::kEndOfText}));
  EXPECT_EQ(eot, "<|endoftext|>");
  EXPECT_THAT(Tokenizer().Encode("<|endoftext|>"), Not(Contains(Gpt2Tokenizer::kEndOfText)));
}

TEST(Gpt2Tokenizer, EncodeToAppends) {
  std::vector<int32_t> ids = {7};
  Tokenizer().EncodeTo("Hello world", &ids);
  EXPECT_THAT(ids, ElementsAre(7, 15496, 995));
}

TEST(Gpt2Tokenizer, DecodeNamesAnIdOutOfRange) {
  absl::StatusOr<std::string> text = Tokenizer().Decode({15496, 50257});
  EXPECT_TRUE(absl::IsOutOfRange(text.status())) << text.status();
  EXPECT_THAT(text.status().message(), HasSubstr("id 50257 at index 1"));
  EXPECT_TRUE(absl::IsOutOfRange(Tokenizer().Decode({-1}).status()));
}

// Any bytes round-trip: random bytes (mostly invalid UTF-8), and byte strings drawn from
// pieces that make valid and truncated multi-byte characters, spaces and apostrophes.
TEST(Gpt2Tokenizer, RoundTripsAnyBytes) {
  const std::vector<std::string> parts = {"a",
                                          "Z",
                                          "7",
                                          " ",
                                          "  ",
                                          "\t",
                                          "\n",
                                          "\r\n",
                                          "'",
                                          "'s",
                                          "'ll",
                                          ".",
                                          "\xc3\xa9",
                                          "\xe6\x97\xa5",
                                          "\xf0\x9f\x98\x80",
                                          "\xe2\x80\x8d",
                                          "\xe3\x80\x80",
                                          "\xc2\x85",
                                          "\xc3",
                                          "\xe6\x97",
                                          "\xf0\x9f",
                                          "\x80",
                                          "\xff",
                                          "\xed\xa0\x80",
                                          "\xc0\xaf",
                                          "\xf4\x90\x80\x80",
                                          std::string(1, '\0')};
  std::mt19937 rng(20240520);
  for (int trial = 0; trial < 2000; ++trial) {
    const int length = trial < 1000 ? trial % 50 : static_cast<int>(rng() % 3000);
    std::string bytes;
    for (int i = 0; i < length; ++i) {
      if (trial % 2 == 0) {
        bytes.push_back(static_cast<char>(rng() & 0xFF));
      } else {
        bytes += parts[rng() % parts.size()];
      }
    }
    const std::vector<int32_t> ids = Tokenizer().Encode(bytes);
    ASSERT_OK_AND_ASSIGN(std::string decoded, Tokenizer().Decode(ids));
    ASSERT_EQ(decoded, bytes) << "trial " << trial;
  }
}

// A long text takes the path that reuses the ids of repeated pieces; it must give the same.
TEST(Gpt2Tokenizer, LongTextsEncodeLikeTheirParagraphs) {
  const Fixture prose = ReadFixtures().front();
  std::string text;
  std::vector<int32_t> expected;
  while (text.size() < (64 << 10)) {
    text += prose.text + "\n";  // "\n" (198) is a piece of its own between two sentences
    expected.insert(expected.end(), prose.ids.begin(), prose.ids.end());
    expected.push_back(198);
  }
  EXPECT_EQ(Tokenizer().Encode(text), expected);
}

// One piece of 200 kB: BPE's heap keeps this O(n log n) (exactness on long runs is in the
// fixtures).
TEST(Gpt2Tokenizer, EncodesALongRunWithoutSpaces) {
  std::string run;
  for (int i = 0; i < 200000; ++i) run.push_back("abcdefghij"[(i * 7 + i / 3) % 10]);
  const std::vector<int32_t> ids = Tokenizer().Encode(run);
  EXPECT_LT(ids.size(), run.size());
  ASSERT_OK_AND_ASSIGN(std::string decoded, Tokenizer().Decode(ids));
  EXPECT_EQ(decoded, run);
}

TEST(Gpt2Tokenizer, ConcurrentEncodesAgree) {
  const std::string text = ReadFixtures().front().text;
  const std::vector<int32_t> expected = Tokenizer().Encode(text);
  std::vector<std::vector<int32_t>> results(8);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&text, &result] {
      for (int i = 0; i < 50; ++i) result = Tokenizer().Encode(text);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

TEST(Gpt2Pretokenizer, SplitsLikeGpt2sPattern) {
  EXPECT_THAT(Pieces("Hello world"), ElementsAre("Hello", " world"));
  EXPECT_THAT(Pieces("  a"), ElementsAre(" ", " a"));
  EXPECT_THAT(Pieces("a   "), ElementsAre("a", "   "));
  EXPECT_THAT(Pieces("a  \n b"), ElementsAre("a", "  \n", " b"));
  EXPECT_THAT(Pieces("x\ny"), ElementsAre("x", "\n", "y"));
  EXPECT_THAT(Pieces("x \ty"), ElementsAre("x", " ", "\t", "y"));
  EXPECT_THAT(Pieces("3.14 1,000"), ElementsAre("3", ".", "14", " 1", ",", "000"));
  EXPECT_THAT(Pieces("a?!  \"b"), ElementsAre("a", "?!", " ", " \"", "b"));
  EXPECT_THAT(Pieces("\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"),
              ElementsAre("\xc3\xa9t\xc3\xa9", " \xe6\x97\xa5\xe6\x9c\xac"));
}

TEST(Gpt2Pretokenizer, ContractionsAreLowercaseOnly) {
  EXPECT_THAT(Pieces("I'm they'll"), ElementsAre("I", "'m", " they", "'ll"));
  EXPECT_THAT(Pieces("DON'T"), ElementsAre("DON", "'", "T"));
  EXPECT_THAT(Pieces("'sam"), ElementsAre("'s", "am"));
  EXPECT_THAT(Pieces("?'s"), ElementsAre("?'", "s"));
  EXPECT_THAT(Pieces(" 's"), ElementsAre(" '", "s"));
  EXPECT_THAT(Pieces("'r"), ElementsAre("'", "r"));
}

TEST(Gpt2Pretokenizer, InvalidUtf8BytesAreOtherCharacters) {
  EXPECT_THAT(Pieces("a\xff\xfe"
                     "b"),
              ElementsAre("a", "\xff\xfe", "b"));
  EXPECT_THAT(Pieces(" \xff"
                     "z"),
              ElementsAre(" \xff", "z"));
  // A truncated three-byte character, then letters.
  EXPECT_THAT(Pieces("\xe2\x80"
                     "ab"),
              ElementsAre("\xe2\x80", "ab"));
  // An encoded surrogate is not UTF-8; its bytes join the punctuation around them.
  EXPECT_THAT(Pieces("x!\xed\xa0\x80!"), ElementsAre("x", "!\xed\xa0\x80!"));
}

// ECMAScript's \s, not Unicode's White_Space: U+0085 is an other character, U+00A0 and
// U+FEFF are whitespace.
TEST(Gpt2Pretokenizer, WhitespaceIsEcmaScripts) {
  EXPECT_THAT(Pieces("a \xc2\x85"
                     "b"),
              ElementsAre("a", " \xc2\x85", "b"));
  EXPECT_THAT(Pieces("a \xc2\xa0"
                     "b"),
              ElementsAre("a", " ", "\xc2\xa0", "b"));
  EXPECT_THAT(Pieces("a\xef\xbb\xbf\xef\xbb\xbf"
                     "b"),
              ElementsAre("a", "\xef\xbb\xbf", "\xef\xbb\xbf", "b"));
}

TEST(Gpt2Pretokenizer, ClassifiesCharacters) {
  auto cls = [](absl::string_view s) { return ClassifyAt(s, 0).cls; };
  EXPECT_EQ(cls("\xc3\xa9"), CharClass::kLetter);         // é
  EXPECT_EQ(cls("\xe6\x97\xa5"), CharClass::kLetter);     // 日
  EXPECT_EQ(cls("\xc2\xbd"), CharClass::kNumber);         // ½ (No)
  EXPECT_EQ(cls("\xe2\x85\xab"), CharClass::kNumber);     // Ⅻ (Nl)
  EXPECT_EQ(cls("\xd9\xa3"), CharClass::kNumber);         // ٣ (Nd)
  EXPECT_EQ(cls("\xe3\x80\x80"), CharClass::kSpace);      // ideographic space
  EXPECT_EQ(cls("\xe2\x80\xa8"), CharClass::kSpace);      // line separator
  EXPECT_EQ(cls("\xe2\x80\x8b"), CharClass::kOther);      // zero-width space (Cf)
  EXPECT_EQ(cls("\xcc\x81"), CharClass::kOther);          // combining acute (Mn)
  EXPECT_EQ(cls("\xf0\x9f\x98\x80"), CharClass::kOther);  // 😀
  EXPECT_EQ(ClassifyAt("\xf0\x9f\x98", 0).length, 1);     // truncated: one byte
}

class Gpt2TokenizerLoad : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content) {
    const std::string path = absl::StrCat(::testing::TempDir(), "/gpt2_", name);
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
};

TEST_F(Gpt2TokenizerLoad, MissingFileIsNamed) {
  absl::Status status = Gpt2Tokenizer::Load(kVocabBpe, "/nonexistent/encoder.json").status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/encoder.json"));
  status = Gpt2Tokenizer::Load("/nonexistent/vocab.bpe", kEncoderJson).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/vocab.bpe"));
}

TEST_F(Gpt2TokenizerLoad, BrokenJsonIsNamedWithTheParsersMessage) {
  const std::string path = Write("broken.json", "{\"a\": 1,\n\"b\": ");
  absl::Status status = Gpt2Tokenizer::Load(kVocabBpe, path).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_THAT(status.message(), HasSubstr("parse error at line 2"));
}

TEST_F(Gpt2TokenizerLoad, BadIdIsNamed) {
  const std::string path = Write("bad_id.json", "{\"a\": 0, \"b\": \"1\"}");
  absl::Status status = Gpt2Tokenizer::Load(kVocabBpe, path).status();
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat(path, ": token \"b\": id \"1\"")));
}

TEST_F(Gpt2TokenizerLoad, MalformedMergeLineIsNamed) {
  const std::string path = Write("malformed.bpe", "#version: 0.2\n\xc4\xa0 t\nthree parts here\n");
  absl::Status status = Gpt2Tokenizer::Load(path, kEncoderJson).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat(path, ":3: expected two tokens")));
}

TEST_F(Gpt2TokenizerLoad, MergeOfUnknownTokenIsNamed) {
  const std::string path = Write("unknown.bpe", "#version: 0.2\nqqqx zzzq\n");
  absl::Status status = Gpt2Tokenizer::Load(path, kEncoderJson).status();
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat(path, ":2: token \"qqqx\" is not in ", kEncoderJson)));
}

TEST_F(Gpt2TokenizerLoad, MergeOfUnformedTokenIsNamed) {
  // "Ġt" and "he" are in the vocabulary, but no earlier line makes them.
  const std::string path = Write("unformed.bpe", "#version: 0.2\n\xc4\xa0t he\n");
  absl::Status status = Gpt2Tokenizer::Load(path, kEncoderJson).status();
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat(path, ":2: token \"\xc4\xa0t\"")));
  EXPECT_THAT(status.message(), HasSubstr("neither a byte nor made by an earlier merge"));
}

TEST_F(Gpt2TokenizerLoad, RepeatedMergeIsNamed) {
  const std::string path = Write("repeated.bpe", "#version: 0.2\n\xc4\xa0 t\n\xc4\xa0 t\n");
  absl::Status status = Gpt2Tokenizer::Load(path, kEncoderJson).status();
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat(path, ":3: the pair")));
}

}  // namespace
}  // namespace usine
