#include "runtime/data/internal/prep_sources.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <queue>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "runtime/core/logging.h"

namespace usine::data_internal {
namespace {

namespace fs = std::filesystem;

SourceKind KindOf(const fs::path& path) {
  return absl::EndsWith(absl::AsciiStrToLower(path.filename().string()), ".jsonl")
             ? SourceKind::kJsonl
             : SourceKind::kText;
}

int64_t SizeOf(const fs::path& path) {
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(bytes);  // Unreadable: fails when read.
}

// An error for `path`, or with kSkip a warning and an entry of `plan->skipped`.
absl::Status Report(const std::string& path, absl::string_view what, const std::error_code& ec,
                    OnError on_error, SourcePlan* plan) {
  const std::string reason = absl::StrCat(what, ec ? ec.message() : "does not exist");
  if (on_error == OnError::kFatal) {
    return absl::Status(ec ? absl::ErrnoToStatusCode(ec.value()) : absl::StatusCode::kNotFound,
                        absl::StrCat(path, ": ", reason));
  }
  USINE_LOG(WARNING) << "skipping " << path << ": " << reason;
  plan->skipped.push_back({path, 0, reason});
  return absl::OkStatus();
}

// Appends the files under `dir`, sorted, to `files`.
absl::Status ListDirectory(const fs::path& dir, const fs::path& out_dir, OnError on_error,
                           SourcePlan* plan, std::vector<fs::path>* files) {
  std::vector<fs::path> found;
  std::error_code ec;
  auto it = fs::recursive_directory_iterator(dir, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    std::error_code entry_ec;  // A dangling link is a file that fails when it is read.
    const bool is_dir = it->is_directory(entry_ec);
    if (absl::StartsWith(path.filename().string(), ".")) {
      if (is_dir) it.disable_recursion_pending();
      continue;
    }
    if (is_dir) {
      std::error_code same_ec;
      if (fs::equivalent(path, out_dir, same_ec)) it.disable_recursion_pending();
      continue;
    }
    found.push_back(path);
  }
  if (ec) return Report(dir.string(), "cannot list: ", ec, on_error, plan);
  std::sort(found.begin(), found.end(),
            [](const fs::path& a, const fs::path& b) { return a.native() < b.native(); });
  files->insert(files->end(), found.begin(), found.end());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SourcePlan> ListSources(const std::vector<std::string>& inputs,
                                       const std::string& out_dir, OnError on_error) {
  SourcePlan plan;
  std::vector<fs::path> files;
  for (const std::string& input : inputs) {
    std::error_code ec;
    const fs::file_status status = fs::status(input, ec);
    if (!fs::exists(status)) {
      const absl::Status reported = Report(input, "", ec, on_error, &plan);
      if (!reported.ok()) return reported;
    } else if (fs::is_directory(status)) {
      const absl::Status listed = ListDirectory(input, out_dir, on_error, &plan, &files);
      if (!listed.ok()) return listed;
    } else {
      files.emplace_back(input);
    }
  }
  absl::flat_hash_set<std::string> seen;
  for (const fs::path& file : files) {
    if (!seen.insert(file.lexically_normal().string()).second) continue;
    plan.sources.push_back({file.string(), KindOf(file), SizeOf(file)});
  }
  return plan;
}

std::vector<std::vector<int>> AssignSources(const std::vector<PrepSource>& sources, int ranks) {
  std::vector<int> order(sources.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return sources[a].bytes > sources[b].bytes; });
  // (bytes so far, rank), smallest first.
  using Load = std::pair<int64_t, int>;
  std::priority_queue<Load, std::vector<Load>, std::greater<Load>> loads;
  for (int r = 0; r < ranks; ++r) loads.push({0, r});
  std::vector<std::vector<int>> assigned(ranks);
  for (int index : order) {
    auto [bytes, rank] = loads.top();
    loads.pop();
    assigned[rank].push_back(index);
    loads.push({bytes + sources[index].bytes, rank});
  }
  for (std::vector<int>& mine : assigned) std::sort(mine.begin(), mine.end());
  return assigned;
}

bool HashesToValidation(absl::string_view path, int64_t index, double val_fraction) {
  // FNV-1a over the path, then the index, then splitmix64's finaliser: fixed forever, so
  // the split of a corpus does not change between versions or machines.
  uint64_t h = 0xcbf29ce484222325u;
  for (unsigned char c : path) h = (h ^ c) * 0x100000001b3u;
  h ^= static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15u;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9u;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebu;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53 < val_fraction;
}

}  // namespace usine::data_internal
