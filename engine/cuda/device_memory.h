// RAII owners of CUDA resources for the CUDA backend: device allocations,
// pinned host buffers (engine::HostBuffer), streams and events. Each owns
// its handle, frees it on destruction, and is move-only. None is
// thread-safe; the CUDA backend uses them from its engine thread, except
// PinnedBuffer, whose memory any thread may read or write.
#ifndef STRATA_ENGINE_CUDA_DEVICE_MEMORY_H_
#define STRATA_ENGINE_CUDA_DEVICE_MEMORY_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "engine/backend.h"

namespace strata::engine::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // RESOURCE_EXHAUSTED when the device has no room; 0 bytes gives an empty buffer.
  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  // Reallocates (contents lost) when smaller than `bytes`; true if it did.
  absl::StatusOr<bool> Reserve(size_t bytes);

 private:
  void* data_ = nullptr;  // cudaMalloc'd, 256-byte aligned
  size_t size_ = 0;
};

// Page-locked host memory (cudaHostAlloc, portable and mapped), the memory
// the device copies to and from at full PCIe bandwidth.
class PinnedBuffer : public HostBuffer {
 public:
  // RESOURCE_EXHAUSTED when the memory cannot be pinned; INVALID_ARGUMENT for 0 bytes.
  static absl::StatusOr<std::unique_ptr<PinnedBuffer>> Allocate(size_t bytes);
  ~PinnedBuffer() override;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  std::byte* data() override { return data_; }
  size_t size() const override { return size_; }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(data_);
  }

 private:
  PinnedBuffer(std::byte* data, size_t size) : data_(data), size_(size) {}
  std::byte* data_;  // cudaHostAlloc'd
  size_t size_;
};

class Stream {
 public:
  static absl::StatusOr<Stream> Create();  // non-blocking w.r.t. the legacy stream
  Stream() = default;
  ~Stream();
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

class Event {
 public:
  static absl::StatusOr<Event> Create(bool timing = false);
  Event() = default;
  ~Event();
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_DEVICE_MEMORY_H_
