// Engine: the public, thread-safe face of the engine. Front ends submit requests and read
// per-request output streams; one loop thread owns all scheduling and KV state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine_core.h"

namespace strata {

// Outputs of one request, in order; the last one has finished == true.
class RequestStream {
 public:
  explicit RequestStream(uint64_t request_id) : request_id_(request_id) {}
  uint64_t request_id() const { return request_id_; }

  // Blocks until an output is ready (nullopt once the final output has been taken).
  std::optional<RequestOutput> next();
  // Like next() but gives up after `timeout_ms` (nullopt, with finished() still false).
  std::optional<RequestOutput> next_for(int timeout_ms);
  // Every output ready now, without blocking.
  std::vector<RequestOutput> drain();
  bool finished() const;
  // Called (from the engine thread) after each push; must be cheap and thread-safe.
  void set_notifier(std::function<void()> notify);

  void push(RequestOutput output);  // engine side

 private:
  const uint64_t request_id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
  bool pushed_final_ = false;
  bool taken_final_ = false;
  std::function<void()> notify_;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const EngineConfig& config);
  ~Engine();  // stops the loop; unfinished requests end with an abort output

  // Validates at once (errors come back here, not through the stream) and queues. With
  // max_waiting set, refuses (resource_exhausted) only when max_num_seqs + max_waiting
  // accepted requests have not ended yet: an accepted request is never refused later.
  Result<std::shared_ptr<RequestStream>> submit(EngineRequest request);
  // Cancels a request; its stream ends with finish_reason abort within one step.
  void cancel(uint64_t request_id);
  // Stops accepting, lets the loop drain (up to `grace_ms`), then aborts what is left.
  void shutdown(int grace_ms = 0);

  EngineStats stats() const;
  const ModelConfig& model_config() const { return core_->model_config(); }
  const EngineConfig& config() const { return core_->config(); }
  const GenerationDefaults& generation_defaults() const { return core_->generation_defaults(); }
  const std::vector<int32_t>& eos_token_ids() const { return core_->eos_token_ids(); }
  int max_model_len() const { return core_->max_model_len(); }
  size_t weight_bytes() const { return core_->weight_bytes(); }
  size_t kv_cache_bytes() const { return core_->kv_cache_bytes(); }
  std::string device_name() const { return core_->device_name(); }

 private:
  explicit Engine(std::unique_ptr<EngineCore> core);
  void loop();
  // Pushes a request's final output, its admission place freed first.
  void end_stream(RequestStream& stream, RequestOutput final_output);

  std::unique_ptr<EngineCore> core_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Pending {
    EngineRequest request;
    std::shared_ptr<RequestStream> stream;
  };
  std::vector<Pending> inbox_;
  std::vector<uint64_t> cancels_;
  std::unordered_map<uint64_t, std::shared_ptr<RequestStream>> streams_;  // loop thread only
  EngineStats stats_;  // snapshot, under mu_
  int num_accepted_ = 0;  // under mu_: submitted requests whose final output is not out yet
  bool stopping_ = false;
  bool accepting_ = true;
  std::atomic<uint64_t> next_stream_id_{1};
  std::thread thread_;
};

}  // namespace strata
