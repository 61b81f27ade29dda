// A small "model" for checkpoint tests, laid out for any tensor-parallel degree, whose every
// element has a known value: value = f(tensor, global index). Pieces are filled with those
// values for writing, or with a sentinel for reading, and checked element by element.
//
//   ASSIGN_OR_RETURN(StateDict state, MakeModel(tp_rank, tp_size, Fill::kValues));
//   EXPECT_EQ(CheckModel(state), "");   // "" or the first wrong element
#ifndef USINE_TESTS_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
#define USINE_TESTS_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_

#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#include "checkpoint/state_dict.h"
#include "runtime/core/float16.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/tensor.h"

namespace usine::testing {

enum class Fill { kValues, kSentinel };

// The model's tensors: dtype, global shape, the dimension that tensor parallelism splits
// (-1: replicated on every rank) and into how many blocks, each split over the ranks (q|k|v:
// 3), so that a rank holds one box per block.
struct ModelTensor {
  const char* name;
  DType dtype;
  Shape shape;
  int split_dim;
  int groups = 1;
};

inline std::vector<ModelTensor> ModelTensors() {
  return {{"w_col", DType::kF32, Shape{8, 12}, 1},       {"w_row", DType::kBF16, Shape{12, 6}, 0},
          {"emb", DType::kU16, Shape{4, 3, 4}, 2},       {"blocks/0/ln", DType::kF16, Shape{7}, -1},
          {"bias", DType::kI64, Shape{5}, -1},           {"scale", DType::kF32, Shape{}, -1},
          {"empty", DType::kI32, Shape{0, 4}, -1},       {"qkv", DType::kF32, Shape{12, 5}, 0, 3},
          {"qkv_cols", DType::kBF16, Shape{3, 24}, 1, 3}};
}

// The value of element `index` (row-major, global) of tensor number `id`, exact in `dtype`.
inline double ModelValue(DType dtype, int id, int64_t index) {
  switch (dtype) {
    case DType::kF32:
      return id * 1000.0 + index * 0.25;
    case DType::kBF16:
      return static_cast<double>(index % 200) - 100.0 + id;
    case DType::kF16:
      return index * 0.5 + id;
    case DType::kI64:
      return static_cast<double>(index * 3 - 7 + id);
    case DType::kF64:
      return id * 1e6 + index * 0.125 + 1.0 / 3.0;
    default:
      return static_cast<double>((index * 7 + id) % 60000);
  }
}

inline void StoreElement(DType dtype, void* data, int64_t i, double v) {
  char* p = static_cast<char*>(data) + i * static_cast<int64_t>(DTypeSize(dtype));
  switch (dtype) {
    case DType::kF32: {
      const float f = static_cast<float>(v);
      std::memcpy(p, &f, 4);
      return;
    }
    case DType::kBF16: {
      const uint16_t h = FloatToBFloat16Bits(static_cast<float>(v));
      std::memcpy(p, &h, 2);
      return;
    }
    case DType::kF16: {
      const uint16_t h = FloatToFloat16Bits(static_cast<float>(v));
      std::memcpy(p, &h, 2);
      return;
    }
    case DType::kI64: {
      const int64_t x = static_cast<int64_t>(v);
      std::memcpy(p, &x, 8);
      return;
    }
    case DType::kI32: {
      const int32_t x = static_cast<int32_t>(v);
      std::memcpy(p, &x, 4);
      return;
    }
    case DType::kU16: {
      const uint16_t x = static_cast<uint16_t>(v);
      std::memcpy(p, &x, 2);
      return;
    }
    case DType::kU8: {
      *p = static_cast<char>(static_cast<uint8_t>(v));
      return;
    }
    case DType::kF64:
      std::memcpy(p, &v, 8);
      return;
  }
}

inline double LoadElement(DType dtype, const void* data, int64_t i) {
  const char* p = static_cast<const char*>(data) + i * static_cast<int64_t>(DTypeSize(dtype));
  switch (dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::kBF16:
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return dtype == DType::kBF16 ? BFloat16BitsToFloat(h) : Float16BitsToFloat(h);
    }
    case DType::kI64: {
      int64_t x;
      std::memcpy(&x, p, 8);
      return static_cast<double>(x);
    }
    case DType::kI32: {
      int32_t x;
      std::memcpy(&x, p, 4);
      return x;
    }
    case DType::kU16: {
      uint16_t x;
      std::memcpy(&x, p, 2);
      return x;
    }
    case DType::kU8:
      return static_cast<uint8_t>(*p);
    case DType::kF64: {
      double x;
      std::memcpy(&x, p, 8);
      return x;
    }
  }
  return 0;
}

// Global row-major index of element `local` of the box at `offset` with `extent`.
inline int64_t GlobalIndex(const Shape& global, const std::vector<int64_t>& offset,
                           const Shape& extent, int64_t local) {
  int64_t index = 0;
  int64_t rest = local;
  std::vector<int64_t> coord(static_cast<size_t>(extent.rank()));
  for (int d = extent.rank() - 1; d >= 0; --d) {
    coord[d] = rest % extent.dim(d);
    rest /= extent.dim(d);
  }
  for (int d = 0; d < global.rank(); ++d) index = index * global.dim(d) + offset[d] + coord[d];
  return index;
}

// The model at tensor-parallel rank `tp_rank` of `tp_size`, plus metadata written by
// `world_rank`. REQUIRES: tp_size divides every split dimension (1, 2 and 4 do).
inline absl::StatusOr<StateDict> MakeModel(int tp_rank, int tp_size, Fill fill,
                                           int world_rank = 0) {
  StateDict state;
  const std::vector<ModelTensor> tensors = ModelTensors();
  for (int id = 0; id < static_cast<int>(tensors.size()); ++id) {
    const ModelTensor& t = tensors[id];
    for (int g = 0; g < t.groups; ++g) {
      std::vector<int64_t> dims(t.shape.dims().begin(), t.shape.dims().end());
      std::vector<int64_t> offset(dims.size(), 0);
      if (t.split_dim >= 0) {
        dims[t.split_dim] /= t.groups * tp_size;
        offset[t.split_dim] = dims[t.split_dim] * (g * tp_size + tp_rank);
      }
      ASSIGN_OR_RETURN(Tensor piece, Tensor::Empty(Shape(dims), t.dtype));
      for (int64_t i = 0; i < piece.numel(); ++i) {
        const double v =
            fill == Fill::kValues
                ? ModelValue(t.dtype, id, GlobalIndex(t.shape, offset, piece.shape(), i))
                : 77.0;
        StoreElement(t.dtype, piece.raw_data(), i, v);
      }
      RETURN_IF_ERROR(state.AddShard(t.name, piece, t.shape, offset));
    }
  }
  if (fill == Fill::kValues) {
    state.SetInt("step", 1200);
    state.SetDouble("lr", 3e-4);
    state.SetString("note", "caf\xc3\xa9");
    state.SetJson("model_config", R"({"layers": 2, "d_model": 12})");
    state.SetBytes(absl::StrCat("rng/rank", world_rank),
                   std::string("\0\x01\xff rng ", 8) + std::to_string(world_rank));
  }
  return state;
}

// "" when every element of every piece has its model value; otherwise the first that does not.
inline std::string CheckModel(const StateDict& state) {
  const std::vector<ModelTensor> tensors = ModelTensors();
  for (int id = 0; id < static_cast<int>(tensors.size()); ++id) {
    const TensorEntry& e = state.tensors().at(tensors[id].name);
    for (const TensorPiece& p : e.pieces) {
      for (int64_t i = 0; i < p.tensor.numel(); ++i) {
        const int64_t g = GlobalIndex(e.global_shape, p.offset, p.tensor.shape(), i);
        const double want = ModelValue(tensors[id].dtype, id, g);
        const double got = LoadElement(tensors[id].dtype, p.tensor.raw_data(), i);
        if (got != want) {
          return absl::StrCat(tensors[id].name, "[", g, "] = ", got, ", want ", want);
        }
      }
    }
  }
  return "";
}

}  // namespace usine::testing

#endif  // USINE_TESTS_CHECKPOINT_CHECKPOINT_TEST_UTIL_H_
