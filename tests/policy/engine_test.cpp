// The scheduler engine driven by the in-memory cluster: exact outcomes of small runs.

#include <catch2/catch_test_macros.hpp>

#include "tests/policy/rig.hpp"

using namespace hearth;
using namespace hearth::testing;

TEST_CASE("N tasks on one worker load the context once under pcm and N times under naive") {
  // 100 inferences in tasks of 10: each task 1 + 10 * 0.4 = 5 s; a cold load 15 s.
  for (auto [placement, loads, makespan] :
       {std::tuple{"pcm", 1, 15.0 + 10 * 5.0}, std::tuple{"naive", 10, 10 * (15.0 + 5.0)}}) {
    Rig rig(one_model(100), engine_config(placement));
    rig.cluster.join_at(0, gpu(0));
    rig.run();
    CAPTURE(placement);
    CHECK(rig.loads() == static_cast<std::uint64_t>(loads));
    CHECK(rig.loads_from(LoadSource::shared_storage) == static_cast<std::uint64_t>(loads));
    CHECK(rig.engine.stats().tasks_done == 10);
    CHECK(rig.makespan() == makespan);
  }
}

TEST_CASE("naive tears its context down after every task") {
  Rig rig(one_model(20), engine_config("naive"));
  rig.cluster.join_at(0, gpu(0));
  rig.run();
  CHECK(rig.count("evict w0 c0 gpu") == 2);
  CHECK(rig.count("evict w0 c0 host") == 2);
  CHECK(rig.count("evict w0 c0 disk") == 2);
}

TEST_CASE("a worker lost mid-task gets its task requeued and every task finishes exactly once") {
  // Two workers ready at 15 s run tasks 0,1 then 2,3 (5 s each); w1 is lost at 22 s, in the
  // middle of task 3, which w0 then runs from 25 s to 30 s.
  Rig rig(one_model(40), engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.join_at(0, gpu(1));
  rig.cluster.lose_at(22, 1);
  rig.run();
  const EngineStats& s = rig.engine.stats();
  CHECK(s.tasks_requeued == 1);
  CHECK(s.preemptions == 1);
  CHECK(s.tasks_done == 4);
  CHECK(s.inferences_done == 40);
  CHECK(rig.makespan() == 30.0);
  auto finishes = rig.finishes_per_task();
  REQUIRE(finishes.size() == 4);
  for (auto [task, n] : finishes) {
    CAPTURE(task);
    CHECK(n == 1);
  }
}

TEST_CASE("a new worker is bootstrapped from a peer, not shared storage, when a peer holds it") {
  Rig rig(one_model(1000), engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.join_at(100, gpu(1));
  rig.run();
  CHECK(rig.count("100 stage w1 c0 disk from peer:0") == 1);
  CHECK(rig.loads_from(LoadSource::peer) == 1);
  CHECK(rig.loads_from(LoadSource::shared_storage) == 1);
  CHECK(rig.cluster.counters().stages_from_shared == 1);
  // 1 GB over 1 GB/s links: on disk at 101 s, in GPU memory at 101 + 1 + 4 = 106 s.
  CHECK(rig.count("106 start w1") == 1);
}

TEST_CASE("naive never seeds from peers") {
  Rig rig(one_model(1000), engine_config("naive"));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.join_at(100, gpu(1));
  rig.run();
  CHECK(rig.cluster.counters().stages_from_peer == 0);
  CHECK(rig.loads_from(LoadSource::peer) == 0);
}

TEST_CASE("under pcm, newcomers wait for a peer's upload slot rather than read shared storage") {
  EngineConfig config = engine_config("pcm");
  config.policies.upload_cap = 1;
  Rig rig(one_model(10000), config);
  rig.cluster.join_at(0, gpu(0));
  for (WorkerId w = 1; w <= 3; ++w)
    rig.cluster.join_at(100, gpu(w));
  rig.run();
  // w0 serves one at a time: w1 at 100-101 s; then w0 and w1 serve w2 and w3 at 101-102 s.
  CHECK(rig.cluster.counters().stages_from_shared == 1);
  CHECK(rig.count("100 stage w1 c0 disk from peer:0") == 1);
  CHECK(rig.count("101 stage w2 c0 disk from peer:") == 1);
  CHECK(rig.count("101 stage w3 c0 disk from peer:") == 1);
}

TEST_CASE("a transfer from a peer that is lost fails and the newcomer is seeded again") {
  Rig rig(one_model(1000), engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.join_at(100, gpu(1));
  rig.cluster.lose_at(100.5, 0);
  rig.run();
  CHECK(rig.engine.stats().stage_failures == 1);
  // No holder is left, so shared storage it is: ready at 100.5 + 15 s.
  CHECK(rig.count("100.5 stage w1 c0 disk from shared") == 1);
  CHECK(rig.count("115.5 start w1") == 1);
  CHECK(rig.engine.stats().inferences_done == 1000);
}

TEST_CASE("a preemption notice requeues at once a task that cannot finish within the grace") {
  Rig rig(one_model(20), engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.notice_at(17, 0, 1.0);  // task 0 runs 15-20 s: 3 s left, 1 s of grace
  rig.cluster.lose_at(18, 0);
  rig.cluster.join_at(30, gpu(1));
  rig.run();
  CHECK(rig.count("17 cancel w0") == 1);
  CHECK(rig.engine.stats().tasks_requeued == 1);
  CHECK(rig.makespan() == 30 + 15 + 2 * 5.0);
}

TEST_CASE("a preemption notice lets a task finish that fits in the grace, and no new one starts") {
  Rig rig(one_model(20), engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.notice_at(16, 0, 10.0);  // 4 s left of task 0, 10 s of grace
  rig.cluster.lose_at(26, 0);
  rig.cluster.join_at(30, gpu(1));
  rig.run();
  CHECK(rig.count("cancel") == 0);
  CHECK(rig.engine.stats().tasks_requeued == 0);
  CHECK(rig.count("start w0") == 1);
  CHECK(rig.makespan() == 30 + 15 + 5.0);
}

TEST_CASE("a task that keeps failing is given up after max_task_failures and the run ends") {
  EngineConfig config = engine_config("pcm");
  config.max_task_failures = 3;
  Rig rig(one_model(30), config);
  rig.cluster.fail_task(0, 100);
  rig.cluster.join_at(0, gpu(0));
  rig.run();
  const EngineStats& s = rig.engine.stats();
  CHECK(s.tasks_failed == 1);
  CHECK(s.attempts == 3 + 2);
  CHECK(s.inferences_done == 20);
  CHECK(rig.engine.finished());
}

TEST_CASE(
    "a failed task is retried on another worker first, and a single worker still retries it") {
  // 40 inferences in tasks of 10 on two workers; task 0 fails once on whoever runs it first.
  Rig rig(one_model(40), engine_config("pcm"));
  rig.cluster.fail_task(0, 1);
  rig.cluster.join_at(0, gpu(0));
  rig.cluster.join_at(0, gpu(1));
  rig.run();
  std::vector<std::string> starts;
  for (const std::string& l : rig.command_lines()) {
    if (l.find(" task 0 ") != std::string::npos && l.find(" start ") != std::string::npos)
      starts.push_back(l.substr(l.find(" start ") + 7, 2));
  }
  REQUIRE(starts.size() == 2);
  CHECK(starts[0] != starts[1]);
  CHECK(rig.engine.stats().inferences_done == 40);

  // With no other worker, the retry still comes back to the one that failed it.
  Rig alone(one_model(20), engine_config("pcm"));
  alone.cluster.fail_task(0, 1);
  alone.cluster.join_at(0, gpu(0));
  alone.run();
  CHECK(alone.count("task 0 ") == 2);
  CHECK(alone.engine.stats().inferences_done == 20);
}

TEST_CASE("several contexts share a GPU that holds only one: eviction makes room") {
  Workload work;
  work.add(model("a"), 20);
  work.add(model("b"), 20);
  Rig rig(work, engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0, 1.0, 1.5e9));
  rig.run();
  // a: loaded 0-15 s, two tasks to 25 s; b: loads cold 25-40 s, taking a's place in GPU memory
  // at 36 s when it comes up from host memory; then its two tasks.
  CHECK(rig.count("36 evict w0 c0 gpu") == 1);
  CHECK(rig.engine.stats().evictions == 1);
  CHECK(rig.cluster.counters().evictions == 1);
  CHECK(rig.makespan() == 50.0);
  CHECK(rig.engine.stats().inferences_done == 40);
}

TEST_CASE("a context that was evicted from GPU memory reloads from host memory") {
  // w0 has GPU room for one model. It runs a (tasks 0 and 2) while w1, seeded by w0 at 16 s,
  // runs a's task 1 from 22 s. w0 then switches to b (a leaves its GPU at 36 s). w1 is lost at
  // 26 s; task 1 comes back to w0 after b's task, at 45 s, from its host copy: 45 + 1 + 3 s.
  Workload work;
  work.add(model("a"), 30);
  work.add(model("b"), 10);
  Rig rig(work, engine_config("pcm"));
  rig.cluster.join_at(0, gpu(0, 1.0, 1.5e9));
  rig.cluster.join_at(16, gpu(1));
  rig.cluster.lose_at(26, 1);
  rig.run();
  CHECK(rig.count("36 evict w0 c0 gpu") == 1);
  CHECK(rig.count("45 evict w0 c1 gpu") == 1);
  CHECK(rig.count("45 stage w0 c0 gpu from lower") == 1);
  CHECK(rig.loads_from(LoadSource::host_memory) == 1);
  CHECK(rig.loads_from(LoadSource::peer) == 1);
  CHECK(rig.loads_from(LoadSource::shared_storage) == 2);
  CHECK(rig.makespan() == 54.0);
  CHECK(rig.engine.stats().inferences_done == 40);
}

TEST_CASE("adaptive backs up the last task on a much faster idle GPU; it counts once") {
  // w0 (speed 0.25) needs 1 + 10 * 1.6 = 17 s per task; w1 (speed 2) needs 3 s. w0 reads
  // shared storage (ready at 15 s); shared storage has no room for a second reader at link
  // speed, so w1 is seeded by w0 (disk at 11 s, ready at 16 s). w0 runs a task until 32 s; w1
  // runs the other until 19 s and then reruns w0's, done at 22 s instead of 32 s.
  EngineConfig config = engine_config("adaptive");
  Rig rig(one_model(20), config);
  rig.cluster.join_at(0, gpu(0, 0.25));
  rig.cluster.join_at(0, gpu(1, 2.0));
  rig.run();
  const EngineStats& s = rig.engine.stats();
  CHECK(s.backups == 1);
  CHECK(s.tasks_done == 2);
  CHECK(s.inferences_done == 20);
  CHECK(rig.count("10 stage w1 c0 disk from peer:0") == 1);
  CHECK(rig.count("22 cancel w0") == 1);
  CHECK(rig.makespan() == 22.0);
}

TEST_CASE("adaptive lets holders drain the work rather than load a context for nothing") {
  // w0 holds the model at 15 s with 2 tasks of work (10 s); w1 arriving at 16 s would need
  // a 15 s cold load, 2 s from a peer: only the peer path is worth it.
  Rig slow(one_model(20), engine_config("adaptive"));
  slow.cluster.join_at(0, gpu(0));
  WorkerSpec far = gpu(1);
  far.network_Bps = 1e7;  // 100 s to fetch from the peer
  slow.cluster.join_at(16, far);
  slow.run();
  CHECK(slow.count("stage w1") == 0);
  CHECK(slow.makespan() == 25.0);
}

namespace {

Workload two_models() {
  Workload work;
  work.add(model("a"), 3000);
  work.add(model("b", 2e9), 2000);
  return work;
}

EngineConfig churn_config(const char* placement) {
  EngineConfig config = engine_config(placement, 50);
  config.policies.granularity = "adaptive";
  return config;
}

// Six workers of two speeds, two of them with room for one model only, churn and a notice.
std::pair<std::vector<std::string>, std::vector<std::string>> churn_run(const char* placement) {
  Rig rig(two_models(), churn_config(placement));
  for (WorkerId w = 0; w < 6; ++w) {
    rig.cluster.join_at(3.0 * w, gpu(w, w % 2 ? 1.0 : 2.0, w % 3 ? 40e9 : 2.5e9));
  }
  rig.cluster.lose_at(40, 2);
  rig.cluster.join_at(90, gpu(2));
  rig.cluster.notice_at(60, 4, 2.0);
  rig.cluster.lose_at(62, 4);
  rig.run();
  REQUIRE(rig.engine.finished());
  CHECK(rig.engine.stats().inferences_done == 5000);
  return {rig.command_lines(), rig.event_lines()};
}

}  // namespace

TEST_CASE("the same events give the same commands, bit for bit") {
  for (const char* placement : {"naive", "pcm", "adaptive"}) {
    CAPTURE(placement);
    auto [commands, events] = churn_run(placement);
    CHECK(commands.size() > 100);
    CHECK(churn_run(placement).first == commands);
    // A fresh engine fed the recorded events issues exactly the same commands.
    CHECK(replay_events(events, two_models(), churn_config(placement)) == commands);
  }
}

TEST_CASE("events that do not match the engine's state are ignored") {
  struct Silent final : Cluster {
    double now() const override { return 0; }
    void stage_context(WorkerId, ContextId, Tier, Source) override {}
    void evict_context(WorkerId, ContextId, Tier) override {}
    void start_task(WorkerId, const TaskSpec&) override {}
    void cancel_task(WorkerId, AttemptId) override {}
  } cluster;
  Engine engine(cluster, one_model(10), engine_config("pcm"));
  engine.worker_joined(gpu(0));
  engine.task_finished(99, 1, 0);           // no such worker
  engine.context_ready(0, 99, Tier::disk);  // no such context
  engine.context_ready(0, 0, Tier::gpu);    // only the disk stage was started
  CHECK_FALSE(engine.state().worker(0).on(0).ready(Tier::gpu));
  for (Tier t : {Tier::disk, Tier::host, Tier::gpu})
    engine.context_ready(0, 0, t);
  REQUIRE(engine.state().worker(0).attempt == 1);
  engine.task_finished(0, 7, 0);  // no such attempt
  engine.worker_lost(0);
  engine.task_finished(0, 1, 0);  // too late: the worker is gone and its task requeued
  CHECK(engine.stats().tasks_done == 0);
  CHECK(engine.stats().tasks_requeued == 1);
  CHECK_FALSE(engine.finished());
}
