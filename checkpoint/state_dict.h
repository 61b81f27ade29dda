// What a checkpoint holds: named tensors, each whole or this rank's piece of one, and typed
// metadata (step, tokens seen, model config, data position, RNG states, ...).
//
//   StateDict state;
//   RETURN_IF_ERROR(state.AddTensor("wte", wte));                       // replicated
//   RETURN_IF_ERROR(state.AddShard("h0.mlp.fc.w", fc_w_piece,           // a TP column shard
//                                  Shape{768, 3072}, {0, tp_rank * 3072 / tp_size}));
//   for (int g = 0; g < 3; ++g) {                                       // q|k|v: three boxes
//     RETURN_IF_ERROR(state.AddShard("h0.attn.qkv.w", qkv_piece[g], Shape{3 * 768, 768},
//                                    {(g * tp_size + tp_rank) * 768 / tp_size, 0}));
//   }
//   state.SetInt("step", 1200);
//   state.SetJson("model_config", config_json);
//   state.SetBytes("rng/rank3", rng_state);
//
// Pieces: every tensor has a global (logical) shape; a piece is the box [offset, offset +
// piece shape) of it. A rank may hold several disjoint boxes of one tensor (a tensor-parallel
// shard of q|k|v is one box per block; a ZeRO-1 shard of a moment is a range of the flattened
// tensor, a few boxes): AddShard is then called once per box. When several ranks hold the
// same box of a tensor (data-parallel replicas, or a tensor held whole by every rank) the
// lowest of those ranks writes it. The distinct boxes of a tensor over all ranks must tile
// it: cover every element exactly once. For loading, the same calls say which boxes of each
// tensor this rank wants, in which dtype, and the pieces are filled in place (the checkpoint
// may have been written at another layout).
//
// Metadata: the same name on several ranks must carry the same value; names unique to one
// rank (e.g. "rng/rank3") are written as they are. Loading replaces this dict's metadata
// with the checkpoint's.
//
// Names: 1 to 255 characters of [A-Za-z0-9_.-], with '/' between non-empty components
// (each a group in the file); a tensor and a metadata value may share a name.
//
// Ownership: a StateDict holds Tensor handles, which share memory with the caller's tensors
// (no copy). Thread-compatible: const methods may be called concurrently.
#ifndef USINE_CHECKPOINT_STATE_DICT_H_
#define USINE_CHECKPOINT_STATE_DICT_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"

namespace usine {

// One box of a global tensor, held by this rank.
struct TensorPiece {
  Tensor tensor;                // Host or CUDA; contiguous; shape is the box's extent.
  std::vector<int64_t> offset;  // Per dimension, where the box starts.
};

// One tensor of a StateDict: this rank's pieces of a global tensor.
struct TensorEntry {
  Shape global_shape;               // The logical tensor's shape.
  DType dtype = DType::kF32;        // Of every piece.
  std::vector<TensorPiece> pieces;  // At least one; disjoint boxes, in the order added.

  // True when this rank's one piece is the whole tensor.
  bool whole() const { return pieces.size() == 1 && pieces.front().tensor.shape() == global_shape; }
  // The bytes of all pieces.
  int64_t nbytes() const;
};

// Metadata values. Strings hold UTF-8 text; JSON is text that the writer has serialised;
// bytes are opaque (RNG states). Each is at most kMaxMetadataBytes.
struct JsonText {
  std::string text;
  friend bool operator==(const JsonText& a, const JsonText& b) { return a.text == b.text; }
};
struct ByteBlob {
  std::string bytes;
  friend bool operator==(const ByteBlob& a, const ByteBlob& b) { return a.bytes == b.bytes; }
};
using MetadataValue = std::variant<int64_t, double, std::string, JsonText, ByteBlob>;

inline constexpr size_t kMaxMetadataBytes = size_t{16} << 20;

// "int64", "double", "string", "json", "bytes".
absl::string_view MetadataKindName(const MetadataValue& value);

// Whether boxes [a_offset, a_offset + a_extent) and [b_offset, b_offset + b_extent) of one
// tensor share an element (an empty box shares none). REQUIRES: offsets of the extents' rank.
bool BoxesOverlap(absl::Span<const int64_t> a_offset, const Shape& a_extent,
                  absl::Span<const int64_t> b_offset, const Shape& b_extent);

// OK when `name` is a valid entry name (see above); otherwise InvalidArgument naming it.
[[nodiscard]] absl::Status ValidateEntryName(absl::string_view name);

class StateDict {
 public:
  // A tensor this rank holds whole. Same as AddShard(name, t, t.shape(), {0, ...}).
  [[nodiscard]] absl::Status AddTensor(std::string name, Tensor tensor);
  // A piece of `name` held by this rank: the box at `offset` of a tensor of `global_shape`.
  // Called again with the same name, adds another box of the same tensor.
  // REQUIRES (checked): a valid name; piece defined, contiguous, of rank
  // global_shape.rank(); offset[d] + piece.dim(d) <= global_shape.dim(d); for a name added
  // before, the same global shape and dtype, and a box that shares no element with this
  // rank's other boxes of it.
  [[nodiscard]] absl::Status AddShard(std::string name, Tensor piece, Shape global_shape,
                                      std::vector<int64_t> offset);

  // Metadata setters replace any value of the same name. REQUIRES: a valid name.
  void SetInt(std::string name, int64_t value) { metadata_[std::move(name)] = value; }
  void SetDouble(std::string name, double value) { metadata_[std::move(name)] = value; }
  void SetString(std::string name, std::string value) {
    metadata_[std::move(name)] = std::move(value);
  }
  void SetJson(std::string name, std::string json) {
    metadata_[std::move(name)] = JsonText{std::move(json)};
  }
  void SetBytes(std::string name, std::string bytes) {
    metadata_[std::move(name)] = ByteBlob{std::move(bytes)};
  }
  void SetMetadata(std::string name, MetadataValue value) {
    metadata_[std::move(name)] = std::move(value);
  }

  // Typed getters: NotFound naming a missing entry, InvalidArgument naming the kinds when
  // the entry has another kind.
  [[nodiscard]] absl::StatusOr<int64_t> GetInt(absl::string_view name) const;
  [[nodiscard]] absl::StatusOr<double> GetDouble(absl::string_view name) const;
  [[nodiscard]] absl::StatusOr<std::string> GetString(absl::string_view name) const;
  [[nodiscard]] absl::StatusOr<std::string> GetJson(absl::string_view name) const;
  [[nodiscard]] absl::StatusOr<std::string> GetBytes(absl::string_view name) const;

  // Sorted by name.
  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, MetadataValue>& metadata() const { return metadata_; }
  std::map<std::string, MetadataValue>& mutable_metadata() { return metadata_; }

  // Sum of this rank's piece sizes, over every piece of every tensor.
  int64_t piece_bytes() const;

 private:
  template <typename T>
  absl::StatusOr<const T*> Get(absl::string_view name, absl::string_view kind) const;

  std::map<std::string, TensorEntry> tensors_;
  std::map<std::string, MetadataValue> metadata_;
};

}  // namespace usine

#endif  // USINE_CHECKPOINT_STATE_DICT_H_
