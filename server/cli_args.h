// A small command-line parser for strata's subcommands: --flag value, --flag=value, --switch.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace strata {

struct FlagSpec {
  std::string name;  // without dashes
  std::string help;
  bool takes_value = true;
  std::string default_value;  // shown in --help
};

class CliArgs {
 public:
  // Parses argv against `specs`; unknown flags and missing values are errors (message set).
  static CliArgs parse(int argc, char** argv, const std::vector<FlagSpec>& specs);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // Integer flag; sets error() when the value is not an integer.
  long long get_int(const std::string& name, long long fallback);
  const std::vector<std::string>& positional() const { return positional_; }

  static std::string help_text(const std::string& usage, const std::vector<FlagSpec>& specs);

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  std::string error_;
};

}  // namespace strata
