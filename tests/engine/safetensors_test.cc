#include "engine/safetensors.h"

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/temp_dir.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

const fs::path kLlamaFile = fs::path(STRATA_TEST_DATA_DIR) / "models/llama-tiny/model.safetensors";

using strata::testing::TempDir;

using strata::testing::ReadFile;

void WriteFile(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a raw header string, as a hostile writer would make.
void WriteRaw(const fs::path& path, const std::string& header, const std::string& data,
              uint64_t header_length_override = 0) {
  uint64_t length = header_length_override ? header_length_override : header.size();
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  WriteFile(path, bytes + header + data);
}

TensorView View(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                size_t nbytes) {
  TensorView view;
  view.name = name;
  view.dtype = dtype;
  view.shape = std::move(shape);
  view.data = static_cast<const std::byte*>(data);
  view.nbytes = nbytes;
  return view;
}

TEST(SafetensorsTest, WritesAndReadsEveryDtype) {
  TempDir dir;
  const std::vector<float> f32 = {1.5f, -2.0f, 0.25f, 1e6f, -0.0f, 3.0f};
  const std::vector<uint16_t> f16 = {0x3C00, 0xC000, 0x3800};  // 1, -2, 0.5
  const std::vector<uint16_t> bf16 = {0x3F80, 0xC040};         // 1, -3
  std::vector<TensorView> tensors = {
      View("a.f32", DType::kF32, {2, 3}, f32.data(), f32.size() * 4),
      View("b.f16", DType::kF16, {3}, f16.data(), f16.size() * 2),
      View("c.bf16", DType::kBF16, {1, 2}, bf16.data(), bf16.size() * 2),
      View("d.empty", DType::kF32, {0, 4}, nullptr, 0),
  };
  const fs::path path = dir.path() / "t.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->tensors().size(), 4u);
  EXPECT_EQ((*file)->file_size(), fs::file_size(path));
  const TensorView* a = (*file)->Find("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(a->nbytes, 24u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(a->ElementAsFloat(i), f32[i]);
  // The writer pads the header so the data region is 8-byte aligned.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data) % 8, 0u);
  const TensorView* b = (*file)->Find("b.f16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kF16);
  EXPECT_EQ(b->ElementAsFloat(0), 1.0f);
  EXPECT_EQ(b->ElementAsFloat(1), -2.0f);
  EXPECT_EQ(b->ElementAsFloat(2), 0.5f);
  const TensorView* c = (*file)->Find("c.bf16");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->dtype, DType::kBF16);
  EXPECT_EQ(c->ElementAsFloat(1), -3.0f);
  const TensorView* d = (*file)->Find("d.empty");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->nbytes, 0u);
  EXPECT_EQ(d->NumElements(), 0);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
}

TEST(SafetensorsTest, FixtureViewsMatchTheRawBytes) {
  auto file = SafetensorsFile::Open(kLlamaFile);
  ASSERT_TRUE(file.ok()) << file.status();
  // Parse the header independently and compare every tensor's bytes.
  const std::string raw = ReadFile(kLlamaFile);
  uint64_t header_length = 0;
  std::memcpy(&header_length, raw.data(), 8);
  auto header = nlohmann::json::parse(raw.substr(8, header_length));
  size_t expected_count = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    ++expected_count;
    const TensorView* view = (*file)->Find(name);
    ASSERT_NE(view, nullptr) << name;
    EXPECT_EQ(view->shape, entry["shape"].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(DTypeName(view->dtype), entry["dtype"].get<std::string>()) << name;
    const size_t begin = entry["data_offsets"][0].get<size_t>();
    const size_t end = entry["data_offsets"][1].get<size_t>();
    ASSERT_EQ(view->nbytes, end - begin) << name;
    EXPECT_EQ(std::memcmp(view->data, raw.data() + 8 + header_length + begin, view->nbytes), 0)
        << name;
  }
  EXPECT_EQ((*file)->tensors().size(), expected_count);
  EXPECT_EQ(expected_count, 30u);  // 3 layers x 9 + embed, norm, lm_head
}

TEST(SafetensorsTest, SkipsMetadata) {
  TempDir dir;
  const fs::path path = dir.path() / "m.safetensors";
  WriteRaw(
      path,
      R"({"__metadata__":{"format":"pt","x":"y"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      std::string(4, '\0'));
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 1u);
  EXPECT_EQ((*file)->tensors()[0].name, "w");
  EXPECT_EQ((*file)->tensors()[0].ElementAsFloat(0), 0.0f);
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  TempDir dir;
  const fs::path path = dir.path() / "absent.safetensors";
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(path.string()));
}

TEST(SafetensorsTest, FileShorterThanLengthPrefixIsDataLoss) {
  TempDir dir;
  const fs::path path = dir.path() / "short.safetensors";
  WriteFile(path, "abc");
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(file.status().message()),
              AllOf(HasSubstr(path.string()), HasSubstr("truncated")));
}

TEST(SafetensorsTest, TruncatedDataRegionIsDataLossNamingTheTensor) {
  TempDir dir;
  const fs::path path = dir.path() / "cut.safetensors";
  const std::string raw = ReadFile(kLlamaFile);
  WriteFile(path, raw.substr(0, raw.size() - 100));  // cuts into model.norm.weight, stored last
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(file.status().message()),
              AllOf(HasSubstr(path.string()), HasSubstr("model.norm.weight")));
}

TEST(SafetensorsTest, HeaderLengthBeyondFileIsDataLoss) {
  TempDir dir;
  const fs::path path = dir.path() / "long.safetensors";
  WriteRaw(path, R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0'),
           /*header_length_override=*/1 << 20);
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(file.status().message()),
              AllOf(HasSubstr(path.string()), HasSubstr("header length 1048576")));
}

TEST(SafetensorsTest, InvalidHeaderJsonIsDataLoss) {
  TempDir dir;
  for (const std::string header : {R"({"w":{"dtype":"F32",)", R"([1, 2])", "\xff\xfe"}) {
    const fs::path path = dir.path() / "json.safetensors";
    WriteRaw(path, header, "");
    auto file = SafetensorsFile::Open(path);
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << header;
    EXPECT_THAT(std::string(file.status().message()),
                AllOf(HasSubstr(path.string()), HasSubstr("JSON")))
        << header;
  }
}

// Opens a one-tensor file with the given header entry for "bad.tensor".
absl::Status OpenWithEntry(const fs::path& path, const std::string& entry, size_t data_bytes) {
  WriteRaw(path, R"({"bad.tensor":)" + entry + "}", std::string(data_bytes, '\0'));
  return SafetensorsFile::Open(path).status();
}

struct CorruptCase {
  std::string entry;
  size_t data_bytes;
  absl::StatusCode code;
  std::string message;  // besides the path and tensor name
};

TEST(SafetensorsTest, CorruptEntriesNameFileAndTensor) {
  const std::vector<CorruptCase> cases = {
      // Offsets outside the file.
      {R"({"dtype":"F32","shape":[4],"data_offsets":[0,4096]})", 16, absl::StatusCode::kDataLoss,
       "outside the data region"},
      {R"({"dtype":"F32","shape":[4],"data_offsets":[16,32]})", 16, absl::StatusCode::kDataLoss,
       "outside the data region"},
      // Offsets that disagree with the shape.
      {R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,8]})", 16, absl::StatusCode::kDataLoss,
       "needs 4 elements"},
      {R"({"dtype":"BF16","shape":[4],"data_offsets":[0,16]})", 16, absl::StatusCode::kDataLoss,
       "span 16 bytes"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 16, absl::StatusCode::kDataLoss,
       "data_offsets"},
      {R"({"dtype":"F32","shape":[1],"data_offsets":[0]})", 16, absl::StatusCode::kDataLoss,
       "data_offsets"},
      {R"({"dtype":"F32","shape":[1]})", 16, absl::StatusCode::kDataLoss, "data_offsets"},
      {R"({"shape":[1],"data_offsets":[0,4]})", 16, absl::StatusCode::kDataLoss, "dtype"},
      // Unsupported dtypes.
      {R"({"dtype":"I64","shape":[2],"data_offsets":[0,16]})", 16,
       absl::StatusCode::kInvalidArgument, "unsupported dtype I64"},
      {R"({"dtype":"F8_E4M3","shape":[16],"data_offsets":[0,16]})", 16,
       absl::StatusCode::kInvalidArgument, "unsupported dtype F8_E4M3"},
      // Bad shapes.
      {R"({"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]})", 16,
       absl::StatusCode::kInvalidArgument, "negative dim -1"},
      {R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", 16,
       absl::StatusCode::kInvalidArgument, "non-integer"},
      {R"({"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]})", 16,
       absl::StatusCode::kInvalidArgument, "overflows"},
  };
  TempDir dir;
  for (const CorruptCase& c : cases) {
    const fs::path path = dir.path() / "bad.safetensors";
    absl::Status status = OpenWithEntry(path, c.entry, c.data_bytes);
    EXPECT_EQ(status.code(), c.code) << c.entry << " -> " << status;
    EXPECT_THAT(std::string(status.message()),
                AllOf(HasSubstr(path.string()), HasSubstr("bad.tensor"), HasSubstr(c.message)))
        << c.entry;
  }
}

TEST(SafetensorsTest, OverlappingTensorsAreDataLoss) {
  TempDir dir;
  const fs::path path = dir.path() / "overlap.safetensors";
  WriteRaw(path,
           R"({"first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
           R"("second":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
           std::string(12, '\0'));
  auto file = SafetensorsFile::Open(path);
  EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(file.status().message()),
              AllOf(HasSubstr(path.string()), HasSubstr("second"), HasSubstr("overlaps")));
}

TEST(SafetensorsTest, WriteRejectsInconsistentTensors) {
  TempDir dir;
  const fs::path path = dir.path() / "w.safetensors";
  const std::vector<float> data = {1, 2, 3};
  std::vector<TensorView> short_bytes = {View("x", DType::kF32, {4}, data.data(), 12)};
  absl::Status status = WriteSafetensors(path, short_bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), AllOf(HasSubstr(path.string()), HasSubstr("'x'")));
  std::vector<TensorView> repeated = {View("y", DType::kF32, {1}, data.data(), 4),
                                      View("y", DType::kF32, {1}, data.data() + 1, 4)};
  status = WriteSafetensors(path, repeated);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("'y' repeats"));
  EXPECT_FALSE(fs::exists(path));
}

TEST(SafetensorsTest, WriteReportsIoErrorsAndLeavesNoTemporaries) {
  TempDir dir;
  const std::vector<float> data = {1};
  std::vector<TensorView> tensors = {View("x", DType::kF32, {1}, data.data(), 4)};
  const fs::path missing_dir = dir.path() / "no_such_dir" / "w.safetensors";
  absl::Status status = WriteSafetensors(missing_dir, tensors);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no_such_dir"));

  // Overwriting replaces the whole file and leaves only the target behind.
  const fs::path path = dir.path() / "w.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors).ok());
  const std::vector<float> bigger = {7, 8, 9};
  std::vector<TensorView> replacement = {View("z", DType::kF32, {3}, bigger.data(), 12)};
  ASSERT_TRUE(WriteSafetensors(path, replacement).ok());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 1u);
  EXPECT_EQ((*file)->tensors()[0].ElementAsFloat(2), 9.0f);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

}  // namespace
}  // namespace strata::engine
