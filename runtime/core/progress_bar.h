// Progress of long work that is not training (tokenising a corpus, loading a checkpoint),
// on one line of stderr:
//
//   ProgressBar bar({.label = "prep", .total_bytes = total, .items_name = "tokens"});
//   bar.Update(bytes_done, tokens);   // as often as convenient; drawing is throttled
//   bar.Finish(bytes_done, tokens);   // the final line
//
//   prep [##########----------]  50.1%  12.3/24.5 MB  4.1 MB/s  3.1M tokens  ETA 3s
//
// On a terminal the line is redrawn in place ("\r") at most every `redraw_interval`;
// otherwise (a log file, a batch job) a plain line is printed every `line_interval`, so a
// log shows progress without a flood of lines; Finish always prints the last one.
// Not thread-safe: one thread updates a bar.
#ifndef USINE_RUNTIME_CORE_PROGRESS_BAR_H_
#define USINE_RUNTIME_CORE_PROGRESS_BAR_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace usine {

struct ProgressBarOptions {
  std::string label;
  int64_t total_bytes = 0;
  // What Update's second count counts. Default: "tokens".
  std::string items_name = "tokens";
  // Where to draw. Default: stderr.
  std::FILE* out = stderr;
  // Draw in place; unset means "when `out` is a terminal". Default: unset.
  std::optional<bool> in_place;
  // Default: 100 ms.
  absl::Duration redraw_interval = absl::Milliseconds(100);
  // Default: 5 s.
  absl::Duration line_interval = absl::Seconds(5);
};

class ProgressBar {
 public:
  explicit ProgressBar(ProgressBarOptions options);

  void Update(int64_t bytes_done, int64_t items);
  // Draws the final state and ends the line. Idempotent.
  void Finish(int64_t bytes_done, int64_t items);

 private:
  void Draw(int64_t bytes_done, int64_t items, absl::Time now);

  const ProgressBarOptions options_;
  const bool in_place_;
  const absl::Time start_;
  absl::Time last_draw_;
  bool finished_ = false;
};

// One progress line (without "\r" or "\n"); the bar is drawn when `with_bar`.
std::string FormatProgress(absl::string_view label, int64_t bytes_done, int64_t total_bytes,
                           int64_t items, absl::string_view items_name, absl::Duration elapsed,
                           bool with_bar);

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_PROGRESS_BAR_H_
