// Helpers for the kernel tests (tests/kernels, label "gpu"): device arrays
// filled from host vectors, poisoned outputs (every byte 0xFF, a NaN in
// fp32 and bf16, so an unwritten element fails the comparison), bf16
// conversions through the CPU backend's own routines, and random data.
#ifndef STRATA_TESTS_KERNELS_KERNEL_TEST_UTIL_H_
#define STRATA_TESTS_KERNELS_KERNEL_TEST_UTIL_H_

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "common/check.h"
#include "engine/cpu/simd.h"
#include "engine/cuda/device_memory.h"
#include "gtest/gtest.h"

namespace strata::kernels::testing {

template <typename T>
class DeviceArray {
 public:
  // n elements, every byte 0xFF.
  explicit DeviceArray(size_t n) : size_(n) {
    auto buffer = engine::cuda::DeviceBuffer::Allocate(std::max<size_t>(n * sizeof(T), 256));
    CHECK(buffer.ok());
    buffer_ = *std::move(buffer);
    CHECK(cudaMemset(buffer_.data(), 0xFF, buffer_.size()) == cudaSuccess);
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { Upload(host); }

  void Upload(const std::vector<T>& host) {
    CHECK(host.size() <= size_);
    CHECK(cudaMemcpy(buffer_.data(), host.data(), host.size() * sizeof(T),
                     cudaMemcpyHostToDevice) == cudaSuccess);
  }
  std::vector<T> Download() const {
    std::vector<T> host(size_);
    CHECK(cudaMemcpy(host.data(), buffer_.data(), size_ * sizeof(T), cudaMemcpyDeviceToHost) ==
          cudaSuccess);
    return host;
  }
  T* get() const { return buffer_.as<T>(); }
  size_t size() const { return size_; }

 private:
  engine::cuda::DeviceBuffer buffer_;
  size_t size_;
};

// Launch result and completion both succeeded.
inline void ExpectRan(cudaError_t launch) {
  EXPECT_EQ(launch, cudaSuccess) << cudaGetErrorString(launch);
  const cudaError_t done = cudaDeviceSynchronize();
  EXPECT_EQ(done, cudaSuccess) << cudaGetErrorString(done);
}

inline std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> out(n);
  for (float& v : out) v = dist(rng);
  return out;
}

inline std::vector<uint16_t> ToBf16(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  engine::cpu::ConvertF32ToBf16(values.data(), bits.data(), static_cast<int64_t>(values.size()));
  return bits;
}

inline std::vector<float> FromBf16(const std::vector<uint16_t>& bits) {
  std::vector<float> values(bits.size());
  engine::cpu::ConvertBf16ToF32(bits.data(), values.data(), static_cast<int64_t>(bits.size()));
  return values;
}

// Rounds through bf16 and back, as a value stored in bf16 reads.
inline std::vector<float> RoundBf16(const std::vector<float>& values) {
  return FromBf16(ToBf16(values));
}

// ||a - b|| / ||b||; fails (returns infinity) on NaN or a size mismatch.
inline double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (std::isnan(d)) return INFINITY;
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace strata::kernels::testing

#endif  // STRATA_TESTS_KERNELS_KERNEL_TEST_UTIL_H_
