// A user-defined language model trained data-parallel by usine's Trainer: a two-layer MLP
// that predicts the next token from the current one (a "bigram MLP"), built from the
// library's layers the way a user would build their own (runtime/nn/token_model.h).
//
//   mpirun -np 2 custom_model DIR       # writes synthetic shards into DIR, trains, resumes
//
// It writes two token shards with a simple pattern (the next token is a function of the
// current one, with some noise), trains for 30 steps at 2 micro-batches per rank, then
// trains a second Trainer on the same run directory to 40 steps: it resumes from the
// checkpoint of step 30. Exit 0 when the loss has fallen well below ln(vocab).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "collectives/byte_exchange.h"
#include "collectives/process_grid.h"
#include "runtime/core/status_macros.h"
#include "runtime/data/token_shard.h"
#include "runtime/launch/world.h"
#include "runtime/nn/cross_entropy.h"
#include "runtime/nn/embedding.h"
#include "runtime/nn/gelu.h"
#include "runtime/nn/linear.h"
#include "runtime/nn/token_model.h"
#include "runtime/train/trainer.h"

namespace {

using usine::Tensor;

constexpr int64_t kVocab = 256;
constexpr int64_t kWidth = 64;

// logits(next | current) = head(gelu(fc(embedding(current)))).
class BigramMlp : public usine::TokenModel {
 public:
  static absl::StatusOr<std::unique_ptr<BigramMlp>> Create(uint64_t seed) {
    auto m = std::unique_ptr<BigramMlp>(new BigramMlp);
    usine::ParameterInitializer init(seed);
    ASSIGN_OR_RETURN(m->embedding_,
                     usine::Embedding::Create({.rows = kVocab, .dim = kWidth}, init));
    ASSIGN_OR_RETURN(
        m->fc_, usine::Linear::Create({.in_features = kWidth, .out_features = 4 * kWidth}, init));
    ASSIGN_OR_RETURN(
        m->head_, usine::Linear::Create({.in_features = 4 * kWidth, .out_features = kVocab}, init));
    m->AddChild("embedding", m->embedding_.get());
    m->AddChild("fc", m->fc_.get());
    m->AddChild("head", m->head_.get());
    return m;
  }

  absl::StatusOr<double> Forward(const Tensor& tokens) override {
    const int64_t batch = tokens.dim(0), seq = tokens.dim(1) - 1;
    ASSIGN_OR_RETURN(Tensor x, embedding_->Forward({tokens, 0, seq}));
    ASSIGN_OR_RETURN(Tensor h, fc_->Forward(x));
    ASSIGN_OR_RETURN(h, gelu_.Forward(h));
    ASSIGN_OR_RETURN(logits_, head_->Forward(h));                           // [B, T, vocab]
    ASSIGN_OR_RETURN(Tensor rows, logits_.Reshape({batch * seq, kVocab}));  // A view.
    return cross_entropy_.Forward(rows, {tokens, 1, seq});
  }

  absl::Status Backward(double dloss, const GradientsFinal& on_final) override {
    RETURN_IF_ERROR(cross_entropy_.Backward(dloss));  // logits_ now hold their gradient.
    ASSIGN_OR_RETURN(Tensor dh, head_->Backward(logits_));
    if (on_final) RETURN_IF_ERROR(on_final(*head_));  // Its gradients may start reducing.
    ASSIGN_OR_RETURN(dh, gelu_.Backward(dh));
    ASSIGN_OR_RETURN(Tensor dx, fc_->Backward(dh));
    if (on_final) RETURN_IF_ERROR(on_final(*fc_));
    RETURN_IF_ERROR(embedding_->Backward(dx));
    if (on_final) RETURN_IF_ERROR(on_final(*embedding_));
    ReleaseActivations();
    return absl::OkStatus();
  }

 private:
  BigramMlp() : gelu_(usine::DType::kF32), cross_entropy_(kVocab) {}
  void ClearSaved() override { logits_ = Tensor(); }

  std::unique_ptr<usine::Embedding> embedding_;
  std::unique_ptr<usine::Linear> fc_;
  usine::Gelu gelu_;
  std::unique_ptr<usine::Linear> head_;
  usine::SoftmaxCrossEntropy cross_entropy_;
  Tensor logits_;
};

// Tokens where the next one is mostly (current * 7 + 3) mod vocab.
std::vector<int32_t> Pattern(int64_t n, uint32_t salt) {
  std::vector<int32_t> ids(n);
  uint32_t noise = salt * 2654435761u + 1;
  ids[0] = static_cast<int32_t>(salt % kVocab);
  for (int64_t i = 1; i < n; ++i) {
    noise = noise * 1664525u + 1013904223u;
    ids[i] = (noise >> 28) == 0 ? static_cast<int32_t>((noise >> 8) % kVocab)
                                : static_cast<int32_t>((ids[i - 1] * 7 + 3) % kVocab);
  }
  return ids;
}

absl::StatusOr<double> Train(usine::ProcessGrid& grid, const std::string& dir, int64_t steps) {
  ASSIGN_OR_RETURN(auto model, BigramMlp::Create(/*seed=*/42));
  usine::TrainerOptions options;
  options.run_dir = dir + "/run";
  options.train_data.shards = {dir + "/train_0.bin", dir + "/train_1.bin"};
  options.train_data.vocab_size = kVocab;
  options.train_data.seq_len = 32;
  options.train_data.batch_size = 8;  // Per rank and micro-batch.
  options.global_batch = 16 * grid.size(usine::ParallelAxis::kData);
  options.schedule = {.max_lr = 1e-2, .warmup_steps = 5, .total_steps = 40};
  options.max_steps = steps;
  options.checkpoint_every_steps = 10;
  const bool rank0 = grid.world().rank() == 0;
  options.on_step = [rank0](const usine::StepReport& r) {
    if (rank0 && r.step % 5 == 0) std::printf("step %lld loss %.4f\n", (long long)r.step, r.loss);
  };
  ASSIGN_OR_RETURN(auto trainer, usine::Trainer::Create(grid, *model, std::move(options)));
  if (rank0 && trainer->start_step() > 0) {
    std::printf("resumed at step %lld\n", (long long)trainer->start_step());
  }
  ASSIGN_OR_RETURN(usine::TrainOutcome outcome, trainer->Run());
  return outcome.last_loss;
}

absl::Status Run(const std::string& dir) {
  ASSIGN_OR_RETURN(auto world, usine::World::Init());
  ASSIGN_OR_RETURN(auto grid, usine::ProcessGrid::Create(world->comm(), /*tp_size=*/1));
  absl::Status written;  // Rank 0 writes the data; every rank learns whether it could.
  if (world->rank() == 0) {
    std::filesystem::remove_all(dir + "/run");
    std::filesystem::create_directories(dir);
    written =
        usine::WriteTokenShard(dir + "/train_0.bin", Pattern(40000, 1), usine::TokenWidth::kUint16);
    written.Update(usine::WriteTokenShard(dir + "/train_1.bin", Pattern(40000, 2),
                                          usine::TokenWidth::kUint16));
  }
  RETURN_IF_ERROR(usine::AgreeOnStatus(world->comm(), written));
  ASSIGN_OR_RETURN(double first, Train(*grid, dir, 30));
  ASSIGN_OR_RETURN(double last, Train(*grid, dir, 40));  // Resumes from step 30.
  if (world->rank() == 0) {
    std::printf("loss %.3f after 30 steps, %.3f after 40 (ln vocab = %.3f)\n", first, last,
                std::log(static_cast<double>(kVocab)));
  }
  if (!(last < 0.5 * std::log(static_cast<double>(kVocab)))) {
    return absl::InternalError("custom_model: the loss did not fall");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "custom_model_data";
  const absl::Status status = Run(dir);
  if (!status.ok()) {
    std::fprintf(stderr, "custom_model: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
