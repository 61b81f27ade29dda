// NCCL's types and the calls that the library makes (collectives/nccl/), for an emulated build
// (cmake/UsineCudaEmulation.cmake), in place of NCCL's header of the same name: nccl.cc carries
// each collective out over MPI, on the host, when it is called.
//
// A communicator of one rank needs no MPI. A communicator of several is an MPI communicator:
// ncclCommSplit is MPI_Comm_split of the parent's, and ncclCommInitRankConfig splits
// MPI_COMM_WORLD by the unique id, so every process of the world must create its multi-rank
// communicators by ncclCommInitRankConfig together and in the same order (as usine's process
// grid does); a mismatch is reported (ncclInvalidUsage) where the split can tell. MPI must be
// initialised with MPI_THREAD_MULTIPLE. Calls return when done, but a non-blocking
// communicator (ncclConfig_t::blocking = 0) answers as NCCL's may, so that its caller's polling
// runs: ncclCommInitRankConfig, ncclCommFinalize and the first collective or point-to-point call
// answer ncclInProgress, ncclCommSplit answers ncclSuccess and writes the child only when a
// query of the parent's state finds the split done (NCCL 2.28), and ncclCommGetAsyncError
// reports ncclInProgress a few times after each. A call waiting for a missing peer waits as MPI
// does (the library's deadlines do not interrupt it); a send returns once its receive has started
// (MPI_Ssend), so two ranks that both send first deadlock here as on a GPU. Reductions are
// carried out in rank order, floating-point ones rounded to the element's type after each
// operation and integer ones wrapping, so every rank gets the same bits.
//
//   ncclComm_t comm = nullptr;
//   ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
//   ncclCommInitRankConfig(&comm, size, id, rank, &config);
//   ncclAllReduce(send, recv, n, ncclFloat32, ncclSum, comm, stream);
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_NCCL_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_NCCL_H_

#include <climits>
#include <cstddef>

#include <cuda_runtime_api.h>

#define NCCL_MAJOR 2
#define NCCL_MINOR 28
#define NCCL_PATCH 0
#define NCCL_VERSION(X, Y, Z) ((X)*10000 + (Y)*100 + (Z))
#define NCCL_UNIQUE_ID_BYTES 128
#define NCCL_SPLIT_NOCOLOR -1

typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

// NCCL's values.
typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
} ncclResult_t;

typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;

typedef enum {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8,
  ncclBfloat16 = 9,
} ncclDataType_t;

typedef struct ncclComm* ncclComm_t;

// The fields of NCCL's configuration that a caller may set; the emulation reads none of them.
typedef struct {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking;
  const char* commName;
} ncclConfig_t;
#define NCCL_CONFIG_INITIALIZER                                                                  \
  {                                                                                              \
    sizeof(ncclConfig_t), 0xcafebeef, NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH), INT_MIN, \
        nullptr                                                                                  \
  }

const char* ncclGetErrorString(ncclResult_t result);
// The message of the latest failed call on this host thread.
const char* ncclGetLastError(ncclComm_t comm);
ncclResult_t ncclGetUniqueId(ncclUniqueId* id);

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank,
                                    ncclConfig_t* config);
ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* child,
                           ncclConfig_t* config);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* state);
ncclResult_t ncclCommUserRank(ncclComm_t comm, int* rank);
ncclResult_t ncclCommCount(ncclComm_t comm, int* count);
ncclResult_t ncclCommFinalize(ncclComm_t comm);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm);

ncclResult_t ncclAllReduce(const void* send, void* recv, size_t count, ncclDataType_t type,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclReduceScatter(const void* send, void* recv, size_t recv_count, ncclDataType_t type,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllGather(const void* send, void* recv, size_t send_count, ncclDataType_t type,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBroadcast(const void* send, void* recv, size_t count, ncclDataType_t type,
                           int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclSend(const void* send, size_t count, ncclDataType_t type, int peer,
                      ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclRecv(void* recv, size_t count, ncclDataType_t type, int peer, ncclComm_t comm,
                      cudaStream_t stream);

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_SHIM_NCCL_H_
