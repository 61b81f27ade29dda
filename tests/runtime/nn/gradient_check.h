// Finite-difference checks of the layers' backward passes, in f64 on the cpu.
//
// The objective is L = sum(y * r) for a fixed random r, so that dL/dy = r is what a layer's
// Backward gets. Each checked element e of an input or a parameter is perturbed by +-h and
// (L(e + h) - L(e - h)) / 2h compared with the analytic gradient: with h = 1e-5 in f64 the
// central difference is within ~1e-9 of the derivative for these smooth, O(1) functions, so
// the tolerance |analytic - numeric| <= 1e-7 + 1e-6 |numeric| fails any wrong term.
#ifndef USINE_TESTS_RUNTIME_NN_GRADIENT_CHECK_H_
#define USINE_TESTS_RUNTIME_NN_GRADIENT_CHECK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "runtime/core/tensor.h"
#include "runtime/nn/module.h"

namespace usine::testing {

inline constexpr double kStep = 1e-5;
inline constexpr double kAbsTolerance = 1e-7;
inline constexpr double kRelTolerance = 1e-6;

// An f64 tensor of uniform values in [-scale, scale), a function of `seed`.
Tensor RandomF64(const Shape& shape, uint64_t seed, double scale = 1.0);

// Sets every parameter of `module` to random values (LayerNorm weights around 1), so that no
// term of a gradient hides behind a zero or a one.
void RandomizeParameters(Module& module, uint64_t seed);

// sum(a * b) over the elements of two f64 tensors of equal size.
double Dot(const Tensor& a, const Tensor& b);

// Compares `analytic` (f64, the shape of `variable`) with central differences of
// `objective` with respect to `variable`'s elements (every element, or about `max_checks`
// evenly spaced ones), reporting failures under `what`.
void ExpectGradientMatches(const Tensor& variable, const Tensor& analytic,
                           const std::function<double()>& objective, const std::string& what,
                           int64_t max_checks = 400);

// The same for every parameter of `module`, whose gradients hold the analytic values.
void ExpectParameterGradientsMatch(Module& module, const std::function<double()>& objective,
                                   int64_t max_checks_each = 400);

}  // namespace usine::testing

#endif  // USINE_TESTS_RUNTIME_NN_GRADIENT_CHECK_H_
