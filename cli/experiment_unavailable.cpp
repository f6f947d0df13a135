// `hearth experiment` in a build without the simulator (cmake -DHEARTH_SIM=OFF): says so instead
// of vanishing from the command list.

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "policy/errors.hpp"

namespace hearth::cli {

void add_experiment_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("experiment", "(not in this build: configured with HEARTH_SIM=OFF)");
  cmd->allow_extras();
  cmd->callback([] {
    throw InputError(
        "this hearth was built without the simulator (HEARTH_SIM=OFF); rebuild with SimGrid to "
        "use hearth experiment");
  });
}

}  // namespace hearth::cli
