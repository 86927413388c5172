// The workloads of `strata bench scheduler` (in process) and `strata bench
// serve` (over gRPC): seeded, deterministic lists of requests with open-loop
// arrival times and dependencies. They hold plain values only (token ids,
// strings, numbers), never scheduler or protobuf types, so that any driver
// can replay them.
//
// A request's prompt may extend an earlier request's: "the prompt and output
// of request X, then these new tokens". The output is whatever the model
// generated, known only at replay time, so a driver builds the prompt when
// the request starts (bench/replay.h does the bookkeeping).
//
// Thread-safety: the generators are pure functions; the values are plain data.
#ifndef STRATA_BENCH_WORKLOADS_H_
#define STRATA_BENCH_WORKLOADS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace strata::bench {

// One request. Indices refer to earlier requests of the same workload.
struct WorkloadRequest {
  // Earliest start, in seconds from the start of the run (open loop).
  double arrival_s = 0;
  // When >= 0, the prompt starts with this request's prompt followed by its
  // generated output; the request cannot start before that one finishes.
  int64_t history_of = -1;
  // Appended to the history (the whole prompt when history_of < 0).
  std::vector<int32_t> new_tokens;
  // When >= 0, a further request that must finish first (the previous agent
  // of a workflow).
  int64_t after = -1;
  // Delay after the dependencies finish before the request starts (a user's
  // think time).
  double think_s = 0;
  // Tokens generated, exactly: drivers ignore EOS so every policy does the
  // same work.
  int32_t max_tokens = 16;
  // Affinity hints, as scheduler::Request names them; empty: none.
  std::string session_id;
  std::string workflow_id;
  std::string agent_id;
  std::vector<std::string> next_agent_ids;
};

struct Workload {
  std::string name;  // "chat", "shared_prefix", "agents"
  // Dependencies always point to earlier entries.
  std::vector<WorkloadRequest> requests;
  // The device KV the benchmark gives every policy for this workload, in
  // tokens. A hint: a driver that cannot size the device ignores it.
  int64_t device_kv_tokens = 0;
  // Longest prompt plus output of any request, in tokens.
  int64_t max_sequence_tokens = 0;
};

// Many sessions, each turn extending its history: turn t's prompt is turn
// t-1's prompt and output plus a new user message. All sessions open with the
// same system prompt. Sessions start at Poisson arrivals; each later turn
// starts think_s after the previous one finished.
struct ChatOptions {
  int64_t sessions = 16;
  int64_t turns = 4;
  int64_t system_tokens = 256;
  int64_t user_tokens = 64;
  int32_t output_tokens = 32;
  double sessions_per_s = 16;
  double think_s = 0;
  // Device KV as a fraction of all sessions' final histories: chat servers
  // rarely hold every idle session.
  double device_fraction = 0.5;
};

// Many independent prompts over a few long system prompts, each request
// picking one at random; Poisson arrivals.
struct SharedPrefixOptions {
  int64_t system_prompts = 4;
  int64_t system_tokens = 1024;
  int64_t requests = 64;
  int64_t suffix_tokens = 64;
  int32_t output_tokens = 16;
  double requests_per_s = 64;
};

// One workflow of agents taking turns, round after round. Each agent has a
// long private prompt that its every step extends with a message (its own
// previous step's prompt and output, then new tokens); a step starts once
// the previous agent's step has finished. The device holds the private
// histories of only `device_agents` of them.
struct AgentsOptions {
  int64_t agents = 4;
  int64_t private_tokens = 1024;
  int64_t rounds = 4;
  int64_t message_tokens = 32;
  int32_t output_tokens = 16;
  double device_agents = 2;
};

struct WorkloadShapes {
  ChatOptions chat;
  SharedPrefixOptions shared_prefix;
  AgentsOptions agents;
};

// The default shapes with counts and lengths multiplied by `scale` (> 0),
// within bounds that keep each workload's structure: at least two turns,
// sessions, requests per system prompt, rounds and agents, and prompts of at
// least 32 tokens so that they fill whole KV blocks.
WorkloadShapes ScaledShapes(double scale);

// Token ids are drawn from [3, vocab_size), past the usual special ids.
// `seed` decides every token and arrival: the same arguments give the same
// workload. vocab_size must exceed 3.
Workload MakeChatWorkload(const ChatOptions& options, int64_t vocab_size, uint64_t seed);
Workload MakeSharedPrefixWorkload(const SharedPrefixOptions& options, int64_t vocab_size,
                                  uint64_t seed);
Workload MakeAgentsWorkload(const AgentsOptions& options, int64_t vocab_size, uint64_t seed);

// The three, in the order chat, shared_prefix, agents.
std::vector<Workload> MakeWorkloads(const WorkloadShapes& shapes, int64_t vocab_size,
                                    uint64_t seed);

// The prompt length of request `index`, given that each request generates
// exactly its max_tokens.
int64_t PromptTokens(const Workload& workload, int64_t index);

}  // namespace strata::bench

#endif  // STRATA_BENCH_WORKLOADS_H_
