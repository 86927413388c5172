// Gives requests that cannot be parsed (bytes that are not the method's
// request message, or a proto3 string field that is not UTF-8) a status
// that says so. gRPC's callback API answers them UNIMPLEMENTED with an empty
// message, which sends clients looking for a missing method; this
// interceptor turns that into INVALID_ARGUMENT naming the message type, and
// the field when libprotobuf said which one (library_logs.h), and logs one
// `event=request_rejected` line.
//
// One interceptor per call, created by gRPC; it acts only on unary and
// server-streaming methods (whose single request gRPC parses before the
// handler runs). Thread-safe as gRPC requires: each instance is used by one
// call's batches in turn.
#ifndef STRATA_SERVER_GRPC_PARSE_ERROR_INTERCEPTOR_H_
#define STRATA_SERVER_GRPC_PARSE_ERROR_INTERCEPTOR_H_

#include <string>
#include <string_view>

#include "grpcpp/support/server_interceptor.h"

namespace strata::server {

class ParseErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

// The status message for a request of `method` ("/pkg.Service/Method") that
// failed to parse; `protobuf_error` is libprotobuf's log line about it, or
// empty. Exposed for tests.
std::string UnparseableRequestMessage(std::string_view method, std::string_view protobuf_error);

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_PARSE_ERROR_INTERCEPTOR_H_
