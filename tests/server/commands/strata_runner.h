// Runs the built `strata` binary as a user would, for the command tests.
#ifndef STRATA_TESTS_SERVER_COMMANDS_STRATA_RUNNER_H_
#define STRATA_TESTS_SERVER_COMMANDS_STRATA_RUNNER_H_

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace strata::testing {

struct StrataResult {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string out;     // stdout
  std::string err;     // stderr
};

inline std::string ShellQuote(const std::string& arg) {
  // Built with append: GCC 12 flags operator+ chains here with a false -Wrestrict.
  std::string quoted;
  quoted.push_back('\'');
  for (char c : arg) {
    if (c == '\'') {
      quoted.append("'\\''");
    } else {
      quoted.push_back(c);
    }
  }
  quoted.push_back('\'');
  return quoted;
}

// Runs STRATA_BINARY with `args` (each passed verbatim, no shell expansion).
inline StrataResult RunStrata(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::string pattern = (fs::temp_directory_path() / "strata_run_XXXXXX").string();
  const char* made = mkdtemp(pattern.data());
  StrataResult result;
  if (made == nullptr) return result;
  const fs::path err_path = fs::path(pattern) / "stderr";
  std::string command = ShellQuote(STRATA_BINARY);
  for (const std::string& arg : args) command.append(" ").append(ShellQuote(arg));
  command.append(" 2>").append(ShellQuote(err_path.string()));
  if (FILE* pipe = popen(command.c_str(), "r"); pipe != nullptr) {
    std::array<char, 4096> buffer;
    size_t n;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::ifstream err(err_path, std::ios::binary);
  std::ostringstream text;
  text << err.rdbuf();
  result.err = text.str();
  fs::remove_all(pattern);
  return result;
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_SERVER_COMMANDS_STRATA_RUNNER_H_
