#include "runtime/data/prep.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/core/crc32c.h"
#include "runtime/data/internal/prep_sources.h"
#include "tests/runtime/data/prep_test_util.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

namespace fs = std::filesystem;
using data_internal::AssignSources;
using data_internal::HashesToValidation;
using data_internal::PrepSource;
using testing::CountFiles;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::SplitDocuments;
using testing::SplitTokens;
using testing::TestTokenizer;
using ::testing::UnorderedElementsAreArray;
using testing::WriteFile;

// Document i of a corpus: varied words, punctuation, digits and non-ASCII text.
std::string DocumentText(int i) {
  std::string text = absl::StrCat("Document ", i, ": the café of ", i * 37 % 101, " rooms");
  for (int w = 0; w < i % 7; ++w) absl::StrAppend(&text, " and ", w, "'s \"quoted\" words");
  if (i % 3 == 0) absl::StrAppend(&text, ".\n\nA second paragraph — naïve 東京.");
  return text;
}

std::string JsonlLine(const std::string& text) {
  std::string escaped;
  for (char c : text) {
    if (c == '"' || c == '\\') escaped.push_back('\\');
    if (c == '\n') {
      escaped += "\\n";
      continue;
    }
    escaped.push_back(c);
  }
  return absl::StrCat("{\"id\": 1, \"text\": \"", escaped, "\"}\n");
}

class PrepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("usine_prep_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  PrepOptions Options(std::vector<std::string> inputs, const std::string& out) const {
    PrepOptions options;
    options.inputs = std::move(inputs);
    options.out_dir = Path(out);
    options.shard_tokens = 50;
    options.threads = 2;
    options.vocab_bpe_path = testing::kGpt2Dir + "/vocab.bpe";
    options.encoder_json_path = testing::kGpt2Dir + "/encoder.json";
    return options;
  }

  // `n` documents: every fifth a text file, the rest lines of three JSONL files.
  std::vector<std::string> WriteCorpus(const std::string& name, int n) {
    std::vector<std::string> documents;
    std::string jsonl[3];
    for (int i = 0; i < n; ++i) {
      documents.push_back(DocumentText(i));
      if (i % 5 == 0) {
        WriteFile(dir_ / name / absl::StrCat("text/doc", i, ".txt"), documents.back());
      } else {
        jsonl[i % 3] += JsonlLine(documents.back());
      }
    }
    for (int k = 0; k < 3; ++k)
      WriteFile(dir_ / name / absl::StrCat("part", k, ".jsonl"), jsonl[k]);
    return documents;
  }

  std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
  }

  fs::path dir_;
};

TEST_F(PrepTest, ShardsHoldEveryDocumentAfterAnEotInInputOrder) {
  WriteFile(dir_ / "in/b.txt", "Second file.\nTwo lines.");
  WriteFile(dir_ / "in/a.txt", "First file, alphabetically.");
  WriteFile(dir_ / "in/sub/c.jsonl",
            "{\"text\": \"line one\"}\n\n{\"text\": \"\"}\n{\"text\": \"line three \\u00e9\"}\n");
  WriteFile(dir_ / "in/empty.txt", "");
  WriteFile(dir_ / "in/.hidden.txt", "not read");
  WriteFile(dir_ / "in/.git/config", "not read either");
  WriteFile(dir_ / "z.txt", "A file named on its own, after the directory.");

  PrepOptions options = Options({Path("in"), Path("z.txt")}, "out");
  options.shard_tokens = 7;
  ASSERT_OK_AND_ASSIGN(PrepManifest manifest, Prep(options, TestTokenizer()));

  const std::vector<std::string> expected = {
      "First file, alphabetically.", "Second file.\nTwo lines.", "line one", "line three \xc3\xa9",
      "A file named on its own, after the directory."};
  std::vector<int32_t> expected_tokens;
  for (const std::string& text : expected) {
    expected_tokens.push_back(Gpt2Tokenizer::kEndOfText);
    TestTokenizer().EncodeTo(text, &expected_tokens);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<int32_t> tokens,
                       SplitTokens(options.out_dir, manifest, DataSplit::kTrain));
  EXPECT_EQ(tokens, expected_tokens) << "EOT before each document, in sorted input order";
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> documents,
                       SplitDocuments(options.out_dir, manifest, DataSplit::kTrain));
  EXPECT_EQ(documents, expected);

  // Full shards of shard_tokens, then a shorter last one; names, counts and checksums.
  const int64_t total = static_cast<int64_t>(expected_tokens.size());
  ASSERT_EQ(static_cast<int64_t>(manifest.shards.size()), (total + 6) / 7);
  int64_t offset = 0;
  for (size_t i = 0; i < manifest.shards.size(); ++i) {
    const PrepShard& shard = manifest.shards[i];
    EXPECT_EQ(shard.file, absl::StrCat("train_r0000_", absl::StrFormat("%06d", i), ".bin"));
    EXPECT_EQ(shard.split, DataSplit::kTrain);
    EXPECT_EQ(shard.tokens, std::min<int64_t>(7, total - offset));
    EXPECT_EQ(shard.documents, std::count(expected_tokens.begin() + offset,
                                          expected_tokens.begin() + offset + shard.tokens,
                                          Gpt2Tokenizer::kEndOfText));
    ASSERT_OK_AND_ASSIGN(uint32_t crc, Crc32cOfFile(options.out_dir + "/" + shard.file));
    EXPECT_EQ(shard.crc32c, crc);
    offset += shard.tokens;
  }
  EXPECT_EQ(manifest.train.tokens, total);
  EXPECT_EQ(manifest.train.documents, 5);
  EXPECT_EQ(manifest.train.shards, static_cast<int64_t>(manifest.shards.size()));
  EXPECT_EQ(manifest.val.documents, 0);
  EXPECT_EQ(manifest.text_files, 4);  // a, b, empty, z
  EXPECT_EQ(manifest.jsonl_files, 1);
  EXPECT_EQ(manifest.vocab_size, 50257);
  EXPECT_EQ(manifest.token_width, TokenWidth::kUint16);
  ASSERT_OK_AND_ASSIGN(uint32_t vocab_crc, Crc32cOfFile(options.vocab_bpe_path));
  EXPECT_EQ(manifest.vocab_bpe.crc32c, vocab_crc);
  EXPECT_EQ(manifest.encoder_json.path, options.encoder_json_path);
  EXPECT_EQ(CountFiles(options.out_dir, ".bin"), static_cast<int>(manifest.shards.size()));

  // manifest.json holds what Prep returned.
  ASSERT_OK_AND_ASSIGN(PrepManifest on_disk, ReadPrepManifest(options.out_dir + "/manifest.json"));
  EXPECT_EQ(on_disk.shards.size(), manifest.shards.size());
  EXPECT_EQ(on_disk.shards.back().crc32c, manifest.shards.back().crc32c);
  EXPECT_EQ(on_disk.shards.back().file, manifest.shards.back().file);
  EXPECT_EQ(on_disk.train.tokens, manifest.train.tokens);
  EXPECT_EQ(on_disk.encoder_json.crc32c, manifest.encoder_json.crc32c);
  EXPECT_EQ(on_disk.input_bytes, manifest.input_bytes);
  EXPECT_THAT(Read(options.out_dir + "/manifest.json"),
              HasSubstr("\"format\": \"usine-token-shards\""));
}

TEST_F(PrepTest, ValidationGetsItsFractionOfDocumentsChosenByHash) {
  const std::vector<std::string> documents = WriteCorpus("in", 400);
  PrepOptions options = Options({Path("in")}, "out");
  options.val_fraction = 0.25;
  ASSERT_OK_AND_ASSIGN(PrepManifest manifest, Prep(options, TestTokenizer()));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> train,
                       SplitDocuments(options.out_dir, manifest, DataSplit::kTrain));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> val,
                       SplitDocuments(options.out_dir, manifest, DataSplit::kVal));
  // 100 expected; the binomial's standard deviation is 8.7.
  EXPECT_GT(val.size(), 65u);
  EXPECT_LT(val.size(), 135u);
  EXPECT_EQ(manifest.val.documents, static_cast<int64_t>(val.size()));
  EXPECT_EQ(manifest.train.documents, static_cast<int64_t>(train.size()));
  std::vector<std::string> all = train;
  all.insert(all.end(), val.begin(), val.end());
  EXPECT_THAT(all, UnorderedElementsAreArray(documents)) << "each document exactly once";
  for (const PrepShard& shard : manifest.shards) {
    EXPECT_THAT(shard.file, HasSubstr(shard.split == DataSplit::kVal ? "val_r0000_" : "train_"));
  }
  // doc5.txt is not the first input (part0.jsonl is), so its split is the hash's.
  const bool doc5_val = std::count(val.begin(), val.end(), DocumentText(5)) == 1;
  EXPECT_EQ(doc5_val, HashesToValidation(Path("in") + "/text/doc5.txt", 0, 0.25));
}

TEST_F(PrepTest, ValidationIsNeverEmptyWhenAsked) {
  WriteFile(dir_ / "in/a.txt", "alpha");
  WriteFile(dir_ / "in/b.txt", "beta");
  PrepOptions options = Options({Path("in")}, "out");
  options.val_fraction = 1e-9;
  ASSERT_OK_AND_ASSIGN(PrepManifest manifest, Prep(options, TestTokenizer()));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> val,
                       SplitDocuments(options.out_dir, manifest, DataSplit::kVal));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> train,
                       SplitDocuments(options.out_dir, manifest, DataSplit::kTrain));
  EXPECT_THAT(val, ElementsAre("alpha")) << "the first document of the first input";
  EXPECT_THAT(train, ElementsAre("beta"));
}

TEST_F(PrepTest, OutputIsTheSameForOneAndFourThreads) {
  WriteCorpus("in", 300);  // Several batches per JSONL file.
  PrepOptions one = Options({Path("in")}, "one");
  one.threads = 1;
  one.val_fraction = 0.1;
  PrepOptions four = one;
  four.threads = 4;
  four.out_dir = Path("four");
  ASSERT_OK_AND_ASSIGN(PrepManifest a, Prep(one, TestTokenizer()));
  ASSERT_OK_AND_ASSIGN(PrepManifest b, Prep(four, TestTokenizer()));
  ASSERT_GT(a.shards.size(), 10u);
  EXPECT_EQ(Read(one.out_dir + "/manifest.json"), Read(four.out_dir + "/manifest.json"));
  for (const PrepShard& shard : a.shards) {
    EXPECT_EQ(Read(one.out_dir + "/" + shard.file), Read(four.out_dir + "/" + shard.file))
        << shard.file;
  }
}

TEST_F(PrepTest, AnUnreadableFileIsFatalByDefaultAndSkippedWithSkip) {
  WriteCorpus("in", 20);
  fs::create_symlink(Path("nowhere.txt"), dir_ / "in/broken.txt");  // Listed, cannot be opened.
  PrepOptions options = Options({Path("in")}, "out");
  const absl::StatusOr<PrepManifest> fatal = Prep(options, TestTokenizer());
  EXPECT_EQ(fatal.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(fatal.status().message()),
              HasSubstr(Path("in") + "/broken.txt: cannot open: No such file or directory"));
  EXPECT_EQ(CountFiles(options.out_dir, ".bin"), 0) << "the shards written are removed";
  EXPECT_EQ(CountFiles(options.out_dir, "manifest.json"), 0);

  options.on_error = OnError::kSkip;
  ASSERT_OK_AND_ASSIGN(PrepManifest manifest, Prep(options, TestTokenizer()));
  ASSERT_EQ(manifest.skipped.size(), 1u);
  EXPECT_EQ(manifest.skipped[0].path, Path("in") + "/broken.txt");
  EXPECT_EQ(manifest.skipped[0].line, 0);
  EXPECT_EQ(manifest.skipped[0].reason, "cannot open: No such file or directory");
  EXPECT_EQ(manifest.train.documents, 20);
  ASSERT_OK_AND_ASSIGN(PrepManifest on_disk, ReadPrepManifest(options.out_dir + "/manifest.json"));
  ASSERT_EQ(on_disk.skipped.size(), 1u);
  EXPECT_EQ(on_disk.skipped[0].reason, manifest.skipped[0].reason);

  // An input that does not exist at all.
  options = Options({Path("in"), Path("missing")}, "out2");
  EXPECT_THAT(std::string(Prep(options, TestTokenizer()).status().message()),
              HasSubstr(Path("missing") + ": No such file or directory"));
}

TEST_F(PrepTest, ABadJsonlLineIsFatalByDefaultAndSkippedWithSkip) {
  WriteFile(dir_ / "in/a.jsonl",
            "{\"text\": \"good one\"}\n"
            "\n"
            "{\"text\": \"truncated\n"
            "{\"body\": \"no text field\"}\n"
            "{\"text\": \"good two\"}\n");
  WriteFile(dir_ / "in/b.txt", "after the JSONL file");
  PrepOptions options = Options({Path("in")}, "out");
  const absl::StatusOr<PrepManifest> fatal = Prep(options, TestTokenizer());
  EXPECT_EQ(fatal.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fatal.status().message()),
              HasSubstr(Path("in") + "/a.jsonl:3: not JSON (byte "));
  EXPECT_EQ(CountFiles(options.out_dir, ".bin"), 0);

  options.on_error = OnError::kSkip;
  ASSERT_OK_AND_ASSIGN(PrepManifest manifest, Prep(options, TestTokenizer()));
  ASSERT_EQ(manifest.skipped.size(), 2u);
  EXPECT_EQ(manifest.skipped[0].line, 3);
  EXPECT_THAT(manifest.skipped[0].reason, HasSubstr("not JSON"));
  EXPECT_EQ(manifest.skipped[1].line, 4);
  EXPECT_EQ(manifest.skipped[1].reason, "no field \"text\"");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> documents,
                       SplitDocuments(options.out_dir, manifest, DataSplit::kTrain));
  EXPECT_THAT(documents, ElementsAre("good one", "good two", "after the JSONL file"));
}

TEST_F(PrepTest, ProgressReachesTheTotalWithTheManifestsTokens) {
  WriteCorpus("in", 200);
  PrepOptions options = Options({Path("in")}, "out");
  std::vector<PrepProgress> seen;
  ASSERT_OK_AND_ASSIGN(
      PrepManifest manifest,
      Prep(options, TestTokenizer(), nullptr, [&](const PrepProgress& p) { seen.push_back(p); }));
  ASSERT_GT(seen.size(), 2u);
  for (size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GE(seen[i].bytes_done, seen[i - 1].bytes_done);
    EXPECT_GE(seen[i].tokens, seen[i - 1].tokens);
  }
  EXPECT_EQ(seen.back().bytes_done, manifest.input_bytes);
  EXPECT_EQ(seen.back().bytes_total, manifest.input_bytes);
  EXPECT_EQ(seen.back().tokens, manifest.train.tokens);
  EXPECT_EQ(seen.back().documents, 200);
}

TEST_F(PrepTest, TheOutputDirectoryIsNeitherReadNorReused) {
  WriteCorpus("in", 10);
  PrepOptions options = Options({Path("in")}, "in/out");  // Inside the input directory.
  ASSERT_OK_AND_ASSIGN(PrepManifest manifest, Prep(options, TestTokenizer()));
  EXPECT_EQ(manifest.train.documents, 10);
  const absl::StatusOr<PrepManifest> again = Prep(options, TestTokenizer());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("earlier run's output"));
}

TEST_F(PrepTest, InvalidOptionsAreRejected) {
  PrepOptions options = Options({Path("in")}, "out");
  options.shard_tokens = 0;
  EXPECT_THAT(std::string(Prep(options, TestTokenizer()).status().message()),
              HasSubstr("shard_tokens = 0"));
  options = Options({Path("in")}, "out");
  options.val_fraction = 1;
  EXPECT_THAT(std::string(Prep(options, TestTokenizer()).status().message()),
              HasSubstr("val_fraction = 1 is not in [0, 1)"));
  options = Options({}, "out");
  EXPECT_THAT(std::string(Prep(options, TestTokenizer()).status().message()),
              HasSubstr("no inputs"));
  fs::create_directories(dir_ / "empty");
  options = Options({Path("empty")}, "out");
  EXPECT_THAT(std::string(Prep(options, TestTokenizer()).status().message()),
              HasSubstr("no input files"));
}

TEST(PrepSources, FilesAreDealtLargestFirstToTheLeastLoadedRank) {
  const std::vector<PrepSource> sources = {{"a", {}, 100}, {"b", {}, 90}, {"c", {}, 50},
                                           {"d", {}, 40},  {"e", {}, 30}, {"f", {}, 5}};
  const std::vector<std::vector<int>> two = AssignSources(sources, 2);
  // 100 -> r0; 90 -> r1; 50 -> r1 (140); 40 -> r0 (140); 30 -> r0 (tie: lower rank); 5 -> r1.
  EXPECT_THAT(two, ElementsAre(ElementsAre(0, 3, 4), ElementsAre(1, 2, 5)));
  const std::vector<std::vector<int>> eight = AssignSources(sources, 8);
  EXPECT_THAT(eight[5], ElementsAre(5));
  EXPECT_TRUE(eight[6].empty());
}

TEST(PrepSources, TheValidationHashIsUniformAndFixed) {
  int below = 0;
  for (int i = 0; i < 10000; ++i) below += HashesToValidation("corpus/part.jsonl", i, 0.1);
  EXPECT_GT(below, 880);  // 1000 expected; the standard deviation is 30.
  EXPECT_LT(below, 1120);
  EXPECT_FALSE(HashesToValidation("x", 0, 0.0));
  EXPECT_TRUE(HashesToValidation("x", 0, 1.0));
  int same = 0;
  for (int i = 0; i < 1000; ++i) {
    same += HashesToValidation("corpus/b.jsonl", i, 0.5) ==
            HashesToValidation("corpus/a.jsonl", i, 0.5);
  }
  EXPECT_LT(same, 600) << "the path matters, not only the index";
}

}  // namespace
}  // namespace usine
