// The identity of one KV block's contents, shared by cache/ (which computes it
// as a hash chain over token ids) and storage/ (which keys stored blocks by
// it). 128 bits, so accidental collisions across a fleet's lifetime of blocks
// are not a practical concern; reproducible across processes and restarts.
#ifndef STRATA_STORAGE_BLOCK_KEY_H_
#define STRATA_STORAGE_BLOCK_KEY_H_

#include <cstdint>
#include <cstdio>
#include <string>

namespace strata::storage {

struct BlockKey {
  uint64_t high = 0;
  uint64_t low = 0;

  friend bool operator==(const BlockKey&, const BlockKey&) = default;

  // 32 lowercase hex digits, high word first: stable, for logs and disk keys.
  std::string ToHex() const {
    char text[33];
    std::snprintf(text, sizeof(text), "%016llx%016llx", static_cast<unsigned long long>(high),
                  static_cast<unsigned long long>(low));
    return std::string(text, 32);
  }

  template <typename H>
  friend H AbslHashValue(H state, const BlockKey& key) {
    return H::combine(std::move(state), key.high, key.low);
  }
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_BLOCK_KEY_H_
