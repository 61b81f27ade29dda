#include "runtime/train/step_metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include <nlohmann/json.hpp>

namespace usine {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kNotAvailable[] = "n/a";

std::optional<double> Divide(std::optional<double> a, std::optional<double> b) {
  if (!a.has_value() || !b.has_value() || !(*b > 0)) return std::nullopt;
  return *a / *b;
}

// Three significant digits, with k, M or G for thousands, millions, billions: 950, 18.2k, 182k,
// 1.05M.
std::string ThreeDigits(double x) {
  constexpr struct {
    double scale;
    const char* suffix;
  } kUnits[] = {{1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}};
  for (const auto& unit : kUnits) {
    // Rounding to three digits may carry into the next unit (999.7 -> "1.00k").
    if (std::fabs(x) >= unit.scale * 0.9995 || unit.scale == 1) {
      const double v = x / unit.scale;
      const double magnitude = std::fabs(v);
      const int decimals = magnitude < 9.995 ? 2 : magnitude < 99.95 ? 1 : 0;
      return absl::StrFormat("%.*f%s", decimals, v, unit.suffix);
    }
  }
  return "";  // Unreachable: the last unit always matches.
}

// "0.2%" below one percent, "41%" above.
std::string Percent(double fraction) {
  const double p = 100 * fraction;
  return std::fabs(p) < 0.95 ? absl::StrFormat("%.1f%%", p) : absl::StrFormat("%.0f%%", p);
}

std::string Watts(double watts) {
  return watts < 9999.5 ? absl::StrFormat("%.0f W", watts)
                        : absl::StrFormat("%.1f kW", watts / 1e3);
}

// "45s", "12m", "5.2h", "3.1d".
std::string Eta(absl::Duration eta) {
  const double s = absl::ToDoubleSeconds(eta);
  if (s < 89.5) return absl::StrFormat("%.0fs", s);
  if (s < 89.5 * 60) return absl::StrFormat("%.0fm", s / 60);
  if (s < 47.95 * 3600) return absl::StrFormat("%.1fh", s / 3600);
  return absl::StrFormat("%.1fd", s / 86400);
}

template <typename T, typename Format>
std::string OrNotAvailable(const std::optional<T>& value, Format format) {
  return value.has_value() ? format(*value) : kNotAvailable;
}

// null for a missing value.
Json Optional(const std::optional<double>& value) {
  return value.has_value() ? Json(*value) : Json(nullptr);
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

StepRates ComputeStepRates(int64_t tokens, absl::Duration elapsed, double flops_per_token,
                           std::optional<double> peak_flops_per_second,
                           const EnergyReading& energy) {
  const std::optional<double> seconds = absl::ToDoubleSeconds(elapsed);
  const std::optional<double> token_count = static_cast<double>(tokens);
  StepRates rates;
  rates.tokens_per_second = Divide(token_count, seconds);
  if (rates.tokens_per_second.has_value()) {
    rates.mfu = Divide(*rates.tokens_per_second * flops_per_token, peak_flops_per_second);
  }
  const std::optional<double> joules = energy.Total();
  rates.watts = Divide(joules, seconds);
  rates.gpu_watts = Divide(energy.gpu_joules, seconds);
  rates.cpu_watts = Divide(energy.cpu_joules, seconds);
  rates.tokens_per_second_per_watt = Divide(token_count, joules);
  rates.joules_per_token = Divide(joules, token_count);
  return rates;
}

std::string FormatStepLine(const StepMetrics& m) {
  const double step_s = Seconds(m.times.step);
  const auto share = [&](absl::Duration part) {
    return step_s > 0 ? Percent(Seconds(part) / step_s) : kNotAvailable;
  };
  std::string line = absl::StrCat("step ", m.step);
  if (m.total_steps > 0) absl::StrAppend(&line, "/", m.total_steps);
  absl::StrAppend(&line, " | loss ", absl::StrFormat("%.3f", m.loss), " | lr ",
                  absl::StrFormat("%.1e", m.lr), " | ",
                  OrNotAvailable(m.rates.tokens_per_second, ThreeDigits), " tok/s", " | MFU ",
                  OrNotAvailable(m.rates.mfu, Percent), " | ", OrNotAvailable(m.rates.watts, Watts),
                  m.rates.watts.has_value() ? "" : " W", " | ",
                  OrNotAvailable(m.rates.tokens_per_second_per_watt, ThreeDigits), " tok/s/W",
                  " | data ", share(m.times.data_wait), " comm ",
                  share(m.times.exposed_communication), " | eta ", OrNotAvailable(m.eta, Eta));
  if (m.skipped) absl::StrAppend(&line, " | skipped (", m.skipped_steps, " so far)");
  return line;
}

std::string StepMetricsJson(const StepMetrics& m) {
  Json json;
  json["kind"] = "train";
  json["step"] = m.step;
  json["total_steps"] = m.total_steps > 0 ? Json(m.total_steps) : Json(nullptr);
  json["loss"] = m.loss;
  json["lr"] = m.lr;
  json["grad_norm"] = Optional(m.grad_norm);
  json["tokens"] = m.tokens;
  json["skipped"] = m.skipped;
  json["skipped_steps"] = m.skipped_steps;
  json["step_s"] = Seconds(m.times.step);
  json["data_wait_s"] = Seconds(m.times.data_wait);
  json["forward_s"] = Seconds(m.times.forward);
  json["backward_s"] = Seconds(m.times.backward);
  json["exposed_comm_s"] = Seconds(m.times.exposed_communication);
  json["optimizer_s"] = Seconds(m.times.optimizer);
  json["checkpoint_stall_s"] = Seconds(m.times.checkpoint_stall);
  json["tokens_per_s"] = Optional(m.rates.tokens_per_second);
  json["mfu"] = Optional(m.rates.mfu);
  json["watts"] = Optional(m.rates.watts);
  json["gpu_watts"] = Optional(m.rates.gpu_watts);
  json["cpu_watts"] = Optional(m.rates.cpu_watts);
  json["tokens_per_s_per_watt"] = Optional(m.rates.tokens_per_second_per_watt);
  json["joules_per_token"] = Optional(m.rates.joules_per_token);
  json["eta_s"] = m.eta.has_value() ? Json(Seconds(*m.eta)) : Json(nullptr);
  return json.dump();
}

double EvalMetrics::perplexity() const { return std::exp(val_loss); }

std::string FormatEvalLine(const EvalMetrics& m) {
  return absl::StrCat("eval step ", m.step, " | val loss ", absl::StrFormat("%.3f", m.val_loss),
                      " | ppl ", absl::StrFormat("%.2f", m.perplexity()), " | ",
                      ThreeDigits(static_cast<double>(m.tokens)), " tokens");
}

std::string EvalMetricsJson(const EvalMetrics& m) {
  Json json;
  json["kind"] = "eval";
  json["step"] = m.step;
  json["val_loss"] = m.val_loss;
  json["perplexity"] = m.perplexity();
  json["tokens"] = m.tokens;
  return json.dump();
}

}  // namespace usine
