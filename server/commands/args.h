// A small, strict parser for `--key value` and `--flag` arguments. Unknown
// options, missing values and repeated keys are usage errors (exit code 2).
#ifndef STRATA_SERVER_COMMANDS_ARGS_H_
#define STRATA_SERVER_COMMANDS_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::server {

struct ArgSpec {
  std::set<std::string> value_options;  // take a value: --model DIR
  std::set<std::string> flag_options;   // take none: --special
  // Take a value and may be given more than once, in order: --chunk A --chunk B.
  std::set<std::string> repeated_options;
};

class ParsedArgs {
 public:
  bool Has(const std::string& name) const;
  std::optional<std::string> Get(const std::string& name) const;
  // INVALID_ARGUMENT naming the option when it is absent.
  absl::StatusOr<std::string> Require(const std::string& name) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double fallback) const;
  // Every value of a repeated option, in the order given (empty: none).
  std::vector<std::string> GetAll(const std::string& name) const;

 private:
  friend absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>&,
                                              const ArgSpec&);
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::map<std::string, std::vector<std::string>> repeated_;
};

// Parses `args` (without the program and subcommand names). Options are
// spelled `--name value` or `--name=value`. INVALID_ARGUMENT on any misuse.
absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args,
                                     const ArgSpec& spec);

// Exit codes shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_ARGS_H_
