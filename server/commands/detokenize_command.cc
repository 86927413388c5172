// `strata detokenize [--model DIR] --ids 1,2,3 [--skip-special]`: prints the
// decoded text as {"text":"..."}. Bytes that are not valid UTF-8 (ids that
// stop mid-character) become U+FFFD so the output is always valid JSON.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"

namespace strata::server {
namespace {

constexpr char kName[] = "detokenize";

// "1,2,3" (spaces allowed around ids; "" is no ids). INVALID_ARGUMENT names
// the first item that is not an integer in the TokenId range.
absl::StatusOr<std::vector<engine::TokenId>> ParseIds(const std::string& list) {
  std::vector<engine::TokenId> ids;
  if (list.find_first_not_of(" ") == std::string::npos) return ids;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(item, &id)) {
      return absl::InvalidArgumentError("--ids expects comma-separated integers, got '" +
                                        std::string(item) + "'");
    }
    ids.push_back(id);
  }
  return ids;
}

int RunDetokenize(const std::vector<std::string>& args) {
  auto parsed =
      ParseArgs(args, {.value_options = {"model", "ids"}, .flag_options = {"skip-special"}});
  if (!parsed.ok()) return UsageError(kName, std::string(parsed.status().message()));
  auto list = parsed->Require("ids");
  if (!list.ok()) return UsageError(kName, std::string(list.status().message()));
  auto ids = ParseIds(*list);
  if (!ids.ok()) return UsageError(kName, std::string(ids.status().message()));
  std::filesystem::path model_dir = parsed->Get("model").value_or(DefaultModelDir().string());

  auto tokenizer = engine::Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) {
    std::cerr << "strata detokenize: " << tokenizer.status() << "\n";
    return kExitFailure;
  }
  auto text = (*tokenizer)->Decode(*ids, /*skip_special_tokens=*/parsed->Has("skip-special"));
  if (!text.ok()) {
    std::cerr << "strata detokenize: " << text.status() << "\n";
    return kExitFailure;
  }
  // The same replacement as the gRPC Detokenize (one U+FFFD per ill-formed
  // sequence), so both print the same text.
  nlohmann::json out = {{"text", engine::Utf8Lossy(*text, /*keep_incomplete_tail=*/false)}};
  std::cout << out.dump(-1, ' ', /*ensure_ascii=*/false) << "\n";
  return kExitOk;
}

const CommandRegistrar kRegistrar({
    .name = kName,
    .usage = "[--model DIR] --ids 1,2,3 [--skip-special]",
    .run = RunDetokenize,
});

}  // namespace
}  // namespace strata::server
