// GPU sampling against engine::SampleToken (the CPU sampler):
//  - greedy, with and without penalties, and over NaN / -inf / +inf / ties:
//    the same token;
//  - logprobs and top logprobs: the same ids and values;
//  - temperature / top-k / top-p / min-p draws: the GPU walks the kept set
//    in token-id order, so the expected token is recomputed here from the
//    CPU's rules (the kept set and weights of sampler.cc) and the same
//    uniform; the GPU must pick exactly it.
#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "engine/sampling/sampler.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using engine::SamplingParams;
using engine::TokenId;
using testing::DeviceArray;
using testing::ExpectRan;

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  SamplingParams params;
  double uniform = 0.5;
  std::vector<TokenId> prompt, output;
};

SampleRow RowFor(const Case& c, int logits_row, int history_offset) {
  SampleRow row;
  row.logits_row = logits_row;
  row.temperature = c.params.temperature;
  row.top_k = c.params.top_k;
  row.top_p = c.params.top_p;
  row.min_p = c.params.min_p;
  row.repetition_penalty = c.params.repetition_penalty;
  row.presence_penalty = c.params.presence_penalty;
  row.frequency_penalty = c.params.frequency_penalty;
  row.uniform = c.uniform;
  row.history_offset = history_offset;
  row.prompt_count = static_cast<int32_t>(c.prompt.size());
  row.output_count = static_cast<int32_t>(c.output.size());
  row.top_logprobs = c.params.top_logprobs;
  row.return_logprob = c.params.return_logprob ? 1 : 0;
  return row;
}

std::vector<SampleResult> RunGpu(const std::vector<float>& logits, int vocab,
                                 const std::vector<Case>& cases) {
  std::vector<SampleRow> rows;
  std::vector<int32_t> history;
  for (size_t i = 0; i < cases.size(); ++i) {
    rows.push_back(RowFor(cases[i], static_cast<int>(i), static_cast<int>(history.size())));
    history.insert(history.end(), cases[i].prompt.begin(), cases[i].prompt.end());
    history.insert(history.end(), cases[i].output.begin(), cases[i].output.end());
  }
  history.push_back(0);  // never empty
  DeviceArray<float> d_logits(logits), d_work(cases.size() * vocab);
  DeviceArray<int32_t> d_counts(cases.size() * vocab), d_history(history);
  DeviceArray<SampleRow> d_rows(rows);
  DeviceArray<SampleResult> d_results(cases.size());
  SampleParams p;
  p.logits = d_logits.get();
  p.vocab = vocab;
  p.rows = d_rows.get();
  p.num_rows = static_cast<int>(rows.size());
  p.history = d_history.get();
  p.work = d_work.get();
  p.counts = d_counts.get();
  p.results = d_results.get();
  ExpectRan(LaunchSample(p, nullptr));
  return d_results.Download();
}

// The CPU sampler's kept set (sampler.cc: candidates, temperature, top-k,
// top-p nucleus, min-p) as a weight per token, 0 where not kept.
std::vector<float> KeptWeights(std::vector<float> logits, const Case& c) {
  engine::ApplyPenalties(absl::MakeSpan(logits), c.params, {c.prompt, c.output});
  std::vector<TokenId> ids;
  for (size_t i = 0; i < logits.size(); ++i) {
    float& v = logits[i];
    v = std::isnan(v) ? -kInf : std::min(v, std::numeric_limits<float>::max());
    if (v != -kInf) ids.push_back(static_cast<TokenId>(i));
  }
  std::sort(ids.begin(), ids.end(), [&](TokenId a, TokenId b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  if (c.params.top_k > 0 && static_cast<size_t>(c.params.top_k) < ids.size()) {
    ids.resize(static_cast<size_t>(c.params.top_k));
  }
  std::vector<float> weight(logits.size(), 0.0f);
  if (ids.empty()) return weight;
  const float max_logit = logits[ids[0]];
  double total = 0;
  for (TokenId id : ids) {
    weight[id] = std::exp((logits[id] - max_logit) / c.params.temperature);
    total += weight[id];
  }
  if (c.params.top_p < 1.0f && ids.size() > 1) {
    const double target = static_cast<double>(c.params.top_p) * total;
    double cum = 0;
    size_t keep = ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += weight[ids[i]];
      if (cum >= target) {
        keep = i + 1;
        break;
      }
    }
    for (size_t i = keep; i < ids.size(); ++i) weight[ids[i]] = 0.0f;
  }
  if (c.params.min_p > 0.0f) {
    for (float& w : weight) {
      if (w < c.params.min_p) w = 0.0f;
    }
  }
  return weight;
}

TokenId DrawInIdOrder(const std::vector<float>& weight, double uniform) {
  const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
  const double target = uniform * total;
  double cum = 0;
  for (size_t i = 0; i < weight.size(); ++i) {
    if (weight[i] <= 0) continue;
    cum += weight[i];
    if (target < cum) return static_cast<TokenId>(i);
  }
  return -1;
}

std::vector<float> MakeLogits(int vocab, uint32_t seed) {
  std::vector<float> logits = testing::RandomNormal(vocab, seed, 3.0f);
  logits[5] = logits[9] = 4.5f;  // a tie
  return logits;
}

TEST(SamplingKernelTest, GreedyMatchesTheCpuSamplerIncludingOddValues) {
  const int vocab = 4099;
  std::vector<float> logits;
  std::vector<Case> cases;
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 6; ++r) rows.push_back(MakeLogits(vocab, 40 + r));
  rows[1][700] = rows[1][12] = 1e9f;                 // tie at the top: lower id
  rows[2][3] = NAN;                                  // NaN never wins
  rows[2][4] = kInf;                                 // +inf does
  std::fill(rows[3].begin(), rows[3].end(), -kInf);  // nothing finite: token 0
  for (int r = 0; r < 6; ++r) {
    Case c;
    c.params.temperature = 0.0f;
    if (r == 4) {
      c.params.repetition_penalty = 1.7f;
      c.prompt = {5, 9, 9, 100};
      c.output = {5, 33, 33, 33};
    }
    if (r == 5) {
      c.params.presence_penalty = 2.0f;
      c.params.frequency_penalty = 0.5f;
      c.output = {9, 9, 5, 4000};
    }
    cases.push_back(c);
    logits.insert(logits.end(), rows[r].begin(), rows[r].end());
  }
  const std::vector<SampleResult> gpu = RunGpu(logits, vocab, cases);
  for (size_t r = 0; r < cases.size(); ++r) {
    const engine::SampledToken cpu =
        engine::SampleToken(rows[r], cases[r].params, {cases[r].prompt, cases[r].output});
    EXPECT_EQ(gpu[r].token, cpu.id) << "row " << r;
  }
}

TEST(SamplingKernelTest, LogprobsMatchTheCpuSampler) {
  const int vocab = 128256;
  const std::vector<float> logits = MakeLogits(vocab, 50);
  Case c;
  c.params.temperature = 0.0f;
  c.params.return_logprob = true;
  c.params.top_logprobs = 20;
  const std::vector<SampleResult> gpu = RunGpu(logits, vocab, {c});
  const engine::SampledToken cpu = engine::SampleToken(logits, c.params, {});
  EXPECT_EQ(gpu[0].token, cpu.id);
  EXPECT_NEAR(gpu[0].logprob, cpu.logprob, 1e-5f);
  ASSERT_EQ(cpu.top_logprobs.size(), 20u);
  for (size_t j = 0; j < cpu.top_logprobs.size(); ++j) {
    EXPECT_EQ(gpu[0].top_ids[j], cpu.top_logprobs[j].id) << j;
    EXPECT_NEAR(gpu[0].top_logprobs[j], cpu.top_logprobs[j].logprob, 1e-5f) << j;
  }
}

TEST(SamplingKernelTest, DrawsFollowTheCpuRulesWithTheSameUniform) {
  const int vocab = 50000;
  const std::vector<float> base = MakeLogits(vocab, 60);
  std::vector<Case> cases;
  const double uniforms[] = {0.01, 0.3, 0.62, 0.97};
  for (double u : uniforms) {
    for (int variant = 0; variant < 6; ++variant) {
      Case c;
      c.uniform = u;
      c.params.temperature = variant == 0 ? 1.0f : 0.7f;
      if (variant == 1) c.params.top_k = 50;
      if (variant == 2) c.params.top_p = 0.9f;
      if (variant == 3) c.params.min_p = 0.05f;
      if (variant == 4) {
        c.params.top_k = 1000;
        c.params.top_p = 0.5f;
        c.params.min_p = 0.01f;
      }
      if (variant == 5) {
        c.params.top_k = 1;  // top_k 1 is greedy whatever the uniform
        c.params.repetition_penalty = 1.3f;
        c.prompt = {5, 9};
        c.output = {1, 2, 3};
      }
      cases.push_back(c);
    }
  }
  std::vector<float> logits;
  for (size_t i = 0; i < cases.size(); ++i) logits.insert(logits.end(), base.begin(), base.end());
  const std::vector<SampleResult> gpu = RunGpu(logits, vocab, cases);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<float> weight = KeptWeights(base, cases[i]);
    EXPECT_GT(weight[static_cast<size_t>(gpu[i].token)], 0.0f)
        << "case " << i << " drew a token outside the kept set";
    EXPECT_EQ(gpu[i].token, DrawInIdOrder(weight, cases[i].uniform)) << "case " << i;
  }
}

TEST(SamplingKernelTest, NothingFiniteSamplesTokenZero) {
  const int vocab = 100;
  std::vector<float> logits(vocab, -kInf);
  Case c;
  c.params.temperature = 1.0f;
  c.params.top_p = 0.5f;
  const std::vector<SampleResult> gpu = RunGpu(logits, vocab, {c});
  EXPECT_EQ(gpu[0].token, 0);
}

}  // namespace
}  // namespace strata::kernels
