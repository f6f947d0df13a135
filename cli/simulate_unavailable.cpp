// `hearth simulate` in a build without the simulator (cmake -DHEARTH_SIM=OFF, where SimGrid is
// missing): says so instead of vanishing from the command list.

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "policy/errors.hpp"

namespace hearth::cli {

void add_simulate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("simulate", "(not in this build: configured with HEARTH_SIM=OFF)");
  cmd->allow_extras();
  cmd->callback([] {
    throw InputError(
        "this hearth was built without the simulator (HEARTH_SIM=OFF); rebuild "
        "with SimGrid to use hearth simulate");
  });
}

}  // namespace hearth::cli
