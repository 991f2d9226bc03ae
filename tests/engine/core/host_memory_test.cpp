// Host memory figures: /proc/meminfo and cgroup limits parsed, and the machine's own read.
#include "engine/core/host_memory.h"

#include <gtest/gtest.h>

namespace strata {
namespace {

TEST(HostMemory, ParsesMemAvailableInKiB) {
  const char* meminfo =
      "MemTotal:       24578112 kB\n"
      "MemFree:         1200000 kB\n"
      "MemAvailable:   20000000 kB\n"
      "Buffers:          100000 kB\n";
  EXPECT_EQ(parse_mem_available(meminfo), uint64_t{20000000} * 1024);
  EXPECT_FALSE(parse_mem_available("MemTotal: 1 kB\n").has_value());
}

TEST(HostMemory, CgroupLimitLessUsageIsTheHeadroom) {
  EXPECT_EQ(cgroup_headroom("1073741824\n", "536870912\n"), uint64_t{536870912});
  EXPECT_EQ(cgroup_headroom("1073741824\n", "2147483648\n"), uint64_t{0});  // over its limit already
  EXPECT_FALSE(cgroup_headroom("max\n", "536870912\n").has_value());          // v2: no limit
  EXPECT_FALSE(cgroup_headroom("9223372036854771712\n", "1\n").has_value());  // v1: no limit
}

TEST(HostMemory, ThisMachineReportsSomething) {
  auto m = host_memory_available();
  ASSERT_TRUE(m.has_value()) << "cannot read /proc/meminfo";
  EXPECT_GT(m->available_bytes, uint64_t{16} << 20);
  EXPECT_FALSE(m->source.empty());
}

TEST(HostMemory, PlanDescribesEachPart) {
  HostMemoryPlan plan{.weight_bytes = 1 << 20, .kv_cache_bytes = 3 << 20, .workspace_bytes = 1 << 19};
  EXPECT_EQ(plan.total(), (4u << 20) + (1u << 19));
  EXPECT_EQ(plan.describe(), "weights 1.0 MiB + KV cache 3.0 MiB + workspace 0.5 MiB = 4.5 MiB");
}

}  // namespace
}  // namespace strata
