// `hearth state check STATE` and `hearth state repair STATE`: whether a run's state database
// (STATE/results.db) is whole, and, when it is damaged, a fresh one holding every result that can
// still be read, from which the next run of the job resumes
// (real_backend/manager/state_repair.hpp). check exits 0 when the database is whole, 1 when it is
// not; repair 0 once repaired.

#include <fmt/core.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "policy/errors.hpp"
#include "real_backend/manager/state_repair.hpp"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;

// STATE/results.db, STATE being a state directory (or the database itself).
fs::path database_of(const std::string& state) {
  fs::path p(state);
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p;
  if (!fs::is_directory(p, ec)) throw InputError(fmt::format("{}: no such state directory", state));
  return p / "results.db";
}

// The pid of a manager running on this state, from its status file; 0 if none.
long running_manager(const fs::path& db) {
  std::ifstream in(db.parent_path() / "status.json", std::ios::binary);
  if (!in) return 0;
  nlohmann::json s =
      nlohmann::json::parse(std::string(std::istreambuf_iterator<char>(in), {}), nullptr, false);
  if (!s.is_object() || !s.contains("pid") || !s["pid"].is_number_integer()) return 0;
  if (s.contains("ended") && !s["ended"].is_null()) return 0;
  long pid = s["pid"].get<long>();
  bool alive = pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
  return alive ? pid : 0;
}

void check(const std::string& state) {
  const fs::path db = database_of(state);
  real::StateCheck c = real::check_state(db);
  if (!c.open_error.empty()) {
    fmt::print(
        "{}: cannot be read at all ({}); nothing in it can be kept: remove {} to run the "
        "job afresh\n",
        db.string(), c.open_error, db.parent_path().string());
    throw CLI::RuntimeError(1);
  }
  fmt::print("{}: {}\n", db.string(), c.ok() ? "whole" : "damaged");
  if (c.integrity != "ok") {
    fmt::print("  integrity check:\n");
    std::string line;
    for (std::istringstream in(c.integrity); std::getline(in, line);)
      fmt::print("    {}\n", line);
  } else {
    fmt::print("  integrity check: ok\n");
  }
  fmt::print("  job: {}\n",
             c.job.empty() ? "unreadable: its results cannot be trusted" : "recorded");
  for (const real::StateCheck::Run& r : c.runs) {
    std::string recorded = r.inferences == static_cast<std::uint64_t>(-1)
                               ? "its record is lost"
                               : fmt::format("it recorded {} inferences", r.inferences);
    fmt::print("  run {} (started {}): {} results and {} rows given up can be read; {}\n", r.run,
               r.started, r.results, r.given_up, recorded);
  }
  fmt::print("  {} rows readable\n", c.rows_read);
  for (const std::string& u : c.unreadable)
    fmt::print("  unreadable: {}\n", u);
  if (c.ok()) {
    fmt::print("the output can be written from it (hearth run writes it once every row is done)\n");
    return;
  }
  fmt::print(
      "the output cannot be written from it: `hearth state repair {}` keeps the {} readable rows, "
      "and running the job again then redoes the rest\n",
      db.parent_path().string(), c.rows_read);
  throw CLI::RuntimeError(1);
}

void repair(const std::string& state) {
  const fs::path db = database_of(state);
  if (long pid = running_manager(db); pid != 0) {
    throw InputError(
        fmt::format("{}: a manager (pid {}) is running on this state; stop it before repairing",
                    db.parent_path().string(), pid));
  }
  real::StateRepair r = real::repair_state(db);
  fmt::print("{}: repaired: {} runs and {} results kept; the damaged database is {}\n", db.string(),
             r.runs_kept, r.rows_kept, r.kept_as.string());
  for (const std::string& u : r.unreadable)
    fmt::print("  lost: {}\n", u);
  fmt::print("running the job again resumes from the rows kept and redoes the rest\n");
}

}  // namespace

void add_state_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "state", "Check a run's state database (STATE/results.db) or repair a damaged one");
  cmd->require_subcommand(1);
  auto state = std::make_shared<std::string>();
  auto* check_cmd = cmd->add_subcommand(
      "check",
      "Say whether STATE's database is whole: integrity, rows per run, what cannot be "
      "read (exit 0 whole, 1 damaged)");
  check_cmd->add_option("state", *state, "the job's state directory")->required();
  check_cmd->callback([state] { check(*state); });
  auto repair_state = std::make_shared<std::string>();
  auto* repair_cmd = cmd->add_subcommand(
      "repair",
      "Copy every readable result of STATE's damaged database into a fresh one (the "
      "old kept as results.db.corrupt-TIME); the next run of the job resumes from it");
  repair_cmd->add_option("state", *repair_state, "the job's state directory")->required();
  repair_cmd->callback([repair_state] { repair(*repair_state); });
}

}  // namespace hearth::cli
