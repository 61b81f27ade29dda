// Where a DataStream stands: everything needed to continue its exact sequence of batches in
// another process, at any data-parallel size. It is small (the consumed-shard list of watch
// mode grows by one name per shard) and is saved in checkpoints as its JSON text.
//
//   std::string json = stream->state().ToJson();
//   ASSIGN_OR_RETURN(DataStreamState state, DataStreamState::FromJson(json));
//   ASSIGN_OR_RETURN(auto resumed, DataStream::Open(options, &state));
//
// The state is global: every rank of a job holds the same one after the same batch.
#ifndef USINE_RUNTIME_DATA_DATA_STREAM_STATE_H_
#define USINE_RUNTIME_DATA_DATA_STREAM_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace usine {

struct DataStreamState {
  // Checked on restore: the sequence is a function of these.
  uint64_t seed = 0;
  int64_t seq_len = 0;
  uint64_t dataset = 0;  // fingerprint of the base dataset: shard names and token counts

  // The base dataset's cursor: `offset` samples of epoch `epoch` were delivered.
  int64_t epoch = 0;
  int64_t offset = 0;
  int64_t samples = 0;  // samples delivered in all (base and incoming)
  int64_t batches = 0;  // global batches delivered

  // Watch mode. Incoming shards taken in full (or rejected as malformed), in order.
  std::vector<std::string> consumed;
  std::string current;         // the incoming shard being read; empty when none
  int64_t current_offset = 0;  // its samples delivered
  int64_t incoming_samples = 0;
  int64_t replay_samples = 0;  // base samples mixed in while watching

  bool operator==(const DataStreamState&) const = default;

  std::string ToJson() const;
  // An error names the field that is missing or has the wrong type.
  [[nodiscard]] static absl::StatusOr<DataStreamState> FromJson(absl::string_view json);
};

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_DATA_STREAM_STATE_H_
