// Fibers: the emulated threads of a block, each on a stack of its own, run one at a time on the
// host thread and switched explicitly (an x86-64 System V context switch: the callee-saved
// registers and the SSE and x87 control words). Cooperative and deterministic: a fiber runs until
// it yields or returns. Under AddressSanitizer the switches are announced to it.
//
//   fiber.Start(/*stack=*/i, &RunEmulatedThread);  // RunEmulatedThread may call Yield()
//   while (!done) fiber.Resume();                   // from the scheduler
#ifndef USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_FIBER_H_
#define USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_FIBER_H_

#include <cstddef>
#include <cstdint>

namespace usine::testing::cuda_emulator_internal {

class Fiber {
 public:
  // Makes the next Resume() call entry() on stack number `stack`, one of a pool that grows as
  // needed. REQUIRES: no other unfinished fiber uses that stack.
  void Start(int stack, void (*entry)());

  // Runs this fiber until it yields or its entry returns. REQUIRES: called by the scheduler
  // (not from a fiber), the fiber started and not finished.
  void Resume();

  // Suspends the running fiber (this one) and returns to the scheduler.
  void Yield();

  // The bounds of its stack, for walks of the frame chain.
  uintptr_t stack_low() const { return reinterpret_cast<uintptr_t>(stack_); }
  uintptr_t stack_high() const { return stack_low() + stack_size_; }

 private:
  // The trampoline that runs entry_ on a new fiber, then leaves it for good.
  static void Main();

  void (*entry_)() = nullptr;
  void* stack_pointer_ = nullptr;  // Saved while suspended.
  char* stack_ = nullptr;
  size_t stack_size_ = 0;
  void* asan_fake_stack_ = nullptr;
};

}  // namespace usine::testing::cuda_emulator_internal

#endif  // USINE_TESTS_TESTING_CUDA_EMULATOR_INTERNAL_FIBER_H_
