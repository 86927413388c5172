// ChatTemplate and the Jinja subset under it, checked against renderings by
// the reference engine: Hugging Face's own rendering of the Llama 3 template
// (tests/data/tokenizers/llama3-cases.json) and Jinja 2 under transformers'
// settings for Llama 3, Qwen 2, Qwen 3, two Mistral templates and small
// programs (tests/data/chat_templates/reference_renderings.json, written by
// render_reference.py there).
#include "engine/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/jinja_parser.h"
#include "engine/tokenizer/jinja_renderer.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

const fs::path kTemplatesDir = fs::path(STRATA_TEST_DATA_DIR) / "chat_templates";

fs::path FetchedDir(const std::string& name) {
  return fs::path(STRATA_FETCHED_DATA_DIR) / "tokenizers" / name;
}

// Ordered: tojson prints keys in their order.
const nlohmann::ordered_json& Reference() {
  static const nlohmann::ordered_json* json = [] {
    std::ifstream in(kTemplatesDir / "reference_renderings.json");
    EXPECT_TRUE(in);
    return new nlohmann::ordered_json(nlohmann::ordered_json::parse(in));
  }();
  return *json;
}

template <typename Json>
std::vector<ChatMessage> Messages(const Json& list) {
  std::vector<ChatMessage> messages;
  for (const Json& m : list) {
    messages.push_back(
        {m["role"].template get<std::string>(), m["content"].template get<std::string>()});
  }
  return messages;
}

// The template named in reference_renderings.json: fetched from npm
// (llama3, qwen3) or written out in templates.json.
std::unique_ptr<ChatTemplate> LoadNamed(const std::string& name) {
  if (name == "llama3" || name == "qwen3") {
    auto loaded = ChatTemplate::Load(FetchedDir(name));
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    if (!loaded.ok()) return nullptr;
    EXPECT_NE(*loaded, nullptr) << "no chat_template in " << FetchedDir(name);
    return *std::move(loaded);
  }
  const nlohmann::json spec = ReadJson(kTemplatesDir / "templates.json")[name];
  auto created = ChatTemplate::Create(spec["source"].get<std::string>(), spec["config"]);
  EXPECT_TRUE(created.ok()) << created.status();
  return created.ok() ? *std::move(created) : nullptr;
}

TEST(ChatTemplateTest, Llama3MatchesHuggingFaceRendering) {
  ASSERT_TRUE(fs::exists(FetchedDir("llama3") / "tokenizer_config.json"))
      << "missing test data: run scripts/fetch_test_data.sh " STRATA_FETCHED_DATA_DIR;
  std::unique_ptr<ChatTemplate> chat = LoadNamed("llama3");
  ASSERT_NE(chat, nullptr);
  const nlohmann::json cases =
      ReadJson(fs::path(STRATA_TEST_DATA_DIR) / "tokenizers/llama3-cases.json");
  ASSERT_FALSE(cases["chat_template_cases"].empty());
  for (const nlohmann::json& c : cases["chat_template_cases"]) {
    auto rendered = chat->Render(Messages(c["messages"]), c["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    EXPECT_EQ(*rendered, c["prompt"].get<std::string>());
  }
}

TEST(ChatTemplateTest, TemplatesMatchJinja2) {
  ASSERT_TRUE(fs::exists(FetchedDir("qwen3") / "tokenizer_config.json"))
      << "missing test data: run scripts/fetch_test_data.sh " STRATA_FETCHED_DATA_DIR;
  const nlohmann::ordered_json& reference = Reference();
  std::map<std::string, std::unique_ptr<ChatTemplate>> templates;
  int checked = 0;
  for (const nlohmann::ordered_json& c : reference["template_cases"]) {
    const std::string name = c["template"];
    if (!templates.contains(name)) templates[name] = LoadNamed(name);
    ASSERT_NE(templates[name], nullptr) << name;
    jinja::Dict extra;
    for (const auto& [key, value] : c["extra"].items()) {
      extra.emplace_back(key, jinja::Value::FromJson(value));
    }
    const std::string conversation = c["conversation"];
    auto rendered = templates[name]->Render(Messages(reference["conversations"][conversation]),
                                            c["add_generation_prompt"].get<bool>(), extra);
    std::ostringstream trace;
    trace << name << " / " << conversation << " / " << c["extra"].dump()
          << (c["add_generation_prompt"].get<bool>() ? " / generation prompt" : "");
    SCOPED_TRACE(trace.str());
    if (c.contains("error")) {
      ASSERT_FALSE(rendered.ok());
      EXPECT_EQ(rendered.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(rendered.status().message(), c["error"].get<std::string>());
    } else {
      ASSERT_TRUE(rendered.ok()) << rendered.status();
      EXPECT_EQ(*rendered, c["expected"].get<std::string>());
    }
    ++checked;
  }
  EXPECT_GE(checked, 50);
}

TEST(JinjaTest, ProgramsMatchJinja2) {
  for (const nlohmann::ordered_json& c : Reference()["jinja_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto parsed = jinja::Parse(c["template"].get<std::string>());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    jinja::Dict vars;
    for (const auto& [key, value] : c["vars"].items()) {
      vars.emplace_back(key, jinja::Value::FromJson(value));
    }
    auto rendered = jinja::Render(**parsed, vars);
    if (c.contains("error")) {
      EXPECT_FALSE(rendered.ok()) << "rendered " << *rendered;
    } else {
      ASSERT_TRUE(rendered.ok()) << rendered.status();
      EXPECT_EQ(*rendered, c["expected"].get<std::string>());
    }
  }
}

TEST(JinjaTest, UnsupportedConstructsFailAtParseTimeWithTheLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{% macro f() %}x{% endmacro %}", "line 1: unsupported tag 'macro'"},
      {"a\n{{ x | wordwrap }}", "line 2: unsupported filter 'wordwrap'"},
      {"{{ x is sameas y }}", "line 1: unsupported test 'sameas'"},
      {"{{ x.zfill(3) }}", "line 1: unsupported method 'zfill'"},
      {"{{ cycler() }}", "line 1: unsupported function 'cycler'"},
      {"\n\n{% if x %}", "line 3: missing '{% endif %}'"},
      {"{{ 'abc }}", "line 1: unclosed '{{'"},
      {"{% for x in xs %}{% endif %}", "unsupported tag 'endif'"},
      {"{% break %}", "line 1: 'break' outside a loop"},
      {"{% set x %}y{% endset %}", "block assignments"},
      {"{{ 1 + }}", "expected an expression"},
  };
  for (const auto& [source, message] : cases) {
    auto parsed = jinja::Parse(source);
    ASSERT_FALSE(parsed.ok()) << source;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << source;
    EXPECT_NE(parsed.status().message().find(message), std::string::npos)
        << source << " -> " << parsed.status().message();
  }
}

TEST(ChatTemplateTest, LoadReportsTheFileAndModelsWithoutTemplate) {
  // The embedded model and the Mistral tokenizer package ship no template.
  auto none = ChatTemplate::Load(fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);
  auto missing_dir = ChatTemplate::Load("/nonexistent-dir");
  ASSERT_TRUE(missing_dir.ok());
  EXPECT_EQ(*missing_dir, nullptr);

  const fs::path dir = fs::path(::testing::TempDir()) / "chat_template_bad";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"chat_template": "{% macro m() %}{% endmacro %}"})";
  auto bad = ChatTemplate::Load(dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tokenizer_config.json: chat_template: line 1: "
                                        "unsupported tag 'macro'"),
            std::string::npos)
      << bad.status();

  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": {"content": "<s>"}, "chat_template": [)"
      << R"({"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D"}]})";
  auto named = ChatTemplate::Load(dir);
  ASSERT_TRUE(named.ok()) << named.status();
  ASSERT_NE(*named, nullptr);
  auto rendered = (*named)->Render({}, true);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, "<s>D");
  fs::remove_all(dir);
}

// A session's turn n+1 re-sends turn n's prompt, the model's answer and a
// new question; for the prefix cache to serve turn n's KV, turn n's prompt
// tokens must be a prefix of turn n+1's.
TEST(ChatTemplateTest, EachTurnsPromptIsATokenPrefixOfTheNext) {
  for (const std::string name : {"llama3", "qwen3"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(fs::exists(FetchedDir(name) / "tokenizer.json"))
        << "missing test data: run scripts/fetch_test_data.sh " STRATA_FETCHED_DATA_DIR;
    auto tokenizer = Tokenizer::Load(FetchedDir(name));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    std::unique_ptr<ChatTemplate> chat = LoadNamed(name);
    ASSERT_NE(chat, nullptr);
    std::vector<ChatMessage> conversation = {{"system", "You are a terse assistant."}};
    std::vector<TokenId> previous;
    const std::vector<std::pair<std::string, std::string>> turns = {
        {"Hi!", "Hello. How can I help?"},
        {"Count to three.", "1, 2, 3."},
        {"And back down?", " 3, 2, 1.\n"},
        {"Thanks", "You're welcome!"}};
    for (const auto& [question, answer] : turns) {
      conversation.push_back({"user", question});
      auto rendered = chat->Render(conversation, true);
      ASSERT_TRUE(rendered.ok()) << rendered.status();
      auto ids = (*tokenizer)->Encode(*rendered, /*add_special_tokens=*/false);
      ASSERT_TRUE(ids.ok()) << ids.status();
      ASSERT_GT(ids->size(), previous.size());
      EXPECT_TRUE(std::equal(previous.begin(), previous.end(), ids->begin()))
          << "turn with question '" << question << "' does not extend the previous prompt";
      previous = *ids;
      conversation.push_back({"assistant", answer});
    }
  }
}

TEST(ChatTemplateTest, RenderingsAreIndependentAcrossThreads) {
  std::unique_ptr<ChatTemplate> chat = LoadNamed("qwen2");
  ASSERT_NE(chat, nullptr);
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = chat->Render({{"user", absl::StrCat("q", t)}}, true);
        if (r.ok()) results[t] = *r;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(results[t],
              absl::StrCat("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                           "<|im_start|>user\nq",
                           t, "<|im_end|>\n<|im_start|>assistant\n"));
  }
}

}  // namespace
}  // namespace strata::engine
