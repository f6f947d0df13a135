#pragma once
// Each subcommand of the hearth executable lives in its own file and registers itself here.
// Handlers throw hearth::InputError for mistakes a user made; main() prints them and exits 2.

namespace CLI {
class App;
}

namespace hearth::cli {

void add_policies_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_experiment_command(CLI::App& app);
void add_trace_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_worker_command(CLI::App& app);
void add_status_command(CLI::App& app);
void add_state_command(CLI::App& app);
void add_keys_command(CLI::App& app);
void add_model_command(CLI::App& app);
// `hearth trace record`, under `trace`.
void add_trace_record(CLI::App& trace);
// `hearth model init` and `hearth model inspect`, under `model`.
void add_model_directory_commands(CLI::App& model);

}  // namespace hearth::cli
