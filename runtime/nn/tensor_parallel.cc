#include "runtime/nn/tensor_parallel.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"
#include "runtime/nn/internal/real_types.h"

namespace usine {

absl::StatusOr<TensorParallelSplit> MakeTensorParallelSplit(const Communicator* tp,
                                                            const Shape& full, int dim, int groups,
                                                            absl::string_view what) {
  const TensorParallelSplit split{
      .dim = dim, .groups = groups, .rank = TensorParallelRank(tp), .size = TensorParallelSize(tp)};
  if (dim < 0 || dim >= full.rank() || groups < 1 ||
      full.dim(dim) % (static_cast<int64_t>(groups) * split.size) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot split dimension ", dim, " of ", full.ToString(), " into ",
                     groups, " block(s) over ", split.size, " tensor-parallel ranks"));
  }
  return split;
}

Shape ShardShape(const Shape& full, const TensorParallelSplit& split) {
  std::vector<int64_t> dims(full.dims().begin(), full.dims().end());
  dims[split.dim] /= split.size;
  return Shape(absl::MakeConstSpan(dims));
}

absl::Status CopyShard(const Tensor& full, const Tensor& shard, const TensorParallelSplit& split) {
  RETURN_IF_ERROR(CheckDefined(full, "CopyShard full"));
  RETURN_IF_ERROR(CheckDevice(full, Device::Cpu(), "CopyShard full"));
  RETURN_IF_ERROR(CheckDefined(shard, "CopyShard shard"));
  RETURN_IF_ERROR(CheckSameDType(full, shard, "CopyShard full", "shard"));
  RETURN_IF_ERROR(CheckShape(shard, ShardShape(full.shape(), split), "CopyShard shard"));
  if (!shard.device().is_cpu()) {
    ASSIGN_OR_RETURN(const Tensor staged, Tensor::Empty(shard.shape(), shard.dtype()));
    RETURN_IF_ERROR(CopyShard(full, staged, split));
    return Copy(staged, shard);
  }
  // full viewed as [outer, groups, size, piece, inner]; the shard as [outer, groups, piece,
  // inner].
  int64_t outer = 1, inner = static_cast<int64_t>(DTypeSize(full.dtype()));
  for (int d = 0; d < split.dim; ++d) outer *= full.dim(d);
  for (int d = split.dim + 1; d < full.rank(); ++d) inner *= full.dim(d);
  const int64_t piece = full.dim(split.dim) / split.groups / split.size;
  const char* from = static_cast<const char*>(full.raw_data());
  char* to = static_cast<char*>(shard.raw_data());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t g = 0; g < split.groups; ++g) {
      const int64_t source = ((o * split.groups + g) * split.size + split.rank) * piece * inner;
      std::memcpy(to, from + source, static_cast<size_t>(piece * inner));
      to += piece * inner;
    }
  }
  return absl::OkStatus();
}

absl::Status InitNormalShard(ParameterInitializer& init, const Tensor& shard, const Shape& full,
                             const TensorParallelSplit& split, double stddev) {
  ASSIGN_OR_RETURN(Tensor whole, Tensor::Empty(full, shard.dtype()));
  RETURN_IF_ERROR(init.Normal(whole, stddev));
  return CopyShard(whole, shard, split);
}

namespace {

template <typename T>
absl::Status GatherAndReduce(Communicator& tp, const Tensor& t, ReduceOp op) {
  const int64_t n = t.numel();
  ASSIGN_OR_RETURN(Tensor all, Tensor::Empty({tp.size(), n}, t.dtype(), t.device()));
  RETURN_IF_ERROR(tp.AllGather(t, all));
  const T* in = static_cast<const T*>(all.raw_data());
  T* out = static_cast<T*>(t.raw_data());
  for (int64_t i = 0; i < n; ++i) {
    T acc = in[i];
    for (int r = 1; r < tp.size(); ++r) {
      const T v = in[r * n + i];
      acc = op == ReduceOp::kMax ? std::max(acc, v) : acc + v;
    }
    out[i] = acc;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status AllReduceOverTensorParallel(Communicator* tp, const Tensor& t, ReduceOp op) {
  if (tp == nullptr || tp->size() == 1) return absl::OkStatus();
  if (op != ReduceOp::kSum && op != ReduceOp::kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("AllReduceOverTensorParallel: op ", ReduceOpName(op), " (kSum or kMax only)"));
  }
  switch (t.dtype()) {
    case DType::kF32: {
      const Stream stream = nn_internal::LayerStream(t.device());
      // Between the layers' kernels on their stream: the host goes on enqueueing.
      return tp->AllReduce(t, op, {.stream = &stream, .stream_ordered = true});
    }
    case DType::kF64:
      return GatherAndReduce<double>(*tp, t, op);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("AllReduceOverTensorParallel: ", t.DebugString(), " (f32 or f64 only)"));
  }
}

}  // namespace usine
