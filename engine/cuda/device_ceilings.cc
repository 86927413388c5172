#include "engine/cuda/device_ceilings.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cublaslt_gemm.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/device_probe.h"

namespace strata::engine::cuda {
namespace {

constexpr int kWarmup = 3;
constexpr int kReps = 15;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Fills `bytes` of device memory with random bf16 values in [-1, 1): never
// time on zeros.
absl::Status FillRandom(void* device, size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint16_t> host(std::min<size_t>(bytes / 2, size_t{1} << 24));
  for (uint16_t& v : host) {
    const float f = dist(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    v = static_cast<uint16_t>(bits >> 16);
  }
  for (size_t offset = 0; offset < bytes; offset += host.size() * 2) {
    const size_t n = std::min(host.size() * 2, bytes - offset);
    STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpy(static_cast<std::byte*>(device) + offset, host.data(), n,
                                           cudaMemcpyHostToDevice));
  }
  return absl::OkStatus();
}

// Median seconds of `body` (which enqueues on `stream`) over kReps timed runs.
template <typename Body>
absl::StatusOr<double> TimeMedian(cudaStream_t stream, Body body) {
  absl::StatusOr<Event> start = Event::Create(true);
  if (!start.ok()) return start.status();
  absl::StatusOr<Event> stop = Event::Create(true);
  if (!stop.ok()) return stop.status();
  for (int i = 0; i < kWarmup; ++i) STRATA_RETURN_IF_ERROR(body());
  std::vector<double> samples;
  for (int i = 0; i < kReps; ++i) {
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(start->get(), stream));
    STRATA_RETURN_IF_ERROR(body());
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(stop->get(), stream));
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop->get()));
    float ms = 0;
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start->get(), stop->get()));
    samples.push_back(ms / 1e3);
  }
  return Median(samples);
}

absl::StatusOr<double> MatmulFlops(CublasLtGemm& gemm, int64_t m, int64_t n, int64_t k,
                                   cudaStream_t stream) {
  // Several operand sets, rotated, so the timing does not measure L2.
  constexpr int kSets = 3;
  std::vector<DeviceBuffer> weights, acts, outs;
  for (int i = 0; i < kSets; ++i) {
    absl::StatusOr<DeviceBuffer> w = DeviceBuffer::Allocate(static_cast<size_t>(n * k * 2));
    absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(static_cast<size_t>(m * k * 2));
    absl::StatusOr<DeviceBuffer> o = DeviceBuffer::Allocate(static_cast<size_t>(m * n * 2));
    if (!w.ok()) return w.status();
    if (!a.ok()) return a.status();
    if (!o.ok()) return o.status();
    STRATA_RETURN_IF_ERROR(FillRandom(w->data(), w->size(), 11 + i));
    STRATA_RETURN_IF_ERROR(FillRandom(a->data(), a->size(), 23 + i));
    weights.push_back(*std::move(w));
    acts.push_back(*std::move(a));
    outs.push_back(*std::move(o));
  }
  int set = 0;
  absl::StatusOr<double> seconds = TimeMedian(stream, [&]() -> absl::Status {
    const int i = set++ % kSets;
    return gemm.Matmul({.weight = weights[i].data(),
                        .act = acts[i].data(),
                        .out = outs[i].data(),
                        .m = m,
                        .n = n,
                        .k = k,
                        .out_bf16 = true},
                       stream);
  });
  if (!seconds.ok()) return seconds.status();
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) / *seconds;
}

}  // namespace

absl::StatusOr<DeviceCeilings> MeasureDeviceCeilings(int64_t m, int64_t n, int64_t k) {
  const CudaProbe& probe = ProbeCudaDevices();
  if (!probe.available()) {
    return absl::FailedPreconditionError(absl::StrCat("CUDA backend unavailable: ", probe.error));
  }
  DeviceCeilings out;
  cudaDeviceProp prop{};
  STRATA_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, 0));
  out.device_name = prop.name;
  out.sm_count = prop.multiProcessorCount;
  out.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  absl::StatusOr<Stream> stream = Stream::Create();
  if (!stream.ok()) return stream.status();
  cudaStream_t s = stream->get();

  const size_t copy_bytes = size_t{1} << 30;
  {
    absl::StatusOr<DeviceBuffer> src = DeviceBuffer::Allocate(copy_bytes);
    if (!src.ok()) return src.status();
    absl::StatusOr<DeviceBuffer> dst = DeviceBuffer::Allocate(copy_bytes);
    if (!dst.ok()) return dst.status();
    STRATA_RETURN_IF_ERROR(FillRandom(src->data(), copy_bytes, 1));
    absl::StatusOr<double> seconds = TimeMedian(s, [&]() -> absl::Status {
      return CudaStatus(
          cudaMemcpyAsync(dst->data(), src->data(), copy_bytes, cudaMemcpyDeviceToDevice, s),
          "cudaMemcpyAsync D2D");
    });
    if (!seconds.ok()) return seconds.status();
    out.hbm_bytes_per_second = 2.0 * static_cast<double>(copy_bytes) / *seconds;
  }
  {
    const size_t bytes = size_t{256} << 20;
    absl::StatusOr<std::unique_ptr<PinnedBuffer>> host = PinnedBuffer::Allocate(bytes);
    if (!host.ok()) return host.status();
    absl::StatusOr<DeviceBuffer> device = DeviceBuffer::Allocate(bytes);
    if (!device.ok()) return device.status();
    std::mt19937 rng(5);
    for (size_t i = 0; i < bytes / 4; ++i) (*host)->as<uint32_t>()[i] = rng();
    absl::StatusOr<double> up = TimeMedian(s, [&]() -> absl::Status {
      return CudaStatus(
          cudaMemcpyAsync(device->data(), (*host)->data(), bytes, cudaMemcpyHostToDevice, s),
          "cudaMemcpyAsync H2D");
    });
    if (!up.ok()) return up.status();
    out.h2d_bytes_per_second = static_cast<double>(bytes) / *up;
    absl::StatusOr<double> down = TimeMedian(s, [&]() -> absl::Status {
      return CudaStatus(
          cudaMemcpyAsync((*host)->data(), device->data(), bytes, cudaMemcpyDeviceToHost, s),
          "cudaMemcpyAsync D2H");
    });
    if (!down.ok()) return down.status();
    out.d2h_bytes_per_second = static_cast<double>(bytes) / *down;
  }
  absl::StatusOr<std::unique_ptr<CublasLtGemm>> gemm = CublasLtGemm::Create(size_t{32} << 20);
  if (!gemm.ok()) return gemm.status();
  absl::StatusOr<double> square = MatmulFlops(**gemm, 8192, 8192, 8192, s);
  if (!square.ok()) return square.status();
  out.bf16_matmul_flops = *square;
  absl::StatusOr<double> model = MatmulFlops(**gemm, m, n, k, s);
  if (!model.ok()) return model.status();
  out.bf16_model_gemm_flops = *model;
  return out;
}

}  // namespace strata::engine::cuda
