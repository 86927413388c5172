// The `strata` binary: dispatches to the registered subcommands.
#include <iostream>
#include <string>
#include <vector>

#include "server/commands/args.h"
#include "server/commands/command_registry.h"

namespace {

void PrintUsage(std::ostream& out) {
  out << "usage: strata COMMAND [OPTIONS]\n\ncommands:\n";
  for (const auto& [name, info] : strata::server::RegisteredCommands()) {
    out << "  " << name << " " << info.usage << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(std::cerr);
    return strata::server::kExitUsage;
  }
  std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    PrintUsage(std::cout);
    return strata::server::kExitOk;
  }
  const auto& commands = strata::server::RegisteredCommands();
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::cerr << "strata: unknown command '" << command << "'\n";
    PrintUsage(std::cerr);
    return strata::server::kExitUsage;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  return it->second.run(args);
}
