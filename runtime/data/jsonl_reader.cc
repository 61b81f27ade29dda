#include "runtime/data/jsonl_reader.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include <nlohmann/json.hpp>

namespace usine {
namespace {

// nlohmann's message without its "[json.exception...] " prefix (and, for a syntax error,
// without "parse error at line 1, column N: ": a JSONL line is always line 1 to it), capped:
// it quotes the input it stopped at.
std::string ErrorDetail(const nlohmann::json::exception& e) {
  constexpr size_t kMaxDetail = 160;
  absl::string_view what = e.what();
  if (const size_t bracket = what.find("] "); bracket != absl::string_view::npos) {
    what.remove_prefix(bracket + 2);
  }
  std::string location;
  if (const auto* parse_error = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
    if (const size_t colon = what.find(": "); colon != absl::string_view::npos) {
      what.remove_prefix(colon + 2);
    }
    location = absl::StrCat("byte ", parse_error->byte, ": ");
  }
  std::string detail = absl::StrCat(location, what.substr(0, kMaxDetail));
  if (what.size() > kMaxDetail) detail += "...";
  return detail;
}

absl::Status ReadError(const std::string& path, int64_t line, int error) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(path, ":", line, ": cannot read: ", std::strerror(error)));
}

}  // namespace

absl::StatusOr<std::string> ParseJsonlLine(absl::string_view line, absl::string_view field) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::exception& e) {  // A syntax error, or a number too large.
    return absl::InvalidArgumentError(absl::StrCat("not JSON (", ErrorDetail(e), ")"));
  }
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON object (got ", json.type_name(), ")"));
  }
  const auto member = json.find(field);
  if (member == json.end()) {
    return absl::InvalidArgumentError(absl::StrCat("no field \"", field, "\""));
  }
  if (!member->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field \"", field, "\" is not a string (got ", member->type_name(), ")"));
  }
  return std::move(member->get_ref<std::string&>());
}

bool IsBlankJsonlLine(absl::string_view line) {
  return line.find_first_not_of(" \t\r") == absl::string_view::npos;
}

absl::StatusOr<std::unique_ptr<JsonlReader>> JsonlReader::Open(std::string path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st = {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open: not a regular file"));
  }
  std::FILE* file = ::fdopen(fd, "rb");
  if (file == nullptr) {
    const int error = errno;
    ::close(fd);
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot open: ", std::strerror(error)));
  }
  std::setvbuf(file, nullptr, _IOFBF, 1 << 20);
  return std::unique_ptr<JsonlReader>(new JsonlReader(std::move(path), file));
}

JsonlReader::~JsonlReader() {
  if (file_ != nullptr) std::fclose(file_);
  std::free(buffer_);
}

absl::StatusOr<bool> JsonlReader::NextLine(std::string* line, int64_t* line_number) {
  while (file_ != nullptr) {
    errno = 0;
    const ssize_t n = ::getline(&buffer_, &capacity_, file_);
    if (n < 0) {
      const bool failed = std::ferror(file_) != 0;
      const int error = errno;
      std::fclose(file_);
      file_ = nullptr;
      if (failed) return ReadError(path_, line_number_ + 1, error);
      return false;
    }
    ++line_number_;
    bytes_read_ += n;
    absl::string_view text(buffer_, static_cast<size_t>(n));
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (IsBlankJsonlLine(text)) continue;
    if (text.back() == '\r') text.remove_suffix(1);
    line->assign(text.data(), text.size());
    *line_number = line_number_;
    return true;
  }
  return false;
}

absl::StatusOr<bool> JsonlReader::Next(absl::string_view field, std::string* value) {
  std::string line;
  int64_t number = 0;
  absl::StatusOr<bool> more = NextLine(&line, &number);
  if (!more.ok() || !*more) return more;
  absl::StatusOr<std::string> parsed = ParseJsonlLine(line, field);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(path_, ":", number, ": ", parsed.status().message()));
  }
  *value = *std::move(parsed);
  return true;
}

}  // namespace usine
