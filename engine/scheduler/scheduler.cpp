// Scheduler implementation (see scheduler.h for the policy).
#include "engine/scheduler/scheduler.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace strata {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}

Scheduler::Scheduler(SchedulerConfig config, KvCacheManager& kv) : config_(config), kv_(kv) {
  if (config_.max_num_seqs <= 0 || config_.max_num_batched_tokens <= 0) {
    throw std::invalid_argument("Scheduler: max_num_seqs and max_num_batched_tokens must be positive");
  }
}

Status Scheduler::add(std::unique_ptr<Request> request) {
  if (requests_.count(request->id)) return invalid_argument("duplicate request id " + std::to_string(request->id));
  request->status = RequestStatus::kWaiting;
  Request* r = request.get();
  requests_.emplace(r->id, std::move(request));
  waiting_.push_back(r);
  return Status::ok_status();
}

Request* Scheduler::find(uint64_t request_id) {
  auto it = requests_.find(request_id);
  return it == requests_.end() ? nullptr : it->second.get();
}

void Scheduler::erase_running(Request* request) {
  running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
}

std::unique_ptr<Request> Scheduler::remove(uint64_t request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return nullptr;
  Request* r = it->second.get();
  if (r->status == RequestStatus::kRunning) {
    erase_running(r);
  } else {
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), r), waiting_.end());
  }
  kv_.end_sequence(r->id);
  auto owned = std::move(it->second);
  requests_.erase(it);
  return owned;
}

std::unique_ptr<Request> Scheduler::finish(uint64_t request_id, FinishReason reason) {
  auto owned = remove(request_id);
  if (owned) {
    owned->status = RequestStatus::kFinished;
    owned->finish_reason = reason;
  }
  return owned;
}

void Scheduler::preempt(Request* request) {
  erase_running(request);
  kv_.end_sequence(request->id);
  request->status = RequestStatus::kWaiting;
  request->num_computed_tokens = 0;
  ++request->num_preemptions;
  ++num_preemptions_;
  waiting_.push_front(request);
}

StepPlan Scheduler::schedule() {
  StepPlan plan;
  int budget = config_.max_num_batched_tokens;

  // Running requests: decodes (one uncomputed token) before prefill chunks.
  std::vector<Request*> order;
  order.reserve(running_.size());
  for (Request* r : running_) if (r->num_uncomputed_tokens() == 1) order.push_back(r);
  for (Request* r : running_) if (r->num_uncomputed_tokens() > 1) order.push_back(r);

  std::vector<Request*> scheduled;
  for (Request* r : order) {
    if (budget == 0) break;
    if (r->status != RequestStatus::kRunning) continue;  // preempted earlier in this loop
    const int num_new = std::min(r->num_uncomputed_tokens(), budget);
    bool placed = false;
    while (true) {
      if (kv_.reserve(r->id, r->num_computed_tokens + num_new)) {
        placed = true;
        break;
      }
      // Out of blocks: preempt the newest running request not yet scheduled this step.
      Request* victim = nullptr;
      for (Request* c : running_) {
        if (std::find(scheduled.begin(), scheduled.end(), c) != scheduled.end()) continue;
        if (!victim || c->admission_order > victim->admission_order) victim = c;
      }
      if (victim == nullptr) break;
      preempt(victim);
      plan.preempted.push_back(victim);
      if (victim == r) break;
    }
    if (!placed) continue;
    scheduled.push_back(r);
    plan.chunks.push_back({r, num_new, r->num_computed_tokens + num_new == r->num_tokens()});
    budget -= num_new;
  }

  // Admissions, first come first served; the queue head blocks the rest (no overtaking).
  // Requests preempted in this very step wait for the next one.
  while (budget > 0 && !waiting_.empty() && static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Request* r = waiting_.front();
    if (std::find(plan.preempted.begin(), plan.preempted.end(), r) != plan.preempted.end()) break;
    const int cached = kv_.begin_sequence(r->id, r->tokens);
    const int num_new = std::min(r->num_tokens() - cached, budget);
    if (!kv_.reserve(r->id, cached + num_new)) {
      kv_.end_sequence(r->id);
      break;
    }
    waiting_.pop_front();
    if (r->num_cached_tokens < 0) r->num_cached_tokens = cached;
    r->num_computed_tokens = cached;
    r->status = RequestStatus::kRunning;
    r->admission_order = next_admission_++;
    running_.push_back(r);
    plan.chunks.push_back({r, num_new, cached + num_new == r->num_tokens()});
    budget -= num_new;
  }

  plan.num_tokens = config_.max_num_batched_tokens - budget;
  return plan;
}

void Scheduler::complete_step(const StepPlan& plan) {
  for (const ScheduledChunk& c : plan.chunks) {
    Request* r = c.request;
    r->num_computed_tokens += c.num_new_tokens;
    kv_.mark_computed(r->id, r->tokens, r->num_computed_tokens);
  }
}

SchedulerStats Scheduler::stats() const {
  return {static_cast<int>(waiting_.size()), static_cast<int>(running_.size()), num_preemptions_};
}

}  // namespace strata
