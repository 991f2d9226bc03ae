// Engine flags shared by `strata generate` and `strata serve`.
#pragma once

#include <string>
#include <vector>

#include "engine/engine_core.h"
#include "server/cli_args.h"

namespace strata {

std::vector<FlagSpec> engine_flag_specs();
Result<EngineConfig> engine_config_from_flags(CliArgs& args);
// Where the model that ships with strata (used when --model is omitted) may be, in the order
// they are tried, and the first that holds a config.json (else the last candidate).
std::vector<std::string> default_model_candidates();
std::string default_model_dir();
// --tokenizer, else the model's folder (checked by engine_config_from_flags).
std::string tokenizer_dir_from_flags(CliArgs& args, const EngineConfig& config);

}  // namespace strata
