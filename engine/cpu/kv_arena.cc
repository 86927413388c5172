#include "engine/cpu/kv_arena.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "engine/block_moves.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace strata::engine::cpu {
namespace {

// Orders this thread's streaming stores before whatever reads the host
// bytes next (the tier's commit, possibly on another thread).
void FenceStreamingStores() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// Tier copies write with non-temporal stores: a demoted block goes to a
// lower tier and is not read again soon, by this step least of all, and a
// promoted block lands a slice at a time, far apart. Either way the stores
// write memory without first reading each destination line into the cache
// (memcpy's read-for-ownership) and without pushing out the weights and KV
// the forward pass reads next. Measured on an 18.9 MB demotion (blocks in
// one piece): about 1.6x faster than memcpy.
void CopyStreaming(std::byte* dst, const std::byte* src, size_t bytes) {
#if defined(__SSE2__)
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (aligned(dst) && aligned(src)) {
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
      const auto* s = reinterpret_cast<const __m128i*>(src + i);
      auto* d = reinterpret_cast<__m128i*>(dst + i);
      const __m128i a = _mm_load_si128(s), b = _mm_load_si128(s + 1);
      const __m128i c = _mm_load_si128(s + 2), e = _mm_load_si128(s + 3);
      _mm_stream_si128(d, a);
      _mm_stream_si128(d + 1, b);
      _mm_stream_si128(d + 2, c);
      _mm_stream_si128(d + 3, e);
    }
    if (i < bytes) std::memcpy(dst + i, src + i, bytes - i);
    return;
  }
#endif
  std::memcpy(dst, src, bytes);
}

}  // namespace

std::byte* AllocateHostBlockMemory(size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t alignment = bytes >= kHugePage ? kHugePage : 64;
  void* data = std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  if (data != nullptr && bytes >= kHugePage) {
    // Advice only: without THP the memory works in 4 KiB pages.
    (void)madvise(data, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);
  }
  return static_cast<std::byte*>(data);
}

absl::StatusOr<std::unique_ptr<KvArena>> KvArena::Create(const KvCacheSpec& spec,
                                                         int64_t num_blocks) {
  if (spec.num_layers <= 0 || spec.num_kv_heads <= 0 || spec.head_dim <= 0 ||
      spec.block_size <= 0 || num_blocks <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV arena dimensions must be positive: layers=", spec.num_layers,
                     " kv_heads=", spec.num_kv_heads, " head_dim=", spec.head_dim,
                     " block_size=", spec.block_size, " blocks=", num_blocks));
  }
  if (spec.dtype != DType::kBF16 && spec.dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV dtype must be BF16 or F32, got ", std::string(DTypeName(spec.dtype))));
  }
  const int64_t block_bytes = spec.BytesPerBlock();
  const size_t total = static_cast<size_t>(block_bytes) * static_cast<size_t>(num_blocks);
  // On 2 MiB boundaries and offered for transparent huge pages: attention
  // reads one head's slice of each block, which with 4 KiB pages and blocks
  // out of order costs a TLB miss per slice.
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t rounded = (total + kHugePage - 1) / kHugePage * kHugePage;
  void* data = std::aligned_alloc(kHugePage, rounded);
  if (data == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate a KV arena of ", rounded, " bytes"));
  }
  madvise(data, rounded, MADV_HUGEPAGE);  // a hint; ignored where THP is off
  // Zeroed so that reading a never-written slot is benign (it never happens
  // for valid plans, but keeps results deterministic if a bug did).
  std::memset(data, 0, rounded);
  return std::unique_ptr<KvArena>(new KvArena(spec, num_blocks, static_cast<std::byte*>(data)));
}

KvArena::KvArena(const KvCacheSpec& spec, int64_t num_blocks, std::byte* data)
    : spec_(spec),
      layout_(KvLayoutFor(spec)),
      num_blocks_(num_blocks),
      bytes_per_block_(spec.BytesPerBlock()),
      bytes_per_head_(spec.block_size * spec.head_dim *
                      static_cast<int64_t>(DTypeSize(spec.dtype))),
      data_(data) {}

KvArena::~KvArena() { std::free(data_); }

const std::byte* KvArena::Run(BlockId block, int64_t run) const {
  CHECK(block >= 0 && block < num_blocks_);
  const auto index = static_cast<size_t>(run * num_blocks_ + block);
  return data_ + index * static_cast<size_t>(bytes_per_head_);
}

std::byte* KvArena::Run(BlockId block, int64_t run) {
  return const_cast<std::byte*>(std::as_const(*this).Run(block, run));
}

std::byte* KvArena::HeadData(BlockId block, int64_t layer, bool is_value, int64_t kv_head) {
  return const_cast<std::byte*>(std::as_const(*this).HeadData(block, layer, is_value, kv_head));
}

const std::byte* KvArena::HeadData(BlockId block, int64_t layer, bool is_value,
                                   int64_t kv_head) const {
  return Run(block, (layer * 2 + (is_value ? 1 : 0)) * spec_.num_kv_heads + kv_head);
}

void KvArena::ReadBlock(BlockId block, std::byte* image) const {
  for (int64_t run = 0; run < num_runs(); ++run) {
    std::memcpy(image + run * bytes_per_head_, Run(block, run),
                static_cast<size_t>(bytes_per_head_));
  }
}

void KvArena::WriteBlock(BlockId block, const std::byte* image) {
  for (int64_t run = 0; run < num_runs(); ++run) {
    std::memcpy(Run(block, run), image + run * bytes_per_head_,
                static_cast<size_t>(bytes_per_head_));
  }
}

void KvArena::ReadRow(BlockId block, int64_t layer, bool is_value, int64_t kv_head, int64_t slot,
                      float* out) const {
  ReadKvRow(HeadData(block, layer, is_value, kv_head), spec_.dtype, layout_, is_value, slot,
            spec_.head_dim, out);
}

void KvArena::WriteRow(BlockId block, int64_t layer, bool is_value, int64_t kv_head, int64_t slot,
                       const float* row) {
  WriteKvRow(HeadData(block, layer, is_value, kv_head), spec_.dtype, layout_, is_value, slot,
             spec_.head_dim, row);
}

template <typename Visit>
void KvArena::ForEachHeadElement(bool is_value, Visit&& visit) const {
  const int64_t d = spec_.head_dim;
  for (int64_t t = 0; t < spec_.block_size; ++t) {
    for (int64_t i = 0; i < d; ++i) visit(t * d + i, KvElementIndex(layout_, is_value, t, i, d));
  }
}

void KvArena::ExportRows(BlockId block, std::byte* rows) const {
  if (layout_ == KvLayout::kRows) {
    ReadBlock(block, rows);
    return;
  }
  const int64_t head_elements = bytes_per_head_ / 2;  // chunks: bf16
  for (int64_t run = 0; run < num_runs(); ++run) {
    const auto* src = reinterpret_cast<const uint16_t*>(Run(block, run));
    auto* dst = reinterpret_cast<uint16_t*>(rows) + run * head_elements;
    const bool is_value = run / spec_.num_kv_heads % 2 == 1;
    ForEachHeadElement(is_value, [&](int64_t row, int64_t here) { dst[row] = src[here]; });
  }
}

void KvArena::ImportRows(BlockId block, const std::byte* rows) {
  if (layout_ == KvLayout::kRows) {
    WriteBlock(block, rows);
    return;
  }
  const int64_t head_elements = bytes_per_head_ / 2;
  for (int64_t run = 0; run < num_runs(); ++run) {
    const auto* src = reinterpret_cast<const uint16_t*>(rows) + run * head_elements;
    auto* dst = reinterpret_cast<uint16_t*>(Run(block, run));
    const bool is_value = run / spec_.num_kv_heads % 2 == 1;
    ForEachHeadElement(is_value, [&](int64_t row, int64_t here) { dst[here] = src[row]; });
  }
}

absl::Status KvArena::ValidateMoves(absl::Span<const BlockMove> moves) const {
  return ValidateBlockMoves(moves, num_blocks_, bytes_per_block_);
}

void KvArena::CopySlices(const BlockMove& move, int64_t first, int64_t last) {
  const auto bytes = static_cast<size_t>(bytes_per_head_);
  for (int64_t run = first; run < last; ++run) {
    const size_t at = static_cast<size_t>(run) * bytes;
    switch (move.kind) {
      case BlockMoveKind::kCopy:
        if (move.src != move.dst) std::memcpy(Run(move.dst, run), Run(move.src, run), bytes);
        break;
      case BlockMoveKind::kDeviceToHost:
        CopyStreaming(move.host_dst.data() + at, Run(move.src, run), bytes);
        break;
      case BlockMoveKind::kHostToDevice:
        // Non-temporal too: a slice is a few KiB far from the block's next
        // one, and without them each line is first read for ownership (2k
        // tokens of KV, 128 blocks, promoted at 23 GB/s that way, 30 this).
        CopyStreaming(Run(move.dst, run), move.host_src.data() + at, bytes);
        break;
    }
  }
}

namespace {

// Whether `batch`, copies or promotions, may run in any order: promotions
// each write one block from a host span of their own, unless two name the
// same block (then the later must win). (Demotions always may: each reads
// its block into a host span of its own.)
bool Independent(absl::Span<const BlockMove> batch) {
  if (batch.front().kind == BlockMoveKind::kCopy) return false;  // a copy may read another's dst
  absl::flat_hash_set<BlockId> written;
  for (const BlockMove& move : batch) {
    if (!written.insert(move.dst).second) return false;
  }
  return true;
}

}  // namespace

absl::Status KvArena::CopyBlocks(absl::Span<const BlockMove> moves, ThreadPool* pool) {
  if (absl::Status valid = ValidateMoves(moves); !valid.ok()) return valid;
  // Batches of one kind in plan order (a demotion reads a block before a
  // promotion overwrites it). Within a batch of independent tier moves the
  // pool's threads share the work, up to twice one thread's bandwidth on
  // the host hit's path:
  //  - demotions go a run at a time, each run's slices of all the batch's
  //    blocks, which lie side by side in the arena when the blocks do (the
  //    host side takes streaming stores wherever they land);
  //  - promotions a block at a time: its image is read in order, and its
  //    slices land with streaming stores.
  // (Both the other way round moved 2k tokens of KV at 23-25 GB/s against
  // 30-31, as fast as whole blocks did when a block lay in one piece.)
  for (size_t begin = 0; begin < moves.size();) {
    size_t end = begin + 1;
    while (end < moves.size() && moves[end].kind == moves[begin].kind) ++end;
    const absl::Span<const BlockMove> batch = moves.subspan(begin, end - begin);
    const bool parallel = pool != nullptr && pool->size() > 1 && batch.size() > 1;
    if (batch.front().kind == BlockMoveKind::kDeviceToHost) {
      const auto by_runs = [&](int64_t first, int64_t last) {
        for (int64_t run = first; run < last; ++run) {
          for (const BlockMove& move : batch) CopySlices(move, run, run + 1);
        }
        FenceStreamingStores();
      };
      if (parallel) {
        pool->ParallelFor(num_runs(), 1, by_runs);
      } else {
        by_runs(0, num_runs());
      }
    } else if (parallel && Independent(batch)) {
      pool->ParallelFor(static_cast<int64_t>(batch.size()), 1, [&](int64_t first, int64_t last) {
        for (int64_t i = first; i < last; ++i)
          CopySlices(batch[static_cast<size_t>(i)], 0, num_runs());
        FenceStreamingStores();
      });
    } else {
      for (const BlockMove& move : batch) CopySlices(move, 0, num_runs());
    }
    begin = end;
  }
  FenceStreamingStores();
  return absl::OkStatus();
}

}  // namespace strata::engine::cpu
