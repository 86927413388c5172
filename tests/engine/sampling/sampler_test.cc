#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "engine/sampling/philox.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kDraws = 20000;

std::vector<float> RandomLogits(size_t vocab, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(rng);
  return logits;
}

// Reference: first index of the maximum.
TokenId ReferenceArgmax(const std::vector<float>& logits) {
  return static_cast<TokenId>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// Reference softmax(logits / t) in double over the tokens in `support`
// (every token when empty); others get 0.
std::vector<double> ReferenceProbs(const std::vector<float>& logits, double t,
                                   const std::set<TokenId>& support = {}) {
  std::vector<double> p(logits.size(), 0.0);
  double max = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!support.empty() && !support.contains(static_cast<TokenId>(i))) continue;
    p[i] = std::exp((logits[i] - max) / t);
    sum += p[i];
  }
  for (double& x : p) x /= sum;
  return p;
}

// Draws kDraws tokens with seeds 0..kDraws-1 and returns their frequencies.
std::vector<double> SeededFrequencies(const std::vector<float>& logits, SamplingParams params) {
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < kDraws; ++i) {
    params.seed = static_cast<uint64_t>(i);
    const TokenId id = SampleToken(logits, params, {}).id;
    freq[static_cast<size_t>(id)] += 1.0 / kDraws;
  }
  return freq;
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::abs(a[i] - b[i]));
  return diff;
}

std::set<TokenId> Support(const std::vector<double>& freq) {
  std::set<TokenId> ids;
  for (size_t i = 0; i < freq.size(); ++i) {
    if (freq[i] > 0.0) ids.insert(static_cast<TokenId>(i));
  }
  return ids;
}

std::vector<float> LogsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(PhiloxTest, UniformIsInUnitIntervalWithMeanOneHalf) {
  double sum = 0.0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const double u = PhiloxUniform(42, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);  // sd of the mean is 0.0029
}

TEST(SamplerTest, GreedyIsArgmax) {
  SamplingParams params;
  params.temperature = 0.0f;
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const std::vector<float> logits = RandomLogits(seed == 0 ? 152064 : 1000 + seed, seed);
    EXPECT_EQ(SampleToken(logits, params, {}).id, ReferenceArgmax(logits));
  }
}

TEST(SamplerTest, GreedyTiesGoToLowestId) {
  SamplingParams params;
  params.temperature = 0.0f;
  const std::vector<float> logits = {1.0f, 5.0f, kNegInf, 5.0f, 2.0f};
  EXPECT_EQ(SampleToken(logits, params, {}).id, 1);
}

// The vectorized argmax keeps the scalar rules at every length and position:
// NaN never wins, ties (including -0 and +0) go to the lowest id, and no
// logit above -inf gives id 0.
TEST(SamplerTest, GreedyKeepsItsRulesAtEveryLengthAndPosition) {
  SamplingParams params;
  params.temperature = 0.0f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t n : {1u, 15u, 16u, 17u, 33u, 1000u}) {
    for (size_t at = 0; at < n; at += (n > 40 ? 37 : 1)) {
      std::vector<float> logits = RandomLogits(n, static_cast<uint32_t>(n + at));
      for (size_t i = 0; i < n; i += 5) logits[i] = nan;
      logits[at] = 1000.0f;
      EXPECT_EQ(SampleToken(logits, params, {}).id, static_cast<TokenId>(at)) << n << " " << at;
      logits[n - 1 - (n - 1 - at) / 2] = 1000.0f;  // a tie at or after `at`
      EXPECT_EQ(SampleToken(logits, params, {}).id, static_cast<TokenId>(at)) << n << " " << at;
    }
    std::vector<float> dead(n, kNegInf);
    dead[n / 2] = nan;
    EXPECT_EQ(SampleToken(dead, params, {}).id, 0) << n;
  }
  std::vector<float> zeros(40, kNegInf);
  zeros[21] = -0.0f;
  zeros[30] = 0.0f;
  EXPECT_EQ(SampleToken(zeros, params, {}).id, 21);
}

TEST(SamplerTest, TopKOneIsGreedyAtAnyTemperature) {
  for (float temperature : {0.05f, 0.7f, 1.0f, 3.0f, 100.0f}) {
    for (uint32_t seed = 0; seed < 10; ++seed) {
      std::vector<float> logits = RandomLogits(5000, seed);
      logits[17] = logits[4000] = *std::max_element(logits.begin(), logits.end()) + 1.0f;  // a tie
      SamplingParams params;
      params.temperature = temperature;
      params.top_k = 1;
      if (seed % 2 == 0) params.seed = seed;
      EXPECT_EQ(SampleToken(logits, params, {}).id, 17) << temperature;
    }
  }
}

// A seeded sequence of draws, with history growing as tokens are generated.
std::vector<TokenId> SeededRun(const std::vector<float>& logits, uint64_t seed, int steps,
                               const std::vector<float>* other_logits = nullptr) {
  SamplingParams params;
  params.seed = seed;
  params.top_k = 50;
  params.top_p = 0.95f;
  std::vector<TokenId> prompt = {1, 2, 3};
  std::vector<TokenId> output;
  SamplingParams other;  // unseeded traffic interleaved with the run
  other.temperature = 1.3f;
  for (int i = 0; i < steps; ++i) {
    if (other_logits != nullptr) {
      SampleToken(*other_logits, other, {});
      SamplingParams other_seeded = params;
      other_seeded.seed = seed + 1;
      SampleToken(*other_logits, other_seeded, {prompt, output});
    }
    output.push_back(SampleToken(logits, params, {prompt, output}).id);
  }
  return output;
}

TEST(SamplerTest, SeededOutputIsReproducibleAndIndependentOfOtherCalls) {
  const std::vector<float> logits = RandomLogits(2000, 7, 1.0f);
  const std::vector<float> other = RandomLogits(3000, 8);
  const std::vector<TokenId> alone = SeededRun(logits, 1234, 64);
  EXPECT_EQ(SeededRun(logits, 1234, 64), alone);
  EXPECT_EQ(SeededRun(logits, 1234, 64, &other), alone);
  std::vector<TokenId> from_thread;
  std::thread thread([&] { from_thread = SeededRun(logits, 1234, 64, &other); });
  thread.join();
  EXPECT_EQ(from_thread, alone);
  // The draws do vary from step to step.
  EXPECT_GT(std::set<TokenId>(alone.begin(), alone.end()).size(), 10u);
}

TEST(SamplerTest, SeededDrawDependsOnlyOnSeedAndOutputLength) {
  const std::vector<float> logits = RandomLogits(2000, 9, 0.5f);
  SamplingParams params;
  params.seed = 99;
  const std::vector<TokenId> out_a = {5, 6, 7};
  const std::vector<TokenId> out_b = {100, 200, 300};
  const std::vector<TokenId> prompt = {1};
  EXPECT_EQ(SampleToken(logits, params, {prompt, out_a}).id,
            SampleToken(logits, params, {{}, out_b}).id);
}

TEST(SamplerTest, DifferentSeedsDiffer) {
  const std::vector<float> logits(1000, 0.0f);  // uniform: 1000 equally likely tokens
  const std::vector<TokenId> a = SeededRun(logits, 1, 32);
  const std::vector<TokenId> b = SeededRun(logits, 2, 32);
  EXPECT_NE(a, b);
  int equal = 0;
  for (size_t i = 0; i < a.size(); ++i) equal += a[i] == b[i];
  EXPECT_LT(equal, 4);
}

TEST(SamplerTest, FrequenciesMatchSoftmaxWithTemperature) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, kNegInf};
  for (float temperature : {0.7f, 1.0f, 2.0f}) {
    SamplingParams params;
    params.temperature = temperature;
    const std::vector<double> freq = SeededFrequencies(logits, params);
    // The largest standard error is sqrt(0.25 / 20000) = 0.0035.
    EXPECT_LT(MaxAbsDiff(freq, ReferenceProbs(logits, temperature)), 0.015) << temperature;
    EXPECT_EQ(freq[7], 0.0);  // -inf is never drawn
  }
}

TEST(SamplerTest, UnseededFrequenciesMatchSoftmax) {
  const std::vector<float> logits = {0.3f, -0.2f, 1.1f, 0.0f};
  SamplingParams params;
  std::vector<double> freq(logits.size(), 0.0);
  for (int i = 0; i < kDraws; ++i) freq[SampleToken(logits, params, {}).id] += 1.0 / kDraws;
  EXPECT_LT(MaxAbsDiff(freq, ReferenceProbs(logits, 1.0)), 0.02);  // ~6 standard errors
}

TEST(SamplerTest, TopKKeepsExactlyTheKBest) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.5f, -0.3f, 1.9f, 0.0f};
  SamplingParams params;
  params.top_k = 3;
  const std::vector<double> freq = SeededFrequencies(logits, params);
  const std::set<TokenId> top3 = {1, 2, 4};
  EXPECT_EQ(Support(freq), top3);
  EXPECT_LT(MaxAbsDiff(freq, ReferenceProbs(logits, 1.0, top3)), 0.015);
}

TEST(SamplerTest, LargeTopKUsesTheSameSupport) {
  // Above the heap limit, so the nth_element path; every draw must be in the top 1000.
  const std::vector<float> logits = RandomLogits(32000, 3, 0.1f);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  const std::set<TokenId> top(order.begin(), order.begin() + 1000);
  SamplingParams params;
  params.top_k = 1000;
  std::set<TokenId> drawn;
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    params.seed = seed;
    const TokenId id = SampleToken(logits, params, {}).id;
    ASSERT_TRUE(top.contains(id)) << id;
    drawn.insert(id);
  }
  EXPECT_GT(drawn.size(), 800u);  // a flat distribution spreads over the whole top 1000
}

TEST(SamplerTest, TopPKeepsTheSmallestNucleus) {
  const std::vector<float> logits = LogsOf({0.1, 0.5, 0.15, 0.25});
  SamplingParams params;
  params.top_p = 0.7f;  // 0.5 + 0.25 reaches 0.7
  const std::vector<double> freq = SeededFrequencies(logits, params);
  EXPECT_EQ(Support(freq), (std::set<TokenId>{1, 3}));
  EXPECT_LT(MaxAbsDiff(freq, ReferenceProbs(logits, 1.0, {1, 3})), 0.015);
  params.top_p = 0.01f;  // always keeps at least the best token
  EXPECT_EQ(Support(SeededFrequencies(logits, params)), (std::set<TokenId>{1}));
}

TEST(SamplerTest, TopPWithAWideNucleusAndTies) {
  // 300 tied tokens of weight 1 and 9700 of weight exp(-5): the total is
  // 365.36, so reaching 0.8 of it takes 293 of the tied tokens, lowest ids first.
  std::vector<float> logits(10000, 0.0f);
  for (size_t i = 0; i < 300; ++i) logits[i * 7 % 10000] = 5.0f;
  std::vector<TokenId> tied;
  for (size_t i = 0; i < 300; ++i) tied.push_back(static_cast<TokenId>(i * 7 % 10000));
  std::sort(tied.begin(), tied.end());
  const std::set<TokenId> nucleus(tied.begin(), tied.begin() + 293);
  SamplingParams params;
  params.top_p = 0.8f;
  std::set<TokenId> drawn;
  for (uint64_t seed = 0; seed < 5000; ++seed) {
    params.seed = seed;
    const TokenId id = SampleToken(logits, params, {}).id;
    ASSERT_TRUE(nucleus.contains(id)) << id;
    drawn.insert(id);
  }
  EXPECT_EQ(drawn, nucleus);  // 5000 draws over 293 equal tokens miss none in practice
}

TEST(SamplerTest, TopPMatchesAReferenceNucleusOnRandomLogits) {
  const std::vector<float> logits = RandomLogits(20000, 21, 2.0f);
  const std::vector<double> probs = ReferenceProbs(logits, 1.0);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](TokenId a, TokenId b) { return probs[a] > probs[b]; });
  std::set<TokenId> nucleus;
  double cumulative = 0.0;
  for (TokenId id : order) {
    nucleus.insert(id);
    cumulative += probs[id];
    if (cumulative >= 0.6) break;
  }
  ASSERT_GT(nucleus.size(), 100u);  // wide enough to span many weight buckets
  SamplingParams params;
  params.top_p = 0.6f;
  std::set<TokenId> drawn;
  for (uint64_t seed = 0; seed < 4000; ++seed) {
    params.seed = seed;
    const TokenId id = SampleToken(logits, params, {}).id;
    ASSERT_TRUE(nucleus.contains(id)) << id;
    drawn.insert(id);
  }
  EXPECT_GT(drawn.size(), nucleus.size() / 2);
}

TEST(SamplerTest, MinPDropsTokensBelowTheFraction) {
  const std::vector<float> logits = LogsOf({0.3, 0.05, 0.5, 0.08, 0.07});
  SamplingParams params;
  params.min_p = 0.15f;  // threshold 0.075
  const std::vector<double> freq = SeededFrequencies(logits, params);
  EXPECT_EQ(Support(freq), (std::set<TokenId>{0, 2, 3}));
  EXPECT_LT(MaxAbsDiff(freq, ReferenceProbs(logits, 1.0, {0, 2, 3})), 0.015);
}

TEST(SamplerTest, TopPAppliesToTheTopKDistribution) {
  // After top_k = 3 the probabilities are 4/9, 3/9, 2/9, so top_p = 0.75 keeps
  // two tokens; over the full distribution (0.4, 0.7, 0.9) it would keep three.
  const std::vector<float> logits = LogsOf({0.4, 0.3, 0.2, 0.1});
  SamplingParams params;
  params.top_k = 3;
  params.top_p = 0.75f;
  EXPECT_EQ(Support(SeededFrequencies(logits, params)), (std::set<TokenId>{0, 1}));
  params.top_k = 0;
  EXPECT_EQ(Support(SeededFrequencies(logits, params)), (std::set<TokenId>{0, 1, 2}));
}

TEST(SamplerTest, CombinedFiltersOnALargeVocabulary) {
  const std::vector<float> logits = RandomLogits(152064, 11);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 40, order.end(),
                    [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  const std::set<TokenId> top40(order.begin(), order.begin() + 40);
  SamplingParams params;
  params.temperature = 0.8f;
  params.top_k = 40;
  params.top_p = 0.9f;
  params.min_p = 0.05f;
  const float max = logits[order[0]];
  for (uint64_t seed = 0; seed < 200; ++seed) {
    params.seed = seed;
    const TokenId id = SampleToken(logits, params, {}).id;
    EXPECT_TRUE(top40.contains(id));
    EXPECT_GE(std::exp((logits[id] - max) / 0.8), 0.05 - 1e-6);
  }
}

TEST(ApplyPenaltiesTest, HandComputedExample) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f, 1.0f};
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  params.presence_penalty = 0.5f;
  params.frequency_penalty = 0.25f;
  const std::vector<TokenId> prompt = {0, 1,  0,
                                       1, 99, -3};  // repeats and bad ids count once / never
  const std::vector<TokenId> output = {3, 3, 2};
  ApplyPenalties(absl::MakeSpan(logits), params, {prompt, output});
  EXPECT_FLOAT_EQ(logits[0], 1.0f);   // 2 / 2
  EXPECT_FLOAT_EQ(logits[1], -2.0f);  // -1 * 2
  EXPECT_FLOAT_EQ(logits[2], -0.5f);  // 0.5 / 2 - 0.25 * 1 - 0.5
  EXPECT_FLOAT_EQ(logits[3], 0.5f);   // 3 / 2 - 0.25 * 2 - 0.5
  EXPECT_FLOAT_EQ(logits[4], 0.0f);   // unseen
  EXPECT_FLOAT_EQ(logits[5], 1.0f);   // unseen
}

TEST(ApplyPenaltiesTest, PresenceAndFrequencyIgnoreThePrompt) {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f};
  SamplingParams params;
  params.presence_penalty = -1.0f;  // negative values encourage repetition
  params.frequency_penalty = 0.5f;
  const std::vector<TokenId> prompt = {0};
  const std::vector<TokenId> output = {1, 1, 1, 2};
  ApplyPenalties(absl::MakeSpan(logits), params, {prompt, output});
  EXPECT_FLOAT_EQ(logits[0], 1.0f);
  EXPECT_FLOAT_EQ(logits[1], 1.0f - 1.5f + 1.0f);
  EXPECT_FLOAT_EQ(logits[2], 1.0f - 0.5f + 1.0f);
}

TEST(SamplerTest, PenaltiesApplyBeforeGreedy) {
  SamplingParams params;
  params.temperature = 0.0f;
  const std::vector<TokenId> prompt = {0};
  // Positive logits are divided: 2 / 1.5 = 1.33 < 1.5, but 2 / 1.3 = 1.54 > 1.5.
  const std::vector<float> positive = {2.0f, 1.5f};
  params.repetition_penalty = 1.5f;
  EXPECT_EQ(SampleToken(positive, params, {prompt, {}}).id, 1);
  params.repetition_penalty = 1.3f;
  EXPECT_EQ(SampleToken(positive, params, {prompt, {}}).id, 0);
  // Negative logits are multiplied: -1 * 1.1 > -1.2, but -1 * 1.3 < -1.2.
  const std::vector<float> negative = {-1.0f, -1.2f};
  params.repetition_penalty = 1.1f;
  EXPECT_EQ(SampleToken(negative, params, {prompt, {}}).id, 0);
  params.repetition_penalty = 1.3f;
  EXPECT_EQ(SampleToken(negative, params, {prompt, {}}).id, 1);
  // Frequency: 3 - 0.6 * 2 = 1.8 < 2.
  params.repetition_penalty = 1.0f;
  params.frequency_penalty = 0.6f;
  const std::vector<float> logits = {3.0f, 2.0f};
  const std::vector<TokenId> output = {0, 0};
  EXPECT_EQ(SampleToken(logits, params, {{}, output}).id, 1);
}

// log-softmax in double, independently of the sampler.
std::vector<double> ReferenceLogSoftmax(const std::vector<float>& logits) {
  double max = -std::numeric_limits<double>::infinity();
  for (float l : logits) max = std::max(max, static_cast<double>(l));
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  std::vector<double> out;
  for (float l : logits) out.push_back(static_cast<double>(l) - max - std::log(sum));
  return out;
}

TEST(SamplerTest, LogprobsAreLogSoftmaxOfRawLogits) {
  std::vector<float> logits = RandomLogits(32000, 5);
  logits[10] = kNegInf;
  const std::vector<double> reference = ReferenceLogSoftmax(logits);
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  SamplingParams params;
  params.temperature = 0.5f;  // neither temperature nor penalties change logprobs
  params.repetition_penalty = 1.8f;
  params.presence_penalty = 1.0f;
  params.return_logprob = true;
  params.top_logprobs = 5;
  const std::vector<TokenId> history = {order[0], order[1], 3};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    params.seed = seed;
    const SampledToken token = SampleToken(logits, params, {history, history});
    EXPECT_NEAR(token.logprob, reference[token.id], 1e-4);
    ASSERT_EQ(token.top_logprobs.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(token.top_logprobs[i].id, order[i]);
      EXPECT_NEAR(token.top_logprobs[i].logprob, reference[order[i]], 1e-4);
    }
  }
  params.seed.reset();
  params.temperature = 0.0f;
  params.repetition_penalty = 1.0f;
  params.presence_penalty = 0.0f;
  const SampledToken greedy = SampleToken(logits, params, {});
  EXPECT_EQ(greedy.id, order[0]);
  EXPECT_NEAR(greedy.logprob, reference[order[0]], 1e-5);
}

TEST(SamplerTest, LogprobsOnlyWhenAsked) {
  const std::vector<float> logits = {0.0f, 1.0f};
  const SampledToken token = SampleToken(logits, SamplingParams{}, {});
  EXPECT_EQ(token.logprob, 0.0f);
  EXPECT_TRUE(token.top_logprobs.empty());
}

TEST(SamplerTest, MaskedTokensHaveMinusInfinityLogprob) {
  const std::vector<float> logits = {kNegInf, 0.0f, kNegInf};
  SamplingParams params;
  params.return_logprob = true;
  params.top_logprobs = 3;  // more alternatives than finite tokens
  const SampledToken token = SampleToken(logits, params, {});
  EXPECT_EQ(token.id, 1);
  EXPECT_FLOAT_EQ(token.logprob, 0.0f);
  ASSERT_EQ(token.top_logprobs.size(), 3u);
  EXPECT_EQ(token.top_logprobs[0].id, 1);
  EXPECT_EQ(token.top_logprobs[1].id, 0);
  EXPECT_EQ(token.top_logprobs[1].logprob, kNegInf);
}

TEST(SamplerTest, AllMinusInfinityOrNaNFallsBackToTokenZero) {
  for (float fill : {kNegInf, kNaN}) {
    const std::vector<float> logits(100, fill);
    for (float temperature : {0.0f, 1.0f}) {
      SamplingParams params;
      params.temperature = temperature;
      params.top_p = 0.9f;
      params.return_logprob = true;
      params.top_logprobs = 2;
      const SampledToken token = SampleToken(logits, params, {});
      EXPECT_EQ(token.id, 0);
      EXPECT_NEAR(token.logprob, -std::log(100.0), 1e-5);  // uniform, not NaN
      ASSERT_EQ(token.top_logprobs.size(), 2u);
      EXPECT_FALSE(std::isnan(token.top_logprobs[1].logprob));
    }
  }
}

TEST(SamplerTest, NaNIsNeverChosenAndInfinityIsAlwaysChosen) {
  const std::vector<float> with_nan = {kNaN, 0.0f, kNaN, 0.5f};
  const std::vector<float> with_inf = {0.0f, std::numeric_limits<float>::infinity(), 1e30f};
  SamplingParams params;
  params.return_logprob = true;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    params.seed = seed;
    const SampledToken a = SampleToken(with_nan, params, {});
    EXPECT_TRUE(a.id == 1 || a.id == 3);
    EXPECT_FALSE(std::isnan(a.logprob));
    const SampledToken b = SampleToken(with_inf, params, {});
    EXPECT_EQ(b.id, 1);
    EXPECT_FLOAT_EQ(b.logprob, 0.0f);
  }
}

TEST(SamplerTest, ConcurrentUnseededCallsAreSafe) {
  const std::vector<float> logits = RandomLogits(4096, 2);
  std::vector<std::thread> threads;
  std::vector<std::set<TokenId>> drawn(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      SamplingParams params;
      params.top_k = 8;
      for (int i = 0; i < 500; ++i) drawn[t].insert(SampleToken(logits, params, {}).id);
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<TokenId> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 8, order.end(),
                    [&](TokenId a, TokenId b) { return logits[a] > logits[b]; });
  const std::set<TokenId> top8(order.begin(), order.begin() + 8);
  for (const std::set<TokenId>& ids : drawn) {
    EXPECT_TRUE(std::includes(top8.begin(), top8.end(), ids.begin(), ids.end()));
  }
}

}  // namespace
}  // namespace strata::engine
