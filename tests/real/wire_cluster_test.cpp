// The manager's cluster (wire_cluster.hpp) driven by hand, without sockets: messages to workers
// are collected, workers' reports are fed in, and events are delivered when the test says, so
// that reports and events can be ordered as a busy manager's loop may order them.

#include <catch2/catch_test_macros.hpp>

#include <sstream>

#include "policy/wired_engine.hpp"
#include "real_backend/manager/run_monitor.hpp"
#include "real_backend/manager/wire_cluster.hpp"
#include "real_backend/manager/worker_registry.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::real;
using namespace hearth::testing;

namespace {

struct Hand {
  TempDir dir;
  RunPlan plan;
  WorkerRegistry workers;
  double clock_s = 0;
  RunMonitor monitor{RunMonitorSetup{}, [this] { return clock_s; }};
  std::vector<std::pair<WorkerId, Message>> sent;
  WireCluster cluster{plan,
                      workers,
                      monitor,
                      [this](WorkerId w, const Message& m) { sent.emplace_back(w, m); },
                      [this] { return clock_s; },
                      {}};
  WiredEngine core;

  explicit Hand(int rows)
      : plan(read_job_file(write_noop_job(dir.path, rows, 1))),
        core(cluster, plan.workload(), plan.job().engine) {
    cluster.attach(core.engine());
  }
  WorkerId join(const std::string& name) {
    WorkerSlot slot;
    slot.name = name;
    WorkerId w = workers.join(slot);
    WorkerSpec spec;
    spec.id = w;
    spec.name = name;
    spec.gpu_type = "hand";
    spec.gpu_memory_bytes = spec.host_memory_bytes = spec.disk_bytes = 1e12;
    cluster.joined(spec);
    return w;
  }
  // Delivers the events, answering every stage sent meanwhile as done, until all is quiet (a
  // context takes three stages to reach a worker's device).
  void settle() {
    for (int round = 0; round < 8; ++round) {
      clock_s += 0.001;
      cluster.deliver_events(core.events());
      for (auto& [w, m] : std::exchange(sent, {})) {
        if (auto* s = std::get_if<Stage>(&m)) {
          cluster.stage_ended(w, StageReady{s->stage, 0.0});
        } else {
          sent.emplace_back(w, m);
        }
      }
    }
  }
  // The tasks sent to w (and forgets them).
  std::vector<Task> tasks_to(WorkerId w) {
    std::vector<Task> out;
    std::erase_if(sent, [&](const auto& s) {
      if (s.first != w || !std::holds_alternative<Task>(s.second)) return false;
      out.push_back(std::get<Task>(s.second));
      return true;
    });
    return out;
  }
  void finish(WorkerId w, const Task& t) {
    cluster.task_finished(w, TaskFinished{t.attempt, std::vector<std::string>(1, "null")});
  }
};

}  // namespace

TEST_CASE("results that come in as the core cancels their attempt count once, and never rerun") {
  // Worker b runs task 0 and holds task 1 (pipelined). Its preemption notice and the results of
  // task 1 come in before the core hears of either: the results are recorded, then the notice
  // makes the core cancel task 1 on b and queue it again, so their event finds nothing to count.
  // When c gets task 1, it counts as done at once, from the results on disk.
  Hand h(2);
  REQUIRE(h.plan.job().engine.pipeline);
  WorkerId b = h.join("b");
  h.settle();
  std::vector<Task> held = h.tasks_to(b);
  REQUIRE(held.size() == 2);
  h.cluster.notice(b, 60);
  h.finish(b, held[1]);
  h.settle();
  h.finish(b, held[0]);
  h.settle();
  CHECK(!h.core.engine().finished());
  WorkerId c = h.join("c");
  h.settle();
  CHECK(h.tasks_to(c).empty());  // nothing left to run
  CHECK(h.core.engine().finished());
  CHECK(h.core.engine().stats().tasks_done == 2);
  h.plan.write_output();
  std::istringstream out(read_file(h.dir / "out.jsonl"));
  int lines = 0;
  for (std::string l; std::getline(out, l);)
    lines += l.find("\"result\":null") != std::string::npos;
  CHECK(lines == 2);
}
