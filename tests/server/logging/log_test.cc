// The structured log: both line formats, escaping, level filtering, whole
// lines under concurrent logging, and the parsers of the config names.
#include "server/logging/log.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace strata::logging {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The lines of `text`, which must end with a newline.
std::vector<std::string> SplitLines(const std::string& text) {
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Each test logs into its own stream and puts the defaults back, since the
// settings are process-wide.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { Configure(Level::kDebug, Format::kText, &sink_); }
  void TearDown() override { Configure(Level::kInfo, Format::kText, nullptr); }

  std::vector<std::string> Lines() const { return SplitLines(sink_.str()); }

  // The only line written, parsed as JSON (discarded when it is not JSON).
  nlohmann::json OnlyJsonLine() const {
    const std::vector<std::string> lines = Lines();
    EXPECT_EQ(lines.size(), 1u);
    if (lines.size() != 1) return nlohmann::json::value_t::discarded;
    nlohmann::json parsed = nlohmann::json::parse(lines[0], nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(parsed.is_discarded()) << lines[0];
    return parsed;
  }

  std::ostringstream sink_;
};

constexpr char kTimestamp[] = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)";

TEST_F(LogTest, TextLineHasTimestampLevelEventAndFieldsInOrder) {
  const absl::Time before = absl::Now();
  Event(Level::kInfo, "request_finished")
      .With("request_id", int64_t{42})
      .With("reason", "stop")
      .With("ttft_s", 0.25)
      .With("cached", true)
      .With("blocks", 7);
  const absl::Time after = absl::Now();
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  std::smatch match;
  ASSERT_TRUE(std::regex_match(
      lines[0], match,
      std::regex(std::string("ts=(") + kTimestamp +
                 ") level=info event=request_finished request_id=42 reason=stop ttft_s=0.25 "
                 "cached=true blocks=7")))
      << lines[0];
  // The timestamp is UTC and now, to the millisecond (a second of slack for
  // a wall clock that steps).
  absl::Time ts;
  std::string error;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, match[1].str(), &ts, &error)) << error;
  EXPECT_GE(ts, before - absl::Seconds(1));
  EXPECT_LE(ts, after + absl::Seconds(1));
}

TEST_F(LogTest, TextQuotesValuesThatWouldSplitThePair) {
  Event(Level::kWarning, "quoting")
      .With("bare", "/models/qwen-7b")
      .With("space", "hello world")
      .With("quote", "say \"hi\"")
      .With("equals", "a=b")
      .With("empty", "")
      .With("newline", "one\ntwo")
      .With("backslash", "C:\\dir")
      .With("control", std::string("a\x01z"))
      .With("unicode", "caf\xC3\xA9\xE2\x98\x83");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);  // the newline in a value is escaped
  EXPECT_THAT(lines[0], HasSubstr(" level=warning event=quoting bare=/models/qwen-7b "
                                  "space=\"hello world\" quote=\"say \\\"hi\\\"\" "
                                  "equals=\"a=b\" empty=\"\" newline=\"one\\ntwo\" "
                                  "backslash=\"C:\\\\dir\" control=\"a\\u0001z\" "
                                  "unicode=caf\xC3\xA9\xE2\x98\x83"));
}

TEST_F(LogTest, TextKeysAreSanitized) {
  Event(Level::kInfo, "keys").With("bad key=x", 1).With("", 2).With("ok_key.v-2", 3);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" event=keys bad_key_x=1 _=2 ok_key.v-2=3"));
}

TEST_F(LogTest, JsonLineHasTypedFields) {
  Configure(Level::kDebug, Format::kJson, &sink_);
  Event(Level::kWarning, "request_finished")
      .With("request_id", int64_t{-7})
      .With("big", std::numeric_limits<int64_t>::max())
      .With("ttft_s", 0.1)
      .With("ok", false)
      .With("reason", "length");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(std::string(R"(\{"ts":")") + kTimestamp +
                                                    R"(","level":"warning",.*\})")))
      << lines[0];
  // Numbers and bools are raw, not strings.
  EXPECT_THAT(lines[0], HasSubstr(R"("request_id":-7,"big":9223372036854775807,"ttft_s":0.1,)"
                                  R"("ok":false,"reason":"length")"));
  const nlohmann::json event = OnlyJsonLine();
  ASSERT_TRUE(event.is_object());
  EXPECT_EQ(event["level"], "warning");
  EXPECT_EQ(event["event"], "request_finished");
  EXPECT_TRUE(event["request_id"].is_number_integer());
  EXPECT_EQ(event["request_id"].get<int64_t>(), -7);
  EXPECT_EQ(event["big"].get<int64_t>(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(event["ttft_s"].get<double>(), 0.1);
  EXPECT_EQ(event["ok"], false);
  EXPECT_EQ(event["reason"], "length");
}

TEST_F(LogTest, JsonEscapesStringsAndPassesUnicodeThrough) {
  Configure(Level::kDebug, Format::kJson, &sink_);
  const std::string value = std::string("q\"b\\n\nt\tr\r") + '\x01' + '\x1f' + '\x7f' +
                            "\xC3\xA9\xE2\x98\x83\xF0\x9F\x98\x80";
  Event(Level::kInfo, "escapes").With("value", value).With("k\"ey\n", "v");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(R"("value":"q\"b\\n\nt\tr\r\u0001\u001f\u007f)"
                                  "\xC3\xA9\xE2\x98\x83\xF0\x9F\x98\x80\""));
  const nlohmann::json event = OnlyJsonLine();
  ASSERT_TRUE(event.is_object());
  EXPECT_EQ(event["value"].get<std::string>(), value);
  EXPECT_EQ(event["k\"ey\n"].get<std::string>(), "v");
}

// Malformed UTF-8 (a cut-off prompt fragment, say) must not make the line
// unparseable: each bad byte becomes U+FFFD.
TEST_F(LogTest, MalformedUtf8BecomesReplacementCharacters) {
  Configure(Level::kDebug, Format::kJson, &sink_);
  const std::string bad = std::string("a\xFF") + "b\xC3" + "\xED\xA0\x80" + "\xC0\xAF";
  Event(Level::kInfo, "utf8").With("value", bad);
  const nlohmann::json event = OnlyJsonLine();
  ASSERT_TRUE(event.is_object());
  const std::string kReplacement = "\xEF\xBF\xBD";
  EXPECT_EQ(event["value"].get<std::string>(), "a" + kReplacement + "b" + kReplacement +
                                                   kReplacement + kReplacement + kReplacement +
                                                   kReplacement + kReplacement);
  sink_.str("");
  Configure(Level::kDebug, Format::kText, &sink_);
  Event(Level::kInfo, "utf8").With("value", "x\xFF");
  EXPECT_THAT(Lines().at(0), HasSubstr("value=\"x" + kReplacement + "\""));
}

TEST_F(LogTest, DoublesAreShortestAndNonFiniteOnesAreStrings) {
  Configure(Level::kDebug, Format::kJson, &sink_);
  Event(Level::kInfo, "doubles")
      .With("tenth", 0.1)
      .With("huge", 1e300)
      .With("third", 1.0 / 3)
      .With("nan", std::numeric_limits<double>::quiet_NaN())
      .With("inf", std::numeric_limits<double>::infinity())
      .With("ninf", -std::numeric_limits<double>::infinity());
  EXPECT_THAT(Lines().at(0), HasSubstr(R"("tenth":0.1,"huge":1e+300,)"));
  const nlohmann::json event = OnlyJsonLine();
  ASSERT_TRUE(event.is_object());
  EXPECT_EQ(event["third"].get<double>(), 1.0 / 3);  // exact round trip
  EXPECT_EQ(event["nan"], "nan");
  EXPECT_EQ(event["inf"], "inf");
  EXPECT_EQ(event["ninf"], "-inf");
}

TEST_F(LogTest, LevelFilter) {
  Configure(Level::kWarning, Format::kText, &sink_);
  EXPECT_FALSE(Enabled(Level::kDebug));
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kWarning));
  EXPECT_TRUE(Enabled(Level::kError));
  Event(Level::kDebug, "d").With("x", 1);
  Event(Level::kInfo, "i").With("x", 2);
  Event(Level::kWarning, "w").With("x", 3);
  Event(Level::kError, "e").With("x", 4);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr(" level=warning event=w x=3"));
  EXPECT_THAT(lines[1], HasSubstr(" level=error event=e x=4"));

  sink_.str("");
  Configure(Level::kDebug, Format::kText, &sink_);
  EXPECT_TRUE(Enabled(Level::kDebug));
  Event(Level::kDebug, "d");
  ASSERT_EQ(Lines().size(), 1u);
  EXPECT_THAT(Lines()[0], HasSubstr(" level=debug event=d"));
}

TEST_F(LogTest, DefaultSinkIsStderr) {
  Configure(Level::kInfo, Format::kText, nullptr);
  ::testing::internal::CaptureStderr();
  Event(Level::kInfo, "to_stderr").With("n", 1);
  const std::string captured = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(std::regex_match(
      captured, std::regex(std::string("ts=") + kTimestamp + " level=info event=to_stderr n=1\n")))
      << captured;
  EXPECT_EQ(sink_.str(), "");
}

// A sink that takes one character at a time, each under its own lock, and
// yields now and then: safe to share, but lines that two threads wrote at
// once would interleave, as on a pipe written in small pieces. Only the
// log's own mutex keeps lines whole here.
class CharByCharSink : public std::streambuf {
 public:
  std::string str() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      text_.push_back(traits_type::to_char_type(c));
    }
    if (count_.fetch_add(1, std::memory_order_relaxed) % 16 == 0) std::this_thread::yield();
    return c;
  }

 private:
  std::mutex mutex_;
  std::string text_;
  std::atomic<uint64_t> count_{0};
};

// Threads log long lines at once; every line must come out whole, once.
TEST_F(LogTest, ConcurrentEventsAreWholeLines) {
  constexpr int kThreads = 8;
  constexpr int kEventsPerThread = 300;
  const std::string payload(300, 'p');
  for (const Format format : {Format::kJson, Format::kText}) {
    CharByCharSink buffer;
    std::ostream sink(&buffer);
    Configure(Level::kInfo, format, &sink);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t, &payload] {
        for (int i = 0; i < kEventsPerThread; ++i) {
          Event(Level::kInfo, "tick")
              .With("thread", t)
              .With("seq", i)
              .With("payload", payload)
              .With("note", "a b \"c\"");
          Event(Level::kDebug, "filtered").With("thread", t);  // below the level
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    Configure(Level::kInfo, format, &sink_);  // `sink` is about to go

    const std::vector<std::string> lines = SplitLines(buffer.str());
    ASSERT_EQ(lines.size(), static_cast<size_t>(kThreads * kEventsPerThread));
    std::vector<std::set<int>> seen(kThreads);
    const std::regex text_line(std::string("ts=") + kTimestamp +
                               " level=info event=tick thread=(\\d+) seq=(\\d+) payload=p{300} "
                               "note=\"a b \\\\\"c\\\\\"\"");
    for (const std::string& line : lines) {
      int thread = -1;
      int seq = -1;
      if (format == Format::kJson) {
        const nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
        ASSERT_TRUE(event.is_object()) << line;
        ASSERT_EQ(event["payload"], payload);
        ASSERT_EQ(event["note"], "a b \"c\"");
        thread = event["thread"].get<int>();
        seq = event["seq"].get<int>();
      } else {
        std::smatch match;
        ASSERT_TRUE(std::regex_match(line, match, text_line)) << line;
        thread = std::stoi(match[1].str());
        seq = std::stoi(match[2].str());
      }
      ASSERT_GE(thread, 0);
      ASSERT_LT(thread, kThreads);
      EXPECT_TRUE(seen[thread].insert(seq).second) << "duplicate " << line;
    }
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(seen[t].size(), static_cast<size_t>(kEventsPerThread)) << t;
    }
  }
}

TEST(ParseLevelTest, AcceptsTheConfigNames) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("info"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  for (const char* bad : {"", "warn", "INFO", "fatal", "info "}) {
    const absl::StatusOr<Level> level = ParseLevel(bad);
    ASSERT_FALSE(level.ok()) << bad;
    EXPECT_EQ(level.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(level.status().message(), std::string("unknown log level '") + bad +
                                            "': expected debug, info, warning or error");
  }
}

TEST(ParseFormatTest, AcceptsTextAndJson) {
  EXPECT_EQ(*ParseFormat("text"), Format::kText);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  for (const char* bad : {"", "xml", "JSON", "logfmt"}) {
    const absl::StatusOr<Format> format = ParseFormat(bad);
    ASSERT_FALSE(format.ok()) << bad;
    EXPECT_EQ(format.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(format.status().message(),
              std::string("unknown log format '") + bad + "': expected text or json");
  }
}

}  // namespace
}  // namespace strata::logging
