// Single policies asked single questions about hand-built states.

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fmt/format.h>

#include <map>

#include "policy/errors.hpp"
#include "policy/eviction.hpp"
#include "policy/granularity.hpp"
#include "policy/registry.hpp"
#include "policy/replication.hpp"
#include "tests/policy/rig.hpp"

using namespace hearth;
using namespace hearth::testing;

namespace {

Workload three_models() {
  Workload work;
  work.add(model("a"), 100);
  work.add(model("b"), 100);
  work.add(model("c"), 100);
  return work;
}

std::vector<ContextId> victims(const Eviction& policy, const SchedulerState& state,
                               std::vector<ContextId> candidates) {
  policy.order_victims(state, 0, Tier::gpu, candidates);
  return candidates;
}

}  // namespace

TEST_CASE("under memory pressure lru evicts the least recently used context") {
  StateBuilder state(three_models());
  state.worker(gpu(0)).holds(0, 0, Tier::gpu, 10).holds(0, 1, Tier::gpu, 50).no_pending(1);
  CHECK(victims(*make_lru_eviction(), state, {0, 1}) == std::vector<ContextId>{0, 1});
}

TEST_CASE("under memory pressure cost evicts what is no longer in demand first") {
  // a was used long ago but still has work; b was used just now but has none left.
  StateBuilder state(three_models());
  state.worker(gpu(0)).holds(0, 0, Tier::gpu, 10).holds(0, 1, Tier::gpu, 50).no_pending(1);
  CHECK(victims(*make_cost_eviction(), state, {0, 1}) == std::vector<ContextId>{1, 0});
}

TEST_CASE("cost eviction keeps what is expensive to reload, per byte") {
  // All in demand. a has a host copy (back in 1 + 3 s), b only a disk copy (1 + 1 + 3 s),
  // c nothing below (10 + 1 + 1 + 3 s from shared storage). Recency says c, b, a.
  StateBuilder state(three_models());
  state.worker(gpu(0))
      .holds(0, 0, Tier::gpu, 30)
      .holds(0, 0, Tier::host, 30)
      .holds(0, 1, Tier::gpu, 20)
      .holds(0, 1, Tier::disk, 20)
      .holds(0, 2, Tier::gpu, 10);
  CHECK(victims(*make_cost_eviction(), state, {0, 1, 2}) == std::vector<ContextId>{0, 1, 2});
  CHECK(victims(*make_lru_eviction(), state, {0, 1, 2}) == std::vector<ContextId>{2, 1, 0});
}

TEST_CASE("adaptive granularity shrinks batches as preemptions rise") {
  // Overhead 1 s, 0.05 s per inference: batch = sqrt(1 + 2 / rate) / 0.05.
  std::vector<std::uint64_t> sizes;
  for (double losses_per_hour : {0.0, 1.0, 6.0, 60.0}) {
    EstimatorConfig est;
    est.task_overhead_s = 1.0;
    est.inference_s = 0.05;
    est.prior_losses = losses_per_hour;
    est.prior_up_s = 3600;
    Workload work;
    work.add(model(), 1'000'000);
    StateBuilder state(work, est);
    state.worker(gpu(0));
    sizes.push_back(make_adaptive_granularity(10000)->batch_size(state, 0, 0));
  }
  CHECK(sizes == std::vector<std::uint64_t>{10000, 1697, 693, 220});
}

TEST_CASE("adaptive granularity gives a faster GPU a larger batch") {
  EstimatorConfig est;
  est.prior_losses = 6.0;
  Workload work;
  work.add(model(), 1'000'000);
  StateBuilder state(work, est);
  state.worker(gpu(0, 1.0)).worker(gpu(1, 4.0));
  auto policy = make_adaptive_granularity(100000);
  // sqrt(1 + 2 * 600) / (0.05 / speed): 693.1 at speed 1, 2772.4 at speed 4.
  CHECK(policy->batch_size(state, 0, 0) == 693);
  CHECK(policy->batch_size(state, 1, 0) == 2772);
}

TEST_CASE("fixed granularity always gives the batch size") {
  StateBuilder state(three_models());
  state.worker(gpu(0));
  CHECK(make_fixed_granularity(37)->batch_size(state, 0, 0) == 37);
}

TEST_CASE("the flow planner seeds requests that first-come-first-served would leave waiting") {
  // Holder 10 has contexts 0 and 1, holder 11 only 0, one slot each. Greedy gives 10 to the
  // request for 0 and has nothing left for the request for 1; the flow gives 11 to it instead.
  SeedProblem p;
  p.requests = {{1, 0}, {2, 1}};
  p.holders = {{10, 1, 0, 1e9, {0, 1}}, {11, 1, 0, 1e9, {0}}};
  p.shared_slots = {0, 0};
  SeedPlan greedy = make_greedy_replication()->plan(p);
  CHECK(greedy[0] == Source::from_peer(10));
  CHECK_FALSE(greedy[1].has_value());
  SeedPlan flow = make_flow_replication()->plan(p);
  CHECK(flow[0] == Source::from_peer(11));
  CHECK(flow[1] == Source::from_peer(10));
}

TEST_CASE("the flow planner respects upload caps and shared storage slots") {
  SeedProblem p;
  p.requests = {{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}};
  p.holders = {{10, 2, 0, 1e9, {0}}};
  p.shared_slots = {1};
  SeedPlan plan = make_flow_replication()->plan(p);
  int peers = 0, shared = 0, waiting = 0;
  for (const auto& s : plan) {
    if (!s) {
      ++waiting;
    } else if (s->kind == SourceKind::peer) {
      ++peers;
    } else {
      ++shared;
    }
  }
  CHECK(peers == 2);
  CHECK(shared == 1);
  CHECK(waiting == 2);
}

namespace {

std::map<std::string, int> sources_used(const SeedPlan& plan) {
  std::map<std::string, int> used;
  for (const auto& s : plan) {
    ++used[!s                            ? "waiting"
           : s->kind == SourceKind::peer ? fmt::format("peer {}", s->peer)
                                         : "shared"];
  }
  return used;
}

}  // namespace

TEST_CASE("the flow planner picks the sources with the least transfer time per byte") {
  // Holder 3 on a 1 GB/s link: its 1st and 2nd concurrent uploads cost 1000 and 2000 ps/byte.
  // Shared storage at 1.5 GB/s: its 1st, 2nd, 3rd readers 667, 1333, 2000. Three requests: the
  // cheapest way to seed all three is one peer copy and two shared reads (3000).
  SeedProblem p;
  p.requests = {{7, 0}, {8, 0}, {9, 0}};
  p.holders = {{3, 2, 0, 1e9, {0}}};
  p.shared_slots = {5};
  p.shared_storage_Bps = 1.5e9;
  CHECK(sources_used(make_flow_replication()->plan(p)) ==
        std::map<std::string, int>{{"peer 3", 1}, {"shared", 2}});
  // With two readers on shared storage already, its next ones cost 2000 and more: two peer
  // copies and one shared read (4000 against 1000 + 2000 + 2667 + ...).
  p.shared_readers = 2;
  CHECK(sources_used(make_flow_replication()->plan(p)) ==
        std::map<std::string, int>{{"peer 3", 2}, {"shared", 1}});
  // Seeding as many as possible comes first: with no shared slots, one must wait.
  p.shared_slots = {0};
  CHECK(sources_used(make_flow_replication()->plan(p)) ==
        std::map<std::string, int>{{"peer 3", 2}, {"waiting", 1}});
}

TEST_CASE("the flow planner prefers fast, idle holders and spreads uploads over them") {
  // Holder 1: 1 GB/s, two uploads already (3000, 4000, 5000 ps/byte for more); holder 2:
  // 2 GB/s, idle (500, 1000, 1500); holder 3: 0.5 GB/s, idle (2000, 4000, 6000).
  SeedProblem p;
  p.requests = {{10, 0}, {11, 0}, {12, 0}, {13, 0}};
  p.holders = {{1, 3, 2, 1e9, {0}}, {2, 3, 0, 2e9, {0}}, {3, 3, 0, 0.5e9, {0}}};
  p.shared_slots = {0};
  CHECK(sources_used(make_flow_replication()->plan(p)) ==
        std::map<std::string, int>{{"peer 2", 3}, {"peer 3", 1}});
}

TEST_CASE("the flow planner plans a thousand waiting workers over many holders") {
  // 1000 newcomers for two contexts, 500 holders of one or both with 2 slots each, no shared
  // storage: all 1000 are seeded, no holder over its cap.
  SeedProblem p;
  for (WorkerId w = 0; w < 1000; ++w)
    p.requests.push_back({1000 + w, w % 2});
  for (WorkerId h = 0; h < 500; ++h) {
    p.holders.push_back(
        {h, 2, 0, 1e9, h % 3 == 0 ? std::vector<ContextId>{0, 1} : std::vector<ContextId>{h % 2}});
  }
  p.shared_slots = {0, 0};
  SeedPlan plan = make_flow_replication()->plan(p);
  std::map<WorkerId, int> load;
  for (const auto& s : plan) {
    REQUIRE(s.has_value());
    ++load[s->peer];
  }
  for (auto [holder, n] : load)
    CHECK(n <= 2);
}

TEST_CASE("policies are chosen by name and an unknown name says which ones exist") {
  PolicyChoice choice;
  choice.placement = "adaptive";
  choice.eviction = "cost";
  choice.granularity = "adaptive";
  choice.replication = "greedy";
  PolicySet set = make_policies(choice);
  CHECK(set.placement->name() == "adaptive");
  CHECK(set.eviction->name() == "cost");
  CHECK(set.granularity->name() == "adaptive");
  CHECK(set.replication->name() == "greedy");
  choice.placement = "fastest";
  CHECK_THROWS_WITH(make_policies(choice),
                    "unknown placement policy 'fastest' (known: naive, pcm, adaptive)");
}
