// The structured log: settings in atomics (so that Enabled is one load and
// one comparison), lines built without a lock, and one mutex held only for
// the write of a finished line.
#include "server/logging/log.h"

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/base/const_init.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace strata::logging {
namespace {

std::atomic<uint8_t> g_level{static_cast<uint8_t>(Level::kInfo)};
std::atomic<uint8_t> g_format{static_cast<uint8_t>(Format::kText)};
// Guards the sink: lines are written whole, one at a time.
ABSL_CONST_INIT absl::Mutex g_mutex(absl::kConstInit);
std::ostream* g_sink ABSL_GUARDED_BY(g_mutex) = nullptr;  // null: std::cerr

constexpr std::string_view kLevelNames[] = {"debug", "info", "warning", "error"};

std::string_view LevelName(Level level) { return kLevelNames[static_cast<uint8_t>(level)]; }

// The length of the well-formed UTF-8 sequence at s[i]; 0 when the bytes
// there are not one (stray continuation bytes, overlong forms, surrogates,
// code points past U+10FFFF, a sequence cut short).
size_t Utf8Length(std::string_view s, size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint32_t code_point = 0;
  uint32_t smallest = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
    smallest = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
    smallest = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
    smallest = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < length) return 0;
  for (size_t k = 1; k < length; ++k) {
    const auto byte = static_cast<unsigned char>(s[i + k]);
    if ((byte & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (byte & 0x3F);
  }
  if (code_point < smallest || code_point > 0x10FFFF) return 0;
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;
  return length;
}

// Appends `value` escaped for the inside of a JSON string, which is also
// what a quoted text value uses: \" \\ \n \r \t, other control characters
// as \u00XX, UTF-8 passed through, and each byte of malformed UTF-8 as
// U+FFFD, so that every line is valid UTF-8 and valid JSON.
void AppendEscaped(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      const size_t length = Utf8Length(value, i);
      if (length == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
        ++i;
      } else {
        out.append(value.substr(i, length));
        i += length;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          out.append("\\u00");
          out.push_back(kHex[byte >> 4]);
          out.push_back(kHex[byte & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
}

// Text values go bare unless a reader could misparse them: empty, or with a
// space, quote, '=', backslash, control character or malformed UTF-8.
bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (size_t i = 0; i < value.size(); ++i) {
    const auto byte = static_cast<unsigned char>(value[i]);
    if (byte == ' ' || byte == '"' || byte == '=' || byte == '\\' || byte < 0x20 || byte == 0x7f) {
      return true;
    }
    if (byte >= 0x80) {
      const size_t length = Utf8Length(value, i);
      if (length == 0) return true;
      i += length - 1;
    }
  }
  return false;
}

// Text keys are written bare, so anything but [A-Za-z0-9_.-] becomes '_'
// (a key with a space or '=' would split the pair).
void AppendTextKey(std::string& out, std::string_view key) {
  if (key.empty()) {
    out.push_back('_');
    return;
  }
  for (const char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '.' || c == '-';
    out.push_back(plain ? c : '_');
  }
}

void AppendTextPair(std::string& out, std::string_view key, std::string_view value, bool raw) {
  out.push_back(' ');
  AppendTextKey(out, key);
  out.push_back('=');
  if (raw || !NeedsQuotes(value)) {
    out.append(value);
    return;
  }
  out.push_back('"');
  AppendEscaped(out, value);
  out.push_back('"');
}

void AppendJsonPair(std::string& out, std::string_view key, std::string_view value, bool raw) {
  out.append(",\"");
  AppendEscaped(out, key);
  out.append("\":");
  if (raw) {
    out.append(value);
    return;
  }
  out.push_back('"');
  AppendEscaped(out, value);
  out.push_back('"');
}

// "2026-11-25T03:56:10.123Z".
std::string Timestamp() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<Level> ParseLevel(std::string_view name) {
  for (uint8_t i = 0; i < std::size(kLevelNames); ++i) {
    if (name == kLevelNames[i]) return static_cast<Level>(i);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown log level '", std::string(name),
                                                 "': expected debug, info, warning or error"));
}

absl::StatusOr<Format> ParseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format '", std::string(name), "': expected text or json"));
}

void Configure(Level level, Format format, std::ostream* sink) {
  absl::MutexLock lock(&g_mutex);  // a line being written finishes on the old sink
  g_level.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
  g_format.store(static_cast<uint8_t>(format), std::memory_order_relaxed);
  g_sink = sink;
}

bool Enabled(Level level) {
  return static_cast<uint8_t>(level) >= g_level.load(std::memory_order_relaxed);
}

Event::Event(Level level, std::string_view name)
    : enabled_(Enabled(level)), level_(level), name_(enabled_ ? name : std::string_view()) {}

Event& Event::With(std::string_view key, std::string_view value) {
  if (enabled_) fields_.push_back(Field{std::string(key), std::string(value), /*raw=*/false});
  return *this;
}

Event& Event::With(std::string_view key, int64_t value) {
  if (enabled_) fields_.push_back(Field{std::string(key), absl::StrCat(value), /*raw=*/true});
  return *this;
}

// Shortest text that reads back as the same double. JSON has no NaN or
// infinity, so those go as the strings "nan", "inf" and "-inf".
Event& Event::With(std::string_view key, double value) {
  if (!enabled_) return *this;
  if (!std::isfinite(value)) {
    const char* text = std::isnan(value) ? "nan" : (value > 0 ? "inf" : "-inf");
    fields_.push_back(Field{std::string(key), text, /*raw=*/false});
    return *this;
  }
  char buffer[32];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  fields_.push_back(Field{std::string(key), std::string(buffer, result.ptr), /*raw=*/true});
  return *this;
}

Event& Event::With(std::string_view key, bool value) {
  if (enabled_) fields_.push_back(Field{std::string(key), value ? "true" : "false", /*raw=*/true});
  return *this;
}

Event::~Event() {
  if (!enabled_) return;
  const bool json = g_format.load(std::memory_order_relaxed) == static_cast<uint8_t>(Format::kJson);
  std::string line;
  line.reserve(64 + 32 * fields_.size());
  if (json) {
    line.append("{\"ts\":\"");
    line.append(Timestamp());
    line.append("\"");
    AppendJsonPair(line, "level", LevelName(level_), /*raw=*/false);
    AppendJsonPair(line, "event", name_, /*raw=*/false);
    for (const Field& field : fields_) AppendJsonPair(line, field.key, field.value, field.raw);
    line.append("}\n");
  } else {
    line.append("ts=");
    line.append(Timestamp());
    AppendTextPair(line, "level", LevelName(level_), /*raw=*/false);
    AppendTextPair(line, "event", name_, /*raw=*/false);
    for (const Field& field : fields_) AppendTextPair(line, field.key, field.value, field.raw);
    line.push_back('\n');
  }
  absl::MutexLock lock(&g_mutex);
  std::ostream& sink = g_sink != nullptr ? *g_sink : std::cerr;
  sink.write(line.data(), static_cast<std::streamsize>(line.size()));
  sink.flush();  // a crash right after must not lose the line
}

}  // namespace strata::logging
