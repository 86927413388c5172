// Subcommands of the `strata` binary register themselves here, one file each,
// so adding a command touches no shared file.
#ifndef STRATA_SERVER_COMMANDS_COMMAND_REGISTRY_H_
#define STRATA_SERVER_COMMANDS_COMMAND_REGISTRY_H_

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace strata::server {

struct CommandInfo {
  std::string name;
  std::string usage;  // one line: options after the command name
  // Receives the arguments after the command name; returns the exit code.
  std::function<int(const std::vector<std::string>& args)> run;
};

// Defining a static CommandRegistrar in a command's .cc file registers it.
// strata_commands is an OBJECT library, so no registrar is dropped at link.
class CommandRegistrar {
 public:
  explicit CommandRegistrar(CommandInfo info);
};

const std::map<std::string, CommandInfo>& RegisteredCommands();

// Prints "usage: strata NAME USAGE" and `message` to stderr; returns kExitUsage.
int UsageError(const std::string& command, const std::string& message);

// The embedded default model: share/strata/models/aidreams260K next to the
// binary (build tree and install tree alike), else the source checkout's copy.
std::filesystem::path DefaultModelDir();

// bench/configs/NAME as installed with the binary: share/strata/bench/configs
// next to it (the build copies them there too).
std::filesystem::path BenchConfigPath(const std::string& name);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_COMMAND_REGISTRY_H_
