#include "runtime/data/internal/pretokenize.h"

#include <array>

#include <unicode/uchar.h>

#include "runtime/data/internal/utf8.h"

// Why ICU: the classes must follow the Unicode Character Database that node's V8 uses (it
// takes them from ICU too), across all of Unicode; Debian's ICU is maintained, newer than the
// unicodedata of Debian's python3, and a trie lookup per non-ASCII character is fast. ASCII,
// most of any real text, is classified by a table here.
namespace usine::data_internal {
namespace {

constexpr std::array<CharClass, 128> MakeAsciiClasses() {
  std::array<CharClass, 128> table{};
  for (int c = 0; c < 128; ++c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) {
      table[c] = CharClass::kLetter;
    } else if (c >= '0' && c <= '9') {
      table[c] = CharClass::kNumber;
    } else if (c == ' ' || (c >= '\t' && c <= '\r')) {
      table[c] = CharClass::kSpace;
    } else {
      table[c] = CharClass::kOther;
    }
  }
  return table;
}

constexpr std::array<CharClass, 128> kAsciiClasses = MakeAsciiClasses();

// ECMAScript's \s beyond ASCII: the space separators (Zs), U+2028 (Zl), U+2029 (Zp) and
// U+FEFF. Unlike Unicode's White_Space property it leaves out U+0085 (NEL), a control.
CharClass ClassifyNonAscii(char32_t code_point) {
  const uint32_t mask = U_GET_GC_MASK(static_cast<UChar32>(code_point));
  if (mask & U_GC_L_MASK) return CharClass::kLetter;
  if (mask & U_GC_N_MASK) return CharClass::kNumber;
  if ((mask & (U_GC_ZS_MASK | U_GC_ZL_MASK | U_GC_ZP_MASK)) || code_point == 0xFEFF) {
    return CharClass::kSpace;
  }
  return CharClass::kOther;
}

}  // namespace

ClassifiedChar ClassifyAt(absl::string_view text, size_t pos) {
  const auto byte = static_cast<uint8_t>(text[pos]);
  if (byte < 0x80) return {1, kAsciiClasses[byte]};
  const Utf8Char c = DecodeUtf8At(text, pos);
  if (c.length == 0) return {1, CharClass::kOther};
  return {c.length, ClassifyNonAscii(c.code_point)};
}

bool Pretokenizer::Next(absl::string_view* piece) {
  const size_t start = pos_;
  if (start >= text_.size()) return false;
  size_t end = ContractionEnd(start);
  if (end == 0) {
    ClassifiedChar c = ClassifyAt(text_, start);
    size_t run_start = start;
    if (text_[start] == ' ' && start + 1 < text_.size()) {
      const ClassifiedChar next = ClassifyAt(text_, start + 1);
      if (next.cls != CharClass::kSpace) {
        c = next;
        run_start = start + 1;
      }
    }
    end = c.cls == CharClass::kSpace ? WhitespaceEnd(start) : RunEnd(run_start, c.cls);
  }
  *piece = text_.substr(start, end - start);
  pos_ = end;
  return true;
}

size_t Pretokenizer::ContractionEnd(size_t pos) const {
  if (text_[pos] != '\'' || pos + 1 >= text_.size()) return 0;
  const char c1 = text_[pos + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return pos + 2;
  if (pos + 2 >= text_.size()) return 0;
  const char c2 = text_[pos + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
    return pos + 3;
  }
  return 0;
}

size_t Pretokenizer::RunEnd(size_t pos, CharClass cls) const {
  while (pos < text_.size()) {
    const ClassifiedChar c = ClassifyAt(text_, pos);
    if (c.cls != cls) break;
    pos += c.length;
  }
  return pos;
}

// \s+(?!\S) backtracks from the end of the run to the last whitespace character that is
// followed by whitespace or the end; failing that (a run of one before non-space), \s+.
size_t Pretokenizer::WhitespaceEnd(size_t pos) const {
  size_t last_start = pos;
  int count = 0;
  while (pos < text_.size()) {
    const ClassifiedChar c = ClassifyAt(text_, pos);
    if (c.cls != CharClass::kSpace) break;
    last_start = pos;
    pos += c.length;
    ++count;
  }
  if (pos == text_.size() || count == 1) return pos;
  return last_start;
}

}  // namespace usine::data_internal
