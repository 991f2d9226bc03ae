// EngineCore: the single-threaded heart of the engine. It owns the model, the KV cache and
// the scheduler, and advances every request by one step per call. Not thread-safe: the
// Engine's loop thread (or a test) drives it.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/core/status.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/model/load_format.h"
#include "engine/model/model_config.h"
#include "engine/runner/model_runner.h"
#include "engine/sampling/sampler.h"
#include "engine/scheduler/scheduler.h"

namespace strata {

struct EngineConfig {
  std::string model_dir;
  LoadFormat load_format = LoadFormat::kAuto;  // kDummy: random weights from config.json alone
  // "cpu", "cuda" / "cuda:N", or "auto" (CUDA when this build has it and a device answers).
  std::string device = "cpu";
  double gpu_memory_utilization = 0.90;  // CUDA: share of the device's memory strata may take
  std::string dtype = "auto";            // CUDA: auto, bfloat16 or float16 (the CPU runs fp32)
  bool enforce_eager = false;            // CUDA: no CUDA graphs for decode steps
  int block_size = 16;
  // 0: derived from kv_cache_bytes on the CPU, from gpu_memory_utilization on CUDA (capped at
  // what max_num_seqs sequences of max_model_len need).
  int num_kv_blocks = 0;
  size_t kv_cache_bytes = size_t{256} << 20;  // CPU backend
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 0;  // 0: the model's max_position_embeddings
  int max_waiting = 0;    // Engine::submit: requests beyond the max_num_seqs run slots; 0: unbounded
  bool enable_prefix_caching = true;
};

struct EngineRequest {
  std::vector<int32_t> prompt_ids;
  SamplingParams params;
};

// What one request produced in one step, or how it ended.
struct RequestOutput {
  uint64_t request_id = 0;
  std::vector<SampledToken> new_tokens;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  Status error;  // set when finish_reason is kError
  int num_prompt_tokens = 0;
  int num_output_tokens = 0;
  int num_cached_tokens = 0;  // prompt tokens served from the prefix cache
};

struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;
  uint64_t num_preemptions = 0;
  uint64_t num_steps = 0;
  uint64_t num_prompt_tokens_computed = 0;
  uint64_t num_generated_tokens = 0;
  BlockPoolStats kv;
};

class EngineCore {
 public:
  static Result<std::unique_ptr<EngineCore>> create(const EngineConfig& config);

  const ModelConfig& model_config() const { return runner_->config(); }
  const GenerationDefaults& generation_defaults() const { return generation_defaults_; }
  const EngineConfig& config() const { return config_; }
  int max_model_len() const { return config_.max_model_len; }
  size_t weight_bytes() const { return runner_->executor().weight_bytes(); }
  size_t kv_cache_bytes() const { return runner_->executor().kv_cache_bytes(); }
  std::string device_name() const { return runner_->executor().device_name(); }
  const std::vector<int32_t>& eos_token_ids() const { return eos_token_ids_; }

  // Checks a request against the model and the cache without queueing it.
  Status validate(const EngineRequest& request) const;
  // Validates and queues a request; returns its id (`request_id`, or a fresh one when 0).
  Result<uint64_t> add_request(EngineRequest request, uint64_t request_id = 0);
  // Ends a request wherever it is; its blocks return to the pool now. Returns the abort
  // output, or nothing when the id is unknown (already finished).
  std::optional<RequestOutput> abort(uint64_t request_id);
  // Runs one scheduling step and forward; returns the outputs it produced.
  std::vector<RequestOutput> step();

  bool has_work() const { return scheduler_->has_work(); }
  EngineStats stats() const;

 private:
  EngineCore() = default;
  RequestOutput make_output(const Request& r) const;
  bool stops_on(const Request& r, int32_t token) const;

  EngineConfig config_;
  GenerationDefaults generation_defaults_;
  std::vector<int32_t> eos_token_ids_;
  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<Scheduler> scheduler_;
  std::mt19937_64 seed_rng_{std::random_device{}()};
  uint64_t next_request_id_ = 1;
  uint64_t num_steps_ = 0;
  uint64_t num_prompt_tokens_computed_ = 0;
  uint64_t num_generated_tokens_ = 0;
};

}  // namespace strata
