// The Communicator of a world of one: every collective is a copy (or nothing), on the cpu or
// on one CUDA device, and nothing can hang. A single process started without a launcher
// gets one, so that the same training code runs with and without MPI.
//
//   LocalCommunicator world("world", Device::Cpu());
//   RETURN_IF_ERROR(world.AllReduce(grads, ReduceOp::kAvg));  // grads unchanged
#ifndef USINE_COLLECTIVES_LOCAL_LOCAL_COMMUNICATOR_H_
#define USINE_COLLECTIVES_LOCAL_LOCAL_COMMUNICATOR_H_

#include <memory>
#include <string>

#include "collectives/communicator.h"

namespace usine {

class LocalCommunicator final : public Communicator {
 public:
  explicit LocalCommunicator(std::string name, Device device = Device::Cpu(),
                             CommunicatorOptions options = {})
      : Communicator(0, 1, std::move(name), device, options) {}

  absl::string_view backend() const override { return "local"; }

 protected:
  absl::StatusOr<std::unique_ptr<Work>> StartAllReduce(const Call& call, const Tensor& send,
                                                       const Tensor& recv, ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<Work>> StartReduceScatter(const Call& call, const Tensor& send,
                                                           const Tensor& recv,
                                                           ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<Work>> StartAllGather(const Call& call, const Tensor& send,
                                                       const Tensor& recv) override;
  absl::StatusOr<std::unique_ptr<Work>> StartBroadcast(const Call& call, const Tensor& tensor,
                                                       int root) override;
  absl::StatusOr<std::unique_ptr<Work>> StartBarrier(const Call& call) override;
  absl::StatusOr<std::unique_ptr<Work>> StartSend(const Call& call, const Tensor& tensor,
                                                  int peer) override;
  absl::StatusOr<std::unique_ptr<Work>> StartRecv(const Call& call, const Tensor& tensor,
                                                  int peer) override;
  absl::StatusOr<std::unique_ptr<Communicator>> DoSplit(const Call& call, int color, int key,
                                                        std::string name) override;
};

}  // namespace usine

#endif  // USINE_COLLECTIVES_LOCAL_LOCAL_COMMUNICATOR_H_
