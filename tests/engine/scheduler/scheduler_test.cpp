// Tests for engine/scheduler/scheduler.cpp: budget, ordering, admission, preemption, cancel.
#include "engine/scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

namespace strata {
namespace {

std::unique_ptr<Request> make_request(uint64_t id, int prompt_len, int first_token = 0) {
  auto r = std::make_unique<Request>();
  r->id = id;
  r->tokens.resize(prompt_len);
  std::iota(r->tokens.begin(), r->tokens.end(), first_token);
  r->num_prompt_tokens = prompt_len;
  r->max_total_tokens = prompt_len + 100;
  return r;
}

// Completes a planned step the way the engine does: chunks that sample get one new token.
void run_step(Scheduler& s, const StepPlan& plan) {
  s.complete_step(plan);
  for (const auto& c : plan.chunks) {
    if (c.samples) c.request->tokens.push_back(1000 + c.request->num_output_tokens());
  }
}

TEST(Scheduler, ChunksPrefillsWithinTheTokenBudget) {
  KvCacheManager kv(64, 4, false);
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 7}, kv);
  ASSERT_TRUE(s.add(make_request(1, 20)).ok());
  std::vector<int> chunk_sizes;
  while (true) {
    StepPlan plan = s.schedule();
    ASSERT_EQ(plan.chunks.size(), 1u);
    EXPECT_LE(plan.num_tokens, 7);
    chunk_sizes.push_back(plan.chunks[0].num_new_tokens);
    bool done = plan.chunks[0].samples;
    run_step(s, plan);
    if (done) break;
  }
  EXPECT_EQ(chunk_sizes, (std::vector<int>{7, 7, 6}));
  EXPECT_EQ(s.find(1)->num_output_tokens(), 1);
}

TEST(Scheduler, DecodesComeBeforePrefillChunksAndAdmissions) {
  KvCacheManager kv(64, 4, false);
  Scheduler s({.max_num_seqs = 8, .max_num_batched_tokens = 8}, kv);
  ASSERT_TRUE(s.add(make_request(1, 3)).ok());
  run_step(s, s.schedule());  // request 1 prefilled; now decoding
  ASSERT_TRUE(s.add(make_request(2, 30)).ok());
  StepPlan plan = s.schedule();
  ASSERT_EQ(plan.chunks.size(), 2u);
  EXPECT_EQ(plan.chunks[0].request->id, 1u);
  EXPECT_EQ(plan.chunks[0].num_new_tokens, 1);
  EXPECT_TRUE(plan.chunks[0].samples);
  EXPECT_EQ(plan.chunks[1].request->id, 2u);
  EXPECT_EQ(plan.chunks[1].num_new_tokens, 7);
  EXPECT_FALSE(plan.chunks[1].samples);
}

TEST(Scheduler, MaxNumSeqsCapsRunningRequests) {
  KvCacheManager kv(64, 4, false);
  Scheduler s({.max_num_seqs = 2, .max_num_batched_tokens = 100}, kv);
  for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(s.add(make_request(i, 2)).ok());
  StepPlan plan = s.schedule();
  EXPECT_EQ(plan.chunks.size(), 2u);
  EXPECT_EQ(s.stats().num_running, 2);
  EXPECT_EQ(s.stats().num_waiting, 1);
}

TEST(Scheduler, PreemptsNewestRequestWhenBlocksRunOut) {
  KvCacheManager kv(4, 4, false);  // 16 slots
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64}, kv);
  ASSERT_TRUE(s.add(make_request(1, 8)).ok());  // 2 blocks
  ASSERT_TRUE(s.add(make_request(2, 8)).ok());  // 2 blocks: pool full
  run_step(s, s.schedule());
  EXPECT_EQ(kv.num_free_blocks(), 0);
  // Both now hold 9 tokens: the next decode of request 1 needs a third block.
  StepPlan plan = s.schedule();
  ASSERT_EQ(plan.preempted.size(), 1u);
  EXPECT_EQ(plan.preempted[0]->id, 2u);
  ASSERT_EQ(plan.chunks.size(), 1u);
  EXPECT_EQ(plan.chunks[0].request->id, 1u);
  EXPECT_EQ(s.find(2)->num_computed_tokens, 0);
  EXPECT_EQ(s.find(2)->status, RequestStatus::kWaiting);
  EXPECT_EQ(s.stats().num_preemptions, 1u);
}

TEST(Scheduler, PreemptedRequestRecomputesPromptAndOutput) {
  KvCacheManager kv(4, 4, false);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64}, kv);
  ASSERT_TRUE(s.add(make_request(1, 8)).ok());
  ASSERT_TRUE(s.add(make_request(2, 8)).ok());
  run_step(s, s.schedule());
  run_step(s, s.schedule());  // preempts 2
  s.finish(1, FinishReason::kStop);
  StepPlan plan = s.schedule();
  ASSERT_EQ(plan.chunks.size(), 1u);
  EXPECT_EQ(plan.chunks[0].request->id, 2u);
  EXPECT_EQ(plan.chunks[0].num_new_tokens, 9);  // 8 prompt + 1 generated
  EXPECT_TRUE(plan.chunks[0].samples);
}

TEST(Scheduler, RemoveFreesBlocksWherever) {
  KvCacheManager kv(16, 4, false);
  Scheduler s({.max_num_seqs = 1, .max_num_batched_tokens = 64}, kv);
  ASSERT_TRUE(s.add(make_request(1, 10)).ok());
  ASSERT_TRUE(s.add(make_request(2, 10)).ok());
  run_step(s, s.schedule());
  EXPECT_GT(kv.stats().num_used, 0);
  EXPECT_NE(s.remove(2), nullptr);  // waiting
  EXPECT_NE(s.remove(1), nullptr);  // running
  EXPECT_EQ(s.remove(3), nullptr);
  EXPECT_EQ(kv.stats().num_used, 0);
  EXPECT_FALSE(s.has_work());
}

TEST(Scheduler, AdmissionUsesPrefixCacheHits) {
  KvCacheManager kv(16, 4, true);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64}, kv);
  ASSERT_TRUE(s.add(make_request(1, 13)).ok());
  run_step(s, s.schedule());
  s.finish(1, FinishReason::kStop);
  ASSERT_TRUE(s.add(make_request(2, 14)).ok());
  StepPlan plan = s.schedule();
  ASSERT_EQ(plan.chunks.size(), 1u);
  EXPECT_EQ(s.find(2)->num_cached_tokens, 12);
  EXPECT_EQ(plan.chunks[0].num_new_tokens, 2);
}

}  // namespace
}  // namespace strata
