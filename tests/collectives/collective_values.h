// Verifiable inputs for the collective tests under mpirun (nccl-tests' way): rank r's element
// i is Value(r, i), a small integer, so every reduction of them is exact in every dtype (bf16
// and f16 included) and each output element is known.
//
//   ASSIGN_OR_RETURN(Tensor send, Filled(device, DType::kBF16, n, [&](int64_t i) {
//     return Value(rank, i); }));
//   ... comm->AllReduce(send, ReduceOp::kSum) ...
//   ASSIGN_OR_RETURN(Tensor out, ToHost(send));
//   EXPECT_EQ(At(out, i), Reduce(ReduceOp::kSum, size, [&](int r) { return Value(r, i); }));
#ifndef USINE_TESTS_COLLECTIVES_COLLECTIVE_VALUES_H_
#define USINE_TESTS_COLLECTIVES_COLLECTIVE_VALUES_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/tensor.h"

namespace usine::testing {

// The dtypes every backend reduces.
inline constexpr DType kReducible[] = {DType::kF32, DType::kBF16, DType::kF16, DType::kI32,
                                       DType::kI64};

// Rank `rank`'s element `i`: an integer in [-8, 8].
double Value(int rank, int64_t i);

// A tensor of `n` elements of `dtype` on `device` whose element i holds f(i); the unsigned
// dtypes hold f(i) + 100, so that small negative values fit (At undoes it).
[[nodiscard]] absl::StatusOr<Tensor> Filled(Device device, DType dtype, int64_t n,
                                            const std::function<double(int64_t)>& f);
[[nodiscard]] absl::StatusOr<Tensor> Filled(DType dtype, int64_t n,
                                            const std::function<double(int64_t)>& f);

// `t` itself if it is on the cpu, else a host copy of it (synchronous).
[[nodiscard]] absl::StatusOr<Tensor> ToHost(const Tensor& t);

// Element `i` of the host tensor `t`, as Filled wrote it.
double At(const Tensor& t, int64_t i);

// `op` over v(0), ..., v(size - 1), in double.
double Reduce(ReduceOp op, int size, const std::function<double(int)>& v);

}  // namespace usine::testing

#endif  // USINE_TESTS_COLLECTIVES_COLLECTIVE_VALUES_H_
