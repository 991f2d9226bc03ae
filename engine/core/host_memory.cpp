// Host memory figures from /proc and the cgroup filesystem.
#include "engine/core/host_memory.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace strata {

namespace {

std::optional<std::string> read_text(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<uint64_t> parse_u64(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

std::optional<uint64_t> parse_mem_available(std::string_view meminfo) {
  const std::string_view key = "MemAvailable:";
  const size_t at = meminfo.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = meminfo.substr(at + key.size());
  rest = rest.substr(0, rest.find('\n'));
  const size_t digits = rest.find_first_of("0123456789");
  if (digits == std::string_view::npos) return std::nullopt;
  rest = rest.substr(digits);
  const size_t end = rest.find_first_not_of("0123456789");
  auto kib = parse_u64(rest.substr(0, end));
  if (!kib) return std::nullopt;
  return *kib * 1024;  // the kernel writes "kB" and means KiB
}

std::optional<uint64_t> cgroup_headroom(std::string_view limit_text, std::string_view usage_text) {
  auto limit = parse_u64(limit_text);  // "max" (v2) parses as no number: no limit
  if (!limit || *limit >= (uint64_t{1} << 62)) return std::nullopt;  // v1 writes ~2^63 for none
  const uint64_t usage = parse_u64(usage_text).value_or(0);
  return *limit > usage ? *limit - usage : 0;
}

std::optional<HostMemory> host_memory_available() {
  auto meminfo = read_text("/proc/meminfo");
  if (!meminfo) return std::nullopt;
  auto available = parse_mem_available(*meminfo);
  if (!available) return std::nullopt;
  HostMemory m{*available, "MemAvailable of /proc/meminfo"};
  struct Cgroup {
    const char* limit;
    const char* usage;
    const char* name;
  };
  for (const Cgroup& cg : {Cgroup{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "cgroup memory.max"},
                           Cgroup{"/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                  "/sys/fs/cgroup/memory/memory.usage_in_bytes", "cgroup memory.limit_in_bytes"}}) {
    auto limit = read_text(cg.limit);
    if (!limit) continue;
    auto headroom = cgroup_headroom(*limit, read_text(cg.usage).value_or(""));
    if (headroom && *headroom < m.available_bytes) m = {*headroom, cg.name};
    break;
  }
  return m;
}

std::string format_mib(uint64_t bytes) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

std::string HostMemoryPlan::describe() const {
  return "weights " + format_mib(weight_bytes) + " + KV cache " + format_mib(kv_cache_bytes) + " + workspace " +
         format_mib(workspace_bytes) + " = " + format_mib(total());
}

}  // namespace strata
