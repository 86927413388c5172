#include "storage/disk_format.h"

#include <bit>
#include <cstring>

#include "xxhash.h"

namespace strata::storage::disk_format {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the header is stored little-endian by memcpy");

// Header field offsets.
constexpr size_t kMagicAt = 0;
constexpr size_t kVersionAt = 4;
constexpr size_t kHeaderSizeAt = 6;
constexpr size_t kFingerprintAt = 8;
constexpr size_t kKeyHighAt = 16;
constexpr size_t kKeyLowAt = 24;
constexpr size_t kPayloadBytesAt = 32;
constexpr size_t kChecksumAt = 40;
static_assert(kChecksumAt + 8 == kHeaderBytes);

constexpr size_t kIndexRecordBytes = 16;

template <typename T>
T Load(const char* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

template <typename T>
void Store(T value, char* at) {
  std::memcpy(at, &value, sizeof(T));
}

void PutBigEndian(uint64_t value, char* at) {
  for (int i = 7; i >= 0; --i) {
    at[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}

uint64_t GetBigEndian(const char* at) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(at[i]);
  return value;
}

// The header before the checksum field seeds the hash of the payload, so one
// value covers both without copying them together.
uint64_t Checksum(const char* header, const char* payload, size_t payload_bytes) {
  const XXH64_hash_t seed = XXH3_64bits(header, kChecksumAt);
  return XXH3_64bits_withSeed(payload, payload_bytes, seed);
}

}  // namespace

std::string EncodeKey(const StoredKey& key) {
  std::string bytes(kKeyBytes, '\0');
  PutBigEndian(key.fingerprint, bytes.data());
  PutBigEndian(key.key.high, bytes.data() + 8);
  PutBigEndian(key.key.low, bytes.data() + 16);
  return bytes;
}

std::optional<StoredKey> DecodeKey(std::string_view bytes) {
  if (bytes.size() != kKeyBytes) return std::nullopt;
  StoredKey key;
  key.fingerprint = GetBigEndian(bytes.data());
  key.key.high = GetBigEndian(bytes.data() + 8);
  key.key.low = GetBigEndian(bytes.data() + 16);
  return key;
}

void WriteHeader(const StoredKey& key, size_t payload_bytes, std::byte* value) {
  char* header = reinterpret_cast<char*>(value);
  Store<uint32_t>(kMagic, header + kMagicAt);
  Store<uint16_t>(kVersion, header + kVersionAt);
  Store<uint16_t>(static_cast<uint16_t>(kHeaderBytes), header + kHeaderSizeAt);
  Store<uint64_t>(key.fingerprint, header + kFingerprintAt);
  Store<uint64_t>(key.key.high, header + kKeyHighAt);
  Store<uint64_t>(key.key.low, header + kKeyLowAt);
  Store<uint64_t>(payload_bytes, header + kPayloadBytesAt);
  Store<uint64_t>(Checksum(header, header + kHeaderBytes, payload_bytes), header + kChecksumAt);
}

Verdict Verify(std::string_view value, const StoredKey& key, size_t payload_bytes) {
  if (value.size() < kHeaderBytes) return Verdict::kCorrupt;
  const char* header = value.data();
  if (Load<uint32_t>(header + kMagicAt) != kMagic ||
      Load<uint16_t>(header + kVersionAt) != kVersion ||
      Load<uint16_t>(header + kHeaderSizeAt) != kHeaderBytes) {
    return Verdict::kCorrupt;
  }
  const uint64_t stored_payload = Load<uint64_t>(header + kPayloadBytesAt);
  if (stored_payload != value.size() - kHeaderBytes) return Verdict::kCorrupt;  // truncated
  if (Checksum(header, header + kHeaderBytes, stored_payload) !=
      Load<uint64_t>(header + kChecksumAt)) {
    return Verdict::kCorrupt;
  }
  // Intact from here on: a mismatch is a block that is not ours to serve.
  if (Load<uint64_t>(header + kFingerprintAt) != key.fingerprint ||
      stored_payload != payload_bytes) {
    return Verdict::kForeign;
  }
  if (Load<uint64_t>(header + kKeyHighAt) != key.key.high ||
      Load<uint64_t>(header + kKeyLowAt) != key.key.low) {
    return Verdict::kCorrupt;  // an intact value under the wrong key
  }
  return Verdict::kOk;
}

std::string EncodeIndexRecord(const IndexRecord& record) {
  std::string bytes(kIndexRecordBytes, '\0');
  Store<uint64_t>(record.sequence, bytes.data());
  Store<uint64_t>(record.value_bytes, bytes.data() + 8);
  return bytes;
}

std::optional<IndexRecord> DecodeIndexRecord(std::string_view bytes) {
  if (bytes.size() != kIndexRecordBytes) return std::nullopt;
  return IndexRecord{Load<uint64_t>(bytes.data()), Load<uint64_t>(bytes.data() + 8)};
}

}  // namespace strata::storage::disk_format
