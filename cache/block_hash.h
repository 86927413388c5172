// Identity of cached KV contents: a model fingerprint and a hash chain over
// full blocks of token ids.
//
// A block's key is XXH3-128 over a canonical little-endian encoding of its
// parent's key and its own token ids. The chain starts at a root key derived
// from the model fingerprint and the tenant's cache salt, so a key names "these
// tokens, after exactly this prefix, for this model (weights, KV dtype, block
// size), for this tenant". Equal keys mean equal K/V; different salts or
// models never share. No per-process seed anywhere: keys are stable across
// processes, restarts and machines of either endianness, which the disk tier
// relies on. Changing the encoding invalidates every stored block: bump the
// version tags below (and the pinned values in tests/cache/block_hash_test.cc).
//
// Shared public prefix (CacheSalt::public_blocks). A prompt's leading blocks
// may be declared public (a system prompt every tenant sends): they are
// chained from the unsalted root, so every tenant's requests share them, and
// the tenant's salt is mixed into the chain at the first block after them, so
// nothing past the public prefix is shared across salts. With no public
// blocks (or no tenant salt) the chain is exactly RootKey(model, tenant) +
// HashBlock..., so existing keys are unchanged.
//
// Thread-safe: pure functions; a ModelFingerprintBuilder is one caller's.
#ifndef STRATA_CACHE_BLOCK_HASH_H_
#define STRATA_CACHE_BLOCK_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "common/kv_cache_spec.h"
#include "storage/block_key.h"

namespace strata::cache {

using storage::BlockKey;
using TokenId = int32_t;  // engine::TokenId

// 128 bits naming the model a cached block belongs to. Distinct from BlockKey
// so the two cannot be swapped by accident.
struct ModelFingerprint {
  uint64_t high = 0;
  uint64_t low = 0;

  friend bool operator==(const ModelFingerprint&, const ModelFingerprint&) = default;
  std::string ToHex() const { return BlockKey{high, low}.ToHex(); }
};

// How much of the weight bytes the fingerprint reads.
enum class WeightDigest {
  // Every byte: exact, at memory bandwidth (~0.3 s per 16 GB on our hosts,
  // more if the checkpoint is mmapped and not yet paged in).
  kFull,
  // Tensors up to 1 MiB in full; larger ones as 64 evenly spaced 4 KiB
  // windows plus their length. Any fine-tune or re-quantisation rewrites
  // essentially every window, so this tells checkpoints apart at a cost
  // independent of model size. It does not defend against a deliberate edit
  // of unsampled bytes: tenants are kept apart by the salt, not by this.
  kSampled,
};

// Accumulates what identifies a model, then yields its fingerprint. cache/
// does not link the model loader, so the caller feeds it:
//   builder.AddConfig(ModelConfigToJson(config).dump());   // canonical: sorted keys
//   for (const TensorView& t : ModelTensors(weights)) builder.AddTensor(...);
//   ModelFingerprint fp = std::move(builder).Finish(kv_dtype, block_size);
// Tensors may be added in any order (they are sorted by name at Finish).
class ModelFingerprintBuilder {
 public:
  explicit ModelFingerprintBuilder(WeightDigest digest = WeightDigest::kSampled)
      : digest_(digest) {}

  // `canonical_json` must be a deterministic dump (nlohmann's dump() sorts
  // object keys). May be called more than once; order matters.
  void AddConfig(std::string_view canonical_json);

  // One weight tensor: name, dtype, shape and (a digest of) its bytes, which
  // are read now and not kept.
  void AddTensor(std::string_view name, DType dtype, absl::Span<const int64_t> shape,
                 absl::Span<const std::byte> bytes);

  // KV dtype and block size are part of the identity: the same tokens give
  // different block contents under either change.
  ModelFingerprint Finish(DType kv_dtype, int64_t block_size) &&;

 private:
  WeightDigest digest_;
  std::string config_bytes_;
  // Each tensor's name and the digest of its metadata and bytes.
  std::vector<std::pair<std::string, BlockKey>> tensors_;
};

// The fingerprint a backend's blocks are keyed under: `model` qualified by
// how its arena lays out each head's K and V in a block (engine::KvLayout's
// name). Tiers hold blocks as bytes, meaningful only to an arena of the
// layout that wrote them, so a disk tier written by the CPU backend's bf16
// chunks is never read by a backend of token rows, or the other way round.
// "rows", the layout every block had before layouts were named, leaves the
// fingerprint as it was, so existing disk tiers stay valid.
ModelFingerprint WithKvLayout(const ModelFingerprint& model, std::string_view layout);

// Which chain a sequence's blocks are keyed in: its tenant's salt and how
// many of its leading full blocks are public. Borrows `tenant`: the caller
// keeps the string alive for as long as the CacheSalt is used. Implicit from
// a plain salt string, because that (no public blocks) is the common case.
struct CacheSalt {
  CacheSalt() = default;
  CacheSalt(std::string_view tenant_salt) : tenant(tenant_salt) {}    // NOLINT(runtime/explicit)
  CacheSalt(const char* tenant_salt) : tenant(tenant_salt) {}         // NOLINT(runtime/explicit)
  CacheSalt(const std::string& tenant_salt) : tenant(tenant_salt) {}  // NOLINT(runtime/explicit)
  CacheSalt(std::string_view tenant_salt, int64_t num_public_blocks)
      : tenant(tenant_salt), public_blocks(num_public_blocks) {}

  std::string_view tenant;    // empty: no tenant (the public chain throughout)
  int64_t public_blocks = 0;  // leading full blocks keyed under the empty salt
};

// The parent key of a sequence's first block. `salt` is the tenant's cache
// salt (empty for none); it is hashed, never stored.
BlockKey RootKey(const ModelFingerprint& model, std::string_view salt);

// The key of a block holding `tokens` (a full block; the caller passes exactly
// block_size ids) whose preceding blocks end in `parent` (RootKey for block 0).
BlockKey HashBlock(const BlockKey& parent, absl::Span<const TokenId> tokens);

// CacheBlend chunk identity: the key of the partial last block of a chunk
// cached on its own, holding `tokens` (fewer than block_size ids) after the
// chunk's full blocks, whose chain ends in `parent` (the ChainParent of the
// tail's index). A distinct tag keeps it apart from every full-block key, so
// a prefix lookup never finds it.
BlockKey ChunkTailKey(const BlockKey& parent, absl::Span<const TokenId> tokens);

// The key that block `index` of a chain under `salt` is hashed on (its
// HashBlock parent): the root for block 0 (the unsalted root when the chain
// starts with public blocks), else `previous`, the key of block index - 1,
// with the tenant's salt mixed in at the first block after the public ones.
BlockKey ChainParent(const ModelFingerprint& model, const CacheSalt& salt, int64_t index,
                     const BlockKey& previous);

}  // namespace strata::cache

#endif  // STRATA_CACHE_BLOCK_HASH_H_
