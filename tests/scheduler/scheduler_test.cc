#include "scheduler/scheduler.h"

#include <map>
#include <set>

#include "engine/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/engine_loop.h"

namespace strata::scheduler {
namespace {

constexpr int64_t kVocab = 512;  // the aidreams260K tokenizer's
constexpr TokenId kEos = 2;

// A backend whose "model" picks the next token as a hash of the whole
// sequence, so outputs are deterministic yet depend on every token. Like a
// real model it learns the tokens before start_position only from the K/V in
// its blocks: each block slot holds the token and a hash of the whole prefix
// up to it (as K/V depend on every earlier token). Prefix sharing means a
// block may hold K/V another sequence computed; that is legitimate exactly
// when every slot read holds the same prefix, which it checks. It also checks
// that a block written in a step is in no other table of that step.
class FakeBackend : public engine::Backend {
 public:
  absl::StatusOr<engine::StepResult> Execute(const engine::StepPlan& plan) override {
    if (fail_next_) {
      fail_next_ = false;
      return absl::InternalError("injected failure");
    }
    engine::StepResult result;
    int64_t step_tokens = 0;
    std::map<engine::BlockId, std::set<engine::SequenceId>> tables;  // who lists each block
    std::map<engine::BlockId, engine::SequenceId> writers;
    for (const engine::SequenceStep& step : plan.sequences) {
      steps_.push_back(
          {step.seq_id, step.start_position, static_cast<int64_t>(step.token_ids.size())});
      step_tokens += static_cast<int64_t>(step.token_ids.size());
      int64_t end = step.start_position + static_cast<int64_t>(step.token_ids.size());
      EXPECT_GE(static_cast<int64_t>(step.block_table.size()) * kBlockSize, end);
      for (size_t j = 0; j < step.block_table.size(); ++j) {
        engine::BlockId block = step.block_table[j];
        EXPECT_TRUE(tables[block].insert(step.seq_id).second) << "block " << block << " twice";
        int64_t first = static_cast<int64_t>(j) * kBlockSize;
        if (first + kBlockSize > step.start_position && first < end) writers[block] = step.seq_id;
      }
      std::vector<TokenId> tokens = ReadBlocks(step);
      for (size_t i = 0; i < step.token_ids.size(); ++i) {
        tokens.push_back(step.token_ids[i]);
        Write(step.block_table, step.start_position + static_cast<int64_t>(i), tokens);
      }
      engine::SequenceOutput output{.seq_id = step.seq_id};
      if (step.sample) output.token = engine::SampledToken{.id = NextToken(tokens)};
      result.outputs.push_back(std::move(output));
    }
    for (const auto& [block, writer] : writers) {
      EXPECT_EQ(tables[block].size(), 1u)
          << "block " << block << " written by " << writer << " while another sequence holds it";
    }
    max_step_tokens_ = std::max(max_step_tokens_, step_tokens);
    return result;
  }
  absl::Status CopyBlocks(absl::Span<const engine::BlockMove>) override { return absl::OkStatus(); }
  absl::Status Synchronize() override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<engine::HostBuffer>> AllocateHostBuffer(size_t) override {
    return absl::UnimplementedError("not needed by the scheduler");
  }
  engine::KvArenaInfo kv_arena_info() const override { return {}; }
  const engine::ModelConfig& model_config() const override { return config_; }
  std::string name() const override { return "fake"; }

  static TokenId NextToken(const std::vector<TokenId>& tokens) {
    uint64_t hash = 1469598103934665603ull;
    for (TokenId t : tokens) hash = (hash ^ static_cast<uint64_t>(t)) * 1099511628211ull;
    return static_cast<TokenId>(3 + hash % (kVocab - 3));  // never EOS (2)
  }

  static uint64_t PrefixHash(const std::vector<TokenId>& tokens, size_t length) {
    uint64_t hash = 1469598103934665603ull;
    for (size_t i = 0; i < length; ++i) {
      hash = (hash ^ static_cast<uint64_t>(tokens[i])) * 1099511628211ull;
    }
    return hash;
  }

  struct StepRecord {
    engine::SequenceId seq_id;
    int64_t start_position;
    int64_t num_tokens;
  };

  static constexpr int64_t kBlockSize = 4;
  bool fail_next_ = false;
  int64_t max_step_tokens_ = 0;
  std::vector<StepRecord> steps_;  // every sequence step ever executed, in order

 private:
  struct Slot {
    TokenId token;
    uint64_t prefix_hash;  // of every token up to and including this one
  };

  // The tokens before start_position, from the blocks, each checked against
  // the prefix it was computed under.
  std::vector<TokenId> ReadBlocks(const engine::SequenceStep& step) {
    std::vector<TokenId> tokens;
    for (int64_t pos = 0; pos < step.start_position; ++pos) {
      const std::vector<Slot>& slots = slots_[step.block_table.at(pos / kBlockSize)];
      size_t offset = static_cast<size_t>(pos % kBlockSize);
      if (offset >= slots.size()) {
        ADD_FAILURE() << "sequence " << step.seq_id << " reads position " << pos
                      << " that its block never had written";
        break;
      }
      tokens.push_back(slots[offset].token);
      EXPECT_EQ(slots[offset].prefix_hash, PrefixHash(tokens, tokens.size()))
          << "sequence " << step.seq_id << " reads position " << pos
          << " computed under another prefix";
    }
    return tokens;
  }

  // Writes position `pos` (the last of `tokens`) into its block.
  void Write(const std::vector<engine::BlockId>& table, int64_t pos,
             const std::vector<TokenId>& tokens) {
    std::vector<Slot>& slots = slots_[table[pos / kBlockSize]];
    size_t offset = static_cast<size_t>(pos % kBlockSize);
    EXPECT_LE(offset, slots.size()) << "gap in a block at position " << pos;
    slots.resize(std::min(offset, slots.size()));
    slots.push_back(Slot{tokens.back(), PrefixHash(tokens, tokens.size())});
  }

  engine::ModelConfig config_;
  std::map<engine::BlockId, std::vector<Slot>> slots_;  // what each block holds
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
  }

  SchedulerOptions Options(int64_t num_blocks, int64_t max_batch_tokens) const {
    return SchedulerOptions{.block_size = FakeBackend::kBlockSize,
                            .num_blocks = num_blocks,
                            .max_batch_tokens = max_batch_tokens,
                            .max_running = 8,
                            .max_model_len = 128,
                            .vocab_size = kVocab,
                            .eos_token_ids = {kEos}};
  }

  static Request MakeRequest(RequestId id, int prompt_len, int max_tokens) {
    Request request{.id = id};
    for (int i = 0; i < prompt_len; ++i) request.prompt_ids.push_back(3 + (id * 31 + i) % 500);
    request.sampling.temperature = 0;
    request.sampling.max_tokens = max_tokens;
    return request;
  }

  // Runs until idle; returns each request's token ids and finish reason.
  std::map<RequestId, std::pair<std::vector<TokenId>, std::string>> RunAll(Scheduler& scheduler,
                                                                           FakeBackend& backend) {
    std::map<RequestId, std::pair<std::vector<TokenId>, std::string>> out;
    for (int step = 0; scheduler.HasWork() && step < 10000; ++step) {
      for (const TokenEvent& event : RunStep(scheduler, backend)) {
        if (event.token_id) out[event.request_id].first.push_back(*event.token_id);
        if (event.finished) out[event.request_id].second = event.finish_reason;
      }
    }
    EXPECT_FALSE(scheduler.HasWork());
    return out;
  }

  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

TEST_F(SchedulerTest, GeneratesMaxTokensThenFinishesWithLengthAndFreesBlocks) {
  Scheduler scheduler(Options(64, 32), *tokenizer_);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 10, 7)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].first.size(), 7u);
  EXPECT_EQ(out[1].second, "length");
  EXPECT_EQ(scheduler.num_free_blocks(), 64);
}

TEST_F(SchedulerTest, SecondRequestWithTheSamePromptComputesOnlyTheUncachedTail) {
  for (int prompt_len : {10, 12}) {
    Scheduler scheduler(Options(64, 64), *tokenizer_);
    FakeBackend backend;
    Request first = MakeRequest(1, prompt_len, 6);
    ASSERT_TRUE(scheduler.AddRequest(first).ok());
    auto out_first = RunAll(scheduler, backend);
    Request second = first;
    second.id = 2;
    ASSERT_TRUE(scheduler.AddRequest(second).ok());
    size_t before = backend.steps_.size();
    auto out_second = RunAll(scheduler, backend);
    ASSERT_GT(backend.steps_.size(), before);
    const FakeBackend::StepRecord& step = backend.steps_[before];
    EXPECT_EQ(step.seq_id, 2);
    // Two whole blocks of 4 are reused; at 12 tokens the third is recomputed
    // because the last prompt token must run to be sampled from.
    EXPECT_EQ(step.start_position, 8) << "prompt of " << prompt_len;
    EXPECT_EQ(step.num_tokens, prompt_len - 8);
    EXPECT_EQ(out_second[2].first, out_first[1].first);
    EXPECT_EQ(out_second[2].second, "length");
    EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDevice)], 8);
    EXPECT_EQ(scheduler.num_free_blocks(), 64);
  }
}

TEST_F(SchedulerTest, DifferentCacheSaltsNeverShareBlocks) {
  Scheduler scheduler(Options(64, 64), *tokenizer_);
  FakeBackend backend;
  Request tenant_a = MakeRequest(1, 12, 4);
  tenant_a.cache_salt = "tenant-a";
  ASSERT_TRUE(scheduler.AddRequest(tenant_a).ok());
  auto out_a = RunAll(scheduler, backend);
  Request tenant_b = tenant_a;
  tenant_b.id = 2;
  tenant_b.cache_salt = "tenant-b";
  ASSERT_TRUE(scheduler.AddRequest(tenant_b).ok());
  size_t before = backend.steps_.size();
  auto out_b = RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 0);  // nothing reused across tenants
  EXPECT_EQ(out_b[2].first, out_a[1].first);
  Request tenant_a_again = tenant_a;
  tenant_a_again.id = 3;
  ASSERT_TRUE(scheduler.AddRequest(tenant_a_again).ok());
  before = backend.steps_.size();
  RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 8);  // same tenant: two blocks reused
}

TEST_F(SchedulerTest, NextTurnReusesTheCachedOutputOfThePreviousTurn) {
  Request turn1 = MakeRequest(1, 10, 6);
  Scheduler scheduler(Options(64, 64), *tokenizer_);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(turn1).ok());
  std::vector<TokenId> reply = RunAll(scheduler, backend)[1].first;
  ASSERT_EQ(reply.size(), 6u);
  Request turn2 = turn1;
  turn2.id = 2;
  turn2.prompt_ids.insert(turn2.prompt_ids.end(), reply.begin(), reply.end());
  turn2.prompt_ids.insert(turn2.prompt_ids.end(), {40, 41, 42});  // 19 tokens
  ASSERT_TRUE(scheduler.AddRequest(turn2).ok());
  size_t before = backend.steps_.size();
  std::vector<TokenId> cached_run = RunAll(scheduler, backend)[2].first;
  // Turn 1 computed 15 tokens (its last sampled token never ran): 3 blocks.
  EXPECT_EQ(backend.steps_[before].start_position, 12);
  Scheduler fresh(Options(64, 64), *tokenizer_);
  FakeBackend fresh_backend;
  ASSERT_TRUE(fresh.AddRequest(turn2).ok());
  EXPECT_EQ(cached_run, RunAll(fresh, fresh_backend)[2].first);
}

TEST_F(SchedulerTest, ChunkedPrefillKeepsEveryStepWithinTheTokenBudget) {
  Scheduler scheduler(Options(64, 16), *tokenizer_);
  FakeBackend backend;
  for (RequestId id = 1; id <= 3; ++id)
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(id, 50, 5)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_LE(backend.max_step_tokens_, 16);
  for (RequestId id = 1; id <= 3; ++id) EXPECT_EQ(out[id].first.size(), 5u);
}

TEST_F(SchedulerTest, PreemptionUnderBlockPressureGivesTheSameOutputsAsRunningAlone) {
  std::map<RequestId, std::vector<TokenId>> alone;
  for (RequestId id = 1; id <= 6; ++id) {
    Scheduler scheduler(Options(64, 64), *tokenizer_);
    FakeBackend backend;
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(id, 9 + id, 20)).ok());
    alone[id] = RunAll(scheduler, backend)[id].first;
  }
  // 14 blocks of 4 tokens cannot hold six sequences of ~35 tokens each.
  Scheduler scheduler(Options(14, 64), *tokenizer_);
  FakeBackend backend;
  for (RequestId id = 1; id <= 6; ++id) {
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(id, 9 + id, 20)).ok());
  }
  auto out = RunAll(scheduler, backend);
  EXPECT_GT(scheduler.num_preemptions(), 0);
  for (RequestId id = 1; id <= 6; ++id) {
    EXPECT_EQ(out[id].first, alone[id]) << "request " << id;
    EXPECT_EQ(out[id].second, "length");
  }
  EXPECT_EQ(scheduler.num_free_blocks(), 14);
}

TEST_F(SchedulerTest, SharedPrefixesUnderPressureGiveTheSameOutputsAsRunningAlone) {
  // Prompts share the first 5..17 tokens of one document, then diverge, so
  // hits end at block boundaries and mid-block; chunked prefill and too few
  // blocks add preemption and eviction on top.
  auto make = [](RequestId id) {
    Request request = MakeRequest(id, 0, 12);
    for (int i = 0; i < 5 + 3 * (id % 5); ++i) request.prompt_ids.push_back(7 + i);
    for (int i = 0; i < 3 + id % 4; ++i) request.prompt_ids.push_back(100 + 13 * id + i);
    return request;
  };
  std::map<RequestId, std::vector<TokenId>> alone;
  for (RequestId id = 1; id <= 8; ++id) {
    Scheduler scheduler(Options(64, 64), *tokenizer_);
    FakeBackend backend;
    ASSERT_TRUE(scheduler.AddRequest(make(id)).ok());
    alone[id] = RunAll(scheduler, backend)[id].first;
  }
  Scheduler scheduler(Options(16, 8), *tokenizer_);
  FakeBackend backend;
  for (RequestId id = 1; id <= 8; ++id) ASSERT_TRUE(scheduler.AddRequest(make(id)).ok());
  auto out = RunAll(scheduler, backend);
  for (RequestId id = 1; id <= 8; ++id) EXPECT_EQ(out[id].first, alone[id]) << "request " << id;
  EXPECT_GT(scheduler.num_preemptions(), 0);
  EXPECT_GT(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDevice)], 0);
  EXPECT_GT(scheduler.cache_stats().evicted_blocks, 0);
  EXPECT_EQ(scheduler.num_free_blocks(), 16);
}

TEST_F(SchedulerTest, StopTokenIdFinishesWithStop) {
  Scheduler scheduler(Options(64, 64), *tokenizer_);
  FakeBackend backend;
  Request request = MakeRequest(1, 8, 50);
  std::vector<TokenId> tokens = request.prompt_ids;
  TokenId first = FakeBackend::NextToken(tokens);
  tokens.push_back(first);
  request.sampling.stop_token_ids = {FakeBackend::NextToken(tokens)};
  ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].first.size(), 2u);
  EXPECT_EQ(out[1].second, "stop");
}

TEST_F(SchedulerTest, AbortEndsTheRequestAndOthersCarryOn) {
  Scheduler scheduler(Options(64, 64), *tokenizer_);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 30)).ok());
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 30)).ok());
  std::vector<TokenEvent> first_step = RunStep(scheduler, backend);
  ASSERT_EQ(first_step.size(), 2u);  // both prompts fit one step and sample a token
  ASSERT_TRUE(scheduler.Abort(1).ok());
  EXPECT_EQ(scheduler.Abort(1).code(), absl::StatusCode::kNotFound);
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].second, "abort");
  EXPECT_TRUE(out[1].first.empty());  // nothing generated after the abort
  EXPECT_EQ(out[2].second, "length");
  EXPECT_EQ(out[2].first.size() + 1, 30u);
  EXPECT_EQ(scheduler.num_free_blocks(), 64);
}

TEST_F(SchedulerTest, BackendErrorFailsThatStepOnlyAndLaterRequestsRun) {
  Scheduler scheduler(Options(64, 64), *tokenizer_);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 5)).ok());
  backend.fail_next_ = true;
  std::vector<TokenEvent> events = RunStep(scheduler, backend);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].finish_reason, "error");
  EXPECT_THAT(std::string(events[0].error.message()), ::testing::HasSubstr("injected failure"));
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 5)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[2].first.size(), 5u);
  EXPECT_EQ(scheduler.num_free_blocks(), 64);
}

TEST_F(SchedulerTest, RejectsBadRequestsWithPreciseErrors) {
  Scheduler scheduler(Options(8, 64), *tokenizer_);
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(1, 0, 5)).code(), absl::StatusCode::kInvalidArgument);
  Request out_of_vocab = MakeRequest(2, 4, 5);
  out_of_vocab.prompt_ids[1] = kVocab;
  absl::Status status = scheduler.AddRequest(out_of_vocab);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("512"));
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(3, 128, 5)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(4, 40, 5)).code(),
            absl::StatusCode::kResourceExhausted);  // 8 blocks of 4 tokens
  Request bad_sampling = MakeRequest(5, 4, 5);
  bad_sampling.sampling.top_p = 0;
  EXPECT_EQ(scheduler.AddRequest(bad_sampling).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(6, 4, 5)).ok());
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(6, 4, 5)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(scheduler.num_waiting(), 1);
}

}  // namespace
}  // namespace strata::scheduler
