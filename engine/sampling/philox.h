// Philox4x32-10, the counter-based generator of Salmon et al. (SC'11). A
// counter-based generator maps (key, counter) to random bits with no state, so
// a seeded request's n-th draw is a pure function of (seed, n): batching,
// preemption and the order sequences are sampled in never change it.
#ifndef STRATA_ENGINE_SAMPLING_PHILOX_H_
#define STRATA_ENGINE_SAMPLING_PHILOX_H_

#include <array>
#include <cstdint>

namespace strata::engine {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// The 10-round Philox4x32 bijection. Pure function; thread-safe.
PhiloxCounter Philox4x32(PhiloxCounter counter, PhiloxKey key);

// A uniform double in [0, 1) with 53 random bits, from the first two output
// words of Philox4x32 keyed by `key` at counter (index, 0, 0). Pure function.
double PhiloxUniform(uint64_t key, uint64_t index);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SAMPLING_PHILOX_H_
