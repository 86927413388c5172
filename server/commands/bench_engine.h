// `strata bench engine`: backend prefill and decode throughput
// (server/commands/bench_engine_command.cc).
#ifndef STRATA_SERVER_COMMANDS_BENCH_ENGINE_H_
#define STRATA_SERVER_COMMANDS_BENCH_ENGINE_H_

#include <string>
#include <vector>

namespace strata::server {

// The arguments after `strata bench engine`; returns the exit code.
int RunBenchEngine(const std::vector<std::string>& args);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_ENGINE_H_
