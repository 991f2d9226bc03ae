// LoadFormat names, as `--load-format` spells them.
#include "engine/model/load_format.h"

#include <string>

namespace strata {

Result<LoadFormat> parse_load_format(std::string_view name) {
  for (LoadFormat f : {LoadFormat::kAuto, LoadFormat::kSafetensors, LoadFormat::kDummy}) {
    if (name == load_format_name(f)) return f;
  }
  return invalid_argument("load format '" + std::string(name) + "' is not supported (auto, safetensors, dummy)");
}

const char* load_format_name(LoadFormat format) {
  switch (format) {
    case LoadFormat::kAuto:
      return "auto";
    case LoadFormat::kSafetensors:
      return "safetensors";
    case LoadFormat::kDummy:
      return "dummy";
  }
  return "unknown";
}

}  // namespace strata
