#include "runtime/core/progress_bar.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace usine {
namespace {

constexpr int kBarWidth = 20;

// 950 B, 12.3 kB, 4.5 MB, 1.2 GB (decimal units).
std::string Bytes(double bytes) {
  if (bytes < 1e3) return absl::StrFormat("%.0f B", bytes);
  if (bytes < 1e6) return absl::StrFormat("%.1f kB", bytes / 1e3);
  if (bytes < 1e9) return absl::StrFormat("%.1f MB", bytes / 1e6);
  return absl::StrFormat("%.2f GB", bytes / 1e9);
}

// 950, 12.3k, 4.5M, 1.2B.
std::string Count(int64_t n) {
  if (n < 1000) return absl::StrCat(n);
  if (n < 1000000) return absl::StrFormat("%.1fk", n / 1e3);
  if (n < 1000000000) return absl::StrFormat("%.1fM", n / 1e6);
  return absl::StrFormat("%.2fB", n / 1e9);
}

// 42s, 3m07s, 2h05m.
std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, s / 60 % 60);
}

}  // namespace

std::string FormatProgress(absl::string_view label, int64_t bytes_done, int64_t total_bytes,
                           int64_t items, absl::string_view items_name, absl::Duration elapsed,
                           bool with_bar) {
  const double fraction =
      total_bytes > 0 ? std::clamp(static_cast<double>(bytes_done) / total_bytes, 0.0, 1.0) : 1.0;
  std::string line(label);
  if (with_bar) {
    const int filled = static_cast<int>(fraction * kBarWidth);
    absl::StrAppend(&line, " [", std::string(filled, '#'), std::string(kBarWidth - filled, '-'),
                    "]");
  }
  const double seconds = absl::ToDoubleSeconds(elapsed);
  const double rate = seconds > 0 ? bytes_done / seconds : 0;
  absl::StrAppend(&line, absl::StrFormat(" %5.1f%%  ", 100 * fraction), Bytes(bytes_done), "/",
                  Bytes(total_bytes), "  ", Bytes(rate), "/s  ", Count(items), " ", items_name);
  if (fraction >= 1.0) {
    absl::StrAppend(&line, "  in ", Duration(seconds));
  } else if (rate > 0) {
    absl::StrAppend(&line, "  ETA ", Duration((total_bytes - bytes_done) / rate));
  } else {
    absl::StrAppend(&line, "  ETA ?");
  }
  return line;
}

ProgressBar::ProgressBar(ProgressBarOptions options)
    : options_(std::move(options)),
      in_place_(options_.in_place.value_or(::isatty(::fileno(options_.out)) == 1)),
      start_(absl::Now()),
      // A log's first line comes one interval in: a short job prints only its final line.
      last_draw_(in_place_ ? absl::InfinitePast() : start_) {}

void ProgressBar::Update(int64_t bytes_done, int64_t items) {
  if (finished_) return;
  const absl::Time now = absl::Now();
  if (now - last_draw_ < (in_place_ ? options_.redraw_interval : options_.line_interval)) return;
  Draw(bytes_done, items, now);
}

void ProgressBar::Finish(int64_t bytes_done, int64_t items) {
  if (finished_) return;
  Draw(bytes_done, items, absl::Now());
  if (in_place_) std::fputc('\n', options_.out);
  std::fflush(options_.out);
  finished_ = true;
}

void ProgressBar::Draw(int64_t bytes_done, int64_t items, absl::Time now) {
  const std::string line = FormatProgress(options_.label, bytes_done, options_.total_bytes, items,
                                          options_.items_name, now - start_, in_place_);
  if (in_place_) {
    // "\033[K" clears what a longer previous line left to the right.
    std::fprintf(options_.out, "\r%s\033[K", line.c_str());
  } else {
    std::fprintf(options_.out, "%s\n", line.c_str());
  }
  std::fflush(options_.out);
  last_draw_ = now;
}

}  // namespace usine
