// `strata bench blend`: CacheBlend's quality (KL divergence and top-1
// agreement against a full prefill) and TTFT (server/commands/bench_blend_command.cc).
#ifndef STRATA_SERVER_COMMANDS_BENCH_BLEND_H_
#define STRATA_SERVER_COMMANDS_BENCH_BLEND_H_

#include <ostream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace strata::server {

// The arguments after `strata bench blend`; returns the exit code.
int RunBenchBlend(const std::vector<std::string>& args);
extern const char kBenchBlendUsage[];

// The report's tables, for people (the JSON line is for programs).
void PrintBlendReport(const nlohmann::json& report, std::ostream& out);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_BLEND_H_
