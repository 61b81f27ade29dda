#include "runtime/data/internal/prep_json.h"

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include <nlohmann/json.hpp>

namespace usine::data_internal {
namespace {

using Json = nlohmann::ordered_json;

constexpr absl::string_view kFormat = "usine-token-shards";

// Reads member `key` of `object` into *out; errors name "<where>.<key>".
template <typename T>
absl::Status Get(const Json& object, const char* key, absl::string_view where, T* out) {
  const auto it = object.find(key);
  if (it == object.end()) return absl::InvalidArgumentError(absl::StrCat(where, key, ": missing"));
  bool ok;
  absl::string_view expected;
  if constexpr (std::is_same_v<T, std::string>) {
    ok = it->is_string();
    expected = "a string";
  } else if constexpr (std::is_floating_point_v<T>) {
    ok = it->is_number();
    expected = "a number";
  } else {
    ok = it->is_number_integer() && it->template get<int64_t>() >= 0 &&
         it->template get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    expected = "an integer in range";
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, key, ": expected ", expected, ", got ", it->dump()));
  }
  *out = it->template get<T>();
  return absl::OkStatus();
}

absl::StatusOr<const Json*> GetArray(const Json& object, const char* key, absl::string_view where) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(where, key, ": expected an array"));
  }
  return &*it;
}

absl::StatusOr<const Json*> GetObject(const Json& object, const char* key,
                                      absl::string_view where) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, key, ": expected an object"));
  }
  return &*it;
}

absl::StatusOr<Json> Parse(absl::string_view json) {
  try {
    Json parsed = Json::parse(json.begin(), json.end());
    if (!parsed.is_object()) return absl::InvalidArgumentError("not a JSON object");
    return parsed;
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not JSON: ", e.what()));
  }
}

Json SkippedToJson(const PrepSkipped& skipped) {
  Json json = {{"path", skipped.path}};
  if (skipped.line > 0) json["line"] = skipped.line;
  json["reason"] = skipped.reason;
  return json;
}

absl::StatusOr<std::vector<PrepSkipped>> SkippedFromJson(const Json& object) {
  ASSIGN_OR_RETURN(const Json* array, GetArray(object, "skipped", ""));
  std::vector<PrepSkipped> all;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string where = absl::StrCat("skipped[", i, "].");
    const Json& item = (*array)[i];
    PrepSkipped skipped;
    RETURN_IF_ERROR(Get(item, "path", where, &skipped.path));
    if (item.contains("line")) RETURN_IF_ERROR(Get(item, "line", where, &skipped.line));
    RETURN_IF_ERROR(Get(item, "reason", where, &skipped.reason));
    all.push_back(std::move(skipped));
  }
  return all;
}

Json ShardToJson(const PrepShard& shard) {
  return {{"file", shard.file},     {"split", SplitName(shard.split)}, {"rank", shard.rank},
          {"tokens", shard.tokens}, {"documents", shard.documents},    {"crc32c", shard.crc32c}};
}

absl::StatusOr<std::vector<PrepShard>> ShardsFromJson(const Json& object) {
  ASSIGN_OR_RETURN(const Json* array, GetArray(object, "shards", ""));
  std::vector<PrepShard> shards;
  for (size_t i = 0; i < array->size(); ++i) {
    const std::string where = absl::StrCat("shards[", i, "].");
    const Json& item = (*array)[i];
    PrepShard shard;
    std::string split;
    RETURN_IF_ERROR(Get(item, "file", where, &shard.file));
    RETURN_IF_ERROR(Get(item, "split", where, &split));
    if (split != "train" && split != "val") {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "split: \"", split, "\" is not \"train\" or \"val\""));
    }
    shard.split = split == "val" ? DataSplit::kVal : DataSplit::kTrain;
    RETURN_IF_ERROR(Get(item, "rank", where, &shard.rank));
    RETURN_IF_ERROR(Get(item, "tokens", where, &shard.tokens));
    RETURN_IF_ERROR(Get(item, "documents", where, &shard.documents));
    RETURN_IF_ERROR(Get(item, "crc32c", where, &shard.crc32c));
    shards.push_back(std::move(shard));
  }
  return shards;
}

Json TotalsToJson(const PrepSplitTotals& totals) {
  return {{"shards", totals.shards}, {"tokens", totals.tokens}, {"documents", totals.documents}};
}

absl::Status TotalsFromJson(const Json& totals, const char* key, PrepSplitTotals* out) {
  ASSIGN_OR_RETURN(const Json* split, GetObject(totals, key, "totals."));
  const std::string where = absl::StrCat("totals.", key, ".");
  RETURN_IF_ERROR(Get(*split, "shards", where, &out->shards));
  RETURN_IF_ERROR(Get(*split, "tokens", where, &out->tokens));
  return Get(*split, "documents", where, &out->documents);
}

Json TokenizerFileToJson(const PrepTokenizerFile& file) {
  if (file.path.empty()) return nullptr;
  return {{"path", file.path}, {"crc32c", file.crc32c}};
}

absl::Status TokenizerFileFromJson(const Json& tokenizer, const char* key, PrepTokenizerFile* out) {
  const auto it = tokenizer.find(key);
  if (it == tokenizer.end() || it->is_null()) return absl::OkStatus();
  const std::string where = absl::StrCat("tokenizer.", key, ".");
  RETURN_IF_ERROR(Get(*it, "path", where, &out->path));
  return Get(*it, "crc32c", where, &out->crc32c);
}

absl::StatusOr<PrepManifest> ManifestFromJson(const Json& json) {
  PrepManifest m;
  std::string format;
  RETURN_IF_ERROR(Get(json, "format", "", &format));
  if (format != kFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat("format: \"", format, "\" is not \"", kFormat, "\""));
  }
  RETURN_IF_ERROR(Get(json, "format_version", "", &m.format_version));
  if (m.format_version != PrepManifest::kFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("format_version: ", m.format_version,
                                                   " is not the one this usine reads (",
                                                   PrepManifest::kFormatVersion, ")"));
  }
  ASSIGN_OR_RETURN(const Json* tokenizer, GetObject(json, "tokenizer", ""));
  RETURN_IF_ERROR(Get(*tokenizer, "vocab_size", "tokenizer.", &m.vocab_size));
  RETURN_IF_ERROR(Get(*tokenizer, "eot_token", "tokenizer.", &m.eot_token));
  RETURN_IF_ERROR(TokenizerFileFromJson(*tokenizer, "vocab_bpe", &m.vocab_bpe));
  RETURN_IF_ERROR(TokenizerFileFromJson(*tokenizer, "encoder_json", &m.encoder_json));
  std::string width;
  RETURN_IF_ERROR(Get(json, "token_width", "", &width));
  if (width != "uint16" && width != "uint32") {
    return absl::InvalidArgumentError(
        absl::StrCat("token_width: \"", width, "\" is not \"uint16\" or \"uint32\""));
  }
  m.token_width = width == "uint16" ? TokenWidth::kUint16 : TokenWidth::kUint32;
  RETURN_IF_ERROR(Get(json, "shard_tokens", "", &m.shard_tokens));
  RETURN_IF_ERROR(Get(json, "val_fraction", "", &m.val_fraction));
  RETURN_IF_ERROR(Get(json, "jsonl_field", "", &m.jsonl_field));
  RETURN_IF_ERROR(Get(json, "ranks", "", &m.ranks));
  ASSIGN_OR_RETURN(const Json* totals, GetObject(json, "totals", ""));
  RETURN_IF_ERROR(TotalsFromJson(*totals, "train", &m.train));
  RETURN_IF_ERROR(TotalsFromJson(*totals, "val", &m.val));
  ASSIGN_OR_RETURN(const Json* sources, GetObject(json, "sources", ""));
  RETURN_IF_ERROR(Get(*sources, "text_files", "sources.", &m.text_files));
  RETURN_IF_ERROR(Get(*sources, "jsonl_files", "sources.", &m.jsonl_files));
  RETURN_IF_ERROR(Get(*sources, "bytes", "sources.", &m.input_bytes));
  ASSIGN_OR_RETURN(m.shards, ShardsFromJson(json));
  ASSIGN_OR_RETURN(m.skipped, SkippedFromJson(json));
  return m;
}

Json ErrorToJson(const absl::Status& status) {
  return {{"error", {{"code", static_cast<int>(status.code())}, {"message", status.message()}}}};
}

// The error a message carries, if it carries one.
absl::Status CarriedError(const Json& json) {
  const auto it = json.find("error");
  if (it == json.end()) return absl::OkStatus();
  int code = static_cast<int>(absl::StatusCode::kUnknown);
  std::string message;
  if (!Get(*it, "code", "", &code).ok() || !Get(*it, "message", "", &message).ok() || code == 0) {
    return absl::InternalError(absl::StrCat("malformed error message: ", it->dump()));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace

std::string PrepManifestToJson(const PrepManifest& m) {
  Json shards = Json::array();
  for (const PrepShard& shard : m.shards) shards.push_back(ShardToJson(shard));
  Json skipped = Json::array();
  for (const PrepSkipped& s : m.skipped) skipped.push_back(SkippedToJson(s));
  const Json json = {
      {"format", kFormat},
      {"format_version", m.format_version},
      {"tokenizer",
       {{"name", "gpt2"},
        {"vocab_size", m.vocab_size},
        {"eot_token", m.eot_token},
        {"vocab_bpe", TokenizerFileToJson(m.vocab_bpe)},
        {"encoder_json", TokenizerFileToJson(m.encoder_json)}}},
      {"token_width", m.token_width == TokenWidth::kUint16 ? "uint16" : "uint32"},
      {"shard_tokens", m.shard_tokens},
      {"val_fraction", m.val_fraction},
      {"jsonl_field", m.jsonl_field},
      {"ranks", m.ranks},
      {"totals", {{"train", TotalsToJson(m.train)}, {"val", TotalsToJson(m.val)}}},
      {"sources",
       {{"text_files", m.text_files},
        {"jsonl_files", m.jsonl_files},
        {"bytes", m.input_bytes},
        {"skipped", m.skipped.size()}}},
      {"shards", std::move(shards)},
      {"skipped", std::move(skipped)},
  };
  return json.dump(2) + "\n";
}

absl::StatusOr<PrepManifest> PrepManifestFromJson(absl::string_view json, absl::string_view name) {
  absl::StatusOr<PrepManifest> manifest = [&]() -> absl::StatusOr<PrepManifest> {
    ASSIGN_OR_RETURN(Json parsed, Parse(json));
    return ManifestFromJson(parsed);
  }();
  if (!manifest.ok()) return WithContext(manifest.status(), name);
  return manifest;
}

std::string StatusToJson(const absl::Status& status) {
  return status.ok() ? Json::object().dump() : ErrorToJson(status).dump();
}

absl::Status StatusFromJson(absl::string_view text) {
  ASSIGN_OR_RETURN(Json json, Parse(text));
  return CarriedError(json);
}

std::string SourcePlanToJson(const absl::StatusOr<SourcePlan>& plan) {
  if (!plan.ok()) return ErrorToJson(plan.status()).dump();
  Json sources = Json::array();
  for (const PrepSource& s : plan->sources) {
    sources.push_back(
        {{"path", s.path}, {"jsonl", s.kind == SourceKind::kJsonl}, {"bytes", s.bytes}});
  }
  Json skipped = Json::array();
  for (const PrepSkipped& s : plan->skipped) skipped.push_back(SkippedToJson(s));
  return Json{{"sources", std::move(sources)}, {"skipped", std::move(skipped)}}.dump();
}

absl::StatusOr<SourcePlan> SourcePlanFromJson(absl::string_view text) {
  ASSIGN_OR_RETURN(Json json, Parse(text));
  RETURN_IF_ERROR(CarriedError(json));
  SourcePlan plan;
  ASSIGN_OR_RETURN(const Json* sources, GetArray(json, "sources", ""));
  for (size_t i = 0; i < sources->size(); ++i) {
    const std::string where = absl::StrCat("sources[", i, "].");
    const Json& item = (*sources)[i];
    PrepSource source;
    RETURN_IF_ERROR(Get(item, "path", where, &source.path));
    const auto jsonl = item.find("jsonl");
    if (jsonl == item.end() || !jsonl->is_boolean()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "jsonl: expected true or false"));
    }
    source.kind = jsonl->get<bool>() ? SourceKind::kJsonl : SourceKind::kText;
    RETURN_IF_ERROR(Get(item, "bytes", where, &source.bytes));
    plan.sources.push_back(std::move(source));
  }
  ASSIGN_OR_RETURN(plan.skipped, SkippedFromJson(json));
  return plan;
}

std::string RankOutputToJson(const absl::StatusOr<RankOutput>& output) {
  if (!output.ok()) return ErrorToJson(output.status()).dump();
  Json shards = Json::array();
  for (const PrepShard& shard : output->shards) shards.push_back(ShardToJson(shard));
  Json skipped = Json::array();
  for (const PrepSkipped& s : output->skipped) skipped.push_back(SkippedToJson(s));
  return Json{{"shards", std::move(shards)}, {"skipped", std::move(skipped)}}.dump();
}

absl::StatusOr<RankOutput> RankOutputFromJson(absl::string_view text) {
  ASSIGN_OR_RETURN(Json json, Parse(text));
  RETURN_IF_ERROR(CarriedError(json));
  RankOutput output;
  ASSIGN_OR_RETURN(output.shards, ShardsFromJson(json));
  ASSIGN_OR_RETURN(output.skipped, SkippedFromJson(json));
  return output;
}

}  // namespace usine::data_internal
