// SafetensorsFile::Open on arbitrary bytes: the 8-byte length, the JSON
// header and the offsets. Every tensor it accepts must lie inside the file;
// reading its first and last byte proves it (ASan reports otherwise).
#include <cstddef>
#include <cstdint>

#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path path = strata::fuzz::WriteScratch("model.safetensors", data, size);
  auto file = strata::engine::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const strata::engine::TensorView& tensor : (*file)->tensors()) {
    const size_t bytes = tensor.nbytes;
    if (tensor.NumElements() * static_cast<int64_t>(strata::engine::DTypeSize(tensor.dtype)) !=
        static_cast<int64_t>(bytes)) {
      strata::fuzz::Fail("a tensor's byte count disagrees with its shape");
    }
    if ((*file)->Find(tensor.name) == nullptr) strata::fuzz::Fail("a listed tensor is not found");
    if (bytes == 0) continue;
    const auto* first = reinterpret_cast<const uint8_t*>(tensor.data);
    sink = sink ^ first[0] ^ first[bytes - 1];
  }
  return 0;
}
