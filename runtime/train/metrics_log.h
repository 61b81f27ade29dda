// metrics.jsonl: one JSON object per line, one line per logged step or evaluation
// (step_metrics.h), appended to `<run directory>/metrics.jsonl` by rank 0.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<MetricsLog> log, MetricsLog::Open(run_dir));
//   RETURN_IF_ERROR(log->Append(step_metrics));
//
// The file is opened for appending, so a resumed run continues it (steps between the last
// checkpoint and the interruption then appear twice: readers keep the last record of a
// step). Each line reaches the operating system whole, in one write, before Append returns:
// a reader (`tail -f`, a plot) sees complete lines, and a crash of the process loses
// nothing already appended (a crash of the machine may lose the last lines; they are not
// fsynced). If the file ends in a partial line (a write cut short), Open ends it first.
// Thread-safety: Append may be called from any thread.
#ifndef USINE_RUNTIME_TRAIN_METRICS_LOG_H_
#define USINE_RUNTIME_TRAIN_METRICS_LOG_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "runtime/train/step_metrics.h"

namespace usine {

class MetricsLog {
 public:
  static constexpr absl::string_view kFileName = "metrics.jsonl";

  // Opens (creating it, mode 0644) `run_dir`/metrics.jsonl. REQUIRES: `run_dir` exists.
  // Errors name the file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MetricsLog>> Open(const std::string& run_dir);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // StepMetricsJson / EvalMetricsJson and a newline. Errors name the file (ResourceExhausted
  // when the disk is full).
  [[nodiscard]] absl::Status Append(const StepMetrics& metrics);
  [[nodiscard]] absl::Status Append(const EvalMetrics& metrics);

  const std::string& path() const { return path_; }

 private:
  MetricsLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  absl::Status AppendLine(std::string line);

  const std::string path_;
  std::mutex mu_;
  const int fd_;  // O_APPEND; writes are serialised by mu_.
};

}  // namespace usine

#endif  // USINE_RUNTIME_TRAIN_METRICS_LOG_H_
