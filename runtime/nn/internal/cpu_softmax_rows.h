// The row operations of the cpu softmaxes (attention's and the cross-entropy's): a row's
// maximum, and e^(x - shift) over a row with its sum. In f32 they run four lanes at a time
// (cpu_exp.h's Float4) with four independent accumulators, added up in a fixed order at the
// end, so that a row gives the same bits on every call and thread; in f64 they are plain
// loops over std::exp. The exponentials run on the widest vectors the cpu has (AVX-512's 16
// lanes, AVX2's 8, else 4), chosen once: the same bits at every width (cpu_exp.h; NaN
// payloads aside).
//
//   const float max = RowMax(row, n);
//   const double sum = ExpShifted(row, n, max, row);  // row[j] <- e^(row[j] - max)
//
// Thread-safe (pure functions of their arguments).
#ifndef USINE_RUNTIME_NN_INTERNAL_CPU_SOFTMAX_ROWS_H_
#define USINE_RUNTIME_NN_INTERNAL_CPU_SOFTMAX_ROWS_H_

#include <cstdint>
#include <optional>

namespace usine::nn_internal {

// max(x[0, n)). REQUIRES: n >= 1, no NaN among them (else the result is unspecified).
float RowMax(const float* x, int64_t n);
double RowMax(const double* x, int64_t n);

// The sum of e^(x[j] - shift) over [0, n), in double; x is left as it is.
double SumExpShifted(const float* x, int64_t n, float shift);
double SumExpShifted(const double* x, int64_t n, double shift);

// out[j] <- e^(x[j] - shift) for j in [0, n); returns the sum of the new values, in double: the
// same bits as SumExpShifted. `out` may be `x` (in place).
double ExpShifted(const float* x, int64_t n, float shift, float* out);
double ExpShifted(const double* x, int64_t n, double shift, double* out);

// ExpShifted on vectors of `lanes` (4, 8 or 16) floats, for the tests that hold the widths to
// the same bits; nullopt where the cpu has no such vectors.
std::optional<double> ExpShiftedAtLanes(int lanes, const float* x, int64_t n, float shift,
                                        float* out);

}  // namespace usine::nn_internal

#endif  // USINE_RUNTIME_NN_INTERNAL_CPU_SOFTMAX_ROWS_H_
