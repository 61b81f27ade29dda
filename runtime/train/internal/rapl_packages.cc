#include "runtime/train/internal/rapl_packages.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "runtime/core/status_macros.h"

namespace usine::train_internal {
namespace {

absl::Status ErrnoStatus(int error, absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(path, ": cannot ", what, ": ", std::strerror(error)));
}

// The first line of a small sysfs file, without surrounding white space.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open", path);
  char buffer[128];
  ssize_t n;
  do {
    n = ::read(fd, buffer, sizeof(buffer));
  } while (n < 0 && errno == EINTR);
  const int error = errno;
  ::close(fd);
  if (n < 0) return ErrnoStatus(error, "read", path);
  return std::string(absl::StripAsciiWhitespace(absl::string_view(buffer, n)));
}

absl::StatusOr<uint64_t> ReadCounter(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::DataLossError(
        absl::StrCat(path, ": expected a non-negative integer, got '", text, "'"));
  }
  return value;
}

// "intel-rapl:N" with N decimal: a top-level domain (sub-domains are "intel-rapl:N:M").
bool IsTopLevelDomain(absl::string_view name) {
  int index = 0;
  return absl::ConsumePrefix(&name, "intel-rapl:") && absl::SimpleAtoi(name, &index);
}

}  // namespace

uint64_t WrappingCounterDelta(uint64_t before, uint64_t after, uint64_t max_range) {
  if (after >= before) return after - before;
  return (max_range - before) + after;
}

absl::StatusOr<RaplPackages> RaplPackages::Open(const std::string& root) {
  std::error_code ec;
  std::vector<std::string> domains;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (IsTopLevelDomain(name)) domains.push_back(entry.path().string());
  }
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        absl::StrCat(root, ": cannot list: ", ec.message()));
  }
  std::sort(domains.begin(), domains.end());
  std::vector<Package> packages;
  for (const std::string& domain : domains) {
    ASSIGN_OR_RETURN(std::string name, ReadSmallFile(domain + "/name"));
    if (!absl::StartsWith(name, "package")) continue;  // psys: the whole platform.
    Package package;
    package.energy_path = domain + "/energy_uj";
    ASSIGN_OR_RETURN(package.max_range, ReadCounter(domain + "/max_energy_range_uj"));
    ASSIGN_OR_RETURN(package.last, ReadCounter(package.energy_path));
    if (package.last > package.max_range) {
      return absl::DataLossError(absl::StrCat(package.energy_path, ": ", package.last,
                                              " exceeds max_energy_range_uj ", package.max_range));
    }
    packages.push_back(std::move(package));
  }
  if (packages.empty()) {
    return absl::NotFoundError(absl::StrCat(root, ": no RAPL package domain (intel-rapl:N)"));
  }
  return RaplPackages(std::move(packages));
}

absl::StatusOr<double> RaplPackages::Joules() {
  std::vector<uint64_t> now(packages_.size());
  for (size_t i = 0; i < packages_.size(); ++i) {
    ASSIGN_OR_RETURN(now[i], ReadCounter(packages_[i].energy_path));
  }
  for (size_t i = 0; i < packages_.size(); ++i) {
    total_microjoules_ += WrappingCounterDelta(packages_[i].last, now[i], packages_[i].max_range);
    packages_[i].last = now[i];
  }
  return static_cast<double>(total_microjoules_) * 1e-6;
}

}  // namespace usine::train_internal
