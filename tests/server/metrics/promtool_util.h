// Runs `promtool check metrics` (Debian package prometheus, installed by
// scripts/setup.sh) on an exposition text, for the metrics tests.
#ifndef STRATA_TESTS_SERVER_METRICS_PROMTOOL_UTIL_H_
#define STRATA_TESTS_SERVER_METRICS_PROMTOOL_UTIL_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace strata::metrics::testing {

struct PromtoolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr: lint problems, parse errors
};

// Feeds `text` to promtool's stdin and collects what it prints.
inline PromtoolResult RunPromtoolCheck(const std::string& text) {
  static int counter = 0;
  const std::string output_path = ::testing::TempDir() + "/promtool_" + std::to_string(getpid()) +
                                  "_" + std::to_string(counter++) + ".txt";
  const std::string command = "promtool check metrics > '" + output_path + "' 2>&1";
  PromtoolResult result;
  FILE* pipe = popen(command.c_str(), "w");
  if (pipe == nullptr) return result;
  std::fwrite(text.data(), 1, text.size(), pipe);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(output_path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  result.output = buffer.str();
  std::remove(output_path.c_str());
  return result;
}

}  // namespace strata::metrics::testing

#endif  // STRATA_TESTS_SERVER_METRICS_PROMTOOL_UTIL_H_
