#include "runtime/cli/internal/run_tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/data/prep.h"

namespace usine::cli_internal {

absl::StatusOr<TokenizerFiles> RunTokenizerFiles(const std::string& tokenizer_dir,
                                                 const std::optional<RunConfig>& run,
                                                 const std::string& checkpoint) {
  if (!tokenizer_dir.empty()) {
    return TokenizerFiles{tokenizer_dir + "/vocab.bpe", tokenizer_dir + "/encoder.json"};
  }
  if (!run.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(checkpoint, " has no run configuration: give --tokenizer-dir"));
  }
  const std::string manifest_path = run->data.dir + "/manifest.json";
  absl::StatusOr<PrepManifest> manifest = ReadPrepManifest(manifest_path);
  if (!manifest.ok() || manifest->vocab_bpe.path.empty() || manifest->encoder_json.path.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "the run's tokenizer is not recorded in ", manifest_path, " (",
        manifest.ok() ? "no paths" : manifest.status().message(), "): give --tokenizer-dir"));
  }
  return TokenizerFiles{manifest->vocab_bpe.path, manifest->encoder_json.path};
}

}  // namespace usine::cli_internal
