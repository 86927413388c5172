// `strata bench tiers`: the two policies of the lower KV tiers, each shown
// in one run (server/commands/bench_tiers_command.cc). Load versus
// recompute: the time to first token of a prompt whose KV sits on the disk
// tier, with a fast disk and a slowed one, when the scheduler always loads,
// always recomputes, or lets the cost model choose. Disk admission: the
// bytes written to the disk tier and the hit rates, writing every evicted
// block or only blocks wanted twice, on a workload of mostly one-off
// prompts.
#ifndef STRATA_SERVER_COMMANDS_BENCH_TIERS_H_
#define STRATA_SERVER_COMMANDS_BENCH_TIERS_H_

#include <string>
#include <vector>

namespace strata::server {

// The arguments after `strata bench tiers`; returns the exit code.
int RunBenchTiers(const std::vector<std::string>& args);
extern const char kBenchTiersUsage[];

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_TIERS_H_
