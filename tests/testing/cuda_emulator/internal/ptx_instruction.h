// An inline PTX instruction as ParsePtx (ptx_parser.cc) leaves it for ExecutePtx
// (ptx_executor.cc): what it does, and where its operands come from.
//
//   "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
//     -> opcode kLdMatrixX4, transposed, operands {vector 0 1 2 3}, {address of %4 + 0}
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_PTX_INSTRUCTION_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_PTX_INSTRUCTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/testing/cuda_emulator/inline_ptx.h"

namespace usine::testing::cuda_emulator {

enum class PtxOpcode {
  kMma,                 // mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 d, a, b, c
  kLdMatrixX4,          // ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16 r, [p]
  kCpAsync,             // cp.async.cg.shared.global [dst], [src], 16{, src-size}
  kCpAsyncCommitGroup,  // cp.async.commit_group
  kCpAsyncWaitGroup,    // cp.async.wait_group n
};

// An operand of the instruction: asm operands (%N) or a constant.
struct PtxOperandReference {
  enum class Kind { kRegister, kVector, kAddress, kImmediate };
  Kind kind = Kind::kImmediate;
  std::vector<int> asm_operands;  // The N of each %N: one, or a vector's.
  int64_t value = 0;              // A constant, or an address's offset.
};

struct PtxInstruction {
  std::string text;   // As written.
  std::string where;  // file:line of the asm statement.
  PtxOpcode opcode = PtxOpcode::kMma;
  bool transposed = false;  // ldmatrix .trans
  std::vector<PtxOperandReference> operands;
};

}  // namespace usine::testing::cuda_emulator

namespace usine::testing::cuda_emulator_internal {

// A fatal report naming the instruction as written and its asm statement's file:line
// (ptx_parser.cc).
[[noreturn]] void RefusePtx(const cuda_emulator::PtxInstruction& instruction,
                            const std::string& why);

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_PTX_INSTRUCTION_H_
