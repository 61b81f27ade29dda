// The element-wise AdamW update that AdamW (adamw.h) and ZeroAdamW (zero_adamw.h) share, so
// that a sharded run and a replicated one compute bit-identical updates from equal gradients.
//
//   const AdamWCoefficients c = AdamWCoefficientsAt(options, lr, /*t=*/step + 1);
//   AdamWUpdate(c, /*decay=*/p.decay, n, value, grad, exp_avg, exp_avg_sq);
#ifndef USINE_RUNTIME_OPTIM_INTERNAL_ADAMW_UPDATE_H_
#define USINE_RUNTIME_OPTIM_INTERNAL_ADAMW_UPDATE_H_

#include <cstdint>

#include "runtime/optim/adamw.h"

namespace usine::optim_internal {

struct AdamWCoefficients {
  double lr = 0;
  double beta1 = 0;
  double beta2 = 0;
  double eps = 0;
  double weight_decay = 0;
  double correction1 = 1;  // 1 - beta1^t
  double correction2 = 1;  // 1 - beta2^t
};

// The coefficients of update number t (from 1) at learning rate lr.
AdamWCoefficients AdamWCoefficientsAt(const AdamWOptions& options, double lr, int64_t t);

// adamw.h's formulas over n elements, in double per element, stored in f32; weight decay only
// when `decay`. value, exp_avg and exp_avg_sq are updated in place.
void AdamWUpdate(const AdamWCoefficients& c, bool decay, int64_t n, float* value, const float* grad,
                 float* exp_avg, float* exp_avg_sq);

}  // namespace usine::optim_internal

#endif  // USINE_RUNTIME_OPTIM_INTERNAL_ADAMW_UPDATE_H_
