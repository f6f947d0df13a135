// The hearth executable: one binary, one subcommand per thing a user does.

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <exception>

#include "cli/commands.hpp"
#include "policy/errors.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hearth: throughput-oriented LLM inference on opportunistic GPU clusters"};
  app.require_subcommand(1);
  hearth::cli::add_policies_command(app);
  hearth::cli::add_simulate_command(app);
  hearth::cli::add_experiment_command(app);
  hearth::cli::add_trace_command(app);
  hearth::cli::add_run_command(app);
  hearth::cli::add_worker_command(app);
  hearth::cli::add_status_command(app);
  hearth::cli::add_state_command(app);
  hearth::cli::add_keys_command(app);
  hearth::cli::add_model_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own status, said on stderr already (3, 4)
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; every mistake on the command line exits 2, as other input errors
    // do (CLI11's own codes, 104-109, mean nothing to a script).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const hearth::InputError& e) {
    fmt::print(stderr, "hearth: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "hearth: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
