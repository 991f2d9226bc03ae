// Scheduler: continuous batching under a per-step token budget, with chunked prefill,
// prefix-cache admission and preemption by recompute.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/core/status.h"
#include "engine/kv/kv_cache_manager.h"
#include "engine/scheduler/request.h"

namespace strata {

struct SchedulerConfig {
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
};

struct ScheduledChunk {
  Request* request = nullptr;
  int num_new_tokens = 0;  // tokens [num_computed_tokens, num_computed_tokens + num_new_tokens)
  bool samples = false;    // the chunk reaches the last known token: sample the next one
};

struct StepPlan {
  std::vector<ScheduledChunk> chunks;      // decodes first, then prefill chunks
  std::vector<Request*> preempted;         // sent back to the waiting queue this step
  int num_tokens = 0;
  bool empty() const { return chunks.empty(); }
};

struct SchedulerStats {
  int num_waiting = 0;
  int num_running = 0;
  uint64_t num_preemptions = 0;
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, KvCacheManager& kv);

  // Queues a request (FCFS). The waiting queue has no bound here: Engine::submit is the
  // admission gate, so a request it accepted is never refused at this point.
  Status add(std::unique_ptr<Request> request);
  // Removes a request wherever it is and frees its blocks; nullptr if unknown.
  std::unique_ptr<Request> remove(uint64_t request_id);
  // Plans one step: running decodes, then running prefill chunks, then admissions, within
  // max_num_batched_tokens and max_num_seqs. Preempts the newest running requests
  // (freeing their blocks, to recompute later) when the pool runs out.
  StepPlan schedule();
  // Marks the planned tokens computed (their full blocks become cacheable).
  void complete_step(const StepPlan& plan);
  // Ends a finished request: frees its blocks and hands it back.
  std::unique_ptr<Request> finish(uint64_t request_id, FinishReason reason);

  Request* find(uint64_t request_id);
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  SchedulerStats stats() const;
  const SchedulerConfig& config() const { return config_; }

 private:
  void preempt(Request* request);
  void erase_running(Request* request);

  SchedulerConfig config_;
  KvCacheManager& kv_;
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;  // admission order
  uint64_t next_admission_ = 0;
  uint64_t num_preemptions_ = 0;
};

}  // namespace strata
