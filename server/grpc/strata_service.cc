#include "server/grpc/strata_service.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/decoder.h"
#include "server/grpc/generate_reactor.h"
#include "server/grpc/unary_reactors.h"

namespace strata::server {
namespace {

// A Generate call refused before it reached the engine; finished by the
// caller (maybe later, through the refusal gate).
class RejectedStream final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  void OnDone() override { delete this; }
};

bool IsRefusal(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable;
}

std::optional<std::string_view> Metadata(const grpc::CallbackServerContext& context,
                                         std::string_view key) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return std::nullopt;
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

StrataService::StrataService(scheduler::EngineService* engine, const ServedModel& model,
                             Authenticator authenticator, ConversionContext conversion,
                             int64_t max_concurrent_streams)
    : engine_(engine),
      model_(model),
      authenticator_(std::move(authenticator)),
      conversion_(std::move(conversion)),
      max_concurrent_streams_(max_concurrent_streams),
      env_{.engine = engine, .tokenizer = model.tokenizer, .open_calls = &open_calls_} {}

StrataService::~StrataService() = default;

absl::StatusOr<Tenant> StrataService::Admit(const grpc::CallbackServerContext& context) const {
  if (draining_.load()) return absl::UnavailableError("server is draining");
  return authenticator_.Authenticate(Metadata(context, "authorization"));
}

grpc::ServerUnaryReactor* StrataService::FinishUnary(grpc::CallbackServerContext* context,
                                                     const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status reply = ToGrpcStatus(status);
  if (IsRefusal(status)) {
    refusals_.Refuse([reactor, reply] { reactor->Finish(reply); });
  } else {
    reactor->Finish(reply);
  }
  return reactor;
}

bool StrataService::TakeSlot() {
  if (open_calls_.fetch_add(1) < max_concurrent_streams_) return true;
  open_calls_.fetch_sub(1);
  return false;
}

absl::StatusOr<scheduler::Request> StrataService::PrepareGeneration(
    grpc::CallbackServerContext* context, const v1::GenerateRequest& request, CallRecord& record) {
  record.client_request_id = request.request_id();
  absl::StatusOr<scheduler::Request> engine_request = [&]() -> absl::StatusOr<scheduler::Request> {
    absl::StatusOr<Tenant> tenant = Admit(*context);
    if (!tenant.ok()) return tenant.status();
    record.tenant = tenant->name;
    absl::StatusOr<scheduler::Request> converted = RequestFromProto(request, conversion_, *tenant);
    if (!converted.ok()) return converted.status();
    if (!TakeSlot()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "more than max_concurrent_streams (", max_concurrent_streams_, ") calls are open"));
    }
    converted->deadline = EngineDeadline(*context);
    return converted;
  }();
  if (!engine_request.ok()) {
    record.status = engine_request.status();
    LogRequestFinished(record);
  }
  return engine_request;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* StrataService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  CallRecord record{.method = "Generate"};
  absl::StatusOr<scheduler::Request> engine_request = PrepareGeneration(context, *request, record);
  if (!engine_request.ok()) {
    auto* rejected = new RejectedStream();
    grpc::Status reply = ToGrpcStatus(engine_request.status());
    if (IsRefusal(engine_request.status())) {
      refusals_.Refuse([rejected, reply] { rejected->Finish(reply); });
    } else {
      rejected->Finish(reply);
    }
    return rejected;
  }
  return GenerateReactor::Start(env_, *std::move(engine_request), std::move(record));
}

grpc::ServerUnaryReactor* StrataService::Complete(grpc::CallbackServerContext* context,
                                                  const v1::GenerateRequest* request,
                                                  v1::CompleteResponse* response) {
  CallRecord record{.method = "Complete"};
  absl::StatusOr<scheduler::Request> engine_request = PrepareGeneration(context, *request, record);
  if (!engine_request.ok()) return FinishUnary(context, engine_request.status());
  return CompleteReactor::Start(env_, *std::move(engine_request), std::move(record), response);
}

grpc::ServerUnaryReactor* StrataService::Tokenize(grpc::CallbackServerContext* context,
                                                  const v1::TokenizeRequest* request,
                                                  v1::TokenizeResponse* response) {
  if (absl::StatusOr<Tenant> tenant = Admit(*context); !tenant.ok()) {
    return FinishUnary(context, tenant.status());
  }
  // Tokenizing runs on gRPC's thread: the prompt's byte limit bounds it.
  const int64_t bytes = static_cast<int64_t>(request->text().size());
  if (conversion_.max_prompt_bytes > 0 && bytes > conversion_.max_prompt_bytes) {
    return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                    "text: ", bytes, " bytes exceeds the limit of ",
                                    conversion_.max_prompt_bytes, " bytes (the longest prompt)")));
  }
  const bool add_special_tokens =
      !request->has_add_special_tokens() || request->add_special_tokens();
  absl::StatusOr<std::vector<engine::TokenId>> ids =
      model_.tokenizer->Encode(request->text(), add_special_tokens);
  if (!ids.ok()) {
    return FinishUnary(context, absl::InvalidArgumentError(
                                    absl::StrCat("text: ", std::string(ids.status().message()))));
  }
  for (engine::TokenId id : *ids) {
    response->add_ids(id);
    response->add_pieces(model_.tokenizer->IdToToken(id).value_or(""));
  }
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* StrataService::Detokenize(grpc::CallbackServerContext* context,
                                                    const v1::DetokenizeRequest* request,
                                                    v1::DetokenizeResponse* response) {
  if (absl::StatusOr<Tenant> tenant = Admit(*context); !tenant.ok()) {
    return FinishUnary(context, tenant.status());
  }
  const int64_t vocab_size = model_.tokenizer->vocab_size();
  for (int i = 0; i < request->ids_size(); ++i) {
    if (request->ids(i) < 0 || request->ids(i) >= vocab_size) {
      return FinishUnary(context, absl::InvalidArgumentError(absl::StrCat(
                                      "ids[", i, "]: ", request->ids(i),
                                      " is outside the vocabulary [0, ", vocab_size, ")")));
    }
  }
  absl::StatusOr<std::string> text =
      model_.tokenizer->Decode(absl::MakeConstSpan(request->ids().data(), request->ids().size()),
                               request->skip_special_tokens());
  if (!text.ok()) {
    return FinishUnary(context, absl::InvalidArgumentError(
                                    absl::StrCat("ids: ", std::string(text.status().message()))));
  }
  // A proto3 string must be UTF-8 (clients fail to parse it otherwise), but
  // ids may stop mid-character: the text is made valid, the bytes kept raw.
  response->set_text(engine::Utf8Lossy(*text, /*keep_incomplete_tail=*/false));
  response->set_raw(*std::move(text));
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* StrataService::GetModelInfo(grpc::CallbackServerContext* context,
                                                      const v1::GetModelInfoRequest* /*request*/,
                                                      v1::ModelInfo* response) {
  if (absl::StatusOr<Tenant> tenant = Admit(*context); !tenant.ok()) {
    return FinishUnary(context, tenant.status());
  }
  FillModelInfo(model_, conversion_.max_prompt_tokens, response);
  return FinishUnary(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* StrataService::CacheControl(grpc::CallbackServerContext* context,
                                                      const v1::CacheControlRequest* request,
                                                      v1::CacheControlResponse* response) {
  absl::StatusOr<Tenant> tenant = Admit(*context);
  if (!tenant.ok()) return FinishUnary(context, tenant.status());
  switch (request->action_case()) {
    case v1::CacheControlRequest::kPrefetch:
      return Prefetch(context, *tenant, request->prefetch(), response);
    case v1::CacheControlRequest::kReleaseSession:
      return ReleaseSession(context, *tenant, request->release_session(), response);
    case v1::CacheControlRequest::kGetStats:
      // The statistics are of all tenants together: hit counts would tell
      // one tenant about another's traffic.
      if (!tenant->admin) {
        return FinishUnary(context, absl::PermissionDeniedError(
                                        "get_stats: the cache statistics cover every tenant; "
                                        "reading them needs the admin token (auth.admin_token)"));
      }
      FillCacheStats(engine_->Snapshot(), model_.kv_block_size, response->mutable_stats());
      return FinishUnary(context, absl::OkStatus());
    case v1::CacheControlRequest::ACTION_NOT_SET:
      break;
  }
  return FinishUnary(context,
                     absl::InvalidArgumentError(
                         "action: is required: set prefetch, release_session or get_stats"));
}

grpc::ServerUnaryReactor* StrataService::Prefetch(grpc::CallbackServerContext* context,
                                                  const Tenant& tenant,
                                                  const v1::Prefetch& prefetch,
                                                  v1::CacheControlResponse* response) {
  CallRecord record{.method = "Prefetch", .tenant = tenant.name};
  absl::StatusOr<scheduler::Request> converted =
      PrefetchRequestFromProto(prefetch, conversion_, tenant);
  absl::Status admitted = converted.status();
  if (admitted.ok() && !TakeSlot()) {
    admitted = absl::ResourceExhaustedError(absl::StrCat(
        "more than max_concurrent_streams (", max_concurrent_streams_, ") calls are open"));
  }
  if (!admitted.ok()) {
    record.status = admitted;
    LogRequestFinished(record);
    return FinishUnary(context, admitted);
  }
  scheduler::Request request = *std::move(converted);
  request.deadline = EngineDeadline(*context);
  return PrefetchReactor::Start(env_, &executor_, model_.kv_block_size, tenant.admin,
                                std::move(request), std::move(record), response);
}

grpc::ServerUnaryReactor* StrataService::ReleaseSession(grpc::CallbackServerContext* context,
                                                        const Tenant& tenant,
                                                        const v1::ReleaseSession& release,
                                                        v1::CacheControlResponse* response) {
  if (release.session_id().empty()) {
    return FinishUnary(context, absl::InvalidArgumentError("release_session.session_id: is empty"));
  }
  // ReleaseSession waits for an engine step: keep it off gRPC's threads. The
  // call stays open until Finish, so the service (and the executor) outlive
  // the task.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  executor_.Post([this, reactor, response, salt = tenant.cache_salt, session = release.session_id(),
                  admin = tenant.admin] {
    absl::Status released = engine_->ReleaseSession(salt, session);
    if (released.ok()) {
      FillCacheStatsFor(admin, engine_->Snapshot(), model_.kv_block_size,
                        response->mutable_stats());
    }
    reactor->Finish(ToGrpcStatus(released));
  });
  return reactor;
}

void FillModelInfo(const ServedModel& model, int64_t max_prompt_tokens, v1::ModelInfo* info) {
  const engine::ModelConfig& config = *model.config;
  info->set_name(model.name);
  info->set_architecture(config.architecture_name);
  info->set_vocab_size(config.vocab_size);
  info->set_max_context_tokens(config.max_position_embeddings);
  info->set_num_layers(config.num_layers);
  info->set_hidden_size(config.hidden_size);
  info->set_num_attention_heads(config.num_heads);
  info->set_num_kv_heads(config.num_kv_heads);
  info->set_head_dim(config.head_dim);
  info->set_backend(model.backend);
  info->set_kv_block_size(model.kv_block_size);
  info->set_kv_device_blocks(model.kv_device_blocks);
  for (int64_t eos : config.eos_token_ids) info->add_eos_token_ids(static_cast<int32_t>(eos));
  info->set_max_prompt_tokens(max_prompt_tokens);
  std::optional<engine::TokenId> bos = model.tokenizer->bos_id();
  if (!bos.has_value() && config.bos_token_id.has_value()) {
    bos = static_cast<engine::TokenId>(*config.bos_token_id);
  }
  info->set_bos_token_id(bos.value_or(-1));
  info->set_model_fingerprint(model.fingerprint_hex);
}

}  // namespace strata::server
