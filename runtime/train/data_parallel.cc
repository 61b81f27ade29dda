#include "runtime/train/data_parallel.h"

#include <string>
#include <vector>

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"

namespace usine {

absl::StatusOr<std::unique_ptr<GradientReducer>> AttachGradientReducer(
    Module& model, Communicator& dp, const GradientReducerOptions& options) {
  const std::vector<NamedParameter> parameters = model.Parameters();
  std::vector<GradientSpec> specs;
  specs.reserve(parameters.size());
  for (const NamedParameter& p : parameters) {
    specs.push_back({p.name, p.parameter->grad.shape(), p.parameter->grad.dtype()});
  }
  ASSIGN_OR_RETURN(std::unique_ptr<GradientReducer> reducer,
                   GradientReducer::Create(dp, std::move(specs), options));
  for (size_t i = 0; i < parameters.size(); ++i) {
    const Tensor& view = reducer->gradient(static_cast<int>(i));
    RETURN_IF_ERROR(WithContext(Copy(parameters[i].parameter->grad, view), parameters[i].name));
    parameters[i].parameter->grad = view;
  }
  return reducer;
}

absl::Status MarkGradientsReady(GradientReducer& reducer) {
  for (int i = reducer.num_gradients() - 1; i >= 0; --i) RETURN_IF_ERROR(reducer.MarkReady(i));
  return absl::OkStatus();
}

}  // namespace usine
