// Data-parallel gradient reduction, overlapped with backward: gradients live in contiguous
// buckets, and a bucket's all-reduce (the average over the data-parallel group) starts as
// soon as its last gradient is marked ready, while backward goes on computing the others.
//
//   ASSIGN_OR_RETURN(auto reducer, GradientReducer::Create(grid.comm(ParallelAxis::kData),
//                                                          {{"wte", {50304, 768}, kF32}, ...}));
//   // The model's gradient i is reducer->gradient(i), a view into a bucket.
//   for (micro = 0; micro < accumulation; ++micro) {
//     RETURN_IF_ERROR(reducer->BeginStep(/*reduce=*/micro == accumulation - 1));
//     ... backward, which accumulates into the gradients and, as each is final, calls
//     RETURN_IF_ERROR(reducer->MarkReady(i));
//   }
//   RETURN_IF_ERROR(reducer->Finish());  // gradients now hold the average over DP ranks
//
// Layout: parameters are registered in the model's order; buckets are filled in reverse
// order (backward produces the last parameters' gradients first), up to
// bucket_bytes each, one dtype per bucket. Buckets are launched strictly in bucket order,
// whatever order gradients become ready in, so that every rank issues the same collectives.
// CPU tensors: the all-reduces run on the communicator's worker thread (MPI). CUDA tensors:
// on a communication stream that waits, through an event, for the compute stream passed to
// BeginStep; Finish waits for the reductions and orders the compute stream after them.
//
// Not thread-safe: BeginStep, MarkReady and Finish come from the training thread.
#ifndef USINE_COLLECTIVES_GRADIENT_REDUCER_H_
#define USINE_COLLECTIVES_GRADIENT_REDUCER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/communicator.h"
#include "runtime/core/stream.h"
#include "runtime/core/tensor.h"

namespace usine {

struct GradientSpec {
  std::string name;
  Shape shape;
  DType dtype = DType::kF32;
};

struct GradientReducerOptions {
  // Upper bound on a bucket's size (a single gradient larger than this gets a bucket of its
  // own). Default: 25 MiB.
  int64_t bucket_bytes = int64_t{25} << 20;
};

class GradientReducer {
 public:
  // Allocates the buckets on dp.device(), zero-filled. `dp` must outlive the reducer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GradientReducer>> Create(
      Communicator& dp, std::vector<GradientSpec> specs, GradientReducerOptions options = {});
  ~GradientReducer();

  int num_gradients() const { return static_cast<int>(slots_.size()); }
  // Gradient `index`, a view into its bucket. REQUIRES: 0 <= index < num_gradients().
  const Tensor& gradient(int index) const { return slots_[index].view; }
  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // The bucket that holds gradient `index`.
  int bucket_of(int index) const { return slots_[index].bucket; }
  // Buckets whose all-reduce has been started in the current step.
  int launched_buckets() const { return next_launch_; }

  // Starts a (micro-)step. With reduce = false (a gradient-accumulation micro-step other than
  // the last) MarkReady and Finish do nothing. `compute` is the stream that writes the
  // gradients; without it, the host stream for CPU tensors and the device's default stream
  // for CUDA ones (where usine's layers work).
  [[nodiscard]] absl::Status BeginStep(bool reduce);
  [[nodiscard]] absl::Status BeginStep(bool reduce, const Stream& compute);
  // Gradient `index` is final for this step. When it completes its bucket, that bucket (and
  // any complete buckets after it, in order) starts reducing.
  [[nodiscard]] absl::Status MarkReady(int index);
  // Waits until every bucket is reduced (CUDA: also orders the compute stream after them).
  // An error names the gradients never marked ready.
  [[nodiscard]] absl::Status Finish();
  // Sets every gradient to zero (for the next accumulation cycle), on `compute` or by default
  // on BeginStep's default stream.
  [[nodiscard]] absl::Status ZeroGradients();
  [[nodiscard]] absl::Status ZeroGradients(const Stream& compute);

 private:
  struct Slot {
    std::string name;
    int bucket = 0;
    Tensor view;
    bool ready = false;
  };
  struct Bucket {
    Tensor buffer;
    int pending = 0;  // Gradients not yet ready in this step.
    std::unique_ptr<Work> work;
  };

  explicit GradientReducer(Communicator& dp) : dp_(dp) {}
  absl::Status LaunchReadyBuckets();

  Communicator& dp_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  bool reducing_ = false;
  int next_launch_ = 0;
  // Where the gradients are written when BeginStep names no stream.
  Stream DefaultCompute() const;
  Stream compute_ = Stream::Host();  // Borrowed from BeginStep.
  // CUDA only: the stream the reductions run on, and the events that order it.
  std::unique_ptr<Stream> comm_stream_;
  std::unique_ptr<Event> ready_event_;
  std::unique_ptr<Event> reduced_event_;
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_GRADIENT_REDUCER_H_
