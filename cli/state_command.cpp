// `hearth state check STATE` and `hearth state repair STATE`: a damaged results database
// (real_backend/manager/state_repair.hpp), what is intact, and a fresh one with every readable
// result, for the run to resume from.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "real_backend/manager/state_repair.hpp"

namespace hearth::cli {

void add_state_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("state", "Check or repair a run's state directory");
  cmd->require_subcommand(1);
  auto dir = std::make_shared<std::string>();
  auto* check =
      cmd->add_subcommand("check",
                          "Say whether STATE/results.db is intact and how many results can be read "
                          "(exit 0 intact, 1 damaged)");
  check->add_option("state", *dir, "The state directory (the job's `state`)")->required();
  check->callback([dir] {
    std::filesystem::path db = std::filesystem::path(*dir) / "results.db";
    real::StateCheck c = real::check_state(db);
    fmt::print("{}: {}\n", db.string(), c.intact ? "intact" : "damaged");
    fmt::print("  {} results and {} rows given up or discarded can be read; the job {} known\n",
               c.results, c.errors, c.job_known ? "is" : "is NOT");
    for (const std::string& p : c.problems)
      fmt::print("  problem: {}\n", p);
    if (!c.intact) {
      fmt::print(
          "`hearth state repair {}` keeps every readable result; the run then redoes the "
          "rest\n",
          *dir);
      throw CLI::RuntimeError(1);
    }
  });
  auto* repair = cmd->add_subcommand(
      "repair",
      "Put every readable result of STATE/results.db into a fresh database (the old one "
      "is kept as results.db.damaged-TIME); running the job again redoes the rest");
  repair->add_option("state", *dir, "The state directory (the job's `state`)")->required();
  repair->callback([dir] {
    std::filesystem::path db = std::filesystem::path(*dir) / "results.db";
    real::StateRepair r = real::repair_state(db);
    fmt::print("{}: {} results kept; the damaged database is {}\n", db.string(), r.kept,
               r.old_copy.string());
  });
}

}  // namespace hearth::cli
