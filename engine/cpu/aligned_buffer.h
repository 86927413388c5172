// 64-byte aligned heap bytes for packed weights and GEMM inputs, so that
// full-vector loads never straddle a cache line.
#ifndef STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_
#define STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "common/check.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace strata::engine::cpu {

// Owns its memory; movable, not copyable. Contents start uninitialised.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // One spare cache line at the end lets kernels over-read a row tail.
  // Buffers of several MiB (packed weights, the KV arena) are placed on 2 MiB
  // boundaries and offered to the kernel for transparent huge pages: decode
  // streams them whole, and with 4 KiB pages every few KiB read would cost a
  // TLB miss (a KV head slice of one block is 2 KiB in its own page).
  explicit AlignedBuffer(size_t bytes) : size_(bytes) {
    const bool huge = bytes >= kHugeThreshold;
    const size_t align = huge ? kHugePage : 64;
    const size_t total = (bytes + 64 + align - 1) / align * align;
    void* p = std::aligned_alloc(align, total);
    CHECK(p != nullptr);
    if (huge) AdviseHugePages(p, total);
    data_.reset(static_cast<std::byte*>(p));
  }
  std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data_.get());
  }

 private:
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kHugeThreshold = size_t{4} << 20;
  // A hint: ignored where THP is off ("never") or unsupported.
  static void AdviseHugePages(void* p, size_t bytes) {
#if defined(__linux__)
    madvise(p, bytes, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
  }
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_
