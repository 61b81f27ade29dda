// The per-step record: rates from raw totals, DESIGN.md's line (units, "n/a") and the JSON
// object of metrics.jsonl, parsed back.
#include "runtime/train/step_metrics.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

#include "nlohmann/json.hpp"

namespace usine {
namespace {

// DESIGN.md's example step, every value present.
StepMetrics DesignExample() {
  StepMetrics m;
  m.step = 120;
  m.total_steps = 5000;
  m.loss = 3.4121;
  m.lr = 6e-4;
  m.grad_norm = 0.75;
  m.tokens = 524288;
  m.skipped_steps = 1;
  m.times.step = absl::Milliseconds(2000);
  m.times.data_wait = absl::Milliseconds(4);  // 0.2%
  m.times.forward = absl::Milliseconds(600);
  m.times.backward = absl::Milliseconds(1200);
  m.times.exposed_communication = absl::Milliseconds(60);  // 3%
  m.times.optimizer = absl::Milliseconds(100);
  m.times.checkpoint_stall = absl::Milliseconds(30);
  m.rates.tokens_per_second = 182000;
  m.rates.mfu = 0.41;
  m.rates.watts = 512;
  m.rates.gpu_watts = 448;
  m.rates.cpu_watts = 64;
  m.rates.tokens_per_second_per_watt = 356;
  m.rates.joules_per_token = 1.0 / 356;
  m.eta = absl::Minutes(12);
  return m;
}

TEST(StepLine, IsDesignsExample) {
  EXPECT_EQ(FormatStepLine(DesignExample()),
            "step 120/5000 | loss 3.412 | lr 6.0e-04 | 182k tok/s | MFU 41% | 512 W | "
            "356 tok/s/W | data 0.2% comm 3% | eta 12m");
}

TEST(StepLine, ShowsNotAvailableForEveryMissingValueAndNoTotalWithoutOne) {
  StepMetrics m = DesignExample();
  m.total_steps = 0;
  m.rates.tokens_per_second.reset();
  m.rates.mfu.reset();
  m.rates.watts.reset();
  m.rates.tokens_per_second_per_watt.reset();
  m.eta.reset();
  m.times.step = absl::ZeroDuration();
  EXPECT_EQ(FormatStepLine(m),
            "step 120 | loss 3.412 | lr 6.0e-04 | n/a tok/s | MFU n/a | n/a W | n/a tok/s/W | "
            "data n/a comm n/a | eta n/a");
}

TEST(StepLine, ScalesThroughputPowerAndEta) {
  StepMetrics m = DesignExample();
  const struct {
    double tokens_per_second;
    const char* shown;
  } rates[] = {{950, "950 tok/s"},      {1234, "1.23k tok/s"},  {18240, "18.2k tok/s"},
               {999700, "1.00M tok/s"}, {2.5e6, "2.50M tok/s"}, {3.1e9, "3.10G tok/s"}};
  for (const auto& r : rates) {
    m.rates.tokens_per_second = r.tokens_per_second;
    EXPECT_NE(FormatStepLine(m).find(std::string("| ") + r.shown + " |"), std::string::npos)
        << FormatStepLine(m);
  }
  const struct {
    absl::Duration eta;
    const char* shown;
  } etas[] = {{absl::Seconds(42), "eta 42s"},
              {absl::Seconds(600), "eta 10m"},
              {absl::Hours(5.2), "eta 5.2h"},
              {absl::Hours(24 * 3.1), "eta 3.1d"}};
  for (const auto& e : etas) {
    m.eta = e.eta;
    EXPECT_NE(FormatStepLine(m).find(e.shown), std::string::npos) << FormatStepLine(m);
  }
  m.rates.watts = 44800;
  m.rates.mfu = 0.042;
  m.rates.tokens_per_second_per_watt = 4.56;
  const std::string line = FormatStepLine(m);
  EXPECT_NE(line.find("| 44.8 kW |"), std::string::npos) << line;
  EXPECT_NE(line.find("| MFU 4% |"), std::string::npos) << line;
  EXPECT_NE(line.find("| 4.56 tok/s/W |"), std::string::npos) << line;
}

TEST(StepLine, NamesASkippedUpdate) {
  StepMetrics m = DesignExample();
  m.skipped = true;
  m.skipped_steps = 3;
  const std::string line = FormatStepLine(m);
  EXPECT_EQ(line.substr(line.rfind(" | ")), " | skipped (3 so far)");
}

TEST(StepJson, ParsesBackWithEveryField) {
  const nlohmann::json j = nlohmann::json::parse(StepMetricsJson(DesignExample()));
  EXPECT_EQ(j["kind"], "train");
  EXPECT_EQ(j["step"], 120);
  EXPECT_EQ(j["total_steps"], 5000);
  EXPECT_DOUBLE_EQ(j["loss"].get<double>(), 3.4121);
  EXPECT_DOUBLE_EQ(j["lr"].get<double>(), 6e-4);
  EXPECT_DOUBLE_EQ(j["grad_norm"].get<double>(), 0.75);
  EXPECT_EQ(j["tokens"], 524288);
  EXPECT_EQ(j["skipped"], false);
  EXPECT_EQ(j["skipped_steps"], 1);
  EXPECT_DOUBLE_EQ(j["step_s"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["data_wait_s"].get<double>(), 0.004);
  EXPECT_DOUBLE_EQ(j["forward_s"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(j["backward_s"].get<double>(), 1.2);
  EXPECT_DOUBLE_EQ(j["exposed_comm_s"].get<double>(), 0.06);
  EXPECT_DOUBLE_EQ(j["optimizer_s"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["checkpoint_stall_s"].get<double>(), 0.03);
  EXPECT_DOUBLE_EQ(j["tokens_per_s"].get<double>(), 182000);
  EXPECT_DOUBLE_EQ(j["mfu"].get<double>(), 0.41);
  EXPECT_DOUBLE_EQ(j["watts"].get<double>(), 512);
  EXPECT_DOUBLE_EQ(j["gpu_watts"].get<double>(), 448);
  EXPECT_DOUBLE_EQ(j["cpu_watts"].get<double>(), 64);
  EXPECT_DOUBLE_EQ(j["tokens_per_s_per_watt"].get<double>(), 356);
  EXPECT_DOUBLE_EQ(j["joules_per_token"].get<double>(), 1.0 / 356);
  EXPECT_DOUBLE_EQ(j["eta_s"].get<double>(), 720);
  EXPECT_EQ(j.size(), 24u);  // No field unchecked.
}

TEST(StepJson, MissingAndNonFiniteValuesAreNullNotZero) {
  StepMetrics m = DesignExample();
  m.total_steps = 0;
  m.loss = std::nan("");
  m.grad_norm.reset();
  m.rates = StepRates{};
  m.eta.reset();
  const std::string text = StepMetricsJson(m);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(text);
  for (const char* key :
       {"total_steps", "loss", "grad_norm", "tokens_per_s", "mfu", "watts", "gpu_watts",
        "cpu_watts", "tokens_per_s_per_watt", "joules_per_token", "eta_s"}) {
    EXPECT_TRUE(j.at(key).is_null()) << key << ": " << j.at(key);
  }
}

TEST(StepRates, FollowFromTokensTimeFlopsAndEnergy) {
  // 8192 tokens in 0.5 s at 1e9 FLOPs each against a 4e13 peak; 300 J of GPU, 50 J of CPU.
  const StepRates r = ComputeStepRates(8192, absl::Milliseconds(500), 1e9, 4e13,
                                       EnergyReading{.gpu_joules = 300, .cpu_joules = 50});
  EXPECT_DOUBLE_EQ(*r.tokens_per_second, 16384);
  EXPECT_DOUBLE_EQ(*r.mfu, 16384 * 1e9 / 4e13);
  EXPECT_DOUBLE_EQ(*r.watts, 700);
  EXPECT_DOUBLE_EQ(*r.gpu_watts, 600);
  EXPECT_DOUBLE_EQ(*r.cpu_watts, 100);
  EXPECT_DOUBLE_EQ(*r.tokens_per_second_per_watt, 8192.0 / 350);
  EXPECT_DOUBLE_EQ(*r.joules_per_token, 350.0 / 8192);
}

TEST(StepRates, AreMissingWhereTheirInputsAre) {
  const StepRates gpu_only =
      ComputeStepRates(1000, absl::Seconds(2), 1e6, std::nullopt, EnergyReading{.gpu_joules = 100});
  EXPECT_DOUBLE_EQ(*gpu_only.tokens_per_second, 500);
  EXPECT_FALSE(gpu_only.mfu.has_value());
  EXPECT_DOUBLE_EQ(*gpu_only.watts, 50);  // The sources available: the GPU.
  EXPECT_FALSE(gpu_only.cpu_watts.has_value());
  EXPECT_DOUBLE_EQ(*gpu_only.tokens_per_second_per_watt, 10);

  const StepRates none = ComputeStepRates(1000, absl::ZeroDuration(), 1e6, 1e12, EnergyReading{});
  EXPECT_FALSE(none.tokens_per_second.has_value());
  EXPECT_FALSE(none.mfu.has_value());
  EXPECT_FALSE(none.watts.has_value());
  EXPECT_FALSE(none.tokens_per_second_per_watt.has_value());
  EXPECT_FALSE(none.joules_per_token.has_value());
}

TEST(Eval, LineAndJsonCarryLossAndPerplexity) {
  const EvalMetrics m{.step = 120, .val_loss = 3.301, .tokens = 1048576};
  EXPECT_EQ(FormatEvalLine(m), "eval step 120 | val loss 3.301 | ppl 27.14 | 1.05M tokens");
  const nlohmann::json j = nlohmann::json::parse(EvalMetricsJson(m));
  EXPECT_EQ(j["kind"], "eval");
  EXPECT_EQ(j["step"], 120);
  EXPECT_DOUBLE_EQ(j["val_loss"].get<double>(), 3.301);
  EXPECT_DOUBLE_EQ(j["perplexity"].get<double>(), std::exp(3.301));
  EXPECT_EQ(j["tokens"], 1048576);
}

}  // namespace
}  // namespace usine
