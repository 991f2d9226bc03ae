// ServerMetrics implementation: Prometheus text exposition format 0.0.4.
#include "server/metrics/metrics.h"

#include <algorithm>
#include <cstdio>

namespace strata {
namespace {

std::string format_value(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, const std::string& labels, double value) {
  out += name + "{" + labels + "} " + format_value(value) + "\n";
}

// vLLM's buckets, with a few finer ones at the low end for small CPU models.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                                         0.4,   0.5,    0.75,  1.0,  2.5,   5.0,  7.5,   10.0, 20.0, 40.0, 80.0};
const std::vector<double> kRequestBuckets = {0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,   1.5,   2.0,   2.5,   5.0,  10.0,
                                             15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t i = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < upper_bounds_.size() ? format_value(upper_bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + format_value(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics(std::string model_name)
    : model_name_(std::move(model_name)),
      ttft_(kTtftBuckets),
      itl_(kItlBuckets),
      e2e_(kRequestBuckets),
      queue_(kRequestBuckets) {
  for (const char* reason : {"stop", "length", "abort", "error"}) success_[reason] = 0;
}

void ServerMetrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mu_);
  ttft_.observe(seconds);
}
void ServerMetrics::observe_inter_token_latency(double seconds) {
  std::lock_guard lock(mu_);
  itl_.observe(seconds);
}
void ServerMetrics::observe_e2e_latency(double seconds) {
  std::lock_guard lock(mu_);
  e2e_.observe(seconds);
}
void ServerMetrics::observe_queue_time(double seconds) {
  std::lock_guard lock(mu_);
  queue_.observe(seconds);
}

void ServerMetrics::count_finished(std::string_view finished_reason, int prompt_tokens, int generation_tokens) {
  std::lock_guard lock(mu_);
  auto it = success_.find(finished_reason);
  if (it == success_.end()) it = success_.emplace(std::string(finished_reason), 0).first;
  ++it->second;
  prompt_tokens_ += static_cast<uint64_t>(std::max(0, prompt_tokens));
  generation_tokens_ += static_cast<uint64_t>(std::max(0, generation_tokens));
}

std::string ServerMetrics::render(const EngineStats& stats) const {
  const std::string m = "model_name=\"" + escape_label(model_name_) + "\"";
  std::string out;
  out.reserve(16 << 10);
  header(out, "strata:num_requests_running", "gauge", "Number of requests in the engine's running batch.");
  sample(out, "strata:num_requests_running", m, stats.num_running);
  header(out, "strata:num_requests_waiting", "gauge", "Number of requests waiting to be scheduled.");
  sample(out, "strata:num_requests_waiting", m, stats.num_waiting);

  const double blocks = std::max(1, stats.kv.num_blocks);
  header(out, "strata:kv_cache_usage_perc", "gauge", "Fraction of KV-cache blocks in use (1 = full).");
  sample(out, "strata:kv_cache_usage_perc", m, stats.kv.num_used / blocks);
  header(out, "strata:kv_cache_blocks_total", "gauge", "KV-cache blocks in the pool.");
  sample(out, "strata:kv_cache_blocks_total", m, stats.kv.num_blocks);
  header(out, "strata:kv_cache_blocks_used", "gauge", "KV-cache blocks referenced by a request.");
  sample(out, "strata:kv_cache_blocks_used", m, stats.kv.num_used);
  header(out, "strata:kv_cache_blocks_free", "gauge", "Unreferenced KV-cache blocks (including cached ones).");
  sample(out, "strata:kv_cache_blocks_free", m, stats.kv.num_free);
  header(out, "strata:kv_cache_blocks_cached", "gauge", "KV-cache blocks holding a reusable prompt prefix.");
  sample(out, "strata:kv_cache_blocks_cached", m, stats.kv.num_cached);
  header(out, "strata:prefix_cache_queries_total", "counter", "KV blocks looked up in the prefix cache.");
  sample(out, "strata:prefix_cache_queries_total", m, static_cast<double>(stats.kv.prefix_queries));
  header(out, "strata:prefix_cache_hits_total", "counter", "KV blocks found in the prefix cache.");
  sample(out, "strata:prefix_cache_hits_total", m, static_cast<double>(stats.kv.prefix_hits));
  header(out, "strata:num_preemptions_total", "counter", "Requests preempted (recomputed) for lack of KV blocks.");
  sample(out, "strata:num_preemptions_total", m, static_cast<double>(stats.num_preemptions));
  header(out, "strata:engine_steps_total", "counter", "Engine steps run.");
  sample(out, "strata:engine_steps_total", m, static_cast<double>(stats.num_steps));

  std::lock_guard lock(mu_);
  header(out, "strata:request_success_total", "counter", "Finished requests (one per choice), by finish reason.");
  for (const auto& [reason, count] : success_) {
    sample(out, "strata:request_success_total", "finished_reason=\"" + escape_label(reason) + "\"," + m,
           static_cast<double>(count));
  }
  header(out, "strata:prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
  sample(out, "strata:prompt_tokens_total", m, static_cast<double>(prompt_tokens_));
  header(out, "strata:generation_tokens_total", "counter", "Tokens generated by finished requests.");
  sample(out, "strata:generation_tokens_total", m, static_cast<double>(generation_tokens_));

  header(out, "strata:time_to_first_token_seconds", "histogram", "Time from arrival to the first generated token.");
  ttft_.render(out, "strata:time_to_first_token_seconds", m);
  header(out, "strata:inter_token_latency_seconds", "histogram", "Time between consecutive generated tokens.");
  itl_.render(out, "strata:inter_token_latency_seconds", m);
  header(out, "strata:e2e_request_latency_seconds", "histogram", "Time from arrival to the last token.");
  e2e_.render(out, "strata:e2e_request_latency_seconds", m);
  header(out, "strata:request_queue_time_seconds", "histogram",
         "Time from arrival until the engine accepted the request (see README: engine scheduling time is not "
         "exposed yet).");
  queue_.render(out, "strata:request_queue_time_seconds", m);
  return out;
}

}  // namespace strata
