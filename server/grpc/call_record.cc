#include "server/grpc/call_record.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/grpc/request_conversion.h"
#include "server/logging/log.h"

namespace strata::server {

void CallRecord::Observe(const scheduler::TokenEvent& event) {
  if (event.token_id.has_value() && !first_token.has_value()) first_token = scheduler::Clock::now();
  if (event.usage.has_value()) usage = *event.usage;
  generated_tokens = event.generated_tokens;
  if (event.finished) finish_reason = event.finish_reason;
}

double CallRecord::ttft_s() const {
  if (!first_token.has_value()) return -1;
  return std::chrono::duration<double>(*first_token - start).count();
}

double CallRecord::elapsed_s() const {
  return std::chrono::duration<double>(scheduler::Clock::now() - start).count();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

std::optional<scheduler::Clock::time_point> EngineDeadline(
    const grpc::CallbackServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
  const auto remaining = deadline - std::chrono::system_clock::now();
  // Far-future deadlines (some clients send years) mean none; they would
  // only overflow the conversion.
  if (remaining > std::chrono::hours(24 * 365)) return std::nullopt;
  return scheduler::Clock::now() +
         std::chrono::duration_cast<scheduler::Clock::duration>(remaining);
}

void FillCacheStatsFor(bool admin, const scheduler::EngineSnapshot& snapshot, int64_t block_size,
                       v1::CacheStats* stats) {
  if (admin) {
    FillCacheStats(snapshot, block_size, stats);
  } else {
    stats->set_block_size(block_size);
  }
}

std::string ClientRequestIdForLog(std::string_view id) {
  if (id.size() <= kMaxLoggedClientIdBytes) return std::string(id);
  size_t cut = kMaxLoggedClientIdBytes;
  // Back off UTF-8 continuation bytes so no character is split.
  while (cut > 0 && (static_cast<unsigned char>(id[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(std::string(id.substr(0, cut)), "...(", id.size(), " bytes)");
}

void LogRequestStarted(const CallRecord& record) {
  logging::Event event(logging::Level::kInfo, "request_started");
  event.With("request_id", record.id.has_value() ? *record.id : int64_t{-1})
      .With("method", record.method);
  if (!record.client_request_id.empty()) {
    event.With("client_request_id", ClientRequestIdForLog(record.client_request_id));
  }
  event.With("tenant", record.tenant);
}

void LogRequestFinished(const CallRecord& record) {
  logging::Level level = record.status.ok() ? logging::Level::kInfo : logging::Level::kWarning;
  logging::Event event(level, "request_finished");
  event.With("request_id", record.id.has_value() ? *record.id : int64_t{-1})
      .With("method", record.method);
  if (!record.client_request_id.empty()) {
    event.With("client_request_id", ClientRequestIdForLog(record.client_request_id));
  }
  event.With("tenant", record.tenant)
      .With("prompt_tokens", record.usage.prompt_tokens)
      .With("cached_tokens", record.usage.cached_tokens())
      .With("generated_tokens", record.generated_tokens)
      .With("reason", record.finish_reason.has_value()
                          ? std::string(scheduler::FinishReasonName(*record.finish_reason))
                      : record.status.code() == absl::StatusCode::kCancelled ? "cancelled"
                                                                             : "rejected")
      .With("ttft_s", record.ttft_s() < 0 ? 0.0 : record.ttft_s())
      .With("e2e_s", record.elapsed_s());
  if (!record.status.ok()) {
    event.With("code", absl::StatusCodeToString(record.status.code()))
        .With("error", std::string(record.status.message()));
  }
}

}  // namespace strata::server
