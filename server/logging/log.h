// Structured logs: one line per event, either key=value text
//   ts=2026-11-25T03:56:10.123Z level=info event=request_finished request_id=42 reason=stop
// or one JSON object per line with the same fields. Request ids go in every
// event about a request, so one grep follows a request through the daemon.
//
// Every line starts with ts (UTC, milliseconds), level and event, then the
// fields in the order given. Text values are bare unless empty or holding a
// space, quote, '=', backslash or control character; then they are quoted
// with JSON's escapes. Text keys outside [A-Za-z0-9_.-] have those
// characters replaced by '_'. In JSON, strings are escaped (control
// characters as \u00XX), numbers and bools are raw, and non-finite doubles
// are the strings "nan", "inf", "-inf". Malformed UTF-8 becomes U+FFFD, so
// every line is valid UTF-8 (and, in JSON, valid JSON).
//
// Thread-safe: any thread may log; a line is written whole (one write under
// a mutex). Events below the configured level cost one comparison.
#ifndef STRATA_SERVER_LOGGING_LOG_H_
#define STRATA_SERVER_LOGGING_LOG_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::logging {

enum class Level : uint8_t { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class Format : uint8_t { kText = 0, kJson = 1 };

// "debug", "info", "warning", "error" / "text", "json"; INVALID_ARGUMENT
// naming the accepted values otherwise.
absl::StatusOr<Level> ParseLevel(std::string_view name);
absl::StatusOr<Format> ParseFormat(std::string_view name);

// Process-wide settings; `sink` is borrowed (std::cerr by default) and must
// outlive all logging. Call before other threads log.
void Configure(Level level, Format format, std::ostream* sink = nullptr);
bool Enabled(Level level);

// Builds one event and writes it when destroyed (if its level is enabled):
//   logging::Event(Level::kInfo, "request_finished").With("request_id", id).With("reason", r);
// Values are quoted (text) or escaped (JSON) as needed.
class Event {
 public:
  Event(Level level, std::string_view name);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  Event& With(std::string_view key, std::string_view value);
  Event& With(std::string_view key, const char* value) {
    return With(key, std::string_view(value));
  }
  Event& With(std::string_view key, const std::string& value) {
    return With(key, std::string_view(value));
  }
  Event& With(std::string_view key, int64_t value);
  Event& With(std::string_view key, int value) { return With(key, static_cast<int64_t>(value)); }
  Event& With(std::string_view key, double value);
  Event& With(std::string_view key, bool value);

 private:
  bool enabled_;
  Level level_;
  std::string name_;
  // Values kept with a flag: true when the value is a number or bool (no
  // quotes in JSON).
  struct Field {
    std::string key;
    std::string value;
    bool raw = false;
  };
  std::vector<Field> fields_;
};

}  // namespace strata::logging

#endif  // STRATA_SERVER_LOGGING_LOG_H_
