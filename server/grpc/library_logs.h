// Routes the log lines of the libraries the daemon links (libprotobuf and
// gRPC core) into the structured log, so that a JSON log stays one JSON
// object per line. Without this, libprotobuf writes raw "[libprotobuf ERROR
// ...]" lines to stderr, e.g. for every request with a string field that is
// not UTF-8.
//
// Each line becomes `event=library_log library=protobuf|grpc file=... line=...
// message=...` at the library's severity (libprotobuf INFO and gRPC DEBUG
// lines at debug, so they cost nothing by default).
//
// libprotobuf's most recent ERROR-or-worse message on each thread is also kept
// for TakeThreadProtobufError: a parse failure's only description (which
// field is not UTF-8) is that log line, and the gRPC thread that failed to
// parse a request reads it back to put it in the call's status.
//
// Thread-safety: RouteLibraryLogs once, from main, before other threads
// start (neither library's hook is thread-safe to install); the rest is
// thread-safe.
#ifndef STRATA_SERVER_GRPC_LIBRARY_LOGS_H_
#define STRATA_SERVER_GRPC_LIBRARY_LOGS_H_

#include <optional>
#include <string>

namespace strata::server {

void RouteLibraryLogs();

// The last libprotobuf error logged on this thread since the previous call,
// and forgets it; nullopt when there was none.
std::optional<std::string> TakeThreadProtobufError();

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_LIBRARY_LOGS_H_
