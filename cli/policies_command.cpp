// `hearth policies`: every policy that can be selected by name, a line each.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "policy/registry.hpp"

namespace hearth::cli {

void add_policies_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("policies", "List the policies, by kind, with a line each");
  cmd->callback([] {
    for (const PolicyInfo& p : known_policies()) {
      fmt::print("{:<12} {:<9} {}\n", p.kind, p.name, p.summary);
    }
  });
}

}  // namespace hearth::cli
