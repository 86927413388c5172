#include "server/grpc/request_conversion.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace strata::server {
namespace {

using engine::TokenId;

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(field), ": ", std::string(problem)));
}

absl::Status CheckIds(absl::Span<const TokenId> ids, std::string_view field, int64_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return Invalid(absl::StrCat(std::string(field), "[", i, "]"),
                     absl::StrCat(ids[i], " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

// ---- Length limits (tokenizer work per request is bounded) ----

absl::Status PromptTooLong(size_t tokens, const ConversionContext& context) {
  return Invalid("input", absl::StrCat("prompt of ", tokens, " tokens exceeds the limit of ",
                                       context.max_prompt_tokens, " tokens"));
}

// Tokenizes `text` and appends its ids; `field` names it in errors. Stops
// with the token limit's error as soon as the prompt so far is over it, so
// that later chunks are never tokenized.
absl::Status AppendText(const std::string& text, bool add_special_tokens, std::string_view field,
                        const ConversionContext& context, std::vector<TokenId>& ids) {
  if (text.empty()) return Invalid(field, "is empty");
  absl::StatusOr<std::vector<TokenId>> encoded =
      context.tokenizer->Encode(text, add_special_tokens);
  if (!encoded.ok()) return Invalid(field, std::string(encoded.status().message()));
  ids.insert(ids.end(), encoded->begin(), encoded->end());
  if (static_cast<int64_t>(ids.size()) > context.max_prompt_tokens) {
    return PromptTooLong(ids.size(), context);
  }
  return absl::OkStatus();
}

// Bytes of text in the message's input (text, or the text chunks).
template <typename Message>
int64_t InputTextBytes(const Message& message) {
  if (message.input_case() == Message::kText) return static_cast<int64_t>(message.text().size());
  if (message.input_case() != Message::kChunks) return 0;
  int64_t bytes = 0;
  for (const v1::ContextChunk& chunk : message.chunks().chunks()) {
    if (chunk.content_case() == v1::ContextChunk::kText) {
      bytes += static_cast<int64_t>(chunk.text().size());
    }
  }
  return bytes;
}

// Checked before any tokenizing: an oversized text costs nothing.
template <typename Message>
absl::Status CheckInputBytes(const Message& message, const ConversionContext& context) {
  const int64_t bytes = InputTextBytes(message);
  if (context.max_prompt_bytes <= 0 || bytes <= context.max_prompt_bytes) return absl::OkStatus();
  return Invalid("input", absl::StrCat("text of ", bytes, " bytes exceeds the limit of ",
                                       context.max_prompt_bytes, " bytes"));
}

// ---- end of length limits ----

absl::Status AppendIds(const v1::TokenIds& token_ids, std::string_view field,
                       const ConversionContext& context, std::vector<TokenId>& ids) {
  if (token_ids.ids().empty()) return Invalid(field, "is empty");
  absl::Span<const TokenId> span(token_ids.ids().data(), token_ids.ids().size());
  if (absl::Status valid = CheckIds(span, field, context.vocab_size); !valid.ok()) return valid;
  ids.insert(ids.end(), span.begin(), span.end());
  return absl::OkStatus();
}

absl::Status AppendChunks(const v1::ChunkList& chunks, bool add_special_tokens,
                          const ConversionContext& context, std::vector<TokenId>& ids) {
  if (chunks.chunks().empty()) return Invalid("input", "chunks is empty");
  for (int i = 0; i < chunks.chunks_size(); ++i) {
    const v1::ContextChunk& chunk = chunks.chunks(i);
    const std::string field = absl::StrCat("chunks[", i, "]");
    absl::Status appended;
    switch (chunk.content_case()) {
      case v1::ContextChunk::kText:
        // Template tokens (BOS) belong at the start of the whole prompt only.
        appended = AppendText(chunk.text(), add_special_tokens && i == 0,
                              absl::StrCat(field, ".text"), context, ids);
        break;
      case v1::ContextChunk::kTokenIds:
        appended = AppendIds(chunk.token_ids(), absl::StrCat(field, ".token_ids"), context, ids);
        break;
      case v1::ContextChunk::CONTENT_NOT_SET:
        appended = Invalid(field, "is empty: set text or token_ids");
        break;
    }
    if (!appended.ok()) return appended;
  }
  return absl::OkStatus();
}

// Renders the conversation with the model's chat template; the template
// writes its own special tokens, so none are added when tokenizing.
absl::Status AppendMessages(const v1::ChatMessages& chat, const ConversionContext& context,
                            std::vector<TokenId>& ids) {
  if (context.chat_template == nullptr) {
    return absl::FailedPreconditionError(
        "messages: the model has no chat template (no chat_template in its "
        "tokenizer_config.json); send text or token_ids");
  }
  if (chat.messages().empty()) return Invalid("messages", "is empty");
  std::vector<engine::ChatMessage> messages;
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& message = chat.messages(i);
    if (message.role().empty()) return Invalid(absl::StrCat("messages[", i, "].role"), "is empty");
    messages.push_back({message.role(), message.content()});
  }
  const bool add_generation_prompt =
      !chat.has_add_generation_prompt() || chat.add_generation_prompt();
  absl::StatusOr<std::string> prompt =
      context.chat_template->Render(messages, add_generation_prompt);
  if (!prompt.ok()) return Invalid("messages", std::string(prompt.status().message()));
  if (prompt->empty()) return Invalid("messages", "the chat template rendered an empty prompt");
  return AppendText(*prompt, /*add_special_tokens=*/false, "messages", context, ids);
}

// Chat input exists on GenerateRequest only.
absl::Status AppendMessagesOf(const v1::GenerateRequest& request, const ConversionContext& context,
                              std::vector<TokenId>& ids) {
  return AppendMessages(request.messages(), context, ids);
}
absl::Status AppendMessagesOf(const v1::Prefetch& /*prefetch*/,
                              const ConversionContext& /*context*/,
                              std::vector<TokenId>& /*ids*/) {
  return Invalid("input", "is required: set text, token_ids or chunks");
}

// GenerateRequest and Prefetch share the `input` oneof and add_special_tokens.
template <typename Message>
absl::StatusOr<std::vector<TokenId>> PromptFromInput(const Message& message,
                                                     const ConversionContext& context) {
  const bool add_special_tokens = !message.has_add_special_tokens() || message.add_special_tokens();
  if (absl::Status fits = CheckInputBytes(message, context); !fits.ok()) return fits;
  std::vector<TokenId> ids;
  absl::Status converted;
  switch (message.input_case()) {
    case Message::kText:
      if (message.text().empty()) return Invalid("input", "text is empty");
      converted = AppendText(message.text(), add_special_tokens, "text", context, ids);
      break;
    case Message::kTokenIds:
      if (message.token_ids().ids().empty()) return Invalid("input", "token_ids is empty");
      converted = AppendIds(message.token_ids(), "token_ids", context, ids);
      break;
    case Message::kChunks:
      converted = AppendChunks(message.chunks(), add_special_tokens, context, ids);
      break;
    case Message::INPUT_NOT_SET:
      return Invalid("input", "is required: set text, token_ids or chunks");
    default:
      // GenerateRequest's chat messages: rendered by the chat template.
      converted = AppendMessagesOf(message, context, ids);
      break;
  }
  if (!converted.ok()) return converted;
  if (ids.empty()) return Invalid("input", "has no tokens");
  if (static_cast<int64_t>(ids.size()) > context.max_prompt_tokens) {
    return PromptTooLong(ids.size(), context);
  }
  return ids;
}

// engine::ValidateSamplingParams names engine fields; the client knows the
// proto's.
std::string ProtoSamplingField(std::string_view engine_field) {
  if (engine_field == "stop_strings") return "stop";
  if (engine_field == "return_logprob") return "logprobs";
  return std::string(engine_field);
}

}  // namespace

absl::StatusOr<std::vector<TokenId>> PromptFromRequest(const v1::GenerateRequest& request,
                                                       const ConversionContext& context) {
  return PromptFromInput(request, context);
}

absl::StatusOr<std::vector<TokenId>> PromptFromPrefetch(const v1::Prefetch& prefetch,
                                                        const ConversionContext& context) {
  return PromptFromInput(prefetch, context);
}

absl::StatusOr<engine::SamplingParams> SamplingFromProto(const v1::SamplingParams& sampling,
                                                         const ConversionContext& context) {
  engine::SamplingParams params;
  if (sampling.has_temperature()) params.temperature = sampling.temperature();
  if (sampling.has_top_k()) params.top_k = sampling.top_k();
  if (sampling.has_top_p()) params.top_p = sampling.top_p();
  if (sampling.has_min_p()) params.min_p = sampling.min_p();
  if (sampling.has_repetition_penalty()) params.repetition_penalty = sampling.repetition_penalty();
  if (sampling.has_presence_penalty()) params.presence_penalty = sampling.presence_penalty();
  if (sampling.has_frequency_penalty()) params.frequency_penalty = sampling.frequency_penalty();
  if (sampling.has_seed()) params.seed = sampling.seed();
  params.max_tokens =
      sampling.has_max_tokens() ? sampling.max_tokens() : context.default_max_tokens;
  params.stop_strings.assign(sampling.stop().begin(), sampling.stop().end());
  params.stop_token_ids.assign(sampling.stop_token_ids().begin(), sampling.stop_token_ids().end());
  params.ignore_eos = sampling.ignore_eos();
  params.return_logprob = sampling.logprobs();
  params.top_logprobs = sampling.top_logprobs();

  absl::Status valid = engine::ValidateSamplingParams(params, context.vocab_size);
  if (valid.ok()) return params;
  // Messages read "<field> <requirement>, got <value>".
  const std::string full_message(valid.message());
  std::string_view message = full_message;
  size_t space = message.find(' ');
  if (space == std::string_view::npos) return Invalid("sampling", message);
  return Invalid(absl::StrCat("sampling.", ProtoSamplingField(message.substr(0, space))),
                 message.substr(space + 1));
}

int64_t SharedPrefixLength(absl::Span<const TokenId> prompt,
                           absl::Span<const TokenId> shared_prefix) {
  if (shared_prefix.empty() || prompt.size() < shared_prefix.size()) return 0;
  return prompt.subspan(0, shared_prefix.size()) == shared_prefix
             ? static_cast<int64_t>(shared_prefix.size())
             : 0;
}

// The prompt of a message whose input may be chunks: with blending on, the
// chunks keep their spans (`out.chunks`, `out.blend`).
template <typename Message>
absl::Status SetPrompt(const Message& message, const v1::BlendOptions& blend_proto,
                       const ConversionContext& context, scheduler::Request& out) {
  if (message.input_case() == Message::kChunks) {
    absl::StatusOr<std::optional<scheduler::BlendOptions>> blend =
        BlendFromProto(blend_proto, context.blend);
    if (!blend.ok()) return blend.status();
    if (*blend) {
      const bool add_special = !message.has_add_special_tokens() || message.add_special_tokens();
      absl::StatusOr<ChunkedPrompt> chunked =
          ChunkedPromptFromProto(message.chunks(), add_special, context);
      if (!chunked.ok()) return chunked.status();
      out.prompt_ids = std::move(chunked->ids);
      out.chunks = std::move(chunked->chunks);
      out.chunk_context_tokens = chunked->context_tokens;
      out.blend = **std::move(blend);
      return absl::OkStatus();
    }
  }
  absl::StatusOr<std::vector<TokenId>> prompt = PromptFromInput(message, context);
  if (!prompt.ok()) return prompt.status();
  out.prompt_ids = *std::move(prompt);
  return absl::OkStatus();
}

absl::StatusOr<scheduler::Request> RequestFromProto(const v1::GenerateRequest& request,
                                                    const ConversionContext& context,
                                                    const Tenant& tenant) {
  scheduler::Request out;
  if (absl::Status prompt = SetPrompt(request, request.blend(), context, out); !prompt.ok()) {
    return prompt;
  }
  absl::StatusOr<engine::SamplingParams> sampling = SamplingFromProto(request.sampling(), context);
  if (!sampling.ok()) return sampling.status();

  out.kind = scheduler::RequestKind::kGenerate;
  out.sampling = *std::move(sampling);
  out.cache_salt = tenant.cache_salt;
  out.session_id = request.session_id();
  out.workflow_id = request.workflow_id();
  out.agent_id = request.agent_id();
  out.next_agent_ids.assign(request.next_agent_ids().begin(), request.next_agent_ids().end());
  out.priority = request.priority();
  // Blocks of the configured shared prefix are keyed under the public salt,
  // so every tenant reuses them; the rest stays under the tenant's salt.
  out.public_prefix_tokens = SharedPrefixLength(out.prompt_ids, context.shared_prefix_ids);
  return out;
}

absl::StatusOr<scheduler::Request> PrefetchRequestFromProto(const v1::Prefetch& prefetch,
                                                            const ConversionContext& context,
                                                            const Tenant& tenant) {
  v1::BlendOptions blend;
  if (prefetch.has_blend()) blend.set_enable(prefetch.blend());
  scheduler::Request out;
  if (absl::Status prompt = SetPrompt(prefetch, blend, context, out); !prompt.ok()) return prompt;
  out.kind = scheduler::RequestKind::kPrefill;
  out.sampling.max_tokens = 1;
  out.cache_salt = tenant.cache_salt;
  out.public_prefix_tokens = SharedPrefixLength(out.prompt_ids, context.shared_prefix_ids);
  out.session_id = prefetch.session_id();
  out.pin = prefetch.pin();
  return out;
}

void AppendToken(const scheduler::TokenEvent& event, const engine::SamplingParams& sampling,
                 const engine::Tokenizer& tokenizer,
                 google::protobuf::RepeatedPtrField<v1::GeneratedToken>* tokens) {
  if (!event.token_id.has_value()) return;
  v1::GeneratedToken* token = tokens->Add();
  token->set_id(*event.token_id);
  if (!event.sampled.has_value()) return;
  if (sampling.return_logprob) token->set_logprob(event.sampled->logprob);
  for (const engine::TokenLogprob& alternative : event.sampled->top_logprobs) {
    v1::TopLogprob* top = token->add_top_logprobs();
    top->set_token_id(alternative.id);
    top->set_logprob(alternative.logprob);
    absl::StatusOr<std::string> text =
        tokenizer.Decode(absl::MakeConstSpan(&alternative.id, 1), /*skip_special_tokens=*/false);
    if (text.ok()) top->set_text(*std::move(text));
  }
}

v1::FinishReason FinishReasonToProto(scheduler::FinishReason reason) {
  switch (reason) {
    case scheduler::FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case scheduler::FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case scheduler::FinishReason::kAbort:
      return v1::FINISH_REASON_ABORT;
    case scheduler::FinishReason::kDeadline:
    case scheduler::FinishReason::kPrefilled:
    case scheduler::FinishReason::kError:
      break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

absl::Status StatusOfFinishedEvent(const scheduler::TokenEvent& event) {
  if (event.finish_reason == scheduler::FinishReason::kDeadline) {
    return absl::DeadlineExceededError(event.error.ok() ? "deadline exceeded"
                                                        : std::string(event.error.message()));
  }
  if (event.finish_reason == scheduler::FinishReason::kError) {
    return event.error.ok() ? absl::InternalError("the engine failed the request") : event.error;
  }
  return absl::OkStatus();
}

void FillUsage(const scheduler::PromptUsage& prompt, int64_t generated_tokens, double ttft_s,
               double total_s, v1::Usage* usage) {
  usage->set_prompt_tokens(prompt.prompt_tokens);
  usage->set_cached_prompt_tokens(prompt.cached_tokens());
  usage->set_cached_device_tokens(prompt.cached_tokens_by_tier[0]);
  usage->set_cached_host_tokens(prompt.cached_tokens_by_tier[1]);
  usage->set_cached_disk_tokens(prompt.cached_tokens_by_tier[2]);
  usage->set_generated_tokens(generated_tokens);
  usage->set_time_to_first_token_s(ttft_s < 0 ? 0.0 : ttft_s);
  usage->set_total_time_s(total_s);
  usage->set_blend_reused_tokens(prompt.blend_reused_tokens);
  usage->set_blend_recomputed_tokens(prompt.blend_recomputed_tokens);
}

void FillCacheStats(const scheduler::EngineSnapshot& snapshot, int64_t block_size,
                    v1::CacheStats* stats) {
  const cache::CacheStats& cache = snapshot.cache;
  stats->set_block_size(block_size);
  stats->set_query_tokens(cache.query_tokens);
  int64_t hits = 0;
  for (int64_t tier_hits : cache.hit_tokens) hits += tier_hits;
  stats->set_hit_tokens(hits);
  static constexpr const char* kTierNames[cache::kNumTiers] = {"device", "host", "disk"};
  for (int tier = 0; tier < cache::kNumTiers; ++tier) {
    v1::TierStats* tier_stats = stats->add_tiers();
    tier_stats->set_tier(kTierNames[tier]);
    tier_stats->set_hit_tokens(cache.hit_tokens[tier]);
    // Only the device tier's block counts are published by the engine.
    if (tier == 0) {
      tier_stats->set_blocks_used(snapshot.device_blocks_used);
      tier_stats->set_blocks_cached(snapshot.device_blocks_cached);
      tier_stats->set_blocks_free(snapshot.device_blocks_free);
    }
  }
  stats->set_evicted_blocks(cache.evicted_blocks);
  stats->set_demoted_blocks(cache.demoted_blocks);
  stats->set_promoted_blocks(cache.promoted_blocks);
  stats->set_num_running(snapshot.num_running);
  stats->set_num_waiting(snapshot.num_waiting);
  stats->set_preemptions(snapshot.num_preemptions);
}

}  // namespace strata::server
