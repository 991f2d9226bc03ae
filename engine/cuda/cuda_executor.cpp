// The CUDA backend: the Llama family's forward (the CPU reference's op order, engine/model/
// llama_model.cpp) as kernels/cuda launches on one stream, bf16/fp16 weights and paged KV
// cache, logits (bf16/fp16 values in fp32) sampled on the GPU or copied back through pinned
// memory for forward().
// One engine thread drives it.
#include "engine/cuda/cuda_executor.h"

#include <cuda_runtime_api.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "engine/core/dtype.h"
#include "engine/model/dummy_weights.h"
#include "engine/model/llama_weights.h"
#include "kernels/cuda/activation.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/dummy_fill.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kv_cache.h"
#include "kernels/cuda/norm.h"
#include "kernels/cuda/paged_attention.h"
#include "kernels/cuda/rope.h"
#include "kernels/cuda/rope_kv.h"
#include "kernels/cuda/round.h"
#include "kernels/cuda/sampling.h"

namespace strata {
namespace {

Status cuda_error(cudaError_t error, const std::string& what) {
  return internal_error(what + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error));
}

Status check(cudaError_t error, const std::string& what) {
  return error == cudaSuccess ? Status::ok_status() : cuda_error(error, what);
}

Status check(const cuda::LaunchStatus& status) {
  return status.ok() ? Status::ok_status() : internal_error(status.message);
}

using cuda::DeviceBuffer;
using cuda::PinnedBuffer;

Status allocate(DeviceBuffer& buffer, size_t bytes, const std::string& what) {
  const cuda::LaunchStatus st = DeviceBuffer::create(&buffer, bytes);
  if (st.ok()) return Status::ok_status();
  return resource_exhausted("cannot allocate " + format_bytes(bytes) + " of GPU memory for " + what + ": " +
                            st.message);
}

Status allocate(PinnedBuffer& buffer, size_t bytes, const std::string& what) {
  const cuda::LaunchStatus st = PinnedBuffer::create(&buffer, bytes);
  if (st.ok()) return Status::ok_status();
  return resource_exhausted("cannot allocate " + format_bytes(bytes) + " of pinned host memory for " + what + ": " +
                            st.message);
}

struct DeviceLayer {
  DeviceBuffer input_norm, qkv_proj, qkv_bias, q_norm, k_norm, o_proj, o_bias, post_norm, gate_up_proj, down_proj;
};

const void* or_null(const DeviceBuffer& m) { return m.size_bytes() == 0 ? nullptr : m.get(); }

// Byte offsets of the per-step metadata inside one pinned staging buffer and its device twin,
// so each step crosses to the GPU in a single copy.
struct StepLayout {
  size_t token_ids = 0, positions = 0, slot_mapping = 0, query_start = 0, context_lens = 0, logits_indices = 0,
         block_tables = 0, total = 0;

  StepLayout(int max_tokens, int max_seqs, int max_blocks_per_seq) {
    size_t at = 0;
    const auto take = [&at](size_t bytes) {
      const size_t offset = at;
      at += (bytes + 255) / 256 * 256;
      return offset;
    };
    slot_mapping = take(sizeof(int64_t) * max_tokens);
    token_ids = take(sizeof(int32_t) * max_tokens);
    positions = take(sizeof(int32_t) * max_tokens);
    query_start = take(sizeof(int32_t) * (max_seqs + 1));
    context_lens = take(sizeof(int32_t) * max_seqs);
    logits_indices = take(sizeof(int32_t) * max_tokens);
    block_tables = take(sizeof(int32_t) * static_cast<size_t>(max_seqs) * max_blocks_per_seq);
    total = at;
  }
};

class CudaExecutor final : public ModelExecutor {
 public:
  ~CudaExecutor() override {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    for (auto& [key, graph] : decode_graphs_) cudaGraphExecDestroy(graph);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  static Result<std::unique_ptr<ModelExecutor>> create(const std::string& model_dir, const ModelConfig& config,
                                                       const CudaExecutorOptions& options);

  const ModelConfig& config() const override { return config_; }
  std::string device_name() const override { return device_name_; }
  size_t weight_bytes() const override { return weight_bytes_; }
  size_t kv_cache_bytes() const override { return k_cache_.size_bytes() + v_cache_.size_bytes(); }
  int num_kv_blocks() const override { return num_kv_blocks_; }
  int block_size() const override { return block_size_; }

  Status forward(const ForwardBatch& batch, std::span<float> logits) override;
  Status forward_and_sample(const ForwardBatch& batch, std::span<const SamplingRequest> rows,
                            std::span<SampledToken> tokens) override;

 private:
  CudaExecutor() = default;
  Status launch_step(const ForwardBatch& batch);
  Status stage_sampling(std::span<const SamplingRequest> rows, cuda::SamplingBatch& sampling);
  Status upload(const std::vector<float>& values, DeviceBuffer& out, const std::string& what);
  Status load_weights(const std::string& model_dir, const ModelLoadOptions& load);
  Status make_dummy_weights(uint64_t seed);
  Status upload_rope_table();
  DeviceBuffer& weight_buffer(int layer, LlamaWeight weight);
  Status allocate_activations();
  size_t activation_bytes() const {
    size_t bytes = 0;
    for (const DeviceBuffer* b : {&hidden_, &normed_, &qkv_, &attn_out_, &delta_, &gate_up_, &mlp_act_, &logits_rows_,
                                  &logits_, &attention_workspace_, &step_device_, &sampled_device_}) {
      bytes += b->size_bytes();
    }
    return bytes;
  }
  Status plan_kv_cache(const CudaExecutorOptions& options);
  Status stage_batch(const ForwardBatch& batch, int padded_seqs, int& max_query_len, int& max_context_len);
  Status enqueue_forward(int num_tokens, int num_seqs, int max_query_len, int max_context_len, int logits_rows);
  Status enqueue_logits(int first_row, int rows, int num_tokens);
  Status launch_decode_graph(int num_seqs, int max_context_len);
  int decode_bucket(int num_seqs) const {
    return *std::lower_bound(decode_buckets_.begin(), decode_buckets_.end(), num_seqs);
  }
  void* k_cache(int layer) const {
    return static_cast<char*>(k_cache_.get()) + static_cast<size_t>(layer) * kv_layer_bytes_;
  }
  void* v_cache(int layer) const {
    return static_cast<char*>(v_cache_.get()) + static_cast<size_t>(layer) * kv_layer_bytes_;
  }

  ModelConfig config_;
  std::string device_name_;
  cuda::DType dtype_ = cuda::DType::kBF16;
  int device_index_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::GemmContext> gemm_;
  int q_dim_ = 0, kv_dim_ = 0, qkv_dim_ = 0;
  size_t weight_bytes_ = 0;

  // Weights.
  DeviceBuffer embed_tokens_, final_norm_, lm_head_, inv_freq_;
  std::vector<DeviceLayer> layers_;

  // Paged KV cache: [num_layers][num_blocks, block_size, num_kv_heads, head_dim] each.
  DeviceBuffer k_cache_, v_cache_;
  int num_kv_blocks_ = 0;
  int block_size_ = 16;
  size_t kv_layer_bytes_ = 0;

  // Step bounds and activations, sized for the largest step.
  int max_tokens_ = 0;
  int max_seqs_ = 0;
  int max_model_len_ = 0;
  int max_blocks_per_seq_ = 0;
  DeviceBuffer hidden_, normed_, qkv_, attn_out_, delta_, gate_up_, mlp_act_, logits_rows_, logits_;
  DeviceBuffer attention_workspace_;
  StepLayout layout_{0, 0, 0};
  DeviceBuffer step_device_;
  PinnedBuffer step_host_;
  PinnedBuffer logits_host_;

  // GPU sampling: the step's SamplingRows and their lists, packed on the host into one pinned
  // buffer while the forward runs and copied over at once (both grown on demand); the results
  // ([rows] token ids, [rows] logprobs, [rows, top] ids, [rows, top] logprobs) copied back.
  std::vector<cuda::SamplingRow> sampling_rows_;
  std::vector<cuda::SamplingLogitBias> logit_bias_;
  std::vector<int32_t> stop_ids_;
  std::vector<cuda::SamplingPenaltyToken> penalty_tokens_;
  PinnedBuffer sampling_host_;
  DeviceBuffer sampling_device_;
  DeviceBuffer sampling_workspace_;
  DeviceBuffer sampled_device_;
  PinnedBuffer sampled_host_;

  // CUDA graphs of decode steps (every sequence one new token), captured on first use per
  // (padded batch size, context bucket): the batch is padded to a bucket with sequences that
  // write no KV and whose logits are dropped, and the attention grid is sized for the bucket's
  // context length (a power of two, at most max_model_len), so one graph serves many steps.
  bool use_graphs_ = true;
  std::vector<int> decode_buckets_;
  std::map<std::pair<int, int>, cudaGraphExec_t> decode_graphs_;
  size_t logged_gemm_plans_ = 0;  // the plan count last logged (debug)
};

Status CudaExecutor::upload(const std::vector<float>& values, DeviceBuffer& out, const std::string& what) {
  if (values.empty()) return Status::ok_status();
  std::vector<uint16_t> converted(values.size());
  if (dtype_ == cuda::DType::kBF16) {
    std::transform(values.begin(), values.end(), converted.begin(), f32_to_bf16);
  } else {
    std::transform(values.begin(), values.end(), converted.begin(), f32_to_f16);
  }
  const size_t bytes = converted.size() * sizeof(uint16_t);
  STRATA_RETURN_IF_ERROR(allocate(out, bytes, what));
  weight_bytes_ += bytes;
  return check(cudaMemcpy(out.get(), converted.data(), bytes, cudaMemcpyHostToDevice), "copying " + what);
}

Status CudaExecutor::load_weights(const std::string& model_dir, const ModelLoadOptions& load) {
  if (load.format == LoadFormat::kDummy) return make_dummy_weights(load.dummy_seed);
  layers_.resize(config_.num_layers);
  LlamaOuterWeights outer;
  STRATA_RETURN_IF_ERROR(read_llama_weights(
      model_dir, config_, load,
      [&](int l, LlamaLayerWeights&& w) -> Status {
        DeviceLayer& d = layers_[l];
        const std::string p = "layer " + std::to_string(l) + " ";
        STRATA_RETURN_IF_ERROR(upload(w.input_norm, d.input_norm, p + "input_layernorm"));
        STRATA_RETURN_IF_ERROR(upload(w.qkv_proj, d.qkv_proj, p + "qkv_proj"));
        STRATA_RETURN_IF_ERROR(upload(w.qkv_bias, d.qkv_bias, p + "qkv bias"));
        STRATA_RETURN_IF_ERROR(upload(w.q_norm, d.q_norm, p + "q_norm"));
        STRATA_RETURN_IF_ERROR(upload(w.k_norm, d.k_norm, p + "k_norm"));
        STRATA_RETURN_IF_ERROR(upload(w.o_proj, d.o_proj, p + "o_proj"));
        STRATA_RETURN_IF_ERROR(upload(w.o_bias, d.o_bias, p + "o_proj bias"));
        STRATA_RETURN_IF_ERROR(upload(w.post_norm, d.post_norm, p + "post_attention_layernorm"));
        STRATA_RETURN_IF_ERROR(upload(w.gate_up_proj, d.gate_up_proj, p + "gate_up_proj"));
        return upload(w.down_proj, d.down_proj, p + "down_proj");
      },
      outer));
  STRATA_RETURN_IF_ERROR(upload(outer.embed_tokens, embed_tokens_, "embed_tokens"));
  STRATA_RETURN_IF_ERROR(upload(outer.final_norm, final_norm_, "final norm"));
  STRATA_RETURN_IF_ERROR(upload(outer.lm_head, lm_head_, "lm_head"));
  return upload_rope_table();
}

DeviceBuffer& CudaExecutor::weight_buffer(int layer, LlamaWeight weight) {
  switch (weight) {
    case LlamaWeight::kEmbedTokens: return embed_tokens_;
    case LlamaWeight::kFinalNorm: return final_norm_;
    case LlamaWeight::kLmHead: return lm_head_;
    case LlamaWeight::kInputNorm: return layers_[layer].input_norm;
    case LlamaWeight::kPostNorm: return layers_[layer].post_norm;
    case LlamaWeight::kQkvProj: return layers_[layer].qkv_proj;
    case LlamaWeight::kQkvBias: return layers_[layer].qkv_bias;
    case LlamaWeight::kQNorm: return layers_[layer].q_norm;
    case LlamaWeight::kKNorm: return layers_[layer].k_norm;
    case LlamaWeight::kOProj: return layers_[layer].o_proj;
    case LlamaWeight::kOBias: return layers_[layer].o_bias;
    case LlamaWeight::kGateUpProj: return layers_[layer].gate_up_proj;
    case LlamaWeight::kDownProj: return layers_[layer].down_proj;
  }
  return layers_[layer].down_proj;  // unreachable: every enumerator is handled above
}

// --load-format dummy: every tensor made in place on the GPU, the values fill_dummy_tensor
// gives on the host rounded once to the dtype, so no weight crosses from the host.
Status CudaExecutor::make_dummy_weights(uint64_t seed) {
  layers_.resize(config_.num_layers);
  const std::vector<LlamaTensor> tensors = llama_tensors(config_);
  std::map<std::pair<int, LlamaWeight>, size_t> fused_numel;
  for (const LlamaTensor& t : tensors) {
    size_t& n = fused_numel[{t.layer, t.weight}];
    n = std::max(n, t.offset + t.numel());
  }
  const size_t esize = cuda::dtype_size(dtype_);
  for (const auto& [where, numel] : fused_numel) {
    STRATA_RETURN_IF_ERROR(allocate(weight_buffer(where.first, where.second), numel * esize,
                                    "dummy weights of layer " + std::to_string(where.first)));
    weight_bytes_ += numel * esize;
  }
  for (const LlamaTensor& t : tensors) {
    void* at = weight_buffer(t.layer, t.weight).data<char>() + t.offset * esize;
    const cuda::LaunchStatus st =
        dummy_tensor_is_ones(t.name)
            ? cuda::fill_constant(1.0f, t.numel(), at, dtype_, stream_)
            : cuda::dummy_normal(dummy_tensor_key(t.name, seed), kDummyWeightStd, t.numel(), at, dtype_, stream_);
    STRATA_RETURN_IF_ERROR(check(st));
  }
  STRATA_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_), "making dummy weights"));
  spdlog::info("{}: made {} of dummy weights on the GPU", device_name_, format_bytes(weight_bytes_));
  return upload_rope_table();
}

Status CudaExecutor::upload_rope_table() {
  const std::vector<float> inv_freq = llama_inv_freq(config_);
  STRATA_RETURN_IF_ERROR(allocate(inv_freq_, inv_freq.size() * sizeof(float), "the RoPE table"));
  return check(cudaMemcpy(inv_freq_.get(), inv_freq.data(), inv_freq_.size_bytes(), cudaMemcpyHostToDevice),
               "copying the RoPE table");
}

Status CudaExecutor::allocate_activations() {
  const ModelConfig& c = config_;
  const size_t t = static_cast<size_t>(max_tokens_), esize = cuda::dtype_size(dtype_);
  const auto rows = [&](DeviceBuffer& m, size_t n, size_t width, const char* what) {
    return allocate(m, n * width * esize, what);
  };
  STRATA_RETURN_IF_ERROR(rows(hidden_, t, c.hidden_size, "the residual stream"));
  STRATA_RETURN_IF_ERROR(rows(normed_, t, c.hidden_size, "normed activations"));
  STRATA_RETURN_IF_ERROR(rows(qkv_, t, qkv_dim_, "q/k/v"));
  STRATA_RETURN_IF_ERROR(rows(attn_out_, t, q_dim_, "attention output"));
  STRATA_RETURN_IF_ERROR(rows(delta_, t, c.hidden_size, "layer outputs"));
  STRATA_RETURN_IF_ERROR(rows(gate_up_, t, 2 * static_cast<size_t>(c.intermediate_size), "gate/up"));
  STRATA_RETURN_IF_ERROR(rows(mlp_act_, t, c.intermediate_size, "MLP activations"));
  STRATA_RETURN_IF_ERROR(rows(logits_rows_, max_seqs_, c.hidden_size, "logits rows"));
  STRATA_RETURN_IF_ERROR(
      allocate(logits_, static_cast<size_t>(max_seqs_) * c.vocab_size * sizeof(float), "logits (fp32)"));
  STRATA_RETURN_IF_ERROR(allocate(logits_host_, logits_.size_bytes(), "logits"));
  const size_t sampled_bytes = static_cast<size_t>(max_seqs_) * (2 + 2 * cuda::kMaxSamplingLogprobs) * sizeof(float);
  STRATA_RETURN_IF_ERROR(allocate(sampled_device_, sampled_bytes, "sampled tokens"));
  STRATA_RETURN_IF_ERROR(allocate(sampled_host_, sampled_bytes, "sampled tokens"));
  STRATA_RETURN_IF_ERROR(allocate(
      attention_workspace_, cuda::paged_attention_workspace_bytes(max_tokens_, c.num_heads, c.head_dim, max_model_len_),
      "the attention workspace"));
  STRATA_RETURN_IF_ERROR(check(
      cuda::paged_attention_clear_workspace(attention_workspace_.get(), attention_workspace_.size_bytes(), stream_),
      "paged_attention_clear_workspace"));
  layout_ = StepLayout(max_tokens_, max_seqs_, max_blocks_per_seq_);
  STRATA_RETURN_IF_ERROR(allocate(step_device_, layout_.total, "step inputs"));
  return allocate(step_host_, layout_.total, "step inputs");
}

Status CudaExecutor::plan_kv_cache(const CudaExecutorOptions& options) {
  const ModelConfig& c = config_;
  block_size_ = options.block_size;
  const size_t block_bytes =
      static_cast<size_t>(block_size_) * c.num_kv_heads * c.head_dim * cuda::dtype_size(dtype_);  // one of K or V
  size_t free_bytes = 0, total_bytes = 0;
  STRATA_RETURN_IF_ERROR(check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo"));
  const double budget = static_cast<double>(total_bytes) * options.gpu_memory_utilization;
  const double in_use = static_cast<double>(total_bytes - free_bytes);  // ours and anyone else's
  const double for_kv = budget - in_use;
  const size_t per_block_all_layers = 2 * block_bytes * c.num_layers;
  int64_t blocks = options.num_kv_blocks;
  const int64_t blocks_that_fit =
      for_kv > 0 ? static_cast<int64_t>(for_kv / static_cast<double>(per_block_all_layers)) : 0;
  if (blocks <= 0) {
    blocks = blocks_that_fit;
    if (options.max_kv_blocks > 0) blocks = std::min<int64_t>(blocks, options.max_kv_blocks);
  }
  // The plan, before the largest allocation: what is taken, what the KV cache gets.
  spdlog::info("{}: memory plan: weights {} + activations and workspaces {} in use ({} of {} taken on the device), "
               "KV cache {} blocks x {} = {}; budget gpu_memory_utilization {} x {} = {}",
               device_name_, format_bytes(weight_bytes_), format_bytes(activation_bytes()),
               format_bytes(static_cast<uint64_t>(in_use)), format_bytes(total_bytes), blocks,
               format_bytes(per_block_all_layers), format_bytes(static_cast<uint64_t>(blocks) * per_block_all_layers),
               options.gpu_memory_utilization, format_bytes(total_bytes), format_bytes(static_cast<uint64_t>(budget)));
  if (options.num_kv_blocks > 0 && blocks > blocks_that_fit) {
    return resource_exhausted(
        "num_kv_blocks " + std::to_string(blocks) + " needs " +
        format_bytes(static_cast<uint64_t>(blocks) * per_block_all_layers) + " of KV cache, but gpu_memory_utilization " +
        std::to_string(options.gpu_memory_utilization) + " of " + format_bytes(total_bytes) + " less the " +
        format_bytes(static_cast<uint64_t>(in_use)) + " in use leaves " +
        format_bytes(static_cast<uint64_t>(std::max(0.0, for_kv))) + " (" + std::to_string(blocks_that_fit) +
        " blocks); lower --num-kv-blocks or raise --gpu-memory-utilization");
  }
  const int64_t one_sequence = (max_model_len_ + block_size_ - 1) / block_size_;
  if (blocks < one_sequence) {
    return resource_exhausted(
        "the model does not leave room for its KV cache: weights " + format_bytes(weight_bytes_) + ", " +
        format_bytes(static_cast<uint64_t>(in_use)) + " of " + format_bytes(total_bytes) + " GPU memory in use; " +
        "gpu_memory_utilization " + std::to_string(options.gpu_memory_utilization) + " leaves " +
        format_bytes(static_cast<uint64_t>(std::max(0.0, for_kv))) + " for " + std::to_string(blocks) +
        " KV blocks, fewer than one sequence of max_model_len " + std::to_string(max_model_len_) + " needs (" +
        std::to_string(one_sequence) + " blocks of " + format_bytes(per_block_all_layers) +
        "); lower max_model_len or max_num_batched_tokens, or raise gpu_memory_utilization");
  }
  num_kv_blocks_ = static_cast<int>(std::min<int64_t>(blocks, INT32_MAX));
  kv_layer_bytes_ = block_bytes * num_kv_blocks_;
  STRATA_RETURN_IF_ERROR(allocate(k_cache_, kv_layer_bytes_ * c.num_layers, "the K cache"));
  return allocate(v_cache_, kv_layer_bytes_ * c.num_layers, "the V cache");
}

Result<std::unique_ptr<ModelExecutor>> CudaExecutor::create(const std::string& model_dir, const ModelConfig& config,
                                                            const CudaExecutorOptions& options) {
  int count = 0;
  STRATA_RETURN_IF_ERROR(check(cudaGetDeviceCount(&count), "no usable CUDA device"));
  if (options.device_index < 0 || options.device_index >= count) {
    return invalid_argument("device cuda:" + std::to_string(options.device_index) + " does not exist (" +
                            std::to_string(count) + " CUDA devices)");
  }
  if (options.block_size <= 0 || options.max_num_batched_tokens <= 0 || options.max_num_seqs <= 0 ||
      options.max_model_len <= 0) {
    return invalid_argument(
        "CUDA executor: block_size, max_num_batched_tokens, max_num_seqs and max_model_len "
        "must be positive");
  }
  std::unique_ptr<CudaExecutor> e(new CudaExecutor());
  e->config_ = config;
  e->device_index_ = options.device_index;
  STRATA_RETURN_IF_ERROR(check(cudaSetDevice(options.device_index), "cudaSetDevice"));
  cudaDeviceProp prop{};
  STRATA_RETURN_IF_ERROR(check(cudaGetDeviceProperties(&prop, options.device_index), "cudaGetDeviceProperties"));
  e->device_name_ = "cuda:" + std::to_string(options.device_index) + " (" + prop.name + ")";
  if (prop.major < 9) {
    return unimplemented(e->device_name_ + " has compute capability " + std::to_string(prop.major) + "." +
                         std::to_string(prop.minor) + "; this build's kernels are for sm_90a (H100/H200)");
  }
  if (options.dtype == "auto") {
    e->dtype_ = config.torch_dtype == "float16" ? cuda::DType::kF16 : cuda::DType::kBF16;
  } else if (options.dtype == "bfloat16" || options.dtype == "float16") {
    e->dtype_ = options.dtype == "float16" ? cuda::DType::kF16 : cuda::DType::kBF16;
  } else {
    return invalid_argument("dtype must be auto, bfloat16 or float16, got '" + options.dtype + "'");
  }
  e->q_dim_ = config.num_heads * config.head_dim;
  e->kv_dim_ = config.num_kv_heads * config.head_dim;
  e->qkv_dim_ = e->q_dim_ + 2 * e->kv_dim_;
  e->max_tokens_ = options.max_num_batched_tokens;
  e->max_seqs_ = options.max_num_seqs;
  e->use_graphs_ = options.cuda_graphs;
  // Decode graph batch sizes: 1, 2, 4, then multiples of 8, up to the largest decode step.
  const int largest_decode = std::min(options.max_num_seqs, options.max_num_batched_tokens);
  for (int n = 1; n < largest_decode; n = n < 8 ? 2 * n : n + 8) e->decode_buckets_.push_back(n);
  e->decode_buckets_.push_back(largest_decode);
  e->max_model_len_ = options.max_model_len;
  e->max_blocks_per_seq_ = (options.max_model_len + options.block_size - 1) / options.block_size;

  // Fail before reading any weight when they cannot fit.
  size_t free_bytes = 0, total_bytes = 0;
  STRATA_RETURN_IF_ERROR(check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo"));
  const uint64_t need = static_cast<uint64_t>(llama_num_parameters(config)) * cuda::dtype_size(e->dtype_);
  const double allowed =
      static_cast<double>(total_bytes) * options.gpu_memory_utilization - static_cast<double>(total_bytes - free_bytes);
  if (static_cast<double>(need) > allowed) {
    return resource_exhausted(model_dir + ": the weights need " + format_bytes(need) + " on " + e->device_name_ +
                              ", but gpu_memory_utilization " + std::to_string(options.gpu_memory_utilization) +
                              " of " + format_bytes(total_bytes) + " leaves " +
                              format_bytes(static_cast<uint64_t>(std::max(0.0, allowed))) +
                              " (use a GPU with more memory, or tensor parallelism)");
  }

  STRATA_RETURN_IF_ERROR(check(cudaStreamCreateWithFlags(&e->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  STRATA_RETURN_IF_ERROR(check(cuda::GemmContext::create(&e->gemm_)));
  STRATA_RETURN_IF_ERROR(e->load_weights(model_dir, options.load));
  STRATA_RETURN_IF_ERROR(e->allocate_activations());
  STRATA_RETURN_IF_ERROR(e->plan_kv_cache(options));
  spdlog::info("{}: weights {} ({}), KV cache {} blocks x {} tokens ({})", e->device_name_,
               format_bytes(e->weight_bytes_), cuda::dtype_name(e->dtype_), e->num_kv_blocks_, e->block_size_,
               format_bytes(e->kv_cache_bytes()));
  return std::unique_ptr<ModelExecutor>(std::move(e));
}

// Checks what the kernels cannot (sizes against the buffers, block ids against the cache)
// and writes the step's metadata into the pinned staging buffer.
Status CudaExecutor::stage_batch(const ForwardBatch& batch, int padded_seqs, int& max_query_len,
                                 int& max_context_len) {
  const int num_tokens = batch.num_tokens();
  const int num_seqs = batch.num_seqs();
  const int num_logits = static_cast<int>(batch.logits_indices.size());
  if (num_tokens < 1 || num_tokens > max_tokens_ || num_seqs < 1 || num_seqs > max_seqs_ || num_logits > max_tokens_) {
    return invalid_argument("forward: " + std::to_string(num_tokens) + " tokens / " + std::to_string(num_seqs) +
                            " sequences / " + std::to_string(num_logits) + " logits rows exceed the sizes planned (" +
                            std::to_string(max_tokens_) + " / " + std::to_string(max_seqs_) + ")");
  }
  if (static_cast<int>(batch.positions.size()) != num_tokens ||
      static_cast<int>(batch.query_start.size()) != num_seqs + 1 ||
      static_cast<int>(batch.block_tables.size()) != num_seqs || batch.query_start[0] != 0 ||
      batch.query_start[num_seqs] != num_tokens) {
    return invalid_argument("forward: malformed batch (positions, query_start or block_tables sizes)");
  }
  char* host = step_host_.data<char>();
  auto* slot_mapping = reinterpret_cast<int64_t*>(host + layout_.slot_mapping);
  auto* block_tables = reinterpret_cast<int32_t*>(host + layout_.block_tables);
  std::memcpy(host + layout_.token_ids, batch.token_ids.data(), sizeof(int32_t) * num_tokens);
  std::memcpy(host + layout_.positions, batch.positions.data(), sizeof(int32_t) * num_tokens);
  std::memcpy(host + layout_.query_start, batch.query_start.data(), sizeof(int32_t) * (num_seqs + 1));
  std::memcpy(host + layout_.context_lens, batch.context_lens.data(), sizeof(int32_t) * num_seqs);
  std::memcpy(host + layout_.logits_indices, batch.logits_indices.data(), sizeof(int32_t) * num_logits);
  max_query_len = 0;
  max_context_len = 0;
  for (int s = 0; s < num_seqs; ++s) {
    const int begin = batch.query_start[s], end = batch.query_start[s + 1];
    const int context_len = batch.context_lens[s];
    const int num_new = end - begin;
    const int blocks = (context_len + block_size_ - 1) / block_size_;
    if (num_new < 1 || context_len < num_new || context_len > max_model_len_ ||
        static_cast<int>(batch.block_tables[s].size()) < blocks) {
      return invalid_argument("forward: sequence " + std::to_string(s) + " has " + std::to_string(num_new) +
                              " new tokens, context_len " + std::to_string(context_len) + " and " +
                              std::to_string(batch.block_tables[s].size()) + " blocks");
    }
    max_query_len = std::max(max_query_len, num_new);
    max_context_len = std::max(max_context_len, context_len);
    int32_t* table = block_tables + static_cast<size_t>(s) * max_blocks_per_seq_;
    for (int b = 0; b < blocks; ++b) {
      const int32_t block = batch.block_tables[s][b];
      if (block < 0 || block >= num_kv_blocks_) {
        return invalid_argument("forward: sequence " + std::to_string(s) + " block " + std::to_string(block) +
                                " is outside the KV cache's " + std::to_string(num_kv_blocks_) + " blocks");
      }
      table[b] = block;
    }
    std::fill(table + blocks, table + max_blocks_per_seq_, 0);
    const int first_slot = context_len - num_new;
    for (int t = begin; t < end; ++t) {
      const int slot = first_slot + (t - begin);
      slot_mapping[t] = static_cast<int64_t>(table[slot / block_size_]) * block_size_ + slot % block_size_;
    }
  }
  for (int i = 0; i < num_logits; ++i) {
    if (batch.logits_indices[i] < 0 || batch.logits_indices[i] >= num_tokens) {
      return invalid_argument("forward: logits_indices[" + std::to_string(i) + "] is not a token of the batch");
    }
  }
  // Padding of a decode graph's batch: one token per extra sequence, written nowhere (slot -1),
  // attending to slot 0 of block 0 (context 1), its logits row computed and dropped.
  auto* token_ids = reinterpret_cast<int32_t*>(host + layout_.token_ids);
  auto* positions = reinterpret_cast<int32_t*>(host + layout_.positions);
  auto* query_start = reinterpret_cast<int32_t*>(host + layout_.query_start);
  auto* context_lens = reinterpret_cast<int32_t*>(host + layout_.context_lens);
  auto* logits_indices = reinterpret_cast<int32_t*>(host + layout_.logits_indices);
  for (int s = num_seqs; s < padded_seqs; ++s) {
    token_ids[s] = 0;
    positions[s] = 0;
    slot_mapping[s] = -1;
    query_start[s + 1] = s + 1;
    context_lens[s] = 1;
    logits_indices[s] = s;
    std::fill(block_tables + static_cast<size_t>(s) * max_blocks_per_seq_,
              block_tables + static_cast<size_t>(s + 1) * max_blocks_per_seq_, 0);
  }
  return Status::ok_status();
}

// Stages the batch and enqueues its forward, with lm_head over the first max_seqs_ logits
// rows into logits_; returns before the GPU is done.
Status CudaExecutor::launch_step(const ForwardBatch& batch) {
  const int num_tokens = batch.num_tokens();
  const int num_seqs = batch.num_seqs();
  const int num_logits = static_cast<int>(batch.logits_indices.size());
  // A decode step (one new token and one logits row per sequence, in order) replays a graph.
  bool decode = use_graphs_ && num_tokens == num_seqs && num_logits == num_seqs && num_seqs <= decode_buckets_.back();
  for (int i = 0; decode && i < num_logits; ++i) decode = batch.logits_indices[i] == i;
  int max_query_len = 0, max_context_len = 0;
  STRATA_RETURN_IF_ERROR(stage_batch(batch, decode ? decode_bucket(num_seqs) : num_seqs, max_query_len,
                                     max_context_len));
  STRATA_RETURN_IF_ERROR(check(cudaSetDevice(device_index_), "cudaSetDevice"));
  STRATA_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(step_device_.get(), step_host_.data<char>(), layout_.total, cudaMemcpyHostToDevice, stream_),
      "copying step inputs"));
  const int first_rows = std::min(num_logits, max_seqs_);
  if (decode) return launch_decode_graph(num_seqs, max_context_len);
  STRATA_RETURN_IF_ERROR(enqueue_forward(num_tokens, num_seqs, max_query_len, max_context_len, first_rows));
  // GEMM plans are cached per row count, so a server's memory grows as steps of new sizes
  // arrive (an LRU bounds it); the debug log shows by how much, for soaks.
  if (const size_t plans = gemm_->num_cached_plans(); plans >= logged_gemm_plans_ + 100) {
    logged_gemm_plans_ = plans;
    spdlog::debug("{}: {} GEMM plans cached", device_name_, plans);
  }
  return Status::ok_status();
}

Status CudaExecutor::forward(const ForwardBatch& batch, std::span<float> logits) {
  const ModelConfig& c = config_;
  const int num_tokens = batch.num_tokens();
  const int num_logits = static_cast<int>(batch.logits_indices.size());
  if (logits.size() != static_cast<size_t>(num_logits) * c.vocab_size) {
    return invalid_argument("forward: logits buffer holds " + std::to_string(logits.size()) + " floats, expected " +
                            std::to_string(num_logits) + " x " + std::to_string(c.vocab_size));
  }
  STRATA_RETURN_IF_ERROR(launch_step(batch));
  if (num_logits == 0) return check(cudaStreamSynchronize(stream_), "forward");
  // lm_head max_seqs_ rows at a time (decode asks for one row per sequence; teacher-forced
  // scoring for every token); the first chunk came with the forward.
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  for (int first = 0; first < num_logits; first += max_seqs_) {
    const int rows = std::min(max_seqs_, num_logits - first);
    if (first > 0) STRATA_RETURN_IF_ERROR(enqueue_logits(first, rows, num_tokens));
    STRATA_RETURN_IF_ERROR(check(cudaMemcpyAsync(logits_host_.data<float>(), logits_.get(),
                                                 rows * vocab * sizeof(float), cudaMemcpyDeviceToHost, stream_),
                                 "copying logits"));
    STRATA_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_), "forward"));
    std::memcpy(logits.data() + first * vocab, logits_host_.data<float>(), rows * vocab * sizeof(float));
  }
  return Status::ok_status();
}

Status CudaExecutor::forward_and_sample(const ForwardBatch& batch, std::span<const SamplingRequest> rows,
                                        std::span<SampledToken> tokens) {
  const int num_rows = static_cast<int>(rows.size());
  if (rows.size() != batch.logits_indices.size() || tokens.size() != rows.size()) {
    return invalid_argument("forward_and_sample: " + std::to_string(rows.size()) + " sampling rows and " +
                            std::to_string(tokens.size()) + " outputs for " +
                            std::to_string(batch.logits_indices.size()) + " logits rows");
  }
  if (num_rows > max_seqs_) {
    return invalid_argument("forward_and_sample: " + std::to_string(num_rows) + " rows exceed max_num_seqs " +
                            std::to_string(max_seqs_));
  }
  STRATA_RETURN_IF_ERROR(launch_step(batch));
  if (num_rows == 0) return check(cudaStreamSynchronize(stream_), "forward");
  // The host packs the sampling inputs while the GPU runs the forward.
  cuda::SamplingBatch sampling;
  STRATA_RETURN_IF_ERROR(stage_sampling(rows, sampling));
  const int top = sampling.max_num_logprobs;
  auto* out = sampled_device_.data<char>();
  const size_t n = static_cast<size_t>(num_rows);
  cuda::SamplingOutputs outputs;
  outputs.token_ids = reinterpret_cast<int32_t*>(out);
  outputs.logprobs = reinterpret_cast<float*>(out + n * 4);
  outputs.top_token_ids = top > 0 ? reinterpret_cast<int32_t*>(out + 2 * n * 4) : nullptr;
  outputs.top_logprobs = top > 0 ? reinterpret_cast<float*>(out + (2 + top) * n * 4) : nullptr;
  STRATA_RETURN_IF_ERROR(check(cuda::sample_tokens(sampling, outputs, sampling_workspace_.get(),
                                                   sampling_workspace_.size_bytes(), stream_)));
  const size_t bytes = n * (2 + 2 * static_cast<size_t>(top)) * 4;
  STRATA_RETURN_IF_ERROR(check(
      cudaMemcpyAsync(sampled_host_.get(), sampled_device_.get(), bytes, cudaMemcpyDeviceToHost, stream_),
      "copying sampled tokens"));
  STRATA_RETURN_IF_ERROR(check(cudaStreamSynchronize(stream_), "forward and sample"));

  const char* host = sampled_host_.data<char>();
  const auto* token_ids = reinterpret_cast<const int32_t*>(host);
  const auto* logprobs = reinterpret_cast<const float*>(host + n * 4);
  const auto* top_ids = reinterpret_cast<const int32_t*>(host + 2 * n * 4);
  const auto* top_logprobs = reinterpret_cast<const float*>(host + (2 + top) * n * 4);
  for (size_t i = 0; i < n; ++i) {
    SampledToken& t = tokens[i];
    t.token_id = token_ids[i];
    t.logprob = logprobs[i];
    t.top.clear();
    const int wanted = rows[i].params->logprobs;
    for (int k = 0; k < std::min(wanted, top); ++k) {
      const size_t slot = i * top + k;
      if (top_ids[slot] < 0) break;
      t.top.push_back({top_ids[slot], top_logprobs[slot]});
    }
  }
  return Status::ok_status();
}

// Packs one SamplingRow per request (and its logit bias, masked stop ids and penalty tokens)
// and enqueues their copy to the GPU; fills `sampling` with the device pointers.
Status CudaExecutor::stage_sampling(std::span<const SamplingRequest> rows, cuda::SamplingBatch& sampling) {
  sampling_rows_.clear();
  logit_bias_.clear();
  stop_ids_.clear();
  penalty_tokens_.clear();
  int max_logprobs = 0;
  const int32_t vocab = config_.vocab_size;
  for (const SamplingRequest& request : rows) {
    const SamplingParams& p = *request.params;
    const SamplingContext& ctx = request.context;
    cuda::SamplingRow row;
    row.temperature = p.temperature;
    row.top_p = p.top_p;
    row.min_p = p.min_p;
    row.repetition_penalty = p.repetition_penalty;
    row.frequency_penalty = p.frequency_penalty;
    row.presence_penalty = p.presence_penalty;
    row.top_k = p.top_k;
    row.greedy = is_greedy(p) ? 1 : 0;
    row.num_logprobs = std::min(p.logprobs, cuda::kMaxSamplingLogprobs);
    max_logprobs = std::max(max_logprobs, row.num_logprobs);
    row.logit_bias_begin = static_cast<int32_t>(logit_bias_.size());
    for (const auto& [token, bias] : p.logit_bias) logit_bias_.push_back({token, bias});
    row.logit_bias_end = static_cast<int32_t>(logit_bias_.size());
    row.mask_stop_tokens = ctx.output_ids.size() < static_cast<size_t>(std::max(p.min_tokens, 0)) ? 1 : 0;
    row.stop_begin = static_cast<int32_t>(stop_ids_.size());
    if (row.mask_stop_tokens != 0) {
      stop_ids_.insert(stop_ids_.end(), ctx.eos_ids.begin(), ctx.eos_ids.end());
      stop_ids_.insert(stop_ids_.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
    }
    row.stop_end = static_cast<int32_t>(stop_ids_.size());
    row.penalty_begin = static_cast<int32_t>(penalty_tokens_.size());
    if (p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
      cuda::append_penalty_tokens(ctx.prompt_ids.data(), ctx.prompt_ids.size(), ctx.output_ids.data(),
                                  ctx.output_ids.size(), vocab, &penalty_tokens_);
    }
    row.penalty_end = static_cast<int32_t>(penalty_tokens_.size());
    row.uniform = row.greedy != 0 ? 0.0 : sampling_uniform(ctx.seed, ctx.output_ids.size());
    sampling_rows_.push_back(row);
  }

  // One pinned buffer, sections 256-byte aligned: rows, logit bias, stop ids, penalty tokens.
  size_t at = 0;
  const auto take = [&at](size_t bytes) {
    const size_t offset = at;
    at += (bytes + 255) / 256 * 256;
    return offset;
  };
  const size_t rows_at = take(sampling_rows_.size() * sizeof(cuda::SamplingRow));
  const size_t bias_at = take(logit_bias_.size() * sizeof(cuda::SamplingLogitBias));
  const size_t stop_at = take(stop_ids_.size() * sizeof(int32_t));
  const size_t penalty_at = take(penalty_tokens_.size() * sizeof(cuda::SamplingPenaltyToken));
  if (sampling_host_.size_bytes() < at) {
    STRATA_RETURN_IF_ERROR(allocate(sampling_host_, 2 * at, "sampling inputs"));
    STRATA_RETURN_IF_ERROR(allocate(sampling_device_, 2 * at, "sampling inputs"));
  }
  char* host = sampling_host_.data<char>();
  const auto put = [host](size_t offset, const auto& values) {
    if (!values.empty()) std::memcpy(host + offset, values.data(), values.size() * sizeof(values[0]));
  };
  put(rows_at, sampling_rows_);
  put(bias_at, logit_bias_);
  put(stop_at, stop_ids_);
  put(penalty_at, penalty_tokens_);
  STRATA_RETURN_IF_ERROR(
      check(cudaMemcpyAsync(sampling_device_.get(), host, at, cudaMemcpyHostToDevice, stream_), "copying sampling inputs"));

  char* device = sampling_device_.data<char>();
  sampling.logits = logits_.data<float>();
  sampling.num_rows = static_cast<int>(sampling_rows_.size());
  sampling.vocab_size = vocab;
  sampling.rows = reinterpret_cast<const cuda::SamplingRow*>(device + rows_at);
  sampling.logit_bias = reinterpret_cast<const cuda::SamplingLogitBias*>(device + bias_at);
  sampling.num_logit_bias = static_cast<int64_t>(logit_bias_.size());
  sampling.stop_token_ids = reinterpret_cast<const int32_t*>(device + stop_at);
  sampling.num_stop_token_ids = static_cast<int64_t>(stop_ids_.size());
  sampling.penalty_tokens = reinterpret_cast<const cuda::SamplingPenaltyToken*>(device + penalty_at);
  sampling.num_penalty_tokens = static_cast<int64_t>(penalty_tokens_.size());
  sampling.max_num_logprobs = max_logprobs;
  const size_t workspace = cuda::sampling_workspace_bytes(sampling);
  if (sampling_workspace_.size_bytes() < workspace) {
    STRATA_RETURN_IF_ERROR(allocate(sampling_workspace_, 2 * workspace, "the sampling workspace"));
  }
  return Status::ok_status();
}

Status CudaExecutor::launch_decode_graph(int num_seqs, int max_context_len) {
  const int padded = decode_bucket(num_seqs);
  int context_bucket = 256;
  while (context_bucket < max_context_len) context_bucket *= 2;
  context_bucket = std::min(context_bucket, max_model_len_);
  auto it = decode_graphs_.find({padded, context_bucket});
  if (it == decode_graphs_.end()) {
    STRATA_RETURN_IF_ERROR(check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed), "capturing a graph"));
    const Status enqueued = enqueue_forward(padded, padded, 1, context_bucket, padded);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    STRATA_RETURN_IF_ERROR(enqueued);
    STRATA_RETURN_IF_ERROR(check(ended, "capturing the decode graph"));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    STRATA_RETURN_IF_ERROR(check(instantiated, "instantiating the decode graph for batch " + std::to_string(padded)));
    it = decode_graphs_.emplace(std::make_pair(padded, context_bucket), exec).first;
    spdlog::debug("{}: captured the decode graph for batch {} and context {}", device_name_, padded, context_bucket);
  }
  return check(cudaGraphLaunch(it->second, stream_), "launching the decode graph");
}

// The staged step's forward on stream_: every layer, the final norm, and lm_head over the
// first `logits_rows` (<= max_seqs_) logits rows. Only launches: capturable into a graph.
Status CudaExecutor::enqueue_forward(int num_tokens, int num_seqs, int max_query_len, int max_context_len,
                                     int logits_rows) {
  const ModelConfig& c = config_;
  char* step = step_device_.data<char>();
  const auto* token_ids = reinterpret_cast<const int32_t*>(step + layout_.token_ids);
  const auto* positions = reinterpret_cast<const int32_t*>(step + layout_.positions);
  const auto* slot_mapping = reinterpret_cast<const int64_t*>(step + layout_.slot_mapping);
  const auto* query_start = reinterpret_cast<const int32_t*>(step + layout_.query_start);
  const auto* context_lens = reinterpret_cast<const int32_t*>(step + layout_.context_lens);
  const auto* block_tables = reinterpret_cast<const int32_t*>(step + layout_.block_tables);

  const cuda::DType dt = dtype_;
  const size_t esize = cuda::dtype_size(dt);
  const int hidden = c.hidden_size, inter = c.intermediate_size;
  const float eps = c.rms_norm_eps;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const int sliding_window = c.sliding_window.value_or(0);
  const int64_t num_slots = static_cast<int64_t>(num_kv_blocks_) * block_size_;

  STRATA_RETURN_IF_ERROR(check(cuda::embedding_lookup(token_ids, num_tokens, embed_tokens_.get(), c.vocab_size, hidden,
                                                      hidden_.get(), dt, stream_)));
  for (int l = 0; l < c.num_layers; ++l) {
    const DeviceLayer& w = layers_[l];
    // The previous layer's MLP output joins the residual stream here, fused with this norm.
    if (l == 0) {
      STRATA_RETURN_IF_ERROR(check(
          cuda::rms_norm(hidden_.get(), w.input_norm.get(), normed_.get(), num_tokens, hidden, eps, dt, stream_)));
    } else {
      STRATA_RETURN_IF_ERROR(check(cuda::fused_add_rms_norm(hidden_.get(), delta_.get(), w.input_norm.get(),
                                                            normed_.get(), num_tokens, hidden, eps, dt, stream_)));
    }
    // Attention: fused qkv rows [q | k | v]; q and k are normalized and rotated in place.
    char* q = qkv_.data<char>();
    char* k = q + static_cast<size_t>(q_dim_) * esize;
    char* v = k + static_cast<size_t>(kv_dim_) * esize;
    STRATA_RETURN_IF_ERROR(check(gemm_->linear(normed_.get(), w.qkv_proj.get(), or_null(w.qkv_bias), q, num_tokens,
                                               hidden, qkv_dim_, dt, stream_)));
    if (c.qk_norm) {
      STRATA_RETURN_IF_ERROR(check(
          cuda::head_rms_norm(q, num_tokens, c.num_heads, c.head_dim, qkv_dim_, w.q_norm.get(), eps, dt, stream_)));
      STRATA_RETURN_IF_ERROR(check(
          cuda::head_rms_norm(k, num_tokens, c.num_kv_heads, c.head_dim, qkv_dim_, w.k_norm.get(), eps, dt, stream_)));
    }
    // RoPE on q and k, then k and v into the cache, in one launch.
    STRATA_RETURN_IF_ERROR(check(cuda::rope_and_write_kv(
        q, qkv_dim_, c.num_heads, k, qkv_dim_, v, qkv_dim_, c.num_kv_heads, positions, slot_mapping, num_tokens,
        c.head_dim, inv_freq_.data<float>(), k_cache(l), v_cache(l), num_slots, dt, stream_)));
    STRATA_RETURN_IF_ERROR(check(
        cuda::paged_attention(attn_out_.get(), q, qkv_dim_, k_cache(l), v_cache(l), block_tables, max_blocks_per_seq_,
                              query_start, context_lens, num_seqs, num_tokens, max_query_len, max_context_len,
                              c.num_heads, c.num_kv_heads, c.head_dim, block_size_, scale, sliding_window,
                              attention_workspace_.get(), attention_workspace_.size_bytes(), dt, stream_)));
    STRATA_RETURN_IF_ERROR(check(gemm_->linear(attn_out_.get(), w.o_proj.get(), or_null(w.o_bias), delta_.get(),
                                               num_tokens, q_dim_, hidden, dt, stream_)));
    // MLP: down(silu(gate(x)) * up(x)); one token's SwiGLU runs in the gate_up GEMV's epilogue.
    STRATA_RETURN_IF_ERROR(check(cuda::fused_add_rms_norm(hidden_.get(), delta_.get(), w.post_norm.get(), normed_.get(),
                                                          num_tokens, hidden, eps, dt, stream_)));
    STRATA_RETURN_IF_ERROR(check(gemm_->linear_silu_and_mul(normed_.get(), w.gate_up_proj.get(), gate_up_.get(),
                                                            mlp_act_.get(), num_tokens, hidden, inter, dt, stream_)));
    STRATA_RETURN_IF_ERROR(check(gemm_->linear(mlp_act_.get(), w.down_proj.get(), nullptr, delta_.get(), num_tokens,
                                               inter, hidden, dt, stream_)));
  }
  if (logits_rows == 0) return Status::ok_status();
  STRATA_RETURN_IF_ERROR(check(cuda::fused_add_rms_norm(hidden_.get(), delta_.get(), final_norm_.get(), normed_.get(),
                                                        num_tokens, hidden, eps, dt, stream_)));
  return enqueue_logits(0, logits_rows, num_tokens);
}

// lm_head over logits rows [first_row, first_row + rows) of the final-normed tokens.
Status CudaExecutor::enqueue_logits(int first_row, int rows, int num_tokens) {
  const ModelConfig& c = config_;
  const auto* logits_indices = reinterpret_cast<const int32_t*>(step_device_.data<char>() + layout_.logits_indices);
  STRATA_RETURN_IF_ERROR(check(cuda::embedding_lookup(logits_indices + first_row, rows, normed_.get(), num_tokens,
                                                      c.hidden_size, logits_rows_.get(), dtype_, stream_)));
  const void* lm_head = lm_head_.size_bytes() == 0 ? embed_tokens_.get() : lm_head_.get();
  STRATA_RETURN_IF_ERROR(check(gemm_->linear_f32_out(logits_rows_.get(), lm_head, logits_.data<float>(), rows,
                                                     c.hidden_size, c.vocab_size, dtype_, stream_)));
  // The logits are the model dtype's values, as transformers' and vLLM's lm_head give them (ties
  // in bf16 then break toward the lower id for every argmax), held in fp32 for the sampler.
  return check(cuda::round_to_dtype(logits_.data<float>(), static_cast<int64_t>(rows) * c.vocab_size, dtype_, stream_));
}

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / insufficient driver" error
    return 0;
  }
  return count;
}

Result<std::unique_ptr<ModelExecutor>> make_cuda_executor(const std::string& model_dir, const ModelConfig& config,
                                                          const CudaExecutorOptions& options) {
  return CudaExecutor::create(model_dir, config, options);
}

}  // namespace strata
