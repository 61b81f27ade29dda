#include <cstdlib>
#include <thread>

#include "absl/time/clock.h"

#include "collectives/mpi/mpi_communicator.h"

namespace usine {
namespace {

constexpr int kReportTag = 7177;
constexpr int kMaxReportBytes = 1024;

bool MpiFinalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

}  // namespace

MpiArrivalProbe::MpiArrivalProbe(MPI_Comm comm) : comm_(comm) {}

MpiArrivalProbe::~MpiArrivalProbe() {
  if (!MpiFinalized()) MPI_Comm_free(&comm_);
}

std::vector<std::optional<std::string>> MpiArrivalProbe::ExchangeReports(const std::string& report,
                                                                         absl::Duration grace) {
  int rank = 0, size = 0;
  MPI_Comm_rank(comm_, &rank);
  MPI_Comm_size(comm_, &size);
  const std::string mine = report.substr(0, kMaxReportBytes);
  std::vector<std::vector<char>> buffers(size, std::vector<char>(kMaxReportBytes));
  std::vector<MPI_Request> sends(size, MPI_REQUEST_NULL), recvs(size, MPI_REQUEST_NULL);
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    // Small messages go out eagerly: a dead or stopped peer does not block the send.
    MPI_Isend(mine.data(), static_cast<int>(mine.size()), MPI_CHAR, r, kReportTag, comm_,
              &sends[r]);
    MPI_Irecv(buffers[r].data(), kMaxReportBytes, MPI_CHAR, r, kReportTag, comm_, &recvs[r]);
  }
  std::vector<std::optional<std::string>> reports(size);
  reports[rank] = mine;
  const absl::Time deadline = absl::Now() + grace;
  int pending = size - 1;
  while (pending > 0 && absl::Now() < deadline) {
    for (int r = 0; r < size; ++r) {
      if (recvs[r] == MPI_REQUEST_NULL) continue;
      int done = 0;
      MPI_Status status;
      MPI_Test(&recvs[r], &done, &status);
      if (!done) continue;
      int bytes = 0;
      MPI_Get_count(&status, MPI_CHAR, &bytes);
      reports[r] = std::string(buffers[r].data(), bytes);
      --pending;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Requests still open are withdrawn, so that a process that goes on (a test) can finalize:
  // receives are cancelled, sends left to complete on their own.
  for (int r = 0; r < size; ++r) {
    if (recvs[r] != MPI_REQUEST_NULL) {
      MPI_Cancel(&recvs[r]);
      MPI_Wait(&recvs[r], MPI_STATUS_IGNORE);
    }
    if (sends[r] != MPI_REQUEST_NULL) MPI_Request_free(&sends[r]);
  }
  return reports;
}

void MpiArrivalProbe::Abort(int exit_code) {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

}  // namespace usine
