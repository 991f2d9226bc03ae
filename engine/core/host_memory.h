// How much memory this process may still take on the host: MemAvailable of /proc/meminfo,
// lowered by a cgroup limit (a container's memory.max) where one is set. Used to refuse a
// plan (weights + KV cache + workspace) before allocating it, instead of being OOM-killed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata {

struct HostMemory {
  uint64_t available_bytes = 0;
  std::string source;  // what bounded it, for messages: "MemAvailable" or "cgroup memory.max"
};

// The figures of this machine and process now; nullopt when /proc/meminfo cannot be read.
std::optional<HostMemory> host_memory_available();

// The pieces, parsed from the files' text (for tests): MemAvailable in bytes; a cgroup v2
// memory.max ("max" is no limit) or v1 memory.limit_in_bytes, less its current usage.
std::optional<uint64_t> parse_mem_available(std::string_view meminfo);
std::optional<uint64_t> cgroup_headroom(std::string_view limit_text, std::string_view usage_text);

// A plan of host memory: each part with its bytes, checked against what is available.
struct HostMemoryPlan {
  uint64_t weight_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t workspace_bytes = 0;
  uint64_t total() const { return weight_bytes + kv_cache_bytes + workspace_bytes; }
  std::string describe() const;  // "weights 28.1 MiB + KV cache 256.0 MiB + workspace 3.2 MiB = 287.3 MiB"
};

std::string format_mib(uint64_t bytes);

}  // namespace strata
