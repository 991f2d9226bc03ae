// EngineCore implementation: request validation, the step loop body, stop conditions.
#include "engine/engine_core.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "engine/core/host_memory.h"
#include "engine/cuda/cuda_executor.h"
#include "engine/model/llama_weights.h"

namespace strata {

namespace {

// "cpu", "cuda", "cuda:N" or "auto" -> whether to use CUDA and which device.
Result<std::pair<bool, int>> resolve_device(const std::string& device) {
  if (device == "cpu") return std::pair<bool, int>{false, 0};
  if (device == "auto") return std::pair<bool, int>{cuda_device_count() > 0, 0};
  if (device == "cuda") return std::pair<bool, int>{true, 0};
  if (device.rfind("cuda:", 0) == 0) {
    const std::string index = device.substr(5);
    if (!index.empty() && index.size() < 4 && std::all_of(index.begin(), index.end(), ::isdigit)) {
      return std::pair<bool, int>{true, std::stoi(index)};
    }
  }
  return invalid_argument("device must be cpu, cuda, cuda:N or auto, got '" + device + "'");
}

// The CPU backend's plan (fp32 weights, the KV cache, a step's activations and logits),
// logged, then checked against the host's available memory before anything is allocated.
Status check_host_memory(const ModelConfig& m, const EngineConfig& c, size_t kv_bytes_per_block) {
  HostMemoryPlan plan;
  plan.weight_bytes = static_cast<uint64_t>(llama_num_parameters(m)) * sizeof(float);
  plan.kv_cache_bytes = static_cast<uint64_t>(c.num_kv_blocks) * kv_bytes_per_block;
  const uint64_t tokens = static_cast<uint64_t>(c.max_num_batched_tokens);
  const uint64_t row_floats = 4ull * m.hidden_size + static_cast<uint64_t>(m.num_heads + 2 * m.num_kv_heads) * m.head_dim +
                              3ull * m.intermediate_size;
  plan.workspace_bytes = (tokens * row_floats + std::min<uint64_t>(tokens, c.max_num_seqs) * m.vocab_size) * sizeof(float);
  const auto host = host_memory_available();
  spdlog::info("host memory plan: {} ({} KV blocks); available: {}", plan.describe(), c.num_kv_blocks,
               host ? format_mib(host->available_bytes) + " (" + host->source + ")" : std::string("unknown"));
  if (host && plan.total() > host->available_bytes) {
    return resource_exhausted("the host memory plan, " + plan.describe() + " (" + std::to_string(c.num_kv_blocks) +
                              " KV blocks), exceeds the " + format_mib(host->available_bytes) + " available (" +
                              host->source + "); lower --kv-cache-mb or --num-kv-blocks");
  }
  return Status::ok_status();
}

}  // namespace

Result<std::unique_ptr<EngineCore>> EngineCore::create(const EngineConfig& config) {
  std::unique_ptr<EngineCore> core(new EngineCore());
  core->config_ = config;
  EngineConfig& c = core->config_;
  STRATA_ASSIGN_OR_RETURN(ModelConfig model_config, load_model_config(c.model_dir));
  STRATA_ASSIGN_OR_RETURN(core->generation_defaults_, load_generation_defaults(c.model_dir));
  STRATA_ASSIGN_OR_RETURN(const auto device, resolve_device(c.device));

  if (c.block_size <= 0) return invalid_argument("block_size must be positive");
  if (c.max_model_len <= 0) c.max_model_len = model_config.max_position_embeddings;
  if (c.max_model_len > model_config.max_position_embeddings) {
    return invalid_argument("max_model_len (" + std::to_string(c.max_model_len) +
                            ") exceeds the model's max_position_embeddings (" +
                            std::to_string(model_config.max_position_embeddings) + ")");
  }
  if (c.max_num_seqs <= 0) return invalid_argument("max_num_seqs must be positive");
  if (c.max_num_batched_tokens <= 0) return invalid_argument("max_num_batched_tokens must be positive");
  if (!(c.gpu_memory_utilization > 0.0 && c.gpu_memory_utilization <= 1.0)) {
    return invalid_argument("gpu_memory_utilization must be in (0, 1], got " +
                            std::to_string(c.gpu_memory_utilization));
  }
  // Blocks enough for max_num_seqs sequences of max_model_len: more would never be used.
  const int blocks_by_demand = static_cast<int>(std::min<int64_t>(
      INT32_MAX, static_cast<int64_t>(c.max_num_seqs) * ((c.max_model_len + c.block_size - 1) / c.block_size)));

  std::unique_ptr<ModelExecutor> executor;
  if (device.first) {
    CudaExecutorOptions options;
    options.device_index = device.second;
    options.block_size = c.block_size;
    options.num_kv_blocks = c.num_kv_blocks;
    options.max_kv_blocks = blocks_by_demand;
    options.gpu_memory_utilization = c.gpu_memory_utilization;
    options.dtype = c.dtype;
    options.cuda_graphs = !c.enforce_eager;
    options.max_num_batched_tokens = c.max_num_batched_tokens;
    options.max_num_seqs = c.max_num_seqs;
    options.max_model_len = c.max_model_len;
    options.load = {.format = c.load_format};
    STRATA_ASSIGN_OR_RETURN(executor, make_cuda_executor(c.model_dir, model_config, options));
  } else {
    const size_t bytes_per_block = 2ull * model_config.num_layers * c.block_size * model_config.num_kv_heads *
                                   model_config.head_dim * sizeof(float);
    if (c.num_kv_blocks <= 0) {
      const size_t by_memory = c.kv_cache_bytes / bytes_per_block;
      c.num_kv_blocks = static_cast<int>(std::min<size_t>(by_memory, blocks_by_demand));
    }
    if (c.num_kv_blocks <= 0) return invalid_argument("the KV cache budget holds no block");
    STRATA_RETURN_IF_ERROR(check_host_memory(model_config, c, bytes_per_block));
    STRATA_ASSIGN_OR_RETURN(auto model, LlamaModel::load(c.model_dir, model_config, {.format = c.load_format}));
    executor = make_cpu_executor(std::move(model), c.num_kv_blocks, c.block_size);
  }
  c.num_kv_blocks = executor->num_kv_blocks();

  // EOS ids: generation_config.json wins over config.json, as in transformers.
  core->eos_token_ids_ = core->generation_defaults_.eos_token_ids.empty() ? model_config.eos_token_ids
                                                                          : core->generation_defaults_.eos_token_ids;

  core->runner_ = std::make_unique<ModelRunner>(std::move(executor));
  core->kv_ = std::make_unique<KvCacheManager>(c.num_kv_blocks, c.block_size, c.enable_prefix_caching);
  core->scheduler_ =
      std::make_unique<Scheduler>(SchedulerConfig{c.max_num_seqs, c.max_num_batched_tokens}, *core->kv_);
  return core;
}

Status EngineCore::validate(const EngineRequest& request) const {
  const auto& cfg = model_config();
  const int prompt_len = static_cast<int>(request.prompt_ids.size());
  if (prompt_len == 0) return invalid_argument("prompt is empty");
  for (int32_t id : request.prompt_ids) {
    if (id < 0 || id >= cfg.vocab_size) {
      return invalid_argument("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(cfg.vocab_size) + ")");
    }
  }
  if (prompt_len >= config_.max_model_len) {
    return invalid_argument("prompt has " + std::to_string(prompt_len) + " tokens, but the context window is " +
                            std::to_string(config_.max_model_len) +
                            " tokens (room is needed for at least one generated token)");
  }
  STRATA_RETURN_IF_ERROR(validate_sampling_params(request.params, cfg.vocab_size));
  const int max_total = std::min(prompt_len + request.params.max_tokens, config_.max_model_len);
  const int blocks = (max_total + config_.block_size - 1) / config_.block_size;
  if (blocks > config_.num_kv_blocks) {
    return resource_exhausted("the request may need " + std::to_string(max_total) +
                              " tokens of KV cache, more than the whole cache holds (" +
                              std::to_string(config_.num_kv_blocks * config_.block_size) + " tokens)");
  }
  return Status::ok_status();
}

Result<uint64_t> EngineCore::add_request(EngineRequest request, uint64_t request_id) {
  STRATA_RETURN_IF_ERROR(validate(request));
  auto r = std::make_unique<Request>();
  r->id = request_id != 0 ? request_id : next_request_id_++;
  r->num_prompt_tokens = static_cast<int>(request.prompt_ids.size());
  r->tokens = std::move(request.prompt_ids);
  r->params = std::move(request.params);
  r->seed = r->params.seed ? *r->params.seed : seed_rng_();
  r->max_total_tokens = std::min(r->num_prompt_tokens + r->params.max_tokens, config_.max_model_len);
  r->tokens.reserve(r->max_total_tokens);
  const uint64_t id = r->id;
  STRATA_RETURN_IF_ERROR(scheduler_->add(std::move(r)));
  return id;
}

RequestOutput EngineCore::make_output(const Request& r) const {
  RequestOutput out;
  out.request_id = r.id;
  out.num_prompt_tokens = r.num_prompt_tokens;
  out.num_output_tokens = r.num_output_tokens();
  out.num_cached_tokens = std::max(0, r.num_cached_tokens);
  return out;
}

std::optional<RequestOutput> EngineCore::abort(uint64_t request_id) {
  auto r = scheduler_->finish(request_id, FinishReason::kAbort);
  if (!r) return std::nullopt;
  RequestOutput out = make_output(*r);
  out.finished = true;
  out.finish_reason = FinishReason::kAbort;
  return out;
}

bool EngineCore::stops_on(const Request& r, int32_t token) const {
  if (std::find(r.params.stop_token_ids.begin(), r.params.stop_token_ids.end(), token) !=
      r.params.stop_token_ids.end()) {
    return true;
  }
  return !r.params.ignore_eos && std::find(eos_token_ids_.begin(), eos_token_ids_.end(), token) != eos_token_ids_.end();
}

std::vector<RequestOutput> EngineCore::step() {
  std::vector<RequestOutput> outputs;
  StepPlan plan = scheduler_->schedule();
  if (plan.empty()) return outputs;
  ++num_steps_;

  auto sampled = runner_->execute(plan, *kv_, eos_token_ids_);
  if (!sampled.ok()) {
    spdlog::error("forward failed: {}", sampled.status().to_string());
    for (const auto& c : plan.chunks) {
      auto r = scheduler_->finish(c.request->id, FinishReason::kError);
      RequestOutput out = make_output(*r);
      out.finished = true;
      out.finish_reason = FinishReason::kError;
      out.error = sampled.status();
      outputs.push_back(std::move(out));
    }
    return outputs;
  }
  for (const auto& c : plan.chunks) {
    if (c.request->num_output_tokens() == 0) num_prompt_tokens_computed_ += c.num_new_tokens;
  }
  scheduler_->complete_step(plan);

  size_t row = 0;
  for (const auto& c : plan.chunks) {
    if (!c.samples) continue;
    Request& r = *c.request;
    SampledToken& token = (*sampled)[row++];
    r.tokens.push_back(token.token_id);
    ++num_generated_tokens_;

    FinishReason reason = FinishReason::kNone;
    if (stops_on(r, token.token_id)) {
      reason = FinishReason::kStop;
    } else if (r.num_tokens() >= r.max_total_tokens) {
      reason = FinishReason::kLength;
    }
    RequestOutput out = make_output(r);
    out.new_tokens.push_back(std::move(token));
    if (reason != FinishReason::kNone) {
      out.finished = true;
      out.finish_reason = reason;
      scheduler_->finish(r.id, reason);
    }
    outputs.push_back(std::move(out));
  }
  return outputs;
}

EngineStats EngineCore::stats() const {
  EngineStats s;
  auto sched = scheduler_->stats();
  s.num_running = sched.num_running;
  s.num_waiting = sched.num_waiting;
  s.num_preemptions = sched.num_preemptions;
  s.num_steps = num_steps_;
  s.num_prompt_tokens_computed = num_prompt_tokens_computed_;
  s.num_generated_tokens = num_generated_tokens_;
  s.kv = kv_->stats();
  return s;
}

}  // namespace strata
