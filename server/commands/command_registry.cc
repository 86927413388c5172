#include "server/commands/command_registry.h"

#include <unistd.h>

#include <iostream>

#include "server/commands/args.h"

namespace strata::server {
namespace {

std::map<std::string, CommandInfo>& MutableCommands() {
  static auto* commands = new std::map<std::string, CommandInfo>();
  return *commands;
}

std::filesystem::path ExecutableDir() {
  std::error_code error;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : exe.parent_path();
}

}  // namespace

CommandRegistrar::CommandRegistrar(CommandInfo info) {
  std::string name = info.name;
  MutableCommands().emplace(std::move(name), std::move(info));
}

const std::map<std::string, CommandInfo>& RegisteredCommands() { return MutableCommands(); }

int UsageError(const std::string& command, const std::string& message) {
  const auto& commands = RegisteredCommands();
  auto it = commands.find(command);
  std::cerr << "strata " << command << ": " << message << "\n";
  if (it != commands.end()) std::cerr << "usage: strata " << command << " " << it->second.usage << "\n";
  return kExitUsage;
}

std::filesystem::path DefaultModelDir() {
  const std::filesystem::path relative = "share/strata/models/aidreams260K";
  std::filesystem::path exe_dir = ExecutableDir();
  if (!exe_dir.empty()) {
    auto candidate = exe_dir.parent_path() / relative;
    if (std::filesystem::exists(candidate / "config.json")) return candidate;
  }
  return std::filesystem::path(STRATA_SOURCE_DIR) / "models/aidreams260K";
}

std::filesystem::path BenchConfigPath(const std::string& name) {
  const std::filesystem::path exe_dir = ExecutableDir();
  const std::filesystem::path prefix = exe_dir.empty() ? std::filesystem::current_path()
                                                       : exe_dir.parent_path();
  return prefix / "share/strata/bench/configs" / name;
}

}  // namespace strata::server
