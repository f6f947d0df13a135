// `hearth simulate` and `hearth experiment` in a build without the simulator (cmake
// -DHEARTH_SIM=OFF, where SimGrid is missing): they say so instead of vanishing from the command
// list.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "policy/errors.hpp"

namespace hearth::cli {

namespace {

void add_unavailable(CLI::App& app, const std::string& name) {
  auto* cmd = app.add_subcommand(name, "(not in this build: configured with HEARTH_SIM=OFF)");
  cmd->allow_extras();
  cmd->callback([name] {
    throw InputError(fmt::format(
        "this hearth was built without the simulator (HEARTH_SIM=OFF); rebuild with SimGrid to "
        "use hearth {}",
        name));
  });
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  add_unavailable(app, "simulate");
}

void add_experiment_command(CLI::App& app) {
  add_unavailable(app, "experiment");
}

}  // namespace hearth::cli
