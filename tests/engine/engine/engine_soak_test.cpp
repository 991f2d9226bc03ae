// Soak: 10,000 requests with random lengths, seeds and cancellations through the threaded
// Engine. Every request must end with a final output and every block must return. Runs on
// STRATA_TEST_DEVICE (cpu unless set; the GPU run sets cuda).
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "engine/engine.h"
#include "tests/engine/engine/golden_fixture.h"

namespace strata {
namespace {

TEST(EngineSoak, TenThousandRequestsEndAndReturnEveryBlock) {
  auto models = testing::load_golden_models();
  STRATA_REQUIRE_GOLDEN(models);
  const auto& m = models.front();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);

  EngineConfig cfg;
  cfg.model_dir = m.dir;
  cfg.device = testing::test_device();
  cfg.block_size = 16;
  cfg.num_kv_blocks = 48;  // 768 slots for up to 64 requests in flight: preemption happens
  cfg.max_num_seqs = 48;
  cfg.max_num_batched_tokens = 192;
  auto engine = Engine::create(cfg);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  const int vocab = (*engine)->model_config().vocab_size;

  constexpr int kRequests = 10000;
  constexpr size_t kInFlight = 64;
  struct InFlight {
    std::shared_ptr<RequestStream> stream;
    int max_tokens;
    int received = 0;
  };
  std::vector<InFlight> inflight;
  int submitted = 0, finished = 0, cancelled = 0, aborted = 0;
  while (submitted < kRequests || !inflight.empty()) {
    while (inflight.size() < kInFlight && submitted < kRequests) {
      EngineRequest r;
      const int len = 1 + static_cast<int>(rng() % 60);
      for (int i = 0; i < len; ++i) r.prompt_ids.push_back(static_cast<int32_t>(rng() % vocab));
      r.params.max_tokens = 1 + static_cast<int>(rng() % 24);
      r.params.temperature = (rng() % 4 == 0) ? 0.0f : 0.5f + static_cast<float>(rng() % 100) / 100.0f;
      r.params.top_p = 0.5f + static_cast<float>(rng() % 50) / 100.0f;
      if (rng() % 2) r.params.seed = rng();
      if (rng() % 5 == 0) r.params.logprobs = static_cast<int>(rng() % 4);
      const int max_tokens = r.params.max_tokens;
      auto stream = (*engine)->submit(std::move(r));
      ASSERT_TRUE(stream.ok()) << stream.status().to_string();
      inflight.push_back({*stream, max_tokens});
      ++submitted;
    }
    bool progressed = false;
    for (size_t i = 0; i < inflight.size();) {
      bool done = false;
      for (auto& o : inflight[i].stream->drain()) {
        progressed = true;
        inflight[i].received += static_cast<int>(o.new_tokens.size());
        ASSERT_NE(o.finish_reason, FinishReason::kError) << o.error.to_string();
        if (o.finished) {
          done = true;
          if (o.finish_reason == FinishReason::kAbort) ++aborted;
          ASSERT_LE(inflight[i].received, inflight[i].max_tokens);
          if (o.finish_reason == FinishReason::kLength) {
            ASSERT_EQ(inflight[i].received, inflight[i].max_tokens);
          }
        }
      }
      if (done) {
        ++finished;
        inflight[i] = inflight.back();
        inflight.pop_back();
      } else {
        ++i;
      }
    }
    // Cancels keep the engine's pace (a chance per round that drained output), not this loop's:
    // against a slower engine (TSan, a loaded machine) most requests would be cancelled before
    // they ran, and the cache would never fill up enough to preempt.
    if (progressed && !inflight.empty() && rng() % 8 == 0) {
      (*engine)->cancel(inflight[rng() % inflight.size()].stream->request_id());
      ++cancelled;
    }
    if (!progressed) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_EQ(finished, kRequests);
  EXPECT_LE(aborted, cancelled);
  // The loop publishes its stats after the step that produced the last output.
  EngineStats stats;
  for (int i = 0; i < 200; ++i) {
    stats = (*engine)->stats();
    if (stats.kv.num_used == 0 && stats.num_running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(stats.num_running, 0);
  EXPECT_EQ(stats.num_waiting, 0);
  EXPECT_EQ(stats.kv.num_used, 0);
  EXPECT_EQ(stats.kv.num_free, cfg.num_kv_blocks);
  EXPECT_GT(stats.num_preemptions, 0u);
  std::printf("soak: %d requests, %d cancels sent, %d aborted, %llu preemptions, %llu steps\n", kRequests,
              cancelled, aborted, static_cast<unsigned long long>(stats.num_preemptions),
              static_cast<unsigned long long>(stats.num_steps));
}

TEST(EngineSoak, ShutdownAbortsWhatIsLeft) {
  auto models = testing::load_golden_models();
  STRATA_REQUIRE_GOLDEN(models);
  EngineConfig cfg;
  cfg.model_dir = models.front().dir;
  auto engine = Engine::create(cfg);
  ASSERT_TRUE(engine.ok());
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) {
    EngineRequest r;
    r.prompt_ids = models.front().prompts[0].ids;
    r.params.max_tokens = 200;
    r.params.ignore_eos = true;
    auto s = (*engine)->submit(std::move(r));
    ASSERT_TRUE(s.ok());
    streams.push_back(*s);
  }
  (*engine)->shutdown(0);
  for (auto& s : streams) {
    std::optional<RequestOutput> last;
    while (auto o = s->next()) last = o;
    ASSERT_TRUE(last.has_value());
    EXPECT_TRUE(last->finished);
  }
  EXPECT_EQ((*engine)->stats().kv.num_used, 0);
  EngineRequest late;
  late.prompt_ids = {1, 2, 3};
  EXPECT_EQ((*engine)->submit(std::move(late)).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace strata
