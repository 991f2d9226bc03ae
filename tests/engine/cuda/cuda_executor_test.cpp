// Tests engine/cuda/cuda_executor.cpp on every golden checkpoint and the default model, run
// teacher-forced (prefill in chunks, then decodes, mixed in one batch): against the fp32 CPU
// reference, and against transformers in bf16 on the same GPU when its logits are given.
// Skips where no GPU answers.
#include "engine/cuda/cuda_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/model/llama_model.h"
#include "engine/model/model_config.h"
#include "engine/model/model_executor.h"
#include "engine/sampling/sampler.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

// The source tree: STRATA_SOURCE_DIR from the environment (a bundle run on another machine),
// else the one this test was built from.
fs::path source_dir() {
  const char* env = std::getenv("STRATA_SOURCE_DIR");
  return env != nullptr && *env != '\0' ? fs::path(env) : fs::path(STRATA_SOURCE_DIR);
}

std::vector<fs::path> golden_model_dirs() {
  std::vector<fs::path> dirs;
  const fs::path root = source_dir() / "tests/golden/models";
  if (fs::is_directory(root)) {
    for (const auto& entry : fs::directory_iterator(root)) {
      if (fs::exists(entry.path() / "config.json")) dirs.push_back(entry.path());
    }
  }
  const fs::path default_model = source_dir() / "models/default";
  if (fs::exists(default_model / "config.json")) dirs.push_back(default_model);
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

constexpr int kBlockSize = 16;
constexpr int kNumBlocks = 64;

// Sequences of random tokens fed step by step: the first step prefills each in a chunk of a
// different size, later steps mix the remaining prefill chunks with decodes.
struct Sequence {
  std::vector<int32_t> tokens;
  int num_computed = 0;
  std::vector<int32_t> block_table;
};

ForwardBatch next_batch(std::vector<Sequence>& seqs, int chunk) {
  ForwardBatch b;
  b.query_start.push_back(0);
  for (auto& s : seqs) {
    if (s.num_computed >= static_cast<int>(s.tokens.size())) continue;
    const int n = std::min<int>(s.num_computed == 0 ? chunk : 1, static_cast<int>(s.tokens.size()) - s.num_computed);
    for (int t = s.num_computed; t < s.num_computed + n; ++t) {
      b.token_ids.push_back(s.tokens[t]);
      b.positions.push_back(t);
      b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
    }
    s.num_computed += n;
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_lens.push_back(s.num_computed);
    b.block_tables.push_back(s.block_table);
  }
  return b;
}

class CudaExecutorTest : public ::testing::TestWithParam<fs::path> {
 protected:
  void SetUp() override {
    if (cuda_device_count() > 0) return;
    // STRATA_REQUIRE_GPU=1 (GPU runners, tests/bench/run_on_gpu.sh) makes a missing device fail.
    if (std::getenv("STRATA_REQUIRE_GPU") != nullptr) FAIL() << "no CUDA device (STRATA_REQUIRE_GPU is set)";
    GTEST_SKIP() << "no CUDA device: the CUDA executor test needs a GPU";
  }
};

// Logits rows compared: the worst relative L2 error and how often the argmax agrees.
struct Agreement {
  double worst = 0, sum = 0;
  int rows = 0, same_argmax = 0;
  int worst_row = -1;  // the row `worst` came from, in the order of add()

  double mean() const { return rows > 0 ? sum / rows : 0.0; }

  void add(const float* want, const float* got, int vocab) {
    double err = 0, norm = 0;
    for (int i = 0; i < vocab; ++i) {
      err += (got[i] - want[i]) * (got[i] - want[i]);
      norm += want[i] * want[i];
    }
    const double relative = std::sqrt(err / std::max(norm, 1e-30));
    if (relative > worst) {
      worst = relative;
      worst_row = rows;
    }
    sum += relative;
    same_argmax += (std::max_element(want, want + vocab) - want) == (std::max_element(got, got + vocab) - got);
    ++rows;
  }
};

// Sequences in disjoint, shuffled blocks of a kNumBlocks cache.
std::vector<Sequence> make_sequences(const std::vector<std::vector<int32_t>>& tokens, std::mt19937_64& rng) {
  std::vector<int32_t> blocks(kNumBlocks);
  for (int i = 0; i < kNumBlocks; ++i) blocks[i] = i;
  std::shuffle(blocks.begin(), blocks.end(), rng);
  const size_t per_seq = kNumBlocks / tokens.size();
  std::vector<Sequence> seqs(tokens.size());
  for (size_t s = 0; s < tokens.size(); ++s) {
    seqs[s].tokens = tokens[s];
    seqs[s].block_table.assign(blocks.begin() + s * per_seq, blocks.begin() + (s + 1) * per_seq);
  }
  return seqs;
}

std::unique_ptr<ModelExecutor> cuda_executor(const fs::path& dir, const ModelConfig& config, const std::string& dtype,
                                             LoadFormat format = LoadFormat::kAuto) {
  CudaExecutorOptions options;
  options.block_size = kBlockSize;
  options.num_kv_blocks = kNumBlocks;
  options.max_num_batched_tokens = 512;
  options.max_num_seqs = 8;
  options.max_model_len = std::min(config.max_position_embeddings, 256);
  options.dtype = dtype;
  options.load.format = format;
  auto gpu = make_cuda_executor(dir.string(), config, options);
  EXPECT_TRUE(gpu.ok()) << gpu.status().to_string();
  return gpu.ok() ? std::move(gpu).value() : nullptr;
}

// How teacher_forced feeds the sequences: a first chunk of 29 tokens each, then one token per
// step (the engine's prefill and decode paths, mixed in one batch), or every sequence whole in
// one step (as transformers runs them).
enum class Feed { kChunkThenDecodes, kWholeSequences };

// Feeds `seqs` through `executor` and returns every position's logits,
// [sequence][position * vocab + i].
std::vector<std::vector<float>> teacher_forced(ModelExecutor& executor, std::vector<Sequence> seqs, int vocab,
                                               Feed feed = Feed::kChunkThenDecodes) {
  std::vector<std::vector<float>> out(seqs.size());
  for (int step = 0; step < 400; ++step) {
    std::vector<size_t> order;  // the sequences next_batch includes, in batch order
    for (size_t s = 0; s < seqs.size(); ++s) {
      if (seqs[s].num_computed < static_cast<int>(seqs[s].tokens.size())) order.push_back(s);
    }
    ForwardBatch b = next_batch(seqs, feed == Feed::kWholeSequences ? std::numeric_limits<int>::max() : 29);
    if (b.token_ids.empty()) break;
    std::vector<float> logits(b.logits_indices.size() * vocab, std::nanf(""));
    const Status st = executor.forward(b, logits);
    EXPECT_TRUE(st.ok()) << st.to_string();
    if (!st.ok()) return {};
    for (size_t i = 0; i < order.size(); ++i) {
      const auto first = logits.begin() + static_cast<ptrdiff_t>(b.query_start[i]) * vocab;
      const auto last = logits.begin() + static_cast<ptrdiff_t>(b.query_start[i + 1]) * vocab;
      out[order[i]].insert(out[order[i]].end(), first, last);
    }
  }
  return out;
}

// bf16/fp16 on the GPU against the fp32 CPU reference: the rounding of a 16-bit residual
// stream makes this looser than the transformers comparison below (transformers' own bf16 run
// differs from its fp32 run by as much; transformers_logits.py prints that spread).
// The CUDA executor against the CPU reference on the checkpoint's weights (or on the same
// dummy weights, made on the GPU by one and on the host by the other).
void expect_logits_agree_with_cpu(const fs::path& dir, LoadFormat format) {
  auto config = load_model_config(dir.string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto model = LlamaModel::load(dir.string(), *config, {.format = format});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  auto cpu = make_cpu_executor(std::move(model).value(), kNumBlocks, kBlockSize);
  auto gpu = cuda_executor(dir, *config, "auto", format);
  ASSERT_NE(gpu, nullptr);

  // Fixed sequences, as the transformers comparison's: with bf16 rounding at transformers'
  // points, the worst of 277 positions against fp32 varies by draw (on 2026-12-02, six random
  // draws on an H200 gave 0.022-0.070 on the default model, whose own transformers bf16 run is
  // 0.048 from fp32), so a fresh draw per run made this bound flaky rather than informative.
  constexpr uint64_t seed = 20261201;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const int vocab = config->vocab_size;
  std::vector<std::vector<int32_t>> tokens(3);
  const int lengths[] = {37, 90, 150};
  for (int s = 0; s < 3; ++s) {
    for (int t = 0; t < lengths[s]; ++t) tokens[s].push_back(static_cast<int32_t>(rng() % vocab));
  }
  const auto seqs = make_sequences(tokens, rng);
  const auto want = teacher_forced(*cpu, seqs, vocab);
  const auto got = teacher_forced(*gpu, seqs, vocab);
  ASSERT_EQ(want.size(), 3u);
  ASSERT_EQ(got.size(), 3u);
  Agreement a;
  for (int s = 0; s < 3; ++s) {
    ASSERT_EQ(got[s].size(), static_cast<size_t>(lengths[s]) * vocab);
    for (int t = 0; t < lengths[s]; ++t) {
      const float* g = got[s].data() + static_cast<size_t>(t) * vocab;
      for (int i = 0; i < vocab; ++i) ASSERT_TRUE(std::isfinite(g[i])) << "sequence " << s << " row " << t;
      a.add(want[s].data() + static_cast<size_t>(t) * vocab, g, vocab);
    }
  }
  ::testing::Test::RecordProperty("worst_relative_l2", std::to_string(a.worst));
  std::printf("%s%s: CUDA vs CPU fp32: worst relative L2 %.4f (mean %.4f), argmax agrees on %d of %d rows\n",
              dir.filename().c_str(), format == LoadFormat::kDummy ? " (dummy weights)" : "", a.worst, a.mean(),
              a.same_argmax, a.rows);
  EXPECT_LE(a.worst, 5e-2) << dir;
  // Dummy weights (std 0.02) give logits close together, whose argmax bf16 rounding flips
  // too often to bound; the error bound alone tells weights that differ (those are ~1.4 apart).
  if (format == LoadFormat::kDummy) return;
  EXPECT_GE(a.same_argmax, 0.95 * a.rows) << a.same_argmax << " of " << a.rows << " rows agree on the argmax";
}

TEST_P(CudaExecutorTest, LogitsAgreeWithTheCpuReference) {
  expect_logits_agree_with_cpu(GetParam(), LoadFormat::kAuto);
}

TEST_P(CudaExecutorTest, DummyWeightsMadeOnTheGpuAreTheHostOnes) {
  expect_logits_agree_with_cpu(GetParam(), LoadFormat::kDummy);
}

// The bar: teacher-forced in bf16, per-position relative L2 <= 2e-2 against
// transformers run in bf16 on the same GPU, same argmax on >= 98% of positions. The reference
// comes from tests/engine/cuda/transformers_logits.py (STRATA_TRANSFORMERS_LOGITS=its --out),
// which runs each sequence whole; so does the bar's run here. The engine's own feed (a chunk,
// then one decode step per token: the one-row GEMVs and the split-KV decode, whose fp32 sums
// run in another order and flip the odd bf16 rounding of a 16-bit residual stream) is held to
// the bound of the CPU-reference test above.
TEST_P(CudaExecutorTest, LogitsAgreeWithTransformersBf16) {
  const char* ref_dir = std::getenv("STRATA_TRANSFORMERS_LOGITS");
  if (ref_dir == nullptr || *ref_dir == '\0') {
    GTEST_SKIP() << "STRATA_TRANSFORMERS_LOGITS is not set (run tests/engine/cuda/transformers_logits.py first)";
  }
  const fs::path dir = GetParam();
  const std::string name = dir.filename().string();
  std::ifstream meta_file(fs::path(ref_dir) / (name + ".json"));
  ASSERT_TRUE(meta_file) << "no " << name << ".json in " << ref_dir;
  const auto meta = nlohmann::json::parse(meta_file);
  auto config = load_model_config(dir.string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  const int vocab = config->vocab_size;
  ASSERT_EQ(meta.at("vocab_size").get<int>(), vocab);
  const auto tokens = meta.at("sequences").get<std::vector<std::vector<int32_t>>>();
  size_t total = 0;
  for (const auto& t : tokens) total += t.size();
  std::vector<float> want(total * vocab);
  std::ifstream logits_file(fs::path(ref_dir) / (name + ".bf16.f32"), std::ios::binary);
  ASSERT_TRUE(logits_file.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4)))
      << name << ".bf16.f32 holds fewer than " << total << " rows";

  auto gpu = cuda_executor(dir, *config, "bfloat16");
  ASSERT_NE(gpu, nullptr);
  auto agreement = [&](Feed feed) {
    std::mt19937_64 rng(7);
    const auto got = teacher_forced(*gpu, make_sequences(tokens, rng), vocab, feed);
    // STRATA_LOGITS_DUMP=DIR keeps the whole-sequence logits, in the reference's layout, for
    // tests/engine/cuda/numerics_probe.py --strata.
    const char* dump_dir = std::getenv("STRATA_LOGITS_DUMP");
    if (feed == Feed::kWholeSequences && dump_dir != nullptr && *dump_dir != '\0') {
      std::ofstream dump(fs::path(dump_dir) / (name + ".strata.f32"), std::ios::binary);
      for (const auto& rows : got)
        dump.write(reinterpret_cast<const char*>(rows.data()), static_cast<std::streamsize>(rows.size() * 4));
      EXPECT_TRUE(dump.good()) << "cannot write " << name << ".strata.f32 in " << dump_dir;
    }
    Agreement a;
    EXPECT_EQ(got.size(), tokens.size());
    if (got.size() != tokens.size()) return a;
    size_t row = 0;
    for (size_t s = 0; s < tokens.size(); ++s) {
      EXPECT_EQ(got[s].size(), tokens[s].size() * vocab);
      if (got[s].size() != tokens[s].size() * vocab) return Agreement{};
      for (size_t t = 0; t < tokens[s].size(); ++t, ++row) {
        a.add(want.data() + row * vocab, got[s].data() + t * vocab, vocab);
      }
    }
    return a;
  };
  const Agreement whole = agreement(Feed::kWholeSequences);
  const Agreement stepped = agreement(Feed::kChunkThenDecodes);
  ASSERT_EQ(whole.rows, static_cast<int>(total));
  ASSERT_EQ(stepped.rows, static_cast<int>(total));
  RecordProperty("worst_relative_l2", std::to_string(whole.worst));
  const auto eager = meta.find("bf16_eager_vs_sdpa");
  std::printf(
      "%s: CUDA bf16 vs transformers bf16 (transformers bf16 vs fp32: worst %.4f; its eager vs sdpa "
      "attention in bf16: worst %.4f):\n",
      name.c_str(), meta.at("bf16_vs_fp32").at("worst_relative_l2").get<double>(),
      eager != meta.end() ? eager->at("worst_relative_l2").get<double>() : std::nan(""));
  const std::pair<const char*, const Agreement*> runs[] = {{"whole sequences", &whole},
                                                           {"chunk + decode steps", &stepped}};
  for (const auto& [what, a] : runs) {
    std::printf("  %-20s worst relative L2 %.4f (row %d), mean %.4f, argmax agrees on %d of %d rows\n", what, a->worst,
                a->worst_row, a->mean(), a->same_argmax, a->rows);
  }
  EXPECT_LE(whole.worst, 2e-2) << dir;
  EXPECT_GE(whole.same_argmax, 0.98 * whole.rows) << whole.same_argmax << " of " << whole.rows << " rows agree";
  EXPECT_LE(stepped.worst, 5e-2) << dir;
  EXPECT_GE(stepped.same_argmax, 0.95 * stepped.rows) << stepped.same_argmax << " of " << stepped.rows << " rows agree";
}

// forward_and_sample samples on the GPU: the same tokens and logprobs as sample_token on the
// host gives for the same step's logits (from forward), one row per sampling feature.
TEST_P(CudaExecutorTest, SamplesOnTheGpuAsTheHostSamplerDoes) {
  const fs::path dir = GetParam();
  auto config = load_model_config(dir.string());
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto gpu = cuda_executor(dir, *config, "auto");
  ASSERT_NE(gpu, nullptr);
  const int vocab = config->vocab_size;
  std::mt19937_64 rng(20261202);

  // Six prompts in one batch, each sampling after its last token.
  constexpr int kRows = 6;
  std::vector<std::vector<int32_t>> tokens(kRows);
  ForwardBatch b;
  b.query_start.push_back(0);
  for (int s = 0; s < kRows; ++s) {
    const int n = 3 + 7 * s;
    for (int t = 0; t < n; ++t) {
      tokens[s].push_back(static_cast<int32_t>(rng() % vocab));
      b.token_ids.push_back(tokens[s].back());
      b.positions.push_back(t);
    }
    b.query_start.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.context_lens.push_back(n);
    b.block_tables.push_back({2 * s, 2 * s + 1, 2 * s + 20});
    b.logits_indices.push_back(static_cast<int32_t>(b.token_ids.size()) - 1);
  }
  std::vector<float> logits(static_cast<size_t>(kRows) * vocab);
  const Status forwarded = gpu->forward(b, logits);
  ASSERT_TRUE(forwarded.ok()) << forwarded.to_string();
  const auto row_argmax = [&](int r) {
    const float* row = logits.data() + static_cast<size_t>(r) * vocab;
    return static_cast<int32_t>(std::max_element(row, row + vocab) - row);
  };

  std::vector<SamplingParams> params(kRows);
  params[0].temperature = 0.0f;
  params[0].logprobs = 3;
  params[1].temperature = 0.8f;
  params[1].top_p = 0.9f;
  params[1].logprobs = 0;
  params[2].top_k = 5;
  params[2].logit_bias = {{row_argmax(2), -100.0f}, {7 % vocab, 3.0f}};
  params[3].temperature = 0.7f;
  params[3].min_p = 0.05f;
  params[3].repetition_penalty = 1.3f;
  params[3].presence_penalty = 0.4f;
  params[3].frequency_penalty = 0.5f;
  params[3].logprobs = 5;
  // Greedy, but its argmax is an EOS id masked until min_tokens: the runner-up wins.
  params[4].temperature = 0.0f;
  params[4].min_tokens = 4;
  params[4].stop_token_ids = {1 % vocab};
  params[4].logprobs = 2;
  params[5].temperature = 1.2f;
  params[5].top_p = 0.95f;
  params[5].top_k = 50;
  params[5].logprobs = 20;
  const std::vector<int32_t> eos = {row_argmax(4)};
  std::vector<SamplingRequest> rows(kRows);
  for (int s = 0; s < kRows; ++s) {
    const std::span<const int32_t> all(tokens[s]);
    const size_t num_output = s == 3 || s == 4 ? std::min<size_t>(2, all.size() - 1) : 0;  // the rest is prompt
    rows[s] = {&params[s], SamplingContext{all.first(all.size() - num_output), all.last(num_output),
                                           s == 4 ? std::span<const int32_t>(eos) : std::span<const int32_t>(),
                                           1000u + static_cast<uint64_t>(s)}};
  }
  std::vector<SampledToken> got(kRows);
  const Status sampled = gpu->forward_and_sample(b, rows, got);
  ASSERT_TRUE(sampled.ok()) << sampled.to_string();

  for (int s = 0; s < kRows; ++s) {
    SCOPED_TRACE("row " + std::to_string(s));
    std::span<float> row(logits.data() + static_cast<size_t>(s) * vocab, static_cast<size_t>(vocab));
    const SampledToken want = sample_token(row, params[s], rows[s].context);
    EXPECT_EQ(got[s].token_id, want.token_id);
    EXPECT_NEAR(got[s].logprob, want.logprob, 1e-4);
    ASSERT_EQ(got[s].top.size(), want.top.size());
    for (size_t k = 0; k < want.top.size(); ++k) {
      EXPECT_EQ(got[s].top[k].token_id, want.top[k].token_id) << "top " << k;
      EXPECT_NEAR(got[s].top[k].logprob, want.top[k].logprob, 1e-4) << "top " << k;
    }
  }
  EXPECT_NE(got[4].token_id, eos[0]) << "min_tokens must mask the EOS id";
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaExecutorTest, ::testing::ValuesIn(golden_model_dirs()),
                         [](const auto& info) { return info.param.filename().string(); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(CudaExecutorTest);

}  // namespace
}  // namespace strata
