// The emulator's side of inline PTX: transform_cuda_source.py rewrites each `asm volatile`
// statement into a parse of its template, once (ParsePtx: the instruction and its operand
// references %0, %1, ...), and an execution per call with the statement's C++ operands
// (ExecutePtx), so that the PTX a kernel file holds, operand order included, is what runs:
//
//   asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
//     -> { static const ::usine::testing::cuda_emulator::PtxInstruction* const ptx =
//              ::usine::testing::cuda_emulator::ParsePtx("cp.async.wait_group %0;\n",
//                                                        __FILE__, __LINE__);
//          ::usine::testing::cuda_emulator::ExecutePtx(
//              ptx, {::usine::testing::cuda_emulator::InOperand("n", kPending)}); }
//
// The instructions emulated, and their sources in the PTX ISA, are listed in README.md; any
// other is a fatal error naming it.
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INLINE_PTX_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INLINE_PTX_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

namespace usine::testing::cuda_emulator {

// One asm statement's instruction, parsed (internal/ptx_instruction.h).
struct PtxInstruction;

// The instruction of `text` (one instruction, operands referring to the statement's operands as
// %N), at file:line for reports. The result lives as long as the process.
const PtxInstruction* ParsePtx(const char* text, const char* file, int line);

// An asm operand: an output (where the instruction writes it; "+" constraints are read too) or
// an input (its value).
struct AsmOperand {
  const char* constraint;
  bool is_output;
  void* location;  // Outputs.
  uint64_t bits;   // Inputs; floats as their bits, pointers as addresses.
  int size;        // Bytes.
};

template <typename T>
AsmOperand OutOperand(const char* constraint, T& x) {
  static_assert(sizeof(T) <= 8);
  return AsmOperand{constraint, true, static_cast<void*>(&x), 0, static_cast<int>(sizeof(T))};
}

template <typename T>
AsmOperand InOperand(const char* constraint, const T& x) {
  uint64_t bits = 0;
  if constexpr (std::is_pointer_v<T>) {
    bits = reinterpret_cast<uintptr_t>(x);
  } else if constexpr (std::is_integral_v<T>) {
    bits = static_cast<uint64_t>(x);  // Sign-extended, as a register of the operand's width.
  } else {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    std::memcpy(&bits, &x, sizeof(T));
  }
  return AsmOperand{constraint, false, nullptr, bits, static_cast<int>(sizeof(T))};
}

// Runs `instruction` for the calling emulated thread with the statement's operands (outputs
// first, then inputs, as numbered in its template).
void ExecutePtx(const PtxInstruction* instruction, std::initializer_list<AsmOperand> operands);

}  // namespace usine::testing::cuda_emulator

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INLINE_PTX_H_
