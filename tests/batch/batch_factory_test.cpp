// The batch factory over a scripted batch system and a hand-moved clock: when it submits, how
// many, what it withdraws and cancels, and how it reacts to jobs that end, hold or fail.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

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
  int refused = 0;                                // submissions refused
  std::vector<std::vector<std::string>> cancels;  // each cancel call's ids
  std::string refuse;                             // not empty: submissions fail with this
  bool unreachable = false;                       // polls fail
  std::string prepared_for;

  std::string name() const override { return "fake"; }
  void prepare(const std::string& address) override { prepared_for = address; }
  std::vector<std::string> submit(int count) override {
    if (!refuse.empty()) {
      ++refused;
      throw BatchError(refuse);
    }
    int cluster = static_cast<int>(submitted.size()) + 1;
    submitted.push_back(count);
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
