// The batch factory over a scripted batch system and a hand-moved clock: when it submits, how
// many, what it withdraws and cancels, and how it reacts to jobs that end, hold or fail.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <set>

#include "real_backend/factory/batch_factory.hpp"
#include "tests/batch/batch_commands.hpp"
#include "tests/policy/pool_status.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using Catch::Matchers::Equals;
namespace fs = std::filesystem;
using hearth::testing::batch_error;
using hearth::testing::pool_status;
using hearth::testing::read_file;
using hearth::testing::TempDir;
using hearth::testing::write_file;

namespace {

// A batch system that holds jobs in a map the test edits: the test starts, ends and holds jobs
// by hand; submissions, polls and cancellations are recorded.
class FakeBatch final : public BatchSystem {
 public:
  std::map<std::string, BatchJobStatus> jobs;     // what the batch system holds
  std::vector<int> submitted;                     // each accepted submission's count
  std::vector<fs::path> key_dirs;                 // each accepted submission's keys
  int accept_only = 0;                            // > 0: accepts only the first ones
  int refused = 0;                                // submissions refused
  std::vector<std::vector<std::string>> cancels;  // each cancel call's ids
  std::string refuse;                             // not empty: submissions fail with this
  bool unreachable = false;                       // polls fail
  std::string prepared_for;

  std::string name() const override { return "fake"; }
  void prepare(const std::string& address) override { prepared_for = address; }
  std::vector<std::string> submit(int count, const fs::path& key_dir) override {
    if (!refuse.empty()) {
      ++refused;
      throw BatchError(refuse);
    }
    int cluster = static_cast<int>(submitted.size()) + 1;
    if (accept_only > 0) count = std::min(count, accept_only);
    submitted.push_back(count);
    key_dirs.push_back(key_dir);
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      ids.push_back(std::to_string(cluster) + "." + std::to_string(i));
      jobs[ids.back()] = {};
    }
    return ids;
  }
  std::map<std::string, BatchJobStatus> poll(const std::vector<std::string>& asked) override {
    if (unreachable) throw BatchError("the batch system does not answer");
    std::map<std::string, BatchJobStatus> out;
    for (const std::string& id : asked) {
      if (jobs.count(id)) out[id] = jobs[id];
    }
    return out;
  }
  void cancel(const std::vector<std::string>& ids) override {
    cancels.push_back(ids);
    for (const std::string& id : ids)
      jobs.erase(id);
  }
  std::string worker_name(const std::string& job) const override { return "w-" + job; }
  std::string log_of(const std::string& job) const override { return "log-" + job; }

  void run(const std::string& id) { jobs.at(id).state = BatchJobState::running; }
};

// A key registry in memory: keys K1, K2, ... whose files hold their name.
struct FakeKeys {
  std::map<std::string, std::string> labels;  // public key -> label
  std::set<std::string> revoked;

  WorkerKeys callbacks() {
    WorkerKeys w;
    w.issue_many = [this](const std::string& prefix, int count, const fs::path& dir) {
      fs::create_directories(dir);
      std::vector<std::string> keys;
      for (int i = 0; i < count; ++i) {
        keys.push_back("K" + std::to_string(labels.size() + 1));
        labels[keys.back()] = prefix + std::to_string(i);
        write_file(dir / (std::to_string(i) + ".key"), keys.back());
      }
      return keys;
    };
    w.relabel = [this](const std::map<std::string, std::string>& to) {
      for (const auto& [key, label] : to)
        labels.at(key) = label;
    };
    w.revoke = [this](const std::vector<std::string>& keys) {
      for (const std::string& key : keys) {
        REQUIRE(labels.count(key));
        revoked.insert(key);
      }
    };
    return w;
  }
  // The labels of the keys not revoked.
  std::set<std::string> active() const {
    std::set<std::string> out;
    for (const auto& [key, label] : labels) {
      if (!revoked.count(key)) out.insert(label);
    }
    return out;
  }
};

// Options for a factory that gives each job a key from `keys`, under `dir`.
BatchFactoryOptions keyed(BatchFactoryOptions o, FakeKeys& keys, const TempDir& dir) {
  o.keys = keys.callbacks();
  o.key_dir = dir / "keys";
  o.record = dir / "jobs";
  return o;
}

// A factory over a FakeBatch, its clock moved by hand.
struct Rig {
  FakeBatch* batch = nullptr;
  double now = 0;
  std::unique_ptr<WorkerFactory> factory;

  explicit Rig(BatchFactoryOptions options) {
    auto fake = std::make_unique<FakeBatch>();
    batch = fake.get();
    options.clock_s = [this] { return now; };
    factory = make_batch_workers(std::move(fake), std::move(options));
    factory->start("manager:7700");
  }
  // Ticks at time t with `pool`: by default 1,000 inferences waiting and no worker.
  void tick_at(double t, const PoolStatus& pool = pool_status(1000, 1000)) {
    now = t;
    factory->tick(pool);
  }
};

BatchFactoryOptions options(int min, int max, int submit_batch) {
  BatchFactoryOptions o;
  o.limits = {min, max, 100};
  o.submit_batch = submit_batch;
  o.submit_interval_s = 10;
  o.poll_interval_s = 5;
  return o;
}

}  // namespace

TEST_CASE("workers dial the manager's address, or the one the settings give") {
  CHECK(Rig(options(0, 1, 1)).batch->prepared_for == "manager:7700");
  BatchFactoryOptions o = options(0, 1, 1);
  o.manager_address = "login1.cluster:7700";
  CHECK(Rig(o).batch->prepared_for == "login1.cluster:7700");
  CHECK(reachable_address("10.1.2.3:7700") == "10.1.2.3:7700");
  CHECK(reachable_address("0.0.0.0:7700").ends_with(":7700"));
  CHECK(!reachable_address("0.0.0.0:7700").starts_with("0.0.0.0"));
}

TEST_CASE("the factory asks for the pool's size in batches of submit_batch, one per interval") {
  Rig rig(options(0, 10, 4));
  rig.tick_at(0);
  CHECK(rig.batch->submitted == std::vector<int>{4});
  rig.tick_at(9.9);
  CHECK(rig.batch->submitted == std::vector<int>{4});
  rig.tick_at(10);
  rig.tick_at(20);
  CHECK(rig.batch->submitted == std::vector<int>{4, 4, 2});
  CHECK(rig.batch->jobs.size() == 10);
}

TEST_CASE("jobs still queued count as asked for: a queue that does not move is not flooded") {
  Rig rig(options(0, 3, 10));
  for (double t = 0; t < 600; t += 1)
    rig.tick_at(t);
  CHECK(rig.batch->submitted == std::vector<int>{3});
  CHECK(rig.batch->cancels.empty());
}

TEST_CASE("a job that ends (preempted, killed) is replaced once a poll sees it gone") {
  Rig rig(options(0, 3, 10));
  PoolStatus work = pool_status(1000, 1000, 3);
  rig.tick_at(0, work);
  for (const char* id : {"1.0", "1.1", "1.2"}) {
    rig.batch->run(id);
    rig.factory->worker_joined(std::string("w-") + id);
  }
  rig.tick_at(5, work);          // polls: all running
  rig.batch->jobs.erase("1.1");  // the batch system preempts it
  rig.tick_at(9, work);          // no poll yet: still counted
  CHECK(rig.batch->submitted == std::vector<int>{3});
  rig.tick_at(10, pool_status(1020, 1020, 2));  // polls, sees it gone, submits its replacement
  CHECK(rig.batch->submitted == std::vector<int>{3, 1});
}

TEST_CASE(
    "when no inference waits, nothing is asked for and queued jobs are withdrawn, newest "
    "first") {
  Rig rig(options(0, 5, 10));
  rig.tick_at(0);
  CHECK(rig.batch->submitted == std::vector<int>{5});
  rig.batch->run("1.0");
  rig.batch->run("1.1");
  // Every unfinished inference is on a busy worker (two of these, one started by hand).
  rig.tick_at(5, pool_status(0, 300, 3));
  REQUIRE(rig.batch->cancels.size() == 1);
  CHECK(rig.batch->cancels[0] == std::vector<std::string>{"1.4", "1.3"});
  // Fewer busy workers than running jobs: the running ones stay, and nothing is submitted.
  for (double t = 10; t < 100; t += 1)
    rig.tick_at(t, pool_status(0, 100, 1));
  CHECK(rig.batch->cancels.size() == 2);  // the last queued one, 1.2
  CHECK(rig.batch->cancels[1] == std::vector<std::string>{"1.2"});
  CHECK(rig.batch->submitted == std::vector<int>{5});
  CHECK(rig.batch->jobs.size() == 2);
}

TEST_CASE("a refused first submission stops the run with the batch system's message") {
  Rig rig(options(0, 3, 10));
  rig.batch->refuse = "sbatch: error: invalid partition specified: gpu-nope";
  CHECK(batch_error([&] { rig.factory->tick(pool_status(100, 100)); }) ==
        "sbatch: error: invalid partition specified: gpu-nope");
}

TEST_CASE("a refused later submission is retried each interval; three in a row stop the run") {
  Rig rig(options(0, 6, 3));
  rig.tick_at(0);
  rig.batch->refuse = "sbatch: error: Batch job submission failed: Socket timed out";
  rig.tick_at(10);
  rig.tick_at(15);  // not yet: one try per interval
  rig.tick_at(20);
  CHECK(rig.batch->refused == 2);
  CHECK_THROWS_AS(rig.tick_at(30), BatchError);
  CHECK(rig.batch->refused == 3);
}

TEST_CASE(
    "jobs that end before their worker joins slow submissions down; 10 in a row stop the "
    "run") {
  BatchFactoryOptions o = options(0, 1, 1);
  o.poll_interval_s = 1;
  Rig rig(o);
  std::vector<double> submitted_at;
  auto tick = [&](double t) {
    std::size_t before = rig.batch->submitted.size();
    rig.tick_at(t);
    if (rig.batch->submitted.size() > before) submitted_at.push_back(t);
    // Every job dies at once, before its worker can join.
    rig.batch->jobs.clear();
  };
  for (double t = 0; t <= 80; t += 1)
    tick(t);
  // The interval doubles with each job lost before it joined: 10 x 2, 10 x 4, then 10 x 8.
  CHECK(submitted_at == std::vector<double>{0, 20, 60});

  // A worker that joins restores the interval.
  rig.tick_at(140);  // submits 4.0
  rig.factory->worker_joined("w-4.0");
  rig.batch->run("4.0");
  rig.tick_at(141);
  rig.batch->jobs.clear();  // it ends after joining: a preemption, not a failed start
  rig.tick_at(142);
  rig.tick_at(149);
  CHECK(rig.batch->submitted.size() == 4);
  rig.tick_at(150);
  CHECK(rig.batch->submitted.size() == 5);

  double t = 150;
  int failed = 0;
  try {
    for (; failed < 12; ++failed) {
      rig.batch->jobs.clear();
      rig.tick_at(t += 1);     // sees the job gone: a failed start
      rig.tick_at(t += 1000);  // submits the next
    }
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Equals("10 fake jobs in a row ended before their worker joined the "
                                "manager; the last one's log: log-" +
                                std::to_string(5 + failed) + ".0"));
  }
  CHECK(failed == 9);  // the 10th failed start threw
}

TEST_CASE("a submission whose jobs all end before joining doubles the interval once") {
  Rig rig(options(0, 3, 3));
  rig.tick_at(0);
  rig.batch->jobs.clear();
  rig.tick_at(5);  // three failed starts, one failed submission
  rig.tick_at(19);
  CHECK(rig.batch->submitted == std::vector<int>{3});
  rig.tick_at(20);
  CHECK(rig.batch->submitted == std::vector<int>{3, 3});
}

TEST_CASE("a held job is removed and replaced") {
  Rig rig(options(0, 2, 10));
  rig.tick_at(0);
  rig.batch->jobs["1.1"] = {BatchJobState::held, "Error from starter: cannot open worker.key"};
  rig.tick_at(5);
  REQUIRE(rig.batch->cancels.size() == 1);
  CHECK(rig.batch->cancels[0] == std::vector<std::string>{"1.1"});
  // Its worker never joined: the next submission waits twice the interval.
  rig.tick_at(10);
  CHECK(rig.batch->submitted == std::vector<int>{2});
  rig.tick_at(20);
  CHECK(rig.batch->submitted == std::vector<int>{2, 1});
}

TEST_CASE("nothing is submitted while the batch system cannot be asked about its jobs") {
  Rig rig(options(0, 4, 2));
  rig.tick_at(0);
  rig.batch->jobs.clear();
  rig.batch->unreachable = true;
  for (double t = 5; t < 60; t += 1)
    rig.tick_at(t);  // due from t = 10, but blind
  CHECK(rig.batch->submitted == std::vector<int>{2});
  rig.batch->unreachable = false;
  rig.tick_at(60);  // polls: both gone; submits again
  CHECK(rig.batch->submitted == std::vector<int>{2, 2});
}

TEST_CASE("stop cancels every job by id; a killed run's jobs are cancelled by the next start") {
  TempDir dir;
  BatchFactoryOptions o = options(0, 3, 10);
  o.record = dir / "batch/jobs";
  std::string left_behind;
  {
    Rig rig(o);
    rig.tick_at(0);
    left_behind = read_file(o.record);
    CHECK(left_behind == "fake 1.0\nfake 1.1\nfake 1.2\n");
    rig.factory->stop(1);  // waits until a poll sees them gone
    REQUIRE(rig.batch->cancels.size() == 1);
    CHECK(rig.batch->cancels[0] == std::vector<std::string>{"1.0", "1.1", "1.2"});
    CHECK(!fs::exists(o.record));
  }
  // As if the manager had been killed before it could cancel them.
  write_file(o.record, left_behind);
  Rig next(o);
  REQUIRE(next.batch->cancels.size() == 1);
  CHECK(next.batch->cancels[0] == std::vector<std::string>{"1.0", "1.1", "1.2"});
  CHECK(!fs::exists(o.record));
}

TEST_CASE("jobs not seen leaving the queue at stop stay in the record") {
  TempDir dir;
  BatchFactoryOptions o = options(0, 2, 10);
  o.record = dir / "jobs";
  Rig rig(o);
  rig.tick_at(0);
  rig.batch->unreachable = true;
  rig.factory->stop(1);
  CHECK(rig.batch->cancels.size() == 1);
  CHECK(read_file(o.record) == "fake 1.0\nfake 1.1\n");
}

TEST_CASE("a worker the factory did not start does not count as one of its jobs joining") {
  Rig rig(options(0, 1, 1));
  rig.tick_at(0);
  rig.batch->jobs.clear();
  rig.tick_at(5);  // 1.0 ended before its worker joined
  rig.factory->worker_joined("someone-else");
  rig.tick_at(10);  // still twice the interval
  CHECK(rig.batch->submitted == std::vector<int>{1});
  rig.tick_at(20);
  CHECK(rig.batch->submitted == std::vector<int>{1, 1});
}

TEST_CASE("each job gets a key of its own, named after its worker and revoked when the job ends") {
  TempDir dir;
  FakeKeys keys;
  Rig rig(keyed(options(0, 3, 10), keys, dir));
  rig.tick_at(0);
  REQUIRE(rig.batch->key_dirs.size() == 1);
  fs::path s1 = rig.batch->key_dirs[0];
  CHECK(s1.parent_path() == dir / "keys");
  CHECK((fs::status(dir / "keys").permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
        fs::perms::none);
  // Job 1.I dials with s1/I.key, its key labelled with its worker's name.
  CHECK(read_file(s1 / "2.key") == "K3");
  CHECK(keys.active() == std::set<std::string>{"w-1.0", "w-1.1", "w-1.2"});
  CHECK(read_file(dir / "jobs") == "fake 1.0 K1\nfake 1.1 K2\nfake 1.2 K3\n");

  // 1.1 ends; 1.2 is withdrawn (no work left for it); 1.0 is cancelled at stop.
  rig.batch->run("1.0");
  rig.batch->jobs.erase("1.1");
  rig.tick_at(5, pool_status(1000, 1000, 1));
  CHECK(keys.revoked == std::set<std::string>{"K2"});
  CHECK(!fs::exists(s1 / "1.key"));
  rig.tick_at(10, pool_status(1, 1, 1));
  CHECK(keys.revoked == std::set<std::string>{"K2", "K3"});
  CHECK(!fs::exists(s1 / "2.key"));
  CHECK(fs::exists(s1 / "0.key"));
  rig.factory->stop(1);
  CHECK(keys.active().empty());
  CHECK(!fs::exists(s1));
}

TEST_CASE(
    "the keys of a refused submission, or of jobs the batch system did not take, are revoked") {
  TempDir dir;
  FakeKeys keys;
  BatchFactoryOptions o = keyed(options(0, 4, 10), keys, dir);
  Rig rig(o);
  rig.batch->accept_only = 1;
  rig.tick_at(0);  // 4 keys issued, 1 job submitted
  CHECK(rig.batch->submitted == std::vector<int>{1});
  CHECK(keys.active() == std::set<std::string>{"w-1.0"});
  CHECK(keys.revoked.size() == 3);
  CHECK(!fs::exists(rig.batch->key_dirs[0] / "1.key"));
  rig.batch->refuse = "sbatch: error: QOSMaxSubmitJobPerUserLimit";
  rig.tick_at(10);  // 3 more keys, refused
  CHECK(rig.batch->refused == 1);
  CHECK(keys.labels.size() == 7);
  CHECK(keys.active() == std::set<std::string>{"w-1.0"});
  CHECK(!fs::exists(dir / "keys/s2"));
  CHECK(read_file(dir / "jobs") == "fake 1.0 K1\n");
}

TEST_CASE("a killed run's keys are revoked, their files removed, by the next start") {
  TempDir dir;
  FakeKeys keys;
  BatchFactoryOptions o = keyed(options(0, 2, 10), keys, dir);
  std::string record;
  {
    Rig rig(o);
    rig.tick_at(0);
    CHECK(keys.active() == std::set<std::string>{"w-1.0", "w-1.1"});
    record = read_file(o.record);
  }
  // As if the manager had been killed: its record and key files stay, its keys active, and a
  // submission was under way.
  write_file(o.record, record + "fake - K9\n");
  fs::create_directories(dir / "keys/s1");
  write_file(dir / "keys/s1/0.key", "K1");
  keys.labels["K9"] = "fake-pending.1.2.0";
  keys.revoked.clear();
  Rig next(o);
  CHECK(next.batch->cancels == std::vector<std::vector<std::string>>{{"1.0", "1.1"}});
  CHECK(keys.revoked == std::set<std::string>{"K1", "K2", "K9"});
  CHECK(!fs::exists(dir / "keys/s1"));
  CHECK(!fs::exists(o.record));
}

TEST_CASE("a worker whose job is over keeps its key until it leaves, 300 s at most") {
  // Preempted with a notice, it finishes its task in its grace period and reports it.
  TempDir dir;
  FakeKeys keys;
  Rig rig(keyed(options(0, 2, 10), keys, dir));
  rig.tick_at(0);
  rig.factory->worker_joined("w-1.0");
  rig.factory->worker_joined("w-1.1");
  rig.batch->jobs.clear();  // both preempted
  rig.tick_at(5, pool_status(10, 10, 2));
  CHECK(keys.revoked.empty());
  CHECK(read_file(dir / "jobs") == "fake - K1\nfake - K2\n");  // a killed run's next revokes them
  rig.factory->worker_left("w-1.0");
  CHECK(keys.revoked == std::set<std::string>{"K1"});
  CHECK(!fs::exists(rig.batch->key_dirs[0] / "0.key"));
  rig.tick_at(304, pool_status(10, 10, 1));
  CHECK(keys.revoked == std::set<std::string>{"K1"});
  rig.tick_at(305, pool_status(10, 10, 1));
  CHECK(keys.revoked == std::set<std::string>{"K1", "K2"});
  // A job whose worker left before it ended loses its key with the job.
  std::string next = "2.0";
  REQUIRE(rig.batch->jobs.count(next));
  rig.factory->worker_joined("w-" + next);
  rig.factory->worker_left("w-" + next);
  CHECK(keys.active().count("w-" + next));
  rig.batch->jobs.erase(next);
  rig.tick_at(400, pool_status(10, 10, 1));
  CHECK(!keys.active().count("w-" + next));
}
