// ParsePtx (inline_ptx.h): one asm statement's template into a PtxInstruction, once per
// statement. Operands are asm operand references (%N), vectors of them ({%0, %1}), addresses
// ([%N] or [%N+offset]) or constants; anything but the emulated instructions (README.md) is a
// fatal error naming it.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/testing/cuda_emulator/inline_ptx.h"
#include "tests/testing/cuda_emulator/internal/diagnostics.h"
#include "tests/testing/cuda_emulator/internal/ptx_instruction.h"

namespace usine::testing::cuda_emulator_internal {

void RefusePtx(const cuda_emulator::PtxInstruction& instruction, const std::string& why) {
  ReportFatal("inline PTX '%s' (%s): %s", instruction.text.c_str(), instruction.where.c_str(),
              why.c_str());
}

namespace {

using cuda_emulator::PtxInstruction;
using cuda_emulator::PtxOpcode;
using cuda_emulator::PtxOperandReference;
using Kind = PtxOperandReference::Kind;

std::string Trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// Splits at `separator` outside braces and brackets.
std::vector<std::string> SplitTopLevel(const std::string& s, char separator) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (char c : s) {
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    if (c == separator && depth == 0) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

int AsmOperandNumber(const PtxInstruction& instruction, const std::string& text) {
  const std::string reference = Trim(text);
  if (reference.size() < 2 || reference[0] != '%' ||
      !std::isdigit(static_cast<unsigned char>(reference[1]))) {
    RefusePtx(instruction, "operand '" + reference + "' is not an asm operand reference %N");
  }
  return std::atoi(reference.c_str() + 1);
}

PtxOperandReference ParseOperand(const PtxInstruction& instruction, const std::string& raw) {
  const std::string text = Trim(raw);
  PtxOperandReference operand;
  if (text.empty()) RefusePtx(instruction, "an empty operand");
  if (text[0] == '{') {
    operand.kind = Kind::kVector;
    const std::string inner = text.substr(1, text.find('}') - 1);
    for (const std::string& element : SplitTopLevel(inner, ',')) {
      operand.asm_operands.push_back(AsmOperandNumber(instruction, element));
    }
  } else if (text[0] == '[') {
    operand.kind = Kind::kAddress;
    const std::string inner = Trim(text.substr(1, text.find(']') - 1));
    const size_t plus = inner.find('+');
    operand.asm_operands.push_back(AsmOperandNumber(instruction, inner.substr(0, plus)));
    if (plus != std::string::npos) {
      operand.value = std::strtoll(Trim(inner.substr(plus + 1)).c_str(), nullptr, 0);
    }
  } else if (text[0] == '%') {
    operand.kind = Kind::kRegister;
    operand.asm_operands.push_back(AsmOperandNumber(instruction, text));
  } else {
    operand.kind = Kind::kImmediate;
    char* end = nullptr;
    operand.value = std::strtoll(text.c_str(), &end, 0);
    if (*end != '\0') RefusePtx(instruction, "cannot parse operand '" + text + "'");
  }
  return operand;
}

// A fatal error unless the operands are of these kinds (and vectors of these lengths, when not 0).
void ExpectOperands(const PtxInstruction& instruction,
                    std::initializer_list<std::pair<Kind, size_t>> expected) {
  bool ok = instruction.operands.size() == expected.size();
  size_t i = 0;
  for (const auto& [kind, length] : expected) {
    if (!ok) break;
    const PtxOperandReference& operand = instruction.operands[i++];
    ok = operand.kind == kind || (kind == Kind::kImmediate && operand.kind == Kind::kRegister);
    ok = ok && (length == 0 || operand.asm_operands.size() == length);
  }
  if (!ok) RefusePtx(instruction, "unexpected operands");
}

void Classify(PtxInstruction& instruction, const std::string& opcode) {
  std::vector<std::string> parts = SplitTopLevel(opcode, '.');
  auto take = [&parts](const std::string& part) {
    const auto it = std::find(parts.begin(), parts.end(), part);
    if (it == parts.end()) return false;
    parts.erase(it);
    return true;
  };
  if (opcode == "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32") {
    instruction.opcode = PtxOpcode::kMma;
    ExpectOperands(
        instruction,
        {{Kind::kVector, 4}, {Kind::kVector, 4}, {Kind::kVector, 2}, {Kind::kVector, 4}});
  } else if (parts[0] == "ldmatrix") {
    instruction.opcode = PtxOpcode::kLdMatrixX4;
    instruction.transposed = take("trans");
    const bool shared = take("shared") || take("shared::cta");
    if (!shared ||
        parts != std::vector<std::string>{"ldmatrix", "sync", "aligned", "m8n8", "x4", "b16"}) {
      RefusePtx(instruction, "only ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16 is emulated");
    }
    ExpectOperands(instruction, {{Kind::kVector, 4}, {Kind::kAddress, 1}});
  } else if (opcode == "cp.async.commit_group") {
    instruction.opcode = PtxOpcode::kCpAsyncCommitGroup;
    ExpectOperands(instruction, {});
  } else if (opcode == "cp.async.wait_group") {
    instruction.opcode = PtxOpcode::kCpAsyncWaitGroup;
    ExpectOperands(instruction, {{Kind::kImmediate, 0}});
  } else if (opcode == "cp.async.cg.shared.global" || opcode == "cp.async.cg.shared::cta.global") {
    instruction.opcode = PtxOpcode::kCpAsync;
    if (instruction.operands.size() == 3) {
      ExpectOperands(instruction,
                     {{Kind::kAddress, 1}, {Kind::kAddress, 1}, {Kind::kImmediate, 0}});
    } else {
      ExpectOperands(
          instruction,
          {{Kind::kAddress, 1}, {Kind::kAddress, 1}, {Kind::kImmediate, 0}, {Kind::kImmediate, 0}});
    }
  } else {
    RefusePtx(instruction, "instruction not emulated");
  }
}

}  // namespace
}  // namespace usine::testing::cuda_emulator_internal

namespace usine::testing::cuda_emulator {

const PtxInstruction* ParsePtx(const char* text, const char* file, int line) {
  using cuda_emulator_internal::Trim;
  // Lives as long as the process: the asm statement's static holds it.
  auto* instruction = new PtxInstruction;
  instruction->text = Trim(text);
  instruction->where = std::string(file) + ":" + std::to_string(line);
  std::string statement = instruction->text;
  while (!statement.empty() &&
         (statement.back() == ';' || std::isspace(static_cast<unsigned char>(statement.back())))) {
    statement.pop_back();
  }
  if (statement.find(';') != std::string::npos) {
    cuda_emulator_internal::RefusePtx(*instruction,
                                      "more than one instruction in one asm statement");
  }
  const size_t space = statement.find_first_of(" \t");
  const std::string opcode = statement.substr(0, space);
  const std::string operands = space == std::string::npos ? "" : statement.substr(space + 1);
  if (!Trim(operands).empty()) {
    for (const std::string& operand : cuda_emulator_internal::SplitTopLevel(operands, ',')) {
      instruction->operands.push_back(cuda_emulator_internal::ParseOperand(*instruction, operand));
    }
  }
  cuda_emulator_internal::Classify(*instruction, opcode);
  return instruction;
}

}  // namespace usine::testing::cuda_emulator
