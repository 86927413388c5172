// `strata tokenize [--model DIR] --text TEXT [--special]`: prints the ids of
// TEXT as {"ids":[...]}; --special applies the post-processor template (BOS).
#include <iostream>
#include <string>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"

namespace strata::server {
namespace {

constexpr char kName[] = "tokenize";

int RunTokenize(const std::vector<std::string>& args) {
  auto parsed = ParseArgs(args, {.value_options = {"model", "text"}, .flag_options = {"special"}});
  if (!parsed.ok()) return UsageError(kName, std::string(parsed.status().message()));
  auto text = parsed->Require("text");
  if (!text.ok()) return UsageError(kName, std::string(text.status().message()));
  std::filesystem::path model_dir = parsed->Get("model").value_or(DefaultModelDir().string());

  auto tokenizer = engine::Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) {
    std::cerr << "strata tokenize: " << tokenizer.status() << "\n";
    return kExitFailure;
  }
  auto ids = (*tokenizer)->Encode(*text, /*add_special_tokens=*/parsed->Has("special"));
  if (!ids.ok()) {
    std::cerr << "strata tokenize: " << ids.status() << "\n";
    return kExitFailure;
  }
  std::cout << nlohmann::json{{"ids", *ids}}.dump() << "\n";
  return kExitOk;
}

const CommandRegistrar kRegistrar({
    .name = kName,
    .usage = "[--model DIR] --text TEXT [--special]",
    .run = RunTokenize,
});

}  // namespace
}  // namespace strata::server
