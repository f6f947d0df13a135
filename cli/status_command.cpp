// `hearth status STATE [--json] [--watch]`: what a run is doing, from the status snapshot its
// manager writes to STATE/status.json about once a second (real_backend/status/). Exit status: 0,
// 1 when there is no status or its manager is gone before the run ended, 2 for a malformed file.

#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "cli/commands.hpp"
#include "policy/errors.hpp"
#include "real_backend/status/status_snapshot.hpp"
#include "real_backend/status/status_view.hpp"

namespace hearth::cli {

namespace {

namespace fs = std::filesystem;
using namespace hearth::real;

struct StatusArgs {
  std::string state;
  bool json = false;
  bool watch = false;
};

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Says `what` on stderr and ends with exit status `status`.
[[noreturn]] void fail(int status, const std::string& what) {
  std::fflush(stdout);
  fmt::print(stderr, "hearth: {}\n", what);
  throw CLI::RuntimeError(status);
}

bool process_alive(std::int64_t pid) {
  return pid > 0 && (kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// A snapshot as read: its text and what it says; none when no run has written one.
struct Read {
  std::string text;
  StatusSnapshot status;
};

std::optional<Read> read_status(const fs::path& state) {
  std::error_code ec;
  if (!fs::is_directory(state, ec)) {
    fail(1, fmt::format("{}: no such state directory", state.string()));
  }
  fs::path file = state / "status.json";
  if (!fs::exists(file, ec)) return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot read it", file.string()));
  Read r;
  r.text.assign(std::istreambuf_iterator<char>(in), {});
  r.status = parse_status(r.text, file.string());
  return r;
}

// Why a snapshot no longer changes although its run has not ended, or empty.
std::string stale_reason(const StatusSnapshot& s, double now) {
  if (!s.ended.empty() || process_alive(s.pid)) return "";
  return fmt::format("the manager is not running (pid {}); last update {} ago", s.pid,
                     format_duration(now - s.updated_at));
}

std::string no_status(const fs::path& state) {
  return fmt::format("no run has started in {} (it has no status.json)", state.string());
}

void show_once(const StatusArgs& a) {
  fs::path state(a.state);
  std::optional<Read> r = read_status(state);
  if (!r) fail(1, no_status(state));
  double now = unix_now();
  if (a.json) {
    fmt::print("{}", r->text);
    if (r->text.empty() || r->text.back() != '\n') fmt::print("\n");
  } else {
    fmt::print("{}", render_status(r->status, now));
  }
  std::string stale = stale_reason(r->status, now);
  if (!stale.empty()) fail(1, stale);
}

// Redraws every 2 s until the run has ended (or Ctrl-C). A run not started yet, or a manager
// gone, is shown and waited for: a manager started again writes the snapshot anew.
void watch(const StatusArgs& a) {
  fs::path state(a.state);
  bool terminal = isatty(STDOUT_FILENO);
  for (;;) {
    std::optional<Read> r = read_status(state);
    double now = unix_now();
    std::string frame;
    if (!r) {
      frame = no_status(state) + "; waiting\n";
    } else if (a.json) {
      frame = nlohmann::json::parse(r->text).dump() + "\n";
    } else {
      frame = render_status(r->status, now);
      std::string stale = stale_reason(r->status, now);
      if (!stale.empty()) frame += "\n" + stale + "; waiting\n";
    }
    // A terminal is redrawn in place; a pipe gets each frame after the last, a blank line apart.
    if (terminal && !a.json) {
      fmt::print("\x1b[H\x1b[2J{}", frame);
    } else {
      fmt::print("{}{}", frame, a.json ? "" : "\n");
    }
    std::fflush(stdout);
    if (r && !r->status.ended.empty()) return;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

}  // namespace

void add_status_command(CLI::App& app) {
  auto a = std::make_shared<StatusArgs>();
  auto* cmd = app.add_subcommand(
      "status",
      "What a run is doing: progress, workers, transfers, errors (from STATE/status.json)");
  cmd->add_option("state", a->state, "The run's state directory (the job's `state`, JOB.state)")
      ->required();
  cmd->add_flag("--json", a->json, "Print the status snapshot as the manager wrote it");
  cmd->add_flag("--watch", a->watch, "Redraw every 2 s until the run ends (or Ctrl-C)");
  cmd->callback([a] { a->watch ? watch(*a) : show_once(*a); });
}

}  // namespace hearth::cli
