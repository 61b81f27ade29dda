#include "runtime/train/data_parallel.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"

namespace usine {

absl::StatusOr<std::unique_ptr<GradientReducer>> AttachGradientReducer(
    Module& model, Communicator& dp, const GradientReducerOptions& options) {
  const std::vector<NamedParameter> parameters = model.Parameters();
  RETURN_IF_ERROR(RequireGradients(parameters, "GradientReducer"));
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

GradientReadyMarker::GradientReadyMarker(Module& model, GradientReducer& reducer)
    : reducer_(reducer) {
  const std::vector<NamedParameter> parameters = model.Parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    index_[parameters[i].parameter] = static_cast<int>(i);
  }
  marked_.assign(parameters.size(), false);
}

absl::Status GradientReadyMarker::MarkModule(Module& finished) {
  for (const NamedParameter& p : finished.Parameters()) {
    const auto it = index_.find(p.parameter);
    if (it == index_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("GradientReadyMarker: parameter '", p.name, "' is not the reducer's"));
    }
    RETURN_IF_ERROR(WithContext(reducer_.MarkReady(it->second), p.name));
    marked_[it->second] = true;
  }
  return absl::OkStatus();
}

absl::Status GradientReadyMarker::MarkRemaining() {
  for (size_t i = 0; i < marked_.size(); ++i) {
    if (marked_[i]) continue;
    RETURN_IF_ERROR(reducer_.MarkReady(static_cast<int>(i)));
    marked_[i] = true;
  }
  return absl::OkStatus();
}

}  // namespace usine
