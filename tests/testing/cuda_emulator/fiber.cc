// Fibers on x86-64 Linux (internal/fiber.h): a hand-written context switch, stacks from mmap with
// an inaccessible page below each (an overflow faults), and AddressSanitizer's fiber annotations.
#include "tests/testing/cuda_emulator/internal/fiber.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include <sys/mman.h>

#include "tests/testing/cuda_emulator/cuda_emulator.h"

#if USINE_CUDA_EMULATOR_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// Saves the callee-saved registers and the SSE and x87 control words on the current stack,
// stores the stack pointer in *save, and restores the same from the stack at `resume`. The
// saved frame, from the saved stack pointer up: 16 bytes of control words, r15, r14, r13, r12,
// rbx, rbp, the return address.
extern "C" void usine_cuda_emulator_switch_context(void** save, void* resume);
asm(R"(
.pushsection .text
.globl usine_cuda_emulator_switch_context
.type usine_cuda_emulator_switch_context,@function
usine_cuda_emulator_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size usine_cuda_emulator_switch_context,.-usine_cuda_emulator_switch_context
.popsection
)");

namespace usine::testing::cuda_emulator_internal {
namespace {

// The saved frame's layout (see the context switch), in 8-byte slots.
constexpr int kSavedReturnSlot = 8;
constexpr int kSavedFrameSlots = 10;        // And one for the entry's own return address.
constexpr uint32_t kDefaultMxcsr = 0x1F80;  // All exceptions masked, round to nearest.
constexpr uint32_t kDefaultX87Control = 0x037F;

// ASan's fake stacks and the emulator's frames need more room than the kernels do.
constexpr size_t kStackBytes = USINE_CUDA_EMULATOR_ASAN ? size_t{1} << 20 : size_t{256} << 10;
constexpr size_t kPageBytes = 4096;

std::vector<char*>& StackPool() {
  static std::vector<char*> pool;
  return pool;
}

char* Stack(int index) {
  std::vector<char*>& pool = StackPool();
  while (static_cast<int>(pool.size()) <= index) {
    void* mapping = mmap(nullptr, kStackBytes + kPageBytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED || mprotect(mapping, kPageBytes, PROT_NONE) != 0) {
      std::fprintf(stderr, "[cuda emulator] cannot map a fiber stack\n");
      std::abort();
    }
    pool.push_back(static_cast<char*>(mapping) + kPageBytes);
  }
  return pool[index];
}

void* scheduler_stack_pointer = nullptr;
Fiber* running_fiber = nullptr;
#if USINE_CUDA_EMULATOR_ASAN
const void* scheduler_stack_bottom = nullptr;
size_t scheduler_stack_size = 0;
#endif

}  // namespace

void Fiber::Start(int stack, void (*entry)()) {
  entry_ = entry;
  stack_ = Stack(stack);
  stack_size_ = kStackBytes;
  asan_fake_stack_ = nullptr;
#if USINE_CUDA_EMULATOR_ASAN
  // The previous fiber on this stack may have left poisoned frames.
  __asan_unpoison_memory_region(stack_, stack_size_);
#endif
  // A saved frame that "returns" into Main with the stack aligned as at a function's entry.
  const uintptr_t top = stack_high() & ~uintptr_t{15};
  auto* slots = reinterpret_cast<uint64_t*>(top - kSavedFrameSlots * 8);
  auto* control = reinterpret_cast<uint32_t*>(slots);
  control[0] = kDefaultMxcsr;
  control[1] = kDefaultX87Control;
  for (int i = 2; i < kSavedReturnSlot; ++i) slots[i] = 0;  // r15 .. rbp: rbp 0 ends walks.
  slots[kSavedReturnSlot] = reinterpret_cast<uint64_t>(&Fiber::Main);
  slots[kSavedReturnSlot + 1] = 0;  // Main's own return address: it never returns.
  stack_pointer_ = slots;
}

void Fiber::Resume() {
  running_fiber = this;
#if USINE_CUDA_EMULATOR_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, stack_, stack_size_);
#endif
  usine_cuda_emulator_switch_context(&scheduler_stack_pointer, stack_pointer_);
#if USINE_CUDA_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  running_fiber = nullptr;
}

void Fiber::Yield() {
#if USINE_CUDA_EMULATOR_ASAN
  __sanitizer_start_switch_fiber(&asan_fake_stack_, scheduler_stack_bottom, scheduler_stack_size);
#endif
  usine_cuda_emulator_switch_context(&stack_pointer_, scheduler_stack_pointer);
#if USINE_CUDA_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(asan_fake_stack_, nullptr, nullptr);
#endif
}

void Fiber::Main() {
#if USINE_CUDA_EMULATOR_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &scheduler_stack_bottom, &scheduler_stack_size);
#endif
  Fiber* self = running_fiber;
  self->entry_();
#if USINE_CUDA_EMULATOR_ASAN
  // Null: this fiber's stack is done with.
  __sanitizer_start_switch_fiber(nullptr, scheduler_stack_bottom, scheduler_stack_size);
#endif
  usine_cuda_emulator_switch_context(&self->stack_pointer_, scheduler_stack_pointer);
  std::abort();  // A finished fiber is never resumed.
}

}  // namespace usine::testing::cuda_emulator_internal
