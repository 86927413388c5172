#include "server/grpc/library_logs.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "google/protobuf/stubs/logging.h"
#include "grpc/support/log.h"
#include "server/logging/log.h"

namespace strata::server {
using logging::Event;
using logging::Level;

namespace {

// Per thread: the parse that failed and the log line that says why happen
// on the same gRPC thread, one after the other.
thread_local std::optional<std::string> t_protobuf_error;

void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename, int line,
                        const std::string& message) {
  Level ours = Level::kError;
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      ours = Level::kDebug;
      break;
    case google::protobuf::LOGLEVEL_WARNING:
      ours = Level::kWarning;
      break;
    default:
      t_protobuf_error = message;
      break;
  }
  Event(ours, "library_log")
      .With("library", "protobuf")
      .With("file", filename != nullptr ? filename : "")
      .With("line", line)
      .With("message", message);
}

void GrpcLogHandler(gpr_log_func_args* args) {
  Level ours = Level::kError;
  if (args->severity == GPR_LOG_SEVERITY_DEBUG) ours = Level::kDebug;
  if (args->severity == GPR_LOG_SEVERITY_INFO) ours = Level::kInfo;
  Event(ours, "library_log")
      .With("library", "grpc")
      .With("file", args->file != nullptr ? args->file : "")
      .With("line", args->line)
      .With("message", args->message != nullptr ? args->message : "");
}

}  // namespace

void RouteLibraryLogs() {
  google::protobuf::SetLogHandler(ProtobufLogHandler);
  gpr_set_log_function(GrpcLogHandler);
}

std::optional<std::string> TakeThreadProtobufError() {
  return std::exchange(t_protobuf_error, std::nullopt);
}

}  // namespace strata::server
