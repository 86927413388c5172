#include "engine/tokenizer/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/json_fields.h"

namespace strata::engine {
namespace {

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  int length = pcre2_get_error_message(code, buffer, sizeof(buffer));
  if (length < 0) return absl::StrCat("PCRE2 error ", code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

// Length of the UTF-8 sequence led by `lead` (1 for a stray byte, which valid
// input never has).
size_t Utf8Length(unsigned char lead) {
  if (lead < 0xC0) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<UnicodeRegex>> UnicodeRegex::Compile(std::string_view pattern,
                                                                    bool literal) {
  // PCRE2 rejects UCP together with LITERAL; a literal needs no classes.
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("regex '", AbslView(pattern),
                                                   "' does not compile at offset ", error_offset,
                                                   ": ", Pcre2Message(error_code)));
  }
  // JIT is an optimisation only: without it (unsupported CPU) matching still works.
  bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::unique_ptr<UnicodeRegex>(new UnicodeRegex(std::string(pattern), code, jit));
}

UnicodeRegex::~UnicodeRegex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

absl::Status UnicodeRegex::FindAll(std::string_view text, std::vector<RegexMatch>& matches) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code, nullptr));
  if (data == nullptr) return absl::ResourceExhaustedError("out of memory for regex match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    // The caller validated the UTF-8 once; checking it again per match would
    // make the scan quadratic.
    uint32_t options = PCRE2_NO_UTF_CHECK;
    int rc = pcre2_match(code, subject, text.size(), offset, options, data.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && jit_) {
      // Long runs (e.g. megabytes of spaces) can exceed the JIT's default
      // stack; the interpreter keeps its backtracking state on the heap.
      rc = pcre2_match(code, subject, text.size(), offset, options | PCRE2_NO_JIT, data.get(),
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return absl::InternalError(absl::StrCat("regex '", pattern_, "' failed: ", Pcre2Message(rc)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    RegexMatch match{ovector[0], ovector[1]};
    matches.push_back(match);
    if (match.end > match.begin) {
      offset = match.end;
    } else {
      if (match.end >= text.size()) break;
      offset = match.end + Utf8Length(static_cast<unsigned char>(text[match.end]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<UnicodeRegex>> PatternFromJson(const nlohmann::json& json,
                                                              std::string_view key) {
  if (json.is_object() && json.size() == 1) {
    auto it = json.begin();
    const std::string& kind = it.key();
    const nlohmann::json& value = it.value();
    if ((kind == "String" || kind == "Regex") && value.is_string()) {
      auto regex = UnicodeRegex::Compile(value.get<std::string>(), kind == "String");
      if (!regex.ok()) return KeyError(key, regex.status().message());
      return regex;
    }
  }
  return KeyError(key, "expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace strata::engine
