#include "engine/sampling/sampler.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/check.h"
#include "engine/sampling/philox.h"

namespace strata::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kMaxFinite = std::numeric_limits<float>::max();
// top_k up to this is selected with a bounded heap in one pass over the
// vocabulary; larger values collect every token and use nth_element.
constexpr int32_t kHeapTopKLimit = 256;

// NaN becomes -inf and +inf the largest float, so comparisons below form a
// total order and differences of logits never produce NaN.
float Sanitize(float v) { return std::isnan(v) ? kNegInf : std::min(v, kMaxFinite); }

struct Candidate {
  float logit = 0.0f;  // sanitized, after penalties
  TokenId id = 0;
  float weight = 0.0f;  // unnormalized probability after temperature
};

// Higher logit first; equal logits by lower id, so every selection and every
// draw is deterministic given its inputs.
bool Better(float logit_a, TokenId id_a, float logit_b, TokenId id_b) {
  return logit_a > logit_b || (logit_a == logit_b && id_a < id_b);
}

struct BetterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return Better(a.logit, a.id, b.logit, b.id);
  }
};

// Per-thread buffers reused across calls so that sampling does not allocate
// vocabulary-sized arrays on every token.
struct Scratch {
  std::vector<float> logits;
  std::vector<Candidate> candidates;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

bool HasPenalties(const SamplingParams& params) {
  return params.repetition_penalty != 1.0f || params.presence_penalty != 0.0f ||
         params.frequency_penalty != 0.0f;
}

// One pass. NaN never wins, ties go to the lowest id, and a vector with no
// logit above -inf yields token 0.
// The first token with the greatest logit; NaN never wins, and 0 when no
// logit is above -inf.
TokenId ArgmaxScalar(absl::Span<const float> logits) {
  TokenId best = 0;
  float best_logit = kNegInf;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_logit) {
      best_logit = logits[i];
      best = static_cast<TokenId>(i);
    }
  }
  return best;
}

// The same in two AVX-512 passes: the greatest ordered logit, then the first
// index holding it. Greedy decoding runs this once per sequence per step on
// a whole vocabulary (32k to 152k logits), where the scalar loop's
// data-dependent branch cost ~1 ns per logit.
__attribute__((target("avx512f"))) TokenId ArgmaxAvx512(absl::Span<const float> logits) {
  const size_t n = logits.size();
  const float* data = logits.data();
  __m512 best = _mm512_set1_ps(kNegInf);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(data + i);
    // Ordered lanes only: a NaN compares false and keeps the old maximum.
    best = _mm512_mask_max_ps(best, _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), best, v);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, best);
  float top = kNegInf;
  for (float lane : lanes) top = std::max(top, lane);
  for (size_t j = i; j < n; ++j) {
    if (data[j] > top) top = data[j];
  }
  if (!(top > kNegInf)) return 0;
  const __m512 target = _mm512_set1_ps(top);
  for (i = 0; i + 16 <= n; i += 16) {
    const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_loadu_ps(data + i), target, _CMP_EQ_OQ);
    if (hit != 0) return static_cast<TokenId>(i + static_cast<size_t>(std::countr_zero(hit)));
  }
  for (; i < n; ++i) {
    if (data[i] == top) return static_cast<TokenId>(i);
  }
  return 0;  // unreachable: `top` came from these logits
}

TokenId Argmax(absl::Span<const float> logits) {
  static const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return avx512 ? ArgmaxAvx512(logits) : ArgmaxScalar(logits);
}

// Fills `out` with the tokens that survive top-k (every token when top_k is
// 0 or covers the vocabulary), skipping -inf and NaN logits. Unordered.
void CollectCandidates(absl::Span<const float> logits, int32_t top_k, std::vector<Candidate>& out) {
  out.clear();
  const bool use_top_k = top_k > 0 && static_cast<size_t>(top_k) < logits.size();
  if (use_top_k && top_k <= kHeapTopKLimit) {
    // With BetterCandidate as the heap order, front() is the worst kept token,
    // so most tokens cost one comparison.
    const auto k = static_cast<size_t>(top_k);
    for (size_t i = 0; i < logits.size(); ++i) {
      const float logit = Sanitize(logits[i]);
      if (logit == kNegInf) continue;
      const auto id = static_cast<TokenId>(i);
      if (out.size() < k) {
        out.push_back({logit, id});
        std::push_heap(out.begin(), out.end(), BetterCandidate{});
      } else if (Better(logit, id, out.front().logit, out.front().id)) {
        std::pop_heap(out.begin(), out.end(), BetterCandidate{});
        out.back() = {logit, id};
        std::push_heap(out.begin(), out.end(), BetterCandidate{});
      }
    }
    return;
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    const float logit = Sanitize(logits[i]);
    if (logit != kNegInf) out.push_back({logit, static_cast<TokenId>(i)});
  }
  if (use_top_k && out.size() > static_cast<size_t>(top_k)) {
    std::nth_element(out.begin(), out.begin() + top_k, out.end(), BetterCandidate{});
    out.resize(static_cast<size_t>(top_k));
  }
}

// Sets each weight to exp((logit - max) / temperature), so the best token has
// weight exactly 1, and returns the sum. temperature > 0.
double ApplyTemperature(std::vector<Candidate>& candidates, float temperature) {
  float max_logit = kNegInf;
  for (const Candidate& c : candidates) max_logit = std::max(max_logit, c.logit);
  double total = 0.0;
  for (Candidate& c : candidates) {
    // Division, not multiplication by 1/T: a tiny T would make 0 * inf = NaN.
    c.weight = std::exp((c.logit - max_logit) / temperature);
    total += c.weight;
  }
  return total;
}

// Top-p buckets weights by their float bits: the exponent and the top three
// mantissa bits, so 8 buckets per octave. For w in [0, 1], 1.0f's bits minus
// w's bits shrink as w grows, so bucket 0 holds the largest weights.
constexpr int kBucketShift = 20;
constexpr uint32_t kNumBuckets = (std::bit_cast<uint32_t>(1.0f) >> kBucketShift) + 1;

uint32_t BucketOf(float weight) {
  return (std::bit_cast<uint32_t>(1.0f) - std::bit_cast<uint32_t>(weight)) >> kBucketShift;
}

// Within [lo, hi), all worse than the candidates before lo whose mass is
// `mass_below_lo`, finds the end of the nucleus: each round partitions the
// undecided range at its middle with nth_element and keeps the half where
// the cumulative mass crosses the target. O(hi - lo) expected, no sort.
size_t SelectByMass(std::vector<Candidate>& candidates, size_t lo, size_t hi, double mass_below_lo,
                    double target) {
  // Invariant: the best lo fall short of the target and the best hi reach it
  // (hi = the initial end is accepted as is, in case rounding fell short).
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    const auto begin = candidates.begin();
    std::nth_element(begin + static_cast<std::ptrdiff_t>(lo),
                     begin + static_cast<std::ptrdiff_t>(mid),
                     begin + static_cast<std::ptrdiff_t>(hi), BetterCandidate{});
    double mass = mass_below_lo;
    for (size_t i = lo; i < mid; ++i) mass += candidates[i].weight;
    if (mass >= target) {
      hi = mid;
    } else {
      lo = mid;
      mass_below_lo = mass;
    }
  }
  return hi;
}

// Returns m, the size of the smallest best-first set whose probability
// reaches top_p (at least 1), and moves those m candidates, unordered, to the
// front. One pass sums the mass per weight bucket to find the bucket where
// the cumulative mass crosses top_p; only that bucket's tokens need an exact
// selection. O(n) whatever the shape of the distribution, and no sort.
size_t NucleusSize(std::vector<Candidate>& candidates, double total, float top_p) {
  const double target = static_cast<double>(top_p) * total;
  std::array<double, kNumBuckets> bucket_mass{};  // 8 KiB on the stack
  for (const Candidate& c : candidates) bucket_mass[BucketOf(c.weight)] += c.weight;
  double mass_before = 0.0;
  uint32_t crossing = 0;
  while (mass_before + bucket_mass[crossing] < target) {
    mass_before += bucket_mass[crossing];
    if (++crossing == kNumBuckets) return candidates.size();  // rounding fell short
  }
  const auto in_bucket_below = [&](const Candidate& c) { return BucketOf(c.weight) < crossing; };
  const auto in_crossing = [&](const Candidate& c) { return BucketOf(c.weight) == crossing; };
  const auto first = std::partition(candidates.begin(), candidates.end(), in_bucket_below);
  const auto last = std::partition(first, candidates.end(), in_crossing);
  // Weight never decreases with the logit, so every token of a better bucket
  // is better than every token of the crossing bucket.
  return SelectByMass(candidates, static_cast<size_t>(first - candidates.begin()),
                      static_cast<size_t>(last - candidates.begin()), mass_before, target);
}

// Inverse-CDF draw over the weights with `uniform` in [0, 1). Zero weights are
// never chosen.
TokenId Draw(const std::vector<Candidate>& candidates, double uniform) {
  double total = 0.0;
  for (const Candidate& c : candidates) total += c.weight;
  const double target = uniform * total;
  double cumulative = 0.0;
  TokenId last_positive = candidates.front().id;
  for (const Candidate& c : candidates) {
    if (c.weight <= 0.0f) continue;
    cumulative += c.weight;
    last_positive = c.id;
    if (target < cumulative) return c.id;
  }
  return last_positive;  // rounding put target at the very top
}

// The per-process source for unseeded draws: a random key fixed at first use
// and an atomic counter, so concurrent callers never share a draw or a lock.
double UnseededUniform() {
  static const uint64_t key = [] {
    std::random_device device;
    return static_cast<uint64_t>(device()) << 32 | device();
  }();
  static std::atomic<uint64_t> counter{0};
  return PhiloxUniform(key, counter.fetch_add(1, std::memory_order_relaxed));
}

TokenId SampleFromDistribution(absl::Span<const float> logits, const SamplingParams& params,
                               double uniform, std::vector<Candidate>& candidates) {
  CollectCandidates(logits, params.top_k, candidates);
  if (candidates.empty()) return 0;  // no logit above -inf: documented fallback
  const double total = ApplyTemperature(candidates, params.temperature);
  if (params.top_p < 1.0f && candidates.size() > 1) {
    candidates.resize(NucleusSize(candidates, total, params.top_p));
  }
  if (params.min_p > 0.0f) {
    // The best candidate has weight 1, so the threshold is min_p itself.
    std::erase_if(candidates, [&](const Candidate& c) { return c.weight < params.min_p; });
    if (candidates.empty()) return 0;  // only when min_p > 1, which validation rejects
  }
  return Draw(candidates, uniform);
}

// Log-softmax of the raw logits: log p_i = (x_i - max) - log(sum_j exp(x_j - max)).
class LogSoftmax {
 public:
  explicit LogSoftmax(absl::Span<const float> logits) : vocab_(logits.size()) {
    for (float v : logits) max_ = std::max(max_, Sanitize(v));
    if (max_ == kNegInf) return;
    double sum = 0.0;
    for (float v : logits) sum += std::exp(Sanitize(v) - max_);
    log_sum_ = std::log(sum);
  }

  float operator()(float raw_logit) const {
    // Nothing finite: report the uniform distribution, the limit of equal logits.
    if (max_ == kNegInf) return static_cast<float>(-std::log(static_cast<double>(vocab_)));
    const float logit = Sanitize(raw_logit);
    if (logit == kNegInf) return kNegInf;
    return static_cast<float>(static_cast<double>(logit) - max_ - log_sum_);
  }

 private:
  size_t vocab_;
  float max_ = kNegInf;
  double log_sum_ = 0.0;
};

// The n best raw logits, best first, by insertion into a short sorted list:
// after the list fills, most tokens cost one comparison.
std::vector<TokenId> TopIds(absl::Span<const float> logits, size_t n) {
  std::vector<TokenId> ids;
  std::vector<float> values;
  ids.reserve(n + 1);
  values.reserve(n + 1);
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = Sanitize(logits[i]);
    const auto id = static_cast<TokenId>(i);
    if (ids.size() == n && !Better(v, id, values.back(), ids.back())) continue;
    size_t pos = ids.size();
    while (pos > 0 && Better(v, id, values[pos - 1], ids[pos - 1])) --pos;
    ids.insert(ids.begin() + static_cast<std::ptrdiff_t>(pos), id);
    values.insert(values.begin() + static_cast<std::ptrdiff_t>(pos), v);
    if (ids.size() > n) {
      ids.pop_back();
      values.pop_back();
    }
  }
  return ids;
}

void FillLogprobs(absl::Span<const float> logits, const SamplingParams& params,
                  SampledToken& token) {
  const LogSoftmax log_softmax(logits);
  if (params.return_logprob) token.logprob = log_softmax(logits[static_cast<size_t>(token.id)]);
  if (params.top_logprobs <= 0) return;
  const size_t n = std::min(static_cast<size_t>(params.top_logprobs), logits.size());
  for (TokenId id : TopIds(logits, n)) {
    token.top_logprobs.push_back({id, log_softmax(logits[static_cast<size_t>(id)])});
  }
}

}  // namespace

void ApplyPenalties(absl::Span<float> logits, const SamplingParams& params,
                    const TokenHistory& history) {
  const auto in_vocab = [&](TokenId id) {
    return id >= 0 && static_cast<size_t>(id) < logits.size();
  };
  const bool repetition = params.repetition_penalty != 1.0f;
  // Distinct token -> occurrences in the output (0: seen in the prompt only).
  absl::flat_hash_map<TokenId, int32_t> counts;
  if (repetition) {
    for (TokenId id : history.prompt) {
      if (in_vocab(id)) counts.try_emplace(id, 0);
    }
  }
  for (TokenId id : history.output) {
    if (in_vocab(id)) ++counts[id];
  }
  // Each entry touches its own logit, so the map's iteration order is moot.
  for (const auto& [id, count] : counts) {
    float& logit = logits[static_cast<size_t>(id)];
    if (repetition) {
      logit = logit > 0.0f ? logit / params.repetition_penalty : logit * params.repetition_penalty;
    }
    if (count > 0) {
      logit -= params.frequency_penalty * static_cast<float>(count);
      logit -= params.presence_penalty;
    }
  }
}

SampledToken SampleToken(absl::Span<const float> logits, const SamplingParams& params,
                         const TokenHistory& history) {
  CHECK(!logits.empty());
  CHECK_LE(logits.size(), static_cast<size_t>(std::numeric_limits<TokenId>::max()));
  Scratch& scratch = ThreadScratch();
  absl::Span<const float> adjusted = logits;
  if (HasPenalties(params)) {
    // A copy, since `logits` is the caller's and logprobs need it raw.
    scratch.logits.assign(logits.begin(), logits.end());
    ApplyPenalties(absl::MakeSpan(scratch.logits), params, history);
    adjusted = scratch.logits;
  }
  SampledToken token;
  // `!(t > 0)` also sends a NaN temperature, which validation rejects, to greedy.
  if (!(params.temperature > 0.0f)) {
    token.id = Argmax(adjusted);
  } else {
    const double uniform = params.seed.has_value()
                               ? PhiloxUniform(*params.seed, history.output.size())
                               : UnseededUniform();
    token.id = SampleFromDistribution(adjusted, params, uniform, scratch.candidates);
  }
  if (params.return_logprob || params.top_logprobs > 0) FillLogprobs(logits, params, token);
  return token;
}

}  // namespace strata::engine
