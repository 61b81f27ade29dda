#include "checkpoint/internal/collective_plan.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "collectives/byte_exchange.h"
#include "nlohmann/json.hpp"
#include "runtime/core/status_macros.h"

namespace usine::checkpoint_internal {
namespace {

using nlohmann::json;

json MetadataToJson(const MetadataValue& value) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, JsonText>) {
          return json{{"json", v.text}};
        } else if constexpr (std::is_same_v<T, ByteBlob>) {
          return json{
              {"bytes", json::binary(std::vector<uint8_t>(v.bytes.begin(), v.bytes.end()))}};
        } else if constexpr (std::is_same_v<T, std::string>) {
          return json{{"string", v}};
        } else if constexpr (std::is_same_v<T, double>) {
          return json{{"double", v}};
        } else {
          return json{{"int64", v}};
        }
      },
      value);
}

MetadataValue MetadataFromJson(const json& j) {
  if (j.contains("json")) return JsonText{j["json"].get<std::string>()};
  if (j.contains("bytes")) {
    const auto& bin = j["bytes"].get_binary();
    return ByteBlob{std::string(bin.begin(), bin.end())};
  }
  if (j.contains("string")) return j["string"].get<std::string>();
  if (j.contains("double")) return j["double"].get<double>();
  return j["int64"].get<int64_t>();
}

std::vector<int64_t> Dims(const Shape& shape) {
  return std::vector<int64_t>(shape.dims().begin(), shape.dims().end());
}

std::string Encode(const StateDict& state, PlanPurpose purpose) {
  json tensors = json::array();
  for (const auto& [name, entry] : state.tensors()) {
    json boxes = json::array();
    for (const TensorPiece& piece : entry.pieces) {
      boxes.push_back({{"offset", piece.offset}, {"extent", Dims(piece.tensor.shape())}});
    }
    tensors.push_back({{"name", name},
                       {"dtype", static_cast<int>(entry.dtype)},
                       {"global", Dims(entry.global_shape)},
                       {"boxes", std::move(boxes)}});
  }
  json metadata = json::object();
  if (purpose == PlanPurpose::kWrite) {
    for (const auto& [name, value] : state.metadata()) metadata[name] = MetadataToJson(value);
  }
  const std::vector<uint8_t> cbor = json::to_cbor(json{{"t", tensors}, {"m", metadata}});
  return std::string(cbor.begin(), cbor.end());
}

bool Tiles(const PlannedTensor& t) {
  int64_t covered = 0;
  for (const PlannedBox& box : t.boxes) covered += box.extent.numel();
  if (covered != t.global_shape.numel()) return false;
  for (size_t i = 0; i < t.boxes.size(); ++i) {
    for (size_t j = i + 1; j < t.boxes.size(); ++j) {
      if (BoxesOverlap(t.boxes[i].offset, t.boxes[i].extent, t.boxes[j].offset,
                       t.boxes[j].extent)) {
        return false;
      }
    }
  }
  return true;
}

absl::Status AddRank(const json& mine, int rank, std::map<std::string, PlannedTensor>& tensors,
                     std::map<std::string, std::pair<int, MetadataValue>>& metadata) {
  for (const json& t : mine["t"]) {
    const std::string name = t["name"].get<std::string>();
    const DType dtype = static_cast<DType>(t["dtype"].get<int>());
    const Shape global(t["global"].get<std::vector<int64_t>>());
    auto [it, inserted] = tensors.try_emplace(name, PlannedTensor{name, dtype, global, {}, false});
    PlannedTensor& planned = it->second;
    if (!inserted && (planned.dtype != dtype || planned.global_shape != global)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "': rank ", planned.boxes.front().owner, " has ",
                       DTypeName(planned.dtype), planned.global_shape.ToString(), " but rank ",
                       rank, " has ", DTypeName(dtype), global.ToString()));
    }
    for (const json& b : t["boxes"]) {
      PlannedBox box{b["offset"].get<std::vector<int64_t>>(),
                     Shape(b["extent"].get<std::vector<int64_t>>()), rank};
      const bool seen =
          std::any_of(planned.boxes.begin(), planned.boxes.end(), [&](const PlannedBox& other) {
            return other.offset == box.offset && other.extent == box.extent;
          });
      // Ranks come in order: the owner of a box is the lowest rank that holds it.
      if (!seen) planned.boxes.push_back(std::move(box));
    }
  }
  for (const auto& [name, j] : mine["m"].items()) {
    MetadataValue value = MetadataFromJson(j);
    auto [it, inserted] = metadata.try_emplace(name, rank, value);
    if (!inserted && !(it->second.second == value)) {
      return absl::InvalidArgumentError(absl::StrCat("metadata '", name, "' differs between rank ",
                                                     it->second.first, " and rank ", rank));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CollectivePlan> PlanCollectively(const StateDict& state, Communicator& comm,
                                                PlanPurpose purpose) {
  ASSIGN_OR_RETURN(std::vector<std::string> all, AllGatherBytes(comm, Encode(state, purpose)));
  std::map<std::string, PlannedTensor> tensors;
  std::map<std::string, std::pair<int, MetadataValue>> metadata;
  for (int rank = 0; rank < static_cast<int>(all.size()); ++rank) {
    const json mine = json::from_cbor(all[rank]);
    RETURN_IF_ERROR(AddRank(mine, rank, tensors, metadata));
  }
  CollectivePlan plan;
  for (auto& [name, t] : tensors) {
    std::sort(t.boxes.begin(), t.boxes.end(),
              [](const PlannedBox& a, const PlannedBox& b) { return a.offset < b.offset; });
    t.tiled = Tiles(t);
    if (purpose == PlanPurpose::kWrite && !t.tiled) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", name, "': the ranks' pieces do not cover ", t.global_shape.ToString(),
          " exactly once (", t.boxes.size(), " distinct pieces)"));
    }
    plan.tensors.push_back(std::move(t));
  }
  for (auto& [name, ranked] : metadata) plan.metadata.emplace(name, std::move(ranked.second));
  return plan;
}

const TensorPiece* FindPiece(const TensorEntry& entry, const PlannedBox& box) {
  for (const TensorPiece& piece : entry.pieces) {
    if (piece.offset == box.offset && piece.tensor.shape() == box.extent) return &piece;
  }
  return nullptr;
}

std::vector<OwnedBox> OwnedBoxes(const PlannedTensor& planned, const TensorEntry& entry, int rank) {
  std::vector<OwnedBox> out;
  for (const PlannedBox& box : planned.boxes) {
    if (box.owner != rank || box.extent.numel() == 0) continue;
    const TensorPiece* piece = FindPiece(entry, box);
    if (piece != nullptr) out.push_back(OwnedBox{&box, piece});
  }
  return out;
}

int MaxOwnedBoxes(const PlannedTensor& planned) {
  std::map<int, int> per_owner;
  int most = 0;
  for (const PlannedBox& box : planned.boxes) {
    if (box.extent.numel() > 0) most = std::max(most, ++per_owner[box.owner]);
  }
  return most;
}

}  // namespace usine::checkpoint_internal
