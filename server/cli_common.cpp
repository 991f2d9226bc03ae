// Engine flags shared by `strata generate` and `strata serve`.
#include "server/cli_common.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace strata {

std::vector<FlagSpec> engine_flag_specs() {
  return {
      {"model", "Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer files)", true,
       "the embedded default model"},
      {"tokenizer",
       "folder of the tokenizer files, when not --model's (e.g. for a --load-format dummy preset, which has none)",
       true, "--model"},
      {"load-format",
       "where the weights come from: auto (= safetensors), safetensors, or dummy (random weights from "
       "config.json alone, no weight files read; for benchmarks and shape checks)",
       true, "auto"},
      {"device", "cpu, cuda, cuda:N, or auto (CUDA when this build has it and a GPU answers, else cpu)", true,
       "auto"},
      {"gpu-memory-utilization",
       "CUDA: share of the GPU's memory strata may use (weights, activations, then the KV cache gets the rest)",
       true, "0.90"},
      {"dtype", "CUDA: weights, activations and KV cache in bfloat16 or float16; auto: float16 checkpoints "
       "in float16, the rest in bfloat16 (the CPU backend computes in float32)", true, "auto"},
      {"enforce-eager", "CUDA: launch every kernel of every step instead of replaying CUDA graphs of decode steps",
       false, ""},
      {"max-num-seqs", "most requests running at once", true, "256"},
      {"max-num-batched-tokens", "most tokens one engine step computes", true, "2048"},
      {"max-model-len", "context window in tokens", true, "the model's max_position_embeddings"},
      {"block-size", "tokens per KV-cache block", true, "16"},
      {"num-kv-blocks", "KV-cache blocks (overrides --kv-cache-mb)", true, ""},
      {"kv-cache-mb", "KV-cache memory budget in MiB (CPU backend)", true, "256"},
      {"no-prefix-caching", "disable reuse of cached prompt prefixes", false, ""},
      {"log-level", "trace, debug, info, warn, error", true, "info"},
  };
}

// The embedded default model ships as models/default in the source tree, in bundles and in the
// install layout. Candidates, first found wins: beside the binary (bundle: <root>/bin/strata,
// build tree inside the source: <root>/build/bin/strata), the install layout
// (<prefix>/bin/strata -> <prefix>/share/strata/models/default), the source tree this binary
// was configured from (an out-of-tree build folder), then the working directory.
std::vector<std::string> default_model_candidates() {
  std::vector<std::string> candidates;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const char* up : {"../models/default", "../../models/default", "../share/strata/models/default"}) {
      candidates.push_back((exe.parent_path() / up).lexically_normal().string());
    }
  }
#ifdef STRATA_SOURCE_MODEL_DIR
  candidates.emplace_back(STRATA_SOURCE_MODEL_DIR);
#endif
  candidates.emplace_back("models/default");
  return candidates;
}

std::string default_model_dir() {
#ifdef STRATA_DEFAULT_MODEL_DIR
  return STRATA_DEFAULT_MODEL_DIR;
#else
  std::error_code ec;
  const auto candidates = default_model_candidates();
  for (const auto& candidate : candidates) {
    if (std::filesystem::is_regular_file(std::filesystem::path(candidate) / "config.json", ec)) return candidate;
  }
  return candidates.back();
#endif
}

Result<EngineConfig> engine_config_from_flags(CliArgs& args) {
  EngineConfig c;
  c.model_dir = args.get("model", default_model_dir());
  if (!args.has("model") && !std::filesystem::is_directory(c.model_dir)) {
    std::string looked;
    for (const auto& candidate : default_model_candidates()) looked += (looked.empty() ? "" : ", ") + candidate;
    return not_found("no --model given, and the embedded default model is not in any of: " + looked);
  }
  if (!std::filesystem::is_directory(c.model_dir)) {
    return not_found("--model " + c.model_dir + " is not a folder");
  }
  if (args.has("tokenizer") && !std::filesystem::is_directory(args.get("tokenizer"))) {
    return not_found("--tokenizer " + args.get("tokenizer") + " is not a folder");
  }
  if (auto format = parse_load_format(args.get("load-format", "auto")); format.ok()) {
    c.load_format = *format;
  } else {
    return invalid_argument("--load-format: " + format.status().message());
  }
  c.device = args.get("device", "auto");
  if (c.device != "cpu" && c.device != "auto" && c.device != "cuda" && c.device.rfind("cuda:", 0) != 0) {
    return invalid_argument("--device must be cpu, cuda, cuda:N or auto, got '" + c.device + "'");
  }
  if (args.has("gpu-memory-utilization")) {
    const std::string text = args.get("gpu-memory-utilization");
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size() || !(value > 0.0 && value <= 1.0)) {
      return invalid_argument("--gpu-memory-utilization must be a number in (0, 1], got '" + text + "'");
    }
    c.gpu_memory_utilization = value;
  }
  c.dtype = args.get("dtype", "auto");
  if (c.dtype != "auto" && c.dtype != "bfloat16" && c.dtype != "float16") {
    return invalid_argument("--dtype must be auto, bfloat16 or float16, got '" + c.dtype + "'");
  }
  c.enforce_eager = args.has("enforce-eager");
  // Sizes where 0 means nothing: refused rather than read as "the default" (leaving a flag
  // out is how to ask for the default).
  const auto size_flag = [&](const char* name, long long max, long long fallback) -> Result<long long> {
    if (!args.has(name)) return fallback;
    const long long value = args.get_int(name, 0);
    if (!args.ok()) return invalid_argument(args.error());
    if (value < 1 || value > max) {
      return invalid_argument("--" + std::string(name) + " must be in [1, " + std::to_string(max) + "], got " +
                              std::to_string(value) + " (leave it out for the default)");
    }
    return value;
  };
  STRATA_ASSIGN_OR_RETURN(const long long max_num_seqs, size_flag("max-num-seqs", 1 << 20, c.max_num_seqs));
  STRATA_ASSIGN_OR_RETURN(const long long max_batched,
                          size_flag("max-num-batched-tokens", 1 << 24, c.max_num_batched_tokens));
  STRATA_ASSIGN_OR_RETURN(const long long max_model_len, size_flag("max-model-len", 1 << 30, 0));
  STRATA_ASSIGN_OR_RETURN(const long long block_size, size_flag("block-size", 1024, c.block_size));
  STRATA_ASSIGN_OR_RETURN(const long long num_kv_blocks, size_flag("num-kv-blocks", INT32_MAX, 0));
  STRATA_ASSIGN_OR_RETURN(const long long kv_cache_mb, size_flag("kv-cache-mb", 1 << 30, 256));
  c.max_num_seqs = static_cast<int>(max_num_seqs);
  c.max_num_batched_tokens = static_cast<int>(max_batched);
  c.max_model_len = static_cast<int>(max_model_len);
  c.block_size = static_cast<int>(block_size);
  c.num_kv_blocks = static_cast<int>(num_kv_blocks);
  c.kv_cache_bytes = static_cast<size_t>(kv_cache_mb) << 20;
  c.enable_prefix_caching = !args.has("no-prefix-caching");
  if (!args.ok()) return invalid_argument(args.error());
  return c;
}

std::string tokenizer_dir_from_flags(CliArgs& args, const EngineConfig& config) {
  return args.has("tokenizer") ? args.get("tokenizer") : config.model_dir;
}

}  // namespace strata
