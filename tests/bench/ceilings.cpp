// strata_bench_ceilings: the two ceilings every CUDA kernel is judged against (METHOD.md).
// (a) device-to-device copy bandwidth, counting bytes read + written: cudaMemcpyAsync and two
//     16-byte-vector copy kernels over buffers of >= 2 GiB;
// (b) GEMM rate through GemmContext::linear (cuBLASLt): 8192^3 and the Llama-3-8B projections
//     at decode and prefill row counts, random data, inputs rotated past the L2 cache.
// Times come from CUDA events after warm-ups; best and median of --reps repetitions.
// Usage: strata_bench_ceilings [--json FILE] [--reps N] [--copy-gib G] [--dtype bf16|f16]
//                              [--skip-copy] [--skip-gemm]
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm.h"
#include "tests/bench/bench_kernels.h"

namespace strata::bench {
namespace {

using cuda::DeviceBuffer;
using cuda::DType;
using cuda::LaunchStatus;

struct Options {
  std::string json_path;
  int reps = 20;
  int warmups = 3;
  double copy_gib = 2.0;
  bool run_copy = true;
  bool run_gemm = true;
  DType dtype = DType::kBF16;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "strata_bench_ceilings: %s\n", message.c_str());
  std::exit(1);
}

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error));
}

void check(const LaunchStatus& status) {
  if (!status.ok()) die(status.message);
}

DeviceBuffer allocate(size_t bytes) {
  DeviceBuffer buffer;
  check(DeviceBuffer::create(&buffer, bytes));
  return buffer;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--json") {
      options.json_path = value();
    } else if (arg == "--reps") {
      options.reps = std::atoi(value().c_str());
      if (options.reps < 1) die("--reps must be >= 1");
    } else if (arg == "--copy-gib") {
      options.copy_gib = std::atof(value().c_str());
      if (!(options.copy_gib > 0)) die("--copy-gib must be > 0");
    } else if (arg == "--dtype") {
      const std::string name = value();
      if (name == "bf16") {
        options.dtype = DType::kBF16;
      } else if (name == "f16") {
        options.dtype = DType::kF16;
      } else {
        die("--dtype must be bf16 or f16");
      }
    } else if (arg == "--skip-copy") {
      options.run_copy = false;
    } else if (arg == "--skip-gemm") {
      options.run_gemm = false;
    } else if (arg == "--help" || arg == "-h") {
      std::printf(
          "usage: strata_bench_ceilings [--json FILE] [--reps N] [--copy-gib G] [--dtype bf16|f16] "
          "[--skip-copy] [--skip-gemm]\n");
      std::exit(0);
    } else {
      die("unknown argument " + arg + " (--help lists them)");
    }
  }
  return options;
}

std::vector<CopyRate> run_copy(const Options& options, const cudaDeviceProp& prop, cudaStream_t stream) {
  std::vector<CopyRate> rates;
  check(measure_copy_rates(size_t(options.copy_gib * double(1ull << 30)), options.warmups, options.reps,
                           prop.multiProcessorCount, stream, &rates));
  return rates;
}

struct GemmShape {
  const char* name;
  int num_rows;      // cuBLAS n (tokens)
  int out_features;  // cuBLAS m
  int in_features;   // cuBLAS k
};

// Llama-3-8B (hidden 4096, 32 query / 8 KV heads of 128, intermediate 14336): the four
// projections of a layer, at decode (1, 64 sequences) and prefill (256, 2048 tokens) rows.
std::vector<GemmShape> gemm_shapes() {
  std::vector<GemmShape> shapes = {{"square", 8192, 8192, 8192}};
  struct Projection {
    const char* name;
    int out_features;
    int in_features;
  };
  const Projection projections[] = {
      {"o", 4096, 4096}, {"qkv", 6144, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}};
  for (const Projection& p : projections) {
    for (int rows : {1, 64, 256, 2048}) shapes.push_back({p.name, rows, p.out_features, p.in_features});
  }
  return shapes;
}

struct GemmRow {
  GemmShape shape;
  int input_sets;
  int calls_per_rep;
  Timing stats;
  double tflops_median;
  double tflops_best;
  double gbps_median;  // the fewest bytes (x, W, y once each) over the median time
};

std::vector<GemmRow> run_gemm(const Options& options, const cudaDeviceProp& prop, cudaStream_t stream) {
  std::unique_ptr<cuda::GemmContext> gemm;
  check(cuda::GemmContext::create(&gemm));
  const size_t es = cuda::dtype_size(options.dtype);
  // Each call reads a different input set until this many bytes have passed, so weights that
  // fit in L2 (a 4096x4096 bf16 matrix is 32 MiB) are read from device memory as in a model.
  const size_t rotate_bytes = std::max<size_t>(size_t(4) * size_t(prop.l2CacheSize), size_t(256) << 20);
  std::vector<GemmRow> rows;
  uint64_t seed = 1000;
  for (const GemmShape& s : gemm_shapes()) {
    const size_t x_bytes = size_t(s.num_rows) * s.in_features * es;
    const size_t w_bytes = size_t(s.out_features) * s.in_features * es;
    const size_t y_bytes = size_t(s.num_rows) * s.out_features * es;
    const size_t set_bytes = x_bytes + w_bytes + y_bytes;
    const int sets = int(std::clamp<size_t>((rotate_bytes + set_bytes - 1) / set_bytes, 1, 64));
    struct InputSet {
      DeviceBuffer x, weight, y;
    };
    std::vector<InputSet> inputs;
    for (int i = 0; i < sets; ++i) {
      InputSet set{allocate(x_bytes), allocate(w_bytes), allocate(y_bytes)};
      check(fill_uniform(set.x.get(), x_bytes / es, options.dtype, -1.0f, 1.0f, seed++, stream));
      check(fill_uniform(set.weight.get(), w_bytes / es, options.dtype, -0.05f, 0.05f, seed++, stream));
      check(cudaMemsetAsync(set.y.get(), 0xFF, y_bytes, stream), "cudaMemsetAsync");
      inputs.push_back(std::move(set));
    }
    auto enqueue = [&](int call) {
      const InputSet& set = inputs[size_t(call) % inputs.size()];
      return gemm->linear(set.x.get(), set.weight.get(), nullptr, set.y.get(), s.num_rows, s.in_features,
                          s.out_features, options.dtype, stream);
    };
    // A short probe (plan creation included, then untimed) sizes the repetitions.
    Timing probe;
    check(time_calls(stream, 1, 1, sets, enqueue, &probe));
    const int calls = calls_for(probe.median_ms, 2.0, sets);
    Timing stats;
    check(time_calls(stream, options.warmups, options.reps, calls, enqueue, &stats));
    const double flops = 2.0 * s.num_rows * double(s.out_features) * s.in_features;
    rows.push_back({s, sets, calls, stats, flops / (stats.median_ms * 1e9), flops / (stats.best_ms * 1e9),
                    double(set_bytes) / (stats.median_ms * 1e6)});
  }
  return rows;
}

}  // namespace

int run_ceilings(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  check(open_device(&prop, &stream));

  nlohmann::json report = {{"device", device_info(prop)},
                           {"reps", options.reps},
                           {"warmups", options.warmups},
                           {"dtype", cuda::dtype_name(options.dtype)}};
  std::printf("device: %s, %d SMs, L2 %d MiB, %.1f GiB; cuBLASLt %zu\n", prop.name, prop.multiProcessorCount,
              prop.l2CacheSize >> 20, double(prop.totalGlobalMem) / double(1ull << 30), cublasLtGetVersion());

  std::vector<CopyRate> copy_rows;
  if (options.run_copy) {
    copy_rows = run_copy(options, prop, stream);
    nlohmann::json rows = nlohmann::json::array();
    for (const CopyRate& r : copy_rows) {
      rows.push_back({{"method", r.method},
                      {"bytes_each_way", r.bytes_each_way},
                      {"best_ms", r.timing.best_ms},
                      {"median_ms", r.timing.median_ms},
                      {"best_gbps", r.best_gbps},
                      {"median_gbps", r.median_gbps},
                      {"rep_ms", r.timing.rep_ms}});
    }
    report["copy"] = rows;
  }
  std::vector<GemmRow> gemm_rows;
  if (options.run_gemm) {
    gemm_rows = run_gemm(options, prop, stream);
    nlohmann::json rows = nlohmann::json::array();
    for (const GemmRow& r : gemm_rows) {
      rows.push_back({{"name", r.shape.name},
                      {"num_rows", r.shape.num_rows},
                      {"out_features", r.shape.out_features},
                      {"in_features", r.shape.in_features},
                      {"input_sets", r.input_sets},
                      {"calls_per_rep", r.calls_per_rep},
                      {"best_ms", r.stats.best_ms},
                      {"median_ms", r.stats.median_ms},
                      {"median_tflops", r.tflops_median},
                      {"best_tflops", r.tflops_best},
                      {"median_gbps_min_bytes", r.gbps_median},
                      {"rep_ms", r.stats.rep_ms}});
    }
    report["gemm"] = rows;
  }
  cudaStreamDestroy(stream);

  if (!options.json_path.empty()) {
    std::ofstream out(options.json_path);
    out << report.dump(2) << "\n";
    if (!out) die("cannot write " + options.json_path);
  }

  // The short table, last.
  if (!copy_rows.empty()) {
    std::printf("\ncopy, %.2f GiB each way, GB/s = (read + written bytes) / time, %d reps\n", options.copy_gib,
                options.reps);
    std::printf("%-26s %10s %10s %12s\n", "method", "best GB/s", "med GB/s", "median ms");
    for (const CopyRate& r : copy_rows) {
      std::printf("%-26s %10.0f %10.0f %12.3f\n", r.method.c_str(), r.best_gbps, r.median_gbps, r.timing.median_ms);
    }
  }
  if (!gemm_rows.empty()) {
    std::printf("\nGemmContext::linear %s, y[m,n] = x[m,k] W[n,k]^T, %d reps; GB/s counts x, W, y once\n",
                cuda::dtype_name(options.dtype), options.reps);
    std::printf("%-8s %6s %6s %6s %5s %11s %11s %9s %9s\n", "shape", "m", "n", "k", "sets", "median us", "best us",
                "TFLOP/s", "GB/s");
    for (const GemmRow& r : gemm_rows) {
      std::printf("%-8s %6d %6d %6d %5d %11.2f %11.2f %9.1f %9.0f\n", r.shape.name, r.shape.num_rows,
                  r.shape.out_features, r.shape.in_features, r.input_sets, r.stats.median_ms * 1e3,
                  r.stats.best_ms * 1e3, r.tflops_median, r.gbps_median);
    }
  }
  return 0;
}

}  // namespace strata::bench

int main(int argc, char** argv) { return strata::bench::run_ceilings(argc, argv); }
