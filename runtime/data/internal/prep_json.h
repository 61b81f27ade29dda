// JSON for `usine prep`: manifest.json (docs/formats.md), and the messages its ranks
// exchange — rank 0's list of files, and each rank's shards — which carry an error instead
// when the sender failed, so that every rank learns the outcome.
#ifndef USINE_RUNTIME_DATA_INTERNAL_PREP_JSON_H_
#define USINE_RUNTIME_DATA_INTERNAL_PREP_JSON_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/data/internal/prep_rank.h"
#include "runtime/data/internal/prep_sources.h"
#include "runtime/data/prep.h"

namespace usine::data_internal {

// Indented, for people to read.
std::string PrepManifestToJson(const PrepManifest& manifest);
// Errors start with `name` (the file) and name the field: "m.json: shards[3].tokens: missing".
[[nodiscard]] absl::StatusOr<PrepManifest> PrepManifestFromJson(absl::string_view json,
                                                                absl::string_view name);

// A status, OK or not, and back.
std::string StatusToJson(const absl::Status& status);
[[nodiscard]] absl::Status StatusFromJson(absl::string_view json);

// A plan or the error that stopped it; FromJson returns either.
std::string SourcePlanToJson(const absl::StatusOr<SourcePlan>& plan);
[[nodiscard]] absl::StatusOr<SourcePlan> SourcePlanFromJson(absl::string_view json);

// A rank's output or its error; FromJson returns either.
std::string RankOutputToJson(const absl::StatusOr<RankOutput>& output);
[[nodiscard]] absl::StatusOr<RankOutput> RankOutputFromJson(absl::string_view json);

}  // namespace usine::data_internal

#endif  // USINE_RUNTIME_DATA_INTERNAL_PREP_JSON_H_
