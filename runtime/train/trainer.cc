#include "runtime/train/trainer.h"

#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

#include "checkpoint/checkpointer.h"
#include "checkpoint/state_dict.h"
#include "collectives/byte_exchange.h"
#include "runtime/core/atomic_file.h"
#include "runtime/core/logging.h"
#include "runtime/core/status_macros.h"
#include "runtime/core/stop_signal.h"
#include "runtime/data/data_stream_state.h"
#include "runtime/optim/zero_adamw.h"
#include "runtime/train/checkpoint_keys.h"
#include "runtime/train/data_parallel.h"
#include "runtime/train/evaluate.h"
#include "runtime/train/internal/publication_bar.h"
#include "runtime/train/internal/step_reporter.h"
#include "runtime/train/internal/stop_watcher.h"

namespace usine {
namespace {

namespace keys = checkpoint_keys;
// A published model's metadata (TrainerOptions::publish_dir).
constexpr char kVersionKey[] = "version";
constexpr char kValLossKey[] = "val_loss";

absl::Status ValidateOptions(const TrainerOptions& o, int dp_size) {
  const auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat("Trainer: ", parts...));
  };
  if (o.run_dir.empty()) return bad("run_dir is required");
  if (o.train_data.batch_size <= 0) return bad("micro-batch size ", o.train_data.batch_size);
  const int64_t per_step = dp_size * o.train_data.batch_size;
  if (o.global_batch <= 0 || o.global_batch % per_step != 0) {
    return bad("global batch ", o.global_batch, " is not a positive multiple of dp size ", dp_size,
               " x micro-batch ", o.train_data.batch_size);
  }
  if (o.max_steps <= 0 && o.max_tokens <= 0 && o.max_time <= absl::ZeroDuration() &&
      !o.train_data.watch.has_value()) {
    return bad("no budget: set max_steps, max_tokens or max_time (or watch for new data)");
  }
  if (!o.publish_dir.empty() && (o.val_shards.empty() || o.eval_every <= 0)) {
    return bad("publish_dir ", o.publish_dir, " needs evaluations: val_shards and eval_every > 0");
  }
  if (o.max_steps < 0 || o.max_tokens < 0 || o.eval_every < 0 || o.eval_batches < 0 ||
      o.checkpoint_every_steps < 0) {
    return bad("negative budget, evaluation or checkpoint interval");
  }
  if (o.max_bad_steps < 1) return bad("max_bad_steps ", o.max_bad_steps, " (at least 1)");
  RETURN_IF_ERROR(o.adamw.Validate());
  RETURN_IF_ERROR(o.schedule.Validate());
  return absl::OkStatus();
}

// Decisions taken together at a step boundary, from every rank's view (max over the world).
struct Boundary {
  int signal = 0;               // A stop signal arrived on some rank.
  bool checkpoint_due = false;  // By rank 0's clock.
  bool time_up = false;         // By rank 0's clock.
  bool failed = false;          // Some rank holds a local failure (Impl::pending_).
};

absl::StatusOr<Boundary> AgreeAtBoundary(Communicator& world, int signal, bool checkpoint_due,
                                         bool time_up, bool failed) {
  ASSIGN_OR_RETURN(Tensor flags, Tensor::Empty({4}, DType::kF32));
  float* f = static_cast<float*>(flags.raw_data());
  f[0] = static_cast<float>(signal);
  f[1] = world.rank() == 0 && checkpoint_due ? 1.0f : 0.0f;
  f[2] = world.rank() == 0 && time_up ? 1.0f : 0.0f;
  f[3] = failed ? 1.0f : 0.0f;
  if (world.size() > 1) RETURN_IF_ERROR(world.AllReduce(flags, ReduceOp::kMax));
  return Boundary{.signal = static_cast<int>(f[0]),
                  .checkpoint_due = f[1] != 0.0f,
                  .time_up = f[2] != 0.0f,
                  .failed = f[3] != 0.0f};
}

}  // namespace

class Trainer::Impl {
 public:
  Impl(ProcessGrid& grid, TokenModel& model, TrainerOptions options)
      : grid_(grid), model_(model), o_(std::move(options)), dp_(grid.comm(ParallelAxis::kData)) {}

  absl::Status Init();
  absl::StatusOr<TrainOutcome> Run();
  int64_t start_step() const { return start_step_; }

 private:
  absl::Status BuildOptimizer();
  // The run directory (every rank: a shared or a local disk), the configuration and the
  // publish directory (rank 0): local work, which may fail on some ranks only.
  absl::Status PrepareDirectories();
  absl::Status WriteConfig();
  absl::Status Resume(std::optional<DataStreamState>* data_state);
  // The model's tensors from o_.init_from (rank 0 resolves a directory's `latest`).
  absl::Status InitFrom();
  absl::Status OpenData(const DataStreamState* resume);
  // This step's micro-batches into `batches` and `micro`. In watch mode the ranks then agree
  // that all of them have theirs; returns the agreed stop signal when some rank's stream was
  // closed by one (the step is then not taken), else 0.
  absl::StatusOr<int> Fetch(std::vector<Batch>& batches, std::vector<Tensor>& micro);
  // After an evaluation: publishes the model when `eval` beats the bar.
  absl::Status MaybePublish(const EvalReport& eval);
  absl::StatusOr<TrainStepResult> Step(absl::Span<const Tensor> micro_batches, double lr);
  // Adds the model's ("model/") and the optimizer's ("optim/") entries, as handles.
  absl::Status AddState(StateDict& state) const;
  absl::StatusOr<absl::Duration> Save();
  // The metadata of checkpoints and published models alike: step, tokens, configurations.
  void AddRunMetadata(StateDict& state) const;
  absl::StatusOr<EvalReport> Evaluate();
  int64_t TokensPerStep() const { return o_.global_batch * o_.train_data.seq_len; }

  ProcessGrid& grid_;
  TokenModel& model_;
  TrainerOptions o_;
  Communicator& dp_;
  int64_t micro_batches_ = 0;  // Per step and DP rank.

  std::unique_ptr<GradientReducer> reducer_;  // AdamW over more than one DP rank.
  std::unique_ptr<AdamW> adamw_;
  std::unique_ptr<ZeroAdamW> zero_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<Communicator> data_comm_;  // Watch mode over more than one rank.
  std::unique_ptr<DataStream> data_;
  std::unique_ptr<train_internal::StepReporter> reporter_;

  int64_t start_step_ = 0;
  int64_t step_ = 0;
  int64_t tokens_seen_ = 0;
  int64_t skipped_total_ = 0;
  int64_t saved_step_ = -1;  // The step of the last Save.
  bool resumed_ = false;
  DataStreamState boundary_data_;  // data_'s state at the last step boundary: what Save saves.
  train_internal::PublicationBar bar_;
  // A failure of this rank's own work between collectives (rank 0's metrics log, a
  // publication): the run goes on to the next step boundary, where every rank ends with it
  // (AgreeOnStatus), instead of the others waiting for this one in the step's collectives
  // until their timeout. Every path out of Run that returns OK agrees on it first.
  absl::Status pending_;
};

absl::Status Trainer::Impl::BuildOptimizer() {
  if (o_.zero) {
    ASSIGN_OR_RETURN(zero_, ZeroAdamW::Create(dp_, model_.Parameters(), o_.adamw, model_.tp()));
    return absl::OkStatus();
  }
  if (dp_.size() > 1) {
    ASSIGN_OR_RETURN(reducer_, AttachGradientReducer(model_, dp_));
  }
  ASSIGN_OR_RETURN(adamw_, AdamW::Create(model_.Parameters(), o_.adamw));
  return absl::OkStatus();
}

absl::Status Trainer::Impl::WriteConfig() {
  if (grid_.world().rank() != 0 || o_.config_text.empty()) return absl::OkStatus();
  const std::string path = absl::StrCat(o_.run_dir, "/config.toml");
  return WithContext(WriteFileAtomically(path, {o_.config_text}), path);
}

absl::Status Trainer::Impl::PrepareDirectories() {
  std::error_code ec;
  std::filesystem::create_directories(o_.run_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("Trainer: cannot create run directory ", o_.run_dir, ": ", ec.message()));
  }
  RETURN_IF_ERROR(WriteConfig());
  if (!o_.publish_dir.empty() && grid_.world().rank() == 0) {
    std::filesystem::create_directories(o_.publish_dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("Trainer: cannot create publish directory ",
                                              o_.publish_dir, ": ", ec.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Trainer::Impl::Init() {
  RETURN_IF_ERROR(ValidateOptions(o_, dp_.size()));
  micro_batches_ = o_.global_batch / (dp_.size() * o_.train_data.batch_size);
  // Local work (no collective: the optimizer's state, out of memory on one rank), agreed on
  // before the first collective, which the other ranks would wait in for a failed one.
  absl::Status local = PrepareDirectories();
  if (local.ok()) local = BuildOptimizer();
  RETURN_IF_ERROR(AgreeOnStatus(grid_.world(), local));
  ASSIGN_OR_RETURN(
      checkpointer_,
      Checkpointer::Create(grid_.world(), {.directory = absl::StrCat(o_.run_dir, "/checkpoints"),
                                           .retention = o_.retention,
                                           .verify_on_load = o_.verify_on_load}));
  double flops_per_token = o_.metrics.flops_per_token;
  if (flops_per_token <= 0) {
    int64_t parameters = 0;
    for (const NamedParameter& p : model_.Parameters()) parameters += p.parameter->value.numel();
    flops_per_token = 6.0 * static_cast<double>(parameters);
  }
  const Device device = model_.Parameters().empty()
                            ? Device::Cpu()
                            : model_.Parameters()[0].parameter->value.device();
  // Rank 0 opens the metrics log alone.
  absl::StatusOr<std::unique_ptr<train_internal::StepReporter>> reporter =
      train_internal::StepReporter::Create(grid_.world(), device, o_.run_dir, o_.metrics,
                                           flops_per_token);
  RETURN_IF_ERROR(AgreeOnStatus(grid_.world(), reporter.status()));
  reporter_ = *std::move(reporter);
  std::optional<DataStreamState> data_state;
  if (o_.resume) RETURN_IF_ERROR(Resume(&data_state));
  if (!resumed_ && !o_.init_from.empty()) RETURN_IF_ERROR(InitFrom());
  return OpenData(data_state ? &*data_state : nullptr);
}

absl::Status Trainer::Impl::OpenData(const DataStreamState* resume) {
  DataStreamOptions data = o_.train_data;
  data.dp_rank = dp_.rank();
  data.dp_size = dp_.size();
  Communicator& world = grid_.world();
  if (data.watch.has_value() && world.size() > 1) {
    // Every rank reads the stream (TP ranks of a DP group alike); its decision rounds need a
    // communicator that carries nothing else. They exchange host values only: a split of the
    // host side (over NCCL, its MPI twin), with no NCCL communicator of its own.
    Communicator& host = world.host();
    ASSIGN_OR_RETURN(data_comm_, host.Split(0, host.rank(), absl::StrCat(host.name(), ".data")));
    data.comm = data_comm_.get();
  }
  // A base shard that one rank cannot read fails the open there only (in watch mode Open
  // agrees itself, over data_comm_).
  absl::StatusOr<std::unique_ptr<DataStream>> opened = DataStream::Open(std::move(data), resume);
  RETURN_IF_ERROR(AgreeOnStatus(world, opened.status()));
  data_ = *std::move(opened);
  boundary_data_ = data_->state();
  return absl::OkStatus();
}

absl::Status Trainer::Impl::InitFrom() {
  Communicator& world = grid_.world();
  absl::StatusOr<std::string> path = ResolveCheckpointPathOnRankZero(world, o_.init_from);
  RETURN_IF_ERROR(WithContext(path.status(), absl::StrCat("init_from ", o_.init_from)));
  const std::string& resolved = *path;
  StateDict state;  // The model's entries only: the file's others (optimizer, ...) stay unread.
  RETURN_IF_ERROR(model_.AddToStateDict(state, keys::kModelPrefix));
  RETURN_IF_ERROR(WithContext(checkpointer_->Load(resolved, state), "init_from"));
  if (world.rank() == 0) USINE_LOG(INFO) << "model initialised from " << resolved;
  return absl::OkStatus();
}

absl::Status Trainer::Impl::Resume(std::optional<DataStreamState>* data_state) {
  StateDict state;  // Handles: the load fills the model's and the optimizer's tensors.
  RETURN_IF_ERROR(AddState(state));
  absl::StatusOr<int64_t> loaded = checkpointer_->LoadLatest(state);
  if (absl::IsNotFound(loaded.status())) return absl::OkStatus();  // A fresh run.
  RETURN_IF_ERROR(loaded.status());
  ASSIGN_OR_RETURN(step_, state.GetInt(keys::kStep));
  ASSIGN_OR_RETURN(tokens_seen_, state.GetInt(keys::kTokensSeen));
  ASSIGN_OR_RETURN(skipped_total_, state.GetInt(keys::kSkippedSteps));
  ASSIGN_OR_RETURN(const std::string json, state.GetJson(keys::kDataPosition));
  ASSIGN_OR_RETURN(DataStreamState data, DataStreamState::FromJson(json));
  *data_state = std::move(data);
  ASSIGN_OR_RETURN(bar_, train_internal::PublicationBar::FromMetadata(state));
  if (zero_ != nullptr) {
    RETURN_IF_ERROR(zero_->RestoreStep(state));
  } else {
    RETURN_IF_ERROR(adamw_->RestoreStep(state));
  }
  start_step_ = saved_step_ = step_;
  resumed_ = true;
  if (grid_.world().rank() == 0) {
    USINE_LOG(INFO) << "resumed from " << checkpointer_->directory() << " at step " << step_ << " ("
                    << tokens_seen_ << " tokens; written at "
                    << state.GetJson(keys::kParallelLayout).value_or("an unknown layout") << ")";
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainStepResult> Trainer::Impl::Step(absl::Span<const Tensor> micro_batches,
                                                    double lr) {
  const TrainStepOptions options{
      .lr = lr, .max_grad_norm = o_.max_grad_norm, .reducer = reducer_.get(), .dp = &dp_};
  if (zero_ != nullptr) return TrainStep(model_, micro_batches, *zero_, options);
  return TrainStep(model_, micro_batches, *adamw_, options);
}

absl::Status Trainer::Impl::AddState(StateDict& state) const {
  RETURN_IF_ERROR(model_.AddToStateDict(state, keys::kModelPrefix));
  return zero_ != nullptr ? zero_->AddToStateDict(state) : adamw_->AddToStateDict(state);
}

absl::StatusOr<absl::Duration> Trainer::Impl::Save() {
  // Built afresh: the optimizer's metadata (its step) is taken as it is now.
  StateDict state;
  RETURN_IF_ERROR(AddState(state));
  AddRunMetadata(state);
  state.SetInt(keys::kSkippedSteps, skipped_total_);
  state.SetInt(keys::kSeed, static_cast<int64_t>(o_.seed));
  state.SetJson(keys::kParallelLayout,
                absl::StrCat("{\"tp\": ", grid_.size(ParallelAxis::kTensor),
                             ", \"dp\": ", grid_.size(ParallelAxis::kData), "}"));
  state.SetJson(keys::kDataPosition, boundary_data_.ToJson());
  if (!o_.publish_dir.empty()) bar_.AddToMetadata(state);
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(checkpointer_->Save(step_, state));
  saved_step_ = step_;
  return absl::Now() - start;
}

void Trainer::Impl::AddRunMetadata(StateDict& state) const {
  state.SetInt(keys::kStep, step_);
  state.SetInt(keys::kTokensSeen, tokens_seen_);
  if (!o_.config_text.empty()) state.SetString(keys::kRunConfig, o_.config_text);
  if (!o_.model_config_json.empty()) state.SetJson(keys::kModelConfig, o_.model_config_json);
}

absl::StatusOr<EvalReport> Trainer::Impl::Evaluate() {
  DataStreamOptions val = o_.train_data;
  val.shards = o_.val_shards;
  absl::StatusOr<EvalResult> result =
      usine::Evaluate(model_, &dp_, std::move(val), o_.eval_batches);
  RETURN_IF_ERROR(WithContext(result.status(), "Trainer: validation split"));
  const EvalReport report{.step = step_, .loss = result->loss, .batches = result->batches};
  if (o_.on_eval) o_.on_eval(report);
  pending_.Update(reporter_->ReportEval(report, result->tokens));
  return report;
}

absl::Status Trainer::Impl::MaybePublish(const EvalReport& eval) {
  if (o_.publish_dir.empty() || !bar_.Improves(eval.loss)) return absl::OkStatus();
  const std::optional<double> previous = bar_.best_loss();
  const int64_t version = bar_.Advance(eval.loss);
  const std::string path = train_internal::PublishedModelPath(o_.publish_dir, version);
  StateDict state;
  RETURN_IF_ERROR(model_.AddToStateDict(state, keys::kModelPrefix));
  AddRunMetadata(state);
  state.SetInt(kVersionKey, version);
  state.SetDouble(kValLossKey, eval.loss);
  RETURN_IF_ERROR(checkpointer_->SaveAs(path, state));
  if (grid_.world().rank() == 0) {
    USINE_LOG(INFO) << "publishing " << path << " (step " << step_ << ", val loss " << eval.loss
                    << " < " << *previous << ")";
  }
  return absl::OkStatus();
}

absl::StatusOr<int> Trainer::Impl::Fetch(std::vector<Batch>& batches, std::vector<Tensor>& micro) {
  absl::Status fetched;
  for (size_t i = 0; i < micro.size() && fetched.ok(); ++i) {
    absl::StatusOr<Batch> batch = data_->Next();
    fetched = batch.status();
    if (!batch.ok()) break;
    batches[i] = *std::move(batch);
    micro[i] = batches[i].tokens;
  }
  if (!o_.train_data.watch.has_value()) {
    RETURN_IF_ERROR(fetched);
    return 0;
  }
  // [a stop signal, a stream closed, a stream failed otherwise], the max over the world.
  Communicator& world = grid_.world();
  const bool closed = absl::IsCancelled(fetched);
  ASSIGN_OR_RETURN(Tensor flags, Tensor::Empty({3}, DType::kF32));
  float* f = static_cast<float*>(flags.raw_data());
  f[0] = static_cast<float>(StopSignal());
  f[1] = closed ? 1.0f : 0.0f;
  f[2] = !fetched.ok() && !closed ? 1.0f : 0.0f;
  if (world.size() > 1) RETURN_IF_ERROR(world.AllReduce(flags, ReduceOp::kMax));
  if (f[2] != 0.0f) {
    if (!fetched.ok() && !closed) return WithContext(fetched, "Trainer: training data");
    return absl::AbortedError(
        absl::StrCat("Trainer: the training data failed on another rank (rank ", world.rank(),
                     " fetched step ", step_ + 1, ")"));
  }
  if (f[1] == 0.0f) return 0;
  if (f[0] == 0.0f) {
    return absl::InternalError(absl::StrCat(
        "Trainer: the training data stream closed without a stop signal at step ", step_ + 1));
  }
  return static_cast<int>(f[0]);
}

absl::StatusOr<TrainOutcome> Trainer::Impl::Run() {
  Communicator& world = grid_.world();
  const absl::Time run_start = absl::Now();
  absl::Time last_checkpoint = run_start;
  const bool checkpoint_by_time = o_.checkpoint_every > absl::ZeroDuration();
  const bool time_budget = o_.max_time > absl::ZeroDuration();
  TrainOutcome outcome;
  int bad_in_row = 0;
  std::vector<Tensor> micro(static_cast<size_t>(micro_batches_));
  std::vector<Batch> batches(micro.size());  // Keep the batches' buffers alive.
  // A stop signal ends a wait for new shards at once (the stream is closed); see trainer.h.
  std::optional<train_internal::StopWatcher> stop_watcher;
  if (o_.train_data.watch.has_value()) stop_watcher.emplace([this] { data_->Close(); });
  if (!o_.publish_dir.empty() && !bar_.has_baseline()) {
    ASSIGN_OR_RETURN(const EvalReport baseline, Evaluate());
    bar_.SetBaseline(baseline.loss);
  }
  while (true) {
    // The step boundary: agree on signals and clocks, then stop, checkpoint or go on.
    const absl::Time step_start = absl::Now();
    boundary_data_ = data_->state();
    ASSIGN_OR_RETURN(
        const Boundary boundary,
        AgreeAtBoundary(world, StopSignal(),
                        checkpoint_by_time && step_start - last_checkpoint >= o_.checkpoint_every,
                        time_budget && step_start - run_start >= o_.max_time, !pending_.ok()));
    if (boundary.failed) RETURN_IF_ERROR(AgreeOnStatus(world, pending_));
    const bool budget_done = (o_.max_steps > 0 && step_ >= o_.max_steps) ||
                             (o_.max_tokens > 0 && tokens_seen_ >= o_.max_tokens) ||
                             boundary.time_up;
    const bool stop = budget_done || boundary.signal != 0;
    const bool by_steps = o_.checkpoint_every_steps > 0 && step_ > start_step_ &&
                          step_ % o_.checkpoint_every_steps == 0;
    absl::Duration stall;
    if (step_ != saved_step_ && (stop || by_steps || boundary.checkpoint_due)) {
      // A snapshot may fail on some ranks only (pinned memory): agreed at once, so that no
      // rank trains on, or publishes, past a checkpoint that failed.
      absl::StatusOr<absl::Duration> saved = Save();
      RETURN_IF_ERROR(AgreeOnStatus(world, saved.status()));
      stall = *saved;
      last_checkpoint = absl::Now();
    }
    if (stop) {
      pending_.Update(checkpointer_->Wait());
      RETURN_IF_ERROR(AgreeOnStatus(world, pending_));
      outcome.reason =
          boundary.signal != 0 && !budget_done ? StopReason::kSignal : StopReason::kBudget;
      outcome.signal = boundary.signal;
      break;
    }

    const absl::Time data_start = absl::Now();
    ASSIGN_OR_RETURN(const int closed_by, Fetch(batches, micro));
    if (closed_by != 0) {  // The step is not taken: its boundary's data position is saved.
      if (step_ != saved_step_) pending_.Update(Save().status());
      pending_.Update(checkpointer_->Wait());
      RETURN_IF_ERROR(AgreeOnStatus(world, pending_));
      outcome.reason = StopReason::kSignal;
      outcome.signal = closed_by;
      break;
    }
    const absl::Duration data_wait = absl::Now() - data_start;
    const double lr = o_.schedule.At(step_);
    ASSIGN_OR_RETURN(const TrainStepResult result, Step(micro, lr));
    ++step_;
    tokens_seen_ += TokensPerStep();
    if (result.skipped) {
      ++skipped_total_;
      ++bad_in_row;
    } else {
      bad_in_row = 0;
      outcome.last_loss = result.loss;
    }
    const StepReport report{.step = step_,
                            .max_steps = o_.max_steps,
                            .loss = result.loss,
                            .lr = lr,
                            .grad_norm = result.grad_norm,
                            .skipped = result.skipped,
                            .skipped_total = skipped_total_,
                            .tokens = TokensPerStep(),
                            .tokens_seen = tokens_seen_,
                            .data_wait = data_wait,
                            .times = result.times,
                            .checkpoint_stall = stall,
                            .step_time = absl::Now() - step_start};
    if (o_.on_step) o_.on_step(report);
    pending_.Update(reporter_->Report(report, /*last=*/step_ == o_.max_steps));
    if (bad_in_row >= o_.max_bad_steps) {
      (void)checkpointer_->Wait();  // The last committed checkpoint stays; its error is moot.
      return absl::AbortedError(absl::StrCat(
          "Trainer: ", bad_in_row, " steps in a row had a non-finite loss or gradient norm (step ",
          step_, "); stopping. The last checkpoint is in ", checkpointer_->directory(),
          "; lower the learning rate or check the data, then resume"));
    }
    if (o_.eval_every > 0 && !o_.val_shards.empty() && step_ % o_.eval_every == 0) {
      ASSIGN_OR_RETURN(const EvalReport eval, Evaluate());
      pending_.Update(MaybePublish(eval));
    }
  }
  // Every rank closes a watched stream now, so that a rank whose stop watcher is closing it
  // (a signal after the stop was agreed) finds the others in the closing round at once.
  if (o_.train_data.watch.has_value()) data_->Close();
  outcome.step = step_;
  outcome.tokens_seen = tokens_seen_;
  outcome.skipped_steps = skipped_total_;
  return outcome;
}

Trainer::Trainer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Trainer::~Trainer() = default;

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(ProcessGrid& grid, TokenModel& model,
                                                         TrainerOptions options) {
  auto impl = std::make_unique<Impl>(grid, model, std::move(options));
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Trainer>(new Trainer(std::move(impl)));
}

absl::StatusOr<TrainOutcome> Trainer::Run() { return impl_->Run(); }

int64_t Trainer::start_step() const { return impl_->start_step(); }

}  // namespace usine
