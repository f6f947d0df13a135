// `hearth worker --manager HOST:PORT --keys FILE`: a worker process. Dials the manager, runs what
// it is told until the run ends. SIGTERM is a preemption notice: the worker tells the manager,
// finishes or returns its task within the grace period (--grace, or the value a sigqueue() carries
// in milliseconds) and leaves. SIGINT leaves at once, saying goodbye.

#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.hpp"
#include "os/logging.hpp"
#include "os/network.hpp"
#include "os/private_dir.hpp"
#include "real_backend/worker/worker.hpp"

namespace hearth::cli {

namespace {

using namespace hearth::real;

WorkerControl control;
int default_grace_ms = 10000;

void on_term(int, siginfo_t* info, void*) {
  control.notice_grace_ms = info && info->si_code == SI_QUEUE && info->si_value.sival_int >= 0
                                ? info->si_value.sival_int
                                : default_grace_ms;
}

void on_int(int) {
  control.leave = true;
}

struct WorkerArgs {
  WorkerOptions options;
  std::string keys;
  std::string cache;
  double grace_s = 10;
  std::string log;
  bool keep_cache = false;
};

// Removes what the worker left in its cache as it ends, unless kept: a directory it made itself
// whole, else its own files only.
struct CacheCleanup {
  std::filesystem::path dir;
  bool made = false;
  bool keep = false;
  ~CacheCleanup() {
    if (keep || dir.empty()) return;
    std::error_code ec;
    if (made) {
      std::filesystem::remove_all(dir, ec);
      return;
    }
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      std::string name = e.path().filename().string();
      if (name.rfind("context-", 0) == 0 || name.rfind("evicted-", 0) == 0)
        std::filesystem::remove(e.path(), ec);
    }
  }
};

void run(WorkerArgs& a) {
  WorkerOptions& o = a.options;
  if (o.name.empty()) o.name = fmt::format("{}-{}", os::host_name(), getpid());
  os::configure_logging("worker " + o.name, os::LogLevel::normal, a.log);
  // A cache of its own: made here (mkdtemp, 0700), or the --cache directory if only this user
  // may write it (a planted link or a foreign directory could make it write anywhere).
  CacheCleanup cleanup;
  cleanup.keep = a.keep_cache;
  if (a.cache.empty()) {
    o.cache_dir = os::make_private_temp_dir("hearth-" + o.name + "-");
    cleanup.made = true;
  } else {
    o.cache_dir = std::filesystem::path(a.cache);
    os::require_private_dir(o.cache_dir);
  }
  cleanup.dir = o.cache_dir;
  o.keys = read_credentials(a.keys);
  default_grace_ms = static_cast<int>(a.grace_s * 1000);
  struct sigaction term {};
  term.sa_sigaction = on_term;
  term.sa_flags = SA_SIGINFO;
  sigaction(SIGTERM, &term, nullptr);
  struct sigaction interrupt {};
  interrupt.sa_handler = on_int;
  sigaction(SIGINT, &interrupt, nullptr);
  // A factory on this machine starts workers with SIGTERM held (worker_factory.hpp): a notice
  // sent before the handler was in place arrives now.
  sigset_t term_only;
  sigemptyset(&term_only);
  sigaddset(&term_only, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &term_only, nullptr);
  {
    Worker worker(o, control);
    worker.run();
  }  // its cache's files are freed here, before the cleanup removes them
}

}  // namespace

void add_worker_command(CLI::App& app) {
  auto a = std::make_shared<WorkerArgs>();
  WorkerOptions& o = a->options;
  auto* cmd = app.add_subcommand("worker", "Run a worker that joins a manager (hearth run)");
  cmd->add_option("--manager", o.manager, "The manager's host:port")->required();
  cmd->add_option("--keys", a->keys, "The worker.key file from the manager's state directory")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--name", o.name, "Unique, stable name (default: host-pid)");
  cmd->add_option("--log", a->log, "Append the worker's log to this file (default: stderr)");
  cmd->add_flag("--keep-cache", a->keep_cache,
                "Keep the cache's context files when the worker ends (default: removed)");
  cmd->add_option("--cache", a->cache,
                  "Directory for context files, made 0700 if missing; refused if another user owns "
                  "it or may write it, or if it is a link. hearth's files in it are removed at "
                  "start and end (default: a new TMPDIR/hearth-NAME-XXXXXX, removed at the end)");
  cmd->add_option("--device", o.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--gpu-type", o.gpu_type, "Announce this GPU type instead of the device's");
  cmd->add_option("--threads", o.threads, "libtorch threads")->check(CLI::PositiveNumber);
  cmd->add_option("--grace", a->grace_s, "Seconds to finish the running task after SIGTERM")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--peer-host", o.peer_host,
                  "Address other workers reach this one at (default: 127.0.0.1 if the manager "
                  "is on loopback, else this host's name)");
  cmd->add_option("--device-memory", o.device_memory_bytes, "Bytes for models on the device")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--host-memory", o.host_memory_bytes, "Bytes for contexts in host memory")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--disk", o.disk_bytes, "Bytes for context files on disk")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--speed", o.speed, "Relative inference speed, for the scheduler")
      ->check(CLI::PositiveNumber);
  cmd->callback([a] { run(*a); });
}

}  // namespace hearth::cli
