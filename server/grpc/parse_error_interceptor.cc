#include "server/grpc/parse_error_interceptor.h"

#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/support/interceptor.h"
#include "server/grpc/library_logs.h"
#include "server/logging/log.h"

namespace strata::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// "/strata.v1.Strata/Generate" -> "strata.v1.GenerateRequest"; the method
// path itself when the descriptor pool does not know it.
std::string RequestTypeName(std::string_view method) {
  std::string dotted(method.substr(method.empty() || method[0] != '/' ? 0 : 1));
  dotted = absl::StrReplaceAll(dotted, {{"/", "."}});
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(dotted);
  if (descriptor == nullptr) return absl::StrCat("the request of ", std::string(method));
  return descriptor->input_type()->full_name();
}

// The field named by libprotobuf's "String field 'pkg.Message.field'
// contains invalid UTF-8 data ..." line; nullopt for any other line.
std::optional<std::string> NonUtf8Field(std::string_view protobuf_error) {
  constexpr std::string_view kPrefix = "String field '";
  const size_t start = protobuf_error.find(kPrefix);
  if (start == std::string_view::npos ||
      protobuf_error.find("invalid UTF-8") == std::string_view::npos) {
    return std::nullopt;
  }
  const size_t name_start = start + kPrefix.size();
  const size_t end = protobuf_error.find('\'', name_start);
  if (end == std::string_view::npos) return std::nullopt;
  return std::string(protobuf_error.substr(name_start, end - name_start));
}

class ParseErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ParseErrorInterceptor(const char* method) : method_(method != nullptr ? method : "") {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      // The parse and libprotobuf's line about it ran just before, on this
      // thread.
      unparsed_ = true;
      protobuf_error_ = TakeThreadProtobufError().value_or("");
    }
    if (unparsed_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        !methods->GetSendStatus().ok()) {
      const std::string message = UnparseableRequestMessage(method_, protobuf_error_);
      logging::Event(logging::Level::kWarning, "request_rejected")
          .With("method", method_)
          .With("code", "INVALID_ARGUMENT")
          .With("error", message);
      methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message));
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  bool unparsed_ = false;
  std::string protobuf_error_;
};

}  // namespace

std::string UnparseableRequestMessage(std::string_view method, std::string_view protobuf_error) {
  if (std::optional<std::string> field = NonUtf8Field(protobuf_error)) {
    return absl::StrCat(*field,
                        ": is not valid UTF-8 (proto3 string fields must be; send token ids for "
                        "raw bytes)");
  }
  return absl::StrCat("request: cannot be parsed as ", RequestTypeName(method),
                      " (malformed protobuf wire data)");
}

grpc::experimental::Interceptor* ParseErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  if (info->type() != Type::UNARY && info->type() != Type::SERVER_STREAMING) return nullptr;
  return new ParseErrorInterceptor(info->method());
}

}  // namespace strata::server
