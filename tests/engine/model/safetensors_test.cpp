// Tests for engine/model/safetensors.cpp: files are written by a small writer below, then
// opened, read and corrupted in the ways real downloads go wrong.
#include "engine/model/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/model/model_config.h"
#include "tests/temp_dir.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

using testing::TempDir;

struct TestTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", "F16", or anything else for error tests
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data
};

template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string out(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// Assembles a file: 8-byte header length, the JSON header, the data section.
std::string assemble(const std::string& header, const std::string& data,
                     std::optional<uint64_t> header_len_override = std::nullopt) {
  uint64_t header_len = header_len_override.value_or(header.size());
  std::string out(8, '\0');
  std::memcpy(out.data(), &header_len, 8);
  return out + header + data;
}

// The header is padded with spaces to a multiple of 8 bytes, as safetensors' own writer does,
// plus `extra_padding` spaces (1 puts the data section at an odd offset).
std::string build_safetensors(const std::vector<TestTensor>& tensors, const Json& metadata = nullptr,
                              size_t extra_padding = 0) {
  Json header = Json::object();
  std::string data;
  for (const TestTensor& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string header_text = header.dump();
  while (header_text.size() % 8 != 0) header_text += ' ';
  header_text += std::string(extra_padding, ' ');
  return assemble(header_text, data);
}

void write_file(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

const std::vector<float> kF32Values = {1.0f, -2.5f, 3.25f, 0.001f, -0.0f, 1e30f};

// bf16/f16 bit patterns whose f32 values are exact.
const std::vector<uint16_t> kBf16Bits = {0x3F80, 0xC000, 0x3FC0, 0x4049, 0x0000, 0x8000};
const std::vector<float> kBf16Values = {1.0f, -2.0f, 1.5f, 3.140625f, 0.0f, -0.0f};
const std::vector<uint16_t> kF16Bits = {0x3C00, 0xC000, 0x3E00, 0x0001, 0x7BFF, 0x3555};
const std::vector<float> kF16Values = {1.0f, -2.0f, 1.5f, 5.9604644775390625e-08f, 65504.0f, 0.333251953125f};

std::vector<TestTensor> three_dtype_tensors() {
  return {
      {"model.embed_tokens.weight", "F32", {2, 3}, raw_bytes(kF32Values)},
      {"model.layers.0.self_attn.q_proj.weight", "BF16", {3, 2}, raw_bytes(kBf16Bits)},
      {"model.norm.weight", "F16", {6}, raw_bytes(kF16Bits)},
  };
}

void expect_bitwise_equal(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t g, w;
    std::memcpy(&g, &got[i], 4);
    std::memcpy(&w, &want[i], 4);
    EXPECT_EQ(g, w) << "element " << i << ": got " << got[i] << ", want " << want[i];
  }
}

// Opens a checkpoint that must fail and returns its status.
Status open_error(const std::string& dir) {
  auto result = SafetensorsCheckpoint::open(dir);
  EXPECT_FALSE(result.ok()) << "opened unexpectedly";
  return result.status();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Safetensors, SingleFile_RoundTripsF32Bf16F16) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", build_safetensors(three_dtype_tensors(), Json{{"format", "pt"}}));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  const auto& ckpt = **checkpoint;

  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{"model.embed_tokens.weight",
                                                    "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"}));
  EXPECT_EQ(ckpt.total_bytes(), 6 * 4 + 6 * 2 + 6 * 2);

  auto f32 = ckpt.read_f32("model.embed_tokens.weight", {2, 3});
  ASSERT_TRUE(f32.ok()) << f32.status().to_string();
  expect_bitwise_equal(*f32, kF32Values);
  auto bf16 = ckpt.read_f32("model.layers.0.self_attn.q_proj.weight", {3, 2});
  ASSERT_TRUE(bf16.ok()) << bf16.status().to_string();
  expect_bitwise_equal(*bf16, kBf16Values);
  auto f16 = ckpt.read_f32("model.norm.weight", {6});
  ASSERT_TRUE(f16.ok()) << f16.status().to_string();
  expect_bitwise_equal(*f16, kF16Values);
}

TEST(Safetensors, Find_ReportsDtypeShapeAndFile) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", build_safetensors(three_dtype_tensors()));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  const TensorInfo* info = (*checkpoint)->find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->dtype, DType::kBF16);
  EXPECT_EQ(info->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(info->numel(), 6);
  EXPECT_EQ(info->nbytes, 12u);
  EXPECT_EQ(info->file, "model.safetensors");
  EXPECT_EQ(std::memcmp(info->data, kBf16Bits.data(), 12), 0);
  EXPECT_EQ((*checkpoint)->find("lm_head.weight"), nullptr);
}

TEST(Safetensors, UnalignedData_StillReadsF32Exactly) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors",
             build_safetensors({{"w", "F32", {6}, raw_bytes(kF32Values)}}, nullptr, 1));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  ASSERT_NE(reinterpret_cast<uintptr_t>((*checkpoint)->find("w")->data) % 4, 0u);
  auto values = (*checkpoint)->read_f32("w", {6});
  ASSERT_TRUE(values.ok()) << values.status().to_string();
  expect_bitwise_equal(*values, kF32Values);
}

TEST(Safetensors, ScalarAndEmptyTensors_AreReadable) {
  TempDir dir;
  write_file(
      dir.path() / "model.safetensors",
      build_safetensors({{"scalar", "F32", {}, raw_bytes(std::vector<float>{7.0f})}, {"empty", "BF16", {0, 4}, ""}}));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  auto scalar = (*checkpoint)->read_f32("scalar", {});
  ASSERT_TRUE(scalar.ok()) << scalar.status().to_string();
  EXPECT_EQ(*scalar, std::vector<float>{7.0f});
  auto empty = (*checkpoint)->read_f32("empty", {0, 4});
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
}

void write_sharded(const TempDir& dir) {
  auto tensors = three_dtype_tensors();
  write_file(dir.path() / "model-00001-of-00002.safetensors", build_safetensors({tensors[0], tensors[2]}));
  write_file(dir.path() / "model-00002-of-00002.safetensors", build_safetensors({tensors[1]}));
  Json index = {{"metadata", {{"total_size", 48}}},
                {"weight_map",
                 {{tensors[0].name, "model-00001-of-00002.safetensors"},
                  {tensors[1].name, "model-00002-of-00002.safetensors"},
                  {tensors[2].name, "model-00001-of-00002.safetensors"}}}};
  write_file(dir.path() / "model.safetensors.index.json", index.dump(2));
}

TEST(Safetensors, Sharded_OpensEveryShardTheIndexNames) {
  TempDir dir;
  write_sharded(dir);
  // A stray file the index does not name is ignored.
  write_file(dir.path() / "consolidated.safetensors",
             build_safetensors({{"stray", "F32", {1}, raw_bytes(std::vector<float>{1.0f})}}));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  const auto& ckpt = **checkpoint;
  EXPECT_EQ(ckpt.names().size(), 3u);
  EXPECT_EQ(ckpt.find("stray"), nullptr);
  EXPECT_EQ(ckpt.find("model.layers.0.self_attn.q_proj.weight")->file, "model-00002-of-00002.safetensors");
  EXPECT_EQ(ckpt.total_bytes(), 48u);
  auto bf16 = ckpt.read_f32("model.layers.0.self_attn.q_proj.weight", {3, 2});
  ASSERT_TRUE(bf16.ok()) << bf16.status().to_string();
  expect_bitwise_equal(*bf16, kBf16Values);
  auto f16 = ckpt.read_f32("model.norm.weight", {6});
  ASSERT_TRUE(f16.ok()) << f16.status().to_string();
  expect_bitwise_equal(*f16, kF16Values);
}

TEST(Safetensors, NoIndexNoModelFile_OpensEverySafetensorsFile) {
  TempDir dir;
  auto tensors = three_dtype_tensors();
  write_file(dir.path() / "a.safetensors", build_safetensors({tensors[0]}));
  write_file(dir.path() / "b.safetensors", build_safetensors({tensors[1], tensors[2]}));
  write_file(dir.path() / "notes.txt", "not a checkpoint");
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  EXPECT_EQ((*checkpoint)->names().size(), 3u);
  EXPECT_EQ((*checkpoint)->find("model.norm.weight")->file, "b.safetensors");
}

TEST(Safetensors, ModelFilePreferredOverOtherFiles) {
  TempDir dir;
  auto tensors = three_dtype_tensors();
  write_file(dir.path() / "model.safetensors", build_safetensors({tensors[0]}));
  write_file(dir.path() / "consolidated.safetensors", build_safetensors({tensors[1]}));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  EXPECT_EQ((*checkpoint)->names(), std::vector<std::string>{"model.embed_tokens.weight"});
}

TEST(Safetensors, EmptyFolder_NotFoundNamesFolder) {
  TempDir dir;
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(contains(status.message(), dir.str())) << status.message();
  EXPECT_TRUE(contains(status.message(), "no safetensors")) << status.message();
}

TEST(Safetensors, MissingFolder_NotFound) {
  TempDir dir;
  Status status = open_error((dir.path() / "nope").string());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(contains(status.message(), "nope")) << status.message();
}

TEST(Safetensors, MissingShard_NotFoundNamesShard) {
  TempDir dir;
  write_sharded(dir);
  fs::remove(dir.path() / "model-00002-of-00002.safetensors");
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kNotFound);
  EXPECT_TRUE(contains(status.message(), "model-00002-of-00002.safetensors")) << status.message();
  EXPECT_TRUE(contains(status.message(), "model.safetensors.index.json")) << status.message();
}

TEST(Safetensors, IndexNamesTensorItsShardLacks_DataLoss) {
  TempDir dir;
  write_sharded(dir);
  Json index = Json::parse(std::ifstream(dir.path() / "model.safetensors.index.json"));
  index["weight_map"]["lm_head.weight"] = "model-00002-of-00002.safetensors";
  write_file(dir.path() / "model.safetensors.index.json", index.dump());
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "'lm_head.weight'")) << status.message();
}

TEST(Safetensors, MalformedIndex_NamesIndexFile) {
  TempDir dir;
  write_sharded(dir);
  write_file(dir.path() / "model.safetensors.index.json", "{\"weight_map\": {");
  Status status = open_error(dir.str());
  EXPECT_TRUE(contains(status.message(), "model.safetensors.index.json")) << status.message();
}

TEST(Safetensors, DuplicateTensorAcrossShards_Error) {
  TempDir dir;
  auto tensors = three_dtype_tensors();
  write_file(dir.path() / "a.safetensors", build_safetensors({tensors[0], tensors[1]}));
  write_file(dir.path() / "b.safetensors", build_safetensors({tensors[1]}));
  Status status = open_error(dir.str());
  EXPECT_TRUE(contains(status.message(), "'model.layers.0.self_attn.q_proj.weight'")) << status.message();
  EXPECT_TRUE(contains(status.message(), "a.safetensors")) << status.message();
  EXPECT_TRUE(contains(status.message(), "b.safetensors")) << status.message();
}

TEST(Safetensors, TruncatedFile_DataLossNamesFileAndTensor) {
  TempDir dir;
  std::string contents = build_safetensors(three_dtype_tensors());
  contents.resize(contents.size() - 3);  // cuts into the last tensor (model.norm.weight)
  write_file(dir.path() / "model.safetensors", contents);
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "model.safetensors")) << status.message();
  EXPECT_TRUE(contains(status.message(), "'model.norm.weight'")) << status.message();
}

TEST(Safetensors, FileShorterThanLengthPrefix_DataLoss) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", "abc");
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "model.safetensors")) << status.message();
}

TEST(Safetensors, HeaderLengthLargerThanFile_DataLoss) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", assemble("{}", "", uint64_t{1} << 40));
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "model.safetensors")) << status.message();
  EXPECT_TRUE(contains(status.message(), "header length")) << status.message();
}

TEST(Safetensors, BadJsonHeader_DataLoss) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", assemble("{\"w\": {\"dtype\": ", ""));
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "model.safetensors")) << status.message();
  EXPECT_TRUE(contains(status.message(), "JSON")) << status.message();
}

TEST(Safetensors, HeaderEntryWithoutOffsets_DataLoss) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors",
             assemble(R"({"w": {"dtype": "F32", "shape": [1]}})", std::string(4, '\0')));
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "'w'")) << status.message();
}

TEST(Safetensors, OffsetsOutOfRange_DataLossNamesTensor) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors",
             assemble(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}})", std::string(8, '\0')));
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "model.safetensors: tensor 'w'")) << status.message();
  EXPECT_TRUE(contains(status.message(), "[8, 16]")) << status.message();
}

TEST(Safetensors, OffsetsDisagreeWithShape_DataLoss) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors",
             assemble(R"({"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 8]}})", std::string(12, '\0')));
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(contains(status.message(), "'w'")) << status.message();
  EXPECT_TRUE(contains(status.message(), "[2, 3]")) << status.message();
  EXPECT_TRUE(contains(status.message(), "needs 12")) << status.message();
}

TEST(Safetensors, UnsupportedDtype_UnimplementedNamesTensorAndDtype) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors",
             build_safetensors({{"position_ids", "I64", {2}, std::string(16, '\0')}}));
  Status status = open_error(dir.str());
  EXPECT_EQ(status.code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(contains(status.message(), "'position_ids'")) << status.message();
  EXPECT_TRUE(contains(status.message(), "I64")) << status.message();
}

TEST(Safetensors, MissingTensor_NotFoundNamesFileAndTensor) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", build_safetensors({three_dtype_tensors()[0]}));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  auto values = (*checkpoint)->read_f32("model.layers.0.self_attn.q_proj.weight", {3, 2});
  ASSERT_FALSE(values.ok());
  EXPECT_EQ(values.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(values.status().message(), "model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight' not found");
}

TEST(Safetensors, MissingTensorInShardedCheckpoint_NamesIndex) {
  TempDir dir;
  write_sharded(dir);
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  auto values = (*checkpoint)->read_f32("lm_head.weight", {4, 4});
  ASSERT_FALSE(values.ok());
  EXPECT_EQ(values.status().message(), "model.safetensors.index.json: tensor 'lm_head.weight' not found");
}

TEST(Safetensors, ShapeMismatch_InvalidArgumentWithBothShapes) {
  TempDir dir;
  write_file(dir.path() / "model.safetensors", build_safetensors(three_dtype_tensors()));
  auto checkpoint = SafetensorsCheckpoint::open(dir.str());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  auto values = (*checkpoint)->read_f32("model.embed_tokens.weight", {3, 2});
  ASSERT_FALSE(values.ok());
  EXPECT_EQ(values.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(values.status().message(),
            "model.safetensors: tensor 'model.embed_tokens.weight' has shape [2, 3], "
            "expected [3, 2]");
}

// Checks one checkpoint folder: it opens with every tensor readable and finite; for a
// Llama-family config, the tensors have the names and shapes the config implies; where a
// golden.json exists, its architecture and weight dtype match.
void check_checkpoint_folder(const fs::path& model_dir) {
  const std::vector<std::string> kLlamaFamily = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                                                 "Qwen3ForCausalLM"};
  auto checkpoint = SafetensorsCheckpoint::open(model_dir.string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  const auto& ckpt = **checkpoint;
  EXPECT_GT(ckpt.total_bytes(), 0u);

  // golden.json records the architecture and the dtype the weights were saved in.
  std::optional<DType> golden_dtype;
  std::string golden_arch;
  if (fs::exists(model_dir / "golden.json")) {
    Json golden = Json::parse(std::ifstream(model_dir / "golden.json"));
    golden_arch = golden.value("architecture", "");
    const std::string dtype = golden.value("dtype", "");
    if (dtype == "float32") golden_dtype = DType::kF32;
    if (dtype == "bfloat16") golden_dtype = DType::kBF16;
    if (dtype == "float16") golden_dtype = DType::kF16;
  }

  for (const std::string& name : ckpt.names()) {
    const TensorInfo* info = ckpt.find(name);
    ASSERT_NE(info, nullptr) << name;
    if (golden_dtype) {
      EXPECT_EQ(info->dtype, *golden_dtype) << name << " is " << dtype_name(info->dtype);
    }
    auto values = ckpt.read_f32(name, info->shape);
    ASSERT_TRUE(values.ok()) << values.status().to_string();
    for (float v : *values) {
      ASSERT_TRUE(std::isfinite(v)) << name << " holds a non-finite value";
    }
  }

  Json raw_config = Json::parse(std::ifstream(model_dir / "config.json"));
  std::string arch;
  if (auto it = raw_config.find("architectures");
      it != raw_config.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
    arch = (*it)[0].get<std::string>();
  }
  if (!arch.empty() && std::find(kLlamaFamily.begin(), kLlamaFamily.end(), arch) == kLlamaFamily.end()) {
    std::cout << "[ INFO ] " << model_dir.filename().string() << ": " << arch
              << " is not a Llama-family model; checked its tensors only\n";
    return;
  }
  auto config = load_model_config(model_dir.string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto generation = load_generation_defaults(model_dir.string());
  EXPECT_TRUE(generation.ok()) << generation.status().to_string();
  const ModelConfig& c = *config;
  if (!golden_arch.empty()) {
    EXPECT_EQ(c.architecture, golden_arch);
  }

  auto expect_shape = [&](const std::string& name, std::vector<int64_t> shape) {
    const TensorInfo* info = ckpt.find(name);
    ASSERT_NE(info, nullptr) << name << " missing";
    EXPECT_EQ(info->shape, shape) << name;
  };
  const int64_t q_dim = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;
  expect_shape("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  expect_shape("model.norm.weight", {c.hidden_size});
  if (!c.tie_word_embeddings) expect_shape("lm_head.weight", {c.vocab_size, c.hidden_size});
  for (int layer = 0; layer < c.num_layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    expect_shape(p + "self_attn.q_proj.weight", {q_dim, c.hidden_size});
    expect_shape(p + "self_attn.k_proj.weight", {kv_dim, c.hidden_size});
    expect_shape(p + "self_attn.v_proj.weight", {kv_dim, c.hidden_size});
    expect_shape(p + "self_attn.o_proj.weight", {c.hidden_size, q_dim});
    expect_shape(p + "mlp.gate_proj.weight", {c.intermediate_size, c.hidden_size});
    expect_shape(p + "mlp.up_proj.weight", {c.intermediate_size, c.hidden_size});
    expect_shape(p + "mlp.down_proj.weight", {c.hidden_size, c.intermediate_size});
    expect_shape(p + "input_layernorm.weight", {c.hidden_size});
    expect_shape(p + "post_attention_layernorm.weight", {c.hidden_size});
    if (c.attention_bias) {
      expect_shape(p + "self_attn.q_proj.bias", {q_dim});
      expect_shape(p + "self_attn.k_proj.bias", {kv_dim});
      expect_shape(p + "self_attn.v_proj.bias", {kv_dim});
    }
    if (c.qk_norm) {
      expect_shape(p + "self_attn.q_norm.weight", {c.head_dim});
      expect_shape(p + "self_attn.k_norm.weight", {c.head_dim});
    }
  }
}

// Golden checkpoints written by transformers (scripts/make_golden.py).
TEST(GoldenCheckpoints, ConfigCheckpointAndEveryTensorLoad) {
  const fs::path root = fs::path(STRATA_SOURCE_DIR) / "tests" / "golden" / "models";
  std::vector<fs::path> model_dirs;
  std::error_code ec;
  if (fs::is_directory(root, ec)) {
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      if (entry.is_directory() && fs::exists(entry.path() / "config.json")) {
        model_dirs.push_back(entry.path());
      }
    }
  }
  if (model_dirs.empty()) GTEST_SKIP() << "no golden checkpoints under " << root;
  std::sort(model_dirs.begin(), model_dirs.end());
  for (const fs::path& model_dir : model_dirs) {
    SCOPED_TRACE(model_dir.string());
    check_checkpoint_folder(model_dir);
  }
}

// The same checks on a tiny sharded Qwen3 checkpoint written here, so they run without the
// golden data too.
TEST(GoldenCheckpoints, SyntheticShardedQwen3PassesTheSameChecks) {
  TempDir dir;
  const int vocab = 11, hidden = 8, intermediate = 12, heads = 4, kv_heads = 2, head_dim = 4, layers = 2;
  Json config = {{"architectures", {"Qwen3ForCausalLM"}},
                 {"vocab_size", vocab},
                 {"hidden_size", hidden},
                 {"intermediate_size", intermediate},
                 {"num_hidden_layers", layers},
                 {"num_attention_heads", heads},
                 {"num_key_value_heads", kv_heads},
                 {"head_dim", head_dim},
                 {"max_position_embeddings", 64},
                 {"rms_norm_eps", 1e-6},
                 {"tie_word_embeddings", true},
                 {"hidden_act", "silu"},
                 {"dtype", "bfloat16"},
                 {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1e6}}},
                 {"eos_token_id", 3}};
  write_file(dir.path() / "config.json", config.dump(2));
  write_file(dir.path() / "golden.json", Json{{"architecture", "Qwen3ForCausalLM"}, {"dtype", "bfloat16"}}.dump());

  auto bf16_tensor = [](std::string name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<uint16_t> bits(static_cast<size_t>(n));
    for (size_t i = 0; i < bits.size(); ++i) bits[i] = kBf16Bits[i % kBf16Bits.size()];
    return TestTensor{std::move(name), "BF16", std::move(shape), raw_bytes(bits)};
  };
  std::vector<TestTensor> shard1 = {bf16_tensor("model.embed_tokens.weight", {vocab, hidden}),
                                    bf16_tensor("model.norm.weight", {hidden})};
  std::vector<TestTensor> shard2;
  for (int layer = 0; layer < layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    auto& shard = layer == 0 ? shard1 : shard2;
    shard.push_back(bf16_tensor(p + "self_attn.q_proj.weight", {heads * head_dim, hidden}));
    shard.push_back(bf16_tensor(p + "self_attn.k_proj.weight", {kv_heads * head_dim, hidden}));
    shard.push_back(bf16_tensor(p + "self_attn.v_proj.weight", {kv_heads * head_dim, hidden}));
    shard.push_back(bf16_tensor(p + "self_attn.o_proj.weight", {hidden, heads * head_dim}));
    shard.push_back(bf16_tensor(p + "self_attn.q_norm.weight", {head_dim}));
    shard.push_back(bf16_tensor(p + "self_attn.k_norm.weight", {head_dim}));
    shard.push_back(bf16_tensor(p + "mlp.gate_proj.weight", {intermediate, hidden}));
    shard.push_back(bf16_tensor(p + "mlp.up_proj.weight", {intermediate, hidden}));
    shard.push_back(bf16_tensor(p + "mlp.down_proj.weight", {hidden, intermediate}));
    shard.push_back(bf16_tensor(p + "input_layernorm.weight", {hidden}));
    shard.push_back(bf16_tensor(p + "post_attention_layernorm.weight", {hidden}));
  }
  Json weight_map = Json::object();
  for (const auto& t : shard1) weight_map[t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : shard2) weight_map[t.name] = "model-00002-of-00002.safetensors";
  write_file(dir.path() / "model-00001-of-00002.safetensors", build_safetensors(shard1));
  write_file(dir.path() / "model-00002-of-00002.safetensors", build_safetensors(shard2));
  write_file(dir.path() / "model.safetensors.index.json", Json{{"weight_map", weight_map}}.dump());

  check_checkpoint_folder(dir.path());
}

}  // namespace
}  // namespace strata
