// Reading and writing .safetensors files. A file is an 8-byte little-endian
// header length, a JSON header mapping tensor names to dtype, shape and byte
// offsets, then the data region. Reading maps the file and hands out views
// into the mapping, so opening a multi-gigabyte checkpoint copies nothing.
#ifndef STRATA_ENGINE_SAFETENSORS_H_
#define STRATA_ENGINE_SAFETENSORS_H_

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/tensor_view.h"

namespace strata::engine {

// A read-only, privately mapped safetensors file. Immutable after Open, so
// every const method is safe to call from any number of threads.
class SafetensorsFile {
 public:
  // Maps `path` and validates the whole header: every tensor has a supported
  // dtype (F32, F16, BF16), non-negative dims, and a byte range that matches
  // its shape and lies inside the data region without overlapping another.
  // Errors name the path and, where one is at fault, the tensor:
  // NOT_FOUND (no such file), DATA_LOSS (truncated file, malformed header,
  // offsets out of range or inconsistent with the shape), INVALID_ARGUMENT
  // (unsupported dtype, bad shape), or the errno's code for other I/O errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::filesystem::path& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Every tensor, in data-offset order. Views borrow the mapping and stay
  // valid while this object lives.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  // The named tensor, or nullptr. The pointer is owned by this object.
  const TensorView* Find(std::string_view name) const;
  // Bytes in the file (header included).
  size_t file_size() const { return size_; }

 private:
  SafetensorsFile(std::filesystem::path path, void* base, size_t size)
      : path_(std::move(path)), base_(base), size_(size) {}
  absl::Status ParseHeader();

  std::filesystem::path path_;
  void* base_ = nullptr;  // owned mapping of size_ bytes
  size_t size_ = 0;
  std::vector<TensorView> tensors_;
  absl::flat_hash_map<std::string, size_t> index_;  // name -> tensors_ slot
};

// Writes `tensors` (name, dtype, shape and nbytes bytes at data) to `path` in
// safetensors format, in the given order, with an 8-byte aligned header. The
// write is atomic: a temporary file in the same directory is renamed over
// `path`, so readers never see a half-written file. The views are only read.
// INVALID_ARGUMENT if a tensor's byte count disagrees with its shape, a dim is
// negative, or a name repeats; otherwise the errno's code on I/O failure,
// naming the path. Thread-safe for distinct paths.
absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorView> tensors);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SAFETENSORS_H_
