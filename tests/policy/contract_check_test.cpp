// The cluster contract, executable (policy/contract_check.hpp): each Requires of cluster.hpp,
// broken once on purpose, is caught and named; a core that keeps the contract is never stopped.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <functional>

#include "policy/contract_check.hpp"
#include "tests/policy/rig.hpp"

using namespace hearth;
using namespace hearth::testing;
using Catch::Matchers::ContainsSubstring;

namespace {

// A cluster that only counts the commands that reach it.
struct Counting final : Cluster {
  int commands = 0;
  double now() const override { return 0; }
  void stage_context(WorkerId, ContextId, Tier, Source) override { ++commands; }
  void evict_context(WorkerId, ContextId, Tier) override { ++commands; }
  void start_task(WorkerId, const TaskSpec&) override { ++commands; }
  void cancel_task(WorkerId, AttemptId) override { ++commands; }
};

// Events that reach the core behind the check: none needed here.
struct Silent final : ClusterEvents {
  void worker_joined(const WorkerSpec&) override {}
  void preemption_notice(WorkerId, double) override {}
  void worker_lost(WorkerId) override {}
  void context_ready(WorkerId, ContextId, Tier) override {}
  void stage_failed(WorkerId, ContextId, Tier, std::string_view) override {}
  void task_finished(WorkerId, AttemptId, double) override {}
  void task_failed(WorkerId, AttemptId, std::string_view) override {}
};

// Two 1 GB contexts; workers from gpu() (40 GB of GPU memory) unless told otherwise. Every
// command is checked by `check`; what it finds broken is in `broken`.
struct Checked {
  Counting cluster;
  Silent core;
  std::vector<std::string> broken;
  ContractCheck check;

  explicit Checked(bool pipelined = false)
      : check(
            cluster, two_models(), [this](const std::string& what) { broken.push_back(what); },
            pipelined) {
    check.set_target(core);
  }
  static Workload two_models() {
    Workload w;
    w.add(model("a"), 10);
    w.add(model("b"), 10);
    return w;
  }
  // Context c staged up to `top` on worker w, each stage reported ready.
  void stage_up_to(WorkerId w, ContextId c, Tier top) {
    check.stage_context(w, c, Tier::disk, Source::shared());
    check.context_ready(w, c, Tier::disk);
    if (top == Tier::disk) return;
    check.stage_context(w, c, Tier::host, Source::lower());
    check.context_ready(w, c, Tier::host);
    if (top == Tier::host) return;
    check.stage_context(w, c, Tier::gpu, Source::lower());
    check.context_ready(w, c, Tier::gpu);
  }
  TaskSpec task(AttemptId attempt, ContextId c) { return TaskSpec{1, attempt, c, 0, 10}; }
};

}  // namespace

TEST_CASE("the contract check lets a core that keeps the contract through, command for command") {
  Checked k;
  k.check.worker_joined(gpu(0));
  k.check.worker_joined(gpu(1));
  k.stage_up_to(0, 0, Tier::gpu);
  k.check.start_task(0, k.task(1, 0));
  k.check.task_finished(0, 1, 100);
  k.check.stage_context(1, 0, Tier::disk, Source::from_peer(0));  // 0 holds it on disk and host
  k.check.evict_context(0, 0, Tier::disk);                        // its host copy still serves
  k.check.context_ready(1, 0, Tier::disk);
  k.check.evict_context(0, 0, Tier::host);  // nobody reads from it any more
  k.check.evict_context(0, 0, Tier::gpu);
  CHECK(k.broken.empty());
  CHECK(k.cluster.commands == 8);
}

TEST_CASE("the contract check catches an eviction of a context in use, and says which") {
  Checked k;
  k.check.worker_joined(gpu(0));
  k.stage_up_to(0, 0, Tier::gpu);
  k.check.start_task(0, k.task(1, 0));
  k.check.evict_context(0, 0, Tier::gpu);
  REQUIRE(k.broken.size() == 1);
  CHECK(k.broken[0] == "eviction of context 0 from gpu of worker 0 while it is in use");
  CHECK(k.cluster.commands == 5);  // the command still reaches the cluster

  SECTION("the bytes a stage to the tier above reads") {
    Checked j;
    j.check.worker_joined(gpu(0));
    j.stage_up_to(0, 1, Tier::host);
    j.check.stage_context(0, 1, Tier::gpu, Source::lower());
    j.check.evict_context(0, 1, Tier::host);
    REQUIRE(j.broken.size() == 1);
    CHECK(j.broken[0] == "eviction of context 1 from host of worker 0 while it is in use");
  }
  SECTION("the last copy a peer reads") {
    Checked j;
    j.check.worker_joined(gpu(0));
    j.check.worker_joined(gpu(1));
    j.stage_up_to(0, 0, Tier::disk);
    j.check.stage_context(1, 0, Tier::disk, Source::from_peer(0));
    j.check.evict_context(0, 0, Tier::disk);
    REQUIRE(j.broken.size() == 1);
    CHECK(j.broken[0] == "eviction of context 0 from disk of worker 0 while it is in use");
  }
}

TEST_CASE("the contract check catches every other broken Requires of a command") {
  // Workers 0 and 1 (1.5 GB of GPU memory) hold context 0 on every tier, 0 runs attempt 1 of it,
  // worker 2 is lost and worker 3 holds nothing; each command below is broken in one way.
  auto broken_by = [](const std::function<void(ContractCheck&)>& command) {
    Checked k;
    k.check.worker_joined(gpu(0));
    k.check.worker_joined(gpu(1, 1.0, /*gpu_memory_bytes=*/1.5e9));
    k.check.worker_joined(gpu(2));
    k.check.worker_joined(gpu(3));
    k.stage_up_to(0, 0, Tier::gpu);
    k.stage_up_to(1, 0, Tier::gpu);
    k.stage_up_to(1, 1, Tier::host);
    k.check.start_task(0, k.task(1, 0));
    k.check.worker_lost(2);
    REQUIRE(k.broken.empty());
    command(k.check);
    REQUIRE_FALSE(k.broken.empty());
    return k.broken[0];  // the first thing wrong with it
  };

  CHECK(broken_by([](ContractCheck& c) { c.stage_context(2, 1, Tier::disk, Source::shared()); }) ==
        "stage of context 1 on worker 2, which is not a live worker's");
  CHECK(broken_by([](ContractCheck& c) { c.stage_context(0, 0, Tier::disk, Source::shared()); }) ==
        "context 0 is already on (or on its way to) disk of worker 0");
  CHECK(broken_by([](ContractCheck& c) { c.stage_context(1, 1, Tier::gpu, Source::lower()); }) ==
        "no room for context 1 on gpu of worker 1: 1000000000 of 1500000000 bytes in use");
  CHECK(broken_by([](ContractCheck& c) { c.stage_context(0, 1, Tier::disk, Source::lower()); }) ==
        "a disk stage from lower");
  CHECK(broken_by([](ContractCheck& c) { c.stage_context(0, 1, Tier::host, Source::shared()); }) ==
        "a host stage from shared");
  CHECK(broken_by([](ContractCheck& c) { c.stage_context(0, 1, Tier::gpu, Source::lower()); }) ==
        "context 1 is not on host of worker 0 to stage from");
  CHECK(broken_by([](ContractCheck& c) {
          c.stage_context(0, 1, Tier::disk, Source::from_peer(0));
        }) == "worker 0 cannot read from worker 0");
  CHECK(broken_by([](ContractCheck& c) {
          c.stage_context(0, 1, Tier::disk, Source::from_peer(2));
        }) == "worker 0 cannot read from worker 2");
  CHECK(broken_by([](ContractCheck& c) {
          c.stage_context(0, 1, Tier::disk, Source::from_peer(3));
        }) == "peer 3 does not hold context 1");
  CHECK(broken_by([](ContractCheck& c) { c.evict_context(2, 0, Tier::disk); }) ==
        "eviction of context 0 on worker 2, which is not a live worker's");
  CHECK(broken_by([](ContractCheck& c) { c.evict_context(0, 1, Tier::gpu); }) ==
        "eviction of context 1 from gpu of worker 0, where it is not ready");
  CHECK(broken_by([](ContractCheck& c) {
          c.start_task(2, TaskSpec{1, 2, 0, 0, 10});
        }) == "task 1 of context 0 on worker 2, which is not a live worker's");
  CHECK(broken_by([](ContractCheck& c) {
          c.start_task(0, TaskSpec{1, 2, 0, 0, 10});
        }) == "worker 0 is given attempt 2 while it runs attempt 1");
  CHECK(broken_by([](ContractCheck& c) {
          c.start_task(1, TaskSpec{2, 2, 1, 0, 10});
        }) == "a task of context 1 on worker 1, which does not have it in GPU memory");
}

TEST_CASE("what ends a stage or a task frees what the check counted for it") {
  Checked k;
  k.check.worker_joined(gpu(0, 1.0, /*gpu_memory_bytes=*/1e9));
  k.check.worker_joined(gpu(1));
  k.stage_up_to(0, 0, Tier::host);
  // A failed stage gives its room back: the GPU takes context 0 after a failed try.
  k.check.stage_context(0, 0, Tier::gpu, Source::lower());
  k.check.stage_failed(0, 0, Tier::gpu, "out of memory");
  k.check.stage_context(0, 0, Tier::gpu, Source::lower());
  k.check.context_ready(0, 0, Tier::gpu);
  // A finished or cancelled attempt no longer uses the GPU copy.
  k.check.start_task(0, k.task(1, 0));
  k.check.cancel_task(0, 1);
  k.check.start_task(0, k.task(2, 0));
  k.check.task_failed(0, 2, "scripted");
  // A peer transfer ended by the receiver's loss no longer reads the holder's copies.
  k.check.stage_context(1, 0, Tier::disk, Source::from_peer(0));
  k.check.worker_lost(1);
  k.check.evict_context(0, 0, Tier::disk);
  k.check.evict_context(0, 0, Tier::host);
  k.check.evict_context(0, 0, Tier::gpu);
  CHECK(k.broken.empty());
}

TEST_CASE("pipelined, a worker may hold one task of its running task's context, and no more") {
  Checked k(/*pipelined=*/true);
  k.check.worker_joined(gpu(0));
  k.stage_up_to(0, 0, Tier::gpu);
  k.stage_up_to(0, 1, Tier::gpu);
  k.check.start_task(0, k.task(1, 0));
  k.check.start_task(0, k.task(2, 0));  // held behind attempt 1
  CHECK(k.broken.empty());
  k.check.start_task(0, k.task(3, 0));
  REQUIRE(k.broken.size() == 1);
  CHECK_THAT(k.broken[0], ContainsSubstring("while it runs attempt 1 and holds attempt 2"));
  // Attempt 1 ends: the worker runs attempt 2, and may hold one again, of the same context only.
  k.check.task_finished(0, 1, 100);
  k.check.start_task(0, k.task(4, 1));
  REQUIRE(k.broken.size() == 2);
  CHECK_THAT(k.broken[1], ContainsSubstring("of context 1 to run after attempt 2 of context 0"));
  // Context 0 is in use while attempt 2 runs; cancelling it frees the worker for context 1.
  k.check.evict_context(0, 0, Tier::gpu);
  CHECK(k.broken.size() == 3);
  k.check.cancel_task(0, 2);
  k.check.start_task(0, k.task(5, 1));
  CHECK(k.broken.size() == 3);

  // Without pipelining, a second task is refused even of the same context.
  Checked one;
  one.check.worker_joined(gpu(0));
  one.stage_up_to(0, 0, Tier::gpu);
  one.check.start_task(0, one.task(1, 0));
  one.check.start_task(0, one.task(2, 0));
  REQUIRE(one.broken.size() == 1);
  CHECK_THAT(one.broken[0], ContainsSubstring("is given attempt 2 while it runs attempt 1"));
}
