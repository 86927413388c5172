// The real daemon as a separate process, for the integration tests:
// `strata serve --config FILE` (or any arguments) spawned with its stdout
// and stderr in files of a private directory, the bound ports read back from
// its `event=listening` log line (configs use port 0), signals, and a wait
// for its exit. Waits poll with generous limits and never time anything.
#ifndef STRATA_TESTS_INTEGRATION_DAEMON_PROCESS_H_
#define STRATA_TESTS_INTEGRATION_DAEMON_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/files.h"

extern char** environ;

namespace strata::testing {

// Loopback, free ports, one engine thread, a device KV arena of
// `device_bytes`: what every test config starts from. `server_lines` and
// `cache_lines` go into those sections ("  drain_timeout: 60s\n"); other
// sections may be appended after it.
inline std::string BaseConfigYaml(const std::string& device_bytes = "4MiB",
                                  const std::string& server_lines = "",
                                  const std::string& cache_lines = "") {
  std::string yaml = "cache:\n  device_bytes: ";
  yaml.append(device_bytes)
      .append("\n")
      .append(cache_lines)
      .append(
          "server:\n"
          "  listen: \"127.0.0.1:0\"\n")
      .append(server_lines)
      .append(
          "metrics:\n"
          "  listen: \"127.0.0.1:0\"\n"
          "engine:\n"
          "  backend: cpu\n"
          "  threads: 1\n"
          "logging:\n"
          "  level: info\n"
          "  format: text\n");
  return yaml;
}

inline void WriteTextFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// The value of `key=` in a key=value log line; quotes removed.
inline std::string LogField(const std::string& line, const std::string& key) {
  std::string needle = " ";
  needle.append(key).append("=");
  size_t at = line.find(needle);
  if (at == std::string::npos) return "";
  at += needle.size();
  if (at < line.size() && line[at] == '"') {
    const size_t end = line.find('"', at + 1);
    return line.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
  }
  const size_t end = line.find_first_of(" \n", at);
  return line.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The first newline-terminated line of `text` that contains `needle`, with a
// space in front (so LogField finds its first key too); "" if none.
inline std::string CompleteLineContaining(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  const size_t end = text.find('\n', at);
  if (end == std::string::npos) return "";
  const size_t newline = text.rfind('\n', at);
  const size_t start = newline == std::string::npos ? 0 : newline + 1;
  std::string line = " ";
  line.append(text, start, end - start);
  return line;
}

class DaemonProcess {
 public:
  // Spawns STRATA_BINARY with `args`; output goes to dir/NAME.stdout and
  // dir/NAME.stderr. Null if the process cannot be spawned.
  static std::unique_ptr<DaemonProcess> Spawn(const std::filesystem::path& dir,
                                              const std::vector<std::string>& args,
                                              const std::string& name = "strata") {
    return SpawnProgram(dir, STRATA_BINARY, args, name);
  }

  // The same for any program (Prometheus, HAProxy).
  static std::unique_ptr<DaemonProcess> SpawnProgram(const std::filesystem::path& dir,
                                                     const std::string& program,
                                                     const std::vector<std::string>& args,
                                                     const std::string& name) {
    auto process = std::unique_ptr<DaemonProcess>(new DaemonProcess());
    process->stdout_path_ = dir / std::string(name).append(".stdout");
    process->stderr_path_ = dir / std::string(name).append(".stderr");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, process->stdout_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, process->stderr_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_strings = {program};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int spawned =
        posix_spawn(&process->pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return nullptr;
    return process;
  }

  // `strata serve --config dir/NAME.yaml` with `yaml` written there.
  static std::unique_ptr<DaemonProcess> Serve(const std::filesystem::path& dir,
                                              const std::string& yaml,
                                              const std::vector<std::string>& extra_args = {},
                                              const std::string& name = "strata") {
    const std::filesystem::path config = dir / std::string(name).append(".yaml");
    WriteTextFile(config, yaml);
    std::vector<std::string> args = {"serve", "--config", config.string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return Spawn(dir, args, name);
  }

  ~DaemonProcess() {
    if (running()) {
      kill(pid_, SIGKILL);
      Reap(std::chrono::seconds(30));
    }
  }

  // Polls the log until the listening line appears (true; the addresses are
  // then set) or the process exits or `limit` passes (false).
  bool WaitForListening(std::chrono::seconds limit = std::chrono::seconds(180)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      const std::string line = CompleteLineContaining(Stderr(), "event=listening");
      if (!line.empty()) {
        grpc_address_ = LogField(line, "grpc");
        metrics_address_ = LogField(line, "metrics");
        return !grpc_address_.empty();
      }
      if (!running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  bool running() {
    if (exited_) return false;
    int status = 0;
    const pid_t got = waitpid(pid_, &status, WNOHANG);
    if (got == pid_) Record(status);
    return !exited_;
  }

  void Signal(int signal) {
    if (!exited_) kill(pid_, signal);
  }

  // The exit code once the process has exited within `limit` (-1 when a
  // signal killed it); nullopt while it still runs.
  std::optional<int> Reap(std::chrono::seconds limit = std::chrono::seconds(180)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (running() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited_) return std::nullopt;
    return exit_code_;
  }

  std::string Stderr() const { return ReadFile(stderr_path_); }
  std::string Stdout() const { return ReadFile(stdout_path_); }
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  pid_t pid() const { return pid_; }

 private:
  DaemonProcess() = default;
  void Record(int status) {
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  std::string grpc_address_;
  std::string metrics_address_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_INTEGRATION_DAEMON_PROCESS_H_
