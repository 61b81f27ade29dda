#include "collectives/mpi/mpi_communicator.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

#include "collectives/internal/completion.h"
#include "runtime/core/mpi_status.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/elementwise.h"

namespace usine {
namespace {

using collectives_internal::Completion;

bool IsHalf(DType d) { return d == DType::kBF16 || d == DType::kF16; }

MPI_Datatype ReductionType(DType d) {
  switch (d) {
    case DType::kI32:
      return MPI_INT32_T;
    case DType::kI64:
      return MPI_INT64_T;
    default:
      return MPI_FLOAT;  // f32, and bf16/f16 widened to f32.
  }
}

MPI_Op ToMpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    default:
      return MPI_SUM;  // kAvg: the sum, divided afterwards.
  }
}

absl::StatusOr<int> MpiCount(int64_t count, absl::string_view what) {
  if (count > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", count, " elements exceed one MPI call's count (2^31 - 1)"));
  }
  return static_cast<int>(count);
}

// f32 values divided by the number of ranks (kAvg), in place.
void DivideBy(const Tensor& f32, int size) {
  float* p = static_cast<float*>(f32.raw_data());
  const float divisor = static_cast<float>(size);
  for (int64_t i = 0, n = f32.numel(); i < n; ++i) p[i] /= divisor;
}

// A bf16/f16 tensor's values in a new f32 tensor.
absl::StatusOr<Tensor> Widen(const Tensor& t) {
  ASSIGN_OR_RETURN(Tensor wide, Tensor::Empty(t.shape(), DType::kF32));
  RETURN_IF_ERROR(Cast(t, wide));
  return wide;
}

bool MpiFinalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

// A posted point-to-point request; completed by polling MPI_Test, under the watchdog.
class RequestWork final : public Work {
 public:
  RequestWork(MPI_Request request, Tensor tensor, Watchdog::Token token)
      : request_(request), tensor_(std::move(tensor)), token_(std::move(token)) {}
  ~RequestWork() override { Wait().IgnoreError(); }

  absl::Status Wait() override {
    for (int polls = 0;; ++polls) {
      ASSIGN_OR_RETURN(bool done, Test());
      if (done) return absl::OkStatus();
      // Spin briefly for short messages, then stop burning the core the peer may need.
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  absl::StatusOr<bool> Test() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (request_ == MPI_REQUEST_NULL) return status_.ok() ? absl::StatusOr<bool>(true) : status_;
    int done = 0;
    status_ = USINE_MPI_STATUS(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
    if (!status_.ok()) request_ = MPI_REQUEST_NULL;
    if (request_ == MPI_REQUEST_NULL || done) {
      request_ = MPI_REQUEST_NULL;
      token_.Release();
      tensor_.reset();
      if (!status_.ok()) return status_;
      return true;
    }
    return false;
  }

 private:
  std::mutex mu_;
  MPI_Request request_;
  std::optional<Tensor> tensor_;  // Keeps the buffer alive while MPI uses it.
  Watchdog::Token token_;
  absl::Status status_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::Create(
    MPI_Comm comm, std::string name, CommunicatorOptions options, MpiOptions mpi_options) {
  if (mpi_options.chunk_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("MpiOptions::chunk_bytes ", mpi_options.chunk_bytes, " is below 1 KiB"));
  }
  int provided = 0;
  MPI_Query_thread(&provided);
  if (provided < MPI_THREAD_MULTIPLE) {
    return absl::FailedPreconditionError(
        "MpiCommunicator needs MPI initialised with MPI_THREAD_MULTIPLE");
  }
  MPI_Comm calls = MPI_COMM_NULL, probes = MPI_COMM_NULL;
  RETURN_IF_ERROR(USINE_MPI_STATUS(MPI_Comm_dup(comm, &calls)));
  RETURN_IF_ERROR(USINE_MPI_STATUS(MPI_Comm_dup(comm, &probes)));
  MPI_Comm_set_errhandler(calls, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(probes, MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  MPI_Comm_rank(calls, &rank);
  MPI_Comm_size(calls, &size);
  return std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(calls, std::make_unique<MpiArrivalProbe>(probes), rank, size,
                          std::move(name), options, mpi_options));
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::unique_ptr<MpiArrivalProbe> probe, int rank,
                                 int size, std::string name, CommunicatorOptions options,
                                 MpiOptions mpi_options)
    : Communicator(rank, size, std::move(name), Device::Cpu(), options),
      comm_(comm),
      mpi_options_(mpi_options),
      probe_(std::move(probe)),
      executor_(std::make_unique<collectives_internal::SerialExecutor>()) {}

MpiCommunicator::~MpiCommunicator() {
  executor_.reset();  // Runs what is still queued.
  if (!MpiFinalized()) MPI_Comm_free(&comm_);
}

std::unique_ptr<Work> MpiCommunicator::Run(const Call& call, std::vector<Tensor> keep_alive,
                                           std::function<absl::Status()> op) {
  auto work = std::make_shared<Completion>(std::move(keep_alive));
  auto task = [this, work, op = std::move(op), description = call.Describe(*this),
               timeout = call.timeout] {
    Watchdog::Token token = Watchdog::Get().Track(description, timeout, probe_.get());
    absl::Status status = op();
    token.Release();
    work->Complete(WithContext(status, description));
  };
  if (call.blocking) {
    executor_->RunInline(task);
  } else {
    executor_->Submit(std::move(task));
  }
  // Work is handed out as a unique_ptr; the task keeps its own reference until it is done.
  struct Handle final : Work {
    explicit Handle(std::shared_ptr<Completion> c) : completion(std::move(c)) {}
    ~Handle() override { completion->Wait().IgnoreError(); }
    absl::Status Wait() override { return completion->Wait(); }
    absl::StatusOr<bool> Test() override { return completion->Test(); }
    std::shared_ptr<Completion> completion;
  };
  return std::make_unique<Handle>(std::move(work));
}

absl::Status MpiCommunicator::ChunkedAllReduce(const void* send, void* recv, int64_t count,
                                               MPI_Datatype type, MPI_Op op) {
  int type_size = 0;
  MPI_Type_size(type, &type_size);
  const int64_t chunk = std::max<int64_t>(1, mpi_options_.chunk_bytes / type_size);
  for (int64_t begin = 0; begin < count; begin += chunk) {
    const int n = static_cast<int>(std::min(chunk, count - begin));
    const int64_t offset = begin * type_size;
    void* out = static_cast<char*>(recv) + offset;
    const void* in = send == MPI_IN_PLACE ? MPI_IN_PLACE : static_cast<const char*>(send) + offset;
    RETURN_IF_ERROR(USINE_MPI_STATUS(MPI_Allreduce(in, out, n, type, op, comm_)));
  }
  return absl::OkStatus();
}

absl::Status MpiCommunicator::ChunkedReduceScatter(const void* send, void* recv, int64_t count,
                                                   MPI_Datatype type, MPI_Op op) {
  int type_size = 0;
  MPI_Type_size(type, &type_size);
  const int64_t piece = std::max<int64_t>(1, mpi_options_.chunk_bytes / (type_size * size()));
  if (count <= piece) {
    return USINE_MPI_STATUS(
        MPI_Reduce_scatter_block(send, recv, static_cast<int>(count), type, op, comm_));
  }
  std::vector<char> packed(static_cast<size_t>(piece) * size() * type_size);
  for (int64_t begin = 0; begin < count; begin += piece) {
    const int64_t n = std::min(piece, count - begin);
    for (int r = 0; r < size(); ++r) {  // Piece `begin` of every rank's chunk, side by side.
      std::memcpy(packed.data() + static_cast<size_t>(r) * n * type_size,
                  static_cast<const char*>(send) + (r * count + begin) * type_size,
                  static_cast<size_t>(n) * type_size);
    }
    RETURN_IF_ERROR(USINE_MPI_STATUS(
        MPI_Reduce_scatter_block(packed.data(), static_cast<char*>(recv) + begin * type_size,
                                 static_cast<int>(n), type, op, comm_)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartAllReduce(const Call& call,
                                                                      const Tensor& send,
                                                                      const Tensor& recv,
                                                                      ReduceOp op) {
  const int64_t count = send.numel();
  const bool in_place = send.raw_data() == recv.raw_data();
  if (!in_place && send.Overlaps(recv)) {
    return absl::InvalidArgumentError("AllReduce: send and recv overlap without being equal");
  }
  return Run(call, {send, recv}, [this, send, recv, op, count, in_place]() -> absl::Status {
    if (count == 0) return absl::OkStatus();
    const MPI_Datatype type = ReductionType(send.dtype());
    if (IsHalf(send.dtype())) {
      ASSIGN_OR_RETURN(Tensor wide, Widen(send));
      RETURN_IF_ERROR(ChunkedAllReduce(MPI_IN_PLACE, wide.raw_data(), count, type, ToMpiOp(op)));
      if (op == ReduceOp::kAvg) DivideBy(wide, size());
      return Cast(wide, recv);
    }
    RETURN_IF_ERROR(ChunkedAllReduce(in_place ? MPI_IN_PLACE : send.raw_data(), recv.raw_data(),
                                     count, type, ToMpiOp(op)));
    if (op == ReduceOp::kAvg) DivideBy(recv, size());
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartReduceScatter(const Call& call,
                                                                          const Tensor& send,
                                                                          const Tensor& recv,
                                                                          ReduceOp op) {
  const int64_t count = recv.numel();
  return Run(call, {send, recv}, [this, send, recv, op, count]() -> absl::Status {
    if (count == 0) return absl::OkStatus();
    const MPI_Datatype type = ReductionType(send.dtype());
    // The result goes to a scratch buffer when it cannot go to recv directly: for bf16/f16
    // (reduced in f32) and when recv lies inside send (the in-place form).
    const bool half = IsHalf(send.dtype());
    Tensor input = send;
    if (half) {
      ASSIGN_OR_RETURN(input, Widen(send));
    }
    Tensor output = recv;
    if (half || send.Overlaps(recv)) {
      ASSIGN_OR_RETURN(output, Tensor::Empty(recv.shape(), half ? DType::kF32 : recv.dtype()));
    }
    RETURN_IF_ERROR(
        ChunkedReduceScatter(input.raw_data(), output.raw_data(), count, type, ToMpiOp(op)));
    if (op == ReduceOp::kAvg) DivideBy(output, size());
    if (half) return Cast(output, recv);
    if (output.raw_data() != recv.raw_data()) {
      std::memcpy(recv.raw_data(), output.raw_data(), recv.nbytes());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartAllGather(const Call& call,
                                                                      const Tensor& send,
                                                                      const Tensor& recv) {
  ASSIGN_OR_RETURN(const int bytes, MpiCount(static_cast<int64_t>(send.nbytes()), "AllGather"));
  const char* own_chunk =
      static_cast<const char*>(recv.raw_data()) + static_cast<size_t>(rank()) * send.nbytes();
  const bool in_place = send.numel() > 0 && send.raw_data() == own_chunk;
  if (!in_place && send.Overlaps(recv)) {
    return absl::InvalidArgumentError(
        "AllGather: send overlaps recv without being this rank's chunk of it");
  }
  return Run(call, {send, recv}, [this, send, recv, bytes, in_place]() -> absl::Status {
    if (bytes == 0) return absl::OkStatus();
    return USINE_MPI_STATUS(MPI_Allgather(in_place ? MPI_IN_PLACE : send.raw_data(), bytes,
                                          MPI_BYTE, recv.raw_data(), bytes, MPI_BYTE, comm_));
  });
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartBroadcast(const Call& call,
                                                                      const Tensor& tensor,
                                                                      int root) {
  ASSIGN_OR_RETURN(const int bytes, MpiCount(static_cast<int64_t>(tensor.nbytes()), "Broadcast"));
  return Run(call, {tensor}, [this, tensor, root, bytes]() -> absl::Status {
    if (bytes == 0) return absl::OkStatus();
    return USINE_MPI_STATUS(MPI_Bcast(tensor.raw_data(), bytes, MPI_BYTE, root, comm_));
  });
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartBarrier(const Call& call) {
  return Run(call, {}, [this] { return USINE_MPI_STATUS(MPI_Barrier(comm_)); });
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartPointToPoint(const Call& call,
                                                                         const Tensor& tensor,
                                                                         int peer, bool send) {
  ASSIGN_OR_RETURN(const int bytes, MpiCount(static_cast<int64_t>(tensor.nbytes()), "Send/Recv"));
  Watchdog::Token token = Watchdog::Get().Track(
      absl::StrCat(call.Describe(*this), send ? " to rank " : " from rank ", peer), call.timeout,
      probe_.get());
  MPI_Request request = MPI_REQUEST_NULL;
  constexpr int kTag = 0;
  if (send) {
    RETURN_IF_ERROR(USINE_MPI_STATUS(
        MPI_Isend(tensor.raw_data(), bytes, MPI_BYTE, peer, kTag, comm_, &request)));
  } else {
    RETURN_IF_ERROR(USINE_MPI_STATUS(
        MPI_Irecv(tensor.raw_data(), bytes, MPI_BYTE, peer, kTag, comm_, &request)));
  }
  return std::make_unique<RequestWork>(request, tensor, std::move(token));
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartSend(const Call& call,
                                                                 const Tensor& tensor, int peer) {
  return StartPointToPoint(call, tensor, peer, /*send=*/true);
}

absl::StatusOr<std::unique_ptr<Work>> MpiCommunicator::StartRecv(const Call& call,
                                                                 const Tensor& tensor, int peer) {
  return StartPointToPoint(call, tensor, peer, /*send=*/false);
}

absl::StatusOr<std::unique_ptr<Communicator>> MpiCommunicator::DoSplit(const Call& call, int color,
                                                                       int key, std::string name) {
  MPI_Comm split = MPI_COMM_NULL;
  RETURN_IF_ERROR(Run(call, {}, [&] {
                    return USINE_MPI_STATUS(MPI_Comm_split(comm_, color, key, &split));
                  })->Wait());
  absl::StatusOr<std::unique_ptr<MpiCommunicator>> child =
      Create(split, std::move(name), options(), mpi_options_);
  MPI_Comm_free(&split);
  if (!child.ok()) return child.status();
  return std::unique_ptr<Communicator>(std::move(*child));
}

}  // namespace usine
