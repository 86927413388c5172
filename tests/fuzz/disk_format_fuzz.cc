// The disk tier's value format (storage/disk_format.h) on arbitrary bytes:
// Verify must classify any stored value without reading past it; DecodeKey
// and DecodeIndexRecord must round-trip whatever they accept; and a value
// written by WriteHeader must verify as kOk under its own key and never under
// another.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "storage/disk_format.h"
#include "tests/fuzz/fuzz_util.h"

namespace df = strata::storage::disk_format;

namespace {

uint64_t Read64(const uint8_t* data, size_t size, size_t at) {
  uint64_t value = 0;
  if (at + 8 <= size) std::memcpy(&value, data + at, 8);
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  df::StoredKey key;
  key.fingerprint = Read64(data, size, 0);
  key.key.high = Read64(data, size, 8);
  key.key.low = Read64(data, size, 16);

  // Any stored value, any expectation: a verdict, no crash.
  const size_t payload = size >= df::kHeaderBytes ? size - df::kHeaderBytes : 0;
  (void)df::Verify(bytes, key, payload);
  (void)df::Verify(bytes, key, static_cast<size_t>(Read64(data, size, 24)));

  if (auto decoded = df::DecodeKey(bytes)) {
    if (df::EncodeKey(*decoded) != bytes) strata::fuzz::Fail("DecodeKey does not round-trip");
  }
  if (auto record = df::DecodeIndexRecord(bytes)) {
    if (df::DecodeIndexRecord(df::EncodeIndexRecord(*record))
            .value_or(df::IndexRecord{})
            .sequence != record->sequence) {
      strata::fuzz::Fail("DecodeIndexRecord does not round-trip");
    }
  }

  // A value written for the key and the input as payload verifies; a
  // flipped byte or another key does not pass as kOk.
  std::string value(df::kHeaderBytes + size, '\0');
  std::memcpy(value.data() + df::kHeaderBytes, data, size);
  df::WriteHeader(key, size, reinterpret_cast<std::byte*>(value.data()));
  if (df::Verify(value, key, size) != df::Verdict::kOk) strata::fuzz::Fail("fresh value corrupt");
  df::StoredKey other = key;
  other.key.low ^= 1;
  if (df::Verify(value, other, size) == df::Verdict::kOk) strata::fuzz::Fail("wrong key passes");
  value[size % value.size()] ^= 0x40;
  if (df::Verify(value, key, size) == df::Verdict::kOk) strata::fuzz::Fail("damaged value passes");
  return 0;
}
