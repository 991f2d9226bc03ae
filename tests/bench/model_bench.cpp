// strata_bench_model: end-to-end forward speed of the CUDA executor on a model shape with
// dummy weights (default: configs/models/llama-3.1-8b, the Llama-3-8B
// shape with room for 16K prompts), against the bandwidth roofline.
//   decode: batches of B sequences at context C, one token each per step; ms per step against
//           (weight bytes + KV bytes read) / copy bandwidth measured in the same run;
//   prefill: one prompt of P tokens in chunks of --chunk tokens; tokens per second.
// A decode step is timed twice: ModelExecutor::forward_and_sample as the engine calls it (host
// staging, kernels, greedy sampling on the GPU, token ids back, synchronize) and
// ModelExecutor::forward (fp32 logits of every sequence back to the host instead); prefill
// chunks through forward. The KV cache holds whatever the allocator left there: the
// contents do not change the work done. The table prints last; --json writes every number.
// Usage: strata_bench_model [--model DIR] [--batches 1,8,64,256] [--context 1024] [--steps 32]
//                           [--prefill 2048,16384] [--chunk 2048] [--enforce-eager] [--json FILE]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "engine/cuda/cuda_executor.h"
#include "engine/model/llama_weights.h"
#include "engine/model/model_config.h"
#include "kernels/cuda/device_buffer.h"

namespace strata::bench {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "strata_bench_model: %s\n", message.c_str());
  std::exit(1);
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::stoi(item));
  }
  return out;
}

struct Options {
  std::string model = "configs/models/llama-3.1-8b";  // the Llama-3-8B shape, 128K positions
  std::vector<int> batches = {1, 8, 64, 256};
  int context = 1024;
  int steps = 32;
  std::vector<int> prefill = {2048, 16384};
  int chunk = 2048;
  std::string json_path;
  bool eager = false;  // --enforce-eager: no CUDA graphs for decode steps
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--model")
      o.model = value();
    else if (flag == "--batches")
      o.batches = parse_list(value());
    else if (flag == "--context")
      o.context = std::stoi(value());
    else if (flag == "--steps")
      o.steps = std::stoi(value());
    else if (flag == "--prefill")
      o.prefill = parse_list(value());
    else if (flag == "--chunk")
      o.chunk = std::stoi(value());
    else if (flag == "--enforce-eager")
      o.eager = true;
    else if (flag == "--json")
      o.json_path = value();
    else
      die("unknown flag " + flag);
  }
  if (o.batches.empty() || o.context < 1 || o.steps < 2 || o.chunk < 1) die("bad --batches/--context/--steps/--chunk");
  return o;
}

// Device-to-device copy bandwidth (bytes read + written per second) over 2 GiB, best of 10.
double copy_bandwidth() {
  const size_t bytes = size_t{2} << 30;
  cuda::DeviceBuffer a, b;
  if (!cuda::DeviceBuffer::create(&a, bytes).ok() || !cuda::DeviceBuffer::create(&b, bytes).ok()) {
    die("cannot allocate the copy buffers");
  }
  cudaMemset(a.get(), 1, bytes);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  float best_ms = 1e30f;
  for (int rep = 0; rep < 13; ++rep) {
    cudaEventRecord(start);
    cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    if (rep >= 3) best_ms = std::min(best_ms, ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  if (cudaGetLastError() != cudaSuccess) die("the copy benchmark failed");
  return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3);
}

// B sequences of `context` tokens already cached, one new token each, in disjoint blocks.
ForwardBatch decode_batch(int batch, int context, int block_size, int vocab) {
  ForwardBatch b;
  const int blocks_per_seq = (context + block_size - 1) / block_size;
  b.query_start.push_back(0);
  for (int s = 0; s < batch; ++s) {
    b.token_ids.push_back((s * 7919 + 13) % vocab);
    b.positions.push_back(context - 1);
    b.query_start.push_back(s + 1);
    b.context_lens.push_back(context);
    b.logits_indices.push_back(s);
    std::vector<int32_t> table(blocks_per_seq);
    for (int i = 0; i < blocks_per_seq; ++i) table[i] = s * blocks_per_seq + i;
    b.block_tables.push_back(std::move(table));
  }
  return b;
}

}  // namespace
}  // namespace strata::bench

int main(int argc, char** argv) {
  using namespace strata;
  using namespace strata::bench;
  const Options o = parse(argc, argv);
  auto config = load_model_config(o.model);
  if (!config.ok()) die(config.status().to_string());
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  const int max_prefill = o.prefill.empty() ? 0 : *std::max_element(o.prefill.begin(), o.prefill.end());
  const int max_len = std::max(o.context, max_prefill);
  if (max_len > config->max_position_embeddings) die("--context/--prefill exceed max_position_embeddings");

  const double copy_bw = copy_bandwidth();
  std::printf("copy bandwidth: %.0f GB/s (read + write)\n", copy_bw / 1e9);

  CudaExecutorOptions options;
  options.max_num_batched_tokens = std::max(max_batch, std::min(o.chunk, std::max(1, max_prefill)));
  options.max_num_seqs = max_batch;
  options.max_model_len = max_len;
  options.load.format = LoadFormat::kDummy;
  options.cuda_graphs = !o.eager;
  const auto t_load = Clock::now();
  auto executor = make_cuda_executor(o.model, *config, options);
  if (!executor.ok()) die(executor.status().to_string());
  ModelExecutor& e = **executor;
  std::printf("%s: weights %s, KV %d blocks (%s), loaded in %.1f s\n", e.device_name().c_str(),
              format_bytes(e.weight_bytes()).c_str(), e.num_kv_blocks(), format_bytes(e.kv_cache_bytes()).c_str(),
              std::chrono::duration<double>(Clock::now() - t_load).count());
  const int block_size = e.block_size();
  const double kv_bytes_per_token = 2.0 * config->num_layers * config->num_kv_heads * config->head_dim * 2 /* bf16 */;

  nlohmann::json report = {{"model", o.model},
                           {"device", e.device_name()},
                           {"copy_bandwidth_Bps", copy_bw},
                           {"weight_bytes", e.weight_bytes()},
                           {"cuda_graphs", !o.eager},
                           {"decode", nlohmann::json::array()},
                           {"prefill", nlohmann::json::array()}};
  struct Row {
    std::string what;
    double ms, roofline_ms, tokens_per_s;
  };
  std::vector<Row> rows;

  for (const int batch : o.batches) {
    const int blocks_needed = batch * ((o.context + block_size - 1) / block_size);
    if (blocks_needed > e.num_kv_blocks()) {
      std::printf("decode batch %d at context %d: needs %d KV blocks, %d exist; skipped\n", batch, o.context,
                  blocks_needed, e.num_kv_blocks());
      continue;
    }
    const ForwardBatch b = decode_batch(batch, o.context, block_size, config->vocab_size);
    std::vector<float> logits(static_cast<size_t>(batch) * config->vocab_size);
    SamplingParams greedy;
    greedy.temperature = 0.0f;
    const std::vector<SamplingRequest> sampling(batch, SamplingRequest{&greedy, {}});
    std::vector<SampledToken> sampled(batch);
    // Median and best ms of o.steps steps after 3 warm-up ones.
    const auto time_steps = [&](auto&& step_once) {
      std::vector<double> step_ms;
      for (int step = 0; step < o.steps + 3; ++step) {
        const auto t0 = Clock::now();
        const Status st = step_once();
        if (!st.ok()) die("decode batch " + std::to_string(batch) + ": " + st.to_string());
        if (step >= 3) step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      std::sort(step_ms.begin(), step_ms.end());
      return std::pair<double, double>{step_ms[step_ms.size() / 2], step_ms.front()};
    };
    const auto [median, best] = time_steps([&] { return e.forward_and_sample(b, sampling, sampled); });
    const auto [median_host, best_host] = time_steps([&] { return e.forward(b, logits); });
    const double bytes = static_cast<double>(e.weight_bytes()) + kv_bytes_per_token * batch * o.context;
    const double roofline_ms = bytes / copy_bw * 1e3;
    const std::string what = "decode b=" + std::to_string(batch) + " ctx=" + std::to_string(o.context);
    rows.push_back({what + ", GPU sampling", median, roofline_ms, batch / (median * 1e-3)});
    rows.push_back({what + ", logits to host", median_host, roofline_ms, batch / (median_host * 1e-3)});
    report["decode"].push_back({{"batch", batch},
                                {"context", o.context},
                                {"median_ms", median},
                                {"best_ms", best},
                                {"logits_to_host_median_ms", median_host},
                                {"logits_to_host_best_ms", best_host},
                                {"roofline_ms", roofline_ms},
                                {"bytes", bytes}});
  }

  for (const int prompt : o.prefill) {
    const int blocks = (prompt + block_size - 1) / block_size;
    if (blocks > e.num_kv_blocks()) {
      std::printf("prefill %d: needs %d KV blocks, %d exist; skipped\n", prompt, blocks, e.num_kv_blocks());
      continue;
    }
    std::vector<int32_t> table(blocks);
    for (int i = 0; i < blocks; ++i) table[i] = i;
    std::vector<float> logits(config->vocab_size);
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = Clock::now();
      for (int done = 0; done < prompt;) {
        const int n = std::min(options.max_num_batched_tokens, prompt - done);
        ForwardBatch b;
        for (int t = done; t < done + n; ++t) {
          b.token_ids.push_back((t * 31 + 7) % config->vocab_size);
          b.positions.push_back(t);
        }
        b.query_start = {0, n};
        b.context_lens = {done + n};
        b.block_tables = {table};
        b.logits_indices = {n - 1};
        const Status st = e.forward(b, logits);
        if (!st.ok()) die("prefill " + std::to_string(prompt) + ": " + st.to_string());
        done += n;
      }
      best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    rows.push_back(
        {"prefill " + std::to_string(prompt) + " (chunks of " + std::to_string(options.max_num_batched_tokens) + ")",
         best, 0.0, prompt / (best * 1e-3)});
    report["prefill"].push_back({{"prompt_tokens", prompt},
                                 {"chunk", options.max_num_batched_tokens},
                                 {"best_ms", best},
                                 {"tokens_per_s", prompt / (best * 1e-3)}});
  }

  if (!o.json_path.empty()) std::ofstream(o.json_path) << report.dump(1) << "\n";
  std::printf("\n%-48s %12s %12s %10s %14s\n", "step", "ms", "roofline ms", "of roof", "tokens/s");
  for (const Row& r : rows) {
    if (r.roofline_ms > 0) {
      std::printf("%-48s %12.3f %12.3f %9.0f%% %14.0f\n", r.what.c_str(), r.ms, r.roofline_ms,
                  100.0 * r.roofline_ms / r.ms, r.tokens_per_s);
    } else {
      std::printf("%-48s %12.3f %12s %10s %14.0f\n", r.what.c_str(), r.ms, "-", "-", r.tokens_per_s);
    }
  }
  return 0;
}
