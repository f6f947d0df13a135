// Pipelined dispatch (EngineConfig::pipeline): a worker holds its next task so that it does not
// idle for the round trip to the manager, on the in-memory cluster with message delays.

#include <catch2/catch_test_macros.hpp>

#include <random>

#include "tests/policy/rig.hpp"

using namespace hearth;
using namespace hearth::testing;

namespace {

EngineConfig pipelined(std::string placement = "pcm") {
  EngineConfig c = engine_config(std::move(placement));
  c.pipeline = true;
  return c;
}

MemoryClusterConfig with_messages(double message_s) {
  MemoryClusterConfig c = cluster_config();
  c.message_s = message_s;
  return c;
}

void check_each_task_once(const Rig& rig, std::uint64_t inferences) {
  CHECK(rig.engine.finished());
  CHECK(rig.engine.stats().inferences_done == inferences);
  auto finishes = rig.finishes_per_task();
  CHECK(finishes.size() == rig.engine.stats().tasks_done);
  for (auto [task, n] : finishes) {
    CAPTURE(task);
    CHECK(n == 1);
  }
}

}  // namespace

TEST_CASE("a pipelined worker does not idle for the round trip between its tasks") {
  // Ten 5 s tasks after a 15 s load; a message takes 0.5 s each way. One at a time, each task
  // costs 5 s plus the 1 s round trip: the last result is in at 15 + 10 * 6 = 75 s. Pipelined,
  // the tasks run back to back from 15.5 s and the last result is in at 15.5 + 50 + 0.5 = 66 s.
  Rig plain(one_model(100), engine_config("pcm"), with_messages(0.5));
  plain.cluster.join_at(0, gpu(0));
  plain.run();
  CHECK(plain.makespan() == 75.0);

  Rig piped(one_model(100), pipelined(), with_messages(0.5));
  piped.cluster.join_at(0, gpu(0));
  piped.run();
  CHECK(piped.makespan() == 66.0);
  CHECK(piped.engine.stats().attempts == 10);
  check_each_task_once(piped, 100);
  // Tasks 0 and 1 go out together; every later one as its predecessor's predecessor ends.
  CHECK(piped.count("15 start w0 task 0 ") == 1);
  CHECK(piped.count("15 start w0 task 1 ") == 1);
  CHECK(piped.count("21 start w0 task 2 ") == 1);

  // Without message delays there is no round trip to hide, and both take the same time.
  Rig instant(one_model(100), pipelined());
  instant.cluster.join_at(0, gpu(0));
  instant.run();
  CHECK(instant.makespan() == 15.0 + 10 * 5.0);
}

TEST_CASE("an idle worker takes back the next task another holds when nothing else is left") {
  // Three tasks; both workers are ready at 15 s with a task bound while they loaded: w0 (speed 1,
  // 5 s a task) task 0, w1 (speed 2, 3 s a task) task 1. Pipelined, w0 also holds task 2, to run
  // at 20-25 s. w1 is idle at 18 s with nothing pending: it takes task 2 back and runs it at
  // 18-21 s, as it would without pipelining.
  for (bool pipeline : {false, true}) {
    CAPTURE(pipeline);
    EngineConfig config = engine_config("pcm");
    config.pipeline = pipeline;
    Rig rig(one_model(30), config);
    rig.cluster.join_at(0, gpu(0));
    rig.cluster.join_at(0, gpu(1, 2.0));
    rig.run();
    CHECK(rig.makespan() == 21.0);
    CHECK(rig.count("18 start w1 task 2 ") == 1);
    CHECK(rig.count("18 cancel w0") == (pipeline ? 1 : 0));
    check_each_task_once(rig, 30);
  }
}

TEST_CASE("a preemption notice sends a worker's next task back to the queue, not its running one") {
  // w0 runs task 0 at 15-20 s holding task 1; a notice at 16 s with 10 s of grace lets task 0
  // end, and task 1 goes to w1, which joins at 30 s. Nothing was lost: nothing counts requeued.
  Rig rig(one_model(20), pipelined());
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.notice_at(16, 0, 10.0);
  rig.cluster.lose_at(26, 0);
  rig.cluster.join_at(30, gpu(1));
  rig.run();
  CHECK(rig.count("16 cancel w0") == 1);
  CHECK(rig.engine.stats().tasks_requeued == 0);
  CHECK(rig.count("start w1 task 1 ") == 1);
  CHECK(rig.makespan() == 30 + 15 + 5.0);
  check_each_task_once(rig, 20);
}

TEST_CASE("a lost worker's running and next tasks are both run again elsewhere, once") {
  // w0 and w1 are ready at 15 s, each with a running and a next task of four; w1 is lost at
  // 17 s. w0 runs its two (15-25 s) and then w1's two (25-35 s).
  Rig rig(one_model(40), pipelined(), with_messages(0.25));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.join_at(0, gpu(1));
  rig.cluster.lose_at(17, 1);
  rig.run();
  CHECK(rig.engine.stats().tasks_requeued == 1);  // the running one; the next was not begun
  CHECK(rig.engine.stats().tasks_done == 4);
  check_each_task_once(rig, 40);
}

TEST_CASE("after a failed task a pipelined worker goes on with its next, and the retry runs too") {
  Rig rig(one_model(30), pipelined(), with_messages(0.5));
  rig.cluster.fail_task(0, 1);
  rig.cluster.join_at(0, gpu(0));
  rig.run();
  CHECK(rig.engine.stats().attempts == 4);
  // Task 0 fails at 20.5 s; task 1 was already running behind it.
  CHECK(rig.count("15 start w0 task 1 ") == 1);
  check_each_task_once(rig, 30);
}

TEST_CASE("pipelined runs keep the cluster contract and count every task once, whatever happens") {
  // Random pools with joins, notices, losses, failing tasks and message delays, behind the
  // contract check (a broken Requires aborts), under each placement that keeps its contexts.
  for (std::uint32_t seed = 1; seed <= 150; ++seed) {
    std::mt19937 rng(seed);
    auto uniform = [&](double lo, double hi) {
      return std::uniform_real_distribution<double>(lo, hi)(rng);
    };
    const char* placement = seed % 2 ? "pcm" : "adaptive";
    EngineConfig config = pipelined(placement);
    config.policies.batch_size = 1 + rng() % 8;
    Workload work;
    work.add(model("a"), 20 + rng() % 60);
    if (seed % 3 == 0) work.add(model("b", 2e9), 10 + rng() % 40);
    const std::uint64_t total = work.total_inferences();
    Rig rig(work, config, with_messages(seed % 4 == 0 ? 0 : uniform(0.01, 0.6)));
    WorkerId next_id = 0;
    for (int i = 0; i < 2 + static_cast<int>(rng() % 4); ++i) {
      WorkerId id = next_id++;
      double join = uniform(0, 30);
      rig.cluster.join_at(join, gpu(id, uniform(0.5, 3)));
      if (rng() % 3 == 0) {
        double gone = join + uniform(5, 60);
        if (rng() % 2) rig.cluster.notice_at(gone - uniform(0.1, 8), id, uniform(0.1, 8));
        rig.cluster.lose_at(gone, id);
      }
    }
    rig.cluster.join_at(100, gpu(next_id++));  // someone is always there to finish the work
    if (rng() % 2) rig.cluster.fail_task(rng() % 5, 1 + rng() % 2);
    rig.run();
    CAPTURE(seed, placement);
    const EngineStats& s = rig.engine.stats();
    CHECK(rig.engine.finished());
    CHECK(s.inferences_done == total);  // two failures at most: nothing is given up
    auto finishes = rig.finishes_per_task();
    for (auto [task, n] : finishes) {
      CAPTURE(task);
      CHECK(n == 1);
    }
  }
}
