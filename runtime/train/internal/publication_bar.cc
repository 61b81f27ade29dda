#include "runtime/train/internal/publication_bar.h"

#include "absl/strings/str_format.h"

#include "runtime/core/status_macros.h"

namespace usine::train_internal {
namespace {

constexpr char kBestLossKey[] = "best_val_loss";
constexpr char kVersionKey[] = "published_version";

}  // namespace

absl::StatusOr<PublicationBar> PublicationBar::FromMetadata(const StateDict& state) {
  PublicationBar bar;
  if (state.metadata().contains(kBestLossKey)) {
    ASSIGN_OR_RETURN(const double best, state.GetDouble(kBestLossKey));
    bar.best_loss_ = best;
  }
  if (state.metadata().contains(kVersionKey)) {
    ASSIGN_OR_RETURN(bar.version_, state.GetInt(kVersionKey));
  }
  return bar;
}

void PublicationBar::AddToMetadata(StateDict& state) const {
  if (best_loss_.has_value()) state.SetDouble(kBestLossKey, *best_loss_);
  state.SetInt(kVersionKey, version_);
}

int64_t PublicationBar::Advance(double loss) {
  best_loss_ = loss;
  return ++version_;
}

std::string PublishedModelPath(const std::string& dir, int64_t version) {
  return absl::StrFormat("%s/model-v%04d.h5", dir, version);
}

}  // namespace usine::train_internal
