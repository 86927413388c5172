#include "server/grpc/blend_conversion.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/grpc/request_conversion.h"

namespace strata::server {
namespace {

using engine::TokenId;

absl::Status Invalid(const std::string& field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// Splits the template tokens the tokenizer adds around `text` (BOS before,
// EOS after) from the text's own: with = before + plain + after.
struct TemplateTokens {
  std::vector<TokenId> before, after;
};
TemplateTokens FindTemplateTokens(const std::vector<TokenId>& with,
                                  const std::vector<TokenId>& plain) {
  TemplateTokens out;
  if (with.size() < plain.size()) return out;
  for (size_t k = 0; k + plain.size() <= with.size(); ++k) {
    if (std::equal(plain.begin(), plain.end(), with.begin() + static_cast<std::ptrdiff_t>(k))) {
      out.before.assign(with.begin(), with.begin() + static_cast<std::ptrdiff_t>(k));
      out.after.assign(with.begin() + static_cast<std::ptrdiff_t>(k + plain.size()), with.end());
      return out;
    }
  }
  return out;
}

absl::StatusOr<std::vector<TokenId>> ChunkIds(const v1::ContextChunk& chunk,
                                              const std::string& field,
                                              const ConversionContext& context) {
  switch (chunk.content_case()) {
    case v1::ContextChunk::kText: {
      if (chunk.text().empty()) return Invalid(field + ".text", "is empty");
      absl::StatusOr<std::vector<TokenId>> ids =
          context.tokenizer->Encode(chunk.text(), /*add_special_tokens=*/false);
      if (!ids.ok()) return Invalid(field + ".text", ids.status().message());
      if (ids->empty()) return Invalid(field + ".text", "has no tokens");
      return ids;
    }
    case v1::ContextChunk::kTokenIds: {
      const auto& ids = chunk.token_ids().ids();
      if (ids.empty()) return Invalid(field + ".token_ids", "is empty");
      for (int j = 0; j < ids.size(); ++j) {
        if (ids[j] < 0 || ids[j] >= context.vocab_size) {
          return Invalid(
              absl::StrCat(field, ".token_ids[", j, "]"),
              absl::StrCat(ids[j], " is outside the vocabulary [0, ", context.vocab_size, ")"));
        }
      }
      return std::vector<TokenId>(ids.begin(), ids.end());
    }
    case v1::ContextChunk::CONTENT_NOT_SET:
      break;
  }
  return Invalid(field, "is empty: set text or token_ids");
}

}  // namespace

absl::StatusOr<ChunkedPrompt> ChunkedPromptFromProto(const v1::ChunkList& chunks,
                                                     bool add_special_tokens,
                                                     const ConversionContext& context) {
  if (chunks.chunks().empty()) return Invalid("input", "chunks is empty");
  ChunkedPrompt out;
  TemplateTokens around;
  for (int i = 0; i < chunks.chunks_size(); ++i) {
    const v1::ContextChunk& chunk = chunks.chunks(i);
    absl::StatusOr<std::vector<TokenId>> ids =
        ChunkIds(chunk, absl::StrCat("chunks[", i, "]"), context);
    if (!ids.ok()) return ids.status();
    if (i == 0 && add_special_tokens && chunk.content_case() == v1::ContextChunk::kText) {
      absl::StatusOr<std::vector<TokenId>> with =
          context.tokenizer->Encode(chunk.text(), /*add_special_tokens=*/true);
      if (!with.ok()) return Invalid("chunks[0].text", with.status().message());
      around = FindTemplateTokens(*with, *ids);
      out.ids = around.before;
      out.context_tokens = static_cast<int64_t>(around.before.size());
    }
    out.chunks.push_back({.begin = static_cast<int64_t>(out.ids.size()),
                          .length = static_cast<int64_t>(ids->size())});
    out.ids.insert(out.ids.end(), ids->begin(), ids->end());
  }
  out.ids.insert(out.ids.end(), around.after.begin(), around.after.end());
  if (static_cast<int64_t>(out.ids.size()) > context.max_prompt_tokens) {
    return Invalid("input",
                   absl::StrCat("prompt of ", out.ids.size(), " tokens exceeds the limit of ",
                                context.max_prompt_tokens, " tokens"));
  }
  return out;
}

absl::StatusOr<std::optional<scheduler::BlendOptions>> BlendFromProto(
    const v1::BlendOptions& blend, const BlendDefaults& defaults) {
  const bool enable = blend.has_enable() ? blend.enable() : defaults.enable;
  scheduler::BlendOptions options = defaults.options;
  if (blend.has_recompute_ratio()) {
    const float ratio = blend.recompute_ratio();
    if (!(ratio >= 0.0f && ratio <= 1.0f)) {  // NaN fails too
      return Invalid("blend.recompute_ratio", absl::StrCat(ratio, " is outside [0, 1]"));
    }
    options.recompute_ratio = ratio;
  }
  if (!blend.check_layers().empty()) {
    options.check_layers.assign(blend.check_layers().begin(), blend.check_layers().end());
    for (size_t i = 0; i < options.check_layers.size(); ++i) {
      const int32_t layer = options.check_layers[i];
      const std::string field = absl::StrCat("blend.check_layers[", i, "]");
      if (layer < 0 || layer >= defaults.num_layers) {
        return Invalid(field,
                       absl::StrCat("layer ", layer, " is outside [0, ", defaults.num_layers, ")"));
      }
      if (i > 0 && layer <= options.check_layers[i - 1]) {
        return Invalid(field, "layers must be ascending");
      }
    }
  }
  if (!enable) return std::nullopt;
  return options;
}

}  // namespace strata::server
