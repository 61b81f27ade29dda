#include "checkpoint/checkpointer.h"

#include <filesystem>
#include <utility>

#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "checkpoint/checkpoint_file.h"
#include "checkpoint/internal/io_thread.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/allocator.h"
#include "runtime/core/status_macros.h"
#include "runtime/kernels/copy.h"

namespace usine {

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Create(Communicator& comm,
                                                                   CheckpointerOptions options) {
  if (options.directory.empty()) {
    return absl::InvalidArgumentError("CheckpointerOptions::directory is empty");
  }
  absl::Status prepared;
  if (comm.rank() == 0) {
    std::error_code error;
    std::filesystem::create_directories(options.directory, error);
    if (error) {
      prepared = absl::InternalError(
          absl::StrCat("creating checkpoint directory ", options.directory, ": ", error.message()));
    } else {
      prepared = RemoveLeftovers(options.directory).status();
    }
  }
  RETURN_IF_ERROR(AgreeOnStatus(comm, prepared));
  // The files are written over MPI-IO: the I/O communicator is a split of the host twin.
  Communicator& host = comm.host();
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> io_comm,
                   host.Split(0, host.rank(), absl::StrCat(comm.name(), ".checkpoint")));
  return std::unique_ptr<Checkpointer>(new Checkpointer(std::move(io_comm), std::move(options)));
}

Checkpointer::Checkpointer(std::unique_ptr<Communicator> io_comm, CheckpointerOptions options)
    : io_comm_(std::move(io_comm)),
      options_(std::move(options)),
      io_(std::make_unique<checkpoint_internal::IoThread>()) {}

Checkpointer::~Checkpointer() { io_->Wait().IgnoreError(); }

absl::StatusOr<Tensor> Checkpointer::HostBuffer(const std::string& name, size_t index,
                                                const Tensor& piece) {
  std::vector<Tensor>& buffers = host_buffers_[name];
  if (buffers.size() <= index) buffers.resize(index + 1);
  Tensor& buffer = buffers[index];
  if (!buffer.defined() || buffer.shape() != piece.shape() || buffer.dtype() != piece.dtype()) {
    if (piece.device().is_cpu()) {
      ASSIGN_OR_RETURN(buffer, Tensor::Empty(piece.shape(), piece.dtype()));
    } else {
      ASSIGN_OR_RETURN(buffer, Tensor::Empty(piece.shape(), piece.dtype(), PinnedHostAllocator()));
    }
  }
  return buffer;
}

absl::StatusOr<StateDict> Checkpointer::Snapshot(const StateDict& state) {
  StateDict snapshot;
  for (const auto& [name, entry] : state.tensors()) {
    for (size_t i = 0; i < entry.pieces.size(); ++i) {
      const TensorPiece& piece = entry.pieces[i];
      ASSIGN_OR_RETURN(Tensor buffer, HostBuffer(name, i, piece.tensor));
      RETURN_IF_ERROR(Copy(piece.tensor, buffer));
      RETURN_IF_ERROR(snapshot.AddShard(name, buffer, entry.global_shape, piece.offset));
    }
  }
  snapshot.mutable_metadata() = state.metadata();
  return snapshot;
}

void Checkpointer::DropOtherBuffers(const StateDict& state) {
  for (auto it = host_buffers_.begin(); it != host_buffers_.end();) {
    auto entry = state.tensors().find(it->first);
    if (entry == state.tensors().end()) {
      it = host_buffers_.erase(it);
    } else {
      it->second.resize(entry->second.pieces.size());
      ++it;
    }
  }
}

absl::Status Checkpointer::Save(int64_t step, const StateDict& state) {
  RETURN_IF_ERROR(io_->Wait());
  RETURN_IF_ERROR(Submit(
      state, [this, step](const StateDict& snapshot) { return WriteAndCommit(step, snapshot); }));
  DropOtherBuffers(state);
  return absl::OkStatus();
}

absl::Status Checkpointer::SaveAs(const std::string& path, const StateDict& state) {
  RETURN_IF_ERROR(io_->Wait());
  return Submit(state,
                [this, path](const StateDict& snapshot) { return WriteAndRename(path, snapshot); });
}

absl::Status Checkpointer::Submit(const StateDict& state,
                                  std::function<absl::Status(const StateDict& snapshot)> write) {
  const absl::Time start = absl::Now();
  absl::StatusOr<StateDict> snapshot = Snapshot(state);
  {
    absl::MutexLock lock(&timings_mu_);
    timings_ = SaveTimings{absl::Now() - start, absl::ZeroDuration(), absl::ZeroDuration(),
                           absl::ZeroDuration(), snapshot.ok() ? snapshot->piece_bytes() : 0};
  }
  // Submitted also when the copy failed here: the task then tells the other ranks, whose
  // writes stop at the same collective (the failure comes back from their next Wait/Save).
  const absl::Status copied = snapshot.status();
  io_->Submit([this, write = std::move(write), snapshot = std::move(snapshot)] {
    RETURN_IF_ERROR(AgreeOnStatus(*io_comm_, snapshot.status()));
    return write(*snapshot);
  });
  return copied;
}

absl::Status Checkpointer::WriteAndRename(const std::string& path, const StateDict& snapshot) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  absl::Status status = WriteCheckpointFile(temporary, snapshot, *io_comm_);
  absl::Status committed;
  if (io_comm_->rank() == 0) {
    if (status.ok()) committed = CommitFile(temporary, path);
    if (!status.ok() || !committed.ok()) ::unlink(temporary.c_str());  // Nothing partial stays.
  }
  if (status.ok()) status = AgreeOnStatus(*io_comm_, committed);
  return WithContext(status, absl::StrCat("writing ", path));
}

absl::Status Checkpointer::WriteAndCommit(int64_t step, const StateDict& snapshot) {
  const std::string& dir = options_.directory;
  const std::string temporary = TemporaryCheckpointPath(dir, step);
  const absl::Time start = absl::Now();
  absl::Status status = WriteCheckpointFile(temporary, snapshot, *io_comm_);
  const absl::Time written = absl::Now();
  absl::Status committed;
  absl::Time retained = written;
  if (io_comm_->rank() == 0) {
    if (status.ok()) committed = CommitCheckpoint(dir, step);
    retained = absl::Now();
    if (committed.ok() && status.ok()) {
      committed = ApplyRetention(dir, options_.retention).status();
    }
    if (!status.ok() || !committed.ok()) ::unlink(temporary.c_str());  // Nothing partial stays.
  }
  const absl::Time end_retention = absl::Now();
  if (status.ok()) status = AgreeOnStatus(*io_comm_, committed);
  absl::MutexLock lock(&timings_mu_);
  timings_.write = written - start;
  timings_.retention = end_retention - retained;
  timings_.commit = absl::Now() - written - timings_.retention;
  return WithContext(status, absl::StrCat("saving checkpoint step ", step, " in ", dir));
}

absl::Status Checkpointer::Wait() { return io_->Wait(); }

absl::Status Checkpointer::Load(const std::string& path, StateDict& state) {
  RETURN_IF_ERROR(io_->Wait());
  // Pieces on a device are read into the pinned host buffers that saves use (no save is in
  // flight now) and copied over: pinning gigabytes anew for every load costs more than the read.
  StateDict host;
  struct Staged {
    Tensor buffer;
    Tensor piece;
  };
  std::vector<Staged> staged;
  const auto stage = [&]() -> absl::Status {
    for (const auto& [name, entry] : state.tensors()) {
      for (size_t i = 0; i < entry.pieces.size(); ++i) {
        const TensorPiece& piece = entry.pieces[i];
        Tensor buffer = piece.tensor;
        if (!piece.tensor.device().is_cpu()) {
          ASSIGN_OR_RETURN(buffer, HostBuffer(name, i, piece.tensor));
          staged.push_back(Staged{buffer, piece.tensor});
        }
        RETURN_IF_ERROR(host.AddShard(name, buffer, entry.global_shape, piece.offset));
      }
    }
    return absl::OkStatus();
  };
  const auto unstage = [&]() -> absl::Status {
    for (const Staged& s : staged) RETURN_IF_ERROR(Copy(s.buffer, s.piece));
    return absl::OkStatus();
  };
  ReadOptions read_options;
  read_options.verify_checksums = options_.verify_on_load;
  // The staging and the copies may fail on some ranks only (pinned or device memory): every
  // rank learns of it, rather than the others waiting in the read or in what follows the load.
  const absl::Status staging = stage();
  RETURN_IF_ERROR(io_->Run([&]() -> absl::Status {
    RETURN_IF_ERROR(AgreeOnStatus(*io_comm_, staging));
    return ReadCheckpointFile(path, host, *io_comm_, read_options);
  }));
  const absl::Status copied = unstage();
  RETURN_IF_ERROR(io_->Run([&] { return AgreeOnStatus(*io_comm_, copied); }));
  state.mutable_metadata() = std::move(host.mutable_metadata());
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Checkpointer::LoadLatest(StateDict& state) {
  // Rank 0 reads `latest` and tells the others, so that every rank loads the same step.
  int64_t step = -1;
  RETURN_IF_ERROR(io_->Run([&]() -> absl::Status {
    absl::StatusOr<int64_t> latest = -1;
    if (io_comm_->rank() == 0) latest = ReadLatestStep(options_.directory);
    RETURN_IF_ERROR(AgreeOnStatus(*io_comm_, latest.status()));
    std::string text = absl::StrCat(*latest);
    RETURN_IF_ERROR(BroadcastBytes(*io_comm_, 0, &text));
    return absl::SimpleAtoi(text, &step) ? absl::OkStatus()
                                         : absl::InternalError("bad step from rank 0");
  }));
  RETURN_IF_ERROR(Load(CheckpointPath(options_.directory, step), state));
  return step;
}

SaveTimings Checkpointer::last_save_timings() const {
  absl::MutexLock lock(&timings_mu_);
  return timings_;
}

}  // namespace usine
