// The table of config keys, internal to server/config: each key's dotted
// name, its documentation (the comment in configs/default.yaml), its type
// and range, and an accessor to its field. The table is built once and is
// immutable, so it may be read from any thread. Defaults are not stored here:
// they are the member initializers of DaemonConfig, read through the same
// accessors, so there is exactly one place for each.
#ifndef STRATA_SERVER_CONFIG_CONFIG_KEYS_H_
#define STRATA_SERVER_CONFIG_CONFIG_KEYS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "server/config/daemon_config.h"

namespace strata::server::config_internal {

// Debian's abseil has its own string_view, so absl's strip helpers do not
// take std::string_view.
inline std::string_view TrimWhitespace(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(" \t\r\n") - begin + 1);
}

// An accessor to one field of a DaemonConfig.
template <typename T>
using Ref = T& (*)(DaemonConfig&);

// Free text (paths).
struct StringKey {
  Ref<std::string> ref;
};
// host:port, checked; empty allowed where it means "off".
struct AddressKey {
  Ref<std::string> ref;
  bool allow_empty = false;
};
// One of a fixed set of names.
struct ChoiceKey {
  Ref<std::string> ref;
  std::vector<std::string> choices;
};
struct IntKey {
  Ref<int64_t> ref;
  int64_t min;
  int64_t max;
};
struct DoubleKey {
  Ref<double> ref;
  double min;
  double max_exclusive;
};
// A byte size ("4GiB") in [min, max]; exactly one of the refs is set.
struct BytesKey {
  Ref<int64_t> signed_ref = nullptr;
  Ref<uint64_t> unsigned_ref = nullptr;
  uint64_t min = 0;
  uint64_t max = UINT64_MAX;
};
// A duration ("30s") held in milliseconds.
struct DurationKey {
  Ref<int64_t> ref;
};
// A string -> string mapping (auth.tokens).
struct MapKey {
  Ref<std::map<std::string, std::string>> ref;
};
// true or false (YAML 1.2 spellings only: yes/no/on/off are refused, since
// YAML 1.1 readers and 1.2 readers disagree on them).
struct BoolKey {
  Ref<bool> ref;
};
// A YAML sequence of integers, each in [min, max] (a lone scalar is a list of
// one, for --set).
struct IntListKey {
  Ref<std::vector<int64_t>> ref;
  int64_t min;
  int64_t max;
};

struct KeySpec {
  std::string_view name;  // "section.key"
  std::string_view doc;   // one or more lines, '\n'-separated
  std::variant<StringKey, AddressKey, ChoiceKey, IntKey, DoubleKey, BytesKey, DurationKey,
               MapKey, BoolKey, IntListKey>
      kind;
};

struct SectionSpec {
  std::string_view name;
  std::string_view doc;
};

// In the order DumpConfig writes them.
const std::vector<SectionSpec>& Sections();
const std::vector<KeySpec>& Keys();

// Keys of earlier layouts and their names now, for "did you mean" hints.
const std::map<std::string_view, std::string_view>& RenamedKeys();

// What a key expects, for "wrong type" messages: "a byte size", ...
std::string TypeName(const KeySpec& key);

// The key's value as YAML, with its leading space (or newline, for a
// non-empty mapping). Defined in daemon_config.cc beside the parser.
std::string FormatValue(const KeySpec& key, DaemonConfig& config);

}  // namespace strata::server::config_internal

#endif  // STRATA_SERVER_CONFIG_CONFIG_KEYS_H_
