// AMX (amx-bf16) path of the GEMM for the bf16 modes. Each output element is
// one fp32 lane of a C tile that runs over k in blocks of 32, in order, with
// tdpbf16ps (split precision: the hi block, then the lo block); rows are
// independent lanes, so a row's result does not depend on m, on the tile it
// lands in or on the tile's configured height. Used for every m, decode
// included, so that prefill and decode round alike. fp32 weights (kF32) use
// the AVX-512 kernels.
//
// A rows are copied into a per-thread scratch with k padded to 32 (zeros),
// which also keeps a hot copy of A for all panels of a thread. The copy is
// laid out tile by tile ([16-row group][k block][16 rows][32]), so that each
// A tile load reads 1 KiB of consecutive bytes rather than 16 rows a whole
// row of k apart.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/gemm_kernels.h"

namespace strata::engine::cpu::gemm_internal {
namespace {

#define STRATA_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq")))

constexpr int64_t kTileRows = 16;
constexpr int64_t kKBlock = 32;                      // bf16 per 64-byte tile row
constexpr int64_t kTileElems = kTileRows * kKBlock;  // one packed A tile

// Tiles: 0, 1 = C of rows 0-15 (panel columns 0-15, 16-31); 2, 3 = C of rows
// 16-31; 4, 5 = A of those row groups; 6, 7 = B halves of the panel.
STRATA_AMX void Configure(int rows0, int rows1) {
  AmxTileConfig config;
  for (int t = 0; t < 8; ++t) config.colsb[t] = 64;
  config.rows[0] = config.rows[1] = config.rows[4] = static_cast<uint8_t>(rows0);
  config.rows[2] = config.rows[3] = config.rows[5] = static_cast<uint8_t>(rows1);
  if (rows1 == 0) config.colsb[2] = config.colsb[3] = config.colsb[5] = 0;
  config.rows[6] = config.rows[7] = kTileRows;
  _tile_loadconfig(&config);
}

struct Scratch {
  AlignedBuffer a;        // [rows][kpad] hi, then [rows][kpad] lo
  AlignedBuffer c;        // 4 C tiles of 16 x 16 fp32
  AlignedBuffer partial;  // per 32-row block, its 4 C tiles between k ranges
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  scratch.c.GrowTo(4 * 256 * sizeof(float));
  return scratch;
}

float* PartialScratch(int64_t blocks) {
  Scratch& scratch = ThreadScratch();
  const size_t need = static_cast<size_t>(blocks) * 1024 * sizeof(float);
  scratch.partial.GrowTo(need);
  return scratch.partial.as<float>();
}

// Bytes of weights requested ahead of the tile loads when few rows share
// them (decode): the stream is then bound by memory, and the hardware
// prefetchers alone leave part of the bandwidth unused.
constexpr int64_t kStreamAhead = 16384;

// One block of up to 32 rows (two row groups when kTwo) against one panel;
// the products go to scratch C tiles. kStream prefetches the weights ahead.
// `hi` and `lo` point at the block's first row group in the packed layout;
// its second group follows kpad * 16 elements later. Only k blocks
// [kb0, kb1) are taken (all when kb1 < 0), added to the sums at `from`
// (tiles laid out as in `c`) or to zero.
template <bool kTwo, bool kSplit, bool kStream = false>
STRATA_AMX void Block(const uint16_t* hi, const uint16_t* lo, int64_t kpad, const uint16_t* b,
                      float* c, int64_t kb0 = 0, int64_t kb1 = -1, const float* from = nullptr) {
  const int64_t group = kpad * kTileRows;  // elements per packed row group
  if (kb1 < 0) kb1 = kpad / kKBlock;
  if (from == nullptr) {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (kTwo) {
      _tile_zero(2);
      _tile_zero(3);
    }
  } else {  // resume sums stored by the previous k range: fp32 stores and loads are exact
    _tile_loadd(0, from, 64);
    _tile_loadd(1, from + 256, 64);
    if constexpr (kTwo) {
      _tile_loadd(2, from + 512, 64);
      _tile_loadd(3, from + 768, 64);
    }
  }
  for (int64_t kb = kb0; kb < kb1; ++kb) {
    const uint16_t* bk = b + kb * kTileRows * 64;  // 16 pairs x 32 columns
    if constexpr (kStream) {
      const char* ahead = reinterpret_cast<const char*>(bk) + kStreamAhead;
      for (int line = 0; line < kTileRows * 128; line += 64) {
        _mm_prefetch(ahead + line, _MM_HINT_T0);
      }
    }
    _tile_loadd(6, bk, 128);
    _tile_loadd(7, bk + 32, 128);
    _tile_loadd(4, hi + kb * kTileElems, 64);
    if constexpr (kTwo) _tile_loadd(5, hi + group + kb * kTileElems, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if constexpr (kTwo) {
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    if constexpr (kSplit) {
      _tile_loadd(4, lo + kb * kTileElems, 64);
      if constexpr (kTwo) _tile_loadd(5, lo + group + kb * kTileElems, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      if constexpr (kTwo) {
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  _tile_stored(0, c, 64);
  _tile_stored(1, c + 256, 64);
  if constexpr (kTwo) {
    _tile_stored(2, c + 512, 64);
    _tile_stored(3, c + 768, 64);
  }
}

// Scratch C tiles -> rows [0, rows) of the panel's columns in C.
STRATA_AMX void WriteOut(const float* tiles, int64_t rows, float* c, int64_t ldc, int64_t n_left,
                         bool accumulate) {
  for (int half = 0; half < 2; ++half) {
    const int64_t left = ColumnsLeft(n_left, half * 16);
    if (left == 0) continue;
    const __mmask16 mask =
        left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    for (int64_t r = 0; r < rows; ++r) {
      const float* src = tiles + ((r / kTileRows) * 2 + half) * 256 + (r % kTileRows) * 16;
      float* dst = c + r * ldc + half * 16;
      __m512 v = _mm512_loadu_ps(src);
      if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, dst), v);
      _mm512_mask_storeu_ps(dst, mask, v);
    }
  }
}

// Rows of the packed layout: whole row groups (the tail group's unused rows
// are never loaded: the tile configuration gives its height).
int64_t PackedRows(int64_t rows) { return (rows + kTileRows - 1) / kTileRows * kTileRows; }

// Copies rows [0, rows) of a (row stride lda) to dst in the packed layout
// (see the top), zeroing columns k..kpad. Row r's k block kb lands at
// ((r / 16) * kpad * 16) + kb * 512 + (r % 16) * 32, so that row group g
// starts at g * 16 * kpad, as a plain [row][kpad] copy would.
void PackRows(const uint16_t* a, int64_t lda, int64_t rows, int64_t k, int64_t kpad,
              uint16_t* dst) {
  const int64_t full_blocks = k / kKBlock;
  const int64_t tail = k - full_blocks * kKBlock;
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* src = a + r * lda;
    uint16_t* row = dst + (r / kTileRows) * kpad * kTileRows + (r % kTileRows) * kKBlock;
    for (int64_t kb = 0; kb < full_blocks; ++kb) {
      std::memcpy(row + kb * kTileElems, src + kb * kKBlock, kKBlock * 2);
    }
    if (tail > 0) {
      uint16_t* last = row + full_blocks * kTileElems;
      std::memcpy(last, src + full_blocks * kKBlock, static_cast<size_t>(tail) * 2);
      std::memset(last + tail, 0, static_cast<size_t>(kKBlock - tail) * 2);
    }
  }
}

// k blocks per range in KRangedPanel: a panel's slice (kKRange x 32 columns,
// 16 KiB) stays in L1 while every 32-row block of the pass meets it, next to
// that block's 16 KiB slice of A. Over the whole k, a panel (48 KiB at
// k = 768) and A's block each came from L2 for every block: 4 KiB of loads
// per four tile products, more than L2 feeds in the time they take.
constexpr int64_t kKRange = 8;

// One panel against `rows` rows (whole 32-row blocks) of the packed scratch,
// k range by k range; each block's sums wait in `partial` between ranges.
// Every output element still accumulates its k blocks in order (hi before
// lo), so the result is bitwise that of one pass over k.
template <bool kSplit>
STRATA_AMX void KRangedPanel(const AmxProblem& pr, const uint16_t* hi, const uint16_t* lo,
                             int64_t kpad, int64_t row0, int64_t rows, const uint16_t* b, int64_t p,
                             float* tiles) {
  float* partial = PartialScratch(rows / 32);
  const int64_t kblocks = kpad / kKBlock;
  for (int64_t kb0 = 0; kb0 < kblocks; kb0 += kKRange) {
    const int64_t kb1 = std::min(kblocks, kb0 + kKRange);
    for (int64_t r = 0; r < rows; r += 32) {
      float* sums = partial + (r / 32) * 1024;
      float* dst = kb1 == kblocks ? tiles : sums;
      Block<true, kSplit>(hi + r * kpad, kSplit ? lo + r * kpad : nullptr, kpad, b, dst, kb0, kb1,
                          kb0 == 0 ? nullptr : sums);
      if (kb1 == kblocks) {
        WriteOut(tiles, 32, pr.c + (row0 + r) * pr.ldc + p * 32, pr.ldc, pr.n - p * 32,
                 pr.accumulate);
      }
    }
  }
}

// Row blocks [first, first + rows) of the packed scratch against panels
// [p0, p1), all blocks of exactly `block_rows` rows (<= 32).
template <bool kSplit>
STRATA_AMX void Blocks(const AmxProblem& pr, const uint16_t* hi, const uint16_t* lo, int64_t kpad,
                       int64_t row0, int64_t rows, int64_t block_rows, int64_t p0, int64_t p1,
                       float* tiles) {
  const int rows0 = static_cast<int>(std::min<int64_t>(block_rows, kTileRows));
  const int rows1 = static_cast<int>(block_rows - rows0);
  Configure(rows0, rows1);
  const int64_t kblocks = kpad / kKBlock;
  for (int64_t p = p0; p < p1; ++p) {
    const uint16_t* b = pr.b + p * pr.panel_stride;
    if (rows1 > 0 && rows > block_rows && kblocks > kKRange) {
      KRangedPanel<kSplit>(pr, hi, lo, kpad, row0, rows, b, p, tiles);
      continue;
    }
    for (int64_t r = 0; r < rows; r += block_rows) {
      if (rows1 > 0) {
        Block<true, kSplit>(hi + r * kpad, kSplit ? lo + r * kpad : nullptr, kpad, b, tiles);
      } else if (rows == block_rows) {  // one row group: each panel is read once, from memory
        Block<false, kSplit, true>(hi + r * kpad, kSplit ? lo + r * kpad : nullptr, kpad, b, tiles);
      } else {
        Block<false, kSplit>(hi + r * kpad, kSplit ? lo + r * kpad : nullptr, kpad, b, tiles);
      }
      WriteOut(tiles, block_rows, pr.c + (row0 + r) * pr.ldc + p * 32, pr.ldc, pr.n - p * 32,
               pr.accumulate);
    }
  }
}

template <bool kSplit>
STRATA_AMX void Range(const AmxProblem& pr, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const int64_t kpad = (pr.k + kKBlock - 1) / kKBlock * kKBlock;
  const int64_t copies = kSplit ? 2 : 1;
  // Rows per pass: ~1 MiB of packed A stays in L2 while the panels stream.
  const int64_t block = std::max<int64_t>(32, (int64_t{1} << 20) / (kpad * 2 * copies) / 32 * 32);
  Scratch& scratch = ThreadScratch();
  const size_t need = static_cast<size_t>(PackedRows(std::min(block, m1 - m0)) * kpad * 2 * copies);
  scratch.a.GrowTo(need);
  auto* tiles = scratch.c.as<float>();
  for (int64_t mb = m0; mb < m1; mb += block) {
    const int64_t rows = std::min(block, m1 - mb);
    auto* hi = scratch.a.as<uint16_t>();
    uint16_t* lo = hi + PackedRows(rows) * kpad;
    PackRows(pr.a + mb * pr.lda, pr.lda, rows, pr.k, kpad, hi);
    if constexpr (kSplit) PackRows(pr.a_lo + mb * pr.lda, pr.lda, rows, pr.k, kpad, lo);
    const int64_t full = rows / 32 * 32;
    if (full > 0) Blocks<kSplit>(pr, hi, lo, kpad, mb, full, 32, p0, p1, tiles);
    if (rows > full) {
      Blocks<kSplit>(pr, hi + full * kpad, lo + full * kpad, kpad, mb + full, rows - full,
                     rows - full, p0, p1, tiles);
    }
  }
  _tile_release();
}

}  // namespace

bool AmxUsable() {
  static const bool usable = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-bf16") || !__builtin_cpu_supports("amx-tile") ||
        !__builtin_cpu_supports("avx512bf16")) {
      return false;
    }
    // Linux grants the 8 KiB of tile state per process on request.
    constexpr int kArchReqXcompPerm = 0x1023;
    constexpr int kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}

void AmxRange(const AmxProblem& problem, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  if (m0 >= m1 || p0 >= p1) return;
  if (problem.a_lo != nullptr) {
    Range<true>(problem, m0, m1, p0, p1);
  } else {
    Range<false>(problem, m0, m1, p0, p1);
  }
}

}  // namespace strata::engine::cpu::gemm_internal
