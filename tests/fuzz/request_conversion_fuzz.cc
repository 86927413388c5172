// The proto -> engine request conversion on arbitrary wire bytes, parsed as
// a GenerateRequest and as a Prefetch, against the embedded model's
// tokenizer. Whatever it accepts must respect the limits it checks: a prompt
// of 1..max_prompt_tokens ids, all inside the vocabulary, and valid
// sampling.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "server/grpc/request_conversion.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const strata::server::ConversionContext& Context() {
  static const auto* const context = [] {
    auto tokenizer = strata::engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    if (!tokenizer.ok()) strata::fuzz::Fail("the embedded tokenizer does not load");
    auto* made = new strata::server::ConversionContext();
    made->tokenizer = tokenizer->release();
    made->vocab_size = made->tokenizer->vocab_size();
    made->max_prompt_tokens = 127;
    made->max_prompt_bytes = 127 * 12;
    made->default_max_tokens = 16;
    made->shared_prefix_ids = {1, 20, 21};
    return made;
  }();
  return *context;
}

void CheckPrompt(const std::vector<strata::engine::TokenId>& prompt) {
  const strata::server::ConversionContext& context = Context();
  if (prompt.empty() || static_cast<int64_t>(prompt.size()) > context.max_prompt_tokens) {
    strata::fuzz::Fail("an accepted prompt is empty or over the limit");
  }
  for (strata::engine::TokenId id : prompt) {
    if (id < 0 || id >= context.vocab_size)
      strata::fuzz::Fail("an accepted id is outside the vocab");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const strata::server::ConversionContext& context = Context();
  strata::v1::GenerateRequest request;
  if (request.ParseFromArray(data, static_cast<int>(size))) {
    auto converted = strata::server::RequestFromProto(
        request, context, strata::server::Tenant{.name = "t", .cache_salt = "tenant:t"});
    if (converted.ok()) {
      CheckPrompt(converted->prompt_ids);
      if (!strata::engine::ValidateSamplingParams(converted->sampling, context.vocab_size).ok()) {
        strata::fuzz::Fail("accepted sampling parameters do not validate");
      }
      if (converted->public_prefix_tokens < 0 ||
          converted->public_prefix_tokens > static_cast<int64_t>(converted->prompt_ids.size())) {
        strata::fuzz::Fail("public_prefix_tokens outside the prompt");
      }
    }
  }
  strata::v1::Prefetch prefetch;
  if (prefetch.ParseFromArray(data, static_cast<int>(size))) {
    auto prompt = strata::server::PromptFromPrefetch(prefetch, context);
    if (prompt.ok()) CheckPrompt(*prompt);
  }
  return 0;
}
