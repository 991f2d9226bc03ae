// Fuzzes the checkpoint's JSON config readers (engine/model/model_config): the input is parsed as
// config.json text, and written into a checkpoint folder as generation_config.json for the
// generation-defaults reader, which only takes a folder.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/model/model_config.h"
#include "tests/temp_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = strata::parse_model_config(text, "config.json");
  if (config.ok()) {
    // What the loader and the engine divide by and size buffers with.
    const strata::ModelConfig& c = *config;
    if (c.vocab_size <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 ||
        c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 ||
        c.max_position_embeddings <= 0 || !(c.rms_norm_eps > 0) || !(c.rope.theta > 0) ||
        (c.sliding_window && *c.sliding_window <= 0)) {
      std::abort();
    }
  }

  static const strata::testing::TempDir dir;  // one per fuzzing process
  dir.write("generation_config.json", text);
  (void)strata::load_generation_defaults(dir.str());
  return 0;
}
