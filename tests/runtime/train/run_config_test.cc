#include "runtime/train/run_config.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "runtime/train/trainer.h"
#include "tests/testing/device_test.h"

namespace usine {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The smallest valid file: every run needs a stop condition.
constexpr char kMinimal[] = "[train]\nmax_steps = 100\n";

std::string ErrorOf(absl::string_view text, const std::vector<std::string>& overrides = {}) {
  absl::StatusOr<RunConfig> config = ParseRunConfig(text, "run.toml", overrides);
  EXPECT_FALSE(config.ok()) << "parsed:\n" << text;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// A config with every key away from its default (and valid).
RunConfig EveryKeySet() {
  RunConfig c;
  c.run = {.dir = "runs/a \"quoted\" \\ dir\twith tab", .seed = 42};
  c.model.preset = "gpt2-medium";
  c.model.n_layer = 6;
  c.model.n_head = 8;
  c.model.n_embd = 512;
  c.model.block_size = 256;
  c.model.vocab_size = 32000;
  c.model.device = DeviceType::kCuda;
  c.model.recompute = true;
  c.model.matmul_precision = MatmulPrecision::kBf16;
  c.model.attention = ModelSection::Attention::kFlash;
  c.parallel = {.tp = 2, .zero = true};
  c.data = {.dir = "données/brown",
            .seq_len = 200,
            .batch_size = 48,
            .micro_batch_size = 6,
            .shuffle = false,
            .prefetch = 7,
            .watch = "incoming",
            .replay_ratio = 0.3,
            .replay_when_idle = true};
  c.optim = {.lr = 0.5,
             .min_lr = 1.0 / 3.0,
             .beta1 = 0.85,
             .beta2 = 0.999,
             .eps = 1e-10,
             .weight_decay = 0.01,
             .max_grad_norm = 0,
             .warmup_steps = 17,
             .decay = LrDecay::kLinear};
  c.train = {.max_steps = 123,
             .max_tokens = 456789,
             .max_minutes = 1.5,
             .eval_every = 7,
             .eval_batches = 3,
             .max_bad_steps = 9,
             .publish_dir = "published"};
  c.checkpoint = {.every_steps = 0,
                  .every_minutes = 12.25,
                  .keep_last = 1,
                  .keep_every = 500,
                  .resume = false,
                  .verify = false,
                  .init_from = "base/checkpoints"};
  c.logging = {.every_steps = 5, .peak_tflops = 989.5};
  return c;
}

TEST(RunConfig, EmptySectionsGiveTheDocumentedDefaults) {
  ASSERT_OK_AND_ASSIGN(RunConfig config, ParseRunConfig(kMinimal, "run.toml"));
  RunConfig expected;
  expected.train.max_steps = 100;
  EXPECT_EQ(config, expected);
  // The values run_config.h documents, and those of the structs it mirrors.
  EXPECT_EQ(config.run.dir, "run");
  EXPECT_EQ(config.run.seed, 1337);
  EXPECT_EQ(config.model.preset, "gpt2");
  EXPECT_FALSE(config.model.n_layer.has_value());
  EXPECT_EQ(config.model.device, DeviceType::kCpu);
  EXPECT_EQ(config.model.attention, ModelSection::Attention::kUnfused);
  EXPECT_EQ(config.parallel.tp, 1);
  EXPECT_EQ(config.data.dir, "data/brown");
  EXPECT_EQ(config.data.micro_batch_size, 0);
  EXPECT_EQ(config.data.prefetch, 4);
  const AdamWOptions adamw;
  EXPECT_EQ(config.optim.beta1, adamw.beta1);
  EXPECT_EQ(config.optim.beta2, adamw.beta2);
  EXPECT_EQ(config.optim.eps, adamw.eps);
  EXPECT_EQ(config.optim.weight_decay, adamw.weight_decay);
  const LrSchedule schedule;
  EXPECT_EQ(config.optim.lr, schedule.max_lr);
  EXPECT_EQ(config.optim.min_lr, schedule.min_lr);
  EXPECT_EQ(config.optim.decay, schedule.decay);
  EXPECT_EQ(config.checkpoint.keep_last, RetentionPolicy{}.keep_last);
  EXPECT_EQ(config.checkpoint.keep_every, RetentionPolicy{}.keep_every);
  EXPECT_EQ(config.train.max_bad_steps, TrainerOptions{}.max_bad_steps);
  EXPECT_TRUE(config.checkpoint.resume);
}

TEST(RunConfig, ReadsAFullFile) {
  constexpr char kFile[] = R"(# a comment
[run]
dir = "runs/x"
seed = 7

[model]
preset = "tiny"
n_layer = 3
n_embd = 64
device = "cuda"
recompute = true
matmul_precision = "tf32"
attention = "flash"

[parallel]
tp = 2
zero = true

[data]
dir = "data/x"
seq_len = 32
batch_size = 16
micro_batch_size = 2
shuffle = false
prefetch = 2
watch = "incoming/"
replay_ratio = 0.25
replay_when_idle = true

[optim]
lr = 1e-3
min_lr = 1e-4
beta1 = 0.8
beta2 = 0.99
eps = 1e-6
weight_decay = 0
max_grad_norm = 0.5
warmup_steps = 10
decay = "linear"

[train]
max_steps = 50
max_tokens = 100000
max_minutes = 2.5
eval_every = 10
eval_batches = 4
max_bad_steps = 2

[checkpoint]
every_steps = 25
every_minutes = 5
keep_last = 2
keep_every = 100
resume = false
verify = false

[logging]
every_steps = 5
peak_tflops = 312
)";
  ASSERT_OK_AND_ASSIGN(RunConfig c, ParseRunConfig(kFile, "run.toml"));
  EXPECT_EQ(c.run.dir, "runs/x");
  EXPECT_EQ(c.run.seed, 7);
  EXPECT_EQ(c.model.preset, "tiny");
  EXPECT_EQ(c.model.n_layer, 3);
  EXPECT_FALSE(c.model.n_head.has_value());
  EXPECT_EQ(c.model.n_embd, 64);
  EXPECT_EQ(c.model.device, DeviceType::kCuda);
  EXPECT_TRUE(c.model.recompute);
  EXPECT_EQ(c.model.matmul_precision, MatmulPrecision::kTf32);
  EXPECT_EQ(c.model.attention, ModelSection::Attention::kFlash);
  EXPECT_EQ(c.parallel.tp, 2);
  EXPECT_TRUE(c.parallel.zero);
  EXPECT_EQ(c.data.dir, "data/x");
  EXPECT_EQ(c.data.seq_len, 32);
  EXPECT_EQ(c.data.batch_size, 16);
  EXPECT_EQ(c.data.micro_batch_size, 2);
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.data.prefetch, 2);
  EXPECT_EQ(c.data.watch, "incoming/");
  EXPECT_EQ(c.data.replay_ratio, 0.25);
  EXPECT_TRUE(c.data.replay_when_idle);
  EXPECT_EQ(c.optim.lr, 1e-3);
  EXPECT_EQ(c.optim.min_lr, 1e-4);
  EXPECT_EQ(c.optim.beta1, 0.8);
  EXPECT_EQ(c.optim.beta2, 0.99);
  EXPECT_EQ(c.optim.eps, 1e-6);
  EXPECT_EQ(c.optim.weight_decay, 0);  // an integer where a number is expected
  EXPECT_EQ(c.optim.max_grad_norm, 0.5);
  EXPECT_EQ(c.optim.warmup_steps, 10);
  EXPECT_EQ(c.optim.decay, LrDecay::kLinear);
  EXPECT_EQ(c.train.max_steps, 50);
  EXPECT_EQ(c.train.max_tokens, 100000);
  EXPECT_EQ(c.train.max_minutes, 2.5);
  EXPECT_EQ(c.train.eval_every, 10);
  EXPECT_EQ(c.train.eval_batches, 4);
  EXPECT_EQ(c.train.max_bad_steps, 2);
  EXPECT_EQ(c.checkpoint.every_steps, 25);
  EXPECT_EQ(c.checkpoint.every_minutes, 5);
  EXPECT_EQ(c.checkpoint.keep_last, 2);
  EXPECT_EQ(c.checkpoint.keep_every, 100);
  EXPECT_FALSE(c.checkpoint.resume);
  EXPECT_FALSE(c.checkpoint.verify);
  EXPECT_EQ(c.logging.every_steps, 5);
  EXPECT_EQ(c.logging.peak_tflops, 312);
}

TEST(RunConfig, DottedKeysAndInlineTablesAreTheSameKeys) {
  ASSERT_OK_AND_ASSIGN(RunConfig a,
                       ParseRunConfig("optim.lr = 3e-4\ntrain = {max_steps = 9}\n", "run.toml"));
  EXPECT_EQ(a.optim.lr, 3e-4);
  EXPECT_EQ(a.train.max_steps, 9);
}

TEST(RunConfig, OverridesTakeTomlValuesAndBareStrings) {
  ASSERT_OK_AND_ASSIGN(
      RunConfig c,
      ParseRunConfig("[optim]\nlr = 1e-3\n[data]\ndir = \"from/file\"\n[train]\nmax_steps = 5\n",
                     "run.toml",
                     {"optim.lr=3e-4", "model.preset=tiny", "model.block_size=64",
                      "data.seq_len = 64", "data.dir=\"quoted dir\"", "run.dir=runs/bare",
                      "train.max_minutes=1", "data.shuffle=false", "model.device=cuda",
                      "optim.decay='linear'", "model.n_layer=3", "run.seed=0"}));
  EXPECT_EQ(c.optim.lr, 3e-4);  // the override wins over the file
  EXPECT_EQ(c.model.preset, "tiny");
  EXPECT_EQ(c.data.seq_len, 64);
  EXPECT_EQ(c.data.dir, "quoted dir");
  EXPECT_EQ(c.run.dir, "runs/bare");
  EXPECT_EQ(c.train.max_minutes, 1.0);
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.model.device, DeviceType::kCuda);
  EXPECT_EQ(c.optim.decay, LrDecay::kLinear);
  EXPECT_EQ(c.model.n_layer, 3);
  EXPECT_EQ(c.run.seed, 0);
}

TEST(RunConfig, StringKeysTakeTheTextEvenWhenItLooksLikeAnotherType) {
  RunConfig c;
  ASSERT_OK(ApplyOverride("run.dir=2024", c));
  EXPECT_EQ(c.run.dir, "2024");
  ASSERT_OK(ApplyOverride("data.dir=true", c));
  EXPECT_EQ(c.data.dir, "true");
  ASSERT_OK(ApplyOverride("data.watch=in", c));
  ASSERT_OK(ApplyOverride("data.watch=", c));  // back to off
  EXPECT_EQ(c.data.watch, "");
  ASSERT_OK(ApplyOverride("data.dir=a=b", c));  // only the first '=' splits
  EXPECT_EQ(c.data.dir, "a=b");
}

TEST(RunConfig, BadOverridesNameTheAssignmentAndTheKey) {
  RunConfig c;
  absl::Status s = ApplyOverride("optim.lrr=3e-4", c);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("--set optim.lrr=3e-4"), HasSubstr("unknown key \"optim.lrr\""),
                    HasSubstr("did you mean \"optim.lr\"?")));
  s = ApplyOverride("optim.lr=fast", c);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("optim.lr: expected a number > 0.0"),
                                 HasSubstr("got the string \"fast\"")));
  s = ApplyOverride("optim.lr", c);
  EXPECT_THAT(s.message(), HasSubstr("expected section.key=value"));
  s = ApplyOverride("lr=1", c);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("unknown key \"lr\""), HasSubstr("\"optim.lr\"")));
  s = ApplyOverride("optimizer.lr=1", c);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("unknown key \"optimizer.lr\""),
                                 HasSubstr("did you mean \"optim.lr\"?")));
  s = ApplyOverride("optim=1", c);
  EXPECT_THAT(s.message(), HasSubstr("[optim] is a section"));
  s = ApplyOverride("optim.lr=1\ntrain.max_steps=5", c);
  EXPECT_THAT(s.message(), HasSubstr("on one line"));
  s = ApplyOverride("train.max_steps=-5", c);
  EXPECT_THAT(s.message(), HasSubstr("train.max_steps = -5 is out of range"));
  s = ApplyOverride("optim.decay=cosin", c);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("optim.decay = \"cosin\" is not allowed"),
                                 HasSubstr("did you mean \"cosine\"?")));
  s = ApplyOverride("data.dir=\xff", c);
  EXPECT_THAT(s.message(), HasSubstr("not valid UTF-8"));
  EXPECT_EQ(c, RunConfig{});  // nothing was set by a failed override
}

TEST(RunConfig, RoundTripsThroughToToml) {
  for (const RunConfig& config : {EveryKeySet(), [] {
                                    RunConfig c;
                                    c.train.max_minutes = 0.1;
                                    return c;
                                  }()}) {
    ASSERT_OK(config.Validate());
    const std::string text = ToToml(config);
    ASSERT_OK_AND_ASSIGN(RunConfig back, ParseRunConfig(text, "config.toml"));
    EXPECT_EQ(back, config) << text;
    EXPECT_EQ(ToToml(back), text);
  }
}

TEST(RunConfig, ToTomlWritesEveryKeyAndThePresetsValuesOfUnsetOverrides) {
  RunConfig config;
  config.model.preset = "gpt2";
  config.model.n_head = 16;
  config.optim.lr = 1;
  const std::string text = ToToml(config);
  EXPECT_THAT(text, HasSubstr("[run]\ndir = \"run\"\nseed = 1337\n"));
  EXPECT_THAT(text, HasSubstr("# n_layer = 12  (unset: the preset's)\nn_head = 16\n"));
  EXPECT_THAT(text, HasSubstr("lr = 1.0\n"));  // a TOML float, not the integer 1
  EXPECT_THAT(text, HasSubstr("eps = 1e-08\n"));
  EXPECT_THAT(text, HasSubstr("decay = \"cosine\"\n"));
  EXPECT_THAT(text, HasSubstr("watch = \"\"\n"));
  for (const char* section : {"[run]", "[model]", "[parallel]", "[data]", "[optim]", "[train]",
                              "[checkpoint]", "[logging]"}) {
    EXPECT_THAT(text, HasSubstr(section));
  }
}

TEST(RunConfig, UnknownKeyNamesTheFilePositionAndTheNearestKey) {
  const std::string e = ErrorOf("[train]\nmax_steps = 10\n[optim]\nlrr = 3e-4\n");
  EXPECT_EQ(e, "run.toml:4:1: unknown key \"optim.lrr\" (did you mean \"optim.lr\"?)");
}

// A configuration of an earlier version (a run directory's run.toml) says what replaced its key.
TEST(RunConfig, ReplacedKeyNamesItsReplacement) {
  EXPECT_EQ(ErrorOf("[model]\ntf32 = true\n"),
            "run.toml:2:1: unknown key \"model.tf32\" (model.matmul_precision = \"tf32\" "
            "replaced model.tf32 = true (and \"f32\" false))");
}

TEST(RunConfig, KeyInTheWrongSectionSuggestsItsSection) {
  EXPECT_THAT(ErrorOf("[optim]\nmax_steps = 10\n"),
              HasSubstr("run.toml:2:1: unknown key \"optim.max_steps\" (did you mean "
                        "\"train.max_steps\"?)"));
  EXPECT_THAT(ErrorOf("lr = 1\n"), AllOf(HasSubstr("run.toml:1:1: unknown key \"lr\""),
                                         HasSubstr("did you mean \"optim.lr\"?")));
}

TEST(RunConfig, FarOffKeyGetsNoSuggestion) {
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\nfrobnicate = 1\n"),
              AllOf(HasSubstr("unknown key \"train.frobnicate\""), Not(HasSubstr("did you mean"))));
}

TEST(RunConfig, UnknownSectionNamesTheNearestSection) {
  EXPECT_THAT(ErrorOf("[optimizer]\nlr = 1\n"),
              HasSubstr("run.toml:1:2: unknown section [optimizer] (did you mean [optim]?)"));
  EXPECT_THAT(ErrorOf("[zzz]\n"),
              HasSubstr("unknown section [zzz] (the sections are [run], [model], [parallel], "
                        "[data], [optim], [train], [checkpoint], [logging])"));
  EXPECT_THAT(ErrorOf("optim = 3\n"),
              HasSubstr("[optim] must be a table of keys, got the integer 3"));
  EXPECT_THAT(ErrorOf("[optim.inner]\nx = 1\n"), HasSubstr("unknown key \"optim.inner\""));
}

TEST(RunConfig, WrongTypesNameTheKeyTheValueAndWhatIsAllowed) {
  EXPECT_EQ(ErrorOf("[optim]\nlr = \"fast\"\n"),
            "run.toml:2:6: optim.lr: expected a number > 0.0, got the string \"fast\"");
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1.5\n"),
              HasSubstr("train.max_steps: expected an integer >= 0, got the float 1.5"));
  EXPECT_THAT(ErrorOf("[data]\nshuffle = 1\n"),
              HasSubstr("data.shuffle: expected true or false, got the integer 1"));
  EXPECT_THAT(ErrorOf("[run]\ndir = [\"a\"]\n"),
              HasSubstr("run.dir: expected a non-empty string, got an array"));
  EXPECT_THAT(ErrorOf("[model]\npreset = 2\n"),
              HasSubstr("model.preset: expected one of \"tiny\", \"gpt2\", \"gpt2-medium\", "
                        "\"gpt2-large\", \"gpt2-xl\", got the integer 2"));
}

TEST(RunConfig, OutOfRangeValuesNameTheKeyTheValueAndTheRange) {
  EXPECT_EQ(ErrorOf("[train]\nmax_steps = 1\n[optim]\nbeta1 = 1.5\n"),
            "run.toml:4:9: optim.beta1 = 1.5 is out of range: expected a number in [0.0, 1.0)");
  EXPECT_THAT(ErrorOf("[optim]\nbeta2 = 1\n"), HasSubstr("optim.beta2 = 1 is out of range"));
  EXPECT_THAT(ErrorOf("[optim]\nlr = 0\n"),
              HasSubstr("optim.lr = 0 is out of range: expected a number > 0.0"));
  EXPECT_THAT(ErrorOf("[optim]\nlr = nan\n"), HasSubstr("optim.lr = nan is out of range"));
  EXPECT_THAT(ErrorOf("[optim]\nweight_decay = inf\n"),
              HasSubstr("optim.weight_decay = inf is out of range"));
  EXPECT_THAT(ErrorOf("[parallel]\ntp = 0\n"),
              HasSubstr("parallel.tp = 0 is out of range: expected an integer in [1, 65536]"));
  EXPECT_THAT(ErrorOf("[data]\nprefetch = 64\n"),
              HasSubstr("data.prefetch = 64 is out of range: expected an integer in [1, 63]"));
  EXPECT_THAT(ErrorOf("[run]\ndir = \"\"\n"), HasSubstr("run.dir = \"\" is out of range"));
  EXPECT_THAT(ErrorOf("[model]\npreset = \"gpt3\"\n"),
              AllOf(HasSubstr("model.preset = \"gpt3\" is not allowed"),
                    HasSubstr("did you mean \"gpt2\"?")));
  EXPECT_THAT(ErrorOf("[model]\nattention = \"fused\"\n"),
              HasSubstr("expected one of \"unfused\", \"flash\""));
}

TEST(RunConfig, EveryProblemOfAFileIsListedInItsOrder) {
  const std::string e = ErrorOf("[train]\nmax_steps = -1\n[data]\nseq_len = 0\n[optim]\nlrr = 1\n");
  EXPECT_EQ(e,
            "run.toml:2:13: train.max_steps = -1 is out of range: expected an integer >= 0\n"
            "run.toml:4:11: data.seq_len = 0 is out of range: expected an integer in [1, "
            "16777216]\n"
            "run.toml:6:1: unknown key \"optim.lrr\" (did you mean \"optim.lr\"?)");
}

TEST(RunConfig, SyntaxErrorNamesLineAndColumn) {
  const std::string e = ErrorOf("[train]\nmax_steps = 10\n[optim]\nlr = = 3\n");
  EXPECT_THAT(e, HasSubstr("run.toml:4:6: TOML syntax error: "));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\nmax_steps = 2\n"),
              HasSubstr("run.toml:3:"));  // a key defined twice
}

TEST(RunConfig, CrossFieldRulesNameTheKeys) {
  EXPECT_EQ(ErrorOf(""),
            "run.toml: no stop condition: set train.max_steps, train.max_tokens or "
            "train.max_minutes (or data.watch, to run until a stop signal)");
  // A run that watches for data may go on until a stop signal.
  EXPECT_OK(ParseRunConfig("[data]\nwatch = \"incoming\"\n", "run.toml"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\neval_every = 0\npublish_dir = \"pub\"\n"),
              HasSubstr("train.publish_dir needs train.eval_every > 0"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 100\n[optim]\nwarmup_steps = 200\n"),
              HasSubstr("optim.warmup_steps = 200 exceeds the 100 steps of the run "
                        "(train.max_steps)"));
  EXPECT_THAT(ErrorOf("[train]\nmax_tokens = 16384\n[data]\nseq_len = 1024\nbatch_size = 8\n"
                      "[optim]\nwarmup_steps = 3\n"),
              HasSubstr("optim.warmup_steps = 3 exceeds the 2 steps of the run (train.max_tokens = "
                        "16384 at 8192 tokens per step)"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[data]\nbatch_size = 10\nmicro_batch_size = 4\n"),
              HasSubstr("data.micro_batch_size = 4 does not divide data.batch_size = 10"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[data]\nseq_len = 2048\n"),
              HasSubstr("data.seq_len = 2048 exceeds model.block_size = 1024 (preset \"gpt2\")"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[model]\nn_embd = 100\n"),
              HasSubstr("model.n_head = 12 (preset \"gpt2\") does not divide model.n_embd = 100"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[parallel]\ntp = 5\n"),
              HasSubstr("parallel.tp = 5 does not divide model.n_head = 12"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[model]\nn_head = 3\nn_embd = 96\n"
                      "vocab_size = 100\n[parallel]\ntp = 3\n"),
              HasSubstr("parallel.tp = 3 does not divide the padded vocabulary, 128"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[optim]\nlr = 1e-4\nmin_lr = 1e-3\n"),
              HasSubstr("optim.min_lr = 0.001 exceeds optim.lr = 1e-04"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[data]\nreplay_ratio = 0.5\n"),
              HasSubstr("data.replay_ratio = 0.5 needs data.watch"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[data]\nreplay_when_idle = true\n"),
              HasSubstr("data.replay_when_idle = true needs data.watch"));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[model]\nattention = \"flash\"\n"),
              HasSubstr("model.attention = \"flash\" needs model.device = \"cuda\""));
  EXPECT_THAT(ErrorOf("[train]\nmax_steps = 1\n[model]\nattention = \"flash\"\ndevice = \"cuda\"\n"
                      "n_head = 4\n"),
              HasSubstr("model.attention = \"flash\" needs a head size (n_embd / n_head) of at "
                        "most 128, got 192"));
  // Every problem is listed, each naming the file.
  EXPECT_EQ(ErrorOf("[data]\nreplay_ratio = 0.5\n[optim]\nlr = 1e-4\nmin_lr = 1e-3\n"),
            "run.toml: data.replay_ratio = 0.5 needs data.watch (replay mixes the base data "
            "into the watched data)\n"
            "run.toml: optim.min_lr = 0.001 exceeds optim.lr = 1e-04\n"
            "run.toml: no stop condition: set train.max_steps, train.max_tokens or "
            "train.max_minutes (or data.watch, to run until a stop signal)");
  // An override can repair what the file got wrong: the rules apply after the overrides.
  EXPECT_OK(ParseRunConfig("[optim]\nwarmup_steps = 200\n", "run.toml", {"train.max_steps=1000"}));
}

TEST(RunConfig, ScheduleSpansTheFirstLimit) {
  RunConfig c;
  c.data.batch_size = 4;
  c.data.seq_len = 100;  // 400 tokens per step
  c.train.max_minutes = 5;
  EXPECT_EQ(c.ScheduleSteps(), 0);
  EXPECT_EQ(ToLrSchedule(c).total_steps, std::numeric_limits<int64_t>::max());
  c.train.max_tokens = 1001;
  EXPECT_EQ(c.ScheduleSteps(), 3);  // rounded up
  c.train.max_steps = 2;
  EXPECT_EQ(c.ScheduleSteps(), 2);
  c.train.max_steps = 50;
  EXPECT_EQ(c.ScheduleSteps(), 3);
  c.optim = {.lr = 1e-3, .min_lr = 1e-5, .warmup_steps = 2, .decay = LrDecay::kLinear};
  const LrSchedule schedule = ToLrSchedule(c);
  EXPECT_EQ(schedule.max_lr, 1e-3);
  EXPECT_EQ(schedule.min_lr, 1e-5);
  EXPECT_EQ(schedule.warmup_steps, 2);
  EXPECT_EQ(schedule.total_steps, 3);
  EXPECT_EQ(schedule.decay, LrDecay::kLinear);
  EXPECT_OK(schedule.Validate());
}

TEST(RunConfig, ResolvesTheModelFromThePresetAndOverrides) {
  RunConfig c;
  c.model.preset = "tiny";
  c.model.n_layer = 4;
  c.model.vocab_size = 50257;
  ASSERT_OK_AND_ASSIGN(GptConfig model, ResolveGptConfig(c));
  EXPECT_EQ(model.n_layer, 4);
  EXPECT_EQ(model.vocab_size, 50257);
  EXPECT_EQ(model.n_head, 4);  // the preset's
  EXPECT_EQ(model.n_embd, 32);
  EXPECT_EQ(model.block_size, 64);
}

TEST(RunConfig, LayoutSplitsTheBatchOverRanksAndAccumulation) {
  RunConfig c;
  c.parallel.tp = 2;
  c.data.batch_size = 48;
  c.data.micro_batch_size = 4;
  ASSERT_OK_AND_ASSIGN(RunLayout layout, ResolveLayout(c, 6));
  EXPECT_EQ(layout.tp, 2);
  EXPECT_EQ(layout.dp, 3);
  EXPECT_EQ(layout.micro_batch_size, 4);
  EXPECT_EQ(layout.accumulation_steps, 4);  // 48 / (3 * 4)
  c.data.micro_batch_size = 0;
  ASSERT_OK_AND_ASSIGN(layout, ResolveLayout(c, 6));
  EXPECT_EQ(layout.micro_batch_size, 16);
  EXPECT_EQ(layout.accumulation_steps, 1);

  EXPECT_THAT(ResolveLayout(c, 5).status().message(),
              HasSubstr("parallel.tp = 2 does not divide the 5 ranks"));
  c.data.batch_size = 8;
  EXPECT_THAT(ResolveLayout(c, 6).status().message(),
              HasSubstr("data.batch_size = 8 is not a multiple of the 3 data-parallel ranks"));
  c.data.batch_size = 12;
  c.data.micro_batch_size = 4;  // divides the batch (Validate), but not over 2 ranks
  EXPECT_THAT(ResolveLayout(c, 4).status().message(),
              HasSubstr("data.batch_size = 12 is not a multiple of 2 data-parallel ranks (4 "
                        "ranks / parallel.tp = 2) x data.micro_batch_size = 4"));
}

TEST(RunConfig, ConvertsToTheOptimizerAndRetentionOptions) {
  RunConfig c = EveryKeySet();
  const AdamWOptions adamw = ToAdamWOptions(c);
  EXPECT_EQ(adamw.beta1, 0.85);
  EXPECT_EQ(adamw.beta2, 0.999);
  EXPECT_EQ(adamw.eps, 1e-10);
  EXPECT_EQ(adamw.weight_decay, 0.01);
  const RetentionPolicy retention = ToRetentionPolicy(c);
  EXPECT_EQ(retention.keep_last, 1);
  EXPECT_EQ(retention.keep_every, 500);
}

TEST(RunConfig, LoadsAFileAndNamesItInErrors) {
  const std::string path = ::testing::TempDir() + "/run_config_test.toml";
  auto write = [&](absl::string_view text) { std::ofstream(path) << text; };
  write("[train]\nmax_steps = 10\n[optim]\nlr = 0.002\n");
  ASSERT_OK_AND_ASSIGN(RunConfig c, LoadRunConfig(path, {"train.max_steps=20"}));
  EXPECT_EQ(c.optim.lr, 0.002);
  EXPECT_EQ(c.train.max_steps, 20);
  write("[train]\nmax_steps = 10\n[optim]\nlrr = 1\n");
  EXPECT_THAT(LoadRunConfig(path, {}).status().message(),
              HasSubstr(path + ":4:1: unknown key \"optim.lrr\""));
  EXPECT_EQ(LoadRunConfig(path + ".missing", {}).status().code(), absl::StatusCode::kNotFound);
}

TEST(RunConfig, EveryExampleConfigIsValid) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(USINE_EXAMPLES_GPT_DIR)) {
    if (entry.path().extension() != ".toml") continue;
    ++examples;
    ASSERT_OK_AND_ASSIGN(RunConfig config, LoadRunConfig(entry.path().string(), {}));
    ASSERT_OK_AND_ASSIGN(RunConfig back, ParseRunConfig(ToToml(config), "effective.toml"));
    EXPECT_EQ(back, config) << entry.path();
  }
  EXPECT_GE(examples, 2);
}

TEST(RunConfig, BrownTinyFitsTwoCpuRanks) {
  ASSERT_OK_AND_ASSIGN(RunConfig c,
                       LoadRunConfig(std::string(USINE_EXAMPLES_GPT_DIR) + "/brown-tiny.toml", {}));
  EXPECT_EQ(c.model.device, DeviceType::kCpu);
  ASSERT_OK_AND_ASSIGN(RunLayout two, ResolveLayout(c, 2));
  EXPECT_EQ(two.accumulation_steps, 1);
  ASSERT_OK_AND_ASSIGN(RunLayout one, ResolveLayout(c, 1));
  EXPECT_EQ(one.accumulation_steps, 2);
  ASSERT_OK_AND_ASSIGN(GptConfig model, ResolveGptConfig(c));
  EXPECT_EQ(model.vocab_size, 50257);  // the data are GPT-2 tokens
}

}  // namespace
}  // namespace usine
