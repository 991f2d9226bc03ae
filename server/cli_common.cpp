// Engine flags shared by `strata generate` and `strata serve`.
#include "server/cli_common.h"

#include <cstdlib>
#include <filesystem>

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

// The embedded default model ships as models/default in the source tree and in bundles. Look
// beside the binary first (bundle: <root>/bin/strata, build tree: <root>/build/bin/strata), so
// that the default works from any working directory; then the working directory.
std::string default_model_dir() {
#ifdef STRATA_DEFAULT_MODEL_DIR
  return STRATA_DEFAULT_MODEL_DIR;
#else
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const char* up : {"..", "../.."}) {
      const auto candidate = (exe.parent_path() / up / "models/default").lexically_normal();
      if (std::filesystem::is_regular_file(candidate / "config.json", ec)) return candidate.string();
    }
  }
  return "models/default";
#endif
}

Result<EngineConfig> engine_config_from_flags(CliArgs& args) {
  EngineConfig c;
  c.model_dir = args.get("model", default_model_dir());
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
  c.max_num_seqs = static_cast<int>(args.get_int("max-num-seqs", c.max_num_seqs));
  c.max_num_batched_tokens = static_cast<int>(args.get_int("max-num-batched-tokens", c.max_num_batched_tokens));
  c.max_model_len = static_cast<int>(args.get_int("max-model-len", 0));
  c.block_size = static_cast<int>(args.get_int("block-size", c.block_size));
  c.num_kv_blocks = static_cast<int>(args.get_int("num-kv-blocks", 0));
  c.kv_cache_bytes = static_cast<size_t>(args.get_int("kv-cache-mb", 256)) << 20;
  c.enable_prefix_caching = !args.has("no-prefix-caching");
  if (!args.ok()) return invalid_argument(args.error());
  return c;
}

std::string tokenizer_dir_from_flags(CliArgs& args, const EngineConfig& config) {
  return args.has("tokenizer") ? args.get("tokenizer") : config.model_dir;
}

}  // namespace strata
