// Helpers shared by the libFuzzer targets.
#ifndef STRATA_TESTS_FUZZ_FUZZ_UTIL_H_
#define STRATA_TESTS_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace strata::fuzz {

// A directory private to this process, made once (the parsers under test
// read files, not buffers).
inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path* const dir = [] {
    auto* path = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                           ("strata_fuzz_" + std::to_string(getpid())));
    std::filesystem::create_directories(*path);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(
          std::filesystem::temp_directory_path() / ("strata_fuzz_" + std::to_string(getpid())),
          ignored);
    });
    return path;
  }();
  return *dir;
}

// Writes `data` to ScratchDir()/name and returns the path.
inline std::filesystem::path WriteScratch(const std::string& name, const uint8_t* data,
                                          size_t size) {
  const std::filesystem::path path = ScratchDir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// A property of the code under test does not hold: crash, so libFuzzer
// keeps the input.
[[noreturn]] inline void Fail(std::string_view what) {
  std::fprintf(stderr, "property violated: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace strata::fuzz

#endif  // STRATA_TESTS_FUZZ_FUZZ_UTIL_H_
