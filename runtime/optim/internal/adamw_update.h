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
  // Each gradient element is read as grad * grad_scale rounded to f32: gradient clipping's
  // factor (ClipFactor, grad_clip.h) applied as ScaleGradients would, the same bits, without
  // a pass of its own over the gradients. 1 reads them as they are.
  float grad_scale = 1.0f;
};

// The coefficients of update number t (from 1) at learning rate lr, the gradients scaled by
// grad_scale.
AdamWCoefficients AdamWCoefficientsAt(const AdamWOptions& options, double lr, int64_t t,
                                      float grad_scale = 1.0f);

// adamw.h's formulas over n elements from the gradients times c.grad_scale, in double per
// element, stored in f32; weight decay only when `decay`. value, exp_avg and exp_avg_sq are
// updated in place; grad is left as it is.
void AdamWUpdate(const AdamWCoefficients& c, bool decay, int64_t n, float* value, const float* grad,
                 float* exp_avg, float* exp_avg_sq);

}  // namespace usine::optim_internal

#endif  // USINE_RUNTIME_OPTIM_INTERNAL_ADAMW_UPDATE_H_
