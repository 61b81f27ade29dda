// Test helpers for Prep: writing corpora and reading shards back into documents.
#ifndef USINE_TESTS_RUNTIME_DATA_PREP_TEST_UTIL_H_
#define USINE_TESTS_RUNTIME_DATA_PREP_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/data/gpt2_tokenizer.h"
#include "runtime/data/prep.h"
#include "runtime/data/token_shard.h"

namespace usine::testing {

inline const std::string kGpt2Dir = absl::StrCat(USINE_TEST_DATA_DIR, "/gpt2");

// Loaded once: the vocabulary takes a moment to parse, and the tokenizer is immutable.
inline const Gpt2Tokenizer& TestTokenizer() {
  static const Gpt2Tokenizer* tokenizer = [] {
    absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> loaded =
        Gpt2Tokenizer::Load(kGpt2Dir + "/vocab.bpe", kGpt2Dir + "/encoder.json");
    if (!loaded.ok()) std::abort();
    return loaded->release();
  }();
  return *tokenizer;
}

inline void WriteFile(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// The tokens of every shard of `split`, in manifest order.
inline absl::StatusOr<std::vector<int32_t>> SplitTokens(const std::string& out_dir,
                                                        const PrepManifest& manifest,
                                                        DataSplit split) {
  std::vector<int32_t> tokens;
  for (const PrepShard& shard : manifest.shards) {
    if (shard.split != split) continue;
    ASSIGN_OR_RETURN(TokenShard s,
                     TokenShard::Open(absl::StrCat(out_dir, "/", shard.file), manifest.vocab_size));
    const size_t begin = tokens.size();
    tokens.resize(begin + s.size());
    s.CopyTokens(0, s.size(), tokens.data() + begin);
  }
  return tokens;
}

// The documents in `tokens`: each must start with EOT; the text up to the next EOT.
inline absl::StatusOr<std::vector<std::string>> DecodeDocuments(
    const std::vector<int32_t>& tokens) {
  std::vector<std::string> documents;
  if (!tokens.empty() && tokens[0] != Gpt2Tokenizer::kEndOfText) {
    return absl::DataLossError("the tokens do not start with EOT");
  }
  size_t begin = 0;
  while (begin < tokens.size()) {
    size_t end = begin + 1;
    while (end < tokens.size() && tokens[end] != Gpt2Tokenizer::kEndOfText) ++end;
    ASSIGN_OR_RETURN(std::string text, TestTokenizer().Decode(absl::MakeConstSpan(tokens).subspan(
                                           begin + 1, end - begin - 1)));
    documents.push_back(std::move(text));
    begin = end;
  }
  return documents;
}

inline absl::StatusOr<std::vector<std::string>> SplitDocuments(const std::string& out_dir,
                                                               const PrepManifest& manifest,
                                                               DataSplit split) {
  ASSIGN_OR_RETURN(std::vector<int32_t> tokens, SplitTokens(out_dir, manifest, split));
  return DecodeDocuments(tokens);
}

// The files in `dir` whose names end with `suffix`.
inline int CountFiles(const std::string& dir, const std::string& suffix) {
  int n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      ++n;
    }
  }
  return n;
}

}  // namespace usine::testing

#endif  // USINE_TESTS_RUNTIME_DATA_PREP_TEST_UTIL_H_
