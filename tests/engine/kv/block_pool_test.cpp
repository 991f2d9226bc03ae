// Tests for engine/kv/block_pool.cpp and kv_cache_manager.cpp.
#include "engine/kv/block_pool.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <set>

#include "engine/kv/kv_cache_manager.h"

namespace strata {
namespace {

std::vector<int32_t> iota_tokens(int n, int start = 0) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST(BlockPool, AllocatesEveryBlockOnceThenRunsOut) {
  BlockPool pool(4, 16);
  std::set<int32_t> got;
  for (int i = 0; i < 4; ++i) {
    auto b = pool.allocate();
    ASSERT_TRUE(b.has_value());
    got.insert(*b);
  }
  EXPECT_EQ(got.size(), 4u);
  EXPECT_FALSE(pool.allocate().has_value());
  EXPECT_EQ(pool.stats().num_used, 4);
  EXPECT_EQ(pool.stats().num_free, 0);
}

TEST(BlockPool, ReleaseAtZeroReferencesFreesTheBlock) {
  BlockPool pool(2, 4);
  int32_t b = *pool.allocate();
  pool.retain(b);
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.release(b);
  EXPECT_EQ(pool.stats().num_free, 1);
  pool.release(b);
  EXPECT_EQ(pool.stats().num_free, 2);
}

TEST(BlockPool, ReleasingAFreeBlockIsAProgrammerError) {
  BlockPool pool(1, 4);
  int32_t b = *pool.allocate();
  pool.release(b);
#ifdef NDEBUG
  EXPECT_THROW(pool.release(b), std::logic_error);
#else
  EXPECT_DEATH(pool.release(b), "");
#endif
}

TEST(BlockPool, CachedFreeBlockIsFoundUntilReallocated) {
  BlockPool pool(2, 4);
  auto tokens = iota_tokens(4);
  int32_t b = *pool.allocate();
  pool.register_full_block(b, 0, tokens);
  pool.release(b);
  EXPECT_EQ(pool.stats().num_cached_free, 1);
  auto hit = pool.lookup(0, tokens);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, b);
  // The uncached block is handed out first; the cached one only when nothing else is left.
  int32_t other = *pool.allocate();
  EXPECT_NE(other, b);
  EXPECT_TRUE(pool.lookup(0, tokens).has_value());
  int32_t evicted = *pool.allocate();
  EXPECT_EQ(evicted, b);
  EXPECT_FALSE(pool.lookup(0, tokens).has_value());
  EXPECT_EQ(pool.stats().num_cached, 0);
}

TEST(BlockPool, LookupDistinguishesParentAndTokens) {
  BlockPool pool(2, 4);
  auto tokens = iota_tokens(4);
  int32_t b = *pool.allocate();
  pool.register_full_block(b, 7, tokens);
  EXPECT_FALSE(pool.lookup(8, tokens).has_value());
  EXPECT_FALSE(pool.lookup(7, iota_tokens(4, 1)).has_value());
  EXPECT_TRUE(pool.lookup(7, tokens).has_value());
}

TEST(BlockPool, EvictsLeastRecentlyFreedCachedBlockFirst) {
  BlockPool pool(3, 2);
  int32_t a = *pool.allocate(), b = *pool.allocate(), c = *pool.allocate();
  pool.register_full_block(a, 0, iota_tokens(2, 0));
  pool.register_full_block(b, 0, iota_tokens(2, 10));
  pool.register_full_block(c, 0, iota_tokens(2, 20));
  pool.release(b);
  pool.release(a);
  pool.release(c);
  EXPECT_EQ(*pool.allocate(), b);
  EXPECT_EQ(*pool.allocate(), a);
  EXPECT_EQ(*pool.allocate(), c);
}

TEST(KvCacheManager, ReservesWholeBlocksAllOrNothing) {
  KvCacheManager kv(4, 16, false);
  kv.begin_sequence(1, iota_tokens(10));
  EXPECT_TRUE(kv.reserve(1, 33));
  EXPECT_EQ(kv.block_table(1).size(), 3u);
  kv.begin_sequence(2, iota_tokens(10));
  EXPECT_FALSE(kv.reserve(2, 17));  // needs 2, only 1 free
  EXPECT_EQ(kv.block_table(2).size(), 0u);
  EXPECT_TRUE(kv.reserve(2, 16));
  kv.end_sequence(1);
  kv.end_sequence(2);
  EXPECT_EQ(kv.num_free_blocks(), 4);
}

TEST(KvCacheManager, PrefixCacheReusesFullBlocksAcrossRequests) {
  KvCacheManager kv(16, 4, true);
  auto first = iota_tokens(14);  // 3 full blocks + 2 tokens
  EXPECT_EQ(kv.begin_sequence(1, first), 0);
  ASSERT_TRUE(kv.reserve(1, 14));
  kv.mark_computed(1, first, 14);
  EXPECT_EQ(kv.stats().num_cached, 3);
  auto first_table = kv.block_table(1);
  kv.end_sequence(1);

  auto second = iota_tokens(12);  // shares 3 blocks; the last one must still be computed
  second.push_back(99);
  EXPECT_EQ(kv.begin_sequence(2, second), 12);
  EXPECT_EQ(std::vector<int32_t>(first_table.begin(), first_table.begin() + 3), kv.block_table(2));

  auto exact = iota_tokens(12);  // the whole prompt is cached: the last block is recomputed
  EXPECT_EQ(kv.begin_sequence(3, exact), 8);
  EXPECT_EQ(kv.pool().ref_count(kv.block_table(2)[0]), 2);
  kv.end_sequence(2);
  kv.end_sequence(3);
  EXPECT_EQ(kv.num_free_blocks(), 16);
}

TEST(KvCacheManager, DisabledPrefixCachingNeverHits) {
  KvCacheManager kv(8, 4, false);
  auto t = iota_tokens(9);
  kv.begin_sequence(1, t);
  ASSERT_TRUE(kv.reserve(1, 9));
  kv.mark_computed(1, t, 9);
  kv.end_sequence(1);
  EXPECT_EQ(kv.begin_sequence(2, t), 0);
  EXPECT_EQ(kv.stats().num_cached, 0);
}

TEST(KvCacheManager, RandomLifecyclesReturnEveryBlock) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  KvCacheManager kv(64, 4, true);
  std::vector<std::pair<uint64_t, std::vector<int32_t>>> live;
  uint64_t next_id = 1;
  for (int iter = 0; iter < 2000; ++iter) {
    if (live.size() < 8 && rng() % 2 == 0) {
      std::vector<int32_t> tokens(1 + rng() % 30);
      for (auto& t : tokens) t = static_cast<int32_t>(rng() % 3);  // few symbols: many shared prefixes
      uint64_t id = next_id++;
      int cached = kv.begin_sequence(id, tokens);
      ASSERT_LT(cached, static_cast<int>(tokens.size()));
      if (kv.reserve(id, static_cast<int>(tokens.size()))) {
        kv.mark_computed(id, tokens, static_cast<int>(tokens.size()));
        live.emplace_back(id, tokens);
      } else {
        kv.end_sequence(id);
      }
    } else if (!live.empty()) {
      size_t i = rng() % live.size();
      kv.end_sequence(live[i].first);
      live.erase(live.begin() + static_cast<long>(i));
    }
    auto s = kv.stats();
    ASSERT_EQ(s.num_free + s.num_used, 64);
  }
  for (auto& [id, tokens] : live) kv.end_sequence(id);
  EXPECT_EQ(kv.stats().num_free, 64);
  EXPECT_EQ(kv.stats().num_used, 0);
}

}  // namespace
}  // namespace strata
