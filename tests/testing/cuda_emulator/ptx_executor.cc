// ExecutePtx (inline_ptx.h): the emulated instructions, as the PTX ISA defines them.
//  - mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d = a b + c ("Matrix Fragments for
//    mma.m16n8k16 with floating point type"): with g = laneid >> 2 and t = laneid % 4, lane
//    registers hold A (16 x 16) a0, a1 at row g, a2, a3 at row g + 8, a4 .. a7 as a0 .. a3 at
//    columns + 8, columns 2t and 2t + 1 (the lower in the low half); B (16 x 8) b0, b1 at rows
//    2t, 2t + 1 and b2, b3 at rows + 8, column g; C and D (16 x 8 f32) c0, c1 at row g, c2, c3 at
//    row g + 8, columns 2t, 2t + 1. The products are exact (bf16 x bf16 fits a double), summed in
//    double in k order, the sum rounded once to f32 and added to c in f32: the tensor cores' own
//    order and rounding are not specified, so a GPU's bits may differ.
//  - ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16 ("Warp-level matrix load instruction:
//    ldmatrix"): lanes 8j .. 8j + 7 give the addresses of matrix j's rows (16 bytes each, 16-byte
//    aligned); register j of lane l holds matrix j's row l / 4, elements 2 (l % 4) and the next;
//    with .trans, its column l / 4, rows 2 (l % 4) and the next.
//  - cp.async.cg.shared.global [dst], [src], 16{, src-size} ("Data Movement and Conversion
//    Instructions: cp.async"): src-size bytes (default 16; at most 16) are read from src and the
//    rest of the 16 bytes at dst are zero. The copy reads its source when issued and writes dst
//    when it lands (CpAsyncLanding: at the wait that retires its group, or at issue).
//    cp.async.commit_group closes the thread's uncommitted copies into a group (possibly empty);
//    cp.async.wait_group n waits until at most the n most recent groups are pending.
#include <bit>
#include <cstring>
#include <initializer_list>
#include <string>

#include <cuda_bf16.h>

#include "tests/testing/cuda_emulator/inline_ptx.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/memory.h"
#include "tests/testing/cuda_emulator/internal/ptx_instruction.h"
#include "tests/testing/cuda_emulator/internal/simt_state.h"
#include "tests/testing/cuda_emulator/internal/warp_rendezvous.h"

namespace usine::testing::cuda_emulator_internal {
namespace {

using cuda_emulator::AsmOperand;
using cuda_emulator::CpAsyncLanding;
using cuda_emulator::PtxOpcode;
using cuda_emulator::PtxOperandReference;

constexpr int kCopyBytes = 16;  // cp.async.cg's only cp-size.

// The asm statement's operands as the instruction refers to them.
class AsmOperands {
 public:
  AsmOperands(const PtxInstruction& instruction, std::initializer_list<AsmOperand> operands)
      : instruction_(instruction), operands_(operands) {}

  // The value of %n: an input's, or a "+" output's current one.
  uint64_t Read(int n) const {
    const AsmOperand& operand = At(n);
    if (!operand.is_output) return operand.bits;
    if (operand.constraint[0] != '+') {
      RefusePtx(instruction_, "reads write-only output %" + std::to_string(n));
    }
    uint64_t bits = 0;
    std::memcpy(&bits, operand.location, operand.size);
    return bits;
  }

  // Where to write output %n, of `size` bytes.
  void* Location(int n, int size) const {
    const AsmOperand& operand = At(n);
    if (!operand.is_output) RefusePtx(instruction_, "writes input %" + std::to_string(n));
    if (operand.size != size) {
      RefusePtx(instruction_, "output %" + std::to_string(n) + " has " +
                                  std::to_string(operand.size) + " bytes, not " +
                                  std::to_string(size));
    }
    return operand.location;
  }

  // A constant, or the register it is in.
  uint64_t Value(const PtxOperandReference& reference) const {
    if (reference.kind == PtxOperandReference::Kind::kImmediate) {
      return static_cast<uint64_t>(reference.value);
    }
    return Read(reference.asm_operands[0]);
  }

  // An address operand's value: [%n + offset].
  uint64_t Address(const PtxOperandReference& reference) const {
    return Read(reference.asm_operands[0]) + static_cast<uint64_t>(reference.value);
  }

 private:
  const AsmOperand& At(int n) const {
    if (n < 0 || static_cast<size_t>(n) >= operands_.size()) {
      RefusePtx(instruction_, "operand %" + std::to_string(n) + " does not exist");
    }
    return operands_.begin()[n];
  }

  const PtxInstruction& instruction_;
  std::initializer_list<AsmOperand> operands_;
};

double Bf16(uint32_t register_bits, int half) {
  return cuda_emulator::FloatOfBf16Bits(static_cast<uint16_t>(register_bits >> (16 * half)));
}

void CompleteMma(EmulatedWarp& warp) {
  double a[16][16], b[16][8];
  float c[16][8];
  for (int l = 0; l < kWarpSize; ++l) {
    const uint32_t* r = warp.lanes[l]->operands.registers;  // a0..a3, b0..b1, c0..c3
    const int g = l >> 2, t = l % 4;
    for (int h = 0; h < 2; ++h) {
      a[g][2 * t + h] = Bf16(r[0], h);
      a[g + 8][2 * t + h] = Bf16(r[1], h);
      a[g][2 * t + 8 + h] = Bf16(r[2], h);
      a[g + 8][2 * t + 8 + h] = Bf16(r[3], h);
      b[2 * t + h][g] = Bf16(r[4], h);
      b[2 * t + 8 + h][g] = Bf16(r[5], h);
      c[g][2 * t + h] = std::bit_cast<float>(r[6 + h]);
      c[g + 8][2 * t + h] = std::bit_cast<float>(r[8 + h]);
    }
  }
  float d[16][8];
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double sum = 0;
      for (int k = 0; k < 16; ++k) sum += a[i][k] * b[k][j];
      d[i][j] = static_cast<float>(sum) + c[i][j];
    }
  }
  for (int l = 0; l < kWarpSize; ++l) {
    void* const* results = warp.lanes[l]->operands.results;
    const int g = l >> 2, t = l % 4;
    for (int h = 0; h < 2; ++h) {
      std::memcpy(results[h], &d[g][2 * t + h], 4);
      std::memcpy(results[2 + h], &d[g + 8][2 * t + h], 4);
    }
  }
}

void CompleteLdMatrixX4(EmulatedWarp& warp) {
  const PtxInstruction& instruction = *warp.instruction;
  uint16_t rows[4][8][8];
  for (int j = 0; j < 4; ++j) {
    for (int r = 0; r < 8; ++r) {
      const int lane = 8 * j + r;
      const std::string what = StringPrintf("ldmatrix (%s), matrix %d row %d, address of lane %d",
                                            instruction.where.c_str(), j, r, lane);
      std::memcpy(rows[j][r], SharedBytesAt(warp.lanes[lane]->operands.value, 16, 16, what), 16);
    }
  }
  for (int l = 0; l < kWarpSize; ++l) {
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < 4; ++j) {
      const uint32_t lo = instruction.transposed ? rows[j][2 * t][g] : rows[j][g][2 * t];
      const uint32_t hi = instruction.transposed ? rows[j][2 * t + 1][g] : rows[j][g][2 * t + 1];
      const uint32_t value = lo | hi << 16;
      std::memcpy(warp.lanes[l]->operands.results[j], &value, 4);
    }
  }
}

void RequireFullWarp(const PtxInstruction& instruction, const EmulatedThread& thread) {
  const int lanes = CurrentLaunch().warps[thread.warp].size;
  if (lanes != kWarpSize) {
    RefusePtx(instruction,
              StringPrintf("in a warp of %d threads (blockDim not a multiple of 32)", lanes));
  }
}

void Mma(const PtxInstruction& instruction, const AsmOperands& operands, EmulatedThread& thread) {
  RequireFullWarp(instruction, thread);
  const auto& d = instruction.operands[0].asm_operands;
  const auto& a = instruction.operands[1].asm_operands;
  const auto& b = instruction.operands[2].asm_operands;
  const auto& c = instruction.operands[3].asm_operands;
  uint32_t* registers = thread.operands.registers;
  for (int i = 0; i < 4; ++i) registers[i] = static_cast<uint32_t>(operands.Read(a[i]));
  for (int i = 0; i < 2; ++i) registers[4 + i] = static_cast<uint32_t>(operands.Read(b[i]));
  for (int i = 0; i < 4; ++i) registers[6 + i] = static_cast<uint32_t>(operands.Read(c[i]));
  for (int i = 0; i < 4; ++i) thread.operands.results[i] = operands.Location(d[i], 4);
  ArriveAtWarpPrimitive(WarpPrimitive::kMma, &instruction, CompleteMma);
}

void LdMatrixX4(const PtxInstruction& instruction, const AsmOperands& operands,
                EmulatedThread& thread) {
  RequireFullWarp(instruction, thread);
  const auto& r = instruction.operands[0].asm_operands;
  for (int j = 0; j < 4; ++j) thread.operands.results[j] = operands.Location(r[j], 4);
  thread.operands.value = operands.Address(instruction.operands[1]);
  ArriveAtWarpPrimitive(WarpPrimitive::kLdMatrix, &instruction, CompleteLdMatrixX4);
}

void CpAsync(const PtxInstruction& instruction, const AsmOperands& operands,
             EmulatedThread& thread) {
  ++MutableStatistics().cp_async_copies;
  if (operands.Value(instruction.operands[2]) != kCopyBytes) {
    RefusePtx(instruction, "cp.async.cg takes cp-size 16 only");
  }
  uint64_t source_bytes = kCopyBytes;
  if (instruction.operands.size() == 4) {
    source_bytes = static_cast<uint32_t>(operands.Value(instruction.operands[3]));
  }
  if (source_bytes > kCopyBytes) {
    RefusePtx(instruction, StringPrintf("src-size %llu beyond cp-size 16 (undefined)",
                                        static_cast<unsigned long long>(source_bytes)));
  }
  AsyncCopy copy{};
  copy.to = SharedBytesAt(operands.Address(instruction.operands[0]), kCopyBytes, kCopyBytes,
                          "cp.async destination (" + instruction.where + ")");
  copy.size = kCopyBytes;
  const uint64_t from = operands.Address(instruction.operands[1]);
  const void* source = reinterpret_cast<const void*>(from);
  if (from % kCopyBytes != 0) {
    RefusePtx(instruction, StringPrintf("global source %p not aligned to 16 bytes", source));
  }
  if (source_bytes > 0) {
    if (!InDeviceAllocation(source, source_bytes)) {
      RefusePtx(instruction,
                StringPrintf("global source [%p, +%llu) outside every device allocation", source,
                             static_cast<unsigned long long>(source_bytes)));
    }
    std::memcpy(copy.bytes, source, source_bytes);
  }
  if (CurrentExecutionOrder().cp_async_landing == CpAsyncLanding::kAtIssue) {
    std::memcpy(copy.to, copy.bytes, copy.size);
    copy.size = 0;  // Landed: the group only counts it.
  }
  thread.uncommitted.push_back(copy);
}

void CpAsyncCommitGroup(EmulatedThread& thread) {
  thread.committed.push_back(std::move(thread.uncommitted));
  thread.uncommitted.clear();
}

void CpAsyncWaitGroup(const PtxInstruction& instruction, const AsmOperands& operands,
                      EmulatedThread& thread) {
  const auto pending = static_cast<int64_t>(operands.Value(instruction.operands[0]));
  if (pending < 0) RefusePtx(instruction, "a negative group count");
  while (static_cast<int64_t>(thread.committed.size()) > pending) {
    for (const AsyncCopy& copy : thread.committed.front()) {
      std::memcpy(copy.to, copy.bytes, copy.size);
    }
    thread.committed.pop_front();
  }
}

}  // namespace
}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

void ExecutePtx(const PtxInstruction* instruction, std::initializer_list<AsmOperand> operands) {
  namespace internal = cuda_emulator_internal;
  internal::EmulatedThread& thread = internal::RunningThread(instruction->text.c_str());
  const internal::AsmOperands asm_operands(*instruction, operands);
  switch (instruction->opcode) {
    case PtxOpcode::kMma:
      internal::Mma(*instruction, asm_operands, thread);
      return;
    case PtxOpcode::kLdMatrixX4:
      internal::LdMatrixX4(*instruction, asm_operands, thread);
      return;
    case PtxOpcode::kCpAsync:
      internal::CpAsync(*instruction, asm_operands, thread);
      return;
    case PtxOpcode::kCpAsyncCommitGroup:
      internal::CpAsyncCommitGroup(thread);
      return;
    case PtxOpcode::kCpAsyncWaitGroup:
      internal::CpAsyncWaitGroup(*instruction, asm_operands, thread);
      return;
  }
}

}  // namespace usine::testing::cuda_emulator
