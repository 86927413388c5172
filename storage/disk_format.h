// The on-disk format of DiskTierStore, in one place so that it is versioned
// deliberately and tests can damage stored values precisely.
//
// The RocksDB database has two column families besides "default":
//   "blocks": key -> header (kHeaderBytes) followed by the block's bytes;
//   "index":  key -> IndexRecord, a few bytes per block, written in the same
//             WriteBatch as the block, so that opening the store reads only
//             the index and never the (large) values.
// A key is the model fingerprint then the BlockKey, big-endian, so one
// model's blocks sort together. The header (little-endian):
//   u32 magic, u16 version, u16 header bytes, u64 model fingerprint,
//   u64 key.high, u64 key.low, u64 payload bytes, u64 checksum,
// the checksum being XXH3-64 over the header before it, then the payload.
#ifndef STRATA_STORAGE_DISK_FORMAT_H_
#define STRATA_STORAGE_DISK_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "storage/block_key.h"

namespace strata::storage::disk_format {

inline constexpr char kBlocksColumnFamily[] = "blocks";
inline constexpr char kIndexColumnFamily[] = "index";
inline constexpr uint32_t kMagic = 0x564b5453;  // "STKV" in little-endian byte order
inline constexpr uint16_t kVersion = 1;
inline constexpr size_t kHeaderBytes = 48;
inline constexpr size_t kKeyBytes = 24;

// A block's identity on disk: which model computed it, and its contents.
struct StoredKey {
  uint64_t fingerprint = 0;
  BlockKey key;

  friend bool operator==(const StoredKey&, const StoredKey&) = default;
  template <typename H>
  friend H AbslHashValue(H state, const StoredKey& k) {
    return H::combine(std::move(state), k.fingerprint, k.key);
  }
};

std::string EncodeKey(const StoredKey& key);
// nullopt unless `bytes` is exactly kKeyBytes long.
std::optional<StoredKey> DecodeKey(std::string_view bytes);

// Fills value[0, kHeaderBytes) for the payload that follows it at
// value + kHeaderBytes, checksum included.
void WriteHeader(const StoredKey& key, size_t payload_bytes, std::byte* value);

enum class Verdict {
  kOk,
  kCorrupt,  // wrong magic, version or length; checksum mismatch; wrong key
  kForeign,  // intact, but written for another model fingerprint or block size
};

// Checks a stored value against what the reader expects under `key`.
Verdict Verify(std::string_view value, const StoredKey& key, size_t payload_bytes);

// What the index column family holds per block: the position in eviction
// order (larger is newer) and the stored value's size.
struct IndexRecord {
  uint64_t sequence = 0;
  uint64_t value_bytes = 0;
};

std::string EncodeIndexRecord(const IndexRecord& record);
std::optional<IndexRecord> DecodeIndexRecord(std::string_view bytes);

}  // namespace strata::storage::disk_format

#endif  // STRATA_STORAGE_DISK_FORMAT_H_
