#include "runtime/nn/module.h"

#include "absl/strings/str_cat.h"

#include "runtime/core/op_timeline.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stream.h"
#include "runtime/kernels/elementwise.h"
#include "runtime/nn/shard_boxes.h"

namespace usine {

std::vector<NamedParameter> Module::Parameters() {
  std::vector<NamedParameter> out;
  Collect("", out);
  return out;
}

void Module::Collect(const std::string& prefix, std::vector<NamedParameter>& out) {
  for (Parameter& p : parameters_) out.push_back({absl::StrCat(prefix, p.name), &p});
  for (auto& [name, child] : children_) child->Collect(absl::StrCat(prefix, name, "."), out);
}

absl::Status RequireGradients(absl::Span<const NamedParameter> parameters, absl::string_view user) {
  for (const NamedParameter& p : parameters) {
    if (!p.parameter->grad.defined()) {
      return absl::FailedPreconditionError(
          absl::StrCat(user, ": parameter ", p.name,
                       " has no gradient (its model was built for inference only)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Module::ZeroGrad() {
  const std::vector<NamedParameter> parameters = Parameters();
  RETURN_IF_ERROR(RequireGradients(parameters, "ZeroGrad"));
  if (parameters.empty()) return absl::OkStatus();
  MarkOp("zero_grad", parameters.front().parameter->value.device());
  if (const std::optional<std::vector<Tensor>> grads = GradientsOfOneKind(parameters)) {
    const Stream stream = Stream::Default(grads->front().device());
    return WithContext(Fill(*grads, 0.0, stream), "ZeroGrad");
  }
  for (const NamedParameter& p : parameters) {
    const Tensor& grad = p.parameter->grad;
    RETURN_IF_ERROR(WithContext(Fill(grad, 0.0, Stream::Default(grad.device())), p.name));
  }
  return absl::OkStatus();
}

std::optional<std::vector<Tensor>> GradientsOfOneKind(absl::Span<const NamedParameter> parameters) {
  std::vector<Tensor> grads;
  grads.reserve(parameters.size());
  for (const NamedParameter& p : parameters) {
    const Tensor& grad = p.parameter->grad;
    if (!grads.empty() &&
        (grad.device() != grads.front().device() || grad.dtype() != grads.front().dtype())) {
      return std::nullopt;
    }
    grads.push_back(grad);
  }
  return grads;
}

absl::Status Module::AddToStateDict(StateDict& state, absl::string_view prefix) {
  for (const NamedParameter& p : Parameters()) {
    RETURN_IF_ERROR(AddShardPieces(state, absl::StrCat(prefix, p.name), p.parameter->value,
                                   p.parameter->split));
  }
  return absl::OkStatus();
}

void Module::ReleaseActivations() {
  ClearSaved();
  for (auto& [name, child] : children_) child->ReleaseActivations();
}

absl::StatusOr<Parameter*> Module::AddParameter(std::string name, Shape shape, DType dtype,
                                                Device device, bool decay, bool gradient) {
  for (const Parameter& p : parameters_) {
    if (p.name == name) return absl::AlreadyExistsError(absl::StrCat("parameter '", name, "'"));
  }
  Parameter p{.name = std::move(name), .value = Tensor(), .grad = Tensor(), .decay = decay};
  ASSIGN_OR_RETURN(p.value, Tensor::Empty(shape, dtype, device));
  if (gradient) {
    ASSIGN_OR_RETURN(p.grad, Tensor::Empty(shape, dtype, device));
    RETURN_IF_ERROR(WithContext(Fill(p.grad, 0.0), p.name));
  }
  parameters_.push_back(std::move(p));
  return &parameters_.back();
}

void Module::AddChild(std::string name, Module* child) {
  children_.emplace_back(std::move(name), child);
}

}  // namespace usine
