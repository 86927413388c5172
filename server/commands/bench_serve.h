// `strata bench serve` (server/commands/bench_serve_command.cc).
#ifndef STRATA_SERVER_COMMANDS_BENCH_SERVE_H_
#define STRATA_SERVER_COMMANDS_BENCH_SERVE_H_

#include <string>
#include <vector>

namespace strata::server {

// The usage line of `strata bench serve`, after "bench".
extern const char kBenchServeUsage[];

// The arguments after `strata bench serve`; returns the exit code.
int RunBenchServe(const std::vector<std::string>& args);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_SERVE_H_
