// CacheBlend's part of request conversion: a `chunks` input as a prompt with
// chunk spans, and the per-request blend options over the server's
// defaults (scheduler.blend.*). INVALID_ARGUMENT messages start with the
// proto field's path, like the rest of request_conversion.h.
//
// Pure functions; thread-safe as far as the borrowed tokenizer is (it is).
#ifndef STRATA_SERVER_GRPC_BLEND_CONVERSION_H_
#define STRATA_SERVER_GRPC_BLEND_CONVERSION_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/request.h"
#include "strata/v1/strata.pb.h"

namespace strata::server {

struct ConversionContext;  // request_conversion.h

// The server's blend defaults, from the config.
struct BlendDefaults {
  bool enable = true;
  scheduler::BlendOptions options;
  int64_t num_layers = 0;  // the model's: check layers must be below it
};

// A chunks input tokenized for blending: each text chunk on its own without
// template tokens (so a chunk's tokens do not depend on where it stands);
// the template's tokens (BOS) of the first chunk, when add_special_tokens,
// stand before the first chunk and belong to no chunk.
struct ChunkedPrompt {
  std::vector<engine::TokenId> ids;
  std::vector<scheduler::ChunkSpan> chunks;
  // The template tokens before the first chunk, which each chunk is also
  // computed after on its own (Request::chunk_context_tokens).
  int64_t context_tokens = 0;
};

// INVALID_ARGUMENT "chunks[i].text: ..." / "chunks[i].token_ids[j]: ..." for
// an empty chunk, bad text or an id outside the vocabulary, and "input: ..."
// for a prompt over max_prompt_tokens.
absl::StatusOr<ChunkedPrompt> ChunkedPromptFromProto(const v1::ChunkList& chunks,
                                                     bool add_special_tokens,
                                                     const ConversionContext& context);

// The blend options of a request: nullopt when blending is off (the
// request's `enable`, else the server's default). INVALID_ARGUMENT
// "blend.recompute_ratio: ..." outside [0, 1], "blend.check_layers[i]: ..."
// for a layer outside [0, num_layers) or out of order.
absl::StatusOr<std::optional<scheduler::BlendOptions>> BlendFromProto(
    const v1::BlendOptions& blend, const BlendDefaults& defaults);

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_BLEND_CONVERSION_H_
