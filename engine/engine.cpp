// Engine: loop thread, inbox, cancellation and per-request output streams.
#include "engine/engine.h"

#include <chrono>
#include <spdlog/spdlog.h>

namespace strata {

std::optional<RequestOutput> RequestStream::next() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || (pushed_final_ && queue_.empty()); });
  if (queue_.empty()) return std::nullopt;
  RequestOutput out = std::move(queue_.front());
  queue_.pop_front();
  if (out.finished) taken_final_ = true;
  return out;
}

std::optional<RequestOutput> RequestStream::next_for(int timeout_ms) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty() || pushed_final_; })) {
    return std::nullopt;
  }
  if (queue_.empty()) return std::nullopt;
  RequestOutput out = std::move(queue_.front());
  queue_.pop_front();
  if (out.finished) taken_final_ = true;
  return out;
}

std::vector<RequestOutput> RequestStream::drain() {
  std::lock_guard lock(mu_);
  std::vector<RequestOutput> out(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  for (const auto& o : out) if (o.finished) taken_final_ = true;
  return out;
}

bool RequestStream::finished() const {
  std::lock_guard lock(mu_);
  return taken_final_;
}

void RequestStream::set_notifier(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

void RequestStream::push(RequestOutput output) {
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    if (pushed_final_) return;
    pushed_final_ = output.finished;
    queue_.push_back(std::move(output));
    notify = notify_;
  }
  cv_.notify_all();
  if (notify) notify();
}

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config) {
  STRATA_ASSIGN_OR_RETURN(auto core, EngineCore::create(config));
  return std::unique_ptr<Engine>(new Engine(std::move(core)));
}

Engine::Engine(std::unique_ptr<EngineCore> core) : core_(std::move(core)) {
  stats_ = core_->stats();
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  shutdown(0);
}

Result<std::shared_ptr<RequestStream>> Engine::submit(EngineRequest request) {
  STRATA_RETURN_IF_ERROR(core_->validate(request));
  std::lock_guard lock(mu_);
  if (!accepting_) return Status(StatusCode::kUnavailable, "the engine is shutting down");
  // The one admission gate: every accepted request holds a place until its final output, so
  // a burst of max_num_seqs + max_waiting is taken whole and nothing accepted is refused later.
  const EngineConfig& c = core_->config();
  if (c.max_waiting > 0 && num_accepted_ >= c.max_num_seqs + c.max_waiting) {
    return resource_exhausted("waiting queue is full (" + std::to_string(c.max_num_seqs) + " running and " +
                              std::to_string(c.max_waiting) + " waiting requests)");
  }
  ++num_accepted_;
  auto stream = std::make_shared<RequestStream>(next_stream_id_++);
  inbox_.push_back({std::move(request), stream});
  cv_.notify_all();
  return stream;
}

void Engine::cancel(uint64_t request_id) {
  std::lock_guard lock(mu_);
  cancels_.push_back(request_id);
  cv_.notify_all();
}

void Engine::shutdown(int grace_ms) {
  {
    std::lock_guard lock(mu_);
    accepting_ = false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu_);
      if (inbox_.empty() && stats_.num_running == 0 && stats_.num_waiting == 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Engine::end_stream(RequestStream& stream, RequestOutput final_output) {
  {
    // The place frees before the client can see the end: a client that resubmits on its final
    // output always finds it.
    std::lock_guard lock(mu_);
    --num_accepted_;
  }
  stream.push(std::move(final_output));
}

void Engine::loop() {
  while (true) {
    std::vector<Pending> inbox;
    std::vector<uint64_t> cancels;
    bool stopping;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !cancels_.empty() || core_->has_work(); });
      inbox.swap(inbox_);
      cancels.swap(cancels_);
      stopping = stopping_;
    }
    for (Pending& p : inbox) {
      const uint64_t id = p.stream->request_id();
      auto added = core_->add_request(std::move(p.request), id);
      if (!added.ok()) {
        RequestOutput out;
        out.request_id = id;
        out.finished = true;
        out.finish_reason = FinishReason::kError;
        out.error = added.status();
        end_stream(*p.stream, std::move(out));
        continue;
      }
      streams_.emplace(id, std::move(p.stream));
    }
    for (uint64_t id : cancels) {
      if (auto out = core_->abort(id)) {
        auto it = streams_.find(id);
        if (it != streams_.end()) {
          end_stream(*it->second, std::move(*out));
          streams_.erase(it);
        }
      }
    }
    if (stopping) {
      for (auto& [id, stream] : streams_) {
        if (auto out = core_->abort(id)) end_stream(*stream, std::move(*out));
      }
      streams_.clear();
      std::lock_guard lock(mu_);
      stats_ = core_->stats();
      return;
    }
    if (core_->has_work()) {
      for (RequestOutput& out : core_->step()) {
        auto it = streams_.find(out.request_id);
        if (it == streams_.end()) continue;
        if (!out.finished) {
          it->second->push(std::move(out));
          continue;
        }
        end_stream(*it->second, std::move(out));
        streams_.erase(it);
      }
    }
    std::lock_guard lock(mu_);
    stats_ = core_->stats();
  }
}

}  // namespace strata
