// Reads TOML into a RunConfig through the key table (run_config_schema.h), with toml++
// compiled into run_config_reader.cc alone (nothing else includes it, and nothing links it).
//
//   RETURN_IF_ERROR(ApplyTomlDocument(text, "run.toml", config));
//   RETURN_IF_ERROR(ApplyAssignment("optim.lr=3e-4", config));
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_RUN_CONFIG_READER_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_RUN_CONFIG_READER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "runtime/train/run_config.h"

namespace usine::run_config_internal {

// Sets every key the document holds. InvalidArgument, naming `source_name`:line:column, for a
// syntax error, or listing (in the order of the document) every unknown section or key, with
// the nearest known one, and every value of the wrong type or out of range. `config` may be
// partly updated then.
[[nodiscard]] absl::Status ApplyTomlDocument(absl::string_view text, absl::string_view source_name,
                                             RunConfig& config);

// Sets one key from "section.key=value" (run_config.h's ApplyOverride). InvalidArgument naming
// the assignment otherwise.
[[nodiscard]] absl::Status ApplyAssignment(absl::string_view assignment, RunConfig& config);

}  // namespace usine::run_config_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_RUN_CONFIG_READER_H_
