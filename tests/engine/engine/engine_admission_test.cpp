// Admission under bursts: Engine::submit takes max_num_seqs + max_waiting requests at once and
// refuses only beyond that; a request it accepted never ends with a queue error.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "engine/engine.h"
#include "tests/engine/engine/golden_fixture.h"

namespace strata {
namespace {

EngineConfig admission_config(const std::string& model_dir, int max_num_seqs, int max_waiting) {
  EngineConfig cfg;
  cfg.model_dir = model_dir;
  cfg.device = testing::test_device();
  cfg.max_num_seqs = max_num_seqs;
  cfg.max_waiting = max_waiting;
  return cfg;
}

EngineRequest long_request(const testing::GoldenModel& m, int max_tokens) {
  EngineRequest r;
  r.prompt_ids = m.prompts[0].ids;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

// Blocks in use once the engine has refreshed its statistics (it does so just after it pushes
// the outputs of a step, so a test that has read every final output may still see the last
// step's figure for a moment).
int kv_blocks_in_use_after_settling(const Engine& engine) {
  for (int i = 0; i < 400 && engine.stats().kv.num_used != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return engine.stats().kv.num_used;
}

RequestOutput last_output(RequestStream& stream) {
  RequestOutput last;
  while (auto o = stream.next()) last = std::move(*o);
  return last;
}

TEST(EngineAdmission, BurstOfRunSlotsPlusQueueIsAcceptedWhole) {
  auto models = testing::load_golden_models();
  STRATA_REQUIRE_GOLDEN(models);
  const auto& m = models.front();
  auto engine = Engine::create(admission_config(m.dir, 4, 2));
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();

  // Submitted faster than one engine step: before the fix only the 2 queue places were sure.
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 6; ++i) {
    auto s = (*engine)->submit(long_request(m, 200));
    ASSERT_TRUE(s.ok()) << "request " << i << ": " << s.status().to_string();
    streams.push_back(*s);
  }
  auto refused = (*engine)->submit(long_request(m, 200));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("queue is full"), std::string::npos) << refused.status().message();

  // A place frees when a request ends, not before.
  (*engine)->cancel(streams[0]->request_id());
  EXPECT_EQ(last_output(*streams[0]).finish_reason, FinishReason::kAbort);
  auto later = (*engine)->submit(long_request(m, 200));
  ASSERT_TRUE(later.ok()) << later.status().to_string();
  streams[0] = *later;
  for (auto& s : streams) (*engine)->cancel(s->request_id());
  for (auto& s : streams) EXPECT_TRUE(last_output(*s).finished);
  EXPECT_EQ(kv_blocks_in_use_after_settling(**engine), 0);
}

TEST(EngineAdmission, ConcurrentSubmittersNeverSeeAnAcceptedRequestRefused) {
  auto models = testing::load_golden_models();
  STRATA_REQUIRE_GOLDEN(models);
  const auto& m = models.front();
  constexpr int kSeqs = 2, kWaiting = 3, kThreads = 8, kPerThread = 40;
  auto engine = Engine::create(admission_config(m.dir, kSeqs, kWaiting));
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();

  std::atomic<int> accepted{0}, refused{0}, completed{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto s = (*engine)->submit(long_request(m, 1 + (t + i) % 8));
        if (!s.ok()) {
          if (s.status().code() == StatusCode::kResourceExhausted) ++refused;
          continue;
        }
        ++accepted;
        const RequestOutput last = last_output(**s);
        if (last.finish_reason == FinishReason::kLength) ++completed;
        if (last.finish_reason == FinishReason::kError) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted + refused, kThreads * kPerThread);
  EXPECT_EQ(errors, 0) << "an accepted request ended with an error";
  EXPECT_EQ(completed, accepted);
  // 8 submitters each waiting for its own request cannot exceed 5 places: some are refused,
  // and at least the places' worth are taken every round.
  EXPECT_GT(refused, 0);
  EXPECT_GE(accepted, kSeqs + kWaiting);
  EXPECT_EQ(kv_blocks_in_use_after_settling(**engine), 0);
}

}  // namespace
}  // namespace strata
