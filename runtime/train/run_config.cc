#include "runtime/train/run_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "runtime/core/status_macros.h"
#include "runtime/train/internal/run_config_reader.h"
#include "runtime/train/internal/toml_text.h"

namespace usine {
namespace {

using run_config_internal::TomlFloat;

// "model.n_head = 12 (the preset's)" or "model.n_head = 4".
std::string ModelValue(const RunConfig& config, absl::string_view name,
                       const std::optional<int64_t>& set, int64_t effective) {
  return absl::StrCat("model.", name, " = ", effective,
                      set ? "" : absl::StrCat(" (preset \"", config.model.preset, "\")"));
}

int64_t CeilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

}  // namespace

absl::StatusOr<GptConfig> ResolveGptConfig(const RunConfig& config) {
  const ModelSection& m = config.model;
  ASSIGN_OR_RETURN(GptConfig model, GptConfigNamed(m.preset));
  model.n_layer = m.n_layer.value_or(model.n_layer);
  model.n_head = m.n_head.value_or(model.n_head);
  model.n_embd = m.n_embd.value_or(model.n_embd);
  model.block_size = m.block_size.value_or(model.block_size);
  model.vocab_size = m.vocab_size.value_or(model.vocab_size);
  if (model.n_head > 0 && model.n_embd % model.n_head != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ModelValue(config, "n_head", m.n_head, model.n_head), " does not divide ",
                     ModelValue(config, "n_embd", m.n_embd, model.n_embd)));
  }
  RETURN_IF_ERROR(WithContext(model.Validate(), "[model]"));
  return model;
}

int64_t RunConfig::ScheduleSteps() const {
  int64_t steps = train.max_steps;
  if (train.max_tokens > 0) {
    const int64_t by_tokens = CeilDiv(train.max_tokens, TokensPerStep());
    steps = steps > 0 ? std::min(steps, by_tokens) : by_tokens;
  }
  return steps;
}

absl::Status RunConfig::Validate() const {
  std::vector<std::string> problems;
  absl::StatusOr<GptConfig> model = ResolveGptConfig(*this);
  if (!model.ok()) {
    problems.emplace_back(model.status().message());
  } else {
    if (data.seq_len > model->block_size) {
      problems.push_back(
          absl::StrCat("data.seq_len = ", data.seq_len, " exceeds ",
                       ModelValue(*this, "block_size", this->model.block_size, model->block_size)));
    }
    if (model->n_head % parallel.tp != 0) {
      problems.push_back(
          absl::StrCat("parallel.tp = ", parallel.tp, " does not divide ",
                       ModelValue(*this, "n_head", this->model.n_head, model->n_head)));
    }
    // kFlashMaxHeadDim of nn/internal/cuda_flash_attention.h (a CUDA-only header): the
    // kernel's shared-memory tiles are sized for heads of at most 128.
    constexpr int64_t kFlashMaxHeadSize = 128;
    if (this->model.attention == ModelSection::Attention::kFlash &&
        model->n_embd / model->n_head > kFlashMaxHeadSize) {
      problems.push_back(
          absl::StrCat("model.attention = \"flash\" needs a head size (n_embd / "
                       "n_head) of at most ",
                       kFlashMaxHeadSize, ", got ", model->n_embd / model->n_head));
    }
    if (model->padded_vocab() % parallel.tp != 0) {
      problems.push_back(
          absl::StrCat("parallel.tp = ", parallel.tp, " does not divide the padded vocabulary, ",
                       model->padded_vocab(), " (",
                       ModelValue(*this, "vocab_size", this->model.vocab_size, model->vocab_size),
                       " rounded up to a multiple of 128)"));
    }
  }
  if (data.micro_batch_size > 0 && data.batch_size % data.micro_batch_size != 0) {
    problems.push_back(absl::StrCat("data.micro_batch_size = ", data.micro_batch_size,
                                    " does not divide data.batch_size = ", data.batch_size));
  }
  if (data.replay_ratio > 0 && data.watch.empty()) {
    problems.push_back(absl::StrCat("data.replay_ratio = ", TomlFloat(data.replay_ratio),
                                    " needs data.watch (replay mixes the base data into the "
                                    "watched data)"));
  }
  if (data.replay_when_idle && data.watch.empty()) {
    problems.push_back("data.replay_when_idle = true needs data.watch");
  }
  if (this->model.attention == ModelSection::Attention::kFlash &&
      this->model.device != DeviceType::kCuda) {
    problems.emplace_back("model.attention = \"flash\" needs model.device = \"cuda\"");
  }
  if (optim.min_lr > optim.lr) {
    problems.push_back(absl::StrCat("optim.min_lr = ", TomlFloat(optim.min_lr),
                                    " exceeds optim.lr = ", TomlFloat(optim.lr)));
  }
  if (train.max_steps == 0 && train.max_tokens == 0 && train.max_minutes == 0 &&
      data.watch.empty()) {
    problems.emplace_back(
        "no stop condition: set train.max_steps, train.max_tokens or train.max_minutes (or "
        "data.watch, to run until a stop signal)");
  }
  if (!train.publish_dir.empty() && train.eval_every == 0) {
    problems.emplace_back(
        "train.publish_dir needs train.eval_every > 0 (a model is published after an "
        "evaluation)");
  }
  if (const int64_t steps = ScheduleSteps(); steps > 0 && optim.warmup_steps > steps) {
    problems.push_back(absl::StrCat(
        "optim.warmup_steps = ", optim.warmup_steps, " exceeds the ", steps, " steps of the run (",
        steps == train.max_steps ? "train.max_steps"
                                 : absl::StrCat("train.max_tokens = ", train.max_tokens, " at ",
                                                TokensPerStep(), " tokens per step"),
        ")"));
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

absl::Status ApplyOverride(absl::string_view assignment, RunConfig& config) {
  return run_config_internal::ApplyAssignment(assignment, config);
}

absl::StatusOr<RunConfig> ParseRunConfig(absl::string_view toml_text, absl::string_view source_name,
                                         const std::vector<std::string>& overrides) {
  RunConfig config;
  RETURN_IF_ERROR(run_config_internal::ApplyTomlDocument(toml_text, source_name, config));
  for (const std::string& assignment : overrides) {
    RETURN_IF_ERROR(ApplyOverride(assignment, config));
  }
  if (absl::Status status = config.Validate(); !status.ok()) {
    // One problem per line, each naming the file.
    return absl::InvalidArgumentError(absl::StrJoin(absl::StrSplit(status.message(), '\n'), "\n",
                                                    [&](std::string* out, absl::string_view line) {
                                                      absl::StrAppend(out, source_name, ": ", line);
                                                    }));
  }
  return config;
}

absl::StatusOr<RunConfig> LoadRunConfig(const std::string& path,
                                        const std::vector<std::string>& overrides) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the run configuration ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) {
    return absl::DataLossError(absl::StrCat("error reading the run configuration ", path));
  }
  return ParseRunConfig(text.str(), path, overrides);
}

absl::StatusOr<RunLayout> ResolveLayout(const RunConfig& config, int world_size) {
  const int64_t tp = config.parallel.tp;
  if (world_size % tp != 0) {
    return absl::InvalidArgumentError(absl::StrCat("parallel.tp = ", tp, " does not divide the ",
                                                   world_size, " ranks of this run"));
  }
  RunLayout layout;
  layout.tp = static_cast<int>(tp);
  layout.dp = static_cast<int>(world_size / tp);
  const int64_t batch = config.data.batch_size, dp = layout.dp;
  if (config.data.micro_batch_size == 0) {
    if (batch % dp != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.batch_size = ", batch, " is not a multiple of the ", dp,
                       " data-parallel ranks (", world_size, " ranks / parallel.tp = ", tp, ")"));
    }
    layout.micro_batch_size = batch / dp;
    layout.accumulation_steps = 1;
    return layout;
  }
  const int64_t micro = config.data.micro_batch_size;
  if (batch % (dp * micro) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data.batch_size = ", batch, " is not a multiple of ", dp, " data-parallel ranks (",
        world_size, " ranks / parallel.tp = ", tp, ") x data.micro_batch_size = ", micro));
  }
  layout.micro_batch_size = micro;
  layout.accumulation_steps = batch / (dp * micro);
  return layout;
}

AdamWOptions ToAdamWOptions(const RunConfig& config) {
  return {.beta1 = config.optim.beta1,
          .beta2 = config.optim.beta2,
          .eps = config.optim.eps,
          .weight_decay = config.optim.weight_decay};
}

LrSchedule ToLrSchedule(const RunConfig& config) {
  const int64_t steps = config.ScheduleSteps();
  return {.max_lr = config.optim.lr,
          .min_lr = config.optim.min_lr,
          .warmup_steps = config.optim.warmup_steps,
          .total_steps = steps > 0 ? steps : std::numeric_limits<int64_t>::max(),
          .decay = config.optim.decay};
}

RetentionPolicy ToRetentionPolicy(const RunConfig& config) {
  return {.keep_last = static_cast<int>(config.checkpoint.keep_last),
          .keep_every = config.checkpoint.keep_every};
}

}  // namespace usine
