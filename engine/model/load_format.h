// LoadFormat: where a model's weights come from (its safetensors files, or random dummy
// weights built from config.json alone, for benchmarks and shape checks without a download).
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/core/status.h"

namespace strata {

enum class LoadFormat {
  kAuto,         // the checkpoint's safetensors files (the only real format today)
  kSafetensors,  // *.safetensors (sharded through model.safetensors.index.json)
  kDummy,        // no weight files are read: deterministic random weights shaped by config.json
};

struct ModelLoadOptions {
  LoadFormat format = LoadFormat::kAuto;
  uint64_t dummy_seed = 0;  // the same seed and config give the same dummy weights
};

// "auto", "safetensors" or "dummy"; anything else is an invalid argument that lists them.
Result<LoadFormat> parse_load_format(std::string_view name);
const char* load_format_name(LoadFormat format);

}  // namespace strata
