// JSON Lines input for `usine prep`: one JSON object per line, the document's text in one
// of its top-level fields.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<JsonlReader> reader, JsonlReader::Open("corpus.jsonl"));
//   std::string text;
//   while (true) {
//     absl::StatusOr<bool> more = reader->Next("text", &text);
//     if (!more.ok()) { ... "corpus.jsonl:17: field \"text\" is not a string (a number)" ...;
//                       continue; }  // the reader has moved past the bad line
//     if (!*more) break;
//     ... text ...
//   }
//
// The file is read in buffered blocks, one line at a time, never whole. Lines end with
// "\n" or "\r\n"; blank lines (only spaces, tabs, "\r") are skipped but counted, so line
// numbers are those an editor shows. A line must be a JSON object with a string member
// named `field`: only a top-level key (a dot is part of the key, not a path), whose value is
// returned unescaped (any Unicode; JSON's "\u0000" included).
//
// Thread-safety: ParseJsonlLine is a pure function, safe from any thread. A JsonlReader is
// used by one thread at a time.
#ifndef USINE_RUNTIME_DATA_JSONL_READER_H_
#define USINE_RUNTIME_DATA_JSONL_READER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace usine {

// The string value of top-level member `field` of the JSON object in `line`. Errors
// (InvalidArgument) say what is wrong without a location, which the caller adds: "not JSON
// (byte 7: syntax error ...)", "not a JSON object (an array)", "no field \"text\"",
// "field \"text\" is not a string (null)".
[[nodiscard]] absl::StatusOr<std::string> ParseJsonlLine(absl::string_view line,
                                                         absl::string_view field);

// True when `line` holds only spaces, tabs and carriage returns (or nothing).
bool IsBlankJsonlLine(absl::string_view line);

class JsonlReader {
 public:
  // Opens `path` for reading; an error names it. Only a regular file is accepted (a FIFO
  // would block, a directory cannot be read).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<JsonlReader>> Open(std::string path);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // Reads the next line that is not blank into *line, without its line ending, and its
  // number (from 1) into *line_number. Returns false at the end of the file. A read error
  // names "path:line"; the reader is then at its end.
  [[nodiscard]] absl::StatusOr<bool> NextLine(std::string* line, int64_t* line_number);

  // NextLine, then ParseJsonlLine(line, field) into *value. A line that does not parse is
  // an error "path:line: <what is wrong>"; the reader has moved past it, so the next call
  // goes on with the following line.
  [[nodiscard]] absl::StatusOr<bool> Next(absl::string_view field, std::string* value);

  const std::string& path() const { return path_; }
  // Bytes consumed so far, line endings and blank lines included.
  int64_t bytes_read() const { return bytes_read_; }
  // Lines consumed so far, blank lines included.
  int64_t lines_read() const { return line_number_; }

 private:
  JsonlReader(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}

  std::string path_;
  std::FILE* file_;  // Owned; nullptr once the end (or a read error) is reached.
  int64_t line_number_ = 0;
  int64_t bytes_read_ = 0;
  char* buffer_ = nullptr;  // getline's, owned (malloc).
  size_t capacity_ = 0;
};

}  // namespace usine

#endif  // USINE_RUNTIME_DATA_JSONL_READER_H_
