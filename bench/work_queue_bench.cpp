// work_queue_bench: the same measure as real_dispatch_bench, taken of Work Queue (cctools, the
// predecessor of TaskVine) as an anchor beside it. A Work Queue manager in this process, on a free
// port, and `workers` work_queue_worker processes on this machine, each with one core so that it
// runs one task at a time. Once all have connected, `tasks` no-op tasks (`:` with no files) are fed
// as work_queue_hungry asks, the way Work Queue is meant to be driven, and the time runs from the
// first submit to the last task returned. Prints one JSON line:
//
//   {"system":"work_queue","workers":N,"tasks":T,"seconds":S,"tasks_per_s":R,"manager_rss_mb":M}
//
// where manager_rss_mb is this process's peak resident set (VmHWM). The workers' own resident
// memory goes to stderr. Exits 1, saying why on stderr, if a worker cannot start or connect or a
// task fails; the workers are killed on every way out, as one process group.
//
//   work_queue_bench workers tasks
//
// Needs work_queue_worker on PATH (Debian: coop-computing-tools).

extern "C" {
#include <cctools/work_queue.h>
}
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace fs = std::filesystem;

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// The manager listens with a backlog of 5 (listen(fd, 5) in cctools' link.c) and accepts one
// worker per work_queue_wait, so workers are started only a few ahead of those it has accepted:
// started all at once, hundreds overflow the backlog, and a worker whose connection the kernel
// then drops gives up. (1000 at once: 384 connected, then workers began to quit.)
constexpr int workers_connecting_max = 4;
// How long connecting may go without one more worker, and how long the queue may go without
// returning a task, before the run is called failed.
constexpr int connect_stall_s = 30;
constexpr double stall_s = 120;

// The process group of the workers, for the signal handler; 0 while there is none.
volatile sig_atomic_t workers_pgid = 0;
volatile sig_atomic_t interrupted_by = 0;

// The first SIGINT, SIGTERM or SIGHUP ends the run through the usual way out (within a second: the
// loops wait for Work Queue one second at a time); a second one at once.
void on_signal(int signal) {
  if (interrupted_by == 0) {
    interrupted_by = signal;
    return;
  }
  if (workers_pgid > 0) kill(-workers_pgid, SIGKILL);
  _exit(128 + signal);
}

void check_interrupted() {
  if (interrupted_by != 0)
    throw std::runtime_error(fmt::format("interrupted by SIG{}", sigabbrev_np(interrupted_by)));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A field of /proc/<pid>/status or smaps_rollup in kB ("VmHWM", "Pss"), or -1 if absent.
long proc_kb(const std::string& file, const std::string& field) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(field + ":")) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// Every worker needs one socket in the manager; a few more for the listening socket and logs.
void raise_open_file_limit(int workers) {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  rlim_t wanted = static_cast<rlim_t>(workers) + 64;
  if (l.rlim_cur >= wanted) return;
  if (l.rlim_max < wanted)
    throw std::runtime_error(
        fmt::format("{} workers need {} open files, and the hard limit (ulimit -Hn) is {}", workers,
                    wanted, static_cast<unsigned long long>(l.rlim_max)));
  l.rlim_cur = wanted;
  if (setrlimit(RLIMIT_NOFILE, &l) != 0)
    throw std::runtime_error(
        fmt::format("cannot raise the open file limit to {}: {}", wanted, std::strerror(errno)));
}

// work_queue_worker processes in a process group of their own, killed (SIGKILL to the group) and
// reaped when this is destroyed. Their output goes to one log in `scratch`.
class Workers {
 public:
  Workers(const fs::path& scratch, int port)
      : scratch_(scratch), log_(scratch / "workers.log"), port_(port) {}
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  ~Workers() {
    if (pgid_ > 0) kill(-pgid_, SIGKILL);
    workers_pgid = 0;
    for (pid_t pid : pids_)
      waitpid(pid, nullptr, 0);
  }

  int started() const { return static_cast<int>(pids_.size()); }

  void start_one() {
    fs::path workdir = scratch_ / fmt::format("w{}", pids_.size());
    fs::create_directory(workdir);
    // --cores 1: a task without declared resources takes a whole worker, so one at a time.
    // --single-shot: a worker the manager drops quits (and the run fails) rather than coming back.
    // --parent-death: none outlives this process, even one killed with SIGKILL.
    spawn({"work_queue_worker", "--cores=1", "--gpus=0", "--single-shot", "--parent-death",
           fmt::format("--connect-timeout={}", connect_stall_s), "--workdir=" + workdir.string(),
           fmt::format("127.0.0.1:{}", port_)});
  }

  // Throws if a worker has exited: before the tasks are done, none should.
  void check_alive() const {
    int status = 0;
    pid_t pid = waitpid(-pgid_, &status, WNOHANG);
    if (pid <= 0) return;
    throw std::runtime_error(
        fmt::format("work_queue_worker (pid {}) {} {}", pid,
                    WIFEXITED(status) ? "exited with status" : "was killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)));
  }

  // Mean resident and proportional set size of a worker, in MB.
  std::pair<double, double> mean_rss_pss_mb() const {
    double rss = 0, pss = 0;
    for (pid_t pid : pids_) {
      fs::path proc = fs::path("/proc") / std::to_string(pid);
      rss += proc_kb(proc / "status", "VmRSS");
      pss += proc_kb(proc / "smaps_rollup", "Pss");
    }
    return {rss / 1024 / pids_.size(), pss / 1024 / pids_.size()};
  }

 private:
  void spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, pgid_);  // 0 for the first: a new group, its own pid
    pid_t pid = 0;
    int error = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0)
      throw std::runtime_error(fmt::format("cannot start work_queue_worker (worker {}): {}",
                                           pids_.size(), std::strerror(error)));
    pids_.push_back(pid);
    if (pgid_ == 0) {
      pgid_ = pid;
      workers_pgid = pid;
    }
  }

  fs::path scratch_;
  fs::path log_;
  int port_;
  pid_t pgid_ = 0;
  std::vector<pid_t> pids_;
};

struct Queue {
  work_queue* q = work_queue_create(WORK_QUEUE_RANDOM_PORT);
  ~Queue() {
    if (q) work_queue_delete(q);
  }
};

work_queue_stats stats(work_queue* q) {
  work_queue_stats s{};
  work_queue_get_stats(q, &s);
  return s;
}

struct Result {
  double seconds = 0;
  double worker_rss_mb = 0;
  double worker_pss_mb = 0;
};

Result measure(const fs::path& scratch, int workers, int tasks) {
  Queue queue;
  if (!queue.q) throw std::runtime_error("cannot create a Work Queue manager (no free port?)");
  work_queue* q = queue.q;
  Workers pool(scratch, work_queue_port(q));

  // work_queue_wait also accepts workers and reads their resource reports while it has no tasks,
  // but then returns at once: the sleep keeps this loop from taking a core the workers need.
  auto start = Clock::now();
  auto last_connect = start;
  for (int connected = 0; connected < workers;) {
    work_queue_stats s = stats(q);
    if (s.workers_connected - s.workers_init > connected) last_connect = Clock::now();
    connected = s.workers_connected - s.workers_init;
    while (pool.started() < workers &&
           pool.started() - s.workers_connected < workers_connecting_max)
      pool.start_one();
    pool.check_alive();
    check_interrupted();
    if (seconds_since(last_connect) > connect_stall_s)
      throw std::runtime_error(fmt::format("{} of {} workers connected, then none in {} s",
                                           connected, workers, connect_stall_s));
    work_queue_wait(q, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  fmt::print(stderr, "work_queue_bench: {} workers connected in {:.1f} s\n", workers,
             seconds_since(start));

  start = Clock::now();
  auto last_return = start;
  int submitted = 0, done = 0;
  while (done < tasks) {
    check_interrupted();
    for (int hungry = work_queue_hungry(q); hungry > 0 && submitted < tasks; --hungry, ++submitted)
      work_queue_submit(q, work_queue_task_create(":"));
    if (work_queue_task* t = work_queue_wait(q, 1)) {
      bool ok = t->result == WORK_QUEUE_RESULT_SUCCESS && t->return_status == 0;
      std::string why =
          t->result != WORK_QUEUE_RESULT_SUCCESS
              ? fmt::format("task {} failed: {}", t->taskid, work_queue_result_str(t->result))
              : fmt::format("task {} exited with status {}", t->taskid, t->return_status);
      work_queue_task_delete(t);
      if (!ok) throw std::runtime_error(why);
      ++done;
      last_return = Clock::now();
    } else if (seconds_since(last_return) > stall_s) {
      pool.check_alive();
      throw std::runtime_error(
          fmt::format("no task returned in {:.0f} s ({} of {} done)", stall_s, done, tasks));
    }
  }
  Result r;
  r.seconds = seconds_since(start);
  pool.check_alive();
  std::tie(r.worker_rss_mb, r.worker_pss_mb) = pool.mean_rss_pss_mb();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int workers = argc == 3 ? std::atoi(argv[1]) : 0;
  int tasks = argc == 3 ? std::atoi(argv[2]) : 0;
  if (workers < 1 || tasks < 1) {
    fmt::print(stderr, "usage: work_queue_bench workers tasks   (both at least 1)\n");
    return 2;
  }
  for (int s : {SIGINT, SIGTERM, SIGHUP})
    signal(s, on_signal);
  std::string pattern = (fs::temp_directory_path() / "work-queue-bench-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    fmt::print(stderr, "work_queue_bench: cannot make {}: {}\n", pattern, std::strerror(errno));
    return 1;
  }
  fs::path scratch = pattern;
  try {
    raise_open_file_limit(workers);
    Result r = measure(scratch, workers, tasks);
    double rss_mb = proc_kb("/proc/self/status", "VmHWM") / 1024.0;
    fmt::print(stderr, "work_queue_bench: a worker's memory: {:.1f} MB resident, {:.1f} MB PSS\n",
               r.worker_rss_mb, r.worker_pss_mb);
    fmt::print(
        "{{\"system\":\"work_queue\",\"workers\":{},\"tasks\":{},\"seconds\":{:.3f},"
        "\"tasks_per_s\":{:.1f},\"manager_rss_mb\":{:.1f}}}\n",
        workers, tasks, r.seconds, tasks / r.seconds, rss_mb);
  } catch (const std::exception& e) {
    // The workers' log stays for the diagnosis, if they wrote one; not the workspaces.
    fs::path log = scratch / "workers.log";
    std::error_code ec;
    if (fs::file_size(log, ec) > 0 && !ec) {
      for (const fs::directory_entry& d : fs::directory_iterator(scratch))
        if (d.is_directory()) fs::remove_all(d.path());
      fmt::print(stderr, "work_queue_bench: {} (the workers' log: {})\n", e.what(), log.string());
    } else {
      fs::remove_all(scratch);
      fmt::print(stderr, "work_queue_bench: {}\n", e.what());
    }
    return 1;
  }
  fs::remove_all(scratch);
}
