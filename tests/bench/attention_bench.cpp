// strata_bench_attention: cuda::paged_attention on one layer's attention shape (Llama-3-8B by
// default: 32 query heads, 8 KV heads of 128, bf16, KV blocks of 16 slots), in one run:
// (a) the copy ceiling (measure_copy_rates, as strata_bench_ceilings: cudaMemcpyAsync and two
//     copy kernels, bytes read + written); the best median GB/s of the three is the ceiling;
// (b) decode: B sequences of C cached tokens, one new query token each, for each C in
//     --contexts and B in --batches. Bytes = K and V of every context token of every sequence
//     plus q read and out written; GB/s and its ratio to the copy ceiling. Every block table is
//     a random draw of blocks from the cache (non-contiguous, as after a while of serving); when
//     one batch's KV is small, calls rotate over several sets of blocks (and q/out) until 4x L2
//     (>= 256 MiB) has passed, so the KV comes from device memory, not L2. Repetitions replay a
//     CUDA graph of the calls, as the engine replays decode steps (--no-graph: stream launches).
//     Each decode case also times a copy that moves its bytes (half read, half written) per
//     call, rotating over sets in the same way and timed the same way (the fastest of
//     cudaMemcpyAsync and the copy kernels): what a call of that size reaches when it does
//     nothing but stream, against which the fixed cost of one attention call shows;
// (c) prefill: one sequence of L new tokens, causal, query = context = L, for each L in
//     --prefill; TFLOP/s counting 4*L*L*num_heads*head_dim/2 FLOPs (Q K^T and P V, 2 FLOPs per
//     multiply-add, half of the L x L square for the causal mask). Stream launches.
// Inputs are uniform in [-1, 1); outputs are poisoned (NaN) before timing and checked after:
// every element finite and inside V's range (an attention row is a convex combination of V
// rows). CUDA-event times, median and best of --reps repetitions after warm-ups. The table
// prints last; --json FILE writes every number.
// Usage: strata_bench_attention [--json FILE] [--num-heads 32] [--num-kv-heads 8] [--head-dim 128]
//          [--block-size 16] [--dtype bf16|f16] [--contexts 1024,8192,32768] [--batches 1,64]
//          [--prefill 1024,8192,32768] [--reps 20] [--warmups 3] [--copy-gib 2] [--seed 1]
//          [--no-graph] [--skip-decode] [--skip-prefill]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/paged_attention.h"
#include "tests/bench/bench_kernels.h"

namespace strata::bench {
namespace {

using cuda::DeviceBuffer;
using cuda::DType;
using cuda::LaunchStatus;

constexpr double kGiB = double(1ull << 30);
constexpr double kTargetRepMs = 2.0;                  // one repetition lasts at least this long
constexpr size_t kHeadroomBytes = size_t(256) << 20;  // CUDA context, cuBLASLt, graphs, fragmentation
constexpr int kMaxKvSets = 64;

struct Options {
  std::string json_path;
  int num_heads = 32;
  int num_kv_heads = 8;
  int head_dim = 128;
  int block_size = 16;
  DType dtype = DType::kBF16;
  std::vector<int> contexts = {1024, 8192, 32768};
  std::vector<int> batches = {1, 64};
  std::vector<int> prefill_lens = {1024, 8192, 32768};
  int reps = 20;
  int warmups = 3;
  double copy_gib = 2.0;
  uint64_t seed = 1;
  bool use_graphs = true;
  bool run_decode = true;
  bool run_prefill = true;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "strata_bench_attention: %s\n", message.c_str());
  std::exit(1);
}

void check(const LaunchStatus& status) {
  if (!status.ok()) die(status.message);
}

void check(cudaError_t error, const char* what) { check(cuda_status(error, what)); }

std::string gib(double bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f GiB", bytes / kGiB);
  return text;
}

DeviceBuffer allocate(size_t bytes, const std::string& what) {
  DeviceBuffer buffer;
  const LaunchStatus status = DeviceBuffer::create(&buffer, bytes);
  if (!status.ok()) {
    die(what + ": " + status.message + " (device memory short: lower --batches, --contexts or --prefill)");
  }
  return buffer;
}

long parse_int(const std::string& flag, const std::string& text, long lo, long hi) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || value < lo || value > hi) {
    die(flag + " " + text + ": want a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return value;
}

std::vector<int> parse_list(const std::string& flag, const std::string& text) {
  std::vector<int> values;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t comma = std::min(text.find(',', begin), text.size());
    values.push_back(int(parse_int(flag, text.substr(begin, comma - begin), 1, 1 << 20)));
    begin = comma + 1;
  }
  return values;
}

constexpr const char* kUsage =
    "usage: strata_bench_attention [--json FILE] [--num-heads 32] [--num-kv-heads 8] [--head-dim 128]\n"
    "         [--block-size 16] [--dtype bf16|f16] [--contexts 1024,8192,32768] [--batches 1,64]\n"
    "         [--prefill 1024,8192,32768] [--reps 20] [--warmups 3] [--copy-gib 2] [--seed 1]\n"
    "         [--no-graph] [--skip-decode] [--skip-prefill]\n";

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--json") {
      o.json_path = value();
    } else if (arg == "--num-heads") {
      o.num_heads = int(parse_int(arg, value(), 1, 1024));
    } else if (arg == "--num-kv-heads") {
      o.num_kv_heads = int(parse_int(arg, value(), 1, 1024));
    } else if (arg == "--head-dim") {
      o.head_dim = int(parse_int(arg, value(), 1, 1024));
    } else if (arg == "--block-size") {
      o.block_size = int(parse_int(arg, value(), 1, 1024));
    } else if (arg == "--dtype") {
      const std::string name = value();
      if (name == "bf16") {
        o.dtype = DType::kBF16;
      } else if (name == "f16") {
        o.dtype = DType::kF16;
      } else {
        die("--dtype must be bf16 or f16");
      }
    } else if (arg == "--contexts") {
      o.contexts = parse_list(arg, value());
    } else if (arg == "--batches") {
      o.batches = parse_list(arg, value());
    } else if (arg == "--prefill") {
      o.prefill_lens = parse_list(arg, value());
    } else if (arg == "--reps") {
      o.reps = int(parse_int(arg, value(), 1, 100000));
    } else if (arg == "--warmups") {
      o.warmups = int(parse_int(arg, value(), 0, 100000));
    } else if (arg == "--copy-gib") {
      o.copy_gib = std::atof(value().c_str());
      if (!(o.copy_gib >= 1.0 / 1024)) die("--copy-gib must be >= 1/1024 (1 MiB)");
    } else if (arg == "--seed") {
      o.seed = uint64_t(parse_int(arg, value(), 0, 0x7fffffffL));
    } else if (arg == "--no-graph") {
      o.use_graphs = false;
    } else if (arg == "--skip-decode") {
      o.run_decode = false;
    } else if (arg == "--skip-prefill") {
      o.run_prefill = false;
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else {
      die("unknown argument " + arg + " (--help lists them)");
    }
  }
  // The launcher checks these too, but only after the copy ceiling has been measured.
  if (o.num_heads % o.num_kv_heads != 0 || o.num_heads / o.num_kv_heads > 8) {
    die("--num-heads (" + std::to_string(o.num_heads) + ") must be 1..8 times --num-kv-heads (" +
        std::to_string(o.num_kv_heads) + ")");
  }
  if ((o.block_size & (o.block_size - 1)) != 0) die("--block-size must be a power of two");
  return o;
}

// Decode: `batch` sequences of `context` cached tokens, one query token each.
struct DecodeCase {
  int batch = 0;
  int context = 0;
  int blocks_per_seq = 0;
  int sets = 1;            // sets of blocks (and q/out) the calls rotate over
  double kv_bytes = 0;     // K and V of every context token of every sequence, one call
  double q_out_bytes = 0;  // q read and out written, one call
  size_t pool_bytes = 0;   // the K cache (the V cache is as large): whole blocks of all sets
  size_t q_bytes = 0;      // q of all sets (out is as large)
  size_t workspace_bytes = 0;
  size_t device_bytes = 0;  // all of it
};

// Prefill: one sequence of `seq_len` new tokens, causal.
struct PrefillCase {
  int seq_len = 0;
  int num_blocks = 0;
  double flops = 0;
  size_t pool_bytes = 0;  // the K cache (the V cache is as large)
  size_t q_bytes = 0;     // q (out is as large)
  size_t device_bytes = 0;
};

size_t token_bytes(const Options& o) { return size_t(o.num_kv_heads) * o.head_dim * cuda::dtype_size(o.dtype); }

DecodeCase plan_decode(const Options& o, int batch, int context, size_t rotate_bytes) {
  DecodeCase c;
  c.batch = batch;
  c.context = context;
  c.blocks_per_seq = (context + o.block_size - 1) / o.block_size;
  const size_t es = cuda::dtype_size(o.dtype);
  c.kv_bytes = 2.0 * batch * double(context) * double(token_bytes(o));
  c.q_out_bytes = 2.0 * batch * double(o.num_heads) * o.head_dim * es;
  const double call_bytes = c.kv_bytes + c.q_out_bytes;
  c.sets = int(std::clamp(std::ceil(double(rotate_bytes) / call_bytes), 1.0, double(kMaxKvSets)));
  const int64_t pool_blocks = int64_t(c.sets) * batch * c.blocks_per_seq;
  if (pool_blocks > INT32_MAX) die("decode batch " + std::to_string(batch) + ": too many KV blocks");
  c.pool_bytes = size_t(pool_blocks) * o.block_size * token_bytes(o);
  c.q_bytes = size_t(c.sets) * batch * o.num_heads * o.head_dim * es;
  c.workspace_bytes = cuda::paged_attention_workspace_bytes(batch, o.num_heads, o.head_dim, context);
  const size_t tables = size_t(pool_blocks) * sizeof(int32_t) + size_t(2 * batch + 1) * sizeof(int32_t);
  c.device_bytes = 2 * c.pool_bytes + 2 * c.q_bytes + c.workspace_bytes + tables;
  return c;
}

PrefillCase plan_prefill(const Options& o, int seq_len) {
  PrefillCase c;
  c.seq_len = seq_len;
  c.num_blocks = (seq_len + o.block_size - 1) / o.block_size;
  c.flops = 4.0 * double(seq_len) * double(seq_len) * o.num_heads * o.head_dim / 2.0;
  c.pool_bytes = size_t(c.num_blocks) * o.block_size * token_bytes(o);
  c.q_bytes = size_t(seq_len) * o.num_heads * o.head_dim * cuda::dtype_size(o.dtype);
  c.device_bytes = 2 * c.pool_bytes + 2 * c.q_bytes + size_t(c.num_blocks + 3) * sizeof(int32_t);
  return c;
}

// Fails before anything is measured when the largest case cannot fit (cases run one at a
// time, each freeing its buffers).
void check_memory(const Options& o, const std::vector<DecodeCase>& decodes, const std::vector<PrefillCase>& prefills) {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
  const size_t usable = free_bytes > kHeadroomBytes ? free_bytes - kHeadroomBytes : 0;
  const size_t copy_bytes = 2 * (size_t(o.copy_gib * kGiB) / 16 * 16);
  if (copy_bytes > usable) {
    die("the copy ceiling needs " + gib(double(copy_bytes)) + " of device memory, " + gib(double(free_bytes)) +
        " free (lower --copy-gib)");
  }
  for (const DecodeCase& c : decodes) {
    if (c.device_bytes > usable) {
      die("decode batch " + std::to_string(c.batch) + " context " + std::to_string(c.context) + " needs " +
          gib(double(c.device_bytes)) + " of device memory, " + gib(double(free_bytes)) + " of " +
          gib(double(total_bytes)) + " free (lower --batches or --contexts)");
    }
  }
  for (const PrefillCase& c : prefills) {
    if (c.device_bytes > usable) {
      die("prefill " + std::to_string(c.seq_len) + " needs " + gib(double(c.device_bytes)) + " of device memory, " +
          gib(double(free_bytes)) + " of " + gib(double(total_bytes)) + " free (lower --prefill)");
    }
  }
}

// Block ids [0, num_blocks) in a random order: consecutive table entries are scattered blocks.
std::vector<int32_t> shuffled_blocks(int64_t num_blocks, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  return ids;
}

DeviceBuffer upload(const std::vector<int32_t>& host, const std::string& what) {
  DeviceBuffer buffer = allocate(host.size() * sizeof(int32_t), what);
  check(cudaMemcpy(buffer.get(), host.data(), host.size() * sizeof(int32_t), cudaMemcpyHostToDevice), what.c_str());
  return buffer;
}

float to_float(uint16_t bits, DType dtype) {
  if (dtype == DType::kBF16) {
    const uint32_t word = uint32_t(bits) << 16;
    float value;
    std::memcpy(&value, &word, sizeof(value));
    return value;
  }
  const float sign = (bits & 0x8000u) != 0 ? -1.0f : 1.0f;
  const int exponent = (bits >> 10) & 0x1f;
  const int mantissa = bits & 0x3ff;
  if (exponent == 0x1f) return mantissa != 0 ? NAN : sign * INFINITY;
  if (exponent == 0) return sign * std::ldexp(float(mantissa), -24);
  return sign * std::ldexp(float(mantissa | 0x400), exponent - 25);
}

// Every element of out (poisoned with NaN before the calls) was written, and lies in V's range.
void check_outputs(const DeviceBuffer& out, size_t count, DType dtype, const std::string& what) {
  std::vector<uint16_t> host(count);
  check(cudaMemcpy(host.data(), out.get(), count * sizeof(uint16_t), cudaMemcpyDeviceToHost), what.c_str());
  constexpr float kBound = 1.0f + 1.0f / 64;  // V in [-1, 1), plus rounding
  for (size_t i = 0; i < count; ++i) {
    const float value = to_float(host[i], dtype);
    if (!(std::fabs(value) <= kBound)) {
      die(what + ": output element " + std::to_string(i) + " is " + std::to_string(value) +
          " (unwritten or outside V's range [-1, 1))");
    }
  }
}

void scale_timing(Timing* timing, double factor) {
  timing->best_ms *= factor;
  timing->median_ms *= factor;
  for (double& ms : timing->rep_ms) ms *= factor;
}

// Times `calls` enqueues per repetition: as one CUDA graph replay (use_graph), or as stream launches.
Timing time_repetitions(const Options& o, cudaStream_t stream, int calls, bool use_graph,
                        const std::function<LaunchStatus(int)>& enqueue) {
  Timing timing;
  if (!use_graph) {
    check(time_calls(stream, o.warmups, o.reps, calls, enqueue, &timing));
    return timing;
  }
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
  LaunchStatus enqueued;
  for (int i = 0; i < calls && enqueued.ok(); ++i) enqueued = enqueue(i);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  check(enqueued);
  check(ended, "cudaStreamEndCapture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(instantiated, "cudaGraphInstantiate");
  const LaunchStatus status = time_calls(
      stream, o.warmups, o.reps, 1, [&](int) { return cuda_status(cudaGraphLaunch(exec, stream), "cudaGraphLaunch"); },
      &timing);
  cudaGraphExecDestroy(exec);
  check(status);
  scale_timing(&timing, 1.0 / calls);
  return timing;
}

struct DecodeResult {
  DecodeCase shape;
  int calls_per_rep = 0;
  Timing timing;
  double median_gbps = 0;
  double best_gbps = 0;
};

DecodeResult run_decode(const Options& o, const DecodeCase& c, cudaStream_t stream) {
  const std::string name = "decode batch " + std::to_string(c.batch) + " context " + std::to_string(c.context);
  const size_t es = cuda::dtype_size(o.dtype);
  const size_t pool_elems = c.pool_bytes / es;
  const size_t q_elems_per_set = size_t(c.batch) * o.num_heads * o.head_dim;
  DeviceBuffer k_cache = allocate(c.pool_bytes, name + ": K cache");
  DeviceBuffer v_cache = allocate(c.pool_bytes, name + ": V cache");
  DeviceBuffer q = allocate(c.q_bytes, name + ": q");
  DeviceBuffer out = allocate(c.q_bytes, name + ": out");
  DeviceBuffer workspace = allocate(c.workspace_bytes, name + ": workspace");
  const uint64_t seed = o.seed * 1000003u + uint64_t(c.batch) * 7919u + uint64_t(c.context);
  check(fill_uniform(k_cache.get(), pool_elems, o.dtype, -1.0f, 1.0f, seed + 1, stream));
  check(fill_uniform(v_cache.get(), pool_elems, o.dtype, -1.0f, 1.0f, seed + 2, stream));
  check(fill_uniform(q.get(), c.q_bytes / es, o.dtype, -1.0f, 1.0f, seed + 3, stream));
  check(cudaMemsetAsync(out.get(), 0xFF, c.q_bytes, stream), "cudaMemsetAsync");  // NaN in bf16 and f16
  check(cuda::paged_attention_clear_workspace(workspace.get(), workspace.size_bytes(), stream),
        "paged_attention_clear_workspace");

  // block_tables of set s: [batch, blocks_per_seq], rows of a shuffled pool.
  const DeviceBuffer block_tables =
      upload(shuffled_blocks(int64_t(c.sets) * c.batch * c.blocks_per_seq, seed), name + ": block tables");
  std::vector<int32_t> query_start(size_t(c.batch) + 1);
  std::iota(query_start.begin(), query_start.end(), 0);
  const DeviceBuffer query_start_device = upload(query_start, name + ": query_start");
  const DeviceBuffer context_lens = upload(std::vector<int32_t>(size_t(c.batch), c.context), name + ": context_lens");

  const float scale = 1.0f / std::sqrt(float(o.head_dim));
  auto enqueue = [&](int call) {
    const size_t set = size_t(call) % size_t(c.sets);
    return cuda::paged_attention(
        out.data<char>() + set * q_elems_per_set * es, q.data<char>() + set * q_elems_per_set * es,
        int64_t(o.num_heads) * o.head_dim, k_cache.get(), v_cache.get(),
        block_tables.data<int32_t>() + set * size_t(c.batch) * c.blocks_per_seq, c.blocks_per_seq,
        query_start_device.data<int32_t>(), context_lens.data<int32_t>(), c.batch, c.batch, /*max_query_len=*/1,
        c.context, o.num_heads, o.num_kv_heads, o.head_dim, o.block_size, scale, /*sliding_window=*/0, workspace.get(),
        workspace.size_bytes(), o.dtype, stream);
  };
  // A short eager probe (one call per set, after one untimed round) sizes the repetitions.
  Timing probe;
  check(time_calls(stream, 1, 1, c.sets, enqueue, &probe));
  DecodeResult result;
  result.shape = c;
  result.calls_per_rep = calls_for(probe.median_ms, kTargetRepMs, c.sets);
  result.timing = time_repetitions(o, stream, result.calls_per_rep, o.use_graphs, enqueue);
  check(cudaStreamSynchronize(stream), name.c_str());
  check_outputs(out, c.q_bytes / es, o.dtype, name);
  const double bytes = c.kv_bytes + c.q_out_bytes;
  result.median_gbps = bytes / (result.timing.median_ms * 1e6);
  result.best_gbps = bytes / (result.timing.best_ms * 1e6);
  return result;
}

// A copy that moves a decode call's bytes: bytes_each_way = half of them, over `sets` buffer
// pairs so that its reads come from device memory.
struct MatchedCopy {
  size_t bytes_each_way = 0;
  int sets = 1;
  int calls_per_rep = 0;
  std::string method;  // the fastest by median
  Timing timing;
  double median_gbps = 0;  // (read + written bytes) / median time
};

MatchedCopy run_matched_copy(const Options& o, const DecodeCase& c, size_t rotate_bytes, int num_sms,
                             cudaStream_t stream) {
  const std::string name =
      "same-size copy for batch " + std::to_string(c.batch) + " context " + std::to_string(c.context);
  MatchedCopy m;
  m.bytes_each_way = (size_t(c.kv_bytes + c.q_out_bytes) / 2 + 15) / 16 * 16;
  m.sets = int(std::clamp(std::ceil(double(rotate_bytes) / double(2 * m.bytes_each_way)), 1.0, 256.0));
  const size_t total = size_t(m.sets) * m.bytes_each_way;
  DeviceBuffer src = allocate(total, name + ": source");
  DeviceBuffer dst = allocate(total, name + ": destination");
  check(fill_uniform(src.get(), total / 4, DType::kF32, -1.0f, 1.0f, o.seed + 17, stream));
  auto at = [&](const DeviceBuffer& b, int call) { return b.data<char>() + size_t(call % m.sets) * m.bytes_each_way; };
  for (const CopyMethod& method : copy_methods(num_sms)) {
    auto enqueue = [&](int call) { return method.copy(at(dst, call), at(src, call), m.bytes_each_way, stream); };
    Timing probe;
    check(time_calls(stream, 1, 1, m.sets, enqueue, &probe));
    const int calls = calls_for(probe.median_ms, kTargetRepMs, m.sets);
    const Timing timing = time_repetitions(o, stream, calls, o.use_graphs, enqueue);
    if (m.method.empty() || timing.median_ms < m.timing.median_ms) {
      m.method = method.name;
      m.timing = timing;
      m.calls_per_rep = calls;
    }
  }
  check(cudaStreamSynchronize(stream), name.c_str());
  m.median_gbps = 2.0 * double(m.bytes_each_way) / (m.timing.median_ms * 1e6);
  return m;
}

struct PrefillResult {
  PrefillCase shape;
  int calls_per_rep = 0;
  Timing timing;
  double median_tflops = 0;
  double best_tflops = 0;
};

PrefillResult run_prefill(const Options& o, const PrefillCase& c, cudaStream_t stream) {
  const std::string name = "prefill " + std::to_string(c.seq_len);
  const size_t es = cuda::dtype_size(o.dtype);
  DeviceBuffer k_cache = allocate(c.pool_bytes, name + ": K cache");
  DeviceBuffer v_cache = allocate(c.pool_bytes, name + ": V cache");
  DeviceBuffer q = allocate(c.q_bytes, name + ": q");
  DeviceBuffer out = allocate(c.q_bytes, name + ": out");
  const uint64_t seed = o.seed * 1000003u + 0x5eedu + uint64_t(c.seq_len);
  check(fill_uniform(k_cache.get(), c.pool_bytes / es, o.dtype, -1.0f, 1.0f, seed + 1, stream));
  check(fill_uniform(v_cache.get(), c.pool_bytes / es, o.dtype, -1.0f, 1.0f, seed + 2, stream));
  check(fill_uniform(q.get(), c.q_bytes / es, o.dtype, -1.0f, 1.0f, seed + 3, stream));
  check(cudaMemsetAsync(out.get(), 0xFF, c.q_bytes, stream), "cudaMemsetAsync");

  const DeviceBuffer block_table = upload(shuffled_blocks(c.num_blocks, seed), name + ": block table");
  const DeviceBuffer query_start = upload({0, c.seq_len}, name + ": query_start");
  const DeviceBuffer context_lens = upload({c.seq_len}, name + ": context_lens");
  const float scale = 1.0f / std::sqrt(float(o.head_dim));
  // No decode in the batch, so the launcher needs no split workspace.
  auto enqueue = [&](int) {
    return cuda::paged_attention(out.get(), q.get(), int64_t(o.num_heads) * o.head_dim, k_cache.get(), v_cache.get(),
                                 block_table.data<int32_t>(), c.num_blocks, query_start.data<int32_t>(),
                                 context_lens.data<int32_t>(), /*num_seqs=*/1, /*num_tokens=*/c.seq_len,
                                 /*max_query_len=*/c.seq_len, /*max_context_len=*/c.seq_len, o.num_heads,
                                 o.num_kv_heads, o.head_dim, o.block_size, scale, /*sliding_window=*/0, nullptr, 0,
                                 o.dtype, stream);
  };
  Timing probe;
  check(time_calls(stream, 1, 1, 1, enqueue, &probe));
  PrefillResult result;
  result.shape = c;
  result.calls_per_rep = calls_for(probe.median_ms, kTargetRepMs, 1);
  result.timing = time_repetitions(o, stream, result.calls_per_rep, /*use_graph=*/false, enqueue);
  check(cudaStreamSynchronize(stream), name.c_str());
  check_outputs(out, c.q_bytes / es, o.dtype, name);
  result.median_tflops = c.flops / (result.timing.median_ms * 1e9);
  result.best_tflops = c.flops / (result.timing.best_ms * 1e9);
  return result;
}

}  // namespace

int run_attention_bench(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  check(open_device(&prop, &stream));
  std::printf("device: %s, %d SMs, L2 %d MiB, %.1f GiB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20,
              double(prop.totalGlobalMem) / kGiB);
  std::printf("shape: %d query heads, %d KV heads, head_dim %d, %s, KV blocks of %d slots\n", o.num_heads,
              o.num_kv_heads, o.head_dim, cuda::dtype_name(o.dtype), o.block_size);

  // Past this many bytes per rotation the KV of a decode call comes from device memory.
  const size_t rotate_bytes = std::max<size_t>(size_t(4) * size_t(prop.l2CacheSize), size_t(256) << 20);
  std::vector<DecodeCase> decodes;
  if (o.run_decode) {
    for (int context : o.contexts) {
      for (int batch : o.batches) decodes.push_back(plan_decode(o, batch, context, rotate_bytes));
    }
  }
  std::vector<PrefillCase> prefills;
  if (o.run_prefill) {
    for (int seq_len : o.prefill_lens) prefills.push_back(plan_prefill(o, seq_len));
  }
  check_memory(o, decodes, prefills);

  std::vector<CopyRate> copy_rates;
  check(
      measure_copy_rates(size_t(o.copy_gib * kGiB), o.warmups, o.reps, prop.multiProcessorCount, stream, &copy_rates));
  const CopyRate& ceiling =
      *std::max_element(copy_rates.begin(), copy_rates.end(),
                        [](const CopyRate& a, const CopyRate& b) { return a.median_gbps < b.median_gbps; });
  std::printf("copy ceiling: %.0f GB/s (%s, median)\n", ceiling.median_gbps, ceiling.method.c_str());

  std::vector<DecodeResult> decode_results;
  std::vector<MatchedCopy> matched_copies;
  for (const DecodeCase& c : decodes) {
    decode_results.push_back(run_decode(o, c, stream));
    const DecodeResult& r = decode_results.back();
    matched_copies.push_back(run_matched_copy(o, c, rotate_bytes, prop.multiProcessorCount, stream));
    const MatchedCopy& m = matched_copies.back();
    std::printf("decode batch %d context %d: %.2f us, %.0f GB/s; same-size copy %.2f us (%s)\n", c.batch, c.context,
                r.timing.median_ms * 1e3, r.median_gbps, m.timing.median_ms * 1e3, m.method.c_str());
  }
  std::vector<PrefillResult> prefill_results;
  for (const PrefillCase& c : prefills) {
    prefill_results.push_back(run_prefill(o, c, stream));
    const PrefillResult& r = prefill_results.back();
    std::printf("prefill %d: %.3f ms, %.1f TFLOP/s\n", c.seq_len, r.timing.median_ms, r.median_tflops);
  }
  check(cudaStreamDestroy(stream), "cudaStreamDestroy");

  nlohmann::json report = {{"device", device_info(prop)},
                           {"shape",
                            {{"num_heads", o.num_heads},
                             {"num_kv_heads", o.num_kv_heads},
                             {"head_dim", o.head_dim},
                             {"block_size", o.block_size},
                             {"dtype", cuda::dtype_name(o.dtype)}}},
                           {"reps", o.reps},
                           {"warmups", o.warmups},
                           {"seed", o.seed},
                           {"decode_timing", o.use_graphs ? "cuda_graph" : "stream"},
                           {"prefill_timing", "stream"},
                           {"copy_ceiling", {{"method", ceiling.method}, {"median_gbps", ceiling.median_gbps}}},
                           {"copy", nlohmann::json::array()},
                           {"decode", nlohmann::json::array()},
                           {"prefill", nlohmann::json::array()},
                           {"decode_bytes",
                            "2 * batch * context * num_kv_heads * head_dim * dtype_size (K and V) + "
                            "2 * batch * num_heads * head_dim * dtype_size (q and out)"},
                           {"prefill_flops", "4 * L * L * num_heads * head_dim / 2 (causal: half of Q K^T and P V)"}};
  for (const CopyRate& r : copy_rates) {
    report["copy"].push_back({{"method", r.method},
                              {"bytes_each_way", r.bytes_each_way},
                              {"best_ms", r.timing.best_ms},
                              {"median_ms", r.timing.median_ms},
                              {"best_gbps", r.best_gbps},
                              {"median_gbps", r.median_gbps},
                              {"rep_ms", r.timing.rep_ms}});
  }
  for (size_t i = 0; i < decode_results.size(); ++i) {
    const DecodeResult& r = decode_results[i];
    const MatchedCopy& m = matched_copies[i];
    const nlohmann::json same_size_copy = {{"method", m.method},
                                           {"bytes_each_way", m.bytes_each_way},
                                           {"sets", m.sets},
                                           {"calls_per_rep", m.calls_per_rep},
                                           {"best_ms", m.timing.best_ms},
                                           {"median_ms", m.timing.median_ms},
                                           {"median_gbps", m.median_gbps},
                                           {"ratio_to_copy_ceiling", m.median_gbps / ceiling.median_gbps}};
    report["decode"].push_back({{"batch", r.shape.batch},
                                {"context", r.shape.context},
                                {"kv_sets", r.shape.sets},
                                {"calls_per_rep", r.calls_per_rep},
                                {"kv_bytes", r.shape.kv_bytes},
                                {"q_out_bytes", r.shape.q_out_bytes},
                                {"bytes", r.shape.kv_bytes + r.shape.q_out_bytes},
                                {"workspace_bytes", r.shape.workspace_bytes},
                                {"best_ms", r.timing.best_ms},
                                {"median_ms", r.timing.median_ms},
                                {"best_gbps", r.best_gbps},
                                {"median_gbps", r.median_gbps},
                                {"ratio_to_copy_ceiling", r.median_gbps / ceiling.median_gbps},
                                {"same_size_copy", same_size_copy},
                                {"ratio_to_same_size_copy", r.median_gbps / m.median_gbps},
                                {"rep_ms", r.timing.rep_ms}});
  }
  for (const PrefillResult& r : prefill_results) {
    report["prefill"].push_back({{"seq_len", r.shape.seq_len},
                                 {"batch", 1},
                                 {"causal", true},
                                 {"flops", r.shape.flops},
                                 {"calls_per_rep", r.calls_per_rep},
                                 {"best_ms", r.timing.best_ms},
                                 {"median_ms", r.timing.median_ms},
                                 {"best_tflops", r.best_tflops},
                                 {"median_tflops", r.median_tflops},
                                 {"rep_ms", r.timing.rep_ms}});
  }
  if (!o.json_path.empty()) {
    std::ofstream file(o.json_path);
    file << report.dump(2) << "\n";
    if (!file) die("cannot write " + o.json_path);
  }

  // The short table, last.
  std::printf("\npaged_attention %s, %d q heads / %d kv heads x %d, blocks of %d, %d reps, median\n",
              cuda::dtype_name(o.dtype), o.num_heads, o.num_kv_heads, o.head_dim, o.block_size, o.reps);
  if (!decode_results.empty()) {
    std::printf("decode (1 query token per sequence, %s): bytes = K+V of all context tokens + q + out;\n",
                o.use_graphs ? "CUDA graph replays" : "stream launches");
    std::printf("  copy ceiling %.0f GB/s (%s); same-size copy: a copy moving the call's bytes per call\n",
                ceiling.median_gbps, ceiling.method.c_str());
    std::printf("%6s %8s %5s %11s %11s %9s %9s %12s %9s\n", "batch", "context", "sets", "MiB read", "median us", "GB/s",
                "of copy", "copy us", "of copy@");
    for (size_t i = 0; i < decode_results.size(); ++i) {
      const DecodeResult& r = decode_results[i];
      const MatchedCopy& m = matched_copies[i];
      std::printf("%6d %8d %5d %11.1f %11.2f %9.0f %8.0f%% %12.2f %8.0f%%\n", r.shape.batch, r.shape.context,
                  r.shape.sets, (r.shape.kv_bytes + r.shape.q_out_bytes) / double(1 << 20), r.timing.median_ms * 1e3,
                  r.median_gbps, 100.0 * r.median_gbps / ceiling.median_gbps, m.timing.median_ms * 1e3,
                  100.0 * r.median_gbps / m.median_gbps);
    }
  }
  if (!prefill_results.empty()) {
    std::printf("prefill (batch 1, causal, query = context = L): FLOPs = 4*L*L*heads*head_dim/2\n");
    std::printf("%8s %11s %11s %9s %9s\n", "L", "median ms", "best ms", "TFLOP/s", "best");
    for (const PrefillResult& r : prefill_results) {
      std::printf("%8d %11.3f %11.3f %9.1f %9.1f\n", r.shape.seq_len, r.timing.median_ms, r.timing.best_ms,
                  r.median_tflops, r.best_tflops);
    }
  }
  return 0;
}

}  // namespace strata::bench

int main(int argc, char** argv) { return strata::bench::run_attention_bench(argc, argv); }
