#include "runtime/data/data_stream_state.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

namespace usine {
namespace {

constexpr int kStateVersion = 1;

template <typename T>
absl::Status Read(const nlohmann::json& json, const char* key, T* value) {
  const auto it = json.find(key);
  if (it == json.end()) {
    return absl::InvalidArgumentError(absl::StrCat("data stream state: missing \"", key, "\""));
  }
  try {
    *value = it->get<T>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("data stream state: \"", key, "\" has the wrong type: ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string DataStreamState::ToJson() const {
  const nlohmann::json json = {
      {"version", kStateVersion},
      {"seed", seed},
      {"seq_len", seq_len},
      {"dataset", absl::StrCat(dataset)},  // a string: JSON readers may round 64-bit numbers
      {"epoch", epoch},
      {"offset", offset},
      {"samples", samples},
      {"batches", batches},
      {"consumed", consumed},
      {"current", current},
      {"current_offset", current_offset},
      {"incoming_samples", incoming_samples},
      {"replay_samples", replay_samples},
  };
  return json.dump();
}

absl::StatusOr<DataStreamState> DataStreamState::FromJson(absl::string_view text) {
  const nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                                    /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return absl::InvalidArgumentError("data stream state: not a JSON object");
  }
  int version = 0;
  if (absl::Status s = Read(json, "version", &version); !s.ok()) return s;
  if (version != kStateVersion) {
    return absl::InvalidArgumentError(absl::StrCat("data stream state: version ", version,
                                                   " (this build reads ", kStateVersion, ")"));
  }
  DataStreamState state;
  std::string dataset;
  for (absl::Status s : {
           Read(json, "seed", &state.seed),
           Read(json, "seq_len", &state.seq_len),
           Read(json, "dataset", &dataset),
           Read(json, "epoch", &state.epoch),
           Read(json, "offset", &state.offset),
           Read(json, "samples", &state.samples),
           Read(json, "batches", &state.batches),
           Read(json, "consumed", &state.consumed),
           Read(json, "current", &state.current),
           Read(json, "current_offset", &state.current_offset),
           Read(json, "incoming_samples", &state.incoming_samples),
           Read(json, "replay_samples", &state.replay_samples),
       }) {
    if (!s.ok()) return s;
  }
  if (!absl::SimpleAtoi(dataset, &state.dataset)) {
    return absl::InvalidArgumentError(
        absl::StrCat("data stream state: \"dataset\" is not a number: ", dataset));
  }
  return state;
}

}  // namespace usine
