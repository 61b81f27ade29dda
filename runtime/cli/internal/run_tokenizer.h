// Which tokenizer a checkpoint's text goes through, for the commands that read or hand on
// text (`usine sample`, `usine export`): the files that --tokenizer-dir names, or those that
// tokenised the run's data, as its manifest.json recorded them (runtime/data/prep.h).
//
//   ASSIGN_OR_RETURN(TokenizerFiles files, RunTokenizerFiles(flags.tokenizer_dir, m.run_config,
//                                                            m.loaded.path));
//   ASSIGN_OR_RETURN(auto tokenizer, Gpt2Tokenizer::Load(files.vocab_bpe, files.encoder_json));
#ifndef USINE_RUNTIME_CLI_INTERNAL_RUN_TOKENIZER_H_
#define USINE_RUNTIME_CLI_INTERNAL_RUN_TOKENIZER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"

#include "runtime/train/run_config.h"

namespace usine::cli_internal {

struct TokenizerFiles {
  std::string vocab_bpe;     // GPT-2's merges.
  std::string encoder_json;  // GPT-2's vocabulary.
};

// `tokenizer_dir`'s vocab.bpe and encoder.json when it is not empty (not checked here);
// otherwise the paths in the manifest.json of `run`'s data.dir. Errors, each ending "give
// --tokenizer-dir": InvalidArgument when the checkpoint (`checkpoint`, named in it) has no run
// configuration; NotFound for a manifest that cannot be read or records no tokenizer.
[[nodiscard]] absl::StatusOr<TokenizerFiles> RunTokenizerFiles(const std::string& tokenizer_dir,
                                                               const std::optional<RunConfig>& run,
                                                               const std::string& checkpoint);

}  // namespace usine::cli_internal

#endif  // USINE_RUNTIME_CLI_INTERNAL_RUN_TOKENIZER_H_
