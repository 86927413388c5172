// Whole-file reads for tests.
#ifndef STRATA_TESTS_COMMON_FILES_H_
#define STRATA_TESTS_COMMON_FILES_H_

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace strata::testing {

// The file's bytes, or "" if it cannot be read.
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_COMMON_FILES_H_
