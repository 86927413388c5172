// 64-byte aligned heap bytes for packed weights and GEMM inputs, so that
// full-vector loads never straddle a cache line.
#ifndef STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_
#define STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <vector>

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
  // Buffers of several MiB (GEMM inputs, activations) are placed on 2 MiB
  // boundaries and offered to the kernel for transparent huge pages: with
  // 4 KiB pages every few KiB touched would cost a TLB miss. (Packed weights
  // have their own huge-page slabs, weight_slabs.h; the KV arena its own
  // allocation, kv_arena.h.)
  explicit AlignedBuffer(size_t bytes) : size_(bytes) {
    data_.reset(static_cast<std::byte*>(Allocate(bytes)));
  }
  // Replaces the buffer with a new one of `bytes` (contents lost) when it
  // holds fewer: per-thread scratch that grows to the largest use and stays.
  void GrowTo(size_t bytes) {
    if (size_ < bytes) *this = AlignedBuffer(bytes);
  }
  std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data_.get());
  }

  // `bytes` and a spare cache line, 64-byte aligned, from kHugeThreshold up
  // on 2 MiB boundaries with huge pages asked for; released with std::free.
  static void* Allocate(size_t bytes) {
    const bool huge = bytes >= kHugeThreshold;
    const size_t align = huge ? kHugePage : 64;
    const size_t total = (bytes + 64 + align - 1) / align * align;
    void* p = std::aligned_alloc(align, total);
    CHECK(p != nullptr);
    if (huge) AdviseHugePages(p, total);
    return p;
  }
  static constexpr size_t kHugePage = size_t{2} << 20;
  static constexpr size_t kHugeThreshold = size_t{4} << 20;

 private:
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

// A std::vector allocator with AlignedBuffer's placement, for the forward
// pass's activations. A prefill's are tens of MB (2k tokens: the gate/up
// output alone is 33 MB), which malloc maps in 4 KiB pages; the GEMM writes
// its output a row (16 KiB) apart, a TLB miss per row written, and ran a
// fifth slower than into huge pages.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(AlignedBuffer::Allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t) { std::free(p); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

// fp32 activations of a forward pass, [rows, width].
using ActivationVector = std::vector<float, HugePageAllocator<float>>;

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_
