#include "bench/workloads.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"

namespace strata::bench {
namespace {

// Plain mt19937_64 arithmetic rather than <random>'s distributions, whose
// results differ between standard libraries: a workload replayed by another
// build must be the same workload.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t Below(uint64_t n) { return engine_() % n; }
  // Uniform in (0, 1].
  double Unit() { return (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53; }
  // Seconds to the next Poisson arrival at `rate` per second.
  double Exponential(double rate) { return -std::log(Unit()) / rate; }
  std::vector<int32_t> Tokens(int64_t n, int64_t vocab_size) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids)
      id = static_cast<int32_t>(3 + Below(static_cast<uint64_t>(vocab_size - 3)));
    return ids;
  }

 private:
  std::mt19937_64 engine_;
};

// Separate streams per workload, so that changing one's shape leaves the
// others' tokens alone.
constexpr uint64_t kChatStream = 0x636861740000ULL;
constexpr uint64_t kSharedStream = 0x736861720000ULL;
constexpr uint64_t kAgentsStream = 0x6167656e0000ULL;

int64_t Scaled(int64_t value, double scale, int64_t at_least) {
  return std::max(at_least, static_cast<int64_t>(std::llround(static_cast<double>(value) * scale)));
}

// Fills max_sequence_tokens from the requests.
void Finish(Workload& workload) {
  for (size_t i = 0; i < workload.requests.size(); ++i) {
    workload.max_sequence_tokens =
        std::max(workload.max_sequence_tokens,
                 PromptTokens(workload, static_cast<int64_t>(i)) + workload.requests[i].max_tokens);
  }
}

}  // namespace

WorkloadShapes ScaledShapes(double scale) {
  WorkloadShapes shapes;
  ChatOptions& chat = shapes.chat;
  chat.sessions = Scaled(chat.sessions, scale, 2);
  chat.system_tokens = Scaled(chat.system_tokens, scale, 32);
  chat.user_tokens = Scaled(chat.user_tokens, scale, 32);
  chat.output_tokens = static_cast<int32_t>(Scaled(chat.output_tokens, scale, 4));
  SharedPrefixOptions& shared = shapes.shared_prefix;
  shared.system_prompts = Scaled(shared.system_prompts, scale, 2);
  shared.system_tokens = Scaled(shared.system_tokens, scale, 32);
  shared.requests = Scaled(shared.requests, scale, 2 * shared.system_prompts);
  shared.suffix_tokens = Scaled(shared.suffix_tokens, scale, 8);
  shared.output_tokens = static_cast<int32_t>(Scaled(shared.output_tokens, scale, 4));
  AgentsOptions& agents = shapes.agents;
  agents.private_tokens = Scaled(agents.private_tokens, scale, 32);
  agents.rounds = Scaled(agents.rounds, scale, 2);
  agents.message_tokens = Scaled(agents.message_tokens, scale, 8);
  agents.output_tokens = static_cast<int32_t>(Scaled(agents.output_tokens, scale, 4));
  return shapes;
}

Workload MakeChatWorkload(const ChatOptions& options, int64_t vocab_size, uint64_t seed) {
  Rng rng(seed ^ kChatStream);
  Workload workload{.name = "chat"};
  const std::vector<int32_t> system = rng.Tokens(options.system_tokens, vocab_size);
  double start = 0;
  std::vector<int64_t> last_turn(static_cast<size_t>(options.sessions), -1);
  std::vector<double> session_start(static_cast<size_t>(options.sessions));
  for (double& s : session_start) {
    s = start;
    start += rng.Exponential(options.sessions_per_s);
  }
  // Turn-major order: every index a request names is already in the list.
  for (int64_t turn = 0; turn < options.turns; ++turn) {
    for (int64_t s = 0; s < options.sessions; ++s) {
      WorkloadRequest request;
      request.arrival_s = session_start[static_cast<size_t>(s)];
      request.history_of = last_turn[static_cast<size_t>(s)];
      if (request.history_of < 0) request.new_tokens = system;
      std::vector<int32_t> user = rng.Tokens(options.user_tokens, vocab_size);
      request.new_tokens.insert(request.new_tokens.end(), user.begin(), user.end());
      request.think_s = turn > 0 ? options.think_s : 0;
      request.max_tokens = options.output_tokens;
      request.session_id = absl::StrCat("session-", s);
      last_turn[static_cast<size_t>(s)] = static_cast<int64_t>(workload.requests.size());
      workload.requests.push_back(std::move(request));
    }
  }
  Finish(workload);
  const int64_t history =
      options.system_tokens + options.turns * (options.user_tokens + options.output_tokens);
  workload.device_kv_tokens =
      std::max(2 * workload.max_sequence_tokens,
               static_cast<int64_t>(options.device_fraction *
                                    static_cast<double>(options.sessions * history)));
  return workload;
}

Workload MakeSharedPrefixWorkload(const SharedPrefixOptions& options, int64_t vocab_size,
                                  uint64_t seed) {
  Rng rng(seed ^ kSharedStream);
  Workload workload{.name = "shared_prefix"};
  std::vector<std::vector<int32_t>> systems;
  for (int64_t i = 0; i < options.system_prompts; ++i) {
    systems.push_back(rng.Tokens(options.system_tokens, vocab_size));
  }
  double arrival = 0;
  for (int64_t i = 0; i < options.requests; ++i) {
    WorkloadRequest request;
    request.arrival_s = arrival;
    arrival += rng.Exponential(options.requests_per_s);
    request.new_tokens = systems[rng.Below(static_cast<uint64_t>(options.system_prompts))];
    std::vector<int32_t> suffix = rng.Tokens(options.suffix_tokens, vocab_size);
    request.new_tokens.insert(request.new_tokens.end(), suffix.begin(), suffix.end());
    request.max_tokens = options.output_tokens;
    workload.requests.push_back(std::move(request));
  }
  Finish(workload);
  // Every system prompt, and the suffixes and outputs of a batch of 16
  // requests at once (a block each of slack for their partial tails).
  workload.device_kv_tokens = options.system_prompts * options.system_tokens +
                              16 * (options.suffix_tokens + options.output_tokens + 16);
  workload.device_kv_tokens = std::max(workload.device_kv_tokens, 2 * workload.max_sequence_tokens);
  return workload;
}

Workload MakeAgentsWorkload(const AgentsOptions& options, int64_t vocab_size, uint64_t seed) {
  Rng rng(seed ^ kAgentsStream);
  Workload workload{.name = "agents"};
  std::vector<std::vector<int32_t>> privates;
  for (int64_t a = 0; a < options.agents; ++a) {
    privates.push_back(rng.Tokens(options.private_tokens, vocab_size));
  }
  std::vector<int64_t> last_step(static_cast<size_t>(options.agents), -1);
  const int64_t steps = options.rounds * options.agents;
  for (int64_t step = 0; step < steps; ++step) {
    const int64_t a = step % options.agents;
    WorkloadRequest request;
    request.history_of = last_step[static_cast<size_t>(a)];
    if (request.history_of < 0) request.new_tokens = privates[static_cast<size_t>(a)];
    std::vector<int32_t> message = rng.Tokens(options.message_tokens, vocab_size);
    request.new_tokens.insert(request.new_tokens.end(), message.begin(), message.end());
    request.after = step > 0 ? step - 1 : -1;
    request.max_tokens = options.output_tokens;
    request.workflow_id = "workflow-0";
    request.agent_id = absl::StrCat("agent-", a);
    if (step + 1 < steps) {
      request.next_agent_ids.push_back(absl::StrCat("agent-", (step + 1) % options.agents));
    }
    last_step[static_cast<size_t>(a)] = step;
    workload.requests.push_back(std::move(request));
  }
  Finish(workload);
  // `device_agents` agents' final histories (the running one's included),
  // plus a block each for partial tails.
  workload.device_kv_tokens = static_cast<int64_t>(
      options.device_agents * static_cast<double>(workload.max_sequence_tokens + 16));
  return workload;
}

std::vector<Workload> MakeWorkloads(const WorkloadShapes& shapes, int64_t vocab_size,
                                    uint64_t seed) {
  return {MakeChatWorkload(shapes.chat, vocab_size, seed),
          MakeSharedPrefixWorkload(shapes.shared_prefix, vocab_size, seed),
          MakeAgentsWorkload(shapes.agents, vocab_size, seed)};
}

int64_t PromptTokens(const Workload& workload, int64_t index) {
  int64_t tokens = 0;
  for (int64_t i = index; i >= 0; i = workload.requests[static_cast<size_t>(i)].history_of) {
    const WorkloadRequest& request = workload.requests[static_cast<size_t>(i)];
    tokens += static_cast<int64_t>(request.new_tokens.size());
    if (i != index) tokens += request.max_tokens;
  }
  return tokens;
}

}  // namespace strata::bench
