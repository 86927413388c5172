// The key table and the three things built on it: the YAML loader, the
// `--set` overrides and DumpConfig. yaml-cpp throws; every exception is
// caught here and becomes INVALID_ARGUMENT with the file and line.
#include "server/config/daemon_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cache/kv_cache_options.h"
#include "server/config/config_keys.h"
#include "yaml-cpp/yaml.h"

namespace strata::server {
namespace {

using config_internal::AddressKey;
using config_internal::BoolKey;
using config_internal::BytesKey;
using config_internal::ChoiceKey;
using config_internal::DoubleKey;
using config_internal::DurationKey;
using config_internal::IntKey;
using config_internal::KeySpec;
using config_internal::MapKey;
using config_internal::StringKey;

// A YAML double-quoted scalar. Control characters are escaped so that a
// multi-line value (auth.shared_prefix) survives DumpConfig -> ParseConfig:
// a raw newline inside quotes would be folded into a space. Bytes >= 0x80
// pass through, as UTF-8.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          static constexpr char kHex[] = "0123456789ABCDEF";
          out += "\\x";
          out += kHex[byte >> 4];
          out += kHex[byte & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

absl::StatusOr<int64_t> ParseInt(std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(std::string(text), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected an integer, got '", std::string(text), "'"));
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("value ", value, " is out of range [", min, ", ", max, "]"));
  }
  return value;
}

// host:port with a port in [0, 65535]; "[v6]:port" works too since only the
// last colon separates.
absl::Status CheckAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected host:port, got '", std::string(text), "'"));
  }
  absl::StatusOr<int64_t> port = ParseInt(text.substr(colon + 1), 0, 65535);
  if (!port.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port in '", std::string(text), "': ", port.status().message()));
  }
  return absl::OkStatus();
}

absl::Status SetBytes(const BytesKey& key, DaemonConfig& config, std::string_view text) {
  absl::StatusOr<uint64_t> bytes = ParseByteSize(text);
  if (!bytes.ok()) return bytes.status();
  const uint64_t max = key.signed_ref != nullptr
                           ? std::min<uint64_t>(key.max, std::numeric_limits<int64_t>::max())
                           : key.max;
  if (*bytes < key.min || *bytes > max) {
    return absl::InvalidArgumentError(absl::StrCat("size ", std::string(text), " is out of range [",
                                                   FormatByteSize(key.min), ", ",
                                                   FormatByteSize(max), "]"));
  }
  if (key.signed_ref != nullptr) {
    key.signed_ref(config) = static_cast<int64_t>(*bytes);
  } else {
    key.unsigned_ref(config) = *bytes;
  }
  return absl::OkStatus();
}

// YAML 1.2's core schema spellings only.
absl::StatusOr<bool> ParseBool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("expected true or false, got '", std::string(text), "'"));
}

// Sets a scalar key from its text. Messages name no key: callers add it.
absl::Status SetScalar(const KeySpec& key, DaemonConfig& config, std::string_view text) {
  if (const auto* k = std::get_if<StringKey>(&key.kind)) {
    k->ref(config) = std::string(text);
  } else if (const auto* k = std::get_if<AddressKey>(&key.kind)) {
    if (!(text.empty() && k->allow_empty)) {
      if (absl::Status s = CheckAddress(text); !s.ok()) return s;
    }
    k->ref(config) = std::string(text);
  } else if (const auto* k = std::get_if<ChoiceKey>(&key.kind)) {
    if (std::find(k->choices.begin(), k->choices.end(), text) == k->choices.end()) {
      return absl::InvalidArgumentError(absl::StrCat("'", std::string(text), "' is not one of ",
                                                     absl::StrJoin(k->choices, ", ")));
    }
    k->ref(config) = std::string(text);
  } else if (const auto* k = std::get_if<IntKey>(&key.kind)) {
    absl::StatusOr<int64_t> value = ParseInt(text, k->min, k->max);
    if (!value.ok()) return value.status();
    k->ref(config) = *value;
  } else if (const auto* k = std::get_if<DoubleKey>(&key.kind)) {
    double value = 0;
    if (!absl::SimpleAtod(std::string(text), &value) || !std::isfinite(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected a number, got '", std::string(text), "'"));
    }
    if (value < k->min || value >= k->max_exclusive) {
      return absl::InvalidArgumentError(
          absl::StrCat("value ", value, " is out of range [", k->min, ", ", k->max_exclusive, ")"));
    }
    k->ref(config) = value;
  } else if (const auto* k = std::get_if<BytesKey>(&key.kind)) {
    return SetBytes(*k, config, text);
  } else if (const auto* k = std::get_if<BoolKey>(&key.kind)) {
    absl::StatusOr<bool> value = ParseBool(text);
    if (!value.ok()) return value.status();
    k->ref(config) = *value;
  } else if (const auto* k = std::get_if<DurationKey>(&key.kind)) {
    absl::StatusOr<int64_t> ms = ParseDurationMs(text);
    if (!ms.ok()) return ms.status();
    k->ref(config) = *ms;
  } else {
    return absl::InvalidArgumentError("expected a mapping, got a scalar");
  }
  return absl::OkStatus();
}

const char* NodeTypeName(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a sequence";
  if (node.IsNull()) return "nothing";
  return "a scalar";
}

absl::Status SetIntList(const config_internal::IntListKey& key, DaemonConfig& config,
                        const YAML::Node& node) {
  std::vector<int64_t> values;
  if (node.IsScalar()) {
    absl::StatusOr<int64_t> value = ParseInt(node.Scalar(), key.min, key.max);
    if (!value.ok()) return value.status();
    values.push_back(*value);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar()) {
        return absl::InvalidArgumentError(absl::StrCat("item ", i, ": expected an integer"));
      }
      absl::StatusOr<int64_t> value = ParseInt(node[i].Scalar(), key.min, key.max);
      if (!value.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("item ", i, ": ", value.status().message()));
      }
      values.push_back(*value);
    }
  } else if (!node.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrong type: expected a list of integers, got ", NodeTypeName(node)));
  }
  key.ref(config) = std::move(values);
  return absl::OkStatus();
}

// Sets `key` from a YAML value: a scalar, or a mapping for map keys.
absl::Status SetFromNode(const KeySpec& key, DaemonConfig& config, const YAML::Node& node) {
  if (const auto* k = std::get_if<config_internal::IntListKey>(&key.kind)) {
    return SetIntList(*k, config, node);
  }
  if (const auto* k = std::get_if<MapKey>(&key.kind)) {
    if (node.IsNull()) {
      k->ref(config).clear();
      return absl::OkStatus();
    }
    if (!node.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("wrong type: expected a mapping, got ", NodeTypeName(node)));
    }
    std::map<std::string, std::string> entries;
    for (const auto& entry : node) {
      if (!entry.first.IsScalar() || !entry.second.IsScalar()) {
        return absl::InvalidArgumentError("wrong type: expected string: string entries");
      }
      entries[entry.first.Scalar()] = entry.second.Scalar();
    }
    k->ref(config) = std::move(entries);
    return absl::OkStatus();
  }
  if (!node.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "wrong type: expected ", config_internal::TypeName(key), ", got ", NodeTypeName(node)));
  }
  return SetScalar(key, config, node.Scalar());
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

// "unknown key 'x' (did you mean 'y'?)", the suggestion being the closest
// known name when it is close enough to be a typo.
std::string UnknownKey(std::string_view name, const std::vector<std::string>& candidates) {
  const auto& renamed = config_internal::RenamedKeys();
  if (auto it = renamed.find(name); it != renamed.end()) {
    return absl::StrCat("unknown key '", std::string(name), "' (did you mean '",
                        std::string(it->second), "'? the key was renamed)");
  }
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const std::string& candidate : candidates) {
    const size_t d = EditDistance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  std::string message = absl::StrCat("unknown key '", std::string(name), "'");
  if (!best.empty()) absl::StrAppend(&message, " (did you mean '", best, "'?)");
  return message;
}

std::vector<std::string> AllKeyNames() {
  std::vector<std::string> names;
  for (const KeySpec& key : config_internal::Keys()) names.emplace_back(key.name);
  return names;
}

std::vector<std::string> SectionNames() {
  std::vector<std::string> names;
  for (const config_internal::SectionSpec& s : config_internal::Sections()) {
    names.emplace_back(s.name);
  }
  return names;
}

const KeySpec* FindKey(std::string_view name) {
  for (const KeySpec& key : config_internal::Keys()) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

// A cross-field rule broken, and the keys to blame for its line, best
// first: the first one the file sets (else its section) gives the line.
struct Violation {
  std::vector<std::string> keys;
  std::string message;
};

std::optional<Violation> FindCacheViolation(const cache::KvCacheOptions& c) {
  if (!c.disk_path.empty() && c.disk_bytes == 0) {
    return Violation{{"cache.disk_path"},
                     "cache.disk_path is set but cache.disk_bytes is 0: give "
                     "the disk tier a size"};
  }
  if (c.disk_path.empty() && c.disk_bytes > 0) {
    return Violation{{"cache.disk_bytes"},
                     "cache.disk_bytes is set but cache.disk_path is empty: no disk tier to size"};
  }
  if (c.device_bytes > 0 && c.device_memory_fraction > 0) {
    return Violation{{"cache.device_memory_fraction", "cache.device_bytes"},
                     "cache.device_bytes and cache.device_memory_fraction exclude each other: "
                     "set one"};
  }
  if (absl::Status s = cache::ValidateKvCacheOptions(c); !s.ok()) {
    return Violation{{"cache"}, std::string(s.message())};
  }
  return std::nullopt;
}

// Whether two listening addresses would take the same socket: the same
// non-zero port on the same host, or on any host when one is a wildcard.
// Port 0 (an ephemeral port each) never collides.
bool SameSocket(std::string_view a, std::string_view b) {
  const size_t colon_a = a.rfind(':');
  const size_t colon_b = b.rfind(':');
  if (colon_a == std::string_view::npos || colon_b == std::string_view::npos) return false;
  const std::string_view port_a = a.substr(colon_a + 1);
  if (port_a != b.substr(colon_b + 1) || port_a == "0") return false;
  const auto wildcard = [](std::string_view host) {
    return host == "0.0.0.0" || host == "[::]" || host == "::" || host == "*";
  };
  const std::string_view host_a = a.substr(0, colon_a);
  const std::string_view host_b = b.substr(0, colon_b);
  return host_a == host_b || wildcard(host_a) || wildcard(host_b);
}

std::optional<Violation> FindAccessViolation(const DaemonConfig& config) {
  const std::string& grpc = config.server.listen;
  const std::string& metrics = config.metrics.listen;
  if (!metrics.empty() && SameSocket(metrics, grpc)) {
    return Violation{{"metrics.listen", "server.listen"},
                     absl::StrCat("metrics.listen (", metrics, ") and server.listen (", grpc,
                                  ") are the same socket: give them different ports")};
  }
  for (const auto& [token, tenant] : config.auth.tokens) {
    if (token.empty() || tenant.empty()) {
      return Violation{{"auth.tokens"}, "auth.tokens: tokens and tenant names must be non-empty"};
    }
    // Never quote the token itself: it is a secret, and messages get logged.
    if (token.find_first_of(" \t\r\n") != std::string::npos) {
      return Violation{{"auth.tokens"},
                       absl::StrCat("auth.tokens: the token of tenant '", tenant,
                                    "' contains whitespace, which a bearer token cannot carry")};
    }
  }
  const std::string& admin = config.auth.admin_token;
  if (admin.find_first_of(" \t\r\n") != std::string::npos) {
    return Violation{{"auth.admin_token"},
                     "auth.admin_token: contains whitespace, which a bearer token cannot carry"};
  }
  if (config.auth.tokens.count(admin) != 0) {
    return Violation{{"auth.admin_token", "auth.tokens"},
                     "auth.admin_token: is also a tenant's token in auth.tokens; give the admin "
                     "its own"};
  }
  const TlsSection& tls = config.tls;
  if (!tls.cert_file.empty() && tls.key_file.empty()) {
    return Violation{{"tls.cert_file"},
                     "tls.cert_file is set but tls.key_file is empty: TLS needs the "
                     "certificate's private key too (set both or neither)"};
  }
  if (tls.cert_file.empty() && !tls.key_file.empty()) {
    return Violation{{"tls.key_file"},
                     "tls.key_file is set but tls.cert_file is empty: TLS needs the "
                     "certificate too (set both or neither)"};
  }
  return std::nullopt;
}

std::optional<Violation> FindViolation(const DaemonConfig& config) {
  if (std::optional<Violation> v = FindCacheViolation(config.cache)) return v;
  return FindAccessViolation(config);
}

// The mark of the first of `keys` the file sets, else of the first section
// of theirs it has; null when none.
YAML::Mark BlameMark(const std::vector<std::string>& keys,
                     const std::map<std::string, YAML::Mark>& marks) {
  for (const std::string& key : keys) {
    if (auto it = marks.find(key); it != marks.end()) return it->second;
  }
  for (const std::string& key : keys) {
    if (auto it = marks.find(key.substr(0, key.find('.'))); it != marks.end()) return it->second;
  }
  return YAML::Mark::null_mark();
}

// "name:line: " for a 0-based yaml-cpp mark; "name: " when it has none.
std::string Where(std::string_view name, const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return absl::StrCat(std::string(name), ": ");
  return absl::StrCat(std::string(name), ":", mark.line + 1, ": ");
}

// Whether some key lives below `prefix` ("scheduler.blend" for
// "scheduler.blend.enable"): a nested mapping of the section.
bool IsSubsection(const std::string& prefix) {
  for (const std::string& key : AllKeyNames()) {
    if (absl::StartsWith(key, prefix + ".")) return true;
  }
  return false;
}

// Walks a (sub)section's mapping into `config`, recording each key's mark.
absl::Status LoadEntries(const std::string& prefix, const YAML::Node& body, std::string_view name,
                         DaemonConfig& config, std::map<std::string, YAML::Mark>& marks) {
  for (const auto& entry : body) {
    const std::string full = absl::StrCat(prefix, ".", entry.first.Scalar());
    const KeySpec* key = FindKey(full);
    if (key == nullptr && entry.second.IsMap() && IsSubsection(full)) {
      if (absl::Status s = LoadEntries(full, entry.second, name, config, marks); !s.ok()) return s;
      continue;
    }
    if (key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(name, entry.first.Mark()), UnknownKey(full, AllKeyNames())));
    }
    if (!marks.emplace(full, entry.first.Mark()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(name, entry.first.Mark()), "duplicate key '", full, "'"));
    }
    if (absl::Status s = SetFromNode(*key, config, entry.second); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(name, entry.first.Mark()), full, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status LoadSection(const YAML::Node& key_node, const YAML::Node& body, std::string_view name,
                         DaemonConfig& config, std::map<std::string, YAML::Mark>& marks) {
  const std::string section = key_node.Scalar();
  if (body.IsNull()) return absl::OkStatus();
  if (!body.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(name, body.Mark()), "wrong type for '",
                                                   section, "': expected a mapping, got ",
                                                   NodeTypeName(body)));
  }
  return LoadEntries(section, body, name, config, marks);
}

// A file's keys, parsed and range-checked one by one, with where each is
// set; the cross-field rules are not checked yet (overrides may follow).
struct ParsedTree {
  DaemonConfig config;
  std::map<std::string, YAML::Mark> marks;
};

absl::StatusOr<ParsedTree> LoadTree(const YAML::Node& root, std::string_view name) {
  ParsedTree parsed;
  DaemonConfig& config = parsed.config;
  if (root.IsNull()) return parsed;  // an empty file: all defaults
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(name, root.Mark()), "expected a mapping of sections, got ", NodeTypeName(root)));
  }
  std::map<std::string, YAML::Mark>& marks = parsed.marks;
  std::set<std::string> seen_sections;
  for (const auto& entry : root) {
    const std::string section = entry.first.Scalar();
    const std::vector<std::string> sections = SectionNames();
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(name, entry.first.Mark()), UnknownKey(section, sections)));
    }
    if (!seen_sections.insert(section).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(name, entry.first.Mark()), "duplicate section '", section, "'"));
    }
    marks.emplace(section, entry.first.Mark());
    if (absl::Status s = LoadSection(entry.first, entry.second, name, config, marks); !s.ok()) {
      return s;
    }
  }
  return parsed;
}

absl::StatusOr<ParsedTree> ParseTree(std::string_view yaml, std::string_view name) {
  try {
    return LoadTree(YAML::Load(std::string(yaml)), name);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Where(name, e.mark), "malformed YAML: ", e.msg));
  }
}

absl::StatusOr<ParsedTree> ReadTree(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("config file ", path, " not found"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  return ParseTree(text.str(), path);
}

// The cross-field rules on the final config. A violation is blamed on the
// last `--set` of one of its keys, else on the line of the file that sets
// one (or its section).
absl::Status CheckTree(const ParsedTree& parsed, std::string_view name,
                       absl::Span<const std::string> overrides) {
  std::optional<Violation> v = FindViolation(parsed.config);
  if (!v.has_value()) return absl::OkStatus();
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    const std::string key(config_internal::TrimWhitespace(
        std::string_view(*it).substr(0, std::min(it->find('='), it->size()))));
    if (std::find(v->keys.begin(), v->keys.end(), key) != v->keys.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--set ", *it, ": ", v->message));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Where(name, BlameMark(v->keys, parsed.marks)), v->message));
}

}  // namespace

absl::StatusOr<DaemonConfig> ParseConfig(std::string_view yaml, std::string_view name) {
  absl::StatusOr<ParsedTree> parsed = ParseTree(yaml, name);
  if (!parsed.ok()) return parsed.status();
  if (absl::Status s = CheckTree(*parsed, name, {}); !s.ok()) return s;
  return std::move(parsed->config);
}

absl::StatusOr<DaemonConfig> LoadConfig(const std::string& path) {
  return LoadConfigWithOverrides(path, {});
}

absl::Status ApplyOverride(DaemonConfig& config, std::string_view assignment) {
  const std::string where = absl::StrCat("--set ", std::string(assignment), ": ");
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(where, "expected key=value"));
  }
  const std::string name(config_internal::TrimWhitespace(assignment.substr(0, eq)));
  const std::string value(config_internal::TrimWhitespace(assignment.substr(eq + 1)));
  const KeySpec* key = FindKey(name);
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(where, UnknownKey(name, AllKeyNames())));
  }
  DaemonConfig updated = config;
  try {
    // The value is YAML, as in the file, so quoting and {k: v} maps work;
    // an empty value is the empty string (to clear a path).
    const YAML::Node node = value.empty() ? YAML::Node(std::string()) : YAML::Load(value);
    if (absl::Status s = SetFromNode(*key, updated, node); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, name, ": ", s.message()));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, "malformed value: ", e.msg));
  }
  config = std::move(updated);
  return absl::OkStatus();
}

absl::StatusOr<DaemonConfig> LoadConfigWithOverrides(const std::string& path,
                                                     absl::Span<const std::string> overrides) {
  // The file alone need not satisfy the cross-field rules: an override may
  // complete it (a disk_path in the file, its disk_bytes on the command line).
  absl::StatusOr<ParsedTree> parsed = ReadTree(path);
  if (!parsed.ok()) return parsed.status();
  for (const std::string& assignment : overrides) {
    if (absl::Status s = ApplyOverride(parsed->config, assignment); !s.ok()) return s;
  }
  if (absl::Status s = CheckTree(*parsed, path, overrides); !s.ok()) return s;
  return std::move(parsed->config);
}

absl::Status ValidateDaemonConfig(const DaemonConfig& config) {
  if (std::optional<Violation> v = FindViolation(config)) {
    return absl::InvalidArgumentError(v->message);
  }
  return absl::OkStatus();
}

std::string DumpConfig(const DaemonConfig& config) {
  // The accessors take a mutable config so that one table serves loading
  // and dumping; dumping reads a copy.
  DaemonConfig copy = config;
  std::string out =
      "# Strata daemon configuration: every key, with its default. Generated from the key\n"
      "# table in server/config/config_keys.cc; a test keeps this file equal to it.\n"
      "# Override any key on the command line: --set section.key=value\n";
  for (const config_internal::SectionSpec& section : config_internal::Sections()) {
    absl::StrAppend(&out, "\n# ", std::string(section.doc), "\n", std::string(section.name), ":\n");
    std::string_view subsection;
    for (const KeySpec& key : config_internal::Keys()) {
      const std::string_view prefix = key.name.substr(0, key.name.find('.'));
      if (prefix != section.name) continue;
      // A nested key (scheduler.blend.enable) goes under its subsection's
      // mapping, written once before its first key.
      std::string_view leaf = key.name.substr(key.name.find('.') + 1);
      std::string indent = "  ";
      if (const size_t dot = leaf.find('.'); dot != std::string_view::npos) {
        const std::string_view sub = leaf.substr(0, dot);
        if (sub != subsection) absl::StrAppend(&out, "  ", std::string(sub), ":\n");
        subsection = sub;
        leaf = leaf.substr(dot + 1);
        indent = "    ";
      } else {
        subsection = {};
      }
      for (absl::string_view line : absl::StrSplit(std::string(key.doc), '\n')) {
        absl::StrAppend(&out, indent, "# ", line, "\n");
      }
      absl::StrAppend(&out, indent, std::string(leaf), ":",
                      config_internal::FormatValue(key, copy), "\n");
    }
  }
  return out;
}

namespace config_internal {

std::string FormatValue(const KeySpec& key, DaemonConfig& config) {
  if (const auto* k = std::get_if<StringKey>(&key.kind))
    return absl::StrCat(" ", Quote(k->ref(config)));
  if (const auto* k = std::get_if<AddressKey>(&key.kind))
    return absl::StrCat(" ", Quote(k->ref(config)));
  if (const auto* k = std::get_if<ChoiceKey>(&key.kind)) return absl::StrCat(" ", k->ref(config));
  if (const auto* k = std::get_if<IntKey>(&key.kind)) return absl::StrCat(" ", k->ref(config));
  if (const auto* k = std::get_if<DoubleKey>(&key.kind)) return absl::StrCat(" ", k->ref(config));
  if (const auto* k = std::get_if<BytesKey>(&key.kind)) {
    const uint64_t bytes = k->signed_ref != nullptr ? static_cast<uint64_t>(k->signed_ref(config))
                                                    : k->unsigned_ref(config);
    return absl::StrCat(" ", FormatByteSize(bytes));
  }
  if (const auto* k = std::get_if<DurationKey>(&key.kind)) {
    return absl::StrCat(" ", FormatDurationMs(k->ref(config)));
  }
  if (const auto* k = std::get_if<BoolKey>(&key.kind)) {
    return k->ref(config) ? " true" : " false";
  }
  if (const auto* k = std::get_if<IntListKey>(&key.kind)) {
    return absl::StrCat(" [", absl::StrJoin(k->ref(config), ", "), "]");
  }
  const auto& map = std::get<MapKey>(key.kind).ref(config);
  if (map.empty()) return " {}";
  std::string out;
  for (const auto& [k, v] : map) absl::StrAppend(&out, "\n    ", Quote(k), ": ", Quote(v));
  return out;
}

}  // namespace config_internal
}  // namespace strata::server
