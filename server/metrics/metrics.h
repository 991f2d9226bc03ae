// ServerMetrics: request counters and latency histograms of the HTTP front end, rendered with
// the engine's gauges in the Prometheus text format (names follow vLLM's, prefix `strata:`).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine_core.h"

namespace strata {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends `<name>_bucket{...,le=...}`, `<name>_sum`, `<name>_count` lines.
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> upper_bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  void observe_time_to_first_token(double seconds);
  void observe_inter_token_latency(double seconds);
  void observe_e2e_latency(double seconds);
  void observe_queue_time(double seconds);
  // One engine request (one choice) ended; `finished_reason` is stop, length, abort or error.
  void count_finished(std::string_view finished_reason, int prompt_tokens, int generation_tokens);

  std::string render(const EngineStats& stats) const;

 private:
  const std::string model_name_;
  mutable std::mutex mu_;
  Histogram ttft_;
  Histogram itl_;
  Histogram e2e_;
  Histogram queue_;
  std::map<std::string, uint64_t, std::less<>> success_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generation_tokens_ = 0;
};

}  // namespace strata
