// 64-byte aligned heap bytes for packed weights and GEMM inputs, so that
// full-vector loads never straddle a cache line.
#ifndef STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_
#define STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "common/check.h"

namespace strata::engine::cpu {

// Owns its memory; movable, not copyable. Contents start uninitialised.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // One spare cache line at the end lets kernels over-read a row tail.
  explicit AlignedBuffer(size_t bytes) : size_(bytes) {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    CHECK(p != nullptr);
    data_.reset(static_cast<std::byte*>(p));
  }
  std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data_.get());
  }

 private:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ALIGNED_BUFFER_H_
