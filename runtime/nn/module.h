// The contract of a layer (a module): it owns named parameters and their gradients, computes
// Forward and Backward explicitly, and lists its parameters, and its children's, under dotted
// names ("h.0.attn.c_attn.weight", GPT-2's Hugging Face names where natural), so that the
// optimizer, the gradient reducer and checkpoints can walk them.
//
// Forward and Backward are not virtual: each module declares them with its own arguments
// (Linear: a tensor in, a tensor out; Gpt: a batch of tokens in, the loss out). Forward saves
// what Backward needs (tensor handles, no copies); Backward takes the gradient of the output,
// *adds* the parameters' gradients into their `grad` tensors (so that micro-batches
// accumulate; ZeroGrad() starts afresh) and returns the gradient of the input. Backward
// REQUIRES a Forward since the last Backward or ReleaseActivations.
//
// A user-written module:
//
//   class Scale : public Module {  // y = x * w, elementwise over the last dimension
//    public:
//     static absl::StatusOr<std::unique_ptr<Scale>> Create(int64_t dim) {
//       auto m = std::unique_ptr<Scale>(new Scale);
//       ASSIGN_OR_RETURN(m->w_, m->AddParameter("weight", {dim}, DType::kF32, Device::Cpu(),
//                                                /*decay=*/false));
//       RETURN_IF_ERROR(Fill(m->w_->value, 1.0));
//       return m;
//     }
//     absl::StatusOr<Tensor> Forward(const Tensor& x) { x_ = x; ... y = x * w ...; return y; }
//     absl::StatusOr<Tensor> Backward(const Tensor& dy) {
//       ... w_->grad += sum over rows of dy * x_; dx = dy * w ...; return dx;
//     }
//    private:
//     void ClearSaved() override { x_.reset(); }
//     Parameter* w_ = nullptr;
//     std::optional<Tensor> x_;
//   };
//
// A composite module registers its children (members it owns) with AddChild("attn", ...);
// Parameters() then lists "attn.c_attn.weight" and so on, depth first, in registration order.
//
// Thread-compatible: one thread drives a module; const methods may run concurrently.
#ifndef USINE_RUNTIME_NN_MODULE_H_
#define USINE_RUNTIME_NN_MODULE_H_

#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "checkpoint/state_dict.h"
#include "runtime/core/device.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/core/tensor.h"

namespace usine {

// How a tensor-parallel layer (tensor_parallel.h) splits a parameter over the `size` ranks
// of its TP group: dimension `dim` of the full tensor is `groups` equal blocks (c_attn's
// q|k|v: 3), each cut into `size` equal pieces; rank `rank` holds piece `rank` of every
// block, concatenated. The default (size 1) is a parameter every rank holds whole.
struct TensorParallelSplit {
  int dim = 0;
  int groups = 1;
  int rank = 0;
  int size = 1;

  bool sharded() const { return size > 1; }
};

// A parameter and its gradient, same shape, dtype and device. The gradient starts at zero; it
// is undefined (!grad.defined()) in a model built for inference only (AddParameter).
struct Parameter {
  std::string name;  // Local to its module ("weight").
  Tensor value;
  Tensor grad;
  bool decay = true;  // AdamW's weight decay applies (false for biases and LayerNorm).
  // Set by tensor-parallel layers: value and grad are this rank's shard. Default: whole.
  TensorParallelSplit split = {};
};

// A parameter with its full dotted name ("h.0.ln_1.weight").
struct NamedParameter {
  std::string name;
  Parameter* parameter = nullptr;
};

class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module() = default;

  // This module's parameters, then its children's ("<child>.<name>"), depth first in
  // registration order. The pointers stay valid as long as the module. (Tied weights are one
  // Parameter used by two computations, e.g. Gpt's wte and output projection: listed once.)
  std::vector<NamedParameter> Parameters();

  // Sets every gradient to zero: on a CUDA device enqueued on its default stream, where the
  // layers run, without waiting for the device. FailedPrecondition for a model without
  // gradients.
  [[nodiscard]] absl::Status ZeroGrad();

  // Adds every parameter's value (not its gradient) to `state` as "<prefix><name>", a tensor of
  // the parameter's logical (unsplit) shape: a whole parameter as one piece, a
  // tensor-parallel shard as its boxes of the logical tensor (one per block: q, k and v for
  // c_attn), views of the value (shard_boxes.h), so a checkpoint load fills them in place at
  // whatever layout wrote it.
  [[nodiscard]] absl::Status AddToStateDict(StateDict& state, absl::string_view prefix = "");

  // Drops what Forward saved for Backward, here and in every child.
  void ReleaseActivations();

 protected:
  // A new parameter of this module with a zero gradient (none with `gradient` false: a layer
  // passes its ParameterInitializer's gradients()); its value is uninitialised.
  // REQUIRES: `name` is new in this module and has no '.'.
  [[nodiscard]] absl::StatusOr<Parameter*> AddParameter(std::string name, Shape shape, DType dtype,
                                                        Device device, bool decay,
                                                        bool gradient = true);
  // Lists `child`'s parameters under "<name>.". `child` is owned by this module (a member)
  // and outlives the registration. REQUIRES: `name` is new among the children.
  void AddChild(std::string name, Module* child);

  // Drops this module's own saved activations (not its children's).
  virtual void ClearSaved() {}

 private:
  void Collect(const std::string& prefix, std::vector<NamedParameter>& out);

  std::deque<Parameter> parameters_;  // A deque keeps Parameter* stable as it grows.
  std::vector<std::pair<std::string, Module*>> children_;
};

// OK when every parameter has a gradient; else FailedPrecondition naming the first without
// one and `user` (the optimizer or reducer that needs them).
[[nodiscard]] absl::Status RequireGradients(absl::Span<const NamedParameter> parameters,
                                            absl::string_view user);

// The parameters' gradients when they all have one device and one dtype (none: an empty
// vector), for the kernels that take many tensors in one call (Fill, Scale, L2Norms: on CUDA a
// few launches for a whole model rather than one or two a parameter); nullopt otherwise.
std::optional<std::vector<Tensor>> GradientsOfOneKind(absl::Span<const NamedParameter> parameters);

}  // namespace usine

#endif  // USINE_RUNTIME_NN_MODULE_H_
