// NCCL's calls carried out over MPI on the host (shim/nccl.h says the contract).
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <cuda_bf16.h>
#include <mpi.h>
#include <nccl.h>

#include "tests/testing/cuda_emulator/cuda_emulator.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/stream_order.h"
#include "tests/testing/cuda_emulator/internal/streams.h"

struct ncclComm {
  MPI_Comm mpi;  // MPI_COMM_NULL for a communicator of one rank.
  int rank;
  int size;
  // Made with ncclConfig_t::blocking = 0: calls may answer ncclInProgress (shim/nccl.h).
  bool non_blocking;
  // Queries of the state (ncclCommGetAsyncError) that still answer ncclInProgress.
  int in_progress_queries = 0;
  // Whether a collective or point-to-point call has answered ncclInProgress yet.
  bool answered_in_progress = false;
  // A split that answered ncclSuccess and is "still running": its child, written to *split_out
  // at the first query that finds the state complete.
  ncclComm* split_child = nullptr;
  ncclComm** split_out = nullptr;
  // A failure of a call taken in (cuda_emulator.h's FailNextNcclCallInTheBackground): what the
  // state reports once no longer in progress, ncclSuccess while there is none.
  ncclResult_t background_failure = ncclSuccess;
};

namespace usine::testing::cuda_emulator_internal {
namespace {

thread_local std::string last_nccl_error;

// Set by FailNextNcclCallInTheBackground, cleared by the next call (CheckCall).
std::atomic<bool> fail_next_call{false};

ncclResult_t Fail(ncclResult_t result, std::string message) {
  last_nccl_error = std::move(message);
  return result;
}

size_t ElementBytes(ncclDataType_t type) {
  switch (type) {
    case ncclInt8:
    case ncclUint8:
      return 1;
    case ncclFloat16:
    case ncclBfloat16:
      return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32:
      return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64:
      return 8;
  }
  return 0;
}

// IEEE binary16 (ncclFloat16) to and from f32, rounding to nearest even.
float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const int exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // Infinity or NaN.
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {  // Zero or subnormal: mantissa * 2^-24, exact in f32.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | static_cast<uint32_t>(exponent - 15 + 127) << 23 |
                              (mantissa << 13));
}

uint16_t FloatToHalf(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const float magnitude = std::fabs(f);
  if (std::isnan(f)) return static_cast<uint16_t>(sign | 0x7e00u);
  if (magnitude >= 65520.0f) return static_cast<uint16_t>(sign | 0x7c00u);  // Rounds to inf.
  if (magnitude < 0x1p-14f) {  // Subnormal: a multiple of 2^-24, rounded to nearest even.
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(magnitude * 0x1p24f)));
  }
  // Normal: drop 13 mantissa bits, to nearest even (a carry into the exponent is right).
  const uint32_t m = std::bit_cast<uint32_t>(magnitude);
  const uint32_t rounded = m + 0xfffu + ((m >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded >> 13) - ((127 - 15) << 10)));
}

// A floating-point element as a double (exact).
double Load(const unsigned char* data, size_t i, ncclDataType_t type) {
  const unsigned char* p = data + i * ElementBytes(type);
  switch (type) {
    case ncclFloat32: {
      float v;
      std::memcpy(&v, p, sizeof(v));
      return v;
    }
    case ncclFloat64: {
      double v;
      std::memcpy(&v, p, sizeof(v));
      return v;
    }
    case ncclBfloat16: {
      __nv_bfloat16 v;
      std::memcpy(&v, p, sizeof(v));
      return __bfloat162float(v);
    }
    case ncclFloat16: {
      uint16_t v;
      std::memcpy(&v, p, sizeof(v));
      return HalfToFloat(v);
    }
    default:
      return 0;  // Integers go through LoadInteger.
  }
}

// x rounded to the floating-point type of the element it is stored into.
void Store(unsigned char* data, size_t i, ncclDataType_t type, double x) {
  unsigned char* p = data + i * ElementBytes(type);
  auto put = [p](auto v) { std::memcpy(p, &v, sizeof(v)); };
  switch (type) {
    case ncclFloat32:
      return put(static_cast<float>(x));
    case ncclFloat64:
      return put(x);
    case ncclBfloat16:
      return put(__float2bfloat16_rn(static_cast<float>(x)));
    case ncclFloat16:
      return put(FloatToHalf(static_cast<float>(x)));
    default:
      return;  // Integers go through StoreInteger.
  }
}

bool IsInteger(ncclDataType_t type) { return type <= ncclUint64; }
bool IsSigned(ncclDataType_t type) {
  return type == ncclInt8 || type == ncclInt32 || type == ncclInt64;
}

// An integer element as 64 bits, sign-extended for the signed types.
uint64_t LoadInteger(const unsigned char* data, size_t i, ncclDataType_t type) {
  const size_t bytes = ElementBytes(type);
  uint64_t v = 0;
  std::memcpy(&v, data + i * bytes, bytes);  // Little-endian, as x86-64.
  const int unused = 64 - 8 * static_cast<int>(bytes);
  if (IsSigned(type) && unused > 0) {
    v = static_cast<uint64_t>(static_cast<int64_t>(v << unused) >> unused);
  }
  return v;
}

// The low bytes of v: sums and products wrap, as NCCL's integer arithmetic does.
void StoreInteger(unsigned char* data, size_t i, ncclDataType_t type, uint64_t v) {
  const size_t bytes = ElementBytes(type);
  std::memcpy(data + i * bytes, &v, bytes);
}

uint64_t CombineIntegers(uint64_t a, uint64_t b, ncclRedOp_t op, bool is_signed) {
  const bool a_less = is_signed ? static_cast<int64_t>(a) < static_cast<int64_t>(b) : a < b;
  switch (op) {
    case ncclSum:
    case ncclAvg:
      return a + b;
    case ncclProd:
      return a * b;
    case ncclMax:
      return a_less ? b : a;
    case ncclMin:
      return a_less ? a : b;
  }
  return a;
}

double Combine(double a, double b, ncclRedOp_t op) {
  switch (op) {
    case ncclSum:
    case ncclAvg:
      return a + b;
    case ncclProd:
      return a * b;
    case ncclMax:
      return a > b ? a : b;
    case ncclMin:
      return a < b ? a : b;
  }
  return a;
}

// `count` elements reduced over `parts` arrays laid one after another, in their order, into out.
// Floating-point sums round to the element's type after each addition, as NCCL's do on a GPU;
// integers wrap.
void Reduce(const unsigned char* parts, int nparts, size_t count, ncclDataType_t type,
            ncclRedOp_t op, unsigned char* out) {
  const size_t part_bytes = count * ElementBytes(type);
  if (IsInteger(type)) {
    const bool is_signed = IsSigned(type);
    for (size_t i = 0; i < count; ++i) {
      uint64_t acc = LoadInteger(parts, i, type);
      for (int r = 1; r < nparts; ++r) {
        acc = CombineIntegers(acc, LoadInteger(parts + r * part_bytes, i, type), op, is_signed);
      }
      if (op == ncclAvg) {
        acc = is_signed ? static_cast<uint64_t>(static_cast<int64_t>(acc) / nparts)
                        : acc / static_cast<uint64_t>(nparts);
      }
      StoreInteger(out, i, type, acc);
    }
    return;
  }
  unsigned char rounded[8];
  for (size_t i = 0; i < count; ++i) {
    double acc = Load(parts, i, type);
    for (int r = 1; r < nparts; ++r) {
      Store(rounded, 0, type, Combine(acc, Load(parts + r * part_bytes, i, type), op));
      acc = Load(rounded, 0, type);
    }
    if (op == ncclAvg) acc /= nparts;
    Store(out, i, type, acc);
  }
}

// The checks every call makes: a live communicator, a valid stream, a type the emulation knows,
// buffers in device memory, a message MPI can count. Takes a failure that
// FailNextNcclCallInTheBackground asked for, whether the call passes them or not.
ncclResult_t CheckCall(const char* call, ncclComm_t comm, cudaStream_t stream, ncclDataType_t type,
                       std::initializer_list<DeviceAccess> buffers) {
  const bool fail_in_the_background = fail_next_call.exchange(false);
  if (comm == nullptr) return Fail(ncclInvalidArgument, std::string(call) + ": null communicator");
  if (!ValidStream(stream)) {
    return Fail(ncclInvalidArgument, std::string(call) + ": a destroyed or unknown stream");
  }
  if (ElementBytes(type) == 0) {
    return Fail(ncclInvalidArgument,
                std::string(call) + ": data type " + std::to_string(type) + " is not emulated");
  }
  for (const DeviceAccess& buffer : buffers) {
    const void* p = buffer.p;
    const size_t bytes = buffer.bytes;
    if (bytes > static_cast<size_t>(INT32_MAX) / 2) {
      return Fail(ncclInvalidArgument, std::string(call) + ": message too large to emulate");
    }
    if (bytes != 0 && !InDeviceAllocation(p, bytes)) {
      return Fail(ncclInvalidArgument, std::string(call) + ": buffer [" +
                                           std::to_string(reinterpret_cast<uintptr_t>(p)) + ", +" +
                                           std::to_string(bytes) +
                                           ") is not within one device allocation");
    }
  }
  if (fail_in_the_background) comm->background_failure = ncclRemoteError;
  IssueOnStream(call, stream, buffers);
  return ncclSuccess;
}

ncclResult_t MpiResult(int err, const char* call) {
  if (err == MPI_SUCCESS) return ncclSuccess;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(err, text, &length);
  return Fail(ncclSystemError, std::string(call) + ": MPI failed: " + std::string(text, length));
}

// Queries of a non-blocking communicator's state that answer ncclInProgress after a call that
// did: a few, so that the caller's polling loop goes round.
constexpr int kInProgressQueries = 2;

// Whether `config` asks for a non-blocking communicator. NCCL_CONFIG_INITIALIZER leaves
// `blocking` undefined (INT_MIN): blocking, NCCL's default.
bool NonBlocking(const ncclConfig_t* config) { return config != nullptr && config->blocking == 0; }

ncclComm_t NewComm(MPI_Comm mpi, int rank, int size, bool non_blocking) {
  return new ncclComm{mpi, rank, size, non_blocking};
}

// The answer of a call that made or finalised `comm`: ncclInProgress on a non-blocking
// communicator (NCCL sets those up and tears them down in the background), with the state in
// progress for a few queries.
ncclResult_t Started(ncclComm_t comm) {
  if (!comm->non_blocking) return ncclSuccess;
  comm->in_progress_queries = kInProgressQueries;
  return ncclInProgress;
}

// The answer of a call on `comm` that has done its work (`done`: its result): on a non-blocking
// communicator, the first collective or point-to-point call that succeeds answers
// ncclInProgress instead, as NCCL's may while it connects the ranks, and the state says so for a
// few queries.
ncclResult_t Answer(ncclComm_t comm, ncclResult_t done) {
  if (done != ncclSuccess || !comm->non_blocking || comm->answered_in_progress) return done;
  comm->answered_in_progress = true;
  comm->in_progress_queries = kInProgressQueries;
  return ncclInProgress;
}

}  // namespace
}  // namespace usine::testing::cuda_emulator_internal

namespace emu = usine::testing::cuda_emulator_internal;

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess:
      return "no error";
    case ncclUnhandledCudaError:
      return "unhandled cuda error";
    case ncclSystemError:
      return "unhandled system error";
    case ncclInternalError:
      return "internal error";
    case ncclInvalidArgument:
      return "invalid argument";
    case ncclInvalidUsage:
      return "invalid usage";
    case ncclRemoteError:
      return "remote process exited or there was a network error";
    case ncclInProgress:
      return "NCCL operation in progress";
  }
  return "unknown result code";
}

const char* ncclGetLastError(ncclComm_t) { return emu::last_nccl_error.c_str(); }

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return emu::Fail(ncclInvalidArgument, "ncclGetUniqueId: null id");
  std::random_device random;
  for (char& c : id->internal) c = static_cast<char>(random());
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank,
                                    ncclConfig_t* config) {
  if (comm == nullptr || nranks < 1 || rank < 0 || rank >= nranks) {
    return emu::Fail(ncclInvalidArgument, "ncclCommInitRankConfig: bad rank " +
                                              std::to_string(rank) + " of " +
                                              std::to_string(nranks));
  }
  if (nranks == 1) {
    *comm = emu::NewComm(MPI_COMM_NULL, 0, 1, emu::NonBlocking(config));
    return emu::Started(*comm);
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    return emu::Fail(ncclInvalidUsage,
                     "ncclCommInitRankConfig: the emulation of a multi-rank NCCL communicator "
                     "needs MPI initialised");
  }
  uint32_t color = 2166136261u;  // FNV-1a of the id: ranks given the same id meet.
  for (char c : id.internal) color = (color ^ static_cast<unsigned char>(c)) * 16777619u;
  MPI_Comm mpi = MPI_COMM_NULL;
  if (ncclResult_t r = emu::MpiResult(
          MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(color & 0x7fffffffu), rank, &mpi),
          "ncclCommInitRankConfig");
      r != ncclSuccess) {
    return r;
  }
  MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);
  int size = 0, mpi_rank = 0;
  MPI_Comm_size(mpi, &size);
  MPI_Comm_rank(mpi, &mpi_rank);
  if (size != nranks || mpi_rank != rank) {
    MPI_Comm_free(&mpi);
    return emu::Fail(ncclInvalidUsage,
                     "ncclCommInitRankConfig: " + std::to_string(size) +
                         " processes met for a communicator of " + std::to_string(nranks) +
                         " ranks: the world's processes must create their multi-rank "
                         "communicators together and in the same order (shim/nccl.h)");
  }
  *comm = emu::NewComm(mpi, rank, nranks, emu::NonBlocking(config));
  return emu::Started(*comm);
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* child,
                           ncclConfig_t* config) {
  if (comm == nullptr || child == nullptr) {
    return emu::Fail(ncclInvalidArgument, "ncclCommSplit: null communicator");
  }
  // Without a config the child is as its parent (NCCL's rule).
  const bool non_blocking = config != nullptr ? emu::NonBlocking(config) : comm->non_blocking;
  ncclComm_t made = nullptr;
  if (comm->mpi == MPI_COMM_NULL) {
    if (color != NCCL_SPLIT_NOCOLOR) made = emu::NewComm(MPI_COMM_NULL, 0, 1, non_blocking);
  } else {
    MPI_Comm mpi = MPI_COMM_NULL;
    if (ncclResult_t r = emu::MpiResult(
            MPI_Comm_split(comm->mpi, color == NCCL_SPLIT_NOCOLOR ? MPI_UNDEFINED : color, key,
                           &mpi),
            "ncclCommSplit");
        r != ncclSuccess) {
      return r;
    }
    if (mpi != MPI_COMM_NULL) {
      MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);
      int rank = 0, size = 0;
      MPI_Comm_rank(mpi, &rank);
      MPI_Comm_size(mpi, &size);
      made = emu::NewComm(mpi, rank, size, non_blocking);
    }
  }
  if (made != nullptr) emu::Started(made);
  if (!comm->non_blocking) {
    *child = made;
    return ncclSuccess;
  }
  // NCCL 2.28 on a non-blocking parent: ncclSuccess at once, the parent's state in progress,
  // and the child written when a query of the parent's state first finds the split done.
  comm->split_child = made;
  comm->split_out = child;
  comm->in_progress_queries = emu::kInProgressQueries;
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* state) {
  if (comm == nullptr || state == nullptr) {
    return emu::Fail(ncclInvalidArgument, "ncclCommGetAsyncError: null argument");
  }
  if (comm->in_progress_queries > 0) {
    --comm->in_progress_queries;
    *state = ncclInProgress;
    return ncclSuccess;
  }
  if (comm->split_out != nullptr) {
    *comm->split_out = comm->split_child;
    comm->split_out = nullptr;
    comm->split_child = nullptr;
  }
  *state = comm->background_failure;
  if (*state != ncclSuccess) {
    emu::last_nccl_error =
        "a call failed after it was taken in (cuda_emulator's FailNextNcclCallInTheBackground)";
  }
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(ncclComm_t comm, int* rank) {
  if (comm == nullptr || rank == nullptr) {
    return emu::Fail(ncclInvalidArgument, "ncclCommUserRank: null argument");
  }
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclCommCount(ncclComm_t comm, int* count) {
  if (comm == nullptr || count == nullptr) {
    return emu::Fail(ncclInvalidArgument, "ncclCommCount: null argument");
  }
  *count = comm->size;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (comm == nullptr) return emu::Fail(ncclInvalidArgument, "ncclCommFinalize: null communicator");
  return emu::Started(comm);
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  if (comm->split_child != nullptr) ncclCommDestroy(comm->split_child);  // Never joined.
  if (comm->mpi != MPI_COMM_NULL) MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

void usine::testing::cuda_emulator::FailNextNcclCallInTheBackground() {
  emu::fail_next_call.store(true);
}

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = count * emu::ElementBytes(type);
  if (ncclResult_t r =
          emu::CheckCall("ncclAllReduce", comm, stream, type,
                         // In place, the write covers the read.
                         {{send, send == recv ? 0 : bytes, emu::DeviceAccess::kRead, "sendbuff"},
                          {recv, bytes, emu::DeviceAccess::kWrite, "recvbuff"}});
      r != ncclSuccess) {
    return r;
  }
  std::vector<unsigned char> parts(bytes * comm->size);
  if (comm->size == 1) {
    std::memcpy(parts.data(), send, bytes);
  } else if (ncclResult_t r =
                 emu::MpiResult(MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, parts.data(),
                                              static_cast<int>(bytes), MPI_BYTE, comm->mpi),
                                "ncclAllReduce");
             r != ncclSuccess) {
    return r;
  }
  emu::Reduce(parts.data(), comm->size, count, type, op, static_cast<unsigned char*>(recv));
  return emu::Answer(comm, ncclSuccess);
}

ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t recv_count, ncclDataType_t type,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const size_t chunk = recv_count * emu::ElementBytes(type);
  const int size = comm != nullptr ? comm->size : 1;
  if (ncclResult_t r = emu::CheckCall("ncclReduceScatter", comm, stream, type,
                                      {{send, chunk * size, emu::DeviceAccess::kRead, "sendbuff"},
                                       {recv, chunk, emu::DeviceAccess::kWrite, "recvbuff"}});
      r != ncclSuccess) {
    return r;
  }
  std::vector<unsigned char> parts(chunk * size);  // Rank r's chunk for this rank, in order.
  if (size == 1) {
    std::memcpy(parts.data(), send, chunk);
  } else if (ncclResult_t r =
                 emu::MpiResult(MPI_Alltoall(send, static_cast<int>(chunk), MPI_BYTE, parts.data(),
                                             static_cast<int>(chunk), MPI_BYTE, comm->mpi),
                                "ncclReduceScatter");
             r != ncclSuccess) {
    return r;
  }
  emu::Reduce(parts.data(), size, recv_count, type, op, static_cast<unsigned char*>(recv));
  return emu::Answer(comm, ncclSuccess);
}

ncclResult_t ncclAllGather(const void* send, void* recv, size_t send_count, ncclDataType_t type,
                           ncclComm_t comm, cudaStream_t stream) {
  const size_t chunk = send_count * emu::ElementBytes(type);
  const int size = comm != nullptr ? comm->size : 1;
  if (ncclResult_t r =
          emu::CheckCall("ncclAllGather", comm, stream, type,
                         {{send, chunk, emu::DeviceAccess::kRead, "sendbuff"},
                          {recv, chunk * size, emu::DeviceAccess::kWrite, "recvbuff"}});
      r != ncclSuccess) {
    return r;
  }
  const std::vector<unsigned char> mine(static_cast<const unsigned char*>(send),
                                        static_cast<const unsigned char*>(send) + chunk);
  if (size == 1) {
    std::memcpy(recv, mine.data(), chunk);
    return emu::Answer(comm, ncclSuccess);
  }
  return emu::Answer(
      comm, emu::MpiResult(MPI_Allgather(mine.data(), static_cast<int>(chunk), MPI_BYTE, recv,
                                         static_cast<int>(chunk), MPI_BYTE, comm->mpi),
                           "ncclAllGather"));
}

ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type,
                           int root, ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = count * emu::ElementBytes(type);
  const bool is_root = comm != nullptr && comm->rank == root;
  if (ncclResult_t r =
          emu::CheckCall("ncclBroadcast", comm, stream, type,
                         {{send, is_root ? bytes : 0, emu::DeviceAccess::kRead, "sendbuff"},
                          {recv, bytes, emu::DeviceAccess::kWrite, "recvbuff"}});
      r != ncclSuccess) {
    return r;
  }
  if (root < 0 || root >= comm->size) {
    return emu::Fail(ncclInvalidArgument,
                     "ncclBroadcast: root " + std::to_string(root) + " out of range");
  }
  if (is_root && send != recv) std::memmove(recv, send, bytes);
  if (comm->size == 1) return emu::Answer(comm, ncclSuccess);
  return emu::Answer(
      comm, emu::MpiResult(MPI_Bcast(recv, static_cast<int>(bytes), MPI_BYTE, root, comm->mpi),
                           "ncclBroadcast"));
}

ncclResult_t ncclSend(const void* send, size_t count, ncclDataType_t type, int peer,
                      ncclComm_t comm, cudaStream_t stream) {
  const size_t bytes = count * emu::ElementBytes(type);
  if (ncclResult_t r = emu::CheckCall("ncclSend", comm, stream, type,
                                      {{send, bytes, emu::DeviceAccess::kRead, "sendbuff"}});
      r != ncclSuccess) {
    return r;
  }
  if (peer < 0 || peer >= comm->size || peer == comm->rank) {
    return emu::Fail(ncclInvalidArgument,
                     "ncclSend: peer " + std::to_string(peer) + " is not another rank");
  }
  return emu::Answer(
      comm, emu::MpiResult(MPI_Ssend(send, static_cast<int>(bytes), MPI_BYTE, peer, 0, comm->mpi),
                           "ncclSend"));
}

ncclResult_t ncclRecv(void* recv, size_t count, ncclDataType_t type, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  const size_t bytes = count * emu::ElementBytes(type);
  if (ncclResult_t r = emu::CheckCall("ncclRecv", comm, stream, type,
                                      {{recv, bytes, emu::DeviceAccess::kWrite, "recvbuff"}});
      r != ncclSuccess) {
    return r;
  }
  if (peer < 0 || peer >= comm->size || peer == comm->rank) {
    return emu::Fail(ncclInvalidArgument,
                     "ncclRecv: peer " + std::to_string(peer) + " is not another rank");
  }
  return emu::Answer(comm, emu::MpiResult(MPI_Recv(recv, static_cast<int>(bytes), MPI_BYTE, peer, 0,
                                                   comm->mpi, MPI_STATUS_IGNORE),
                                          "ncclRecv"));
}
