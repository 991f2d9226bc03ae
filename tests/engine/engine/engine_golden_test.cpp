// Engine against transformers: greedy continuations and logprobs of every golden checkpoint,
// one request at a time and all together under chunked prefill, staggered arrival and
// preemption; prefix-cache reuse; seeded sampling independent of the batch.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/engine_core.h"
#include "tests/engine/engine/golden_fixture.h"

namespace strata {
namespace {

using testing::GoldenModel;
using testing::golden_models_root;
using testing::load_golden_models;

std::vector<float> log_softmax(const std::vector<float>& logits) {
  double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(x - max);
  const double lse = max + std::log(sum);
  std::vector<float> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<float>(logits[i] - lse);
  return out;
}

EngineRequest greedy_request(const std::vector<int32_t>& ids, int max_tokens, int logprobs = -1) {
  EngineRequest r;
  r.prompt_ids = ids;
  r.params.temperature = 0.0f;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.logprobs = logprobs;
  return r;
}

// Drives the core until every request finished; `arrivals[k]` are the requests added at step k.
std::map<uint64_t, std::vector<SampledToken>> run_to_completion(
    EngineCore& core, std::vector<std::vector<EngineRequest>> arrivals, std::vector<uint64_t>* ids_in_order) {
  std::map<uint64_t, std::vector<SampledToken>> out;
  size_t finished = 0, total = 0;
  for (auto& a : arrivals) total += a.size();
  for (size_t step = 0; finished < total; ++step) {
    if (step < arrivals.size()) {
      for (auto& req : arrivals[step]) {
        auto id = core.add_request(std::move(req));
        EXPECT_TRUE(id.ok()) << id.status().to_string();
        if (!id.ok()) return out;
        ids_in_order->push_back(*id);
      }
    }
    for (auto& o : core.step()) {
      for (auto& t : o.new_tokens) out[o.request_id].push_back(t);
      if (o.finished) ++finished;
    }
    EXPECT_LT(step, 100000u) << "engine made no progress";
    if (step >= 100000) break;
  }
  return out;
}

std::vector<int32_t> token_ids(const std::vector<SampledToken>& tokens) {
  std::vector<int32_t> ids;
  for (const auto& t : tokens) ids.push_back(t.token_id);
  return ids;
}

class EngineGolden : public ::testing::Test {
 protected:
  void SetUp() override { models_ = load_golden_models(); }
  std::vector<GoldenModel> models_;
};

TEST_F(EngineGolden, OneRequestAtATimeMatchesTransformers) {
  STRATA_REQUIRE_GOLDEN(models_);
  for (const auto& m : models_) {
    SCOPED_TRACE(m.name);
    EngineConfig cfg;
    cfg.model_dir = m.dir;
    cfg.max_num_seqs = 4;
    auto core = EngineCore::create(cfg);
    ASSERT_TRUE(core.ok()) << core.status().to_string();
    for (size_t p = 0; p < m.prompts.size(); ++p) {
      SCOPED_TRACE("prompt " + std::to_string(p));
      const auto& prompt = m.prompts[p];
      std::vector<uint64_t> ids;
      auto out = run_to_completion(**core, {{greedy_request(prompt.ids, static_cast<int>(prompt.greedy.size()), 5)}}, &ids);
      const auto& tokens = out[ids[0]];
      EXPECT_EQ(token_ids(tokens), prompt.greedy);
      // The first token's logprobs are log_softmax of the last prompt position's logits.
      ASSERT_FALSE(tokens.empty());
      const auto ref = log_softmax(prompt.last_logits);
      EXPECT_NEAR(tokens[0].logprob, ref[tokens[0].token_id], 2e-4);
      ASSERT_EQ(tokens[0].top.size(), 5u);
      for (const auto& alt : tokens[0].top) EXPECT_NEAR(alt.logprob, ref[alt.token_id], 2e-4);
      EXPECT_EQ((*core)->stats().kv.num_used, 0);
    }
  }
}

TEST_F(EngineGolden, BatchedChunkedPreemptedMatchesTransformers) {
  STRATA_REQUIRE_GOLDEN(models_);
  for (const auto& m : models_) {
    SCOPED_TRACE(m.name);
    EngineConfig cfg;
    cfg.model_dir = m.dir;
    cfg.block_size = 4;
    cfg.max_num_batched_tokens = 7;  // prefill chunks of at most 7 tokens
    cfg.max_num_seqs = 16;
    int largest = 0;
    for (const auto& p : m.prompts) largest = std::max<int>(largest, p.ids.size() + p.greedy.size());
    cfg.num_kv_blocks = (largest + 3) / 4 + 4;  // one long request fits; all of them do not
    auto core = EngineCore::create(cfg);
    ASSERT_TRUE(core.ok()) << core.status().to_string();
    std::vector<std::vector<EngineRequest>> arrivals;
    for (const auto& p : m.prompts) {
      arrivals.push_back({greedy_request(p.ids, static_cast<int>(p.greedy.size()))});
      arrivals.emplace_back();  // staggered: one arrival every other step
    }
    std::vector<uint64_t> ids;
    auto out = run_to_completion(**core, std::move(arrivals), &ids);
    ASSERT_EQ(ids.size(), m.prompts.size());
    for (size_t p = 0; p < m.prompts.size(); ++p) {
      EXPECT_EQ(token_ids(out[ids[p]]), m.prompts[p].greedy) << "prompt " << p;
    }
    const EngineStats stats = (*core)->stats();
    EXPECT_GE(stats.num_preemptions, 1u);
    EXPECT_EQ(stats.kv.num_used, 0);
    EXPECT_EQ(stats.kv.num_free, cfg.num_kv_blocks);
  }
}

TEST_F(EngineGolden, SharedPrefixReusesCachedBlocksWithSameOutput) {
  STRATA_REQUIRE_GOLDEN(models_);
  const GoldenModel& m = models_.front();
  const auto it = std::max_element(m.prompts.begin(), m.prompts.end(),
                                   [](const auto& a, const auto& b) { return a.ids.size() < b.ids.size(); });
  ASSERT_GE(it->ids.size(), 49u) << "the golden set needs a prompt of more than 3 blocks of 16";
  std::vector<int32_t> prefix(it->ids.begin(), it->ids.begin() + 48);

  auto run = [&](bool caching, uint64_t* hits) {
    EngineConfig cfg;
    cfg.model_dir = m.dir;
    cfg.block_size = 16;
    cfg.enable_prefix_caching = caching;
    auto core = EngineCore::create(cfg);
    EXPECT_TRUE(core.ok());
    std::vector<uint64_t> ids;
    run_to_completion(**core, {{greedy_request(it->ids, 8)}}, &ids);
    std::vector<int32_t> second = prefix;
    second.push_back(it->ids[10]);
    second.push_back(it->ids[3]);
    const uint64_t hits_before = (*core)->stats().kv.prefix_hits;
    std::vector<uint64_t> ids2;
    auto out = run_to_completion(**core, {{greedy_request(second, 12)}}, &ids2);
    *hits = (*core)->stats().kv.prefix_hits - hits_before;
    EXPECT_EQ((*core)->stats().kv.num_used, 0);
    return token_ids(out[ids2[0]]);
  };
  uint64_t hits_on = 0, hits_off = 0;
  auto with_cache = run(true, &hits_on);
  auto without_cache = run(false, &hits_off);
  EXPECT_EQ(hits_on, 3u);
  EXPECT_EQ(hits_off, 0u);
  EXPECT_EQ(with_cache, without_cache);
}

TEST_F(EngineGolden, CachedTokensAreReportedInOutputs) {
  STRATA_REQUIRE_GOLDEN(models_);
  const GoldenModel& m = models_.front();
  const auto& longest = *std::max_element(m.prompts.begin(), m.prompts.end(),
                                          [](const auto& a, const auto& b) { return a.ids.size() < b.ids.size(); });
  EngineConfig cfg;
  cfg.model_dir = m.dir;
  auto core = EngineCore::create(cfg);
  ASSERT_TRUE(core.ok());
  std::vector<uint64_t> ids;
  run_to_completion(**core, {{greedy_request(longest.ids, 2)}}, &ids);
  ASSERT_TRUE((*core)->add_request(greedy_request(longest.ids, 2)).ok());
  int cached = -1;
  while ((*core)->has_work()) {
    for (auto& o : (*core)->step()) cached = o.num_cached_tokens;
  }
  EXPECT_EQ(cached, static_cast<int>((longest.ids.size() - 1) / 16 * 16));
}

TEST_F(EngineGolden, SeededSamplingDoesNotDependOnTheBatch) {
  STRATA_REQUIRE_GOLDEN(models_);
  const GoldenModel& m = models_.front();
  auto sampled = [&](const std::vector<int32_t>& prompt, bool crowded) {
    EngineConfig cfg;
    cfg.model_dir = m.dir;
    auto core = EngineCore::create(cfg);
    EXPECT_TRUE(core.ok());
    EngineRequest r;
    r.prompt_ids = prompt;
    r.params.temperature = 1.0f;
    r.params.top_p = 0.9f;
    r.params.seed = 1234;
    r.params.max_tokens = 20;
    r.params.ignore_eos = true;
    std::vector<std::vector<EngineRequest>> arrivals(1);
    if (crowded) {
      for (const auto& p : m.prompts) {
        EngineRequest other = r;
        other.prompt_ids = p.ids;
        other.params.seed.reset();
        arrivals[0].push_back(other);
      }
    }
    arrivals[0].push_back(r);
    std::vector<uint64_t> ids;
    auto out = run_to_completion(**core, arrivals, &ids);
    return token_ids(out[ids.back()]);
  };
  const auto& prompt = m.prompts[0].ids;
  const auto alone = sampled(prompt, false);
  EXPECT_EQ(alone.size(), 20u);
  EXPECT_EQ(alone, sampled(prompt, true));
  EXPECT_EQ(alone, sampled(prompt, false));
}

}  // namespace
}  // namespace strata
