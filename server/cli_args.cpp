// CliArgs implementation.
#include "server/cli_args.h"

#include <charconv>
#include <sstream>

namespace strata {

CliArgs CliArgs::parse(int argc, char** argv, const std::vector<FlagSpec>& specs) {
  CliArgs args;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      args.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs) if (s.name == name) spec = &s;
    if (!spec) {
      args.error_ = "unknown flag --" + name + " (see --help)";
      return args;
    }
    if (spec->takes_value && !inline_value) {
      if (i + 1 >= argc) {
        args.error_ = "flag --" + name + " needs a value";
        return args;
      }
      value = argv[++i];
    }
    args.values_[name] = spec->takes_value ? value : "1";
  }
  return args;
}

std::string CliArgs::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

long long CliArgs::get_int(const std::string& name, long long fallback) {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  long long v = 0;
  const auto& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    if (error_.empty()) error_ = "flag --" + name + " expects an integer, got '" + s + "'";
    return fallback;
  }
  return v;
}

std::string CliArgs::help_text(const std::string& usage, const std::vector<FlagSpec>& specs) {
  std::ostringstream out;
  out << "usage: " << usage << "\n\nflags:\n";
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.takes_value ? " VALUE" : "");
    out << left;
    for (size_t pad = left.size(); pad < 34; ++pad) out << ' ';
    out << s.help;
    if (!s.default_value.empty()) out << " (default: " << s.default_value << ")";
    out << "\n";
  }
  return out.str();
}

}  // namespace strata
