#include "engine/cuda/device_memory.h"

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"

namespace strata::engine::cuda {

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes) {
  DeviceBuffer buffer;
  if (bytes == 0) return buffer;
  void* data = nullptr;
  const cudaError_t error = cudaMalloc(&data, bytes);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", bytes, " bytes of device memory: ", cudaGetErrorString(error)));
  }
  buffer.data_ = data;
  buffer.size_ = bytes;
  return buffer;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) (void)cudaFree(data_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) (void)cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

absl::StatusOr<bool> DeviceBuffer::Reserve(size_t bytes) {
  if (bytes <= size_) return false;
  *this = DeviceBuffer();  // free first, so the old and new never coexist
  absl::StatusOr<DeviceBuffer> grown = Allocate(bytes);
  if (!grown.ok()) return grown.status();
  *this = *std::move(grown);
  return true;
}

absl::StatusOr<std::unique_ptr<PinnedBuffer>> PinnedBuffer::Allocate(size_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("host buffer of 0 bytes");
  void* data = nullptr;
  const cudaError_t error =
      cudaHostAlloc(&data, bytes, cudaHostAllocPortable | cudaHostAllocMapped);
  if (error != cudaSuccess) {
    (void)cudaGetLastError();
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot allocate ", bytes, " bytes of pinned host memory: ", cudaGetErrorString(error)));
  }
  return std::unique_ptr<PinnedBuffer>(new PinnedBuffer(static_cast<std::byte*>(data), bytes));
}

PinnedBuffer::~PinnedBuffer() { (void)cudaFreeHost(data_); }

absl::StatusOr<Stream> Stream::Create() {
  Stream stream;
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream.stream_, cudaStreamNonBlocking));
  return stream;
}

Stream::~Stream() {
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

absl::StatusOr<Event> Event::Create(bool timing) {
  Event event;
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaEventCreateWithFlags(&event.event_, timing ? cudaEventDefault : cudaEventDisableTiming));
  return event;
}

Event::~Event() {
  if (event_ != nullptr) (void)cudaEventDestroy(event_);
}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

}  // namespace strata::engine::cuda
