// A safetensors file (safetensors_file.h's format) written from usine tensors, for handing a
// model to the tools that read Hugging Face's layout (runtime/train/hf_gpt2_export.h).
//
//   const std::vector<SafetensorsSpec> specs = {{"wte.weight", DType::kF32, {50257, 768}}, ...};
//   RETURN_IF_ERROR(WriteSafetensorsFile(
//       "out/model.safetensors", specs,
//       [&](size_t i) -> absl::StatusOr<Tensor> { return WeightAsStored(i); },
//       {{"format", "pt"}}));
//
// The header names every tensor with its dtype, shape and data offsets, the data back to back
// in the order given; it is padded with spaces so that the data start 8-byte aligned, as the
// reference writer pads it. The tensors are asked for one at a time, as the file is written,
// so a model need not be held twice: `tensor_of(i)` returns specs[i]'s tensor, on the cpu,
// of its dtype and shape, and may be dropped once written. The file appears whole or not at
// all (runtime/core/atomic_file.h).
#ifndef USINE_CHECKPOINT_SAFETENSORS_WRITER_H_
#define USINE_CHECKPOINT_SAFETENSORS_WRITER_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"

namespace usine {

struct SafetensorsSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
};

// Writes `path`. Errors: InvalidArgument, before anything is written, for an empty or repeated
// name or one that is "__metadata__"; InvalidArgument naming the tensor when tensor_of(i)
// returns one that is not on the cpu or not of specs[i]'s dtype and shape; tensor_of's own
// error; the write's (atomic_file.h). Nothing at `path` changes on an error.
[[nodiscard]] absl::Status WriteSafetensorsFile(
    const std::string& path, absl::Span<const SafetensorsSpec> specs,
    absl::FunctionRef<absl::StatusOr<Tensor>(size_t)> tensor_of,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace usine

#endif  // USINE_CHECKPOINT_SAFETENSORS_WRITER_H_
