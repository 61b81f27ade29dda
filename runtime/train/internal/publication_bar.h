// The Trainer's rule for publishing models (TrainerOptions::publish_dir): after an evaluation
// the model is published, as the next version `publish_dir/model-vNNNN.h5`, only when its
// validation loss is below the best so far (the starting model's, its baseline, at first).
// The bar -- best loss and last version -- goes into every checkpoint, so that a resumed run
// keeps both.
//
//   ASSIGN_OR_RETURN(PublicationBar bar, PublicationBar::FromMetadata(resumed_state));
//   if (!bar.has_baseline()) bar.SetBaseline(Evaluate().loss);
//   if (bar.Improves(loss)) { Publish(PublishedModelPath(dir, bar.Advance(loss))); }
//   bar.AddToMetadata(checkpoint_state);
//
// A plain value; thread-compatible.
#ifndef USINE_RUNTIME_TRAIN_INTERNAL_PUBLICATION_BAR_H_
#define USINE_RUNTIME_TRAIN_INTERNAL_PUBLICATION_BAR_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

#include "checkpoint/state_dict.h"

namespace usine::train_internal {

class PublicationBar {
 public:
  // From a checkpoint's metadata ("best_val_loss", "published_version"); a checkpoint without
  // them (a run that never published) gives a bar without a baseline. A key of the wrong
  // type is an error naming it.
  [[nodiscard]] static absl::StatusOr<PublicationBar> FromMetadata(const StateDict& state);
  void AddToMetadata(StateDict& state) const;

  bool has_baseline() const { return best_loss_.has_value(); }
  void SetBaseline(double loss) { best_loss_ = loss; }
  // True when `loss` is below the best so far (never for NaN). REQUIRES: has_baseline().
  bool Improves(double loss) const { return loss < *best_loss_; }
  // Makes `loss` the best and returns the new version number (1, 2, ...).
  int64_t Advance(double loss);

  int64_t version() const { return version_; }  // The last published; 0: none.
  std::optional<double> best_loss() const { return best_loss_; }

 private:
  std::optional<double> best_loss_;
  int64_t version_ = 0;
};

// dir + "/model-v" + version in 4 digits or more + ".h5": "published/model-v0003.h5".
std::string PublishedModelPath(const std::string& dir, int64_t version);

}  // namespace usine::train_internal

#endif  // USINE_RUNTIME_TRAIN_INTERNAL_PUBLICATION_BAR_H_
