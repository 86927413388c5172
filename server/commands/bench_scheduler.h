// `strata bench scheduler` (server/commands/bench_scheduler_command.cc).
#ifndef STRATA_SERVER_COMMANDS_BENCH_SCHEDULER_H_
#define STRATA_SERVER_COMMANDS_BENCH_SCHEDULER_H_

#include <string>
#include <vector>

namespace strata::server {

// The usage line of `strata bench scheduler`, after "bench".
extern const char kBenchSchedulerUsage[];

// The arguments after `strata bench scheduler`; returns the exit code.
int RunBenchScheduler(const std::vector<std::string>& args);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_SCHEDULER_H_
