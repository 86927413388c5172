#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

constexpr size_t kLengthPrefixBytes = 8;

std::optional<DType> ParseDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  return std::nullopt;
}

std::string Where(const std::filesystem::path& path, const std::string& tensor) {
  return absl::StrCat(path.string(), ": tensor '", tensor, "'");
}

// A JSON value that must be a non-negative integer fitting in uint64.
std::optional<uint64_t> AsUnsigned(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  return std::nullopt;
}

struct ParsedEntry {
  TensorView view;
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Validates one header entry against the data region of `data_size` bytes.
absl::StatusOr<ParsedEntry> ParseEntry(const std::filesystem::path& path, const std::string& name,
                                       const nlohmann::json& entry, uint64_t data_size) {
  const std::string where = Where(path, name);
  if (!entry.is_object())
    return absl::DataLossError(absl::StrCat(where, ": entry is not an object"));
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) {
      return absl::DataLossError(absl::StrCat(where, ": header entry lacks '", key, "'"));
    }
  }
  ParsedEntry out;
  out.view.name = name;
  const auto& dtype = entry["dtype"];
  if (!dtype.is_string())
    return absl::DataLossError(absl::StrCat(where, ": dtype is not a string"));
  std::optional<DType> parsed_dtype = ParseDType(dtype.get<std::string>());
  if (!parsed_dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": unsupported dtype ", dtype.get<std::string>(), " (supported: F32, F16, BF16)"));
  }
  out.view.dtype = *parsed_dtype;
  const auto& shape = entry["shape"];
  if (!shape.is_array())
    return absl::InvalidArgumentError(absl::StrCat(where, ": shape is not an array"));
  uint64_t numel = 1;
  for (const auto& dim : shape) {
    if (!dim.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": shape has a non-integer dim ", dim.dump()));
    }
    if (!dim.is_number_unsigned() && dim.get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": shape has negative dim ", dim.dump()));
    }
    uint64_t value = AsUnsigned(dim).value();
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(numel, value, &numel)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": shape ", shape.dump(), " overflows"));
    }
    out.view.shape.push_back(static_cast<int64_t>(value));
  }
  const auto& offsets = entry["data_offsets"];
  std::optional<uint64_t> begin, end;
  if (offsets.is_array() && offsets.size() == 2) {
    begin = AsUnsigned(offsets[0]);
    end = AsUnsigned(offsets[1]);
  }
  if (!begin || !end) {
    return absl::DataLossError(absl::StrCat(where, ": data_offsets ", offsets.dump(),
                                            " is not a pair of non-negative integers"));
  }
  if (*begin > *end || *end > data_size) {
    return absl::DataLossError(absl::StrCat(where, ": data_offsets [", *begin, ", ", *end,
                                            "] outside the data region of ", data_size,
                                            " bytes (truncated file or lying header)"));
  }
  uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(numel, DTypeSize(out.view.dtype), &expected_bytes) ||
      *end - *begin != expected_bytes) {
    return absl::DataLossError(
        absl::StrCat(where, ": data_offsets [", *begin, ", ", *end, "] span ", *end - *begin,
                     " bytes but shape ", shape.dump(), " of ",
                     std::string(DTypeName(out.view.dtype)), " needs ", numel, " elements"));
  }
  out.begin = *begin;
  out.end = *end;
  out.view.nbytes = static_cast<size_t>(expected_bytes);
  return out;
}

absl::Status ErrnoError(int error, const std::string& what, const std::filesystem::path& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path.string()));
}

absl::Status WriteAll(int fd, const void* data, size_t size, const std::filesystem::path& path) {
  const char* cursor = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, cursor, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot write", path);
    }
    cursor += written;
    size -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BuildHeader(std::span<const TensorView> tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  absl::flat_hash_set<std::string> seen;
  uint64_t offset = 0;
  for (const TensorView& tensor : tensors) {
    if (!seen.insert(tensor.name).second || tensor.name == "__metadata__") {
      return absl::InvalidArgumentError(absl::StrCat("tensor name '", tensor.name, "' repeats"));
    }
    uint64_t numel = 1;
    for (int64_t dim : tensor.shape) {
      if (dim < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", tensor.name, "' has negative dim"));
      }
      numel *= static_cast<uint64_t>(dim);
    }
    if (numel * DTypeSize(tensor.dtype) != tensor.nbytes || (tensor.nbytes > 0 && tensor.empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", tensor.name, "' has ", tensor.nbytes, " bytes but shape [",
          absl::StrJoin(tensor.shape, ", "), "] of ", std::string(DTypeName(tensor.dtype)),
          " needs ", numel * DTypeSize(tensor.dtype)));
    }
    header[tensor.name] = {{"dtype", std::string(DTypeName(tensor.dtype))},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.nbytes}}};
    offset += tensor.nbytes;
  }
  std::string text = header.dump();
  // Spaces pad the header so the data region starts 8-byte aligned, as the
  // reference writer does; JSON ignores trailing whitespace.
  text.append((kLengthPrefixBytes - text.size() % kLengthPrefixBytes) % kLengthPrefixBytes, ' ');
  return text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open safetensors file", path);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    return ErrnoError(error, "cannot stat", path);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a regular file"));
  }
  size_t size = static_cast<size_t>(info.st_size);
  void* base = nullptr;
  if (size > 0) {
    base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      int error = errno;
      ::close(fd);
      return ErrnoError(error, "cannot map", path);
    }
  }
  ::close(fd);  // the mapping keeps the file alive
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(path, base, size));
  if (absl::Status status = file->ParseHeader(); !status.ok()) return status;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

const TensorView* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(absl::string_view(name.data(), name.size()));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::Status SafetensorsFile::ParseHeader() {
  const std::string file = path_.string();
  if (size_ < kLengthPrefixBytes) {
    return absl::DataLossError(absl::StrCat(
        file, ": file is ", size_, " bytes, too short for a safetensors header (truncated)"));
  }
  const auto* bytes = static_cast<const unsigned char*>(base_);
  uint64_t header_length = 0;
  for (size_t i = 0; i < kLengthPrefixBytes; ++i) {
    header_length |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  }
  if (header_length > size_ - kLengthPrefixBytes) {
    return absl::DataLossError(absl::StrCat(file, ": header length ", header_length,
                                            " exceeds the file size ", size_, " (truncated)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + kLengthPrefixBytes);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_length, nullptr,
                                   /*allow_exceptions=*/false);
  } catch (const nlohmann::json::exception& e) {
    header = nlohmann::json(nlohmann::json::value_t::discarded);
  }
  if (header.is_discarded() || !header.is_object()) {
    return absl::DataLossError(absl::StrCat(file, ": header is not a valid JSON object"));
  }
  const size_t data_start = kLengthPrefixBytes + header_length;
  const uint64_t data_size = size_ - data_start;
  std::vector<ParsedEntry> entries;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    absl::StatusOr<ParsedEntry> parsed = ParseEntry(path_, name, entry, data_size);
    if (!parsed.ok()) return parsed.status();
    entries.push_back(*std::move(parsed));
  }
  std::sort(entries.begin(), entries.end(), [](const ParsedEntry& a, const ParsedEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // Overlapping ranges mean the header lies: two tensors cannot share bytes.
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].begin < entries[i - 1].end) {
      return absl::DataLossError(absl::StrCat(Where(path_, entries[i].view.name),
                                              ": data overlaps tensor '", entries[i - 1].view.name,
                                              "'"));
    }
  }
  tensors_.reserve(entries.size());
  for (ParsedEntry& entry : entries) {
    entry.view.data = reinterpret_cast<const std::byte*>(bytes + data_start + entry.begin);
    index_.emplace(entry.view.name, tensors_.size());
    tensors_.push_back(std::move(entry.view));
  }
  return absl::OkStatus();
}

absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorView> tensors) {
  absl::StatusOr<std::string> header = BuildHeader(tensors);
  if (!header.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", header.status().message()));
  }
  static std::atomic<uint64_t> counter{0};
  std::filesystem::path temp = path;
  temp += absl::StrCat(".tmp.", ::getpid(), ".", counter.fetch_add(1));
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create", temp);
  unsigned char prefix[kLengthPrefixBytes];
  for (size_t i = 0; i < kLengthPrefixBytes; ++i) {
    prefix[i] = static_cast<unsigned char>(static_cast<uint64_t>(header->size()) >> (8 * i));
  }
  absl::Status status = WriteAll(fd, prefix, sizeof(prefix), temp);
  if (status.ok()) status = WriteAll(fd, header->data(), header->size(), temp);
  for (const TensorView& tensor : tensors) {
    if (!status.ok()) break;
    if (tensor.nbytes > 0) status = WriteAll(fd, tensor.data, tensor.nbytes, temp);
  }
  // fsync before rename so a crash leaves the old file or the new, never a torn one.
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoError(errno, "cannot sync", temp);
  if (::close(fd) != 0 && status.ok()) status = ErrnoError(errno, "cannot close", temp);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = ErrnoError(errno, absl::StrCat("cannot rename ", temp.string(), " to"), path);
  }
  if (!status.ok()) ::unlink(temp.c_str());
  return status;
}

}  // namespace strata::engine
