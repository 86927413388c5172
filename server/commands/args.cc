#include "server/commands/args.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace strata::server {

bool ParsedArgs::Has(const std::string& name) const {
  return flags_.count(name) > 0 || values_.count(name) > 0 || repeated_.count(name) > 0;
}

std::vector<std::string> ParsedArgs::GetAll(const std::string& name) const {
  auto it = repeated_.find(name);
  return it == repeated_.end() ? std::vector<std::string>{} : it->second;
}

std::optional<std::string> ParsedArgs::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> ParsedArgs::Require(const std::string& name) const {
  auto value = Get(name);
  if (!value) return absl::InvalidArgumentError(absl::StrCat("missing required option --", name));
  return *value;
}

absl::StatusOr<int64_t> ParsedArgs::GetInt(const std::string& name, int64_t fallback) const {
  auto value = Get(name);
  if (!value) return fallback;
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(*value, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("option --", name, " expects an integer, got '", *value, "'"));
  }
  return parsed;
}

absl::StatusOr<double> ParsedArgs::GetDouble(const std::string& name, double fallback) const {
  auto value = Get(name);
  if (!value) return fallback;
  double parsed = 0;
  if (!absl::SimpleAtod(*value, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("option --", name, " expects a number, got '", *value, "'"));
  }
  return parsed;
}

absl::StatusOr<ParsedArgs> ParseArgs(const std::vector<std::string>& args, const ArgSpec& spec) {
  ParsedArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (spec.repeated_options.count(name)) {
      if (!inline_value && i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("option --", name, " needs a value"));
      }
      parsed.repeated_[name].push_back(inline_value ? *inline_value : args[++i]);
      continue;
    }
    if (parsed.Has(name)) {
      return absl::InvalidArgumentError(absl::StrCat("option --", name, " given twice"));
    }
    if (spec.flag_options.count(name)) {
      if (inline_value) {
        return absl::InvalidArgumentError(absl::StrCat("option --", name, " takes no value"));
      }
      parsed.flags_.insert(name);
    } else if (spec.value_options.count(name)) {
      if (inline_value) {
        parsed.values_[name] = *inline_value;
      } else if (i + 1 < args.size()) {
        parsed.values_[name] = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("option --", name, " needs a value"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    }
  }
  return parsed;
}

}  // namespace strata::server
