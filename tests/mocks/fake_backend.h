// A fake of engine::Backend (engine/backend.h) for the scheduler's tests:
// deterministic "model" outputs that depend on every token, K/V that can
// only be read back if it was computed (or moved) under the same prefix, and
// block moves to and from host memory, so that prefix reuse, tier promotion,
// swap and prefetch are all checked for exactness. Single-threaded: the
// thread that drives the scheduler executes.
#ifndef STRATA_TESTS_MOCKS_FAKE_BACKEND_H_
#define STRATA_TESTS_MOCKS_FAKE_BACKEND_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "gtest/gtest.h"

namespace strata::testing {

// The "model" picks the next token as a hash of the whole sequence, so
// outputs are deterministic yet depend on every token. Like a real model it
// learns the tokens before start_position only from the K/V in its blocks:
// each block slot holds the token and a hash of the whole prefix up to it (as
// K/V depend on every earlier token). Prefix sharing means a block may hold
// K/V another sequence computed; that is legitimate exactly when every slot
// read holds the same prefix, which it checks. It also checks that a block
// written in a step is in no other table of that step. Block moves carry the
// slots to and from host memory (serialized), in plan order, before the
// forward pass, as a real backend's do.
class FakeBackend : public engine::Backend {
 public:
  static constexpr int64_t kVocab = 512;  // the aidreams260K tokenizer's
  static constexpr engine::TokenId kEos = 2;
  static constexpr int64_t kBlockSize = 4;
  // Host bytes per block: what the KV spec below gives, and room for the
  // slots (a count, then token and prefix hash per slot).
  static constexpr size_t kBlockBytes = 256;

  // A KV spec whose BytesPerBlock is kBlockBytes.
  static engine::KvCacheSpec Spec() {
    return engine::KvCacheSpec{.num_layers = 1,
                               .num_kv_heads = 1,
                               .head_dim = 8,
                               .block_size = kBlockSize,
                               .dtype = engine::DType::kF32};
  }

  absl::StatusOr<engine::StepResult> Execute(const engine::StepPlan& plan) override {
    if (fail_next_) {
      fail_next_ = false;
      return absl::InternalError("injected failure");
    }
    engine::StepResult result;
    for (const engine::BlockMove& move : plan.block_moves) Move(move);
    result.moves_completed = static_cast<int64_t>(plan.block_moves.size());
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
      std::vector<engine::TokenId> tokens = ReadBlocks(step);
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
    total_step_tokens_ += step_tokens;
    return result;
  }
  absl::Status CopyBlocks(absl::Span<const engine::BlockMove> moves) override {
    for (const engine::BlockMove& move : moves) Move(move);
    return absl::OkStatus();
  }
  absl::Status Synchronize() override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<engine::HostBuffer>> AllocateHostBuffer(size_t) override {
    return absl::UnimplementedError("not needed by the scheduler");
  }
  engine::KvArenaInfo kv_arena_info() const override { return {}; }
  const engine::ModelConfig& model_config() const override { return config_; }
  std::string name() const override { return "fake"; }

  static engine::TokenId NextToken(const std::vector<engine::TokenId>& tokens) {
    uint64_t hash = 1469598103934665603ull;
    for (engine::TokenId t : tokens) hash = (hash ^ static_cast<uint64_t>(t)) * 1099511628211ull;
    return static_cast<engine::TokenId>(3 + hash % (kVocab - 3));  // never EOS (2)
  }

  static uint64_t PrefixHash(const std::vector<engine::TokenId>& tokens, size_t length) {
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

  bool fail_next_ = false;
  int64_t max_step_tokens_ = 0;
  int64_t total_step_tokens_ = 0;                   // tokens computed, all steps
  std::map<engine::BlockMoveKind, int64_t> moves_;  // moves performed, by kind
  std::vector<StepRecord> steps_;                   // every sequence step ever executed, in order

 private:
  struct Slot {
    engine::TokenId token;
    uint64_t prefix_hash;  // of every token up to and including this one
  };
  static constexpr size_t kSlotBytes = sizeof(engine::TokenId) + sizeof(uint64_t);
  static_assert(sizeof(uint32_t) + kBlockSize * kSlotBytes <= kBlockBytes);

  void Move(const engine::BlockMove& move) {
    ++moves_[move.kind];
    switch (move.kind) {
      case engine::BlockMoveKind::kCopy:
        slots_[move.dst] = slots_[move.src];
        return;
      case engine::BlockMoveKind::kDeviceToHost: {
        ASSERT_EQ(move.host_dst.size(), kBlockBytes);
        const std::vector<Slot>& slots = slots_[move.src];
        const auto count = static_cast<uint32_t>(slots.size());
        std::byte* out = move.host_dst.data();
        std::memcpy(out, &count, sizeof(count));
        for (size_t i = 0; i < slots.size(); ++i) {
          std::memcpy(out + sizeof(count) + i * kSlotBytes, &slots[i].token,
                      sizeof(engine::TokenId));
          std::memcpy(out + sizeof(count) + i * kSlotBytes + sizeof(engine::TokenId),
                      &slots[i].prefix_hash, sizeof(uint64_t));
        }
        return;
      }
      case engine::BlockMoveKind::kHostToDevice: {
        ASSERT_EQ(move.host_src.size(), kBlockBytes);
        const std::byte* in = move.host_src.data();
        uint32_t count = 0;
        std::memcpy(&count, in, sizeof(count));
        ASSERT_LE(count, static_cast<uint32_t>(kBlockSize)) << "host bytes are not a block";
        std::vector<Slot>& slots = slots_[move.dst];
        slots.assign(count, Slot{});
        for (size_t i = 0; i < count; ++i) {
          std::memcpy(&slots[i].token, in + sizeof(count) + i * kSlotBytes,
                      sizeof(engine::TokenId));
          std::memcpy(&slots[i].prefix_hash,
                      in + sizeof(count) + i * kSlotBytes + sizeof(engine::TokenId),
                      sizeof(uint64_t));
        }
        return;
      }
    }
  }

  // The tokens before start_position, from the blocks, each checked against
  // the prefix it was computed under.
  std::vector<engine::TokenId> ReadBlocks(const engine::SequenceStep& step) {
    std::vector<engine::TokenId> tokens;
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
             const std::vector<engine::TokenId>& tokens) {
    std::vector<Slot>& slots = slots_[table[pos / kBlockSize]];
    size_t offset = static_cast<size_t>(pos % kBlockSize);
    EXPECT_LE(offset, slots.size()) << "gap in a block at position " << pos;
    slots.resize(std::min(offset, slots.size()));
    slots.push_back(Slot{tokens.back(), PrefixHash(tokens, tokens.size())});
  }

  engine::ModelConfig config_;
  std::map<engine::BlockId, std::vector<Slot>> slots_;  // what each block holds
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_MOCKS_FAKE_BACKEND_H_
