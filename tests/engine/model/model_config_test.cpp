// Tests for engine/model/model_config.cpp: config.json of each supported family (in the
// shapes transformers 4 and 5 write them), validation messages, generation_config.json.
#include "engine/model/model_config.h"
#include "tests/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace strata {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using testing::TempDir;

void write_file(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// Llama 3.2 1B's config.json, as transformers 4.4x writes it.
Json llama32_config() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": false,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": [128001, 128008, 128009],
    "head_dim": 64,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 8192,
    "max_position_embeddings": 131072,
    "mlp_bias": false,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 16,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
      "factor": 32.0,
      "high_freq_factor": 4.0,
      "low_freq_factor": 1.0,
      "original_max_position_embeddings": 8192,
      "rope_type": "llama3"
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": true,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.45.0.dev0",
    "use_cache": true,
    "vocab_size": 128256
  })");
}

// Llama 2 7B: no head_dim, no num_key_value_heads in old configs, a single eos id.
Json llama2_config() {
  return Json::parse(R"({
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "rms_norm_eps": 1e-05,
    "rope_scaling": null,
    "tie_word_embeddings": false,
    "torch_dtype": "float16",
    "vocab_size": 32000
  })");
}

Json mistral_config() {
  return Json::parse(R"({
    "architectures": ["MistralForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "head_dim": null,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "model_type": "mistral",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "sliding_window": 4096,
    "tie_word_embeddings": false,
    "torch_dtype": "bfloat16",
    "vocab_size": 32000
  })");
}

// Qwen2.5 0.5B: ties embeddings, declares a sliding window it does not use.
Json qwen2_config() {
  return Json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "hidden_act": "silu",
    "hidden_size": 896,
    "initializer_range": 0.02,
    "intermediate_size": 4864,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "model_type": "qwen2",
    "num_attention_heads": 14,
    "num_hidden_layers": 24,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": true,
    "torch_dtype": "bfloat16",
    "use_cache": true,
    "use_sliding_window": false,
    "vocab_size": 151936
  })");
}

// Qwen3 0.6B: head_dim (128) is not hidden_size / heads (64).
Json qwen3_config() {
  return Json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": false,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "max_window_layers": 28,
    "model_type": "qwen3",
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": null,
    "rope_theta": 1000000,
    "sliding_window": null,
    "tie_word_embeddings": true,
    "torch_dtype": "bfloat16",
    "use_cache": true,
    "use_sliding_window": false,
    "vocab_size": 151936
  })");
}

// A Llama config as transformers 5 writes it: `dtype` and a `rope_parameters` block.
Json transformers5_llama_config() {
  Json c = llama32_config();
  c.erase("rope_theta");
  c.erase("rope_scaling");
  c.erase("torch_dtype");
  c["dtype"] = "float32";
  c["rope_parameters"] = Json::parse(R"({
    "factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
    "original_max_position_embeddings": 8192, "rope_theta": 500000.0, "rope_type": "llama3"
  })");
  return c;
}

ModelConfig parse_ok(const Json& config) {
  auto result = parse_model_config(config.dump(), "config.json");
  EXPECT_TRUE(result.ok()) << result.status().to_string();
  return result.ok() ? *result : ModelConfig{};
}

Status parse_error(const Json& config) {
  auto result = parse_model_config(config.dump(), "config.json");
  EXPECT_FALSE(result.ok()) << "parsed unexpectedly: " << config.dump();
  return result.status();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ModelConfig, Llama32_ReadsEveryFieldAndLlama3Scaling) {
  ModelConfig c = parse_ok(llama32_config());
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.arch, ModelArch::kLlama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 8192);
  EXPECT_EQ(c.num_layers, 16);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(c.rope.theta, 500000.0f);
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_FLOAT_EQ(c.rope.factor, 32.0f);
  EXPECT_FLOAT_EQ(c.rope.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
}

TEST(ModelConfig, Llama2_DerivesHeadDimAndKvHeadsAndReadsSingleEos) {
  ModelConfig c = parse_ok(llama2_config());
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_FLOAT_EQ(c.rope.theta, 10000.0f);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.torch_dtype, "float16");
}

TEST(ModelConfig, Llama_AttentionBiasFieldIsHonoured) {
  Json j = llama2_config();
  j["attention_bias"] = true;
  EXPECT_TRUE(parse_ok(j).attention_bias);
}

TEST(ModelConfig, Llama_MlpBiasIsUnimplemented) {
  Json j = llama2_config();
  j["mlp_bias"] = true;
  Status status = parse_error(j);
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(contains(status.message(), "mlp_bias")) << status.message();
}

TEST(ModelConfig, Mistral_SlidingWindowAndNullHeadDim) {
  ModelConfig c = parse_ok(mistral_config());
  EXPECT_EQ(c.arch, ModelArch::kMistral);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
}

TEST(ModelConfig, Mistral_NullSlidingWindowMeansFullAttention) {
  Json j = mistral_config();
  j["sliding_window"] = nullptr;
  EXPECT_FALSE(parse_ok(j).sliding_window.has_value());
}

TEST(ModelConfig, Mistral_NonPositiveSlidingWindowRejected) {
  Json j = mistral_config();
  j["sliding_window"] = 0;
  EXPECT_EQ(parse_error(j).message(), "config.json: sliding_window (0) must be positive");
}

TEST(ModelConfig, Qwen2_AlwaysHasQkvBiasAndIgnoresUnusedWindow) {
  ModelConfig c = parse_ok(qwen2_config());
  EXPECT_EQ(c.arch, ModelArch::kQwen2);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_FLOAT_EQ(c.rope.theta, 1e6f);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{151645});
}

TEST(ModelConfig, Qwen2_SlidingWindowOnEveryLayerIsUsed) {
  Json j = qwen2_config();
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 0;
  j["sliding_window"] = 4096;
  EXPECT_EQ(parse_ok(j).sliding_window, 4096);
}

TEST(ModelConfig, Qwen2_SlidingWindowAboveMaxWindowLayersOnlyIsNone) {
  Json j = qwen2_config();
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 24;  // == num_hidden_layers: no layer slides
  EXPECT_FALSE(parse_ok(j).sliding_window.has_value());
}

TEST(ModelConfig, Qwen2_SlidingWindowOnSomeLayersIsUnimplemented) {
  Json j = qwen2_config();
  j["use_sliding_window"] = true;  // max_window_layers 21 of 24 layers
  Status status = parse_error(j);
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(contains(status.message(), "3 of 24 layers")) << status.message();
}

TEST(ModelConfig, Qwen2_LayerTypesDecideWhichLayersSlide) {
  Json j = qwen2_config();
  j["use_sliding_window"] = true;
  j["sliding_window"] = 1024;
  j["layer_types"] = std::vector<std::string>(24, "sliding_attention");
  EXPECT_EQ(parse_ok(j).sliding_window, 1024);
  j["layer_types"] = std::vector<std::string>(24, "full_attention");
  EXPECT_FALSE(parse_ok(j).sliding_window.has_value());
}

TEST(ModelConfig, Qwen3_QkNormAndExplicitHeadDim) {
  ModelConfig c = parse_ok(qwen3_config());
  EXPECT_EQ(c.arch, ModelArch::kQwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.head_dim, 128);  // not 1024 / 16
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_FLOAT_EQ(c.rope.theta, 1e6f);
}

TEST(ModelConfig, Qwen3_AttentionBiasFieldIsHonoured) {
  Json j = qwen3_config();
  j["attention_bias"] = true;
  EXPECT_TRUE(parse_ok(j).attention_bias);
  j.erase("attention_bias");
  EXPECT_FALSE(parse_ok(j).attention_bias);
}

TEST(ModelConfig, Qwen3_MissingHeadDimNamesIt) {
  Json j = qwen3_config();
  j.erase("head_dim");
  EXPECT_EQ(parse_error(j).message(), "config.json: missing required field 'head_dim'");
}

TEST(ModelConfig, Transformers5_RopeParametersAndDtype) {
  ModelConfig c = parse_ok(transformers5_llama_config());
  EXPECT_EQ(c.rope.type, "llama3");
  EXPECT_FLOAT_EQ(c.rope.theta, 500000.0f);
  EXPECT_FLOAT_EQ(c.rope.factor, 8.0f);
  EXPECT_FLOAT_EQ(c.rope.low_freq_factor, 1.0f);
  EXPECT_FLOAT_EQ(c.rope.high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.torch_dtype, "float32");
}

TEST(ModelConfig, Transformers5_DefaultRopeParameters) {
  Json j = qwen3_config();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  ModelConfig c = parse_ok(j);
  EXPECT_EQ(c.rope.type, "default");
  EXPECT_FLOAT_EQ(c.rope.theta, 1e6f);
}

TEST(ModelConfig, RopeScaling_LegacyTypeKey) {
  Json j = llama32_config();
  j["rope_scaling"].erase("rope_type");
  j["rope_scaling"]["type"] = "llama3";
  EXPECT_EQ(parse_ok(j).rope.type, "llama3");
  j["rope_scaling"] = {{"type", "default"}};
  EXPECT_EQ(parse_ok(j).rope.type, "default");
}

TEST(ModelConfig, RopeScaling_OtherTypesAreUnimplementedAndNamed) {
  for (const std::string type : {"linear", "dynamic", "yarn", "longrope"}) {
    Json j = llama2_config();
    j["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
    Status status = parse_error(j);
    EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
    EXPECT_EQ(status.message(),
              "config.json: rope_scaling.rope_type '" + type + "' is not supported (supported: default, llama3)");
  }
  Json legacy = llama2_config();
  legacy["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_TRUE(contains(parse_error(legacy).message(), "rope_scaling.type 'linear'"));
  Json v5 = transformers5_llama_config();
  v5["rope_parameters"]["rope_type"] = "yarn";
  EXPECT_TRUE(contains(parse_error(v5).message(), "rope_parameters.rope_type 'yarn'"));
}

TEST(ModelConfig, RopeScaling_Llama3MissingFieldNamed) {
  for (const std::string field :
       {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    Json j = llama32_config();
    j["rope_scaling"].erase(field);
    EXPECT_EQ(parse_error(j).message(), "config.json: missing required field 'rope_scaling." + field + "'");
  }
}

TEST(ModelConfig, RopeScaling_Llama3BadFactorsRejected) {
  Json j = llama32_config();
  j["rope_scaling"]["high_freq_factor"] = 1.0;
  EXPECT_EQ(parse_error(j).message(),
            "config.json: rope_scaling.high_freq_factor (1) must be greater than "
            "rope_scaling.low_freq_factor (1)");
  j = llama32_config();
  j["rope_scaling"]["factor"] = 0.5;
  EXPECT_EQ(parse_error(j).message(), "config.json: rope_scaling.factor (0.5) must be at least 1");
  j = llama32_config();
  j["rope_scaling"]["factor"] = "32";
  EXPECT_EQ(parse_error(j).message(), "config.json: field 'rope_scaling.factor' must be a number, got string \"32\"");
}

TEST(ModelConfig, RopeTheta_MustBePositive) {
  Json j = llama2_config();
  j["rope_theta"] = 0;
  EXPECT_EQ(parse_error(j).message(), "config.json: rope_theta (0) must be a positive number");
}

TEST(ModelConfig, RopeScaling_WrongTypeNamed) {
  Json j = llama2_config();
  j["rope_scaling"] = "llama3";
  EXPECT_EQ(parse_error(j).message(), "config.json: field 'rope_scaling' must be an object, got string \"llama3\"");
}

TEST(ModelConfig, HeadDim_ExplicitOverridesDerived) {
  Json j = llama2_config();
  j["head_dim"] = 64;
  EXPECT_EQ(parse_ok(j).head_dim, 64);
  j.erase("head_dim");
  EXPECT_EQ(parse_ok(j).head_dim, 128);
}

TEST(ModelConfig, EosTokenId_IntListOrAbsent) {
  Json j = llama2_config();
  j["eos_token_id"] = 7;
  EXPECT_EQ(parse_ok(j).eos_token_ids, std::vector<int>{7});
  j["eos_token_id"] = {7, 8};
  EXPECT_EQ(parse_ok(j).eos_token_ids, (std::vector<int>{7, 8}));
  j["eos_token_id"] = nullptr;
  EXPECT_TRUE(parse_ok(j).eos_token_ids.empty());
  j["bos_token_id"] = nullptr;
  EXPECT_FALSE(parse_ok(j).bos_token_id.has_value());
  j["eos_token_id"] = {7, "eight"};
  EXPECT_TRUE(contains(parse_error(j).message(), "field 'eos_token_id' must be an integer or a list of integers"));
}

TEST(ModelConfig, UnknownArchitecture_ListsSupported) {
  Json j = llama2_config();
  j["architectures"] = {"GPT2LMHeadModel"};
  Status status = parse_error(j);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "config.json: architecture 'GPT2LMHeadModel' is not supported (supported: "
            "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)");
}

TEST(ModelConfig, MissingArchitectures_FallsBackToModelType) {
  Json j = qwen2_config();
  j.erase("architectures");
  EXPECT_EQ(parse_ok(j).architecture, "Qwen2ForCausalLM");
  j.erase("model_type");
  EXPECT_EQ(parse_error(j).message(), "config.json: missing required field 'architectures'");
}

TEST(ModelConfig, MalformedJson_NamesFileAndParseError) {
  auto result = parse_model_config("{\"vocab_size\": 32000,", "/models/x/config.json");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(result.status().message(), "/models/x/config.json: invalid JSON: "))
      << result.status().message();
  EXPECT_TRUE(contains(result.status().message(), "parse error")) << result.status().message();
}

TEST(ModelConfig, TopLevelMustBeObject) {
  auto result = parse_model_config("[1, 2]", "config.json");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "config.json: expected a JSON object at the top level, got array");
}

TEST(ModelConfig, MissingRequiredField_NamesIt) {
  for (const std::string field : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                  "num_attention_heads", "max_position_embeddings"}) {
    Json j = llama2_config();
    j.erase(field);
    EXPECT_EQ(parse_error(j).message(), "config.json: missing required field '" + field + "'");
  }
}

TEST(ModelConfig, WrongJsonType_NamesFieldAndValue) {
  Json j = llama2_config();
  j["hidden_size"] = "4096";
  EXPECT_EQ(parse_error(j).message(), "config.json: field 'hidden_size' must be an integer, got string \"4096\"");
  j = llama2_config();
  j["num_attention_heads"] = 32.5;
  EXPECT_EQ(parse_error(j).message(), "config.json: field 'num_attention_heads' must be an integer, got number 32.5");
  j = llama2_config();
  j["tie_word_embeddings"] = "yes";
  EXPECT_EQ(parse_error(j).message(), "config.json: field 'tie_word_embeddings' must be a boolean, got string \"yes\"");
  j = llama2_config();
  j["rms_norm_eps"] = true;
  EXPECT_EQ(parse_error(j).message(), "config.json: field 'rms_norm_eps' must be a number, got boolean true");
  j = llama2_config();
  j["architectures"] = "LlamaForCausalLM";
  EXPECT_TRUE(contains(parse_error(j).message(), "field 'architectures' must be a list"));
  j = llama2_config();
  j["vocab_size"] = 1e12;
  EXPECT_TRUE(contains(parse_error(j).message(), "'vocab_size'"));
}

TEST(ModelConfig, IntegralFloatsAccepted) {
  Json j = llama2_config();
  j["hidden_size"] = 4096.0;
  EXPECT_EQ(parse_ok(j).hidden_size, 4096);
}

TEST(ModelConfig, NonPositiveSizes_NameFieldAndValue) {
  for (const std::string field :
       {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "head_dim"}) {
    for (int value : {0, -4}) {
      Json j = llama32_config();
      j[field] = value;
      EXPECT_EQ(parse_error(j).message(),
                "config.json: " + field + " (" + std::to_string(value) + ") must be positive");
    }
  }
}

TEST(ModelConfig, KvHeadsMustDivideHeads) {
  Json j = llama2_config();
  j["num_key_value_heads"] = 3;
  Status status = parse_error(j);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "config.json: num_key_value_heads (3) must divide num_attention_heads (32)");
}

TEST(ModelConfig, HeadDimMustBeEven) {
  Json j = llama2_config();
  j["head_dim"] = 63;
  EXPECT_EQ(parse_error(j).message(), "config.json: head_dim (63) must be even (RoPE rotates pairs of dimensions)");
}

TEST(ModelConfig, DerivedHeadDimNeedsDivisibleHiddenSize) {
  Json j = llama2_config();
  j["hidden_size"] = 4000;
  j["num_attention_heads"] = 48;
  j["num_key_value_heads"] = 48;
  EXPECT_EQ(parse_error(j).message(),
            "config.json: hidden_size (4000) must be divisible by num_attention_heads (48) "
            "when head_dim is not given");
}

TEST(ModelConfig, HiddenActMustBeSilu) {
  Json j = llama2_config();
  j["hidden_act"] = "gelu";
  Status status = parse_error(j);
  EXPECT_EQ(status.message(), "config.json: hidden_act 'gelu' is not supported (must be \"silu\")");
  j.erase("hidden_act");  // transformers' default for these families is silu
  parse_ok(j);
}

TEST(ModelConfig, RmsNormEpsMustBePositive) {
  Json j = llama2_config();
  j["rms_norm_eps"] = -1e-5;
  EXPECT_EQ(parse_error(j).message(), "config.json: rms_norm_eps (-1e-05) must be a positive number");
}

TEST(ModelConfig, LoadFromFolder_UsesPathInMessages) {
  TempDir dir;
  write_file(dir.path() / "config.json", qwen3_config().dump());
  auto config = load_model_config(dir.str());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->arch, ModelArch::kQwen3);

  write_file(dir.path() / "config.json", "{oops}");
  auto bad = load_model_config(dir.str());
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(contains(bad.status().message(), (dir.path() / "config.json").string())) << bad.status().message();
}

TEST(ModelConfig, LoadFromFolderWithoutConfig_NotFound) {
  TempDir dir;
  auto config = load_model_config(dir.str());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(contains(config.status().message(), "config.json")) << config.status().message();
}

TEST(GenerationDefaults, MissingFileGivesEmptyDefaults) {
  TempDir dir;
  auto defaults = load_generation_defaults(dir.str());
  ASSERT_TRUE(defaults.ok()) << defaults.status().to_string();
  EXPECT_TRUE(defaults->eos_token_ids.empty());
  EXPECT_FALSE(defaults->temperature.has_value());
  EXPECT_FALSE(defaults->do_sample.has_value());
}

TEST(GenerationDefaults, ReadsEveryField) {
  TempDir dir;
  write_file(dir.path() / "generation_config.json", R"({
    "bos_token_id": 128000, "do_sample": true, "eos_token_id": [128001, 128008, 128009],
    "temperature": 0.6, "top_p": 0.9, "top_k": 20, "min_p": 0.05,
    "repetition_penalty": 1.1, "max_new_tokens": 256, "transformers_version": "4.45.0"})");
  auto d = load_generation_defaults(dir.str());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->eos_token_ids, (std::vector<int>{128001, 128008, 128009}));
  EXPECT_EQ(d->bos_token_id, 128000);
  EXPECT_EQ(d->do_sample, true);
  EXPECT_FLOAT_EQ(*d->temperature, 0.6f);
  EXPECT_FLOAT_EQ(*d->top_p, 0.9f);
  EXPECT_EQ(d->top_k, 20);
  EXPECT_FLOAT_EQ(*d->min_p, 0.05f);
  EXPECT_FLOAT_EQ(*d->repetition_penalty, 1.1f);
  EXPECT_EQ(d->max_new_tokens, 256);
}

TEST(GenerationDefaults, SingleEosAndNullsAreAbsent) {
  TempDir dir;
  write_file(dir.path() / "generation_config.json", R"({"eos_token_id": 2, "temperature": null, "top_k": null})");
  auto d = load_generation_defaults(dir.str());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->eos_token_ids, std::vector<int>{2});
  EXPECT_FALSE(d->temperature.has_value());
  EXPECT_FALSE(d->top_k.has_value());
  EXPECT_FALSE(d->bos_token_id.has_value());
}

TEST(GenerationDefaults, MalformedFileNamesIt) {
  TempDir dir;
  write_file(dir.path() / "generation_config.json", "{\"temperature\": ");
  auto d = load_generation_defaults(dir.str());
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.status().message(), "generation_config.json: invalid JSON")) << d.status().message();
}

TEST(GenerationDefaults, WrongTypeNamesField) {
  TempDir dir;
  write_file(dir.path() / "generation_config.json", R"({"top_k": "20"})");
  auto d = load_generation_defaults(dir.str());
  ASSERT_FALSE(d.ok());
  EXPECT_TRUE(contains(d.status().message(), "field 'top_k' must be an integer, got string")) << d.status().message();
}

}  // namespace
}  // namespace strata
