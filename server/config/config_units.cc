// Byte sizes and durations as written in the config ("4GiB", "30s").
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/config/config_keys.h"
#include "server/config/daemon_config.h"

namespace strata::server {
namespace {

// A decimal number split at its point: "1.5" -> {1, 5, 1}. Digits only, so
// that sizes and durations stay exact (no floating point).
struct DecimalParts {
  uint64_t whole = 0;
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;  // 10^(digits after the point)
};

// Parses the leading number of `text` and leaves the rest (the unit) in it.
// False when there is no digit or too many.
bool TakeDecimal(std::string_view& text, DecimalParts& out) {
  size_t i = 0;
  bool any_digit = false;
  auto take_digits = [&](uint64_t& value, uint64_t* scale) {
    while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      const uint64_t digit = static_cast<uint64_t>(text[i] - '0');
      if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, digit, &value))
        return false;
      if (scale != nullptr && __builtin_mul_overflow(*scale, 10, scale)) return false;
      any_digit = true;
      ++i;
    }
    return true;
  };
  if (!take_digits(out.whole, nullptr)) return false;
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (!take_digits(out.fraction, &out.fraction_scale)) return false;
  }
  if (!any_digit) return false;
  text.remove_prefix(i);
  return true;
}

// whole * unit + fraction * unit / scale, exactly; false on overflow or a
// remainder (a fraction of the smallest unit).
bool Scale(const DecimalParts& parts, uint64_t unit, uint64_t& out) {
  uint64_t whole = 0;
  uint64_t fraction = 0;
  if (__builtin_mul_overflow(parts.whole, unit, &whole)) return false;
  if (__builtin_mul_overflow(parts.fraction, unit, &fraction)) return false;
  if (fraction % parts.fraction_scale != 0) return false;
  return !__builtin_add_overflow(whole, fraction / parts.fraction_scale, &out);
}

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr uint64_t kKiB = 1024;
constexpr Unit kSizeUnits[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1000},
    {"mb", 1000 * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"kib", kKiB},
    {"mib", kKiB* kKiB},
    {"gib", kKiB* kKiB* kKiB},
    {"tib", kKiB* kKiB* kKiB* kKiB},
};

constexpr Unit kDurationUnits[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000},
};

template <size_t N>
const Unit* FindUnit(const Unit (&units)[N], std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(std::string(name));
  for (const Unit& unit : units) {
    if (unit.name == lower) return &unit;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view rest = config_internal::TrimWhitespace(text);
  const std::string original(rest);
  DecimalParts parts;
  if (!TakeDecimal(rest, parts)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad size '", original, "': expected a number of bytes like 4GiB or 512MiB"));
  }
  const Unit* unit = FindUnit(kSizeUnits, config_internal::TrimWhitespace(rest));
  if (unit == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad size '", original, "': unknown unit '", std::string(rest),
                     "' (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"));
  }
  uint64_t bytes = 0;
  if (!Scale(parts, unit->factor, bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad size '", original, "': not a whole number of bytes, or too large"));
  }
  return bytes;
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr Unit kBinary[] = {{"TiB", kKiB * kKiB * kKiB * kKiB},
                                     {"GiB", kKiB * kKiB * kKiB},
                                     {"MiB", kKiB * kKiB},
                                     {"KiB", kKiB}};
  if (bytes == 0) return "0";
  for (const Unit& unit : kBinary) {
    if (bytes % unit.factor == 0) return absl::StrCat(bytes / unit.factor, std::string(unit.name));
  }
  return absl::StrCat(bytes);
}

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text) {
  std::string_view rest = config_internal::TrimWhitespace(text);
  const std::string original(rest);
  DecimalParts parts;
  const Unit* unit = nullptr;
  if (TakeDecimal(rest, parts))
    unit = FindUnit(kDurationUnits, config_internal::TrimWhitespace(rest));
  if (unit == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration '", original, "': expected e.g. 30s, 500ms, 2m or 1h"));
  }
  uint64_t ms = 0;
  if (!Scale(parts, unit->factor, ms) || ms > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad duration '", original, "': not a whole number of milliseconds, or too large"));
  }
  return static_cast<int64_t>(ms);
}

std::string FormatDurationMs(int64_t ms) {
  if (ms == 0) return "0s";
  static constexpr Unit kLargestFirst[] = {{"h", 3600 * 1000}, {"m", 60 * 1000}, {"s", 1000}};
  for (const Unit& unit : kLargestFirst) {
    const auto factor = static_cast<int64_t>(unit.factor);
    if (ms % factor == 0) return absl::StrCat(ms / factor, std::string(unit.name));
  }
  return absl::StrCat(ms, "ms");
}

}  // namespace strata::server
