#include "cache/block_hash.h"

#include <xxhash.h>

#include <algorithm>

#include "common/check.h"

namespace strata::cache {
namespace {

// Version tags separate the kinds of hashed records (a root can never equal a
// block) and name the encoding. Bumping one retires every stored key.
constexpr std::string_view kModelTag = "strata.model.v1";
constexpr std::string_view kTensorTag = "strata.tensor.v1";
constexpr std::string_view kRootTag = "strata.root.v1";
constexpr std::string_view kLayoutTag = "strata.kv_layout.v1";
constexpr std::string_view kBlockTag = "strata.block.v1";
constexpr std::string_view kSaltTag = "strata.salt.v1";
constexpr std::string_view kChunkTailTag = "strata.chunk_tail.v1";

constexpr size_t kFullDigestLimit = size_t{1} << 20;
constexpr size_t kSampleWindows = 64;
constexpr size_t kSampleWindowBytes = 4096;

// Explicit byte order, so the encoding is the same on every host.
void AppendU64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void AppendU32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Length-prefixed, so adjacent strings cannot be re-split into equal bytes.
void AppendString(std::string& out, std::string_view text) {
  AppendU64(out, text.size());
  out.append(text);
}

void AppendKey(std::string& out, const BlockKey& key) {
  AppendU64(out, key.high);
  AppendU64(out, key.low);
}

BlockKey Hash128(const void* data, size_t size) {
  XXH128_hash_t hash = XXH3_128bits(data, size);
  return BlockKey{hash.high64, hash.low64};
}

BlockKey Hash128(const std::string& bytes) { return Hash128(bytes.data(), bytes.size()); }

BlockKey DigestBytes(absl::Span<const std::byte> bytes, WeightDigest digest) {
  if (digest == WeightDigest::kFull || bytes.size() <= kFullDigestLimit) {
    return Hash128(bytes.data(), bytes.size());
  }
  // Window i starts at (size - window) * i / (windows - 1): the first and last
  // windows cover both ends, the rest are evenly spread.
  std::string sampled;
  sampled.reserve(kSampleWindows * kSampleWindowBytes + 8);
  AppendU64(sampled, bytes.size());
  const size_t span = bytes.size() - kSampleWindowBytes;
  for (size_t i = 0; i < kSampleWindows; ++i) {
    // span * i / (windows - 1) without overflow: split span into q and r.
    const size_t q = span / (kSampleWindows - 1), r = span % (kSampleWindows - 1);
    size_t offset = q * i + r * i / (kSampleWindows - 1);
    const char* start = reinterpret_cast<const char*>(bytes.data()) + offset;
    sampled.append(start, kSampleWindowBytes);
  }
  return Hash128(sampled);
}

}  // namespace

void ModelFingerprintBuilder::AddConfig(std::string_view canonical_json) {
  AppendString(config_bytes_, canonical_json);
}

void ModelFingerprintBuilder::AddTensor(std::string_view name, DType dtype,
                                        absl::Span<const int64_t> shape,
                                        absl::Span<const std::byte> bytes) {
  std::string record;
  AppendString(record, kTensorTag);
  AppendString(record, name);
  AppendString(record, DTypeName(dtype));  // a stable name, not the enum value
  AppendU64(record, shape.size());
  for (int64_t dim : shape) AppendU64(record, static_cast<uint64_t>(dim));
  AppendU64(record, digest_ == WeightDigest::kFull ? 1 : 0);
  AppendKey(record, DigestBytes(bytes, digest_));
  tensors_.emplace_back(std::string(name), Hash128(record));
}

ModelFingerprint ModelFingerprintBuilder::Finish(DType kv_dtype, int64_t block_size) && {
  CHECK_GT(block_size, 0);
  // Sorted by name, so load order (file order, shard order) does not matter.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string record;
  AppendString(record, kModelTag);
  AppendString(record, config_bytes_);
  AppendU64(record, tensors_.size());
  for (const auto& [name, digest] : tensors_) AppendKey(record, digest);
  AppendString(record, DTypeName(kv_dtype));
  AppendU64(record, static_cast<uint64_t>(block_size));
  BlockKey hash = Hash128(record);
  return ModelFingerprint{hash.high, hash.low};
}

ModelFingerprint WithKvLayout(const ModelFingerprint& model, std::string_view layout) {
  if (layout == "rows") return model;
  std::string record;
  AppendString(record, kLayoutTag);
  AppendKey(record, BlockKey{model.high, model.low});
  AppendString(record, layout);
  const BlockKey hash = Hash128(record);
  return ModelFingerprint{hash.high, hash.low};
}

BlockKey RootKey(const ModelFingerprint& model, std::string_view salt) {
  std::string record;
  AppendString(record, kRootTag);
  AppendKey(record, BlockKey{model.high, model.low});
  AppendString(record, salt);
  return Hash128(record);
}

BlockKey HashBlock(const BlockKey& parent, absl::Span<const TokenId> tokens) {
  std::string record;
  record.reserve(kBlockTag.size() + 32 + 4 * tokens.size());
  AppendString(record, kBlockTag);
  AppendKey(record, parent);
  AppendU64(record, tokens.size());
  for (TokenId token : tokens) AppendU32(record, static_cast<uint32_t>(token));
  return Hash128(record);
}

BlockKey ChunkTailKey(const BlockKey& parent, absl::Span<const TokenId> tokens) {
  std::string record;
  record.reserve(kChunkTailTag.size() + 32 + 4 * tokens.size());
  AppendString(record, kChunkTailTag);
  AppendKey(record, parent);
  AppendU64(record, tokens.size());
  for (TokenId token : tokens) AppendU32(record, static_cast<uint32_t>(token));
  return Hash128(record);
}

BlockKey ChainParent(const ModelFingerprint& model, const CacheSalt& salt, int64_t index,
                     const BlockKey& previous) {
  // Only a tenant with public blocks splits its chain; otherwise the keys are
  // those of the plain salted chain.
  const bool split = !salt.tenant.empty() && salt.public_blocks > 0;
  if (index == 0) return RootKey(model, split ? std::string_view() : salt.tenant);
  if (!split || index != salt.public_blocks) return previous;
  std::string record;
  AppendString(record, kSaltTag);
  AppendKey(record, previous);
  AppendString(record, salt.tenant);
  return Hash128(record);
}

}  // namespace strata::cache
