// The simulated cluster on its own, driven by a scripted core: how long stages and tasks take
// under the model's bandwidths and contention, and how losses, notices and rejoins reach the core.

#include <catch2/catch_test_macros.hpp>

#include <algorithm>

#include "tests/sim/fixtures.hpp"

using namespace hearth;
using namespace hearth::sim;
using namespace hearth::sim::testing;

namespace {

std::vector<Row> all_up_at_zero(int k) {
  std::vector<Row> rows;
  for (int i = 0; i < k; ++i)
    rows.push_back({0, "up", fmt::format("g{}", i)});
  return rows;
}

void read_from_shared_storage_on_join(Script& s) {
  s.on_join = [](Script& me, const WorkerSpec& w) {
    me.cluster.stage_context(w.id, 0, Tier::disk, Source::shared());
  };
}

// w0 reads the context from shared storage; once it has it, w1 reads it from w0.
void peer_reads_from_first(Script& s) {
  s.on_join = [](Script& me, const WorkerSpec& w) {
    if (w.id == 0) me.cluster.stage_context(0, 0, Tier::disk, Source::shared());
  };
  s.on_ready = [](Script& me, WorkerId w, ContextId c, Tier) {
    if (w == 0) me.cluster.stage_context(1, c, Tier::disk, Source::from_peer(0));
  };
}

// Each copy made climbs to the next tier up; one on the GPU starts attempt 1 of a task of 10.
void climb_tiers_then_run(Script& s) {
  s.on_ready = [](Script& me, WorkerId w, ContextId c, Tier t) {
    if (t == Tier::disk) me.cluster.stage_context(w, c, Tier::host, Source::lower());
    if (t == Tier::host) me.cluster.stage_context(w, c, Tier::gpu, Source::lower());
    if (t == Tier::gpu) me.cluster.start_task(w, TaskSpec{0, 1, c, 0, 10});
  };
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace

TEST_CASE("k workers reading a context from shared storage at once each take k times longer") {
  // Alone: 1e9 B at the storage's 1e8 B/s is 10 s. Four at once share the 1e8 B/s: 40 s each.
  auto alone =
      run_script(one_context(all_up_at_zero(1), 10, "pcm"), 2, read_from_shared_storage_on_join);
  CHECK(alone == std::vector<std::string>{"0.000000 joined w0", "10.000000 ready w0 c0 disk"});

  auto four =
      run_script(one_context(all_up_at_zero(4), 10, "pcm"), 8, read_from_shared_storage_on_join);
  REQUIRE(four.size() == 8);
  for (int w = 0; w < 4; ++w)
    CHECK(has(four, fmt::format("40.000000 ready w{} c0 disk", w)));
}

TEST_CASE("a lost reader's share of shared storage goes to the other readers at once") {
  // Two readers share 1e8 B/s for 5 s (2.5e8 B each); then b is lost and a reads the remaining
  // 7.5e8 B alone at 1e8 B/s: 7.5 s more.
  auto lines =
      run_script(one_context({{0, "up", "a"}, {0, "up", "b"}, {5, "down", "b"}}, 10, "pcm"), 4,
                 read_from_shared_storage_on_join);
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "0.000000 joined w1",
                     "5.000000 lost w1",
                     "12.500000 ready w0 c0 disk",
                 });
}

TEST_CASE("a context climbs the tiers at the disk and host-to-GPU bandwidths, plus its init") {
  // disk 1e9/1e8 = 10 s, host 1e9/1e8 = 10 s, gpu 1e9/1e8 + 30 s init = 40 s; then a task of
  // 10 inferences at 0.5 s each and 1 s per batch, and its 10 * 1e7 B of output over 1e9 B/s.
  Scenario s = one_context(all_up_at_zero(1), 10, "pcm");
  s.cluster.gpu_types[0].per_batch_s = 1;
  s.cluster.output_bytes_per_inference = 1e7;
  auto lines = run_script(s, 5, [](Script& script) {
    read_from_shared_storage_on_join(script);
    climb_tiers_then_run(script);
  });
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "10.000000 ready w0 c0 disk",
                     "20.000000 ready w0 c0 host",
                     "60.000000 ready w0 c0 gpu",
                     "66.100000 finished w0 attempt 1",
                 });
}

TEST_CASE("a peer bootstrap takes the latency plus the size over the slower of the two links") {
  // Worker a (type G, 5e8 B/s link) reads from shared storage: 0.01 s + 1e9 / 1e8 = 10.01 s.
  // Then b (type H, 2.5e8 B/s link) reads from a: 0.01 s + 1e9 / 2.5e8 = 4.01 s more.
  Scenario s = one_context({{0, "up", "a"}, {0, "up", "b"}}, 10, "pcm");
  s.cluster.latency_s = 0.01;
  GpuType& g = s.cluster.gpu_types[0];
  g.network_Bps = 5e8;
  g.disk_write_Bps = 1e10;
  GpuType h = g;
  h.name = "H";
  h.network_Bps = 2.5e8;
  s.cluster.gpu_types.push_back(h);
  s.trace.events[1].gpu_type = "H";
  check_scenario(s);

  auto lines = run_script(s, 4, peer_reads_from_first);
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "0.000000 joined w1",
                     "10.010000 ready w0 c0 disk",
                     "14.020000 ready w1 c0 disk",
                 });
}

TEST_CASE("a transfer from a peer that is lost fails on the receiver at that moment") {
  // b reads from a from 10 s; the transfer would take 1e9 / 1e8 (b's disk write) = 10 s, but a
  // is lost at 12 s.
  Scenario s = one_context({{0, "up", "a"}, {0, "up", "b"}, {12, "down", "a"}}, 10, "pcm");
  auto lines = run_script(s, 5, peer_reads_from_first);
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "0.000000 joined w1",
                     "10.000000 ready w0 c0 disk",
                     "12.000000 lost w0",
                     "12.000000 stage_failed w1 c0 disk",
                 });
}

TEST_CASE("a lost worker falls silent, and the manager hears of it after the detection delay") {
  // a would have its context on disk at 10 s, but is lost at 5 s; with a 3 s delay the core
  // hears of it at 8 s, and never of the stage.
  Scenario s = one_context({{0, "up", "a"}, {5, "down", "a"}, {40, "up", "b"}}, 10, "pcm");
  s.detection_delay_s = 3;
  auto lines = run_script(s, 3, read_from_shared_storage_on_join);
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "8.000000 lost w0",
                     "40.000000 joined w1",
                 });
}

TEST_CASE("a worker back before its loss was detected is reported lost, then joined") {
  Scenario s = one_context({{0, "up", "a"}, {5, "down", "a"}, {7, "up", "a"}}, 10, "pcm");
  s.detection_delay_s = 10;
  auto lines = run_script(s, 3, [](Script&) {});
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "7.000000 lost w0",
                     "7.000000 joined w0",
                 });
}

TEST_CASE("a preemption notice reaches the core with its grace period") {
  Scenario s = one_context({{0, "up", "a"}, {5, "notice", "a", 30}, {35, "down", "a"}}, 10, "pcm");
  auto lines = run_script(s, 3, [](Script&) {});
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "5.000000 notice w0 30",
                     "35.000000 lost w0",
                 });
}

TEST_CASE("a cancelled task ends without an event and frees the GPU for the next one") {
  // The first task would end at 65 s; the script cancels it when b joins, at 62 s, and starts
  // another on a at once: 62 + 5 = 67 s.
  Scenario s = one_context({{0, "up", "a"}, {62, "up", "b"}}, 10, "pcm");
  auto lines = run_script(s, 6, [](Script& script) {
    script.on_join = [](Script& me, const WorkerSpec& w) {
      if (w.id == 0) me.cluster.stage_context(0, 0, Tier::disk, Source::shared());
      if (w.id == 1) {
        me.cluster.cancel_task(0, 1);
        me.cluster.start_task(0, TaskSpec{0, 2, 0, 0, 10});
      }
    };
    climb_tiers_then_run(script);
  });
  CHECK(lines == std::vector<std::string>{
                     "0.000000 joined w0",
                     "10.000000 ready w0 c0 disk",
                     "20.000000 ready w0 c0 host",
                     "60.000000 ready w0 c0 gpu",
                     "62.000000 joined w1",
                     "67.000000 finished w0 attempt 2",
                 });
}
