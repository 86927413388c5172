// `strata bench cache`: time to first token of a long prompt, cold and with
// its prefix served from each KV tier (server/commands/bench_cache_command.cc).
#ifndef STRATA_SERVER_COMMANDS_BENCH_CACHE_H_
#define STRATA_SERVER_COMMANDS_BENCH_CACHE_H_

#include <string>
#include <vector>

namespace strata::server {

// The arguments after `strata bench cache`; returns the exit code.
int RunBenchCache(const std::vector<std::string>& args);
extern const char kBenchCacheUsage[];

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_CACHE_H_
