// `hearth run JOB`: the manager. Runs a job's inferences on the workers that connect to it (or
// that it starts here, --workers / --trace), with the policies picked in the simulator, and
// resumes where it stopped when run again. docs/real-backend.md is the manual.

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/number_option.hpp"
#include "cli/run_report.hpp"
#include "os/logging.hpp"
#include "os/network.hpp"
#include "os/process.hpp"
#include "policy/errors.hpp"
#include "real_backend/factory/batch_factory.hpp"
#include "real_backend/factory/local_workers.hpp"
#include "real_backend/manager/job_file.hpp"
#include "real_backend/manager/manager.hpp"
#include "real_backend/manager/run_plan.hpp"
#include "real_backend/status/status_server.hpp"
#include "real_backend/wire/key_registry.hpp"

namespace hearth::cli {

namespace {

using namespace hearth::real;

struct RunArgs {
  std::string job;
  std::string listen = "127.0.0.1:0";
  int workers = 0;
  std::string factory;  // empty: the job's [factory] kind
  std::string trace;
  double time_scale = 1.0;
  PolicyOverrides policy;  // over the job's [policy]
  double heartbeat_timeout_s = 5;
  std::string decision_log;
  bool durable = false;
  bool quiet = false;
  double wait_for_capacity_s = 300;
  std::string log;
  std::string events;
  bool quarantine_exit = false;
  std::vector<std::string> worker_args;
  std::string status_listen;  // empty: no status page
};

void write_lines(const std::filesystem::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& l : lines)
    out << l << '\n';
  if (!out) throw InputError(fmt::format("{}: cannot write", path.string()));
}

// The batch factory this run uses: --factory, else the job's [factory] kind, unless --workers or
// --trace start local workers; empty for none.
std::string factory_kind(const RunArgs& a, const JobFile& job) {
  if (a.workers > 0 || !a.trace.empty()) return "";
  std::string kind = a.factory.empty() ? job.factory.kind : a.factory;
  if (kind == "none") return "";
  if (!kind.empty() && job.factory.max_workers == 0) {
    throw InputError(
        fmt::format("{}: --factory {} needs max_workers in [factory]", job.file.string(), kind));
  }
  return kind;
}

// How factories issue, relabel and revoke their workers' keys in the manager's registry.
WorkerKeys worker_keys(const ManagerKeys& keys) {
  WorkerKeys w;
  w.issue = [keys](const std::string& label, const std::filesystem::path& file) {
    return issue_worker_key(keys, label, file).public_z85;
  };
  w.issue_many = [keys](const std::string& prefix, int count, const std::filesystem::path& dir) {
    return issue_worker_keys(keys, prefix, count, dir);
  };
  w.relabel = [registry = keys.registry](const std::map<std::string, std::string>& labels) {
    relabel_keys(registry, labels);
  };
  w.revoke = [registry = keys.registry](const std::vector<std::string>& public_keys) {
    revoke_keys(registry, public_keys);
  };
  return w;
}

// The `kind` factory with what the job leaves out filled in.
std::unique_ptr<WorkerFactory> batch_factory(const std::string& kind, const JobFile& job,
                                             const std::string& manager_address,
                                             const std::filesystem::path& keys_file,
                                             WorkerKeys keys) {
  FactorySettings s = job.factory;
  if (s.hearth.empty()) s.hearth = std::filesystem::read_symlink("/proc/self/exe");
  if (s.keys.empty()) s.keys = keys_file;
  if (s.work_dir.empty()) s.work_dir = job.state_dir / "batch";
  if (s.inferences_per_worker == 0) s.inferences_per_worker = job.engine.policies.batch_size;
  std::string dialed = s.manager.empty() ? reachable_address(manager_address) : s.manager;
  if (kind != "local" && os::is_loopback(os::host_of(dialed))) {
    fmt::print(stderr,
               "hearth: warning: workers will dial {}, which only this machine can reach; "
               "--listen 0.0.0.0:PORT lets other machines in (docs/batch-systems.md)\n",
               dialed);
  }
  return make_factory(kind, s, "hearth-" + job.file.stem().string(), std::move(keys));
}

void run(const RunArgs& a) {
  os::configure_logging("manager", a.quiet ? os::LogLevel::quiet : os::LogLevel::normal, a.log);
  JobFile job = read_job_file(a.job);
  apply_overrides(job.engine.policies, a.policy);
  (void)make_policies(job.engine.policies);  // unknown names are reported before anything starts
  std::string kind = factory_kind(a, job);

  RunPlan plan(job, a.durable);
  std::uint64_t left = plan.rows() - plan.done_before();
  if (plan.done_before() > 0) {
    fmt::print(stderr, "hearth: resuming run {}: {} of {} inferences were done before\n",
               plan.store().run(), plan.done_before(), plan.rows());
  }
  auto summary = [&] {
    plan.write_output();
    fmt::print("{} inferences in {}\n", plan.rows(), job.output.string());
    for (const auto& r : plan.store().runs()) {
      fmt::print("  run {}: {} tasks, {} inferences\n", r.run, r.tasks, r.inferences);
    }
  };
  if (left == 0) return summary();

  ManagerOptions options;
  options.listen = a.listen;
  options.keys = load_or_create_keys(job.state_dir / "keys");
  options.heartbeat_timeout_s = a.heartbeat_timeout_s;
  options.record_decisions = !a.decision_log.empty();
  options.progress_s = a.quiet ? 0 : 10;
  options.status_file = job.state_dir / "status.json";
  options.wait_for_capacity_s = a.wait_for_capacity_s;
  options.quarantine_exit = a.quarantine_exit;
  options.events_path = a.events;
  std::unique_ptr<StatusServer> status_page;
  if (!a.status_listen.empty()) {
    status_page = std::make_unique<StatusServer>(StatusServerOptions{a.status_listen});
    options.on_status = [page = status_page.get()](const std::string& s) { page->publish(s); };
  }
  Manager manager(plan, job.engine, options);
  if (status_page) fmt::print(stderr, "hearth: status page at {}\n", status_page->url());
  std::filesystem::path keys_file = job.state_dir / "keys" / "worker.key";
  fmt::print(stderr,
             "hearth: manager at {}; workers join with: hearth worker --manager {} --keys {}\n",
             manager.endpoint(), manager.address(), keys_file.string());

  std::unique_ptr<WorkerFactory> factory;
  if (a.workers > 0 || !a.trace.empty()) {
    LocalWorkersOptions f;
    f.executable = std::filesystem::read_symlink("/proc/self/exe").string();
    f.keys_file = keys_file;
    f.keys = worker_keys(options.keys);
    f.work_dir = job.state_dir / "workers";
    f.workers = a.workers;
    if (!a.trace.empty()) f.trace = traces::parse_trace_file(a.trace);
    f.time_scale = a.time_scale;
    f.extra_args = a.worker_args;
    factory = make_local_workers(std::move(f));
  } else if (!kind.empty()) {
    factory = batch_factory(kind, job, manager.address(), keys_file, worker_keys(options.keys));
  }

  const std::atomic<bool>& stop_requested = os::stop_on_interrupt();
  RunEnd end = manager.run(stop_requested, factory.get());
  factory.reset();
  if (!a.decision_log.empty()) {
    std::filesystem::create_directories(a.decision_log);
    write_lines(std::filesystem::path(a.decision_log) / "events.log", manager.event_lines());
    write_lines(std::filesystem::path(a.decision_log) / "commands.log", manager.command_lines());
  }
  nlohmann::json status = nlohmann::json::parse(manager.status_json());
  if (end != RunEnd::finished) fmt::print("{}", run_report(status));
  switch (end) {
    case RunEnd::finished:
      summary();
      fmt::print("{}", run_report(status));
      if (std::uint64_t n = manager.discarded_rows(); n > 0) {
        fmt::print(stderr,
                   "hearth: {} results of workers caught returning wrong results were discarded "
                   "(their rows carry an \"error\" in {}); run the job again to redo them\n",
                   n, job.output.string());
        throw CLI::RuntimeError(4);
      }
      if (auto n = status["progress"]["given_up"].get<std::uint64_t>(); n > 0) {
        fmt::print(stderr,
                   "hearth: {} rows were given up after repeated failures: their lines in {} "
                   "carry \"error\" with the reason; run the job again to retry them\n",
                   n, job.output.string());
        throw CLI::RuntimeError(4);
      }
      return;
    case RunEnd::failed:
      fmt::print(stderr, "hearth: the run cannot go on: {}\nfinished work is saved in {}\n",
                 manager.failure(), job.state_dir.string());
      throw CLI::RuntimeError(2);
    case RunEnd::stopped:
      fmt::print(stderr, "hearth: stopped; finished work is saved in {}: run again to resume\n",
                 job.state_dir.string());
      throw CLI::RuntimeError(3);
    case RunEnd::no_workers:
      fmt::print(stderr,
                 "hearth: the trace ended with no worker up and {} inferences left; finished "
                 "work is saved: run again to resume\n",
                 manager.workload().total_inferences() - manager.stats().inferences_done);
      throw CLI::RuntimeError(3);
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run", "Run a job on real workers: the manager, and optionally local workers");
  cmd->add_option("job", a->job, "The job file (TOML; see docs/real-backend.md)")->required();
  cmd->add_option("--listen", a->listen,
                  "host:port to accept workers on (default 127.0.0.1:0, a free port on "
                  "loopback; 0.0.0.0:PORT to accept other machines)");
  auto* workers =
      cmd->add_option("--workers", a->workers, "Start this many workers here, kept alive")
          ->check(CLI::NonNegativeNumber);
  auto* trace = cmd->add_option("--trace", a->trace,
                                "Start and kill local workers as this availability trace says");
  cmd->add_option("--time-scale", a->time_scale,
                  "Real seconds per trace second (0.01 replays 100 trace seconds in 1 s)")
      ->check(CLI::PositiveNumber)
      ->needs(trace);
  cmd->add_option("--factory", a->factory,
                  "Ask a batch system for workers, as the job's [factory] says: slurm, htcondor, "
                  "local (processes here) or none (default: the job's [factory] kind; see "
                  "docs/batch-systems.md)")
      ->check(CLI::IsMember({"slurm", "htcondor", "local", "none"}))
      ->excludes(workers)
      ->excludes(trace);
  cmd->add_option("--policy", a->policy.placement, "Placement policy (hearth policies lists them)");
  cmd->add_option("--eviction", a->policy.eviction, "Eviction policy");
  cmd->add_option("--granularity", a->policy.granularity, "Task-sizing policy");
  cmd->add_option("--replication", a->policy.replication, "Peer seeding policy");
  cmd->add_option("--batch-size", a->policy.batch_size, "Inferences per task (adaptive: the most)")
      ->check(whole_number(1, kMaxBatchSize));
  cmd->add_option("--heartbeat-timeout", a->heartbeat_timeout_s,
                  "Seconds of silence after which a worker is lost")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--decision-log", a->decision_log,
                  "Write the core's events and commands (events.log, commands.log) here");
  cmd->add_flag("--durable", a->durable,
                "fsync every finished task (survives power loss, not only a killed manager)");
  cmd->add_option("--worker-arg", a->worker_args,
                  "Pass this argument on to every local worker (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--wait-for-capacity", a->wait_for_capacity_s,
                  "Seconds to wait for a worker with room for a context no joined worker can hold, "
                  "before the run fails (exit 2)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--quarantine-exit", a->quarantine_exit,
                "Tell quarantined workers to exit (default: they stay, idle, for inspection)");
  cmd->add_option("--log", a->log, "Append the manager's log to this file (default: stderr)");
  cmd->add_option("--events", a->events,
                  "Append the run's events here as JSON lines (hearth experiment plot draws them)");
  cmd->add_flag("-q,--quiet", a->quiet, "Log only warnings");
  cmd->add_option("--status-listen", a->status_listen,
                  "Serve a read-only status page, /status.json and /metrics on host:port "
                  "(127.0.0.1:0: a free port on loopback; elsewhere the URL carries a token)");
  cmd->callback([a] { run(*a); });
}

}  // namespace hearth::cli
