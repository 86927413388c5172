// Helpers shared by the CPU backend tests: loading fixture models, and
// running sequences through a backend with explicit block tables.
#ifndef STRATA_TESTS_ENGINE_CPU_CPU_TEST_UTIL_H_
#define STRATA_TESTS_ENGINE_CPU_CPU_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/model_weights.h"
#include "engine/step.h"
#include "gtest/gtest.h"

namespace strata::engine::cpu::testing {

// A model small enough to build in microseconds, with GQA (4 heads, 2 kv heads).
inline ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 64;
  return c;
}

inline std::filesystem::path FixtureDir(const std::string& model) {
  return std::filesystem::path(STRATA_TEST_DATA_DIR) / "models" / model;
}

// aidreams260K's weights live in models/, its references in tests/data.
inline std::filesystem::path WeightsDir(const std::string& model) {
  if (model == "aidreams260K") {
    return std::filesystem::path(STRATA_SOURCE_DIR) / "models" / model;
  }
  return FixtureDir(model);
}

inline std::unique_ptr<CpuBackend> MakeBackend(const LoadedModel& model,
                                               BackendOptions options = {}) {
  if (options.num_kv_blocks == 0) options.num_kv_blocks = 256;
  auto backend = CpuBackend::Create(model, options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

// Blocks [first, first + n).
inline std::vector<BlockId> Blocks(BlockId first, int64_t n) {
  std::vector<BlockId> table(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) table[static_cast<size_t>(i)] = first + static_cast<BlockId>(i);
  return table;
}

inline SequenceStep Span(SequenceId id, const std::vector<TokenId>& ids, int64_t begin,
                         int64_t end, const std::vector<BlockId>& table) {
  SequenceStep step;
  step.seq_id = id;
  step.token_ids.assign(ids.begin() + begin, ids.begin() + end);
  step.start_position = begin;
  step.block_table = table;
  step.return_logits = true;
  return step;
}

// Runs `ids` alone in chunks of `chunk` tokens; returns [ids.size(), vocab].
inline std::vector<float> RunChunked(Backend& backend, const std::vector<TokenId>& ids,
                                     int64_t chunk, const std::vector<BlockId>& table) {
  std::vector<float> logits;
  for (int64_t begin = 0; begin < static_cast<int64_t>(ids.size()); begin += chunk) {
    const int64_t end = std::min<int64_t>(begin + chunk, static_cast<int64_t>(ids.size()));
    StepPlan plan;
    plan.sequences.push_back(Span(1, ids, begin, end, table));
    auto result = backend.Execute(plan);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    const std::vector<float>& part = result->outputs[0].logits;
    logits.insert(logits.end(), part.begin(), part.end());
  }
  return logits;
}

inline float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  }
  return worst;
}

inline std::vector<TokenId> ArgmaxRows(const std::vector<float>& logits, int64_t vocab) {
  std::vector<TokenId> out;
  for (size_t r = 0; r * static_cast<size_t>(vocab) < logits.size(); ++r) {
    auto begin = logits.begin() + static_cast<int64_t>(r) * vocab;
    out.push_back(static_cast<TokenId>(std::max_element(begin, begin + vocab) - begin));
  }
  return out;
}

}  // namespace strata::engine::cpu::testing

#endif  // STRATA_TESTS_ENGINE_CPU_CPU_TEST_UTIL_H_
